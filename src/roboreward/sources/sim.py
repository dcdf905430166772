"""Procedural tabletop robot episodes with ground-truth rewards, written in real on-disk layouts.

A top-down table with coloured blocks and bowls; a scripted gripper picks a block and places it.
Each episode's task is "put the <colour> block in the <colour> bowl", and its outcome is chosen so
that every rubric level occurs:

==============  =====  =====================================================================
outcome         score  final state
==============  =====  =====================================================================
success         5      the block rests inside the target bowl
near_miss       4      the block sits on the target bowl's rim: right place, misses the tolerance
wrong_bowl      3      the block is in the other bowl: the general goal region, wrong relation
partial         2      the block was carried part of the way and dropped on the table
wrong_object    1      another block went into the bowl; the target block never moved
no_progress     1      the gripper wandered and grasped nothing
==============  =====  =====================================================================

Ground truth comes from the simulated final state through one function, `evaluate`, in the three
reward types of the paper's study: binary success, continuous progress in [0, 1] (inside the
`rubric.progress_to_score` bin of its score, so a RoboArena reader recovers the score) and the
discrete 1..5 score. Because `evaluate` scores any task against any final state, every video also
gets counterfactual tasks whose levels are exactly known, to score a relabeler against the truth.

Episodes are written through the readers users use: a LeRobot v2.1 dataset (successes only, like
Open X-Embodiment; H.264 or AV1) or a RoboArena dump (successes and failures with partial_success),
plus ``sim_truth.jsonl`` with every episode's truth. Deterministic by seed.

    >>> from roboreward.sources import sim
    >>> sim.write_sim_dataset("sim_oxe", episodes=20, layout="lerobot", seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from roboreward import video

__all__ = [
    "COLOURS",
    "OUTCOMES",
    "Block",
    "Bowl",
    "Scene",
    "SimEpisode",
    "evaluate",
    "make_episode",
    "render",
    "write_sim_dataset",
]

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (214, 48, 39),
    "green": (46, 160, 67),
    "blue": (41, 98, 214),
    "yellow": (236, 196, 32),
    "purple": (142, 68, 173),
    "orange": (243, 128, 33),
}
OUTCOMES = ("success", "near_miss", "wrong_bowl", "partial", "wrong_object", "no_progress")
OUTCOME_SCORE = {
    "success": 5,
    "near_miss": 4,
    "wrong_bowl": 3,
    "partial": 2,
    "wrong_object": 1,
    "no_progress": 1,
}

BLOCK_SIZE = 0.08  # side, in table units ([0, 1] across)
BOWL_INNER = 0.085  # a block centre this close to a bowl's centre is inside it
BOWL_OUTER = 0.125  # ... this close is on the rim
HOME = (0.5, 0.92)
TABLE = (196, 170, 132)
FPS = 10
LEROBOT_CAMERA = "observation.images.image"
WRIST_CAMERA = "observation.images.wrist_image"


@dataclass(frozen=True)
class Block:
    colour: str
    x: float
    y: float


@dataclass(frozen=True)
class Bowl:
    colour: str
    x: float
    y: float


@dataclass(frozen=True)
class Scene:
    """Where everything is, and where the gripper is and what it holds."""

    blocks: tuple[Block, ...]
    bowls: tuple[Bowl, ...]
    gripper: tuple[float, float] = HOME
    closed: bool = False
    held: str | None = None  # colour of the held block

    def block(self, colour: str) -> Block:
        return next(b for b in self.blocks if b.colour == colour)

    def bowl(self, colour: str) -> Bowl:
        return next(b for b in self.bowls if b.colour == colour)


def task_text(block: str, bowl: str) -> str:
    return f"put the {block} block in the {bowl} bowl"


def evaluate(initial: Scene, final: Scene, block: str, bowl: str) -> dict[str, Any]:
    """Score the task "put the <block> block in the <bowl> bowl" on a final state.

    Returns ``{"score", "progress", "success"}``; progress lies in the `rubric.progress_to_score`
    bin of the score (0 -> 1, (0, 1/3] -> 2, (1/3, 2/3] -> 3, (2/3, 1) -> 4, 1 -> 5).
    """
    start, end, target = initial.block(block), final.block(block), final.bowl(bowl)
    d0 = math.dist((start.x, start.y), (target.x, target.y))
    d = math.dist((end.x, end.y), (target.x, target.y))
    if d <= BOWL_INNER:
        score, progress = 5, 1.0
    elif d <= BOWL_OUTER:
        closeness = (BOWL_OUTER - d) / (BOWL_OUTER - BOWL_INNER)
        score, progress = 4, 0.7 + 0.25 * closeness
    elif any(math.dist((end.x, end.y), (b.x, b.y)) <= BOWL_INNER for b in final.bowls if b.colour != bowl):
        score, progress = 3, 0.5
    elif d0 - d > 0.05:
        score, progress = 2, min(max((d0 - d) / d0, 0.05), 1 / 3)
    else:
        score, progress = 1, 0.0
    return {"score": score, "progress": round(progress, 4), "success": score == 5}


# ---------------------------------------------------------------------------------------------
# Episodes


@dataclass
class SimEpisode:
    """One scripted rollout: the scene before and after, the frames' gripper states, and the truth."""

    index: int
    block: str
    bowl: str
    outcome: str
    initial: Scene
    states: list[Scene] = field(default_factory=list)

    @property
    def task(self) -> str:
        return task_text(self.block, self.bowl)

    @property
    def final(self) -> Scene:
        return self.states[-1]

    def truth(self) -> dict[str, Any]:
        return evaluate(self.initial, self.final, self.block, self.bowl)

    def counterfactuals(self) -> list[dict[str, Any]]:
        """Every other task on this table, with its exact score on this episode's final state."""
        out = []
        for blk in self.initial.blocks:
            for bwl in self.initial.bowls:
                if (blk.colour, bwl.colour) != (self.block, self.bowl):
                    result = evaluate(self.initial, self.final, blk.colour, bwl.colour)
                    out.append({"task": task_text(blk.colour, bwl.colour), **result})
        return out


def place_apart(
    rng: np.random.Generator, taken: list[tuple[float, float]], gap: float
) -> tuple[float, float]:
    """A random table point at least ``gap`` from every point in ``taken`` (and added to it)."""
    for _ in range(1000):
        point = (float(rng.uniform(0.12, 0.88)), float(rng.uniform(0.12, 0.72)))
        if all(math.dist(point, other) >= gap for other in taken):
            taken.append(point)
            return point
    raise RuntimeError("could not place the objects apart")  # pragma: no cover - 1000 tries suffice


def _scene(rng: np.random.Generator) -> Scene:
    colours = list(rng.permutation(list(COLOURS)))
    taken: list[tuple[float, float]] = []
    bowls = tuple(Bowl(c, *place_apart(rng, taken, 0.34)) for c in colours[:2])
    blocks = tuple(Block(c, *place_apart(rng, taken, 0.2)) for c in colours[2:5])
    return Scene(blocks=blocks, bowls=bowls)


def _moved(scene: Scene, colour: str, x: float, y: float) -> Scene:
    blocks = tuple(replace(b, x=x, y=y) if b.colour == colour else b for b in scene.blocks)
    return replace(scene, blocks=blocks)


def _path(scene: Scene, to: tuple[float, float], steps: int) -> list[Scene]:
    """Smoothly move the gripper (and what it holds) to ``to`` in ``steps`` frames."""
    (x0, y0), frames = scene.gripper, []
    for k in range(1, steps + 1):
        t = 0.5 - 0.5 * math.cos(math.pi * k / steps)
        point = (x0 + (to[0] - x0) * t, y0 + (to[1] - y0) * t)
        scene = replace(scene, gripper=point)
        if scene.held:
            scene = _moved(scene, scene.held, *point)
        frames.append(scene)
    return frames


def _hold(scene: Scene, steps: int, **changes: Any) -> list[Scene]:
    scene = replace(scene, **changes)
    return [scene] * steps


def _offset(rng: np.random.Generator, low: float, high: float) -> tuple[float, float]:
    angle, radius = rng.uniform(0, 2 * math.pi), rng.uniform(low, high)
    return radius * math.cos(angle), radius * math.sin(angle)


def _partial_destination(
    scene: Scene, block: Block, bowl: Bowl, rng: np.random.Generator
) -> tuple[float, float]:
    """A drop point about a third of the way to the bowl, off every bowl: rubric level 2."""
    dx, dy = bowl.x - block.x, bowl.y - block.y
    length = math.hypot(dx, dy)
    side = (-dy / length, dx / length)
    first = float(rng.uniform(0.3, 0.36))
    for frac in (first, 0.33, 0.3, 0.36, 0.27, 0.4, 0.24):
        for offset in (0.0, 0.06, -0.06, 0.12, -0.12):
            point = (
                min(max(block.x + dx * frac + side[0] * offset, 0.05), 0.95),
                min(max(block.y + dy * frac + side[1] * offset, 0.05), 0.95),
            )
            progress = length - math.dist(point, (bowl.x, bowl.y))
            if progress > 0.06 and all(math.dist(point, (b.x, b.y)) > BOWL_OUTER + 0.01 for b in scene.bowls):
                return point
    raise RuntimeError("no drop point for a partial rollout")  # pragma: no cover - the table is large enough


def make_episode(index: int, outcome: str, seed: int = 0, scene_index: int | None = None) -> SimEpisode:
    """The scripted rollout number ``index`` with the given outcome (deterministic in its arguments).

    Rollouts with the same ``scene_index`` (default: ``index``) start from the same table, as the
    policies of one RoboArena session do.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
    scene = _scene(np.random.default_rng([seed, index if scene_index is None else scene_index, 7]))
    rng = np.random.default_rng([seed, index, OUTCOMES.index(outcome)])
    target_block, other_block = scene.blocks[0], scene.blocks[1]
    target_bowl, other_bowl = scene.bowls
    episode = SimEpisode(index, target_block.colour, target_bowl.colour, outcome, scene)
    states = [scene] * 3

    def pick_and_place(colour: str, dest: tuple[float, float]) -> None:
        nonlocal scene
        block = scene.block(colour)
        states.extend(_path(scene, (block.x, block.y), 10))
        scene = states[-1]
        states.extend(_hold(scene, 3, closed=True, held=colour))
        scene = states[-1]
        states.extend(_path(scene, dest, 12))
        scene = states[-1]
        states.extend(_hold(scene, 3, closed=False, held=None))
        scene = states[-1]

    if outcome == "success":
        dx, dy = _offset(rng, 0.0, BOWL_INNER * 0.6)
        pick_and_place(target_block.colour, (target_bowl.x + dx, target_bowl.y + dy))
    elif outcome == "near_miss":
        dx, dy = _offset(rng, BOWL_INNER + 0.01, BOWL_OUTER - 0.01)
        pick_and_place(target_block.colour, (target_bowl.x + dx, target_bowl.y + dy))
    elif outcome == "wrong_bowl":
        dx, dy = _offset(rng, 0.0, BOWL_INNER * 0.6)
        pick_and_place(target_block.colour, (other_bowl.x + dx, other_bowl.y + dy))
    elif outcome == "partial":
        pick_and_place(target_block.colour, _partial_destination(scene, target_block, target_bowl, rng))
    elif outcome == "wrong_object":
        dx, dy = _offset(rng, 0.0, BOWL_INNER * 0.6)
        pick_and_place(other_block.colour, (target_bowl.x + dx, target_bowl.y + dy))
    else:  # no_progress: hover near the wrong things and go home
        for point in ((0.2, 0.3), (0.8, 0.35)):
            states.extend(_path(scene, point, 9))
            scene = states[-1]
    states.extend(_path(scene, HOME, 6))
    episode.states = states
    expected = OUTCOME_SCORE[outcome]
    if episode.truth()["score"] != expected:  # pragma: no cover - guards the geometry above
        raise AssertionError(f"episode {index}: outcome {outcome} scored {episode.truth()['score']}")
    return episode


# ---------------------------------------------------------------------------------------------
# Rendering


def render(scene: Scene, width: int = 160, height: int = 120, mirror: bool = False) -> np.ndarray:
    """Draw the scene from above as an RGB uint8 frame (H, W, 3); ``mirror`` flips it (a 2nd camera)."""
    y, x = np.mgrid[0:height, 0:width]
    u, v = (x + 0.5) / width, (y + 0.5) / height
    frame = np.empty((height, width, 3), np.float32)
    frame[:] = TABLE
    frame += ((np.sin(u * 40) * np.sin(v * 7)) * 6)[..., None]  # wood grain
    aspect = width / height

    def disc(cx: float, cy: float, radius: float) -> np.ndarray:
        return ((u - cx) * aspect) ** 2 + (v - cy) ** 2 <= radius**2

    for bowl in scene.bowls:
        colour = np.array(COLOURS[bowl.colour], np.float32)
        frame[disc(bowl.x, bowl.y, BOWL_OUTER)] = colour * 0.9
        frame[disc(bowl.x, bowl.y, BOWL_OUTER - 0.025)] = colour * 0.45 + 120
    held = [b for b in scene.blocks if b.colour == scene.held]
    for block in [b for b in scene.blocks if b.colour != scene.held] + held:
        half = BLOCK_SIZE / 2 * (1.15 if block.colour == scene.held else 1.0)
        square = (np.abs((u - block.x) * aspect) <= half) & (np.abs(v - block.y) <= half)
        frame[square] = np.array(COLOURS[block.colour], np.float32)
        inner = (np.abs((u - block.x) * aspect) <= half * 0.7) & (np.abs(v - block.y) <= half * 0.7)
        frame[square & ~inner] *= 0.75
    gx, gy = scene.gripper
    spread = 0.035 if scene.closed else 0.065
    frame[disc(gx, gy - 0.03, 0.03)] = (60, 60, 66)
    for side in (-1, 1):
        finger = (np.abs((u - (gx + side * spread)) * aspect) <= 0.012) & (np.abs(v - (gy + 0.005)) <= 0.035)
        frame[finger] = (40, 40, 44)
    out = np.clip(frame, 0, 255).astype(np.uint8)
    return out[:, ::-1].copy() if mirror else out


def _wrist(scene: Scene, size: int = 64) -> np.ndarray:
    """A close-up camera that follows the gripper."""
    big = render(scene, 320, 240)
    cx, cy = int(scene.gripper[0] * 320), int(scene.gripper[1] * 240)
    half = 40
    padded = np.pad(big, ((half, half), (half, half), (0, 0)), mode="edge")
    crop = padded[cy : cy + 2 * half, cx : cx + 2 * half]
    step = 2 * half // size
    return crop[::step, ::step][:size, :size].copy()


def _frames(episode: SimEpisode, width: int, height: int, mirror: bool = False) -> np.ndarray:
    return np.stack([render(s, width, height, mirror) for s in episode.states])


# ---------------------------------------------------------------------------------------------
# Writing datasets

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
    ``libsvtav1``), read by `roboreward.sources.lerobot.LeRobotSource`. ``roboarena``: a RoboArena
    dump of sessions with three policy runs each (a mix of outcomes), read by
    `roboreward.sources.roboarena.RoboArenaSource`. Writes into a temporary folder and renames it, so
    ``out`` is either complete or absent.
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
    data_path = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
    video_path = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
    tasks = sorted({e.task for e in rollouts})
    task_index = {t: i for i, t in enumerate(tasks)}
    total, episodes_lines, truth = 0, [], []
    for ep in rollouts:
        values = {"episode_chunk": ep.index // 1000, "episode_index": ep.index}
        frames = {
            "scene": _frames(ep, *size),
            "wrist": np.stack([_wrist(s) for s in ep.states]) if "wrist" in cameras else None,
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
        "chunks_size": 1000,
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
                _encode(_frames(ep, *size, mirror=mirror), run / f"{policy}_video_{camera}.mp4", codec)
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


# ---------------------------------------------------------------------------------------------
# Programmatic counterfactuals from the truth


class TruthCounterfactuals:
    """An ``augment`` hook that adds counterfactual rows whose levels are known exactly.

    For each episode found in the ``sim_truth.jsonl`` files (matched by source and episode id), it
    adds at most ``per_level`` rows per rubric level 1..4 from the episode's counterfactual tasks,
    evaluated on its simulated final state: the same video, another instruction, the true score.
    This is what a perfect relabeler would produce, and a yardstick for a model-based one.
    """

    def __init__(self, truth_files: Sequence[str | os.PathLike[str]], per_level: int = 1):
        self.truth: dict[tuple[str, str], dict[str, Any]] = {}
        for path in truth_files:
            for line in Path(path).read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                self.truth[(record["source"], record["episode_id"])] = record
        self.per_level = per_level

    def rows(self, episode: Any) -> list[Any]:
        record = self.truth.get((episode.source, episode.episode_id))
        if record is None or episode.augmentation not in ("original", "rewrite"):
            return []
        out, taken = [], dict.fromkeys(range(1, 5), 0)
        for cf in sorted(record["counterfactuals"], key=lambda c: c["task"]):
            if cf["score"] < 5 and taken[cf["score"]] < self.per_level:
                taken[cf["score"]] += 1
                provenance = {
                    **episode.provenance,
                    "counterfactual": {"level": cf["score"], "labeller": "sim-truth"},
                }
                out.append(
                    episode.replace(
                        task=cf["task"],
                        reward=cf["score"],
                        progress=cf["progress"],
                        augmentation="counterfactual",
                        provenance=provenance,
                    )
                )
        return out

    def __call__(self, episodes: Sequence[Any], work_dir: Any) -> tuple[list[Any], list[Any], dict[str, Any]]:
        added = [row for ep in episodes for row in self.rows(ep)]
        levels = {str(k): sum(1 for r in added if r.reward == k) for k in range(1, 5)}
        return (
            [*episodes, *added],
            [],
            {
                "sim_truth": {
                    "matched": sum(1 for e in episodes if (e.source, e.episode_id) in self.truth),
                    "added": len(added),
                    "by_level": levels,
                }
            },
        )
