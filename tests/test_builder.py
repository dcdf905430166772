"""`roboreward build` end to end: LeRobot v2.1 (H.264) and v3.0 (AV1), RoboArena and manifest data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import write_video
from lerobot_fixtures import write_lerobot_v21, write_lerobot_v30
from roboarena_fixtures import BROKEN_SESSIONS, GOOD_SESSIONS, policy, session, write_roboarena_dump

from roboreward import video
from roboreward.cli import main as cli_main
from roboreward.dataset.builder import SPLITS, BuildConfig, build
from roboreward.dataset.folder import DatasetFolder
from roboreward.sources import SourceError

RATIOS = {"train": 0.5, "validation": 0.25, "test": 0.25}
TOTO = [
    ("pick up the red block", 8),
    ("open the top drawer", 10),
    ("put the sponge in the sink", 9),
    ("close the microwave", 8),
    ("push the cup to the left", 8),  # its video is missing
    ("   ", 8),  # empty task
]
VIOLA = [(f"stack the bowls {i}", 7 + i) for i in range(5)]
#: rewards of the left camera of each good RoboArena run, from the default bins
ROBOARENA_REWARDS = {
    "s01_marker/A": 1,
    "s01_marker/B": 2,
    "s02_drawer/A": 3,
    "s02_drawer/B": 4,
    "s03_towel/A": 5,
    "s03_towel/B": 5,
    "s03_towel/C": 4,
    "s04_cups/A": 3,
    "s04_cups/B": 2,
    "s04_cups/C": 4,
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("corpus")
    toto = write_lerobot_v21(root / "toto", TOTO, codec="libx264", missing_videos=[4])
    viola = write_lerobot_v30(root / "viola", VIOLA, codec="libsvtav1", episodes_per_file=2)
    arena = write_roboarena_dump(root / "DataDump", GOOD_SESSIONS + BROKEN_SESSIONS[4:6])
    mine = root / "mine"
    mine.mkdir()
    write_video(mine / "a.mp4", num_frames=12, fps=10)
    write_video(mine / "b.mp4", num_frames=5, fps=10)
    (mine / "broken.mp4").write_bytes(np.random.default_rng(0).bytes(3000))
    rows = [
        {"video": "a.mp4", "task": "wipe the table", "reward": 2, "episode_id": "a"},
        {"video": "b.mp4", "task": "wipe the table", "progress": 0.5, "episode_id": "b"},
        {"video": "broken.mp4", "task": "wipe the table", "reward": 5, "episode_id": "broken"},
        {"video": "../toto/meta/info.json", "task": "escape", "reward": 5, "episode_id": "escape"},
    ]
    manifest = mine / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"toto": toto, "viola": viola, "arena": arena, "manifest": manifest}


def _config(corpus, out: Path, **changes) -> BuildConfig:
    fields = dict(
        lerobot=[str(corpus["toto"]), str(corpus["viola"])],
        roboarena=[str(corpus["arena"])],
        manifest=[str(corpus["manifest"])],
        out=str(out),
        split_ratios=RATIOS,
        max_side=32,
        max_frames=6,
        crf=30,
    )
    return BuildConfig(**{**fields, **changes})


def _rows(out: Path) -> dict[str, list[dict]]:
    """Every exported row, per split, read straight from the Parquet files."""
    rows = {}
    for split in SPLITS:
        files = sorted((out / "data").glob(f"{split}-*.parquet"))
        rows[split] = [r for f in files for r in pq.read_table(f).to_pylist()]
    return rows


def assert_same_rows(left: dict[str, list[dict]], right: dict[str, list[dict]]) -> None:
    """Same rows in the same splits and order, and videos that decode to the same frames.

    x264 does not promise the same bitstream on every run (equivalent coding decisions can differ
    between runs of one process), so videos are compared by what they show, not by their bytes.
    """
    assert {s: [{k: v for k, v in r.items() if k != "video"} for r in rows] for s, rows in left.items()} == {
        s: [{k: v for k, v in r.items() if k != "video"} for r in rows] for s, rows in right.items()
    }
    for split in left:
        for a, b in zip(left[split], right[split], strict=True):
            assert a["video"]["path"] == b["video"]["path"]
            frames_a, frames_b = video.sample_frames(a["video"]), video.sample_frames(b["video"])
            assert frames_a.shape == frames_b.shape, a["id"]
            assert np.abs(frames_a.astype(int) - frames_b.astype(int)).max() <= 2, a["id"]


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("build") / "roboreward"
    return out, build(_config(corpus, out))


def test_rows_per_source_and_reward(built):
    out, report = built
    rows = [r for split_rows in _rows(out).values() for r in split_rows]
    assert Counter(r["source"] for r in rows) == {
        "oxe/toto": 4,
        "oxe/viola": 5,
        "roboarena": 10,
        "manifest/manifest": 2,
    }
    assert report["totals"]["rows"] == 21
    for r in rows:
        if r["source"].startswith("oxe/"):
            assert (r["reward"], r["progress"], r["augmentation"]) == (5, 1.0, "original")
    arena = {r["episode_id"]: r["reward"] for r in rows if r["source"] == "roboarena"}
    assert arena == ROBOARENA_REWARDS
    mine = {r["episode_id"]: (r["reward"], r["progress"]) for r in rows if r["source"] == "manifest/manifest"}
    assert mine == {"a": (2, None), "b": (3, 0.5)}
    toto_tasks = sorted(r["task"] for r in rows if r["source"] == "oxe/toto")
    assert toto_tasks == sorted(t for t, _ in TOTO[:4])


def test_skips_are_reported_with_reasons(built):
    out, report = built
    skipped = {(s["source"], s["episode_id"]): s["reason"] for s in report["skipped"]}
    assert "video file missing" in skipped[("oxe/toto", "4")]
    assert "task is empty" in skipped[("oxe/toto", "5")]
    assert "cannot decode video" in skipped[("manifest/manifest", "broken")]
    assert "escapes the manifest folder" in skipped[("manifest/manifest", "escape")]
    assert any(src == "roboarena" and "x05_empty_task" in eid for src, eid in skipped)
    assert any(src == "roboarena" and "x06_no_task" in eid for src, eid in skipped)
    assert report["totals"]["skipped"] == len(report["skipped"]) == 6
    on_disk = json.loads((out / "build_report.json").read_text())
    assert on_disk["totals"] == report["totals"] and on_disk["skipped"] == report["skipped"]


def test_no_group_is_in_two_splits_and_sources_are_stratified(built):
    out, report = built
    rows = _rows(out)
    where: dict[str, str] = {}
    for split, split_rows in rows.items():
        for r in split_rows:
            assert where.setdefault(r["group"], split) == split
    per_split = {s: Counter(r["source"] for r in rows[s]) for s in SPLITS}
    # 4 toto groups -> 2/1/1; 5 viola -> 3/1/1; 10 roboarena -> 5/3/2 or 5/2/3 (largest remainder)
    assert [per_split[s]["oxe/toto"] for s in SPLITS] == [2, 1, 1]
    assert [per_split[s]["oxe/viola"] for s in SPLITS] == [3, 1, 1]
    assert per_split["train"]["roboarena"] == 5
    assert report["rows"]["train"]["rows"] == len(rows["train"])


def test_load_dataset_round_trip_offline(built, monkeypatch):
    out, report = built
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.chdir(out.parent)
    ds = datasets.load_dataset("roboreward")  # a folder next to us, as `load_dataset("roboreward")` users do
    assert set(ds) == set(SPLITS)
    assert {s: len(ds[s]) for s in SPLITS} == {s: report["rows"][s]["rows"] for s in SPLITS}
    assert isinstance(ds["train"].features["video"], datasets.Video)
    assert ds["train"].features["reward"] == datasets.Value("int8")
    test = ds["test"].cast_column("video", datasets.Video(decode=False))
    row = test[0]
    assert set(row["video"]) == {"bytes", "path"} and row["video"]["path"].endswith(".mp4")
    info = video.probe(row["video"])
    assert info.codec == "h264" and max(info.width, info.height) <= 32
    frames = video.sample_frames(row["video"])
    assert frames.dtype == np.uint8 and 2 <= len(frames) <= 6


def test_videos_follow_the_frame_budget_and_keep_their_episode(built, corpus):
    out, _ = built
    rows = [r for split_rows in _rows(out).values() for r in split_rows]
    viola = {r["episode_id"]: r for r in rows if r["source"] == "oxe/viola"}
    for episode_id, r in viola.items():
        info = video.probe(r["video"]["bytes"])
        assert info.frames == 6  # 7..11 source frames -> the 6-frame budget
        source_frames = VIOLA[int(episode_id)][1]
        assert info.duration == pytest.approx(source_frames / 10, abs=0.11)  # duration kept
    b = next(r for r in rows if r["episode_id"] == "b")
    assert video.probe(b["video"]["bytes"]).frames == 5  # under the budget: every frame, same rate
    assert video.probe(b["video"]["bytes"]).fps == 10


def test_dataset_card_declares_configs_splits_and_features(built):
    out, report = built
    text = (out / "README.md").read_text()
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["configs"] == [
        {
            "config_name": "default",
            "description": f"RoboReward data, content fingerprint {DatasetFolder(out).content_fingerprint()}",
            "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in SPLITS],
        }
    ]
    features = {f["name"]: f for f in meta["dataset_info"]["features"]}
    # Video(decode=False): a row's video is {"bytes", "path"}, read without torchcodec
    assert features["video"]["dtype"] == {"video": {"decode": False}}
    assert features["reward"]["dtype"] == "int8"
    assert {
        "task",
        "progress",
        "source",
        "episode_id",
        "camera",
        "original_task",
        "augmentation",
        "id",
    } <= set(features)
    splits = {s["name"]: s["num_examples"] for s in meta["dataset_info"]["splits"]}
    assert splits == {s: report["rows"][s]["rows"] for s in SPLITS}
    assert "robotics" in meta["tags"] and meta["size_categories"] == ["n<1K"]
    assert "| roboarena |" in text and "RoboReward" in text
    from huggingface_hub import DatasetCard

    assert DatasetCard.load(out / "README.md").data.pretty_name == "RoboReward"


def test_same_inputs_and_seed_give_identical_output(built, corpus, tmp_path):
    out, _ = built
    again = tmp_path / "again"
    build(_config(corpus, again, num_proc=2))
    assert_same_rows(_rows(again), _rows(out))  # num_proc 2 vs 1 too
    other = tmp_path / "other"
    build(_config(corpus, other, seed=1))
    assert {r["id"] for r in _rows(other)["test"]} != {r["id"] for r in _rows(out)["test"]}


def test_oxe_is_sampled_uniformly_to_the_total(corpus, tmp_path):
    report = build(_config(corpus, tmp_path / "o", roboarena=[], manifest=[], oxe_episodes=6))
    rows = [r for split_rows in _rows(tmp_path / "o").values() for r in split_rows]
    # 3 of toto's 6 indices (some may be its broken ones) and 3 of viola's 5
    chosen = Counter(r["source"] for r in rows) + Counter(s["source"] for s in report["skipped"])
    assert chosen == {"oxe/toto": 3, "oxe/viola": 3}
    again = build(_config(corpus, tmp_path / "o2", roboarena=[], manifest=[], oxe_episodes=6))
    assert again["rows"] == report["rows"] and again["skipped"] == report["skipped"]


def test_an_unusable_source_fails_before_any_work(corpus, tmp_path):
    broken = tmp_path / "broken_lerobot"
    broken.mkdir()
    (broken / "meta").mkdir()
    (broken / "meta" / "info.json").write_text("{not json")
    out = tmp_path / "out"
    with pytest.raises(SourceError, match=r"info\.json"):
        build(_config(corpus, out, lerobot=[str(corpus["toto"]), str(broken)]))
    assert not out.exists()


def test_cli_build_prints_a_summary_and_json(corpus, tmp_path, capsys):
    out = tmp_path / "cli_out"
    code = cli_main(
        ["build", "--manifest", str(corpus["manifest"]), "--out", str(out), "--max-frames", "4", "--json"]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["totals"] == {"rows": 2, "skipped": 2}
    assert sorted(r["rows"] for r in report["rows"].values()) == [0, 1, 1]
    code = cli_main(["build", "--manifest", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "x")])
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("roboreward build: error:") and "nope.jsonl" in err and "\n" not in err


_CHILD = """
import sys
from roboreward.dataset.builder import BuildConfig, build
build(BuildConfig(manifest=[sys.argv[1]], out=sys.argv[2], max_side=64, max_frames=8, preset="medium",
                  split_ratios={"train": 0.5, "validation": 0.25, "test": 0.25}))
"""


@pytest.mark.slow
def test_a_killed_build_resumes_to_the_same_rows(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rows = []
    for i in range(40):
        # 40 different files: the encoded-video cache is keyed by a file's bytes, so copies share one entry.
        write_video(data / f"ep{i}.mp4", num_frames=20 + i, fps=10, size=(128, 96))
        rows.append({"video": f"ep{i}.mp4", "task": f"move the block to spot {i}", "reward": 1 + i % 5})
    manifest = data / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))

    killed = tmp_path / "killed"
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(manifest), str(killed)])
    cache = killed / ".build" / "videos"
    deadline = time.time() + 120
    while time.time() < deadline and child.poll() is None:
        if cache.exists() and len(list(cache.glob("*.mp4"))) >= 10:
            break
        time.sleep(0.05)
    assert child.poll() is None, "the build finished before it could be killed"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    encoded_before = len(list(cache.glob("*.mp4")))
    assert 10 <= encoded_before < 40
    assert not (killed / "build_report.json").exists()

    subprocess.run([sys.executable, "-c", _CHILD, str(manifest), str(killed)], check=True)
    clean = tmp_path / "clean"
    subprocess.run([sys.executable, "-c", _CHILD, str(manifest), str(clean)], check=True)
    resumed_rows, clean_rows = _rows(killed), _rows(clean)
    assert sum(len(r) for r in resumed_rows.values()) == 40
    assert_same_rows(resumed_rows, clean_rows)
    assert not list(cache.glob(".*"))  # no half-written video left in the cache


def test_roboarena_progress_unit_is_decided_once_per_dump_and_reported(tmp_path, capsys):
    # A percent dump whose 1 and 0.5 are 1 % and 0.5 % (read per value they were rewards 5 and 3).
    dump = write_roboarena_dump(
        tmp_path / "DataDump",
        [
            session("s1", "open the drawer", {"A": policy("pi0", 1), "B": policy("pi0_fast", 0.5)}),
            session("s2", "close the drawer", {"A": policy("pi0", 80), "B": policy("pi0_fast", 100)}),
        ],
    )
    out = tmp_path / "auto"
    argv = ["build", "--roboarena", str(dump), "--max-side", "32", "--max-frames", "4", "--crf", "30"]
    assert cli_main([*argv, "--out", str(out)]) == 0
    assert f"RoboArena {dump}: partial_success read as percent (auto: 2 of 4 values above 1)" in (
        capsys.readouterr().out
    )
    rows = [r for split in _rows(out).values() for r in split]
    assert {r["episode_id"]: (r["reward"], r["progress"]) for r in rows} == {
        "s1/A": (2, pytest.approx(0.01)),
        "s1/B": (2, pytest.approx(0.005)),
        "s2/A": (4, pytest.approx(0.8)),
        "s2/B": (5, pytest.approx(1.0)),
    }
    report = json.loads((out / "build_report.json").read_text())
    assert report["config"]["roboarena_progress_unit"] == "auto"
    assert report["roboarena_progress_units"] == [
        {"dump": str(dump), "unit": "percent", "asked": "auto", "values": 4, "above_1": 2, "max": 100.0}
    ]

    # Said to be fractions, the dump contradicts itself: refused before any work, naming the file.
    refused = tmp_path / "fraction"
    assert cli_main([*argv, "--out", str(refused), "--roboarena-progress-unit", "fraction"]) == 1
    err = capsys.readouterr().err
    assert "mixes progress units" in err and "partial_success 80" in err
    assert str(dump / "evaluation_sessions" / "s2" / "metadata.yaml") in err
    assert not refused.exists()
    with pytest.raises(SourceError, match="mixes progress units"):
        build(BuildConfig(roboarena=[str(dump)], out=str(refused), roboarena_progress_unit="fraction"))
