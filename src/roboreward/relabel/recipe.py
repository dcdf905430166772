"""`RelabelConfig`: which relabeling stages run, on which models, with which settings.

A YAML recipe sets the same fields, at its top level or under a ``relabel:`` key (so a build recipe's
section works too); the command line's flags win.

    >>> config = RelabelConfig(llm="openai:http://127.0.0.1:8001/v1#Qwen/Qwen3-4B-Instruct-2507",
    ...                        stages="rewrite,paraphrase", paraphrases=3)
    >>> config.stages, config.clip_score(0.5)
    (['rewrite', 'paraphrase'], (3, 'clip_scores'))
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from typing import Any

from roboreward import rubric
from roboreward.config import check_fields, comma_floats, comma_list, fraction_scores, read_recipe
from roboreward.models.openai_chat import VIDEO_INPUTS
from roboreward.relabel.backends import DEFAULT_LLM, DEFAULT_VLM, JUDGE_KINDS, check_spec

__all__ = ["CLIP_LABELLERS", "STAGES", "RelabelConfig"]

#: The stages, in the order they run on an episode.
STAGES = ("rewrite", "counterfactual", "paraphrase", "temporal_clip")
CLIP_LABELLERS = ("map", "judge")


def _default_clip_scores() -> dict[float, int]:
    return {0.25: 2, 0.5: 3, 0.75: 4}


@dataclass
class RelabelConfig:
    """Relabeling settings.

    Attributes:
        vlm: the model that describes scenes and checks counterfactuals (a spec string such as
            ``hf:Qwen/Qwen2.5-VL-7B-Instruct`` or ``openai:URL#model``, a list of endpoint specs
            serving one model, or a backend object).
        llm: the model that rewrites tasks, writes failure-mode ladders and paraphrases.
        stages: which of `STAGES` run (a list or a comma-separated string).
        paraphrases: meaning-preserving variants asked for per task.
        clip_fractions: temporal clip ends, as fractions of the episode (each in (0, 1)).
        clip_labeller: ``map`` (a fraction's score from ``clip_scores``, else
            `rubric.progress_to_score` of the fraction) or ``judge`` (a VLM scores the clip on the rubric).
        clip_scores: fraction -> score 1..4 for the ``map`` labeller.
        judge: the ``judge`` labeller's model: ``hf:PATH`` (a RoboReward reward model, scored in one
            forward pass by `roboreward.models.local.RewardModel`), ``openai+logprobs:URL#model`` (the same
            read from a server's log-probabilities, `roboreward.models.served`), ``openai:``/``scripted:``
            or a backend (it answers the rubric prompt in text); None uses ``vlm`` that way.
        judge_prompt: the judge's prompt preset (`roboreward.rubric.PROMPT_PRESETS`); None: an
            ``hf:`` reward model's own (its checkpoint settings), else ``toolkit``.
        max_retries: how many times a rejected answer is asked for again (a ladder for the levels
            still missing after an invalid answer or a "no" from the checker; any other call after
            an unparseable or invalid answer), with the reason in the new prompt; then dropped.
        num_frames, max_side: frames sampled evenly from each episode for the VLM, and their size.
        workers: episodes relabeled at once (threads; served endpoints answer them in parallel, each
            call to the least busy endpoint of a pool); ``--concurrency`` on the command line.
        max_new_tokens: answer budget per call.
        timeout, request_retries: per request, for ``openai:`` endpoints.
        video_input: how frames reach ``openai:`` endpoints: ``auto`` (one ``video_url`` part when
            the server takes it, else images), ``video`` or ``frames``.
        device: for ``hf:`` models (default cuda when available).
        cache_dir: where model answers are cached (default ``OUT/.build/relabel_cache``).
    """

    vlm: Any = field(
        default=DEFAULT_VLM,
        metadata={
            "help": "scene descriptions and checks: hf:PATH_OR_ID, openai:URL#model or scripted:...",
            "metavar": "SPEC",
        },
    )
    llm: Any = field(
        default=DEFAULT_LLM,
        metadata={
            "help": "rewrites, ladders, paraphrases (comma-separated endpoints share the load)",
            "metavar": "SPEC",
        },
    )
    stages: list[str] = field(
        default_factory=lambda: list(STAGES),
        metadata={
            "help": f"comma-separated, among {','.join(STAGES)}",
            "parse": comma_list,
            "metavar": "LIST",
        },
    )
    paraphrases: int = field(default=2, metadata={"help": "paraphrases per task", "metavar": "N"})
    clip_fractions: list[float] = field(
        default_factory=lambda: [0.25, 0.5, 0.75],
        metadata={
            "help": "temporal clip ends, comma-separated fractions",
            "parse": comma_floats,
            "metavar": "LIST",
        },
    )
    clip_labeller: str = field(
        default="map",
        metadata={"help": "clip rewards from clip_scores (map) or a judge", "choices": CLIP_LABELLERS},
    )
    clip_scores: dict[float, int] = field(
        default_factory=_default_clip_scores,
        metadata={
            "help": "the map labeller's FRACTION=SCORE pairs",
            "parse": fraction_scores,
            "metavar": "MAP",
        },
    )
    judge: Any = field(
        default=None,
        metadata={
            "help": "the clip judge: hf:REWARD_MODEL, openai+logprobs:URL#REWARD_MODEL or a backend spec "
            "(None: the vlm)",
            "metavar": "SPEC",
        },
    )
    judge_prompt: str | None = field(
        default=None,
        metadata={
            "help": "the judge's prompt preset (None: an hf: reward model's own, else toolkit)",
            "choices": list(rubric.PROMPT_PRESETS),
        },
    )
    max_retries: int = field(default=2, metadata={"help": "re-asks after a rejected answer", "metavar": "K"})
    num_frames: int = field(default=8, metadata={"help": "frames shown to the VLM", "metavar": "N"})
    max_side: int | None = field(
        default=336, metadata={"help": "longer side of those frames", "metavar": "PX"}
    )
    workers: int = field(
        default=4,
        metadata={
            "help": "episodes relabeled at once: served calls in flight over the endpoints",
            "aliases": ["--concurrency"],
            "metavar": "N",
        },
    )
    max_new_tokens: int = field(default=512, metadata={"help": "answer budget per call", "metavar": "N"})
    timeout: float = field(default=120.0, metadata={"help": "seconds per served request", "metavar": "S"})
    request_retries: int = field(
        default=3, metadata={"help": "retries of a served request that failed", "metavar": "N"}
    )
    video_input: str = field(
        default="auto",
        metadata={
            "help": "how frames reach openai: endpoints: auto (one video part when the server takes it, "
            "else images), video or frames",
            "choices": list(VIDEO_INPUTS),
        },
    )
    device: str | None = field(default=None, metadata={"help": "for hf: models (None: cuda when available)"})
    cache_dir: str | None = field(
        default=None,
        metadata={"help": "model answer cache (None: OUT/.build/relabel_cache)", "metavar": "DIR"},
    )

    def __post_init__(self) -> None:
        for name in ("vlm", "llm", "judge"):
            value = getattr(self, name)
            if value is not None or name != "judge":
                try:
                    check_spec(value, JUDGE_KINDS) if name == "judge" else check_spec(value)
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None
        if isinstance(self.cache_dir, os.PathLike):
            self.cache_dir = os.fspath(self.cache_dir)
        # the types of the rest (a recipe's values arrive unconverted); these three are read below
        check_fields(self, skip=("stages", "clip_fractions", "clip_scores"))
        if isinstance(self.stages, str):
            self.stages = [s.strip() for s in self.stages.split(",") if s.strip()]
        unknown = [s for s in self.stages if s not in STAGES]
        if unknown or not self.stages:
            raise ValueError(f"stages must be among {', '.join(STAGES)}, got {self.stages}")
        self.stages = [s for s in STAGES if s in self.stages]  # run order, no repeats
        for name in ("paraphrases", "workers", "num_frames", "max_new_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("max_retries", "request_retries"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if self.max_side is not None and self.max_side < 16:
            raise ValueError(f"max_side must be >= 16 pixels, got {self.max_side}")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {self.timeout}")
        self.clip_fractions = [self._fraction(f, "clip_fractions") for f in self.clip_fractions]
        if len(set(self.clip_fractions)) != len(self.clip_fractions):
            raise ValueError(f"clip_fractions must be distinct, got {self.clip_fractions}")
        self.clip_scores = {self._fraction(k, "clip_scores"): v for k, v in (self.clip_scores or {}).items()}
        for fraction, score in self.clip_scores.items():
            if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 4:
                raise ValueError(f"clip_scores must map fractions to scores 1..4, got {fraction}: {score!r}")
        if self.video_input not in VIDEO_INPUTS:
            raise ValueError(f"video_input must be one of {VIDEO_INPUTS}, got {self.video_input!r}")
        if self.clip_labeller not in CLIP_LABELLERS:
            raise ValueError(f"clip_labeller must be one of {CLIP_LABELLERS}, got {self.clip_labeller!r}")
        if self.judge_prompt is not None:
            try:
                rubric.get_preset(self.judge_prompt)
            except ValueError as exc:
                raise ValueError(f"judge_prompt: {exc}") from None

    @staticmethod
    def _fraction(value: Any, name: str) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must hold numbers in (0, 1), got {value!r}") from None
        if math.isnan(number) or not 0 < number < 1:
            raise ValueError(f"{name} must hold fractions in (0, 1) (1 is the whole episode), got {value!r}")
        return number

    def clip_score(self, fraction: float) -> tuple[int, str]:
        """The ``map`` labeller's score of a clip ending at ``fraction``, and where it comes from."""
        if fraction in self.clip_scores:
            return self.clip_scores[fraction], "clip_scores"
        return min(rubric.progress_to_score(fraction), 4), "progress_to_score"

    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides: Any) -> RelabelConfig:
        """From a recipe's mapping (its ``relabel:`` section when it has one); ``overrides`` that are
        not None win."""
        if not isinstance(data, dict):
            raise ValueError(f"relabel settings must be a mapping of RelabelConfig fields, got {data!r}")
        if isinstance(data.get("relabel"), dict):
            data = data["relabel"]
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown relabel settings {unknown}; known: {known}")
        return cls(**{**data, **{k: v for k, v in overrides.items() if v is not None}})

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str], **overrides: Any) -> RelabelConfig:
        """Read a relabel recipe (e.g. ``dataset_builder/configs/relabel_served.yaml``).

        Args:
            path: the YAML recipe (RelabelConfig fields, at its top level or under ``relabel:``).
            **overrides: field values that, when not None, win over the recipe's.
        """
        data = read_recipe(path, "relabel", section="relabel")
        try:
            return cls.from_dict(data, **overrides)
        except ValueError as exc:
            raise ValueError(f"relabel recipe {path}: {exc}") from None

    def describe(self) -> dict[str, Any]:
        """The settings as JSON-ready values (a model object shows as its name)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in ("vlm", "llm", "judge"):
            value = out[key]
            if isinstance(value, (list, tuple)):
                out[key] = ",".join(str(v) for v in value)
            elif value is not None and not isinstance(value, str):
                out[key] = getattr(value, "name", repr(value))
        out["clip_scores"] = {str(k): v for k, v in self.clip_scores.items()}
        out["stages"] = list(self.stages)
        out["clip_fractions"] = list(self.clip_fractions)
        return out
