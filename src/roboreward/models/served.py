"""A reward model behind OpenAI-compatible servers, scored like a local checkpoint.

`ServedRewardModel` speaks `roboreward.models.local.RewardModel`'s API (``score`` / ``score_batch`` return
a `ScoreResult`), so the bench, RL wrappers (`roboreward.apps.rl`) and relabeling's clip judge can use a
model served by vLLM or SGLang on other machines, behind a pool of endpoints, many requests at once.

Two ways to read a score (``scoring``):

- ``logprobs``: the rubric prompt, the assistant turn prefilled with ``ANSWER: `` (the servers'
  ``continue_final_message``), one token, its top 20 log-probabilities. The probabilities of the
  tokens ``1`` .. ``5`` (the bare digit; a digit after a space or ``▁`` only when the bare one is not
  listed) are renormalised to sum to 1: the same distribution, expected score and reward that
  `RewardModel.score` reads from the logits. A score not among the top 20 gets probability 0.
- ``text``: the model answers freely and `roboreward.rubric.parse_answer` reads the score; the
  distribution is then certain (probability 1 on that score).

A server that gives no log-probabilities (``transformers serve`` and TGI today) is detected on its
first request and scored in ``text`` from then on, with a notice; each answer records the mode it
was made in (`ServedAnswer`). Frames are decoded here, with the model's inference settings
(`roboreward.models.settings`), and sent as one video part when the server takes one, else as
images (`roboreward.models.openai_chat`).

    >>> model = ServedRewardModel.from_spec("openai+logprobs:http://gpu-1:8000/v1#teetone/RoboReward-8B")
    >>> model.name, model.scoring, model.settings.prompt
    ('teetone/RoboReward-8B', 'logprobs', 'release')
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from roboreward import rubric
from roboreward.models.endpoints import EndpointPool, score_many
from roboreward.models.frames import episode_frames, passthrough_video
from roboreward.models.openai_chat import VIDEO_INPUTS, EncodedVideo, LabelledVideos, OpenAIChat
from roboreward.models.protocol import curve_by_requests
from roboreward.models.results import ProgressCurve, ScoreResult, score_result
from roboreward.models.settings import InferenceSettings, served_settings
from roboreward.models.specs import SERVED_KINDS, parse_model_spec
from roboreward.models.views import shown_videos

logger = logging.getLogger("roboreward")

__all__ = ["SCORINGS", "ServedAnswer", "ServedRewardModel", "ServedScoreError", "distribution"]

#: How a served model's score is read: ``logprobs`` (a distribution) or ``text`` (a parsed answer).
SCORINGS = ("logprobs", "text")

_SPACES = " \u2581\u0120"  # a space, SentencePiece's ▁, byte-level BPE's Ġ


class ServedScoreError(ValueError):
    """A served model's answer holds no score (no score token among the top log-probabilities, or
    text without ``ANSWER: <score>``)."""


def distribution(top_logprobs: dict[str, float]) -> tuple[float, float, float, float, float] | None:
    """The five scores' probabilities from a token's top log-probabilities, renormalised to sum to 1.

    Score k's token is ``"k"``; a token that is k after stripping a leading space (``" k"``, ``"▁k"``,
    ``"Ġk"``) counts only when no bare ``"k"`` is listed. A score not listed (or listed at -inf) gets 0.
    None when no score is listed at all.

    Args:
        top_logprobs: ``{token: logprob}`` (natural log), as the server returned them.

    Raises `ServedScoreError` when a score's log-probability is NaN or +inf (or above 0 by more than
    rounding): the distribution is unknown, and is never renormalised around it.

    >>> probs = distribution({"4": math.log(0.6), "3": math.log(0.2), "5": math.log(0.1), "the": -2.3})
    >>> [round(p, 4) for p in probs]
    [0.0, 0.0, 0.2222, 0.6667, 0.1111]
    >>> try:
    ...     distribution({"4": float("inf"), "5": float("nan"), "3": -1.2})
    ... except ServedScoreError as exc:
    ...     print(exc)
    unusable log-probability for score 4: inf
    """
    logprob: dict[int, float] = {}
    for score in rubric.SCORES:
        bare = top_logprobs.get(str(score))
        if bare is None:
            spaced = [lp for token, lp in top_logprobs.items() if token.lstrip(_SPACES) == str(score)]
            bare = max(spaced, key=lambda lp: (math.isnan(lp), lp)) if spaced else None
        if bare is None or bare == -math.inf:
            continue
        if math.isnan(bare) or bare > 1e-6:
            raise ServedScoreError(f"unusable log-probability for score {score}: {bare}")
        logprob[score] = bare
    if not logprob:
        return None
    top = max(logprob.values())  # softmax over the listed scores, stable
    weights = {k: math.exp(lp - top) for k, lp in logprob.items()}
    total = sum(weights.values())
    return tuple(weights.get(k, 0.0) / total for k in rubric.SCORES)  # type: ignore[return-value]


@dataclass(frozen=True)
class ServedAnswer:
    """One served judgement.

    Args:
        text: the model's text (``ANSWER: k`` for the most likely score of a distribution).
        probs: the five scores' probabilities (``logprobs`` scoring), else None.
        scoring: the mode the answer was made in: ``logprobs`` or ``text``.
        video_input: how the frames went: ``video`` (one video part) or ``frames`` (images).
    """

    text: str
    probs: tuple[float, float, float, float, float] | None
    scoring: str
    video_input: str

    @property
    def score(self) -> int | None:
        """The most likely score (``logprobs``), or the one the text gives (None: no score)."""
        if self.probs is not None:
            return int(np.argmax(self.probs)) + 1
        if self.scoring == "logprobs":  # no usable distribution: the text says why, it is no answer
            return None
        return rubric.parse_answer(self.text)

    def result(self) -> ScoreResult:
        """The answer as a `ScoreResult` (text: all the probability on its score).

        Raises `ServedScoreError` when the answer holds no score.
        """
        if self.probs is not None:
            return score_result(self.probs)
        score = self.score
        if score is None:
            raise ServedScoreError(f"the served model's answer holds no score: {self.text[:200]!r}")
        return score_result([1.0 if k == score else 0.0 for k in rubric.SCORES])


class ServedRewardModel:
    """A reward model behind one or more OpenAI-compatible endpoints, with `RewardModel`'s API.

    Build it with `from_spec` (``openai+logprobs:URL#model`` or ``openai:URL#model``, endpoints
    comma-separated for a pool) or from `OpenAIChat` endpoints.
    """

    def __init__(
        self,
        endpoints: OpenAIChat | Sequence[OpenAIChat],
        settings: InferenceSettings | None = None,
        scoring: str = "logprobs",
        concurrency: int = 8,
        max_new_tokens: int = 64,
    ):
        """Args:
        endpoints: the servers (several: a pool, each request to the least busy one).
        settings: the inference settings (prompt preset, frames, resolution); None: those of the
            model name (`roboreward.models.settings.served_settings`: the published ones for
            ``teetone/RoboReward-4B`` / ``-8B``, else the toolkit's defaults).
        scoring: one of `SCORINGS`.
        concurrency: requests in flight at once in ``score_batch``.
        max_new_tokens: the longest text answer (``text`` scoring).
        """
        members = [endpoints] if isinstance(endpoints, OpenAIChat) else list(endpoints)
        if scoring not in SCORINGS:
            raise ValueError(f"scoring must be one of {SCORINGS}, got {scoring!r}")
        if concurrency < 1 or max_new_tokens < 1:
            raise ValueError(
                f"concurrency and max_new_tokens must be >= 1, got {concurrency}, {max_new_tokens}"
            )
        self.pool = EndpointPool(members)
        self.name = self.pool.name
        self.scoring = scoring
        self.concurrency = concurrency
        self.max_new_tokens = max_new_tokens
        self.settings = settings or served_settings(self.name)
        self._told_one_camera = False  # the single-camera notice is given once

    @classmethod
    def from_spec(
        cls,
        spec: str,
        settings: InferenceSettings | None = None,
        concurrency: int = 8,
        timeout: float = 120.0,
        retries: int = 3,
        video_input: str = "auto",
        **overrides: Any,
    ) -> ServedRewardModel:
        """A served model from its spec: ``openai+logprobs:URL#model`` (``logprobs`` scoring) or
        ``openai:URL#model`` (``text``); several endpoints comma-separated.

        Args:
            spec: the model spec (`roboreward.models.specs`).
            settings: the inference settings (None: resolved from the model name, with ``overrides``).
            concurrency: requests in flight at once in ``score_batch``.
            timeout: seconds per request.
            retries: retries of a failed request per endpoint.
            video_input: one of `roboreward.models.openai_chat.VIDEO_INPUTS`.
            overrides: ``prompt``, ``num_frames``, ``max_side``, ... on top of the model's settings.
        """
        parsed = parse_model_spec(spec, kinds=SERVED_KINDS)
        if video_input not in VIDEO_INPUTS:
            raise ValueError(f"video_input must be one of {VIDEO_INPUTS}, got {video_input!r}")
        members = [
            OpenAIChat(url, model, timeout=timeout, retries=retries, backoff=0.5, video_input=video_input)
            for url, model in parsed.endpoints
        ]
        if settings is None:
            settings = served_settings(parsed.target, **overrides)
        scoring = "logprobs" if parsed.kind == "openai+logprobs" else "text"
        return cls(members, settings=settings, scoring=scoring, concurrency=concurrency)

    # ------------------------------------------------------------------------------------------

    def load_frames(
        self,
        video_or_frames: Any,
        fps: float | None = None,
        *,
        start: float | None = None,
        end: float | None = None,
    ) -> tuple[np.ndarray, float]:
        """The frames sent and their rate: as a local copy of the model would be shown them
        (`roboreward.models.frames.episode_frames` with the model's settings).

        Args:
            video_or_frames: a path, bytes, a ``{"bytes", "path"}`` row, or frames (uint8 (T, H, W, 3)
                or a list of images).
            fps: the rate of frames given directly (default 2).
            start, end: seconds: only that range of the episode.
        """
        return episode_frames(video_or_frames, self.settings, fps=fps, start=start, end=end)

    def _sent_video(
        self, video: Any, fps: float | None, start: float | None, end: float | None
    ) -> tuple[np.ndarray | EncodedVideo, float]:
        """One video as it is sent, with its rate: the file itself when that shows the server the very
        frames `load_frames` picks (`roboreward.models.frames.passthrough_video`: every frame, no
        resize, no range, an mp4 of H.264 / AV1), else the frames `load_frames` decodes (re-encoded
        as a video part, or sent as images, by `roboreward.models.openai_chat.OpenAIChat.content`)."""
        whole = passthrough_video(video, self.settings, start=start, end=end)
        if whole is not None:
            data, count, rate = whole
            return EncodedVideo(data, count), rate
        return self.load_frames(video, fps, start=start, end=end)

    def _shown_frames(
        self, item: Any, fps: float | None, start: float | None, end: float | None
    ) -> tuple[np.ndarray | EncodedVideo | LabelledVideos, float]:
        """What the model is sent of one episode (`roboreward.models.views.shown_videos`): one video
        (`_sent_video`), or for a multi-view model each camera's after its label (``Left camera:``, as
        a local copy's prompt has them), in its settings' order; with their (first video's) rate."""
        videos, notice = shown_videos(item, self.settings.cameras, self.name)
        if notice and not self._told_one_camera:
            self._told_one_camera = True
            logger.warning("%s", notice)
        if not self.settings.multi_view:
            return self._sent_video(videos[0], fps, start, end)
        loaded = [self._sent_video(video, fps, start, end) for video in videos]
        labelled = tuple(
            (rubric.camera_label(camera), frames, rate)
            for camera, (frames, rate) in zip(self.settings.cameras, loaded, strict=True)
        )
        return LabelledVideos(labelled), loaded[0][1]

    def ask_parts(self, parts: Sequence[Any], max_new_tokens: int = 1024) -> str:
        """The served model's free-text answer to one user turn of texts and videos in order (several
        videos: HELM's A / B / tie preference scenario); each video's frames as `load_frames` picks them.

        Args:
            parts: ``str`` parts are text, anything else a video or frames.
            max_new_tokens: the longest answer.
        """
        resolved = [part if isinstance(part, str) else self.load_frames(part) for part in parts]
        return self.pool.call(lambda chat: chat.ask_parts(resolved, max_new_tokens)).text

    def answer(
        self,
        video_or_frames: Any,
        task: str,
        *,
        fps: float | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> ServedAnswer:
        """Ask the served model about one episode: one request (on an endpoint's first, up to two
        more while it is found out what it takes).

        Args:
            video_or_frames, fps, start, end: the episode (see `load_frames`), or a
                `roboreward.models.views.Views` of its cameras (a multi-view model is sent each of its
                cameras, labelled, in one message; any other model its own camera, said once).
            task: the instruction it is judged against.

        Raises VideoDecodeError for an unreadable video and
        `roboreward.models.openai_chat.BackendError` when no endpoint answers.
        """
        prompt = rubric.build_prompt(task, self.settings.prompt)
        frames, rate = self._shown_frames(video_or_frames, fps, start, end)
        first = self.settings.video_first
        if self.scoring == "logprobs":
            reply = self.pool.call(
                lambda chat: chat.top_logprobs(
                    prompt, frames, rubric.ANSWER_PREFIX, rate, first, self.max_new_tokens
                )
            )
            if reply.top_logprobs is None:  # a server without log-probabilities: its text answer
                return ServedAnswer(reply.text, None, "text", reply.video_input)
            try:
                probs = distribution(reply.top_logprobs)
            except ServedScoreError as exc:  # a NaN or +inf for a score: unknown, with the reason
                return ServedAnswer(str(exc), None, "logprobs", reply.video_input)
            if probs is None:
                listed = sorted(reply.top_logprobs, key=reply.top_logprobs.__getitem__, reverse=True)
                text = f"no score among the top log-probabilities: {listed[:10]}"
                return ServedAnswer(text, None, "logprobs", reply.video_input)
            best = int(np.argmax(probs)) + 1
            return ServedAnswer(rubric.format_answer(best), probs, "logprobs", reply.video_input)
        reply = self.pool.call(lambda chat: chat.ask(prompt, frames, self.max_new_tokens, rate, first))
        return ServedAnswer(reply.text, None, "text", reply.video_input)

    def score(
        self,
        video: Any,
        task: str,
        *,
        fps: float | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> ScoreResult:
        """Score one episode (see the module docstring); raises `ServedScoreError` for an answer
        without a score.

        Args:
            video, fps, start, end: the episode (see `load_frames`).
            task: the instruction it is judged against.
        """
        return self.answer(video, task, fps=fps, start=start, end=end).result()

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
        """Score many episodes, ``concurrency`` requests at a time over the pool; results in order.

        Args:
            videos: the episodes (see `load_frames`).
            tasks: one task per video, or one for all.
            fps: the rate of frames given directly: one value or one per video.
            starts, ends: one range per video in seconds (None: whole videos).
            progress: show a progress bar.
        """
        return score_many(
            self.score,
            videos,
            tasks,
            fps=fps,
            starts=starts,
            ends=ends,
            concurrency=self.concurrency,
            progress=progress,
        )

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
        """Score the K prefixes of an episode (`roboreward.models.protocol.curve_by_requests`): K
        requests, ``concurrency`` at a time; the last point is the whole episode.

        Args:
            video, task, fps, start, end: the episode, as for `score`.
            points: K, the number of prefixes (1..256).
        """
        return curve_by_requests(self, video, task, points=points, fps=fps, start=start, end=end)
