"""`roboreward build` at the edges: builds that explain every skip, lock their output, reproduce
byte for byte, publish no local path, and are never read back from a stale datasets cache."""

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import write_video
from lerobot_fixtures import write_lerobot_v21

from roboreward.cli import main as cli_main
from roboreward.dataset.builder import BuildConfig, build

RATIOS = {"train": 0.5, "validation": 0.25, "test": 0.25}
TOTO = [("pick up the red block", 8), ("open the top drawer", 9), ("close the microwave", 8)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    """A LeRobot dataset with two unreadable entries, one whose template escapes its folder, a manifest."""
    root = tmp_path_factory.mktemp("hardening")
    toto = write_lerobot_v21(root / "toto", TOTO)
    with (toto / "meta" / "episodes.jsonl").open("a") as f:  # lines 4 and 5
        f.write('{"tasks": ["wipe the table"], "length": 8}\n{"episode_ind\n')
    outside = write_lerobot_v21(root / "outside", [("stack the cups", 8)])
    info_path = outside / "meta" / "info.json"
    info = json.loads(info_path.read_text())
    info["video_path"] = "../toto/" + info["video_path"]  # resolves into the toto dataset
    info_path.write_text(json.dumps(info))
    mine = root / "mine"
    mine.mkdir()
    rows = []
    for index in range(4):
        # big enough for x264 to use several threads when it may (tiny frames get one)
        write_video(mine / f"e{index}.mp4", num_frames=8 + index, fps=10, size=(256, 192))
        task = "wipe the \x1b[1mtable\x1b[0m\x00" if index == 0 else f"wipe the table {index}"
        rows.append({"video": f"e{index}.mp4", "task": task, "reward": 1 + index, "episode_id": f"e{index}"})
    manifest = mine / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"root": root, "toto": toto, "outside": outside, "manifest": manifest}


def _config(corpus, out: Path, **changes) -> BuildConfig:
    settings = dict(
        lerobot=[str(corpus["toto"]), str(corpus["outside"])],
        manifest=[str(corpus["manifest"])],
        out=str(out),
        split_ratios=RATIOS,
        max_side=256,
        max_frames=6,
    )
    return BuildConfig(**{**settings, **changes})


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("built") / "roboreward"
    report = build(_config(corpus, out))
    return {"out": out, "report": report}


def _rows(out: Path) -> list[dict]:
    return [
        row for path in sorted((out / "data").glob("*.parquet")) for row in pq.read_table(path).to_pylist()
    ]


def test_every_unreadable_or_escaping_lerobot_entry_is_in_the_report(built):
    report = json.loads((built["out"] / "build_report.json").read_text())
    skipped = {(s["source"], s["episode_id"]): s["reason"] for s in report["skipped"]}
    assert skipped[("oxe/toto", "meta/episodes.jsonl line 4")] == (
        "no integer episode_index in meta/episodes.jsonl line 4"
    )
    assert skipped[("oxe/toto", "meta/episodes.jsonl line 5")].startswith(
        "not valid JSON in meta/episodes.jsonl line 5"
    )
    assert skipped[("oxe/outside", "0")] == (
        "video path ../toto/videos/chunk-000/observation.images.image/episode_000000.mp4 escapes the "
        "dataset folder (video_path template, meta/episodes.jsonl line 1)"
    )
    assert report["totals"] == {"rows": 7, "skipped": 3}
    assert {r["source"] for r in _rows(built["out"])} == {"oxe/toto", "manifest/manifest"}


def test_no_row_holds_an_absolute_path_of_the_build_machine(built, corpus):
    rows = _rows(built["out"])
    for row in rows:
        row["video"] = row["video"]["path"]
    text = json.dumps(rows)
    assert str(corpus["root"]) not in text and str(corpus["root"].resolve()) not in text
    assert str(Path.home()) not in text and '"/' not in text
    provenance = {r["source"]: json.loads(r["provenance"]) for r in rows}
    assert provenance["oxe/toto"] == {"dataset": "toto", "codebase_version": "v2.1", "fps": 10}
    assert provenance["manifest/manifest"]["manifest"] == "manifest.jsonl"


def test_control_characters_are_removed_from_task_text(built):
    tasks = {r["episode_id"]: (r["task"], r["original_task"]) for r in _rows(built["out"])}
    assert tasks["e0"] == ("wipe the table", "wipe the table")


_ONE_CORE_BUILD = """
import json, os, sys
cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
if len(cpus) > 1:  # as on a machine with one core: x264 would pick another thread count
    os.sched_setaffinity(0, {min(cpus)})
from roboreward.dataset.builder import BuildConfig, build
build(BuildConfig(**json.loads(sys.argv[1])))
"""


def test_num_proc_and_cores_do_not_change_a_byte_of_the_parquet_files(built, corpus, tmp_path):
    two_procs, one_core = tmp_path / "two_procs", tmp_path / "one_core"
    build(_config(corpus, two_procs, num_proc=2))
    # (one process there: a process pool forked on one busy core can deadlock in tqdm's lock)
    settings = json.dumps(dataclasses.asdict(_config(corpus, one_core)))
    subprocess.run([sys.executable, "-c", _ONE_CORE_BUILD, settings], check=True, timeout=600)
    names = sorted(p.name for p in (built["out"] / "data").glob("*.parquet"))
    assert len(names) == 3
    for other in (two_procs, one_core):
        assert sorted(p.name for p in (other / "data").glob("*.parquet")) == names
        for name in names:
            assert (other / "data" / name).read_bytes() == (built["out"] / "data" / name).read_bytes(), name


def test_a_build_of_only_bad_entries_exits_non_zero_prints_each_reason_and_writes_a_report(tmp_path, capsys):
    data = tmp_path / "bad"
    data.mkdir()
    (data / "notes.mp4").write_text("not a video\n")
    rows = [
        {"video": "missing.mp4", "task": "wipe the table", "reward": 5, "episode_id": "m"},
        {"video": "notes.mp4", "task": "\x00\x1b[2J", "reward": 5, "episode_id": "t"},
        {"video": "notes.mp4", "task": "wipe the table", "reward": 9, "episode_id": "r"},
    ]
    (data / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    assert cli_main(["build", "--manifest", str(data / "m.jsonl"), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "no usable episode in the sources (3 skipped)" in err
    report = json.loads((out / "build_report.json").read_text())
    assert report["totals"] == {"rows": 0, "skipped": 3} and len(report["skipped"]) == 3
    for skip in report["skipped"]:
        assert skip["reason"] in err  # each reason printed (three kinds, so each is an example)
    assert str(out / "build_report.json") in err

    # every entry readable, but no video decodes: the same, once the encoder has skipped them all
    (data / "v.jsonl").write_text(json.dumps({"video": "notes.mp4", "task": "wipe", "reward": 5}) + "\n")
    assert cli_main(["build", "--manifest", str(data / "v.jsonl"), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    report = json.loads((out / "build_report.json").read_text())
    assert (
        report["totals"] == {"rows": 0, "skipped": 1}
        and "cannot decode video" in report["skipped"][0]["reason"]
    )
    assert report["skipped"][0]["reason"] in err


_HOLDER = """
import sys, time
from roboreward.dataset.lock import output_lock
with output_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_build_on_a_locked_folder_fails_at_once_naming_the_lock(corpus, tmp_path, capsys):
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        assert cli_main(["build", "--manifest", str(corpus["manifest"]), "--out", str(out)]) == 1
        waited = time.monotonic() - started
        err = capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    assert f"holds the lock {out / '.build' / 'build.lock'}" in err
    assert f"pid {holder.pid} on " in err
    assert waited < 10  # at once, not after the first build (which would never end here)
    assert not (out / "data").exists()
    report = build(_config(corpus, out, lerobot=[]))  # the holder is gone: the lock is free again
    assert report["totals"]["rows"] == 4


_READER = """
import json, sys
import datasets
from roboreward.dataset.fingerprint import load_dataset

folder, entry_points = sys.argv[1], sys.argv[2] == "all"
tasks = {"user": sorted(datasets.load_dataset(folder, split="train")["task"])}
if entry_points:  # the toolkit's loaders: bench's examples and sft.py's splits
    from roboreward.bench.run import load_examples
    from roboreward.training.trainer import RewardScriptArguments, load_reward_splits

    tasks["bench"] = sorted(e.task for e in load_examples(folder, split="train"))
    tasks["sft"] = sorted(load_reward_splits(RewardScriptArguments(dataset_name=folder))[0]["task"])
else:  # (fills the cache the toolkit's loaders read, without importing torch)
    tasks["toolkit"] = sorted(load_dataset(folder, split="train")["task"])
print(json.dumps(tasks))
"""


@pytest.mark.slow
def test_a_rebuild_in_place_is_read_afresh_by_load_dataset_bench_and_sft(tmp_path):
    data = tmp_path / "mine"
    data.mkdir()
    rows = [{"video": f"e{i}.mp4", "reward": 1 + i, "episode_id": f"e{i}"} for i in range(2)]
    for row in rows:
        write_video(data / row["video"], num_frames=6, fps=10)
    manifest = data / "m.jsonl"
    out = tmp_path / "roboreward"
    ratios = {"train": 1.0, "validation": 1.0, "test": 0.0}  # one group in each
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_DATASETS_OFFLINE": "1"}

    def rebuild_and_read(task: str, entry_points: str) -> dict:
        for index, row in enumerate(rows):  # one row lands in train, the other in validation
            row["task"] = f"{task} {index}"
        manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
        build(BuildConfig(manifest=[str(manifest)], out=str(out), split_ratios=ratios, max_frames=4))
        result = subprocess.run(
            [sys.executable, "-c", _READER, str(out), entry_points],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    first = rebuild_and_read("open the drawer", "cache")
    assert first["user"] == first["toolkit"] and [t[:-2] for t in first["user"]] == ["open the drawer"]
    # the same length: the same split sizes, so the card's split metadata does not change
    second = rebuild_and_read("shut the drawer", "all")
    assert second["user"] == second["bench"] == second["sft"] == [f"shut{first['user'][0][4:]}"]


_BUSY = "while True: pass"

_BUILD_IN_CHILD = """
import json, sys
from roboreward.dataset.builder import BuildConfig, build
build(BuildConfig(**json.loads(sys.argv[1])))
"""


def _moving_block_manifest(root: Path, count: int) -> Path:
    """``count`` rollouts of a red block crossing a textured table (320x240, 60 frames at 15 fps)."""
    import av
    import numpy as np

    root.mkdir(parents=True, exist_ok=True)
    base = np.random.default_rng(0).integers(60, 200, (240, 320, 3), dtype=np.uint8)
    rows = []
    for index in range(count):
        with av.open(str(root / f"r{index}.mp4"), "w") as container:
            stream = container.add_stream("libx264", rate=15, options={"preset": "ultrafast"})
            stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
            for t in range(60):
                frame = base.copy()
                x = (index * 7 + t * 4) % 280
                frame[100:140, x : x + 40] = (230, 40, 40)
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        rows.append({"video": f"r{index}.mp4", "task": f"push the block {index}", "reward": 1 + index % 5})
    manifest = root / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


@pytest.mark.slow
def test_two_builds_of_one_manifest_on_busy_cores_write_the_same_bytes(tmp_path):
    # With x264's macroblock tree on, 4 to 7 of 48 such videos (224x168 after resizing) differed
    # between two builds on busy cores: x264 read memory it never wrote. The second build runs in
    # another process, with 2 workers and every fresh allocation filled with 0x55.
    manifest = _moving_block_manifest(tmp_path / "data", 48)
    settings = dict(manifest=[str(manifest)], split_ratios=RATIOS, max_side=224, max_frames=32)
    busy = [subprocess.Popen([sys.executable, "-c", _BUSY]) for _ in range(2)]  # both cores
    try:
        first = tmp_path / "first"
        build(BuildConfig(out=str(first), **settings))
        second = tmp_path / "second"
        env = {**os.environ, "GLIBC_TUNABLES": "glibc.malloc.perturb=85"}
        child = json.dumps({"out": str(second), "num_proc": 2, **settings})
        subprocess.run([sys.executable, "-c", _BUILD_IN_CHILD, child], env=env, check=True, timeout=600)
    finally:
        for process in busy:
            process.kill()
            process.wait()
    names = sorted(p.name for p in (first / "data").glob("*.parquet"))
    assert names and sorted(p.name for p in (second / "data").glob("*.parquet")) == names
    rows = sum(pq.read_metadata(first / "data" / name).num_rows for name in names)
    assert rows == 48
    for name in names:
        assert (second / "data" / name).read_bytes() == (first / "data" / name).read_bytes(), name
