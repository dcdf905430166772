"""Temporal clipping: a successful episode cut short is a partial-progress example of its own task.

No video is re-encoded here: a clip is the same video with ``video_end`` moved to ``start + fraction
* duration`` (the builder encodes only that range). Its reward comes from a labeller:

- ``map``: ``clip_scores[fraction]`` (default 0.25 -> 2, 0.5 -> 3, 0.75 -> 4), or for a fraction not
  in it `rubric.progress_to_score` of the fraction, at most 4;
- ``judge``: a VLM scores the clip on the rubric, like any episode: a reward model made by
  `roboreward.models.load_reward_model` (``hf:PATH``, a checkpoint, the most likely score of one
  forward pass; ``openai+logprobs:URL#model``, the same model served, the most likely score of the
  distribution read from the server's log-probabilities, or its text answer where the server gives
  none; ``http://HOST:PORT``, a ``roboreward serve`` server) or a backend answering the reward prompt in text
  (`rubric.parse_answer`); cached like every call. A clip whose answer holds no score is dropped.

Each row: ``augmentation`` ``temporal_clip``, the true task, ``provenance["temporal_clip"]`` with the
fraction, the clip's end in seconds and the labeller (with its model id for a judge).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import numpy as np

from roboreward import rubric, video
from roboreward.episode import Episode
from roboreward.models.served import ServedScoreError
from roboreward.models.specs import SCORER_KINDS, parse_model_spec
from roboreward.relabel import prompts, schema
from roboreward.relabel.backends import JUDGE_KINDS, parse_backend, published_name
from roboreward.relabel.calls import ModelCalls
from roboreward.relabel.recipe import RelabelConfig

__all__ = ["BackendJudge", "ScorerJudge", "make_judge", "temporal_clips"]

STAGE = "temporal_clip"


class ScorerJudge:
    """A reward model as the clip judge: its most likely score (`roboreward.models.load_reward_model`:
    ``hf:PATH``, a checkpoint scored in one forward pass; ``openai+logprobs:URL#model``, endpoints
    comma-separated, read from its server's log-probabilities; ``http://HOST:PORT``, a ``roboreward
    serve`` server)."""

    def __init__(self, spec: str, config: RelabelConfig):
        """Args:
        spec: the judge's spec (``judge:`` of the recipe).
        config: the relabel settings (device, frames, prompt, timeouts).
        """
        from roboreward.models.factory import load_reward_model

        kind = parse_model_spec(spec, kinds=JUDGE_KINDS).kind
        options: dict[str, Any] = {
            "timeout": config.timeout,
            "retries": config.request_retries,
            "video_input": config.video_input,
        }
        if kind == "hf":
            options.update(device=config.device, num_frames=config.num_frames, prompt=config.judge_prompt)
        elif kind != "serve":
            options["prompt"] = config.judge_prompt
        self.model = load_reward_model(spec.removeprefix("hf:").strip() if kind == "hf" else spec, **options)
        self.name = spec[3:].strip() if kind == "hf" else self.model.name
        self.prompt = self.model.settings.prompt if self.model.settings is not None else rubric.DEFAULT_PROMPT
        #: Part of each call's cache key: a text answer of the same model is not this judge's answer.
        self.options: dict[str, Any] | None = {"scoring": "logprobs"} if kind == "openai+logprobs" else None
        self._lock = threading.Lock() if kind == "hf" else contextlib.nullcontext()

    def answer(self, prompt: str, task: str, frames: np.ndarray, fps: float) -> str:
        with self._lock:
            try:
                return rubric.format_answer(self.model.score(frames, task, fps=fps).score)
            except ServedScoreError as exc:  # an answer without a score: the clip is dropped
                return str(exc)


class BackendJudge:
    """Any backend as the clip judge: it answers the reward prompt (of ``prompt``) in text."""

    def __init__(self, backend: Any, max_new_tokens: int = 512, prompt: str | None = None):
        self.backend = backend
        self.name = backend.name
        self.max_new_tokens = max_new_tokens
        self.prompt = prompt or rubric.DEFAULT_PROMPT

    def answer(self, prompt: str, task: str, frames: np.ndarray, fps: float) -> str:
        return self.backend.complete("clip_judge", prompt, frames, self.max_new_tokens, fps)


def make_judge(config: RelabelConfig, calls: ModelCalls) -> ScorerJudge | BackendJudge:
    """The ``judge`` labeller's model: ``config.judge``, else the VLM."""
    spec = config.judge
    if spec is None:
        return BackendJudge(calls.backend("vlm"), config.max_new_tokens, config.judge_prompt)
    if isinstance(spec, str) and parse_model_spec(spec, kinds=JUDGE_KINDS).kind in SCORER_KINDS:
        return ScorerJudge(spec, config)
    backend = parse_backend(
        spec,
        timeout=config.timeout,
        retries=config.request_retries,
        device=config.device,
        video_input=config.video_input,
    )
    return BackendJudge(backend, config.max_new_tokens, config.judge_prompt)


def _parse_score(answer: str) -> int | schema.Rejected:
    score = rubric.parse_answer(answer)
    return (
        schema.Rejected("unparseable", "no score 1..5 in the form 'ANSWER: <score>'")
        if score is None
        else score
    )


def temporal_clips(ep: Episode, calls: ModelCalls, config: RelabelConfig, judge: Any = None) -> list[Episode]:
    """The clip rows of a successful episode, one per ``config.clip_fractions``.

    Raises VideoDecodeError for an unreadable video and StageError when the judge gives no answer.
    """
    start = ep.video_start or 0.0
    end = ep.video_end if ep.video_end is not None else video.probe(ep.video).duration
    rows = []
    for fraction in config.clip_fractions:
        clip_end = round(start + (end - start) * fraction, 6)
        info: dict[str, Any] = {"fraction": fraction, "end": clip_end}
        if config.clip_labeller == "map":
            score, where = config.clip_score(fraction)
            info.update(labeller="fraction-map", score_from=where)
        else:
            frames = video.sample_frames(
                ep.video, num_frames=config.num_frames, start=start, end=clip_end, max_side=config.max_side
            )
            fps = len(frames) / max(clip_end - start, 1e-6)
            score = calls.ask_valid(
                "clip_judge",
                STAGE,
                judge,
                prompts.judge(ep.task, judge.prompt),
                _parse_score,
                frames,
                fps,
                call=lambda prompt, frames=frames, fps=fps: judge.answer(prompt, ep.task, frames, fps),
                options=getattr(judge, "options", None),
            )
            if score is None:
                calls.counters.add(STAGE, "dropped")
                continue
            info.update(labeller="judge", judge=published_name(judge), version=prompts.VERSIONS["clip_judge"])
        calls.counters.add(STAGE, "proposed")
        rows.append(
            ep.replace(
                video_start=start,
                video_end=clip_end,
                reward=score,
                progress=None,
                augmentation=STAGE,
                provenance={**ep.provenance, STAGE: info},
            )
        )
    calls.counters.add(STAGE, "accepted", len(rows))
    return rows
