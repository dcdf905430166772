"""`roboreward annotate` as datatrove tasks, and its sidecars: LeRobot's frame signals and BC weights."""

from __future__ import annotations

import json
import math

import pyarrow.parquet as pq
import pytest
from lerobot_fixtures import write_lerobot_v30

from roboreward.apps.annotate import ANNOTATIONS, AnnotateConfig, annotate_lerobot
from roboreward.apps.frame_signals import (
    FORMAT,
    FRAME_SIGNALS,
    SAMPLE_WEIGHTS,
    SIGNALS,
    episode_weights,
    read_frame_signals,
)
from roboreward.dataset.executors import ExecutorConfig

pytest.importorskip("datatrove")

EPISODES = (
    ("pick up the red block", 8),
    ("open the top drawer", 10),
    ("put the sponge in the sink", 7),
    ("", 6),  # no task: left out
    ("close the lid", 5),
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("annotate_tasks") / "toto_lerobot"
    return write_lerobot_v30(root, EPISODES, codec="libx264", episodes_per_file=2)


def _config(dataset, model, out, **kwargs):
    settings = {"batch_size": 1, "curve_points": 3, "device": "cpu", "frame_signals": True}
    return AnnotateConfig(lerobot=str(dataset), model=str(model), out=str(out), **{**settings, **kwargs})


@pytest.fixture(scope="module")
def in_process(dataset, tiny_vlm_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("annotate_in_process") / "ann"
    report = annotate_lerobot(_config(dataset, tiny_vlm_dir, out, weight_temperature=0.5), progress=False)
    return out, report


@pytest.mark.slow
def test_annotate_as_3_local_tasks_writes_the_in_process_files(dataset, tiny_vlm_dir, in_process, tmp_path):
    out = tmp_path / "ann"
    executor = ExecutorConfig(executor="local", tasks=3, workers=1)
    config = _config(dataset, tiny_vlm_dir, out, weight_temperature=0.5)
    report = annotate_lerobot(config, executor=executor)
    reference, reference_report = in_process
    for name in (ANNOTATIONS, FRAME_SIGNALS, SAMPLE_WEIGHTS):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    assert report == reference_report
    assert report["scored"] == 4 and [e["episode"] for e in report["left_out"]] == ["3"]
    parts = sorted(p.name for p in next((out / ".datatrove").iterdir()).glob("parts/task-*.jsonl"))
    assert parts == ["task-00000.jsonl", "task-00001.jsonl", "task-00002.jsonl"]


def test_the_frame_signals_sidecar_reads_back_keyed_by_frames_of_the_dataset(dataset, in_process):
    out, report = in_process
    table, meta = read_frame_signals(out / FRAME_SIGNALS)
    assert table.column_names == ["index", "episode_index", "frame_index", *sorted(SIGNALS)]
    assert [str(table.schema.field(c).type) for c in table.column_names] == ["int64"] * 3 + ["double"] * 3
    assert meta["format"] == FORMAT == "lerobot.frame_signals" and meta["schema_version"] == 1
    assert meta["episode_indices"] == [0, 1, 2, 4]
    assert meta["provenance"]["model"] == report["model"] and meta["provenance"]["curve_points"] == 3
    assert meta["provenance"]["prompt_preset"] == report["prompt"] and meta["provenance"]["prompt_version"]
    assert set(meta["descriptors"]) == set(SIGNALS) and meta["descriptors"]["progress"]["bounds"] == [0, 1]
    rows = table.to_pylist()
    # every (index, episode_index, frame_index) is a frame of the source dataset's data files
    frames = set()
    for path in sorted((dataset / "data").rglob("*.parquet")):
        data = pq.read_table(path, columns=["index", "episode_index", "frame_index"]).to_pylist()
        frames |= {(r["index"], r["episode_index"], r["frame_index"]) for r in data}
    assert all((r["index"], r["episode_index"], r["frame_index"]) in frames for r in rows)
    lengths = {i: n for i, (_, n) in enumerate(EPISODES)}
    by_episode = {}
    for r in rows:
        by_episode.setdefault(r["episode_index"], []).append(r)
    assert sorted(by_episode) == [0, 1, 2, 4]
    annotations = {r["episode_index"]: r for r in pq.read_table(out / ANNOTATIONS).to_pylist()}
    for episode, points in by_episode.items():
        assert [p["frame_index"] for p in points][-1] == lengths[episode] - 1  # the last point: the whole
        assert len(points) == 3 and points == sorted(points, key=lambda p: p["frame_index"])
        assert [p["expected_score"] for p in points] == pytest.approx(annotations[episode]["curve"])
        for p in points:
            assert p["progress"] == pytest.approx((p["expected_score"] - 1) / 4)
            assert 0 <= p["success_probability"] <= 1


def test_sample_weights_follow_the_documented_mapping(in_process):
    out, report = in_process
    weights = pq.read_table(out / SAMPLE_WEIGHTS)
    rows = weights.to_pylist()
    annotations = {r["episode_index"]: r for r in pq.read_table(out / ANNOTATIONS).to_pylist()}
    assert [r["episode_index"] for r in rows] == [0, 1, 2, 4]
    raw = [math.exp((annotations[r["episode_index"]]["expected"] - 5) / 0.5) for r in rows]
    assert [r["weight"] for r in rows] == pytest.approx([w * len(raw) / sum(raw) for w in raw])
    assert sum(r["weight"] for r in rows) / len(rows) == pytest.approx(1.0)
    mapping = json.loads(weights.schema.metadata[b"roboreward.sample_weights"])
    assert mapping["temperature"] == 0.5 and report["sample_weights"]["file"] == SAMPLE_WEIGHTS


def test_episode_weights_favour_high_scores_and_refuse_a_bad_temperature():
    sharp, flat = episode_weights([5.0, 3.0], 0.25), episode_weights([5.0, 3.0], 100.0)
    assert sharp[0] / sharp[1] == pytest.approx(math.exp(8)) and flat[0] / flat[1] == pytest.approx(
        math.exp(0.02)
    )
    with pytest.raises(ValueError, match="temperature must be above 0"):
        episode_weights([5.0], 0)


def test_frame_signals_need_a_progress_curve(dataset, tmp_path):
    with pytest.raises(ValueError, match="give --curve-points"):
        AnnotateConfig(lerobot=str(dataset), model="m", out=str(tmp_path), frame_signals=True)


def test_annotate_on_slurm_submits_gpu_tasks_and_a_merge(dataset, tiny_vlm_dir, tmp_path, monkeypatch):
    from test_distributed import _fake_slurm, _on_path

    bin_dir, record = tmp_path / "bin", tmp_path / "sbatch_scripts"
    _fake_slurm(bin_dir, record, run=False)
    _on_path(monkeypatch, bin_dir)
    executor = ExecutorConfig(executor="slurm", tasks=2, slurm_partition="gpu", slurm_gpus_per_task=1)
    submitted = annotate_lerobot(_config(dataset, tiny_vlm_dir, tmp_path / "ann"), executor=executor)
    jobs = submitted["submitted"]
    array = (record / f"{jobs['tasks_job']}.sh").read_text()
    assert "#SBATCH --gpus=1\n" in array and "#SBATCH --job-name=roboreward-annotate\n" in array
    assert "#SBATCH --array=0-1\n" in array
    merge_args = (record / f"{jobs['merge_job']}.args").read_text()
    assert f"--dependency=afterok:{jobs['tasks_job']}" in merge_args
