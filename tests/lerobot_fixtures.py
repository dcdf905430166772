"""Small, realistic LeRobot datasets (v2.1 and v3.0) written by code, with faults on request.

The layout follows LeRobot's own writers: ``meta/info.json`` with the path templates,
``meta/episodes.jsonl`` + ``meta/tasks.jsonl`` (v2.x) or ``meta/episodes/chunk-*/file-*.parquet`` +
``meta/tasks.parquet`` (v3.0), data parquet files and one mp4 per camera (and per episode in v2.x,
per file of concatenated episodes in v3.0). Video frames are flat greys (see conftest.level_of):
in v2.x frame i of an episode has level_of(i); in a v3.0 file the frames of all its episodes run
back to back, so frame j of the file has level_of(j) and tells which episode it belongs to.

    root = write_lerobot_v21(tmp_path / "toto_lerobot", episodes=[("open the drawer", 8), ("", 6)])
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from conftest import write_video

SCENE_CAMERA = "observation.images.image"
WRIST_CAMERA = "observation.images.wrist_image"
CAMERAS = (SCENE_CAMERA, WRIST_CAMERA)
DEFAULT_EPISODES = (
    ("pick up the red block", 8),
    ("open the top drawer", 10),
    ("put the sponge in the sink", 7),
)
SCENE_SIZE = (64, 48)
WRIST_SIZE = (48, 32)
ACTION_DIM = 7
STATE_DIM = 8

V21_DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
V21_VIDEO_PATH = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
V30_DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
V30_VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
V30_EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"

#: Where a fixture keeps its task text: the episode metadata (LeRobot's way), only the data rows'
#: task_index (+ tasks table), or only a per-frame language_instruction column (some OXE ports).
TASK_STORAGES = ("episodes", "task_index", "language_instruction")


def camera_size(key: str) -> tuple[int, int]:
    """(width, height) of a fixture camera: wrist cameras are smaller, so a test can tell them apart."""
    return WRIST_SIZE if "wrist" in key or "hand" in key else SCENE_SIZE


def _codec_name(codec: str) -> str:
    return {"libx264": "h264", "libsvtav1": "av1", "libaom-av1": "av1"}.get(codec, codec)


def _features(cameras: Sequence[str], fps: int, codec: str, language_column: bool) -> dict[str, Any]:
    features: dict[str, Any] = {}
    for key in cameras:
        width, height = camera_size(key)
        features[key] = {
            "dtype": "video",
            "shape": [height, width, 3],
            "names": ["height", "width", "channels"],
            "info": {
                "video.height": height,
                "video.width": width,
                "video.codec": _codec_name(codec),
                "video.pix_fmt": "yuv420p",
                "video.is_depth_map": False,
                "video.fps": fps,
                "video.channels": 3,
                "has_audio": False,
            },
        }
    features["observation.state"] = {"dtype": "float32", "shape": [STATE_DIM], "names": None}
    features["action"] = {"dtype": "float32", "shape": [ACTION_DIM], "names": None}
    if language_column:
        features["language_instruction"] = {"dtype": "string", "shape": [1], "names": None}
    for key, dtype in (
        ("timestamp", "float32"),
        ("frame_index", "int64"),
        ("episode_index", "int64"),
        ("index", "int64"),
        ("task_index", "int64"),
    ):
        features[key] = {"dtype": dtype, "shape": [1], "names": None}
    return features


def _task_indices(episodes: Sequence[tuple[str, int]]) -> dict[str, int]:
    indices: dict[str, int] = {}
    for task, _ in episodes:
        indices.setdefault(task, len(indices))
    return indices


def _frame_table(
    rows: Iterable[tuple[int, str, int, int]], task_index: dict[str, int], task_storage: str, fps: int
) -> pa.Table:
    """Data parquet rows for (episode_index, task, num_frames, first global index) tuples."""
    columns: dict[str, list[Any]] = {
        "observation.state": [],
        "action": [],
        "timestamp": [],
        "frame_index": [],
        "episode_index": [],
        "index": [],
    }
    tasks: list[Any] = []
    rng = np.random.default_rng(0)
    for episode_index, task, num_frames, first in rows:
        for i in range(num_frames):
            columns["observation.state"].append(rng.standard_normal(STATE_DIM).astype(np.float32).tolist())
            columns["action"].append(rng.standard_normal(ACTION_DIM).astype(np.float32).tolist())
            columns["frame_index"].append(i)
            columns["episode_index"].append(episode_index)
            columns["index"].append(first + i)
            columns["timestamp"].append(i / fps)  # seconds from the episode's start
            tasks.append(task)
    arrays: dict[str, pa.Array] = {
        "observation.state": pa.array(columns["observation.state"], pa.list_(pa.float32(), STATE_DIM)),
        "action": pa.array(columns["action"], pa.list_(pa.float32(), ACTION_DIM)),
        "timestamp": pa.array(columns["timestamp"], pa.float32()),
        "frame_index": pa.array(columns["frame_index"], pa.int64()),
        "episode_index": pa.array(columns["episode_index"], pa.int64()),
        "index": pa.array(columns["index"], pa.int64()),
    }
    if task_storage == "language_instruction":
        arrays["language_instruction"] = pa.array(tasks, pa.string())
    else:
        arrays["task_index"] = pa.array([task_index[t] for t in tasks], pa.int64())
    return pa.table(arrays)


def _check_options(task_storage: str, episodes: Sequence[tuple[str, int]]) -> None:
    if task_storage not in TASK_STORAGES:
        raise ValueError(f"task_storage must be one of {TASK_STORAGES}, got {task_storage!r}")
    if not episodes:
        raise ValueError("a fixture dataset needs at least one episode")


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=4))


def write_lerobot_v21(
    root: Path,
    episodes: Sequence[tuple[str, int]] = DEFAULT_EPISODES,
    *,
    fps: int = 10,
    codec: str = "libx264",
    cameras: Sequence[str] = CAMERAS,
    version: str = "v2.1",
    chunks_size: int = 1000,
    task_storage: str = "episodes",
    missing_videos: Iterable[int] = (),
    duplicate: Iterable[int] = (),
    non_utf8: Iterable[int] = (),
) -> Path:
    """Write a LeRobot v2.1 (or v2.0) dataset: one parquet and one mp4 per camera for each episode.

    Args:
        episodes: (task, num_frames) per episode; episode i gets episode_index i. An empty or
            blank task is written as it is (a fault the reader must skip).
        codec: PyAV encoder of the videos (``libx264`` or ``libsvtav1``).
        task_storage: one of `TASK_STORAGES`.
        missing_videos: episode indices whose video files (every camera) are not written.
        duplicate: episode indices whose ``meta/episodes.jsonl`` line is written twice.
        non_utf8: episode indices whose ``meta/episodes.jsonl`` line holds a non-UTF-8 byte.
    """
    _check_options(task_storage, episodes)
    root = Path(root)
    missing, duplicated, broken = set(missing_videos), set(duplicate), set(non_utf8)
    task_index = _task_indices(episodes)
    total_frames = 0
    lines: list[bytes] = []
    for episode_index, (task, num_frames) in enumerate(episodes):
        values = {"episode_chunk": episode_index // chunks_size, "episode_index": episode_index}
        table = _frame_table([(episode_index, task, num_frames, total_frames)], task_index, task_storage, fps)
        data = root / V21_DATA_PATH.format(**values)
        data.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, data)
        if episode_index not in missing:
            for key in cameras:
                video = root / V21_VIDEO_PATH.format(video_key=key, **values)
                video.parent.mkdir(parents=True, exist_ok=True)
                write_video(video, num_frames=num_frames, fps=fps, codec=codec, size=camera_size(key))
        entry: dict[str, Any] = {"episode_index": episode_index}
        if task_storage == "episodes":
            entry["tasks"] = [task]
        entry["length"] = num_frames
        line = json.dumps(entry).encode()
        if episode_index in broken:
            line = line.replace(b'"length"', b'"note": "caf\xe9", "length"')  # Latin-1, not UTF-8
        lines += [line] * (2 if episode_index in duplicated else 1)
        total_frames += num_frames
    meta = root / "meta"
    meta.mkdir(parents=True, exist_ok=True)
    (meta / "episodes.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    if task_storage != "language_instruction":
        tasks = [json.dumps({"task_index": i, "task": t}) for t, i in task_index.items()]
        (meta / "tasks.jsonl").write_text("\n".join(tasks) + "\n")
    info = {
        "codebase_version": version,
        "robot_type": "franka",
        "total_episodes": len(episodes),
        "total_frames": total_frames,
        "total_tasks": len(task_index),
        "total_videos": len(episodes) * len(cameras),
        "total_chunks": (len(episodes) - 1) // chunks_size + 1,
        "chunks_size": chunks_size,
        "fps": fps,
        "splits": {"train": f"0:{len(episodes)}"},
        "data_path": V21_DATA_PATH,
        "video_path": V21_VIDEO_PATH,
        "features": _features(cameras, fps, codec, task_storage == "language_instruction"),
    }
    _write_json(meta / "info.json", info)
    return root


def v30_layout(
    episodes: Sequence[tuple[str, int]], fps: int = 10, episodes_per_file: int | None = None
) -> list[dict[str, Any]]:
    """Where each episode of a v3.0 fixture lives: file_index, first frame in its file, from/to seconds."""
    per_file = episodes_per_file or len(episodes)
    layout, offset = [], 0
    for episode_index, (_, num_frames) in enumerate(episodes):
        file_index = episode_index // per_file
        if episode_index % per_file == 0:
            offset = 0
        layout.append(
            {
                "file_index": file_index,
                "first_frame": offset,
                "from_timestamp": offset / fps,
                "to_timestamp": (offset + num_frames) / fps,
            }
        )
        offset += num_frames
    return layout


def write_lerobot_v30(
    root: Path,
    episodes: Sequence[tuple[str, int]] = DEFAULT_EPISODES,
    *,
    fps: int = 10,
    codec: str = "libsvtav1",
    cameras: Sequence[str] = CAMERAS,
    episodes_per_file: int | None = None,
    task_storage: str = "episodes",
    missing_videos: Iterable[int] = (),
    duplicate: Iterable[int] = (),
) -> Path:
    """Write a LeRobot v3.0 dataset: episodes concatenated into data and video files.

    Args:
        episodes: (task, num_frames) per episode; episode i gets episode_index i.
        episodes_per_file: how many consecutive episodes share a data file and, per camera, a
            video file (default: all in one). File k of a camera holds its episodes back to back.
        task_storage: one of `TASK_STORAGES` (``"episodes"``: the ``tasks`` column of
            ``meta/episodes``; otherwise that column is left out).
        missing_videos: file indices whose video files (every camera) are not written.
        duplicate: episode indices whose ``meta/episodes`` row is written twice.
    """
    _check_options(task_storage, episodes)
    root = Path(root)
    layout = v30_layout(episodes, fps, episodes_per_file)
    task_index = _task_indices(episodes)
    missing, duplicated = set(missing_videos), set(duplicate)
    files: dict[int, list[int]] = {}
    for episode_index, place in enumerate(layout):
        files.setdefault(place["file_index"], []).append(episode_index)

    first_index = np.cumsum([0] + [n for _, n in episodes]).tolist()
    for file_index, members in files.items():
        values = {"chunk_index": 0, "file_index": file_index}
        rows = [(i, episodes[i][0], episodes[i][1], first_index[i]) for i in members]
        table = _frame_table(rows, task_index, task_storage, fps)
        data = root / V30_DATA_PATH.format(**values)
        data.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, data)
        if file_index in missing:
            continue
        total = sum(episodes[i][1] for i in members)
        for key in cameras:
            video = root / V30_VIDEO_PATH.format(video_key=key, **values)
            video.parent.mkdir(parents=True, exist_ok=True)
            # One stream holding every episode's frames back to back: frame j at j / fps.
            write_video(video, num_frames=total, fps=fps, codec=codec, size=camera_size(key))

    meta_rows = []
    for episode_index, ((task, num_frames), place) in enumerate(zip(episodes, layout, strict=True)):
        row: dict[str, Any] = {"episode_index": episode_index}
        if task_storage == "episodes":
            row["tasks"] = [task]
        row.update(
            {
                "length": num_frames,
                "data/chunk_index": 0,
                "data/file_index": place["file_index"],
                "dataset_from_index": first_index[episode_index],
                "dataset_to_index": first_index[episode_index] + num_frames,
            }
        )
        for key in cameras:
            row[f"videos/{key}/chunk_index"] = 0
            row[f"videos/{key}/file_index"] = place["file_index"]
            row[f"videos/{key}/from_timestamp"] = place["from_timestamp"]
            row[f"videos/{key}/to_timestamp"] = place["to_timestamp"]
        row["meta/episodes/chunk_index"] = 0
        row["meta/episodes/file_index"] = 0
        meta_rows += [row] * (2 if episode_index in duplicated else 1)
    episodes_file = root / V30_EPISODES_PATH.format(chunk_index=0, file_index=0)
    episodes_file.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(meta_rows), episodes_file)

    tasks = pd.DataFrame(
        {"task_index": list(task_index.values())}, index=pd.Index(list(task_index), name="task")
    )
    tasks.to_parquet(root / "meta" / "tasks.parquet")
    info = {
        "codebase_version": "v3.0",
        "robot_type": "franka",
        "total_episodes": len(episodes),
        "total_frames": int(first_index[-1]),
        "total_tasks": len(task_index),
        "chunks_size": 1000,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 500,
        "fps": fps,
        "splits": {"train": f"0:{len(episodes)}"},
        "data_path": V30_DATA_PATH,
        "video_path": V30_VIDEO_PATH,
        "features": _features(cameras, fps, codec, task_storage == "language_instruction"),
    }
    _write_json(root / "meta" / "info.json", info)
    return root
