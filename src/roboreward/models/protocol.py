"""`RewardScorer`: what every reward model offers, whichever way it is reached.

Three implementations, one argument order and one meaning for every argument:

- `roboreward.models.local.RewardModel`: a checkpoint loaded here (one forward pass, the softmax over
  the five score tokens);
- `roboreward.models.served.ServedRewardModel`: a pool of OpenAI-compatible endpoints (vLLM, SGLang)
  answering with top log-probabilities (``openai+logprobs:URL#model``), or text (``openai:``);
- `roboreward.models.remote.RewardClient`: a ``roboreward serve`` server (``http://HOST:PORT``).

`roboreward.models.load_reward_model` is the one place a model spec becomes one of them; every
consumer (bench, annotate, curve, score, serve, the RL wrappers, relabeling's clip judge, the Space)
takes any of them.

The arguments, for all three:

- ``video``: a path, bytes, a ``{"bytes", "path"}`` dataset row, or frames (uint8 (T, H, W, 3) or a
  list of images);
- ``task``: the instruction the episode is judged against (a non-empty string);
- ``fps``: the rate of frames given directly (None: `roboreward.video.DEFAULT_FRAMES_FPS`); ignored
  for a video, whose frames are chosen by the model's settings;
- ``start`` / ``end``: seconds: the episode is this range of the video (an episode of a LeRobot v3.0
  file); for frames given directly, frames ceil(start * fps) to ceil(end * fps).

How many episodes go at once is a setting of the model, not of a call: ``batch_size`` (episodes per
forward pass) for a local checkpoint, ``concurrency`` (requests in flight) for served models and
the client.

    >>> from roboreward.models.results import score_result
    >>> class Constant:
    ...     name, settings = "constant", None
    ...     def score(self, video, task, *, fps=None, start=None, end=None):
    ...         return score_result([0, 0, 0, 0, 1])
    ...     def score_batch(self, videos, tasks, *, fps=None, starts=None, ends=None, progress=False):
    ...         return [self.score(v, t) for v, t in zip(videos, tasks)]
    ...     def progress_curve(self, video, task, *, points=8, fps=None, start=None, end=None):
    ...         raise NotImplementedError
    >>> isinstance(Constant(), RewardScorer)
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from roboreward.models.frames import curve_cuts
from roboreward.models.results import CurvePoint, ProgressCurve, ScoreResult
from roboreward.models.settings import InferenceSettings
from roboreward.video import DEFAULT_FRAMES_FPS

__all__ = ["RewardScorer", "curve_by_requests"]


@runtime_checkable
class RewardScorer(Protocol):
    """A reward model: scores episodes on the five-level rubric (see the module docstring).

    Attributes:
        name: the model's name as results record it (a Hub id, a checkpoint folder's name, the
            served model's name).
        settings: the inference settings it scores with (prompt preset, frames, resolution, message
            order); for a ``roboreward serve`` client, the server's.
    """

    name: str
    settings: InferenceSettings | None

    def score(
        self,
        video: Any,
        task: str,
        *,
        fps: float | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> ScoreResult:
        """Score one episode: the distribution over the five scores, expected score and reward.

        Args:
            video: the episode (see the module docstring).
            task: the instruction.
            fps: the rate of frames given directly.
            start, end: seconds: only that range of the video.
        """
        ...

    def score_batch(
        self,
        videos: Sequence[Any],
        tasks: Sequence[str] | str,
        *,
        fps: float | Sequence[float | None] | None = None,
        starts: Sequence[float | None] | None = None,
        ends: Sequence[float | None] | None = None,
        progress: bool = False,
    ) -> list[ScoreResult]:
        """Score many episodes; results in order, equal to scoring each one alone.

        Args:
            videos: the episodes.
            tasks: one task per video, or one for all.
            fps: the rate of frames given directly: one value, or one per video.
            starts, ends: one range per video (None items: the whole video).
            progress: show a progress bar.
        """
        ...

    def progress_curve(
        self,
        video: Any,
        task: str,
        *,
        points: int = 8,
        fps: float | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> ProgressCurve:
        """Score the K prefixes of an episode ending at 1/K, ..., 1 of its length (the last point is
        the whole episode, equal to `score`), each with the model's own frame policy.

        Args:
            video, task, fps, start, end: the episode, as for `score`.
            points: K, the number of prefixes.
        """
        ...


def curve_by_requests(
    scorer: Any,
    video: Any,
    task: str,
    *,
    points: int = 8,
    fps: float | None = None,
    start: float | None = None,
    end: float | None = None,
    frames_fps: float = DEFAULT_FRAMES_FPS,
) -> ProgressCurve:
    """A progress curve made of one ``score_batch`` over the K prefixes
    (`roboreward.models.frames.curve_cuts`): the ``progress_curve`` of scorers that ask a server per
    episode.

    Args:
        scorer: a `RewardScorer`.
        video, task, fps, start, end, points: as for `RewardScorer.progress_curve`.
        frames_fps: the rate assumed for frames given directly without ``fps``.
    """
    cuts = curve_cuts(video, points, fps=fps, start=start, end=end, frames_fps=frames_fps)
    results = scorer.score_batch(
        [cuts.source] * points,
        [task] * points,
        fps=cuts.rate,
        starts=[start] * points,
        ends=cuts.ends,
    )
    return ProgressCurve(
        task=task,
        duration=cuts.duration,
        points=tuple(
            CurvePoint(time=t, fraction=f, result=r)
            for t, f, r in zip(cuts.times, cuts.fractions, results, strict=True)
        ),
    )
