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

`roboreward.sim.writers` writes episodes in the layouts the real readers read;
`roboreward.sim.truth` turns the truth into counterfactual rows; `roboreward.sim.env` is the same
table as a gymnasium env. Deterministic by seed.

    >>> from roboreward.sim.tabletop import make_episode
    >>> make_episode(0, "near_miss").truth()["score"]
    4
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

__all__ = [
    "COLOURS",
    "OUTCOMES",
    "Block",
    "Bowl",
    "Scene",
    "SimEpisode",
    "evaluate",
    "make_episode",
    "move_block",
    "place_apart",
    "render",
    "render_episode",
    "render_wrist",
    "task_text",
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
        """The block of this colour.

        Args:
            colour: one of `COLOURS` on this table.
        """
        return next(b for b in self.blocks if b.colour == colour)

    def bowl(self, colour: str) -> Bowl:
        """The bowl of this colour.

        Args:
            colour: one of `COLOURS` on this table.
        """
        return next(b for b in self.bowls if b.colour == colour)


def task_text(block: str, bowl: str) -> str:
    """The task text of putting the ``block`` block in the ``bowl`` bowl.

    Args:
        block: the block's colour.
        bowl: the bowl's colour.
    """
    return f"put the {block} block in the {bowl} bowl"


def evaluate(initial: Scene, final: Scene, block: str, bowl: str) -> dict[str, Any]:
    """Score the task "put the <block> block in the <bowl> bowl" on a final state.

    Returns ``{"score", "progress", "success"}``; progress lies in the `rubric.progress_to_score`
    bin of the score (0 -> 1, (0, 1/3] -> 2, (1/3, 2/3] -> 3, (2/3, 1) -> 4, 1 -> 5).

    Args:
        initial: the table before the episode.
        final: the table after it.
        block: the task's block colour.
        bowl: the task's bowl colour.
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
    """A random table point at least ``gap`` from every point in ``taken`` (and added to it).

    Args:
        rng: the random generator.
        taken: the points placed so far (the new one is appended).
        gap: the smallest distance to any of them, in table units.
    """
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


def move_block(scene: Scene, colour: str, x: float, y: float) -> Scene:
    """``scene`` with the ``colour`` block at (x, y).

    Args:
        scene: the table before.
        colour: which block moves.
        x, y: where it goes, in table units.
    """
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
            scene = move_block(scene, scene.held, *point)
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

    Args:
        index: the rollout's number (its seed, with ``seed`` and ``outcome``).
        outcome: one of `OUTCOMES`.
        seed: the dataset's seed.
        scene_index: the table's number (default ``index``).
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
    """Draw the scene from above as an RGB uint8 frame (H, W, 3); ``mirror`` flips it (a 2nd camera).

    Args:
        scene: the table to draw.
        width, height: the frame size in pixels.
        mirror: flip left-right.
    """
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


def render_wrist(scene: Scene, size: int = 64) -> np.ndarray:
    """A close-up camera that follows the gripper: an RGB uint8 frame (size, size, 3).

    Args:
        scene: the table to draw.
        size: the frame's side in pixels.
    """
    big = render(scene, 320, 240)
    cx, cy = int(scene.gripper[0] * 320), int(scene.gripper[1] * 240)
    half = 40
    padded = np.pad(big, ((half, half), (half, half), (0, 0)), mode="edge")
    crop = padded[cy : cy + 2 * half, cx : cx + 2 * half]
    step = 2 * half // size
    return crop[::step, ::step][:size, :size].copy()


def render_episode(episode: SimEpisode, width: int, height: int, mirror: bool = False) -> np.ndarray:
    """Every frame of ``episode`` from above, (T, H, W, 3) uint8 (see `render`).

    Args:
        episode: the rollout.
        width, height: the frame size.
        mirror: flip the frames left-right (a second camera).
    """
    return np.stack([render(s, width, height, mirror) for s in episode.states])
