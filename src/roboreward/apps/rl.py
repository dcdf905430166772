"""Reward models in the RL loop: an episodic reward wrapper for gymnasium (single and vector envs).

The paper's last step (§5.2) fine-tunes a policy (DSRL on a diffusion policy) with the reward VLM's
end-of-episode score instead of a human success label. `EpisodicRewardWrapper` makes that a wrapper:
it records the episode's frames and, when the episode ends (terminated or truncated), scores the
video against the task and returns the reward on that last step (0 before), with the full
`ScoreResult` (as a dict) in ``info["roboreward"]``. `VectorEpisodicRewardWrapper` does the same for
vector envs and scores the sub-envs that finish at one step in one batch.

    >>> from roboreward import RewardModel
    >>> from roboreward.apps.rl import EpisodicRewardWrapper
    >>> from roboreward.sim import TabletopEnv
    >>> model = RewardModel.from_pretrained("my-org/RoboReward-3B")  # doctest: +SKIP
    >>> env = EpisodicRewardWrapper(TabletopEnv(seed=0), model, reward_type="progress")  # doctest: +SKIP

Reward types, as in the paper's §3 study: ``progress`` = (E[score] - 1) / 4 in [0, 1] (the
`ScoreResult.reward`), ``discrete`` = the most likely score 1..5, ``binary`` = 1 if that score
reaches ``binary_threshold`` (default 5) else 0. The reward model may also be a
`roboreward.models.remote.RewardClient`: the episode is then scored by a reward server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

try:
    import gymnasium as gym
except ImportError as exc:  # the [rl] extra
    from roboreward.extras import MissingExtraError

    raise MissingExtraError('roboreward.apps.rl needs gymnasium: pip install "roboreward[rl]"') from exc

from roboreward.models.factory import load_reward_model
from roboreward.models.protocol import RewardScorer

__all__ = [
    "REWARD_TYPES",
    "EpisodicRewardWrapper",
    "VectorEpisodicRewardWrapper",
    "episode_reward",
    "model_max_frames",
    "subsample",
]

REWARD_TYPES = ("progress", "discrete", "binary")
#: The frame rate assumed for an env whose metadata has no ``render_fps``.
DEFAULT_ENV_FPS = 10.0


def episode_reward(result: Any, reward_type: str = "progress", binary_threshold: int = 5) -> float:
    """The RL reward of a `ScoreResult` for one of `REWARD_TYPES`.

    Args:
        result: a `ScoreResult` (anything with ``score`` and ``reward``).
        reward_type: one of `REWARD_TYPES`.
        binary_threshold: the score that counts as a success (``binary``).

    >>> from roboreward.models.local import ScoreResult
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

    Args:
        frames: the episode's frames.
        max_frames: the most frames kept.
        fps: the frames' rate.

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


#: Frames scored per episode when neither the wrapper nor the reward model's settings say.
DEFAULT_MAX_FRAMES = 16


def model_max_frames(reward_model: Any) -> int:
    """The frames the reward model's inference settings score a video with (its ``num_frames``), so an
    episode is scored as the checkpoint was trained; `DEFAULT_MAX_FRAMES` for a model without settings
    (a `roboreward.models.remote.RewardClient`) or with a rate instead of a count.

    Args:
        reward_model: a `RewardModel` (its ``settings``) or anything with ``score``.
    """
    settings = getattr(reward_model, "settings", None)
    frames = getattr(settings, "num_frames", None)
    return int(frames) if frames else DEFAULT_MAX_FRAMES


def _set_scoring(
    wrapper: Any,
    env: Any,
    reward_model: RewardScorer | str,
    camera: str | None,
    reward_type: str,
    fps: float | None,
    max_frames: int | None,
    binary_threshold: int,
) -> None:
    """Check the settings both wrappers share and set them on ``wrapper``."""
    _check_settings(reward_type, 2 if max_frames is None else max_frames, fps, binary_threshold)
    reward_model = load_reward_model(reward_model)  # a spec string is loaded; a model is kept as it is
    if max_frames is None:
        max_frames = max(2, model_max_frames(reward_model))
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
        reward_model: a reward model (`roboreward.models.RewardScorer`: a local `RewardModel`, a
            served pool, a `roboreward.models.remote.RewardClient` of ``roboreward serve``), or its spec
            (a checkpoint folder or Hub id, ``openai+logprobs:URL#model``, ``http://HOST:PORT``),
            loaded with `roboreward.models.load_reward_model`.
        task: the task the episode is scored against; default the env's ``task`` attribute (read at
            each reset, so envs that draw a task per episode work), else ``info["task"]`` of reset.
        camera: a key of the observation dict holding the frame; None: ``env.render()``.
        reward_type: ``"progress"``, ``"discrete"`` or ``"binary"`` (see `episode_reward`).
        fps: the rate of the recorded frames; default the env's ``metadata["render_fps"]``, else 10.
        max_frames: frames scored at most, spread evenly over the episode (see `subsample`); None:
            the reward model's own setting (`model_max_frames`: its checkpoint's ``num_frames``).
        binary_threshold: the score from which the binary reward is 1.

    The recording is the reset frame and one frame per step (``self.frames``, all kept until the
    episode ends: H x W x 3 bytes a step); ``reset`` starts a new one. The env's own reward is kept
    in ``info["env_reward"]``; ``task`` is the task of the current episode.
    """

    def __init__(
        self,
        env: gym.Env,
        reward_model: RewardScorer | str,
        task: str | None = None,
        camera: str | None = None,
        reward_type: str = "progress",
        fps: float | None = None,
        max_frames: int | None = None,
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
        reward_model: RewardScorer | str,
        task: str | Sequence[str] | None = None,
        camera: str | None = None,
        reward_type: str = "progress",
        fps: float | None = None,
        max_frames: int | None = None,
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
