"""PushT (``gym_pusht/PushT-v0``, the simulator LeRobot uses) rollouts with the env's own ground truth.

An optional extra: ``pip install "roboreward[pusht]"`` (``gym-pusht``, which runs headless). Scripted
policies of graded skill push the T-shaped block: skill 1.0 always takes the scripted expert's
action (it brings the T onto the target, position and angle: the env's success on nearly every seed
within gym-pusht's 300 steps), skill 0.0 always a random one (coverage about 0), in between a mix.
Every rollout's truth is the environment's own, read at its final step: the block's ``coverage`` of
the target (continuous), the rubric bin of its progress min(1, coverage / success threshold)
(discrete, 1..5; 5 exactly when the env reports success) and the env's ``is_success`` flag (binary).
`write_pusht_dataset` writes the rollouts as a LeRobot v2.1 dataset (frames from ``env.render()``)
with ``sim_truth.jsonl`` and the rewards sidecar ``meta/episode_rewards.jsonl`` (so ``roboreward
build --lerobot`` labels each rollout with its true score), as the tabletop's writer does;
`roboreward.apps.rl.EpisodicRewardWrapper` wraps the same env.

    >>> from roboreward.sim.pusht import write_pusht_dataset
    >>> write_pusht_dataset("pusht_sim", episodes=12, seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import heapq
import itertools
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
#: The env's goal angle.
GOAL_ANGLE = np.pi / 4
#: The T's outline in its body frame (gym-pusht's ``add_tee``, scale 30), counter-clockwise.
_TEE_BODY = ((-60, 0), (60, 0), (60, 30), (15, 30), (15, 120), (-15, 120), (-15, 30), (-60, 30))
#: The block's moment of inertia (mass 1): gym-pusht gives both rectangles the bar's, 2 x 1275.
BLOCK_INERTIA = 2550.0
#: The agent's disc radius.
AGENT_RADIUS = 15.0
#: The expert's pose error: px of the centre's offset, plus this many px per radian of angle.
ANGLE_WEIGHT = 60.0
#: The expert's discount of a contact by the agent's way to it: gain / (1 + distance / this).
TRAVEL_SCALE = 120.0
#: How far from the face the expert's agent stops before a push, and its longest push per step (px).
APPROACH_GAP, MAX_PUSH = 4.0, 20.0
#: Skills of the scripted policies, cycled over the rollouts: expert to random.
SKILLS = (1.0, 0.9, 0.75, 0.5, 0.0)


def _require_extra() -> Any:
    try:
        import gym_pusht  # noqa: F401  (registers gym_pusht/PushT-v0)
    except ImportError:
        raise ImportError(
            "PushT needs the optional extra: pip install 'roboreward[pusht]' (gym-pusht)"
        ) from None
    import gymnasium as gym

    return gym


def make_pusht_env(max_steps: int = 300, size: int = 96) -> Any:
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


def _wrap(angle: float) -> float:
    return float((angle + np.pi) % (2 * np.pi) - np.pi)


@functools.lru_cache(maxsize=1)
def _pusher_geometry() -> tuple[Any, Any, np.ndarray, np.ndarray, np.ndarray]:
    """The T in its body frame (shapely), the pusher's obstacle outline, and every contact it may push at.

    A contact is a point of the T's outline, every 3 px, with the normal pointing into the block, where
    the pusher's disc fits without touching any other face (so not in the inner corners); its lever is
    the normal's moment arm about the centre of gravity.
    """
    import shapely.geometry as sg

    tee = sg.Polygon(_TEE_BODY)
    outline = tee.buffer(AGENT_RADIUS + 6.0, quad_segs=2, join_style=2)
    points, normals = [], []
    coords = list(tee.exterior.coords)
    for start, end in itertools.pairwise(coords):
        a, b = np.array(start), np.array(end)
        length = float(np.hypot(*(b - a)))
        tangent = (b - a) / length
        outward = np.array([tangent[1], -tangent[0]])  # the outline runs counter-clockwise
        n = int(length // 3.0)
        for i in range(1, n):
            p = a + (b - a) * i / n
            if tee.distance(sg.Point(p + outward * (AGENT_RADIUS + 0.5))) >= AGENT_RADIUS - 0.01:
                points.append(p)
                normals.append(-outward)
    pts, nrm = np.array(points), np.array(normals)
    r = pts - BLOCK_COG
    lever = r[:, 0] * nrm[:, 1] - r[:, 1] * nrm[:, 0]
    return tee, outline, pts, nrm, lever


def _expert_push(state: np.ndarray) -> np.ndarray:
    """The expert's target for the agent: the push that best reduces the T's pose error, or the way to it.

    Elementwise arithmetic only (no BLAS products or reductions, whose last bits depend on memory
    alignment): the same state gives the same action in every process.
    """
    agent = np.asarray(state[:2], float)
    origin, angle = np.asarray(state[2:4], float), float(state[4])
    c, s = np.cos(angle), np.sin(angle)

    def to_world(v: np.ndarray) -> np.ndarray:  # rotate body-frame vectors (rows) by the block's angle
        return np.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1]], axis=-1)

    def to_body(v: np.ndarray) -> np.ndarray:
        return np.stack([c * v[..., 0] + s * v[..., 1], -s * v[..., 0] + c * v[..., 1]], axis=-1)

    centre = origin + to_world(BLOCK_COG)
    ex, ey = GOAL_COG - centre
    ea = ANGLE_WEIGHT * _wrap(GOAL_ANGLE - angle)
    _, _, points, normals, lever = _pusher_geometry()
    world, push = origin + to_world(points), to_world(normals)
    # A frictionless push of d px at a contact moves the free block (mass 1) by d (n, lever / I) / (1 +
    # lever^2 / I): the pose change per px of push, the angle weighted as the pose error's.
    scale = 1.0 / (1.0 + lever * lever / BLOCK_INERTIA)
    fx, fy, fa = push[:, 0] * scale, push[:, 1] * scale, ANGLE_WEIGHT * lever / BLOCK_INERTIA * scale
    norm2 = fx * fx + fy * fy + fa * fa
    along = fx * ex + fy * ey + fa * ea
    approach = world - push * (AGENT_RADIUS + APPROACH_GAP)
    distance = np.hypot(approach[:, 0] - agent[0], approach[:, 1] - agent[1])
    usable = np.all((approach > 20) & (approach < 492), axis=1) & (along > 0)  # not behind a wall
    if not usable.any():
        return np.clip(agent, 0, 512).astype(np.float32)
    gain = np.where(usable, along / np.sqrt(norm2) / (1.0 + distance / TRAVEL_SCALE), -np.inf)
    best = int(np.argmax(gain))
    if distance[best] < 4.0:  # there: push by the step that best reduces the error (at most MAX_PUSH)
        step = min(along[best] / norm2[best], MAX_PUSH)
        target = world[best] + push[best] * (step - AGENT_RADIUS)
    else:
        target = origin + to_world(_waypoint(to_body(agent - origin), to_body(approach[best] - origin)))
    return np.clip(target, 0, 512).astype(np.float32)


def _waypoint(start: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """The next point on the shortest way from ``start`` to ``goal`` (both in the T's body frame) that
    keeps the pusher's disc off the block: straight when clear, else round the block's outline."""
    import shapely.geometry as sg

    tee, outline, *_ = _pusher_geometry()

    def clear(p: np.ndarray, q: np.ndarray) -> bool:
        return sg.LineString([p, q]).distance(tee) >= AGENT_RADIUS - 0.5

    if clear(start, goal):
        return goal
    nodes = [start, goal, *(np.array(v) for v in list(outline.exterior.coords)[:-1])]
    best, previous, queue, seen = {0: 0.0}, {}, [(0.0, 0)], set()
    while queue:  # Dijkstra on the visibility graph of the outline's corners
        cost, i = heapq.heappop(queue)
        if i in seen:
            continue
        seen.add(i)
        if i == 1:
            break
        for j in range(1, len(nodes)):
            if j not in seen and clear(nodes[i], nodes[j]):
                new = cost + float(np.hypot(*(nodes[i] - nodes[j])))
                if new < best.get(j, np.inf):
                    best[j], previous[j] = new, i
                    heapq.heappush(queue, (new, j))
    if 1 not in previous:  # pressed against the block: step straight away from its centre
        away = start - BLOCK_COG
        return start + 30.0 * away / (float(np.hypot(*away)) + 1e-9)
    node = 1
    while previous[node] != 0:
        node = previous[node]
    return nodes[node]


def scripted_push(state: np.ndarray, rng: np.random.Generator, skill: float) -> np.ndarray:
    """A scripted expert's target for the agent, replaced by a random one with probability 1 - skill.

    The expert brings the T onto the target, position and angle: at each step it weighs every contact
    of the T's outline (the disc pushes along the face's normal: gym-pusht's contacts are frictionless
    and its block keeps no velocity between steps, so a push of d px moves the block by d along the
    normal and turns it by d times the normal's moment arm over the block's inertia), takes the one
    whose push best reduces the pose error (the centre's offset and 60 px per radian of angle),
    discounted by how far the agent must travel to it, goes there round the block, and pushes by the
    step that the linearised motion says is best. Over 300 steps it reaches the env's success (coverage
    above 0.95) on nearly every seed (20 of 20 seeds tried), over 200 on about half; random actions
    rarely move the block at all.

    Args:
        state: the env's state observation ``[agent_x, agent_y, block_x, block_y, block_angle]``
            (the block's pose is its body origin, the bottom of the T's bar, not its centre).
        rng: the policy's random numbers.
        skill: in [0, 1].
    """
    if rng.random() >= skill:
        return rng.uniform(0, 512, 2).astype(np.float32)
    return _expert_push(state)


def pusht_truth(coverage: float, is_success: bool, threshold: float = 0.95) -> dict[str, Any]:
    """The three truths of a PushT rollout from the env's final coverage and success flag.

    Args:
        coverage: the env's ``info["coverage"]`` at the final step (kept to 12 decimals: the env's
            shapely intersection varies in its last bit from run to run on the same state).
        is_success: the env's ``info["is_success"]`` there.
        threshold: the env's success threshold of coverage.
    """
    coverage = round(float(coverage), 12)
    progress = round(float(min(1.0, max(0.0, coverage / threshold))), 12)
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
    out: str | os.PathLike[str], episodes: int = 10, seed: int = 0, max_steps: int = 300, size: int = 96
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
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
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
