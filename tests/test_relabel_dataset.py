"""Relabeling whole datasets: `roboreward build --relabel`, `roboreward relabel IN_DIR --out OUT_DIR`,
split groups, and a run killed with SIGKILL that resumes to the rows of an uninterrupted one."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import write_manifest, write_video

from roboreward import video
from roboreward.cli import main
from roboreward.dataset.builder import SPLITS, BuildConfig, build

TESTS = Path(__file__).resolve().parent
SCRIPTED = "scripted:relabel_scripts:answers"


def _rows(folder):
    """Split -> rows of a built folder's Parquet shards."""
    return {
        split: [
            r
            for f in sorted((folder / "data").glob(f"{split}-*.parquet"))
            for r in pq.read_table(f).to_pylist()
        ]
        for split in SPLITS
    }


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """Eight rollouts of 1.0 to 1.7 s: six successes (reward 5), two failures (reward 2)."""
    root = tmp_path_factory.mktemp("relabel_manifest")
    for i in range(8):  # different lengths, so that no two rollouts share a video (or cached checks)
        write_video(root / f"ep{i}.mp4", num_frames=10 + i, fps=10)
    rows = [
        {"video": f"ep{i}.mp4", "task": f"put the red block in bowl {i}", "reward": 5 if i < 6 else 2}
        for i in range(8)
    ]
    return write_manifest(root, rows, num_frames=12)


@pytest.fixture(scope="module")
def built(manifest, tmp_path_factory):
    """`manifest` built without relabeling: 6 train rows, 2 test rows."""
    out = tmp_path_factory.mktemp("relabel_source") / "ds"
    build(
        BuildConfig(
            manifest=[str(manifest)],
            out=str(out),
            split_ratios={"train": 0.75, "test": 0.25},
            max_side=32,
            max_frames=4,
        )
    )
    return out


def test_build_with_relabel_keeps_each_rollout_in_one_split(manifest, tmp_path, capsys):
    recipe = tmp_path / "relabel.yaml"
    recipe.write_text(
        f"relabel:\n  vlm: {SCRIPTED}\n  llm: {SCRIPTED}\n"
        "  stages: [counterfactual, paraphrase, temporal_clip]\n  clip_fractions: [0.5]\n"
    )
    out = tmp_path / "ds"
    code = main(
        [
            "build",
            "--manifest",
            str(manifest),
            "--relabel",
            str(recipe),
            "--split-ratios",
            "train=0.5,validation=0.25,test=0.25",
            "--max-side",
            "32",
            "--max-frames",
            "4",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    rows = _rows(out)
    split_of = {}
    for split, split_rows in rows.items():
        for r in split_rows:
            assert split_of.setdefault(r["group"], split) == split, f"group {r['group']} is in two splits"
    test_groups = {r["group"] for r in rows["test"]}
    assert test_groups and not test_groups & {r["group"] for r in rows["train"]}
    assert sorted(Counter(split_of.values()).items()) == [("test", 2), ("train", 4), ("validation", 2)]

    by_group = defaultdict(list)
    for r in (r for split_rows in rows.values() for r in split_rows):
        by_group[r["group"]].append(r)
    successes = [
        g
        for g, items in by_group.items()
        if any(r["reward"] == 5 and r["augmentation"] == "original" for r in items)
    ]
    assert len(successes) == 6
    for group in successes:
        items = by_group[group]
        original = next(r for r in items if r["augmentation"] == "original")
        counterfactual = sorted(
            (r for r in items if r["augmentation"] == "counterfactual"), key=lambda r: r["reward"]
        )
        assert [r["reward"] for r in counterfactual] == [1, 2, 3, 4]
        for r in counterfactual:  # the same video, another instruction
            assert (
                r["video"]["bytes"] == original["video"]["bytes"]
                and r["episode_id"] == original["episode_id"]
            )
            assert r["original_task"] == original["task"] and r["task"] != original["task"]
            assert json.loads(r["provenance"])["counterfactual"]["level"] == r["reward"]
        (clip,) = [r for r in items if r["augmentation"] == "temporal_clip"]
        assert clip["reward"] == 3 and json.loads(clip["provenance"])["temporal_clip"]["fraction"] == 0.5
        assert video.probe(clip["video"]["bytes"]).duration == pytest.approx(
            video.probe(original["video"]["bytes"]).duration / 2, abs=0.15
        )
        assert sorted(r["reward"] for r in items if r["augmentation"] == "paraphrase") == [5, 5]
    for group in set(by_group) - set(successes):  # failures get paraphrases only
        assert sorted((r["augmentation"], r["reward"]) for r in by_group[group]) == [
            ("original", 2),
            ("paraphrase", 2),
            ("paraphrase", 2),
        ]
    assert report["relabel"]["rows"] == {"input": 8, "output": 8 + 46, "added": 46, "passed_through": 0}
    assert report["totals"]["rows"] == 54
    assert json.loads((out / "relabel_report.json").read_text()) == report["relabel"]
    assert "| counterfactual |" in (out / "README.md").read_text()


def test_relabel_a_built_folder_keeps_splits_and_encoding(built, tmp_path, capsys):
    out = tmp_path / "relabeled"
    args = ["relabel", str(built), "--out", str(out), "--vlm", SCRIPTED, "--llm", SCRIPTED]
    code = main(
        [*args, "--stages", "rewrite,counterfactual,temporal_clip", "--clip-fractions", "0.5", "--json"]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    before, after = _rows(built), _rows(out)
    split_of = {r["group"]: split for split, rows in before.items() for r in rows}
    assert {(r["group"], split) for split, rows in after.items() for r in rows} == set(split_of.items())
    assert [len(after[s]) for s in SPLITS] == [
        sum(1 + 5 * (r["reward"] == 5) for r in before[s]) for s in SPLITS
    ]  # each success: itself, four counterfactuals, one clip
    rewritten = [r for rows in after.values() for r in rows if r["augmentation"] == "rewrite"]
    assert len(rewritten) == 8 and all(
        r["task"] == r["original_task"][0].upper() + r["original_task"][1:] + "." for r in rewritten
    )
    assert report["by_augmentation"] == {"counterfactual": 24, "rewrite": 8, "temporal_clip": 6}
    assert json.loads((out / "relabel_report.json").read_text()) == report
    settings = json.loads((out / "build_report.json").read_text())["config"]
    assert (settings["max_side"], settings["max_frames"]) == (32, 4)  # kept from the input's build
    assert (out / "README.md").exists() and len(list((out / ".build" / "source_videos").glob("*.mp4"))) == 8


def test_relabel_refuses_bad_input_with_one_line(built, tmp_path, capsys):
    assert main(["relabel", str(tmp_path), "--out", str(tmp_path / "o"), "--llm", SCRIPTED]) == 1
    assert "has no data/ folder" in capsys.readouterr().err
    assert main(["relabel", str(built), "--out", str(built), "--llm", SCRIPTED, "--vlm", SCRIPTED]) == 1
    assert "must differ from the input folder" in capsys.readouterr().err
    assert main(["relabel", str(built), "--out", str(tmp_path / "o"), "--clip-fractions", "a,b"]) == 1
    assert "--clip-fractions wants comma-separated fractions" in capsys.readouterr().err


_CHILD_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}


def _relabel_command(in_dir, out_dir):
    return [
        sys.executable,
        "-m",
        "roboreward.cli",
        "relabel",
        str(in_dir),
        "--out",
        str(out_dir),
        "--vlm",
        "scripted:relabel_scripts:slow",
        "--llm",
        "scripted:relabel_scripts:slow",
        "--stages",
        "rewrite,counterfactual,paraphrase",
        "--workers",
        "2",
        "--json",
    ]


@pytest.mark.slow
def test_a_relabel_killed_with_sigkill_resumes_to_the_same_rows(built, tmp_path):
    killed = tmp_path / "killed"
    child = subprocess.Popen(
        _relabel_command(built, killed), env=_CHILD_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    cache = killed / ".build" / "relabel_cache"
    deadline = time.time() + 120
    while time.time() < deadline and child.poll() is None:
        if cache.exists() and len(list(cache.glob("*/*.json"))) >= 12:
            break
        time.sleep(0.05)
    assert child.poll() is None, "the relabel run finished before it could be killed"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    cached_before = len(list(cache.glob("*/*.json")))
    assert not (killed / "relabel_report.json").exists() and 12 <= cached_before < 64

    resumed = subprocess.run(
        _relabel_command(built, killed), env=_CHILD_ENV, check=True, capture_output=True, text=True
    )
    clean = tmp_path / "clean"
    fresh = subprocess.run(
        _relabel_command(built, clean), env=_CHILD_ENV, check=True, capture_output=True, text=True
    )

    def table(folder):
        return sorted(
            (
                split,
                r["id"],
                r["task"],
                r["reward"],
                r["augmentation"],
                r["group"],
                r["original_task"],
                r["provenance"],
            )
            for split, rows in _rows(folder).items()
            for r in rows
        )

    assert table(killed) == table(clean)
    assert len(table(clean)) == 8 + 6 * 4 + 8 * 2
    stages_resumed = json.loads(resumed.stdout)["stages"]
    stages_fresh = json.loads(fresh.stdout)["stages"]
    calls = sum(s["calls"] for s in stages_fresh.values())
    assert calls == 6 * 10 + 2 * 2  # per success: rewrite, scene, 2 ladders, 5 checks, paraphrase
    assert sum(s["cache_hits"] for s in stages_resumed.values()) >= cached_before - 2  # two were in flight
    assert sum(s["calls"] + s["cache_hits"] for s in stages_resumed.values()) == calls


def test_relabeling_copies_the_encoded_videos_through_byte_for_byte(built, tmp_path, capsys):
    out = tmp_path / "relabeled"
    args = ["relabel", str(built), "--out", str(out), "--vlm", SCRIPTED, "--llm", SCRIPTED]
    assert main([*args, "--stages", "counterfactual,temporal_clip", "--clip-fractions", "0.5", "--json"]) == 0
    capsys.readouterr()
    before = {r["id"]: r for rows in _rows(built).values() for r in rows}
    after = [r for rows in _rows(out).values() for r in rows]
    originals = {r["id"]: r for r in after if r["augmentation"] == "original"}
    assert originals.keys() == before.keys()
    for row_id, row in originals.items():  # no second encoding: not one byte changed
        assert row["video"]["bytes"] == before[row_id]["video"]["bytes"], row_id
    video_of_group = {r["group"]: r["video"]["bytes"] for r in before.values()}
    counterfactuals = [r for r in after if r["augmentation"] == "counterfactual"]
    clips = [r for r in after if r["augmentation"] == "temporal_clip"]
    assert len(counterfactuals) == 24 and len(clips) == 6
    assert all(r["video"]["bytes"] == video_of_group[r["group"]] for r in counterfactuals)
    for clip in clips:  # only the new clips are encoded
        whole = video.probe(video_of_group[clip["group"]])
        assert video.probe(clip["video"]["bytes"]).duration < whole.duration


def test_relabeling_with_other_encoding_settings_encodes_every_video_again(built, tmp_path):
    from roboreward.dataset.pipeline import relabel_dataset
    from roboreward.relabel import RelabelConfig

    out = tmp_path / "smaller"
    config = RelabelConfig(vlm=SCRIPTED, llm=SCRIPTED, stages=["paraphrase"])
    report = relabel_dataset(built, out, config, progress=False, max_side=16)
    assert report["config"]["max_side"] == 16
    before = {r["id"]: r for rows in _rows(built).values() for r in rows}
    originals = [r for rows in _rows(out).values() for r in rows if r["augmentation"] == "original"]
    assert len(originals) == len(before) == 8
    for row in originals:
        assert row["video"]["bytes"] != before[row["id"]]["video"]["bytes"]
        info = video.probe(row["video"]["bytes"])
        assert max(info.width, info.height) <= 16
