"""PushT (``gym_pusht/PushT-v0``, the simulator LeRobot uses) rollouts with the env's own ground truth.

An optional extra: ``pip install "roboreward[pusht]"`` (``gym-pusht``, which runs headless). Scripted
policies of graded skill push the T-shaped block: skill 1.0 always takes the heuristic pusher's
action (it brings the T's centre onto the target's, without turning it: coverage about 0.3 to 0.5),
skill 0.0 always a random one (coverage about 0), in between a mix. Every rollout's truth is the environment's
own, read at its final step: the block's ``coverage`` of the target (continuous), the rubric bin of
its progress min(1, coverage / success threshold) (discrete, 1..5; 5 exactly when the env reports
success) and the env's ``is_success`` flag (binary). `write_pusht_dataset` writes the rollouts as a
LeRobot v2.1 dataset (frames from ``env.render()``) with ``sim_truth.jsonl`` and the rewards sidecar
``meta/episode_rewards.jsonl`` (so ``roboreward build --lerobot`` labels each rollout with its true
score), as the tabletop's writer does; `roboreward.apps.rl.EpisodicRewardWrapper` wraps the same env.

    >>> from roboreward.sim.pusht import write_pusht_dataset
    >>> write_pusht_dataset("pusht_sim", episodes=12, seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from roboreward import rubric, video
from roboreward.sim.truth import write_truth_rewards
from roboreward.sources.lerobot.layout import V21_CHUNKS_SIZE, V21_DATA_PATH, V21_VIDEO_PATH

__all__ = [
    "PUSHT_CAMERA",
    "PUSHT_ENV_ID",
    "PUSHT_TASK",
    "PushTRollout",
    "make_pusht_env",
    "pusht_truth",
    "rollout_pusht",
    "scripted_push",
    "write_pusht_dataset",
]

PUSHT_ENV_ID = "gym_pusht/PushT-v0"
PUSHT_TASK = "push the grey T-shaped block so that it covers the green T-shaped target"
PUSHT_CAMERA = "observation.image"
#: The T's centre of gravity in its body frame (gym-pusht's ``add_tee``, scale 30: the mean of the
#: bar's centre (0, 15) and the stem's (0, 75)).
BLOCK_COG = np.array([0.0, 45.0])
#: The env's goal pose (256, 256, pi / 4), fixed in gym-pusht, as the centre of gravity it asks for.
GOAL_COG = np.array([256.0, 256.0]) + np.array(
    [-np.sin(np.pi / 4) * BLOCK_COG[1], np.cos(np.pi / 4) * BLOCK_COG[1]]
)
#: How far behind the block's centre the pusher starts a push.
PUSH_OFFSET = 75.0
#: Skills of the scripted policies, cycled over the rollouts: expert to random.
SKILLS = (1.0, 0.75, 0.5, 0.25, 0.0)


def _require_extra() -> Any:
    try:
        import gym_pusht  # noqa: F401  (registers gym_pusht/PushT-v0)
    except ImportError:
        raise ImportError(
            "PushT needs the optional extra: pip install 'roboreward[pusht]' (gym-pusht)"
        ) from None
    import gymnasium as gym

    return gym


def make_pusht_env(max_steps: int = 100, size: int = 96) -> Any:
    """``gym_pusht/PushT-v0`` with state observations and ``render()`` frames of ``size`` x ``size``.

    Args:
        max_steps: steps before the episode is truncated.
        size: side of the rendered frames, at least 96 (gym-pusht draws the action marker with a
            line 1/96 of the frame thick, and a line 0 pixels thick is an OpenCV error).
    """
    if size < 96:
        raise ValueError(f"size must be >= 96 (gym-pusht cannot draw smaller frames), got {size}")
    gym = _require_extra()
    return gym.make(
        PUSHT_ENV_ID,
        obs_type="state",
        render_mode="rgb_array",
        max_episode_steps=max_steps,
        visualization_width=size,
        visualization_height=size,
    )


def _rotated(angle: float, vector: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([c * vector[0] - s * vector[1], s * vector[0] + c * vector[1]])


def scripted_push(state: np.ndarray, rng: np.random.Generator, skill: float) -> np.ndarray:
    """A heuristic pusher's target for the agent, replaced by a random one with probability 1 - skill.

    The pusher brings the T's centre of gravity onto the target's: it goes round the block to the
    side away from the goal (never through it), then pushes the centre toward the goal's. It does not
    turn the block, so an expert's coverage is what position alone gives (about 0.3 to 0.5 over 100
    to 200 steps: rubric score 2 or 3), while random actions rarely move the block at all.

    Args:
        state: the env's state observation ``[agent_x, agent_y, block_x, block_y, block_angle]``
            (the block's pose is its body origin, the bottom of the T's bar, not its centre).
        rng: the policy's random numbers.
        skill: in [0, 1].
    """
    if rng.random() >= skill:
        return rng.uniform(0, 512, 2).astype(np.float32)
    agent = np.asarray(state[:2], float)
    centre = np.asarray(state[2:4], float) + _rotated(float(state[4]), BLOCK_COG)
    to_goal = GOAL_COG - centre
    dist = float(np.linalg.norm(to_goal))
    if dist < 5.0:  # there: stay clear
        return np.clip(agent, 0, 512).astype(np.float32)
    d = to_goal / dist
    behind = np.clip(centre - PUSH_OFFSET * d, 15, 497)
    rel = agent - centre
    far = np.linalg.norm(agent - behind) > 15.0
    if far and np.dot(rel, d) > -0.3 * PUSH_OFFSET:  # on the goal's side: go round the block
        perp = np.array([-d[1], d[0]])
        side = perp if np.dot(rel, perp) >= 0 else -perp
        target = centre + side * PUSH_OFFSET * 1.4 - d * PUSH_OFFSET * 0.6
    elif far:
        target = behind
    else:  # behind it: push the centre toward the goal's
        target = centre + d * min(dist, 30.0)
    return np.clip(target, 0, 512).astype(np.float32)


def pusht_truth(coverage: float, is_success: bool, threshold: float = 0.95) -> dict[str, Any]:
    """The three truths of a PushT rollout from the env's final coverage and success flag.

    Args:
        coverage: the env's ``info["coverage"]`` at the final step.
        is_success: the env's ``info["is_success"]`` there.
        threshold: the env's success threshold of coverage.
    """
    progress = float(min(1.0, max(0.0, coverage / threshold)))
    score = rubric.progress_to_score(progress)
    score = 5 if is_success else min(score, 4)  # 5 exactly when the env says success
    return {"coverage": float(coverage), "progress": progress, "score": score, "success": bool(is_success)}


@dataclass
class PushTRollout:
    """One rollout: frames (T, H, W, 3), states, actions, the policy's skill and the env's truth."""

    index: int
    skill: float
    frames: np.ndarray
    states: np.ndarray
    actions: np.ndarray
    truth: dict[str, Any]


def rollout_pusht(env: Any, index: int, skill: float, seed: int = 0) -> PushTRollout:
    """Run one scripted rollout on ``env`` (from `make_pusht_env`) until it ends.

    Args:
        env: the PushT env.
        index: the rollout's number (with ``seed``, it seeds the env and the policy).
        skill: the policy's skill in [0, 1].
        seed: the base seed.
    """
    rng = np.random.default_rng([seed, index])
    state, info = env.reset(seed=seed * 100_003 + index)
    frames, states, actions = [env.render()], [np.asarray(state, np.float32)], []
    done = False
    while not done:
        action = scripted_push(state, rng, skill)
        state, _, terminated, truncated, info = env.step(action)
        frames.append(env.render())
        states.append(np.asarray(state, np.float32))
        actions.append(action)
        done = terminated or truncated
    threshold = float(getattr(env.unwrapped, "success_threshold", 0.95))
    truth = pusht_truth(float(info["coverage"]), bool(info["is_success"]), threshold)
    return PushTRollout(index, skill, np.stack(frames), np.stack(states), np.stack(actions), truth)


def write_pusht_dataset(
    out: str | os.PathLike[str], episodes: int = 10, seed: int = 0, max_steps: int = 100, size: int = 96
) -> Path:
    """Write ``episodes`` PushT rollouts as a LeRobot v2.1 dataset, with ``sim_truth.jsonl``.

    Args:
        out: the new folder (it must not exist).
        episodes: how many rollouts (skills cycle through `SKILLS`).
        seed: deterministic in it.
        max_steps: steps per rollout at most.
        size: side of the frames.
    """
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists: give a new folder")
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    env = make_pusht_env(max_steps=max_steps, size=size)
    fps = int(env.metadata.get("render_fps", 10))
    data_path, video_path = V21_DATA_PATH, V21_VIDEO_PATH
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent if out.parent.exists() else None))
    try:
        total, lines, truth = 0, [], []
        for index in range(episodes):
            skill = SKILLS[index % len(SKILLS)]
            rollout = rollout_pusht(env, index, skill, seed)
            values = {"episode_chunk": 0, "episode_index": index}
            video.encode(rollout.frames, tmp / video_path.format(video_key=PUSHT_CAMERA, **values), fps=fps)
            n = len(rollout.frames)
            actions = np.concatenate([rollout.actions, rollout.actions[-1:]])  # one per frame
            table = pa.table(
                {
                    "observation.state": pa.array(rollout.states.tolist(), pa.list_(pa.float32())),
                    "action": pa.array(actions.tolist(), pa.list_(pa.float32())),
                    "timestamp": pa.array(np.arange(n, dtype=np.float32) / fps),
                    "frame_index": pa.array(np.arange(n, dtype=np.int64)),
                    "episode_index": pa.array(np.full(n, index, dtype=np.int64)),
                    "index": pa.array(np.arange(total, total + n, dtype=np.int64)),
                    "task_index": pa.array(np.zeros(n, dtype=np.int64)),
                }
            )
            path = tmp / data_path.format(**values)
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path)
            lines.append(json.dumps({"episode_index": index, "tasks": [PUSHT_TASK], "length": n}))
            truth.append(
                {
                    "source": "sim/pusht",
                    "episode_id": str(index),
                    "task": PUSHT_TASK,
                    "skill": skill,
                    **rollout.truth,
                }
            )
            total += n
        env.close()
        meta = tmp / "meta"
        meta.mkdir()
        (meta / "episodes.jsonl").write_text("\n".join(lines) + "\n")
        (meta / "tasks.jsonl").write_text(json.dumps({"task_index": 0, "task": PUSHT_TASK}) + "\n")
        scalar = {"dtype": "int64", "shape": [1], "names": None}
        info = {
            "codebase_version": "v2.1",
            "robot_type": "pusht",
            "total_episodes": episodes,
            "total_frames": total,
            "total_tasks": 1,
            "total_videos": episodes,
            "total_chunks": 1,
            "chunks_size": V21_CHUNKS_SIZE,
            "fps": fps,
            "splits": {"train": f"0:{episodes}"},
            "data_path": data_path,
            "video_path": video_path,
            "features": {
                PUSHT_CAMERA: {
                    "dtype": "video",
                    "shape": [size, size, 3],
                    "names": ["height", "width", "channels"],
                    "info": {"video.fps": fps, "video.codec": "h264", "video.pix_fmt": "yuv420p"},
                },
                "observation.state": {"dtype": "float32", "shape": [5], "names": None},
                "action": {"dtype": "float32", "shape": [2], "names": None},
                **{k: scalar for k in ("frame_index", "episode_index", "index", "task_index")},
                "timestamp": {"dtype": "float32", "shape": [1], "names": None},
            },
        }
        (meta / "info.json").write_text(json.dumps(info, indent=2))
        (tmp / "sim_truth.jsonl").write_text("".join(json.dumps(t) + "\n" for t in truth))
        write_truth_rewards(tmp, truth)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
