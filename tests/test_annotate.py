"""`roboreward annotate`: every episode of a LeRobot dataset scored, resumable, and a filtered copy."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import frame_index_of
from lerobot_fixtures import SCENE_CAMERA, write_lerobot_v21, write_lerobot_v30

from roboreward import video
from roboreward.apps.annotate import ANNOTATIONS, AnnotateConfig, annotate_lerobot
from roboreward.cli import main
from roboreward.episode import Episode
from roboreward.models.local import RewardModel
from roboreward.sources import SourceError
from roboreward.sources.lerobot import filter as filter_module
from roboreward.sources.lerobot.filter import filter_lerobot
from roboreward.sources.lerobot.reader import LeRobotSource

EPISODES = (
    ("pick up the red block", 8),
    ("open the top drawer", 10),
    ("put the sponge in the sink", 7),
    ("pick up the red block", 9),
    ("", 6),  # no task: reported, not fatal
    ("close the lid", 5),
)
TESTS = Path(__file__).parent


@pytest.fixture(scope="module")
def model(tiny_vlm_dir):
    return RewardModel.from_pretrained(tiny_vlm_dir, num_frames=4)


@pytest.fixture(scope="module")
def v30(tmp_path_factory):
    root = tmp_path_factory.mktemp("v30") / "toto_lerobot"
    return write_lerobot_v30(root, EPISODES, codec="libx264", episodes_per_file=2)


def _rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def test_v30_annotations_equal_score_of_each_segment(v30, model, tiny_vlm_dir, tmp_path):
    out = tmp_path / "ann"
    report = annotate_lerobot(
        AnnotateConfig(lerobot=str(v30), model=str(tiny_vlm_dir), out=str(out), batch_size=2, curve_points=2),
        model=model,
        progress=False,
    )
    rows = _rows(out / ANNOTATIONS)
    assert [r["episode_index"] for r in rows] == [0, 1, 2, 3, 5]
    episodes = {int(e.episode_id): e for e in LeRobotSource(v30).episodes() if isinstance(e, Episode)}
    for row in rows:
        ep = episodes[row["episode_index"]]
        assert ep.video_start is not None and ep.camera == SCENE_CAMERA  # a segment of the scene camera
        alone = model.score(ep.video, ep.task, start=ep.video_start, end=ep.video_end)
        assert row["probs"] == pytest.approx(list(alone.probs), abs=1e-6)
        assert row["score"] == alone.score and row["expected"] == pytest.approx(alone.expected, abs=1e-6)
        assert row["reward"] == pytest.approx(alone.reward, abs=1e-6)
        assert (
            row["task"] == ep.task
            and row["prompt"] == model.settings.prompt
            and row["model"] == tiny_vlm_dir.name
        )
        assert len(row["curve"]) == 2 and row["curve"][-1] == pytest.approx(alone.expected, abs=1e-6)
    assert report["scored"] == 5 and report["episodes"] == 6
    assert [e["episode"] for e in report["left_out"]] == ["4"] and "task" in report["left_out"][0]["reason"]
    assert sum(report["score_counts"].values()) == 5
    assert (out / "score_histogram.png").read_bytes()[:4] == b"\x89PNG"


_SLOW_RUN = """
import sys, time
sys.path.insert(0, {tests!r})
from roboreward.models import local as scoring
original = scoring.RewardModel.score_batch
def slow(self, *args, **kwargs):
    result = original(self, *args, **kwargs)
    time.sleep(1.5)
    return result
scoring.RewardModel.score_batch = slow
from roboreward.cli import main
main({argv!r})
"""


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_file(v30, tiny_vlm_dir, tmp_path, monkeypatch):
    argv = ["annotate", "--lerobot", str(v30), "--model", str(tiny_vlm_dir), "--batch-size", "2"]
    argv += ["--device", "cpu"]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert main([*argv, "--out", str(whole)]) == 0
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS.parent / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    script = _SLOW_RUN.format(tests=str(TESTS), argv=[*argv, "--out", str(killed)])
    process = subprocess.Popen([sys.executable, "-c", script], env=env)
    partial = killed / "annotations.partial.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (partial.is_file() and partial.read_text().count("\n") >= 2):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    lines = partial.read_text().count("\n")
    assert 2 <= lines < 5 and not (killed / ANNOTATIONS).exists()  # stopped mid-run
    scored_again = []
    original = RewardModel.score_batch

    def counting(self, videos, *args, **kwargs):
        scored_again.append(len(videos))
        return original(self, videos, *args, **kwargs)

    monkeypatch.setattr(RewardModel, "score_batch", counting)
    assert main([*argv, "--out", str(killed)]) == 0
    assert (killed / ANNOTATIONS).read_bytes() == (whole / ANNOTATIONS).read_bytes()
    assert sum(scored_again) == 5 - lines  # only the missing batches were scored again
    assert not partial.exists() and not (whole / "annotations.partial.jsonl").exists()  # done: cleaned up


def _check_copy(copy: Path, original: Path, kept: list[int]) -> None:
    info = json.loads((copy / "meta" / "info.json").read_text())
    assert info["total_episodes"] == len(kept) and info["splits"] == {"train": f"0:{len(kept)}"}
    assert info["total_frames"] == sum(EPISODES[i][1] for i in kept)
    assert info["total_tasks"] == len({EPISODES[i][0] for i in kept})
    source = LeRobotSource(copy)
    assert source.codebase_version == LeRobotSource(original).codebase_version
    episodes = [e for e in source.episodes() if isinstance(e, Episode)]
    assert [int(e.episode_id) for e in episodes] == list(range(len(kept)))
    assert [e.task for e in episodes] == [EPISODES[i][0] for i in kept]
    before = {int(e.episode_id): e for e in LeRobotSource(original).episodes() if isinstance(e, Episode)}
    for new, old in enumerate(kept):
        frames = video.sample_frames(
            episodes[new].video, start=episodes[new].video_start, end=episodes[new].video_end
        )
        assert len(frames) == EPISODES[old][1]
        ref = video.sample_frames(before[old].video, start=before[old].video_start, end=before[old].video_end)
        assert [frame_index_of(f) for f in frames] == [frame_index_of(f) for f in ref]
    data = [r for f in sorted((copy / "data").rglob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert sorted(r["index"] for r in data) == list(range(info["total_frames"]))
    assert sorted({r["episode_index"] for r in data}) == list(range(len(kept)))
    for new, old in enumerate(kept):
        assert sum(r["episode_index"] == new for r in data) == EPISODES[old][1]
    assert max(r["task_index"] for r in data) == info["total_tasks"] - 1


def test_filtered_v30_copy_is_a_consistent_lerobot_dataset(v30, tmp_path):
    kept = [1, 3, 5]
    summary = filter_lerobot(v30, kept, tmp_path / "copy")
    assert summary["episodes"] == 3 and summary["kept"] == kept
    _check_copy(tmp_path / "copy", v30, kept)
    meta = pq.read_table(next((tmp_path / "copy" / "meta" / "episodes").rglob("*.parquet"))).to_pylist()
    assert [(m["dataset_from_index"], m["dataset_to_index"]) for m in meta] == [(0, 10), (10, 19), (19, 24)]


def test_filtered_v21_copy_is_a_consistent_lerobot_dataset(tmp_path):
    root = write_lerobot_v21(tmp_path / "v21" / "toto_lerobot", EPISODES, codec="libx264")
    kept = [0, 2, 3]
    filter_lerobot(root, kept, tmp_path / "copy")
    _check_copy(tmp_path / "copy", root, kept)
    filter_lerobot(root, [1, 5], tmp_path / "copy")  # an earlier filtered copy is replaced whole
    _check_copy(tmp_path / "copy", root, [1, 5])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy", "v21"]  # no work folder left beside it


def test_a_filtered_copy_never_overwrites_what_it_did_not_write(tmp_path):
    root = write_lerobot_v21(tmp_path / "v21" / "toto_lerobot", EPISODES[:2], codec="libx264")
    mine = tmp_path / "mine"
    (mine / "notes").mkdir(parents=True)
    (mine / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(SourceError, match=f"folder {mine} is not empty and is not a filtered copy"):
        filter_lerobot(root, [0], mine)
    assert (mine / "notes" / "todo.txt").read_text() == "keep me"
    with pytest.raises(SourceError, match="is the dataset being filtered"):
        filter_lerobot(root, [0], root)
    (tmp_path / "file").write_text("x")
    with pytest.raises(SourceError, match="is a file, not a folder"):
        filter_lerobot(root, [0], tmp_path / "file")


def _tree(folder: Path) -> dict[str, bytes]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in files}


@pytest.mark.parametrize("version", ["v2.1", "v3.0"])
def test_a_rerun_after_a_kill_at_any_moment_gives_the_uninterrupted_copy(version, tmp_path, monkeypatch):
    episodes = EPISODES[:4]
    if version == "v2.1":
        root = write_lerobot_v21(tmp_path / "src" / "toto_lerobot", episodes, cameras=(SCENE_CAMERA,))
    else:
        root = write_lerobot_v30(
            tmp_path / "src" / "toto_lerobot", episodes, codec="libx264", episodes_per_file=2
        )
    kept = [0, 2, 3]
    whole = tmp_path / "whole" / "copy"
    filter_lerobot(root, kept, whole)
    expected = _tree(whole)

    # What a SIGKILL leaves is the folder as it is between two writes: record it before every write,
    # copy and rename of two runs into work/copy (a fresh one, then one replacing its copy).
    work = tmp_path / "work"
    work.mkdir()
    moments: list[Path] = []

    def killed_here(*args, **kwargs):
        moments.append(tmp_path / "killed" / str(len(moments)))
        shutil.copytree(work, moments[-1])

    def before(function):
        def wrapped(*args, **kwargs):
            killed_here()
            return function(*args, **kwargs)

        return wrapped

    for name in ("_write_text", "_write_table", "_copy"):
        monkeypatch.setattr(filter_module, name, before(getattr(filter_module, name)))
    monkeypatch.setattr(filter_module.os, "replace", before(os.replace))
    monkeypatch.setattr(filter_module.shutil, "rmtree", before(shutil.rmtree))
    for _ in range(2):
        filter_lerobot(root, kept, work / "copy")
        killed_here()  # after the rename: annotate killed before it wrote its report
    monkeypatch.undo()
    assert _tree(work / "copy") == expected

    assert len(moments) > 20
    for folder in moments:
        filter_lerobot(root, kept, folder / "copy")  # never "not empty"
        assert _tree(folder / "copy") == expected, folder.name
        assert [p.name for p in folder.iterdir()] == ["copy"], folder.name  # the killed run's work is gone


def test_a_target_left_by_a_killed_run_of_an_earlier_version_is_no_obstacle(tmp_path):
    # Earlier versions wrote into the target directly: a kill left it holding an empty meta/.
    root = write_lerobot_v21(tmp_path / "v21" / "toto_lerobot", EPISODES[:3], codec="libx264")
    (tmp_path / "copy" / "meta").mkdir(parents=True)
    filter_lerobot(root, [0, 2], tmp_path / "copy")
    _check_copy(tmp_path / "copy", root, [0, 2])


def test_annotate_keeps_the_episodes_at_or_above_a_score_and_reports_bad_videos(
    model, tiny_vlm_dir, tmp_path
):
    root = write_lerobot_v21(tmp_path / "v21" / "toto_lerobot", EPISODES, codec="libx264")
    bad = root / "videos" / "chunk-000" / SCENE_CAMERA / "episode_000002.mp4"
    bad.write_bytes(b"not a video")
    first = annotate_lerobot(
        AnnotateConfig(lerobot=str(root), model=str(tiny_vlm_dir), out=str(tmp_path / "a")),
        model=model,
        progress=False,
    )
    rows = _rows(tmp_path / "a" / ANNOTATIONS)
    assert [r["episode_index"] for r in rows] == [0, 1, 3, 5]
    reasons = {e["episode"]: e["reason"] for e in first["left_out"]}
    assert set(reasons) == {"2", "4"} and "could not be read" in reasons["2"]
    best = max(r["score"] for r in rows)
    report = annotate_lerobot(
        AnnotateConfig(
            lerobot=str(root),
            model=str(tiny_vlm_dir),
            out=str(tmp_path / "a"),
            keep_min_score=best,
            filtered_out=str(tmp_path / "good"),
        ),
        model=model,
        progress=False,
    )
    kept = [r["episode_index"] for r in rows if r["score"] >= best]
    assert report["filtered"]["kept"] == kept
    _check_copy(tmp_path / "good", root, kept)
