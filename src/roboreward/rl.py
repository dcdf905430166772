"""Reward models in the RL loop: an episodic reward wrapper for gymnasium, and a small tabletop env.

The paper's last step (§5.2) fine-tunes a policy (DSRL on a diffusion policy) with the reward VLM's
end-of-episode score instead of a human success label. `EpisodicRewardWrapper` makes that a wrapper:
it records the episode's frames and, when the episode ends, scores the video against the task and
returns the reward on that last step (0 before), with the full result in ``info["roboreward"]``.

    >>> env = EpisodicRewardWrapper(TabletopEnv(), RewardModel.from_pretrained("my-org/RoboReward-3B"),
    ...                             reward_type="progress")  # doctest: +SKIP

Reward types, as in the paper's §3 study: ``progress`` = (E[score] - 1) / 4 in [0, 1], ``discrete`` =
the 1..5 score, ``binary`` = 1 if the score reaches ``binary_threshold`` (default 5) else 0.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from roboreward.sources import sim

__all__ = [
    "REWARD_TYPES",
    "EpisodicRewardWrapper",
    "TabletopEnv",
    "VectorEpisodicRewardWrapper",
    "episode_reward",
]

REWARD_TYPES = ("progress", "discrete", "binary")


def episode_reward(result: Any, reward_type: str = "progress", binary_threshold: int = 5) -> float:
    """The RL reward of a `ScoreResult` for a reward type."""
    if reward_type == "progress":
        return float(result.reward)
    if reward_type == "discrete":
        return float(result.score)
    if reward_type == "binary":
        return 1.0 if result.score >= binary_threshold else 0.0
    raise ValueError(f"reward_type must be one of {REWARD_TYPES}, got {reward_type!r}")


def keep_frames(frames: list[np.ndarray], max_frames: int) -> np.ndarray:
    """At most ``max_frames`` frames spread evenly over the episode, the first and last included."""
    if len(frames) <= max_frames:
        return np.stack(frames)
    index = np.rint(np.linspace(0, len(frames) - 1, max_frames)).astype(int)
    return np.stack([frames[i] for i in index])


class _EpisodeRecorder:
    """Shared by the single and vector wrappers: settings, frame keeping and scoring."""

    def _setup(
        self,
        reward_model: Any,
        task: str | None,
        camera: str | None,
        reward_type: str,
        fps: float | None,
        max_frames: int,
        binary_threshold: int,
        env_fps: float | None,
    ) -> None:
        if reward_type not in REWARD_TYPES:
            raise ValueError(f"reward_type must be one of {REWARD_TYPES}, got {reward_type!r}")
        if max_frames < 2:
            raise ValueError(f"max_frames must be >= 2, got {max_frames}")
        self.reward_model = reward_model
        self.task = task
        self.camera = camera
        self.reward_type = reward_type
        self.fps = float(fps or env_fps or 10.0)
        self.max_frames = max_frames
        self.binary_threshold = binary_threshold

    def _clip(self, frames: list[np.ndarray]) -> tuple[np.ndarray, float]:
        kept = keep_frames(frames, self.max_frames)
        duration = len(frames) / self.fps
        return kept, len(kept) / duration  # the rate of the kept frames over the episode's duration


class EpisodicRewardWrapper(gym.Wrapper, _EpisodeRecorder):
    """Replace an env's reward with the reward model's end-of-episode score (see the module docstring).

    Frames come from ``env.render()`` (render_mode "rgb_array") or, with ``camera``, from that key of
    a dict observation. The task is ``task``, else the env's ``task`` attribute. The env's own reward
    is kept in ``info["env_reward"]``.
    """

    def __init__(
        self,
        env: gym.Env,
        reward_model: Any,
        task: str | None = None,
        camera: str | None = None,
        reward_type: str = "progress",
        fps: float | None = None,
        max_frames: int = 16,
        binary_threshold: int = 5,
    ):
        super().__init__(env)
        self._setup(
            reward_model,
            task,
            camera,
            reward_type,
            fps,
            max_frames,
            binary_threshold,
            env.metadata.get("render_fps"),
        )
        self.frames: list[np.ndarray] = []

    def _frame(self, observation: Any) -> np.ndarray:
        frame = observation[self.camera] if self.camera is not None else self.env.render()
        return np.asarray(frame, dtype=np.uint8)

    def _task(self) -> str:
        task = self.task or getattr(self.env.unwrapped, "task", None)
        if not task:
            raise ValueError("no task: pass task=... or use an env with a `task` attribute")
        return task

    def reset(self, **kwargs: Any):
        observation, info = self.env.reset(**kwargs)
        self.frames = [self._frame(observation)]
        return observation, info

    def step(self, action: Any):
        observation, env_reward, terminated, truncated, info = self.env.step(action)
        self.frames.append(self._frame(observation))
        info = {**info, "env_reward": env_reward}
        reward = 0.0
        if terminated or truncated:
            frames, fps = self._clip(self.frames)
            result = self.reward_model.score(frames, self._task(), fps=fps)
            reward = episode_reward(result, self.reward_type, self.binary_threshold)
            info["roboreward"] = result.to_dict()
        return observation, reward, terminated, truncated, info


class VectorEpisodicRewardWrapper(gym.vector.VectorWrapper, _EpisodeRecorder):
    """The same for vector envs: sub-envs that finish at one step are scored in ONE batch.

    Works with gymnasium's default autoreset mode (``NEXT_STEP``): the step after a sub-env ends
    resets it, and its recording starts again from that reset observation. Frames come from the
    ``camera`` key of the observations, or from ``env.render()`` (one frame per sub-env).
    """

    def __init__(
        self,
        env: gym.vector.VectorEnv,
        reward_model: Any,
        task: str | list[str] | None = None,
        camera: str | None = None,
        reward_type: str = "progress",
        fps: float | None = None,
        max_frames: int = 16,
        binary_threshold: int = 5,
    ):
        super().__init__(env)
        mode = env.metadata.get("autoreset_mode")
        if mode is not None and getattr(mode, "name", str(mode)) != "NEXT_STEP":
            raise ValueError(f"only the NEXT_STEP autoreset mode is supported, got {mode}")
        self._setup(
            reward_model,
            None,
            camera,
            reward_type,
            fps,
            max_frames,
            binary_threshold,
            env.metadata.get("render_fps"),
        )
        self.tasks = [task] * env.num_envs if isinstance(task, str) or task is None else list(task)
        self.frames: list[list[np.ndarray]] = [[] for _ in range(env.num_envs)]
        self._done = np.zeros(env.num_envs, dtype=bool)

    def _frames(self, observations: Any) -> list[np.ndarray]:
        if self.camera is not None:
            return [np.asarray(f, dtype=np.uint8) for f in observations[self.camera]]
        return [np.asarray(f, dtype=np.uint8) for f in self.env.render()]

    def _task(self, index: int) -> str:
        task = self.tasks[index] or self.env.get_attr("task")[index]
        if not task:
            raise ValueError(f"no task for sub-env {index}")
        return task

    def reset(self, **kwargs: Any):
        observations, infos = self.env.reset(**kwargs)
        self.frames = [[frame] for frame in self._frames(observations)]
        self._done[:] = False
        return observations, infos

    def step(self, actions: Any):
        observations, env_rewards, terminated, truncated, infos = self.env.step(actions)
        for i, frame in enumerate(self._frames(observations)):
            if self._done[i]:  # this step was the sub-env's reset: a new episode begins
                self.frames[i] = [frame]
            else:
                self.frames[i].append(frame)
        finished = np.flatnonzero(np.logical_and(np.logical_or(terminated, truncated), ~self._done))
        rewards = np.zeros(self.env.num_envs, dtype=np.float64)
        infos = {**infos, "env_reward": env_rewards}
        if finished.size:
            clips = [self._clip(self.frames[i]) for i in finished]
            # one batch for every sub-env that finished now, each clip at its own frame rate
            results = self.reward_model.score_batch(
                [frames for frames, _ in clips],
                [self._task(i) for i in finished],
                batch_size=len(finished),
                fps=[rate for _, rate in clips],
            )
            scored = [None] * self.env.num_envs
            for i, result in zip(finished, results, strict=True):
                rewards[i] = episode_reward(result, self.reward_type, self.binary_threshold)
                scored[i] = result.to_dict()
            infos["roboreward"] = scored
        self._done = np.logical_or(terminated, truncated)
        return observations, rewards, terminated, truncated, infos


class TabletopEnv(gym.Env):
    """A small gymnasium env on the simulated tabletop of `roboreward.sources.sim`.

    Observation: the rendered top-down frame (uint8 H x W x 3). Action: ``(dx, dy, grip)`` in [-1, 1]
    (moves of at most ``step_size``; ``grip > 0`` closes the gripper, which grasps a block under it).
    The episode ends (terminated) when the gripper opens after carrying a block, or is truncated after
    ``max_steps``. ``info["truth"]`` at the end is the simulator's ground truth for the task
    (`sim.evaluate`: score, progress, success); the env's own reward is 1.0 on success, else 0.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": sim.FPS}

    def __init__(
        self,
        render_size: tuple[int, int] = (160, 120),
        max_steps: int = 60,
        step_size: float = 0.06,
        render_mode: str = "rgb_array",
    ):
        self.width, self.height = render_size
        self.max_steps = max_steps
        self.step_size = step_size
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(0, 255, (self.height, self.width, 3), dtype=np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (3,), dtype=np.float32)
        self.scene: sim.Scene | None = None

    @property
    def task(self) -> str:
        return sim.task_text(self.block, self.bowl)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.scene = sim._scene(self.np_random)
        self.initial = self.scene
        self.block, self.bowl = self.scene.blocks[0].colour, self.scene.bowls[0].colour
        self.steps = 0
        return self.render(), {"task": self.task}

    def step(self, action: Any):
        assert self.scene is not None, "call reset() first"
        dx, dy, grip = (float(a) for a in np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0))
        x = min(max(self.scene.gripper[0] + dx * self.step_size, 0.0), 1.0)
        y = min(max(self.scene.gripper[1] + dy * self.step_size, 0.0), 1.0)
        scene = sim.replace(self.scene, gripper=(x, y))
        if scene.held:
            scene = sim._moved(scene, scene.held, x, y)
        placed = False
        if grip > 0 and not scene.closed:
            near = [b for b in scene.blocks if math.dist((b.x, b.y), (x, y)) < 0.05]
            scene = sim.replace(scene, closed=True, held=near[0].colour if near else None)
        elif grip <= 0 and scene.closed:
            placed = scene.held is not None
            scene = sim.replace(scene, closed=False, held=None)
        self.scene = scene
        self.steps += 1
        terminated, truncated = placed, self.steps >= self.max_steps and not placed
        info: dict[str, Any] = {"task": self.task}
        reward = 0.0
        if terminated or truncated:
            info["truth"] = sim.evaluate(self.initial, self.scene, self.block, self.bowl)
            reward = 1.0 if info["truth"]["success"] else 0.0
        return self.render(), reward, terminated, truncated, info

    def render(self) -> np.ndarray:
        assert self.scene is not None, "call reset() first"
        return sim.render(self.scene, self.width, self.height)

    def expert_action(self) -> np.ndarray:
        """A scripted policy's next action: go to the block, grasp, carry it to the bowl, release."""
        scene = self.scene
        target = scene.bowl(self.bowl) if scene.held else scene.block(self.block)
        dx, dy = target.x - scene.gripper[0], target.y - scene.gripper[1]
        distance = math.hypot(dx, dy)
        if distance > 0.02:
            scale = min(distance / self.step_size, 1.0) / max(distance, 1e-9)
            return np.array([dx * scale, dy * scale, 1.0 if scene.held else -1.0], dtype=np.float32)
        return np.array([0.0, 0.0, -1.0 if scene.held else 1.0], dtype=np.float32)
