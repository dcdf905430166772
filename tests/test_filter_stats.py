"""A filtered LeRobot copy carries LeRobot's statistics of the episodes it keeps.

``meta/stats.json`` (every version), v2.1's ``meta/episodes_stats.jsonl`` and v3.0's
``stats/<feature>/<stat>`` columns of ``meta/episodes``: recomputed for what the copy renumbers,
kept from the source where it has them, computed (cameras from decoded frames) where it has not.
LeRobot's own loader reads the copies in ``test_lerobot_loader.py`` (slow: it installs LeRobot).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import level_of
from lerobot_fixtures import SCENE_CAMERA, WRIST_CAMERA, write_lerobot_v21, write_lerobot_v30

from roboreward.sources.lerobot import stats as lerobot_stats
from roboreward.sources.lerobot.filter import FILTER_RECORD, filter_lerobot
from roboreward.sources.lerobot.layout import REWARDS_PATH, write_episode_rewards
from roboreward.sources.lerobot.reader import LeRobotSource

EPISODES = (
    ("pick up the red block", 8),
    ("open the top drawer", 10),
    ("put the sponge in the sink", 7),
    ("pick up the red block", 9),
    ("", 6),
    ("close the lid", 5),
)
KEPT = [1, 3, 5]  # 10, 9 and 5 frames: new global index ranges [0, 10), [10, 19), [19, 24)
EPISODES_FILE = "meta/episodes/chunk-000/file-000.parquet"


def _episode_rows(path: Path) -> list[dict]:
    return pq.read_table(path / EPISODES_FILE).to_pylist()


def _row_stats(row: dict) -> dict[str, dict[str, np.ndarray]]:
    found: dict[str, dict[str, np.ndarray]] = {}
    for column, value in row.items():
        if column.startswith("stats/"):
            feature, stat = column[len("stats/") :].rsplit("/", 1)
            found.setdefault(feature, {})[stat] = np.asarray(value)
    return found


def _stats_json(path: Path) -> dict[str, dict[str, np.ndarray]]:
    return lerobot_stats.stats_from_json(json.loads((path / "meta" / "stats.json").read_text()))


def _source_rows(root: Path) -> dict[int, dict[str, np.ndarray]]:
    """Old episode index -> its observation.state rows, read from the source's data files."""
    rows = [r for f in sorted((root / "data").rglob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    by_episode: dict[int, list] = {}
    for r in rows:
        by_episode.setdefault(r["episode_index"], []).append(r["observation.state"])
    return {k: np.array(v, np.float32) for k, v in by_episode.items()}


@pytest.fixture(scope="module")
def v30(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("v30") / "toto_lerobot"
    return write_lerobot_v30(root, EPISODES, codec="libx264", episodes_per_file=2)


@pytest.fixture(scope="module")
def v30_copy(v30, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("copy") / "toto_filtered"
    filter_lerobot(v30, KEPT, out)
    return out


def test_v30_copy_has_the_kept_episodes_stats_in_its_episode_metadata(v30, v30_copy):
    rows = _episode_rows(v30_copy)
    per_episode = [_row_stats(r) for r in rows]
    assert len(per_episode) == 3
    features = {"action", "observation.state", "timestamp", "frame_index", "episode_index", "index"}
    features |= {"task_index", SCENE_CAMERA, WRIST_CAMERA}
    assert all(set(s) == features for s in per_episode)
    assert all(set(s[f]) == set(lerobot_stats.STAT_KEYS) for s in per_episode for f in s)

    # What the copy renumbers, by hand: global index 10..18 and episode_index 1 for the second.
    index = per_episode[1]["index"]
    assert (index["min"].tolist(), index["max"].tolist(), index["count"].tolist()) == ([10.0], [18.0], [9])
    assert index["mean"].tolist() == [14.0]
    assert index["std"][0] == pytest.approx(math.sqrt((9**2 - 1) / 12), rel=1e-6)
    assert index["q50"][0] == pytest.approx(14.0, abs=0.01)
    assert per_episode[2]["episode_index"]["mean"].tolist() == [2.0]
    # tasks left: "pick ..." (old 0), "open ..." (old 1), "close the lid" (old 4) -> 0, 1, 2
    assert [s["task_index"]["mean"].tolist() for s in per_episode] == [[1.0], [0.0], [2.0]]

    # A feature's stats are those of the kept episode's rows, as LeRobot computes them (float32).
    state = _source_rows(v30)
    for stats, old in zip(per_episode, KEPT, strict=True):
        rows_of = state[old]
        assert stats["observation.state"]["mean"] == pytest.approx(rows_of.mean(axis=0), abs=1e-6)
        assert stats["observation.state"]["min"].tolist() == rows_of.min(axis=0).tolist()
        assert stats["observation.state"]["max"].tolist() == rows_of.max(axis=0).tolist()
        assert stats["observation.state"]["std"] == pytest.approx(rows_of.std(axis=0), abs=1e-5)
        assert stats["observation.state"]["count"].tolist() == [len(rows_of)]

    # Cameras: per channel in [0, 1], shape (3, 1, 1), from the frames LeRobot samples (all of
    # them, for episodes this short). Old episode 1 is frames 8..17 of the first video file.
    scene = per_episode[0][SCENE_CAMERA]
    levels = np.array([level_of(i) for i in range(8, 18)]) / 255
    assert scene["mean"].shape == (3, 1, 1) and scene["count"].tolist() == [10]
    assert scene["mean"].ravel() == pytest.approx([levels.mean()] * 3, abs=2 / 255)
    assert scene["min"].ravel() == pytest.approx([levels.min()] * 3, abs=3 / 255)
    assert scene["max"].ravel() == pytest.approx([levels.max()] * 3, abs=3 / 255)


def test_v30_copy_stats_json_aggregates_the_kept_episodes(v30_copy):
    stats = _stats_json(v30_copy)
    index = stats["index"]
    assert (index["min"].tolist(), index["max"].tolist(), index["count"].tolist()) == ([0.0], [23.0], [24])
    assert index["mean"][0] == pytest.approx(11.5)
    assert index["std"][0] == pytest.approx(math.sqrt((24**2 - 1) / 12))
    assert stats["episode_index"]["mean"][0] == pytest.approx((0 * 10 + 1 * 9 + 2 * 5) / 24)
    assert stats["task_index"]["mean"][0] == pytest.approx((1 * 10 + 0 * 9 + 2 * 5) / 24)
    per_episode = [_row_stats(r) for r in _episode_rows(v30_copy)]
    scene = [s[SCENE_CAMERA] for s in per_episode]
    assert stats[SCENE_CAMERA]["count"].tolist() == [10 + 9 + 5]
    weighted = sum(s["mean"] * s["count"][0] for s in scene) / 24
    assert stats[SCENE_CAMERA]["mean"] == pytest.approx(weighted)
    # Quantiles: LeRobot's conservative envelope of the episodes' (least q01..q50, greatest q90, q99).
    action = [s["action"] for s in per_episode]
    assert stats["action"]["q10"].tolist() == np.min([a["q10"] for a in action], axis=0).tolist()
    assert stats["action"]["q99"].tolist() == np.max([a["q99"] for a in action], axis=0).tolist()
    record = json.loads((v30_copy / FILTER_RECORD).read_text())
    assert record["stats"]["from_source"] == [] and SCENE_CAMERA in record["stats"]["computed"]
    assert record["stats"]["unavailable"] == {}


def test_source_stats_are_kept_and_renumbered_ones_recomputed(v30_copy, tmp_path):
    # A source that has per-episode stats (the copy above), one of them marked.
    source = tmp_path / "marked"
    shutil.copytree(v30_copy, source)
    table = pq.read_table(source / EPISODES_FILE)
    column = table.column_names.index("stats/observation.state/mean")
    marked = [[42.0] * 8 if i == 1 else v for i, v in enumerate(table.column(column).to_pylist())]
    table = table.set_column(
        column, "stats/observation.state/mean", pa.array(marked, table.schema[column].type)
    )
    pq.write_table(table, source / EPISODES_FILE)
    (source / FILTER_RECORD).unlink()  # a source of its own, not a copy being replaced

    out = tmp_path / "again"
    filter_lerobot(source, [1, 2], out)  # 9 and 5 frames
    rows = [_row_stats(r) for r in _episode_rows(out)]
    assert rows[0]["observation.state"]["mean"].tolist() == [42.0] * 8  # the source's, as it is
    assert (rows[0]["index"]["min"].tolist(), rows[1]["index"]["min"].tolist()) == ([0.0], [9.0])
    assert rows[1]["episode_index"]["mean"].tolist() == [1.0]
    stats = _stats_json(out)
    assert stats["observation.state"]["mean"][0] == pytest.approx(
        (42.0 * 9 + rows[1]["observation.state"]["mean"][0] * 5) / 14
    )
    record = json.loads((out / FILTER_RECORD).read_text())["stats"]
    assert record["computed"] == ["episode_index", "index", "task_index"]
    assert "observation.state" in record["from_source"] and SCENE_CAMERA in record["from_source"]


def test_v21_copy_writes_episodes_stats_and_stats_json(tmp_path):
    root = write_lerobot_v21(
        tmp_path / "v21" / "toto_lerobot", EPISODES, codec="libx264", cameras=(SCENE_CAMERA,)
    )
    # The source's per-episode stats as LeRobot v2.1 wrote them: no quantiles; action marked.
    lines = []
    for i, (_, n) in enumerate(EPISODES):
        first = sum(length for _, length in EPISODES[:i])
        stats = {
            "action": {
                "min": [-9.0] * 7,
                "max": [9.0] * 7,
                "mean": [float(i)] * 7,
                "std": [1.0] * 7,
                "count": [n],
            },
            "index": {"min": [first], "max": [first + n - 1], "mean": [first], "std": [0.0], "count": [n]},
        }
        lines.append(json.dumps({"episode_index": i, "stats": stats}))
    (root / "meta" / "episodes_stats.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "copy"
    filter_lerobot(root, KEPT, out)

    entries = [json.loads(line) for line in (out / "meta" / "episodes_stats.jsonl").read_text().splitlines()]
    assert [e["episode_index"] for e in entries] == [0, 1, 2]
    assert [e["stats"]["action"]["mean"][0] for e in entries] == [1.0, 3.0, 5.0]  # kept from the source
    index = entries[1]["stats"]["index"]
    assert set(index) == {"min", "max", "mean", "std", "count"}  # the source's kinds of stats
    assert (index["min"], index["max"], index["mean"], index["count"]) == ([10.0], [18.0], [14.0], [9])
    assert set(entries[0]["stats"]["observation.state"]) == set(lerobot_stats.STAT_KEYS)  # computed here
    assert entries[0]["stats"][SCENE_CAMERA]["count"] == [10]

    stats = _stats_json(out)
    assert stats["action"]["mean"].tolist() == pytest.approx([(1 * 10 + 3 * 9 + 5 * 5) / 24] * 7)
    assert (stats["action"]["min"].tolist(), stats["action"]["count"].tolist()) == ([-9.0] * 7, [24])
    assert stats["index"]["max"].tolist() == [23.0] and "q50" not in stats["index"]
    assert set(stats) == {"action", "observation.state", "timestamp", "frame_index", "episode_index"} | {
        "index",
        "task_index",
        SCENE_CAMERA,
    }


def test_v20_copy_has_stats_json_only(tmp_path):
    root = write_lerobot_v21(
        tmp_path / "v20" / "toto_lerobot",
        EPISODES[:3],
        codec="libx264",
        cameras=(SCENE_CAMERA,),
        version="v2.0",
    )
    out = tmp_path / "copy"
    filter_lerobot(root, [0, 2], out)
    assert not (out / "meta" / "episodes_stats.jsonl").exists()
    stats = _stats_json(out)
    assert stats["index"]["count"].tolist() == [8 + 7] and stats["index"]["max"].tolist() == [14.0]
    assert stats[SCENE_CAMERA]["count"].tolist() == [15] and stats[SCENE_CAMERA]["mean"].shape == (3, 1, 1)


def test_lerobot_stats_helpers_by_hand():
    one = lerobot_stats.episode_feature_stats(np.array([[1.0, 10.0], [3.0, 30.0]], np.float32))
    assert one["mean"].tolist() == [2.0, 20.0] and one["std"].tolist() == [1.0, 10.0]
    assert one["count"].tolist() == [2] and one["min"].shape == (2,)
    single = lerobot_stats.episode_feature_stats(np.array([5], np.int64))
    assert single["q99"].tolist() == [5.0] and single["std"].tolist() == [0.0]
    assert lerobot_stats.image_sample_indices(5).tolist() == [0, 1, 2, 3, 4]
    assert len(lerobot_stats.image_sample_indices(1000)) == 177  # LeRobot's 1000 ** 0.75
    merged = lerobot_stats.aggregate_feature_stats(
        [one, lerobot_stats.episode_feature_stats(np.array([[5.0, 50.0]] * 2))]
    )
    assert merged["mean"].tolist() == [3.5, 35.0] and merged["count"].tolist() == [4]
    assert merged["std"] == pytest.approx(np.std([1, 3, 5, 5]) * np.array([1, 10]))
    frames = np.zeros((4, 600, 400, 3), np.uint8)
    frames[..., 0] = 255
    image = lerobot_stats.episode_image_stats(frames)
    assert image["mean"].shape == (3, 1, 1) and image["mean"].ravel().tolist() == [1.0, 0.0, 0.0]
    assert image["count"].tolist() == [4]


def test_the_rewards_sidecar_follows_the_kept_episodes(tmp_path):
    root = write_lerobot_v21(
        tmp_path / "v21" / "sim_lerobot", EPISODES[:4], codec="libx264", cameras=(SCENE_CAMERA,)
    )
    write_episode_rewards(root, [(0, 5, 1.0), (1, 2, 0.3), (2, 1, 0.0), (3, 4, 0.9)])
    filter_lerobot(root, [1, 3], tmp_path / "copy")
    lines = [json.loads(line) for line in (tmp_path / "copy" / REWARDS_PATH).read_text().splitlines()]
    assert lines == [
        {"episode_index": 0, "reward": 2, "progress": 0.3},
        {"episode_index": 1, "reward": 4, "progress": 0.9},
    ]
    labels = {e.episode_id: e.reward for e in LeRobotSource(tmp_path / "copy").episodes()}
    assert labels == {"0": 2, "1": 4}


def test_image_features_get_their_stats_from_the_png_cells(tmp_path):
    # LeRobot's `image` dtype: PNG bytes in the data parquet ({"bytes", "path"} cells).
    from io import BytesIO

    from PIL import Image

    root = write_lerobot_v21(
        tmp_path / "v21" / "toto_lerobot", EPISODES[:2], codec="libx264", cameras=(SCENE_CAMERA,)
    )
    info_path = root / "meta" / "info.json"
    info = json.loads(info_path.read_text())
    info["features"]["observation.images.top"] = {"dtype": "image", "shape": [8, 8, 3], "names": None}
    info_path.write_text(json.dumps(info))
    for index, (_, length) in enumerate(EPISODES[:2]):
        path = root / "data" / "chunk-000" / f"episode_{index:06d}.parquet"
        table = pq.read_table(path)
        cells = []
        for frame in range(length):
            buffer = BytesIO()
            Image.new("RGB", (8, 8), (10 * frame, 100, 255)).save(buffer, format="PNG")
            cells.append({"bytes": buffer.getvalue(), "path": None})
        pq.write_table(table.append_column("observation.images.top", pa.array(cells)), path)
    filter_lerobot(root, [1], tmp_path / "copy")
    top = _stats_json(tmp_path / "copy")["observation.images.top"]
    reds = np.array([10 * f for f in range(10)]) / 255
    assert top["mean"].ravel() == pytest.approx([reds.mean(), 100 / 255, 1.0], abs=1e-6)
    assert top["max"].ravel() == pytest.approx([reds.max(), 100 / 255, 1.0], abs=1e-6)
    assert top["count"].tolist() == [10] and top["mean"].shape == (3, 1, 1)
