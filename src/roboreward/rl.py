"""Reward models in the RL loop: an episodic reward wrapper for gymnasium, and a small tabletop env.

The paper's last step (§5.2) fine-tunes a policy (DSRL on a diffusion policy) with the reward VLM's
end-of-episode score instead of a human success label. `EpisodicRewardWrapper` makes that a wrapper:
it records the episode's frames and, when the episode ends (terminated or truncated), scores the
video against the task and returns the reward on that last step (0 before), with the full
`ScoreResult` (as a dict) in ``info["roboreward"]``. `VectorEpisodicRewardWrapper` does the same for
vector envs and scores the sub-envs that finish at one step in one batch.

    >>> from roboreward import RewardModel
    >>> from roboreward.rl import EpisodicRewardWrapper, TabletopEnv
    >>> model = RewardModel.from_pretrained("my-org/RoboReward-3B")  # doctest: +SKIP
    >>> env = EpisodicRewardWrapper(TabletopEnv(seed=0), model, reward_type="progress")  # doctest: +SKIP

Reward types, as in the paper's §3 study: ``progress`` = (E[score] - 1) / 4 in [0, 1] (the
`ScoreResult.reward`), ``discrete`` = the most likely score 1..5, ``binary`` = 1 if that score
reaches ``binary_threshold`` (default 5) else 0. The reward model may also be a
`roboreward.serve.RewardClient`: the episode is then scored by a reward server.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import replace
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
    "scripted_action",
    "subsample",
]

REWARD_TYPES = ("progress", "discrete", "binary")
#: The frame rate assumed for an env whose metadata has no ``render_fps``.
DEFAULT_ENV_FPS = 10.0


def episode_reward(result: Any, reward_type: str = "progress", binary_threshold: int = 5) -> float:
    """The RL reward of a `ScoreResult` for one of `REWARD_TYPES`.

    >>> from roboreward.scoring import ScoreResult
    >>> result = ScoreResult(score=4, probs=(0.0, 0.0, 0.2, 0.6, 0.2), expected=4.0, reward=0.75)
    >>> [episode_reward(result, t) for t in REWARD_TYPES]
    [0.75, 4.0, 0.0]
    """
    if reward_type == "progress":
        return float(result.reward)
    if reward_type == "discrete":
        return float(result.score)
    if reward_type == "binary":
        return 1.0 if result.score >= binary_threshold else 0.0
    raise ValueError(f"reward_type must be one of {REWARD_TYPES}, got {reward_type!r}")


def subsample(frames: Sequence[np.ndarray], max_frames: int, fps: float) -> tuple[np.ndarray, float]:
    """At most ``max_frames`` frames spread evenly over an episode, and their frame rate.

    The first and the last frame are always kept (the last shows the final state the rubric
    judges). The kept frames span the episode's duration ``len(frames) / fps``, so their rate is
    ``len(kept) / duration``: what the reward model would see sampling a video of the episode.

    >>> frames = [np.full((2, 2, 3), i, np.uint8) for i in range(41)]
    >>> kept, rate = subsample(frames, 5, fps=10)
    >>> kept[:, 0, 0, 0].tolist(), round(rate, 3)
    ([0, 10, 20, 30, 40], 1.22)
    """
    if not frames:
        raise ValueError("no frames to score: the episode recorded none")
    if len(frames) <= max_frames:
        kept = np.stack(frames)
    else:
        index = np.rint(np.linspace(0, len(frames) - 1, max_frames)).astype(int)
        kept = np.stack([frames[i] for i in index])
    return kept, len(kept) / (len(frames) / fps)


def _set_scoring(
    wrapper: Any,
    env: Any,
    reward_model: Any,
    camera: str | None,
    reward_type: str,
    fps: float | None,
    max_frames: int,
    binary_threshold: int,
) -> None:
    """Check the settings both wrappers share and set them on ``wrapper``."""
    _check_settings(reward_type, max_frames, fps, binary_threshold)
    wrapper.reward_model = reward_model
    wrapper.camera = camera
    wrapper.reward_type = reward_type
    wrapper.fps = float(fps or env.metadata.get("render_fps") or DEFAULT_ENV_FPS)
    wrapper.max_frames = max_frames
    wrapper.binary_threshold = binary_threshold


def _check_settings(reward_type: str, max_frames: int, fps: float | None, binary_threshold: int) -> None:
    if reward_type not in REWARD_TYPES:
        raise ValueError(f"reward_type must be one of {REWARD_TYPES}, got {reward_type!r}")
    if max_frames < 2:
        raise ValueError(f"max_frames must be >= 2 (the first and the last frame), got {max_frames}")
    if fps is not None and fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if binary_threshold not in (1, 2, 3, 4, 5):
        raise ValueError(f"binary_threshold must be a score 1..5, got {binary_threshold!r}")


def _as_frame(frame: Any, where: str) -> np.ndarray:
    if frame is None:
        raise ValueError(
            f"{where} gave no frame: make the env with render_mode='rgb_array', or pass camera=KEY "
            "to read frames from a dict observation"
        )
    array = np.array(frame, copy=True)  # a copy: some envs render into one reused buffer
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"{where} gave a {array.dtype} {array.shape} frame; frames must be uint8 (H, W, 3)")
    return array


def _camera_frame(observation: Any, camera: str, where: str) -> np.ndarray:
    try:
        frame = observation[camera]
    except (KeyError, IndexError, TypeError):
        raise ValueError(
            f"camera={camera!r}: the {where} has no such key ({type(observation).__name__}); "
            "give the key of the image in a dict observation, or camera=None to use env.render()"
        ) from None
    return _as_frame(frame, f"observation[{camera!r}]")


class EpisodicRewardWrapper(gym.Wrapper):
    """Replace an env's reward with the reward model's end-of-episode score (see the module docstring).

    Args:
        env: a gymnasium env; frames come from ``env.render()`` (make it with
            ``render_mode="rgb_array"``) or, with ``camera``, from that key of its dict observations.
        reward_model: a `RewardModel` (or anything with its ``score(video, task, fps=...)``, such as
            `roboreward.serve.RewardClient`).
        task: the task the episode is scored against; default the env's ``task`` attribute (read at
            each reset, so envs that draw a task per episode work), else ``info["task"]`` of reset.
        camera: a key of the observation dict holding the frame; None: ``env.render()``.
        reward_type: ``"progress"``, ``"discrete"`` or ``"binary"`` (see `episode_reward`).
        fps: the rate of the recorded frames; default the env's ``metadata["render_fps"]``, else 10.
        max_frames: frames scored at most, spread evenly over the episode (see `subsample`).
        binary_threshold: the score from which the binary reward is 1.

    The recording is the reset frame and one frame per step (``self.frames``, all kept until the
    episode ends: H x W x 3 bytes a step); ``reset`` starts a new one. The env's own reward is kept
    in ``info["env_reward"]``; ``task`` is the task of the current episode.
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
        _set_scoring(self, env, reward_model, camera, reward_type, fps, max_frames, binary_threshold)
        self.task_override = task
        self.frames: list[np.ndarray] = []
        self._episode_task: str | None = None

    @property
    def task(self) -> str | None:
        """The task this episode is scored against (set at reset)."""
        return self._episode_task

    def _frame(self, observation: Any) -> np.ndarray:
        if self.camera is not None:
            return _camera_frame(observation, self.camera, "observation")
        return _as_frame(self.env.render(), "env.render()")

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        observation, info = self.env.reset(seed=seed, options=options)
        self.frames = [self._frame(observation)]
        self._episode_task = (
            self.task_override or getattr(self.env.unwrapped, "task", None) or info.get("task")
        )
        return observation, info

    def step(self, action: Any):
        if not self.frames:
            raise RuntimeError("call reset() before step(): the episode's recording starts at reset")
        observation, env_reward, terminated, truncated, info = self.env.step(action)
        self.frames.append(self._frame(observation))
        info = {**info, "env_reward": env_reward}
        reward = 0.0
        if terminated or truncated:
            if not self._episode_task:
                raise ValueError("no task to score the episode against: pass task=... to the wrapper")
            frames, rate = subsample(self.frames, self.max_frames, self.fps)
            result = self.reward_model.score(frames, self._episode_task, fps=rate)
            reward = episode_reward(result, self.reward_type, self.binary_threshold)
            info["roboreward"] = result.to_dict()
        return observation, reward, terminated, truncated, info


def _autoreset_mode(env: Any) -> str:
    mode = env.metadata.get("autoreset_mode")
    if mode is None:  # vector envs before gymnasium 1.1 always reset on the next step
        return "NEXT_STEP"
    return str(getattr(mode, "name", mode)).upper()


class VectorEpisodicRewardWrapper(gym.vector.VectorWrapper):
    """`EpisodicRewardWrapper` for vector envs: sub-envs that finish at one step are scored in ONE batch.

    Arguments as for `EpisodicRewardWrapper`; ``task`` may also be one task per sub-env. Frames come
    from ``env.render()`` (one per sub-env) or the ``camera`` key of the observations. Rewards are 0
    but for the sub-envs whose episode ended at this step; ``infos["roboreward"]`` is a dict of
    arrays (``score``, ``expected``, ``reward``: (num_envs,), ``probs``: (num_envs, 5)) valid where
    the mask ``infos["_roboreward"]`` is true, the gymnasium convention for vector infos (like
    ``infos["episode"]`` of RecordEpisodeStatistics); ``infos["env_reward"]`` holds the envs' rewards.

    The three autoreset modes of gymnasium 1.x (``SyncVectorEnv(..., autoreset_mode=...)``):

    - ``NEXT_STEP`` (the default): a finished sub-env is reset by the *next* ``step`` call, whose
      action it ignores; that step returns its reset observation with reward 0 and
      terminated = truncated = False. Its recording restarts from that observation.
    - ``SAME_STEP``: the sub-env is reset within the step that ended it; the step returns the reset
      observation and puts the last one in ``infos["final_obs"]``. ``env.render()`` then already
      shows the new episode, so this mode needs ``camera``: the last frame is read from
      ``infos["final_obs"]`` and the new recording starts from the returned observation.
    - ``DISABLED``: nothing is reset by ``step``; reset finished sub-envs with
      ``reset(options={"reset_mask": mask})``, which restarts the recordings where mask is true.
    """

    def __init__(
        self,
        env: gym.vector.VectorEnv,
        reward_model: Any,
        task: str | Sequence[str] | None = None,
        camera: str | None = None,
        reward_type: str = "progress",
        fps: float | None = None,
        max_frames: int = 16,
        binary_threshold: int = 5,
    ):
        super().__init__(env)
        _set_scoring(self, env, reward_model, camera, reward_type, fps, max_frames, binary_threshold)
        self.autoreset_mode = _autoreset_mode(env)
        if self.autoreset_mode not in ("NEXT_STEP", "SAME_STEP", "DISABLED"):
            raise ValueError(f"unknown autoreset mode {self.autoreset_mode}")
        if self.autoreset_mode == "SAME_STEP" and camera is None:
            raise ValueError(
                "autoreset mode SAME_STEP resets a finished sub-env within the step, so env.render() "
                "no longer shows its last frame: pass camera=KEY to read frames from the observations "
                "(the last one from infos['final_obs']), or use NEXT_STEP"
            )
        n = env.num_envs
        tasks = [task] * n if task is None or isinstance(task, str) else list(task)
        if len(tasks) != n:
            raise ValueError(f"got {len(tasks)} tasks for {n} sub-envs: give one task, or one per sub-env")
        self.tasks = tasks
        self.frames: list[list[np.ndarray]] = [[] for _ in range(n)]
        self.episode_tasks: list[str | None] = list(tasks)
        self._restarting = np.zeros(n, dtype=bool)  # NEXT_STEP: the next step resets these sub-envs

    def _frames(self, observations: Any) -> list[np.ndarray]:
        if self.camera is not None:
            try:
                images = observations[self.camera]
            except (KeyError, IndexError, TypeError):
                raise ValueError(
                    f"camera={self.camera!r}: the observations have no such key "
                    f"({type(observations).__name__})"
                ) from None
            return [_as_frame(f, f"observations[{self.camera!r}][{i}]") for i, f in enumerate(images)]
        frames = self.env.render()
        if frames is None:
            _as_frame(None, "env.render()")  # raises, saying what to do
        return [_as_frame(f, f"env.render()[{i}]") for i, f in enumerate(frames)]

    def _start(self, index: int, frame: np.ndarray, env_tasks: list[Any] | None) -> None:
        self.frames[index] = [frame]
        self.episode_tasks[index] = self.tasks[index] or (env_tasks[index] if env_tasks else None)

    def _env_tasks(self, starting: np.ndarray) -> list[Any] | None:
        if all(self.tasks[i] for i in np.flatnonzero(starting)):
            return None
        try:
            return list(self.env.get_attr("task"))
        except AttributeError:
            return None

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        mask = None if options is None else options.get("reset_mask")  # SyncVectorEnv pops it
        starting = np.ones(self.num_envs, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        observations, infos = self.env.reset(seed=seed, options=options)
        frames, env_tasks = self._frames(observations), self._env_tasks(starting)
        for i in np.flatnonzero(starting):
            self._start(i, frames[i], env_tasks)
        self._restarting[starting] = False
        return observations, infos

    def step(self, actions: Any):
        observations, env_rewards, terminated, truncated, infos = self.env.step(actions)
        ended = np.logical_or(terminated, truncated)
        frames = self._frames(observations)
        starting = self._restarting.copy() if self.autoreset_mode == "NEXT_STEP" else np.zeros_like(ended)
        if self.autoreset_mode == "SAME_STEP":
            starting |= ended
        env_tasks = self._env_tasks(starting) if starting.any() else None
        finished: list[tuple[int, list[np.ndarray], str | None]] = []
        for i in range(self.num_envs):
            if self.autoreset_mode == "NEXT_STEP" and self._restarting[i]:
                self._start(i, frames[i], env_tasks)  # this step was the sub-env's reset
                continue
            if self.autoreset_mode == "SAME_STEP" and ended[i]:
                last = _camera_frame(infos["final_obs"][i], self.camera, "final observation")
                finished.append((i, [*self.frames[i], last], self.episode_tasks[i]))
                self._start(i, frames[i], env_tasks)  # the returned observation begins the next episode
                continue
            self.frames[i].append(frames[i])
            if ended[i]:
                finished.append((i, self.frames[i], self.episode_tasks[i]))
        self._restarting = ended if self.autoreset_mode == "NEXT_STEP" else np.zeros_like(ended)
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        infos = {**infos, "env_reward": env_rewards, "_env_reward": np.ones(self.num_envs, dtype=bool)}
        if finished:
            rewards, infos["roboreward"], infos["_roboreward"] = self._score(finished)
        return observations, rewards, terminated, truncated, infos

    def _score(self, finished: list[tuple[int, list[np.ndarray], str | None]]):
        for i, _, task in finished:
            if not task:
                raise ValueError(f"no task to score sub-env {i}'s episode against: pass task=...")
        clips = [subsample(frames, self.max_frames, self.fps) for _, frames, _ in finished]
        # one batch for every sub-env that finished now, each clip at its own frame rate
        results = self.reward_model.score_batch(
            [frames for frames, _ in clips],
            [task for _, _, task in finished],
            batch_size=len(finished),
            fps=[rate for _, rate in clips],
        )
        n = self.num_envs
        rewards = np.zeros(n, dtype=np.float64)
        mask = np.zeros(n, dtype=bool)
        scored = {
            "score": np.zeros(n, dtype=np.int64),
            "expected": np.zeros(n, dtype=np.float64),
            "reward": np.zeros(n, dtype=np.float64),
            "probs": np.zeros((n, 5), dtype=np.float64),
        }
        for (i, _, _), result in zip(finished, results, strict=True):
            rewards[i] = episode_reward(result, self.reward_type, self.binary_threshold)
            mask[i] = True
            for key, value in result.to_dict().items():
                scored[key][i] = value
        return rewards, scored, mask


# ---------------------------------------------------------------------------------------------
# The tabletop as a gymnasium env

_TASK = re.compile(r"put the (\w+) block in the (\w+) bowl")
GRASP_RADIUS = 0.05  # a closing gripper grasps the nearest block whose centre is this close


def _parse_task(task: str) -> tuple[str, str]:
    match = _TASK.fullmatch(task.strip().lower())
    colours = sorted(sim.COLOURS)
    if not match or not set(match.groups()) <= set(colours):
        raise ValueError(
            f"task must read 'put the <colour> block in the <colour> bowl' (colours: {', '.join(colours)}), "
            f"got {task!r}"
        )
    block, bowl = match.groups()
    if block == bowl:
        raise ValueError(f"the tabletop has one object per colour: block and bowl cannot both be {block}")
    return block, bowl


def _tabletop(rng: np.random.Generator, block: str | None, bowl: str | None) -> tuple[sim.Scene, str, str]:
    """A table with two bowls and three blocks of distinct colours; the target block and bowl first."""
    colours = [str(c) for c in rng.permutation(sorted(sim.COLOURS))]
    if block is not None and bowl is not None:
        others = [c for c in colours if c not in (block, bowl)]
        colours = [bowl, others[0], block, *others[1:3]]
    taken: list[tuple[float, float]] = []
    bowls = tuple(sim.Bowl(c, *sim.place_apart(rng, taken, 0.34)) for c in colours[:2])
    blocks = tuple(sim.Block(c, *sim.place_apart(rng, taken, 0.2)) for c in colours[2:5])
    return sim.Scene(blocks=blocks, bowls=bowls), blocks[0].colour, bowls[0].colour


class TabletopEnv(gym.Env):
    """A small gymnasium env on the simulated tabletop of `roboreward.sources.sim`.

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
    - ``info["task"]`` on every step; ``info["truth"]`` on the last one: `sim.evaluate`'s ground truth
      for the task (``{"score", "progress", "success"}``). The env's own reward is 1.0 on a
      successful last step, else 0.

    ``seed`` seeds the first reset (later resets continue its random stream, as gymnasium envs do).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": sim.FPS}
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
        self.scene: sim.Scene | None = None
        self.initial: sim.Scene | None = None
        self.block, self.bowl = self.target or (None, None)
        self.steps = 0

    @property
    def task(self) -> str | None:
        """This episode's task (the given task before the first reset; None if there is none yet)."""
        return sim.task_text(self.block, self.bowl) if self.block else None

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
            scene = _carry(scene, x, y)
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
            info["truth"] = sim.evaluate(self.initial, self.scene, self.block, self.bowl)
            reward = 1.0 if info["truth"]["success"] else 0.0
        return self._observe(), reward, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        """The top-down frame, uint8 (H, W, 3); None when made with ``render_mode=None``."""
        return None if self.render_mode is None else self._frame()

    def _frame(self) -> np.ndarray:
        if self.scene is None:
            raise RuntimeError("call reset() before render()")
        return sim.render(self.scene, self.width, self.height)

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


def _carry(scene: sim.Scene, x: float, y: float) -> sim.Scene:
    blocks = tuple(replace(b, x=x, y=y) if b.colour == scene.held else b for b in scene.blocks)
    return replace(scene, blocks=blocks)


def scripted_action(state: np.ndarray, step_size: float = 0.06) -> np.ndarray:
    """The scripted expert on a `TabletopEnv` state vector: reach the block, grasp, carry, release."""
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
    gym.register(id="roboreward/Tabletop-v0", entry_point="roboreward.rl:TabletopEnv")
