"""A build never loses what a folder held: it refuses folders it did not write, and a failed, empty or
killed rebuild leaves the earlier dataset whole (written beside, swapped in when complete)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest
from conftest import write_manifest

from roboreward.cli import main
from roboreward.dataset.builder import BuildConfig, build
from roboreward.dataset.folder import DatasetFolder

TESTS = Path(__file__).parent
ROWS = [{"video": f"ep{i}.mp4", "task": f"push the cube {i}", "reward": 1 + i % 5} for i in range(6)]


def _config(manifest: Path, out: Path) -> BuildConfig:
    return BuildConfig(
        manifest=[str(manifest)], out=str(out), split_ratios={"train": 0.5, "test": 0.5}, max_side=32
    )


def _snapshot(out: Path) -> dict[str, bytes]:
    """The published files (data/, the card, the reports), as bytes."""
    names = [p for p in out.rglob("*") if p.is_file() and ".build" not in p.relative_to(out).parts]
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(names)}


@pytest.fixture
def good(tmp_path):
    manifest = write_manifest(tmp_path / "src", ROWS, num_frames=6)
    out = tmp_path / "ds"
    build(_config(manifest, out))
    return manifest, out


def test_an_unrelated_folder_is_refused_and_left_untouched(tmp_path, capsys):
    manifest = write_manifest(tmp_path / "src", ROWS, num_frames=6)
    mine = tmp_path / "mine"
    (mine / "data").mkdir(parents=True)
    (mine / "README.md").write_text("my notes\n")
    (mine / "data" / "train-mine.parquet").write_bytes(b"mine")
    before = _snapshot(mine)
    code = main(["build", "--manifest", str(manifest), "--out", str(mine), "--max-side", "32"])
    err = capsys.readouterr().err
    assert (
        code == 1
        and "is not empty (README.md, data) and is not a dataset folder written by roboreward" in err
    )
    assert _snapshot(mine) == before and not (mine / ".build").exists()
    assert main(["build", "--manifest", str(manifest), "--out", "/", "--max-side", "32"]) == 1
    assert "--out / is not empty" in capsys.readouterr().err and not Path("/.build").exists()


def test_a_build_with_nothing_usable_keeps_the_earlier_dataset_and_its_report(good, tmp_path):
    manifest, out = good
    before = _snapshot(out)
    for row in ROWS:  # every video corrupt now
        (manifest.parent / row["video"]).write_bytes(b"not a video")
    with pytest.raises(
        ValueError, match=r"(?s)no usable episode .* listed in .*\.build/failed_build_report\.json"
    ):
        build(_config(manifest, out))
    assert _snapshot(out) == before
    assert json.loads((out / ".build" / "failed_build_report.json").read_text())["totals"]["rows"] == 0
    assert (
        len(datasets.load_dataset(str(out), split="train"))
        + len(datasets.load_dataset(str(out), split="test"))
        == 6
    )


_SLOW_REBUILD = """
import sys, time
sys.path.insert(0, {tests!r})
from roboreward.dataset import folder
original = folder.DatasetFolder.write_shards
def slow(self, split, parts):
    names = original(self, split, parts)
    print("wrote", split, flush=True)
    time.sleep({pause})
    return names
folder.DatasetFolder.write_shards = slow
from roboreward.dataset.builder import BuildConfig, build
ratios = {{"train": 0.5, "test": 0.5}}
build(BuildConfig(manifest=[{manifest!r}], out={out!r}, split_ratios=ratios, max_side=32, seed=1))
"""


@pytest.mark.parametrize("after", [1, 2])
def test_a_rebuild_killed_while_it_writes_leaves_the_earlier_dataset_loadable(good, after):
    manifest, out = good
    before = _snapshot(out)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS.parent / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    script = _SLOW_REBUILD.format(tests=str(TESTS), manifest=str(manifest), out=str(out), pause=30)
    process = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
    written = 0
    deadline = time.monotonic() + 120
    while written < after and time.monotonic() < deadline:
        if process.stdout.readline().startswith("wrote"):
            written += 1
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert written == after
    assert _snapshot(out) == before  # the new shards are beside, in .build/next/
    rows = sum(len(datasets.load_dataset(str(out), split=s)) for s in ("train", "test"))
    assert rows == 6
    # the next build completes over it, to what an uninterrupted one writes (but the time it took)
    build(_config(manifest, out))
    after_rebuild = _snapshot(out)
    for files in (before, after_rebuild):
        report = json.loads(files.pop("build_report.json"))
        assert report.pop("seconds") >= 0 and report["totals"]["rows"] == 6
    assert after_rebuild == before and not (out / ".build" / "next").exists()


def test_a_swap_killed_half_way_is_completed_by_the_next_run(good):
    _, out = good
    folder = DatasetFolder(out)
    staging = folder.staging
    (staging.root / "data").mkdir(parents=True)
    (staging.root / "data" / "train-00000-of-00001.parquet").write_bytes(b"new shard")
    (staging.root / "README.md").write_text("new card\n")
    journal = {"staging": ".build/next", "new": ["data", "README.md"], "retire": ["relabel_report.json"]}
    (out / "relabel_report.json").write_text("{}")
    (out / ".build" / "publish.json").write_text(json.dumps(journal))
    os.replace(staging.root / "README.md", out / "README.md")  # the run was killed after this rename
    folder.complete_publish()
    assert (out / "README.md").read_text() == "new card\n"
    assert sorted(p.name for p in (out / "data").iterdir()) == ["train-00000-of-00001.parquet"]
    assert (out / "data" / "train-00000-of-00001.parquet").read_bytes() == b"new shard"
    assert not (out / "relabel_report.json").exists() and not (out / ".build" / "publish.json").exists()
    assert not staging.root.exists() and not (out / ".build" / "prev").exists()
