"""The simulated tabletop written through the layouts real readers read, with its ground truth.

A LeRobot v2.1 dataset (successes only, like Open X-Embodiment; H.264 or AV1) or a RoboArena dump
(successes and failures with partial_success), plus ``sim_truth.jsonl`` with every episode's truth
(`roboreward.sim.tabletop.evaluate`); a LeRobot dataset also carries each episode's true reward in
``meta/episode_rewards.jsonl`` (`roboreward.sim.truth.write_truth_rewards`), which the LeRobot reader
labels episodes with. Deterministic by seed.

    >>> from roboreward import sim
    >>> sim.write_sim_dataset("sim_oxe", episodes=20, layout="lerobot", seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from roboreward import video
from roboreward.sim.tabletop import (
    FPS,
    LEROBOT_CAMERA,
    OUTCOMES,
    WRIST_CAMERA,
    SimEpisode,
    make_episode,
    render_episode,
    render_wrist,
)
from roboreward.sim.truth import write_truth_rewards
from roboreward.sources.lerobot.layout import V21_CHUNKS_SIZE, V21_DATA_PATH, V21_VIDEO_PATH

__all__ = ["POLICIES", "Layout", "write_sim_dataset"]

Layout = Literal["lerobot", "roboarena"]
SUCCESS_ONLY = ("success",)


def _outcome_cycle(layout: Layout) -> tuple[str, ...]:
    # OXE (LeRobot) holds only successes; RoboArena has every outcome, successes and failures alike.
    return SUCCESS_ONLY if layout == "lerobot" else OUTCOMES


def write_sim_dataset(
    out: str | os.PathLike[str],
    episodes: int = 24,
    layout: Layout = "lerobot",
    seed: int = 0,
    codec: str = "libx264",
    size: tuple[int, int] = (160, 120),
    cameras: Sequence[str] = ("scene", "wrist"),
) -> Path:
    """Render ``episodes`` rollouts into ``out`` in the given layout, with ``sim_truth.jsonl``.

    ``lerobot``: a LeRobot v2.1 dataset of successful episodes (``codec`` ``libx264`` or
    ``libsvtav1``), read by `roboreward.sources.lerobot.reader.LeRobotSource`. ``roboarena``: a RoboArena
    dump of sessions with three policy runs each (a mix of outcomes), read by
    `roboreward.sources.roboarena.RoboArenaSource`. Writes into a temporary folder and renames it, so
    ``out`` is either complete or absent.

    Args:
        out: the new folder (it must not exist).
        episodes: how many rollouts.
        layout: ``lerobot`` or ``roboarena``.
        seed: scenes and outcomes are deterministic in it.
        codec: ``libx264`` or ``libsvtav1`` (the ``lerobot`` layout).
        size: the scene camera's (width, height).
        cameras: the ``lerobot`` layout's cameras, among ``scene`` and ``wrist``.
    """
    if layout not in ("lerobot", "roboarena"):
        raise ValueError(f"layout must be 'lerobot' or 'roboarena', got {layout!r}")
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists: choose a new folder")
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cycle = _outcome_cycle(layout)
    runs = len(POLICIES) if layout == "roboarena" else 1  # a RoboArena session: one table, three policies
    rollouts = [make_episode(i, cycle[i % len(cycle)], seed, scene_index=i // runs) for i in range(episodes)]
    if layout == "lerobot":
        truth = _write_lerobot(
            tmp, rollouts, codec, size, cameras, f"oxe/{out.name.removesuffix('_lerobot')}"
        )
        write_truth_rewards(tmp, truth)
    else:
        truth = _write_roboarena(tmp, rollouts, codec, size)
    with open(tmp / "sim_truth.jsonl", "w", encoding="utf-8") as f:
        for record in truth:
            f.write(json.dumps(record, sort_keys=True) + "\n")
    os.replace(tmp, out)
    return out


def _truth_record(episode: SimEpisode, source: str, episode_id: str) -> dict[str, Any]:
    return {
        "source": source,
        "episode_id": episode_id,
        "task": episode.task,
        "outcome": episode.outcome,
        **episode.truth(),
        "counterfactuals": episode.counterfactuals(),
        "initial": asdict(episode.initial),
        "final": asdict(episode.final),
    }


def _write_lerobot(
    root: Path,
    rollouts: list[SimEpisode],
    codec: str,
    size: tuple[int, int],
    cameras: Sequence[str],
    source: str,
) -> list[dict[str, Any]]:
    keys = {"scene": LEROBOT_CAMERA, "wrist": WRIST_CAMERA}
    unknown = set(cameras) - set(keys)
    if unknown or not cameras:
        raise ValueError(f"cameras must be among {sorted(keys)}, got {list(cameras)}")
    data_path, video_path = V21_DATA_PATH, V21_VIDEO_PATH
    tasks = sorted({e.task for e in rollouts})
    task_index = {t: i for i, t in enumerate(tasks)}
    total, episodes_lines, truth = 0, [], []
    for ep in rollouts:
        values = {"episode_chunk": ep.index // V21_CHUNKS_SIZE, "episode_index": ep.index}
        frames = {
            "scene": render_episode(ep, *size),
            "wrist": np.stack([render_wrist(s) for s in ep.states]) if "wrist" in cameras else None,
        }
        n = len(ep.states)
        for camera in cameras:
            path = root / video_path.format(video_key=keys[camera], **values)
            _encode(frames[camera], path, codec)
        state = np.array([[s.gripper[0], s.gripper[1], float(s.closed)] for s in ep.states], np.float32)
        action = np.diff(state, axis=0, prepend=state[:1])
        table = pa.table(
            {
                "observation.state": pa.array(state.tolist(), pa.list_(pa.float32())),
                "action": pa.array(action.tolist(), pa.list_(pa.float32())),
                "timestamp": pa.array(np.arange(n, dtype=np.float32) / FPS),
                "frame_index": pa.array(np.arange(n, dtype=np.int64)),
                "episode_index": pa.array(np.full(n, ep.index, dtype=np.int64)),
                "index": pa.array(np.arange(total, total + n, dtype=np.int64)),
                "task_index": pa.array(np.full(n, task_index[ep.task], dtype=np.int64)),
            }
        )
        data = root / data_path.format(**values)
        data.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, data)
        episodes_lines.append(json.dumps({"episode_index": ep.index, "tasks": [ep.task], "length": n}))
        total += n
        truth.append(_truth_record(ep, source, str(ep.index)))
    meta = root / "meta"
    meta.mkdir()
    (meta / "episodes.jsonl").write_text("\n".join(episodes_lines) + "\n")
    (meta / "tasks.jsonl").write_text(
        "\n".join(json.dumps({"task_index": i, "task": t}) for t, i in task_index.items()) + "\n"
    )
    codec_name = {"libx264": "h264", "libsvtav1": "av1"}.get(codec, codec)
    features: dict[str, Any] = {}
    for camera in cameras:
        h, w = (size[1], size[0]) if camera == "scene" else (64, 64)
        features[keys[camera]] = {
            "dtype": "video",
            "shape": [h, w, 3],
            "names": ["height", "width", "channels"],
            "info": {"video.fps": FPS, "video.codec": codec_name, "video.pix_fmt": "yuv420p"},
        }
    features.update(
        {
            "observation.state": {"dtype": "float32", "shape": [3], "names": ["x", "y", "gripper_closed"]},
            "action": {"dtype": "float32", "shape": [3], "names": ["dx", "dy", "dgripper"]},
            **{
                k: {"dtype": "int64", "shape": [1], "names": None}
                for k in ("frame_index", "episode_index", "index", "task_index")
            },
            "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        }
    )
    info = {
        "codebase_version": "v2.1",
        "robot_type": "sim_tabletop_gripper",
        "total_episodes": len(rollouts),
        "total_frames": total,
        "total_tasks": len(tasks),
        "total_videos": len(rollouts) * len(cameras),
        "total_chunks": 1,
        "chunks_size": V21_CHUNKS_SIZE,
        "fps": FPS,
        "splits": {"train": f"0:{len(rollouts)}"},
        "data_path": data_path,
        "video_path": video_path,
        "features": features,
    }
    (meta / "info.json").write_text(json.dumps(info, indent=2))
    return truth


POLICIES = ("sim_policy_a", "sim_policy_b", "sim_policy_c")


def _write_roboarena(
    root: Path, rollouts: list[SimEpisode], codec: str, size: tuple[int, int]
) -> list[dict[str, Any]]:
    sessions = root / "evaluation_sessions"
    truth = []
    for start in range(0, len(rollouts), len(POLICIES)):
        group = rollouts[start : start + len(POLICIES)]
        session = f"sim_session_{start // len(POLICIES):04d}"
        folder = sessions / session
        folder.mkdir(parents=True)
        policies = {}
        for letter, ep, policy in zip("ABC", group, POLICIES, strict=False):
            result = ep.truth()
            policies[letter] = {
                "policy_name": policy,
                "partial_success": result["progress"],
                "binary_success": int(result["success"]),
            }
            run = folder / f"{letter}_{policy}"
            for camera, mirror in (("left", False), ("right", True)):
                _encode(render_episode(ep, *size, mirror=mirror), run / f"{policy}_video_{camera}.mp4", codec)
            truth.append(_truth_record(ep, "roboarena", f"{session}/{letter}"))
        instruction = group[0].task  # one table and one task per session
        (folder / "metadata.yaml").write_text(
            yaml.safe_dump({"language_instruction": instruction, "policies": policies})
        )
    return truth


def _encode(frames: np.ndarray, path: Path, codec: str) -> None:
    if codec == "libx264":
        video.encode(frames, path, fps=FPS, crf=20, preset="veryfast")
        return
    import av  # AV1, as most LeRobot datasets on the Hub are encoded

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS, options={"preset": "12", "g": "2", "crf": "30"})
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
