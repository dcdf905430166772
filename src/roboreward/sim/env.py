"""The simulated tabletop as a gymnasium env, for RL loops with a reward model (`roboreward.apps.rl`).

    >>> from roboreward.sim.env import TabletopEnv
    >>> observation, info = TabletopEnv(seed=0, observation="state").reset()
    >>> observation.shape, info["task"].startswith("put the")
    ((8,), True)

``gymnasium.make("roboreward/Tabletop-v0", seed=0)`` works once this module is imported.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np

try:
    import gymnasium as gym
except ImportError as exc:  # the [rl] extra
    from roboreward.extras import MissingExtraError

    raise MissingExtraError('roboreward.sim.env needs gymnasium: pip install "roboreward[rl]"') from exc

import roboreward.sim.tabletop as tabletop

__all__ = ["GRASP_RADIUS", "TabletopEnv", "scripted_action"]

_TASK = re.compile(r"put the (\w+) block in the (\w+) bowl")
GRASP_RADIUS = 0.05  # a closing gripper grasps the nearest block whose centre is this close


def _parse_task(task: str) -> tuple[str, str]:
    match = _TASK.fullmatch(task.strip().lower())
    colours = sorted(tabletop.COLOURS)
    if not match or not set(match.groups()) <= set(colours):
        raise ValueError(
            f"task must read 'put the <colour> block in the <colour> bowl' (colours: {', '.join(colours)}), "
            f"got {task!r}"
        )
    block, bowl = match.groups()
    if block == bowl:
        raise ValueError(f"the tabletop has one object per colour: block and bowl cannot both be {block}")
    return block, bowl


def _tabletop(
    rng: np.random.Generator, block: str | None, bowl: str | None
) -> tuple[tabletop.Scene, str, str]:
    """A table with two bowls and three blocks of distinct colours; the target block and bowl first."""
    colours = [str(c) for c in rng.permutation(sorted(tabletop.COLOURS))]
    if block is not None and bowl is not None:
        others = [c for c in colours if c not in (block, bowl)]
        colours = [bowl, others[0], block, *others[1:3]]
    taken: list[tuple[float, float]] = []
    bowls = tuple(tabletop.Bowl(c, *tabletop.place_apart(rng, taken, 0.34)) for c in colours[:2])
    blocks = tuple(tabletop.Block(c, *tabletop.place_apart(rng, taken, 0.2)) for c in colours[2:5])
    return tabletop.Scene(blocks=blocks, bowls=bowls), blocks[0].colour, bowls[0].colour


class TabletopEnv(gym.Env):
    """A small gymnasium env on the simulated tabletop of `roboreward.sim.tabletop`.

    Each episode draws a table (two bowls, three blocks) and the task "put the <block> block in the
    <bowl> bowl" (or the ``task`` given, with those colours as the target). The gripper starts
    home, above the table.

    - Observation (``observation=``): ``"image"`` (default) the top-down frame, uint8 (H, W, 3), the
      same as ``render()``; ``"state"`` a float32 vector ``[gripper x, y, closed, holding, block x,
      y, bowl x, y]`` in [0, 1] (the target block and bowl), for state-based actors; ``"dict"`` both,
      as ``{"image", "state"}``.
    - Action: Box(-1, 1, (3,)): ``dx, dy`` move the gripper by at most ``step_size`` along each
      axis; ``grip > 0`` closes the gripper, which grasps the nearest block within `GRASP_RADIUS`
      as it closes; ``grip <= 0`` opens it, releasing what it carries there.
    - Terminated when the gripper opens after carrying a block (a placement); truncated after
      ``max_steps`` steps otherwise.
    - ``info["task"]`` on every step; ``info["truth"]`` on the last one: `tabletop.evaluate`'s ground truth
      for the task (``{"score", "progress", "success"}``). The env's own reward is 1.0 on a
      successful last step, else 0.

    ``seed`` seeds the first reset (later resets continue its random stream, as gymnasium envs do).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": tabletop.FPS}
    OBSERVATIONS = ("image", "state", "dict")

    def __init__(
        self,
        task: str | None = None,
        seed: int | None = None,
        max_steps: int = 60,
        render_size: tuple[int, int] = (160, 120),
        observation: str = "image",
        step_size: float = 0.06,
        render_mode: str | None = "rgb_array",
    ):
        if observation not in self.OBSERVATIONS:
            raise ValueError(f"observation must be one of {self.OBSERVATIONS}, got {observation!r}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be 'rgb_array' (or None), got {render_mode!r}")
        self.target = _parse_task(task) if task is not None else None
        self.seed = seed
        self.width, self.height = render_size
        self.max_steps = max_steps
        self.observation = observation
        self.step_size = step_size
        self.render_mode = render_mode
        image = gym.spaces.Box(0, 255, (self.height, self.width, 3), dtype=np.uint8)
        state = gym.spaces.Box(0.0, 1.0, (8,), dtype=np.float32)
        self.observation_space = {
            "image": image,
            "state": state,
            "dict": gym.spaces.Dict({"image": image, "state": state}),
        }[observation]
        self.action_space = gym.spaces.Box(-1.0, 1.0, (3,), dtype=np.float32)
        self.scene: tabletop.Scene | None = None
        self.initial: tabletop.Scene | None = None
        self.block, self.bowl = self.target or (None, None)
        self.steps = 0

    @property
    def task(self) -> str | None:
        """This episode's task (the given task before the first reset; None if there is none yet)."""
        return tabletop.task_text(self.block, self.bowl) if self.block else None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is None and self.seed is not None and self.scene is None:
            seed = self.seed
        super().reset(seed=seed)
        block, bowl = self.target or (None, None)
        self.scene, self.block, self.bowl = _tabletop(self.np_random, block, bowl)
        self.initial = self.scene
        self.steps = 0
        return self._observe(), {"task": self.task}

    def step(self, action: Any):
        if self.scene is None:
            raise RuntimeError("call reset() before step()")
        dx, dy, grip = (float(a) for a in np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0))
        x = min(max(self.scene.gripper[0] + dx * self.step_size, 0.0), 1.0)
        y = min(max(self.scene.gripper[1] + dy * self.step_size, 0.0), 1.0)
        scene = replace(self.scene, gripper=(x, y))
        if scene.held:
            scene = tabletop.move_block(scene, scene.held, x, y)
        placed = False
        if grip > 0 and not scene.closed:
            near = sorted((math.dist((b.x, b.y), (x, y)), b.colour) for b in scene.blocks)
            held = near[0][1] if near[0][0] < GRASP_RADIUS else None
            scene = replace(scene, closed=True, held=held)
        elif grip <= 0 and scene.closed:
            placed = scene.held is not None
            scene = replace(scene, closed=False, held=None)
        self.scene = scene
        self.steps += 1
        terminated = placed
        truncated = not placed and self.steps >= self.max_steps
        info: dict[str, Any] = {"task": self.task}
        reward = 0.0
        if terminated or truncated:
            info["truth"] = tabletop.evaluate(self.initial, self.scene, self.block, self.bowl)
            reward = 1.0 if info["truth"]["success"] else 0.0
        return self._observe(), reward, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        """The top-down frame, uint8 (H, W, 3); None when made with ``render_mode=None``."""
        return None if self.render_mode is None else self._frame()

    def _frame(self) -> np.ndarray:
        if self.scene is None:
            raise RuntimeError("call reset() before render()")
        return tabletop.render(self.scene, self.width, self.height)

    def state(self) -> np.ndarray:
        """``[gripper x, y, closed, holding, block x, y, bowl x, y]`` (float32; see the class docstring)."""
        scene = self.scene
        block, bowl = scene.block(self.block), scene.bowl(self.bowl)
        return np.array(
            [*scene.gripper, scene.closed, scene.held is not None, block.x, block.y, bowl.x, bowl.y],
            dtype=np.float32,
        )

    def _observe(self) -> Any:
        if self.observation == "state":
            return self.state()
        if self.observation == "dict":
            return {"image": self._frame(), "state": self.state()}
        return self._frame()

    def expert_action(self) -> np.ndarray:
        """A scripted policy's next action: go to the block, grasp, carry it to the bowl, release."""
        return scripted_action(self.state(), self.step_size)


def scripted_action(state: np.ndarray, step_size: float = 0.06) -> np.ndarray:
    """The scripted expert on a `TabletopEnv` state vector: reach the block, grasp, carry, release.

    Args:
        state: the env's state vector (`TabletopEnv.state`).
        step_size: the env's largest move per step.
    """
    gx, gy, closed, holding, bx, by, cx, cy = (float(v) for v in state)
    tx, ty = (cx, cy) if holding else (bx, by)
    dx, dy = tx - gx, ty - gy
    distance = math.hypot(dx, dy)
    if distance > 0.02:
        # move at most one step's length; keep the gripper closed only while it carries the block
        scale = min(distance, step_size) / distance / step_size
        return np.array([dx * scale, dy * scale, 1.0 if holding else -1.0], dtype=np.float32)
    if holding:
        return np.array([0.0, 0.0, -1.0], dtype=np.float32)  # over the bowl: release
    # over the block: close (an empty closed gripper must open first, so it closes on the next step)
    return np.array([0.0, 0.0, -1.0 if closed else 1.0], dtype=np.float32)


# `gymnasium.make("roboreward/Tabletop-v0", seed=0)` and `gymnasium.make_vec(...)` work too.
if "roboreward/Tabletop-v0" not in gym.registry:
    gym.register(id="roboreward/Tabletop-v0", entry_point="roboreward.sim.env:TabletopEnv")
