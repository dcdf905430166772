"""The models a RoboRewardBench run scores: one `Predictor` per kind of model spec (`parse_spec`).

Each predictor turns examples into `Prediction` rows (a 1..5 score or `INVALID`, the raw output, the
five probabilities where the model gives them, and how a served model was asked): a local checkpoint
(`CheckpointPredictor`, `roboreward.models.local.RewardModel`), a served one (`ServedPredictor`,
`roboreward.models.served.ServedRewardModel`), someone else's predictions file, or a baseline. Their
``settings`` (and ``key``) decide whether a cached row can be reused. `roboreward.bench.run.parse_spec`
makes them from model specs, and `roboreward.bench.run` runs them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roboreward import rubric, video
from roboreward.bench.examples import Example
from roboreward.models.endpoints import ordered_map
from roboreward.models.factory import load_reward_model
from roboreward.models.openai_chat import BackendError
from roboreward.models.settings import DEFAULT_SETTINGS, InferenceSettings

__all__ = [
    "BENCH_KINDS",
    "INVALID",
    "CheckpointPredictor",
    "ConstantBaseline",
    "FilePredictions",
    "Prediction",
    "Predictor",
    "RandomBaseline",
    "ServedPredictor",
    "safe_name",
    "unique_names",
]

INVALID = 0  # the metrics' code for "no parsable answer"

BENCH_KINDS = ("hf", "generate", "openai", "openai+logprobs", "serve", "predictions", "baseline")


@dataclass
class Prediction:
    id: str
    prediction: int  # 1..5, or INVALID
    output: str | None = None
    probs: list[float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # more columns of its cached row


class Predictor:
    """Predicts a 1..5 score (or INVALID) for examples; subclasses per kind of SPEC."""

    name: str
    spec: str

    @property
    def settings(self) -> InferenceSettings | None:
        """The inference settings the predictions are made with (None: no model is prompted)."""
        return None

    @property
    def key(self) -> str | None:
        """What else a cached row must have been made with to be reused (None: the settings say all)."""
        return None

    def predict(self, examples: Sequence[Example]) -> Iterator[Prediction]:
        raise NotImplementedError


@dataclass
class ConstantBaseline(Predictor):
    spec: str
    value: int
    name: str = ""

    def predict(self, examples: Sequence[Example]) -> Iterator[Prediction]:
        for ex in examples:
            yield Prediction(ex.id, self.value, output=str(self.value))


@dataclass
class RandomBaseline(Predictor):
    spec: str
    seed: int = 0
    name: str = ""

    def predict(self, examples: Sequence[Example]) -> Iterator[Prediction]:
        for ex in examples:  # per-id seed: the same answer for an example whatever else is scored
            rng = random.Random(hashlib.sha256(f"{self.seed}/{ex.id}".encode()).digest())
            value = rng.randint(rubric.MIN_SCORE, rubric.MAX_SCORE)
            yield Prediction(ex.id, value, output=str(value))


@dataclass
class FilePredictions(Predictor):
    spec: str
    path: Path
    name: str = ""
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.path.is_file():
            raise ValueError(f"predictions file {self.path} does not exist")
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise ValueError(f"{self.path} line {number} is not JSON") from None
            if not isinstance(row, dict) or "id" not in row or not ({"prediction", "output"} & set(row)):
                raise ValueError(f"{self.path} line {number} needs 'id' and 'prediction' or 'output'")
            self.rows[str(row["id"])] = row

    def predict(self, examples: Sequence[Example]) -> Iterator[Prediction]:
        for ex in examples:
            row = self.rows.get(ex.id)
            if row is None:
                yield Prediction(ex.id, INVALID, output=None)
            elif "prediction" in row:
                value = row["prediction"]
                ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5
                output = row.get("output", None if value is None else json.dumps(value))
                yield Prediction(ex.id, value if ok else INVALID, output=output)
            else:
                score = rubric.parse_answer(row["output"])
                yield Prediction(ex.id, INVALID if score is None else score, output=row["output"])


def shown(example: Example, settings: InferenceSettings) -> Any:
    """What a model with ``settings`` is shown of a row: its video; for a multi-view model (settings
    naming several cameras), every camera of the row's rollout (`Example.views`)."""
    return example.views if settings.multi_view and example.views is not None else example.video


def unshowable(example: Example, settings: InferenceSettings) -> str | None:
    """Why a multi-view model cannot be shown a row (a camera it takes is missing; the row is then
    `INVALID` with this as its output), or None."""
    if not settings.multi_view:
        return None
    have = example.views.cameras if example.views is not None else ()
    missing = [c for c in settings.cameras if c not in have]
    if not missing:
        return None
    return f"no video of camera(s) {missing} for this row (it has {list(have) or [example.camera]})"


def one_per_rollout(
    examples: Sequence[Example], settings: InferenceSettings
) -> tuple[list[Example], dict[str, list[str]]]:
    """For a multi-view model, the rows of one rollout (its camera rows, sharing `Example.views`, with
    one task) are one question: the first row of each, and the ids of the others by the first's id,
    which take its prediction. Any other model: every row, no others.

    Args:
        examples: the rows to predict.
        settings: the model's settings.
    """
    if not settings.multi_view:
        return list(examples), {}
    firsts: dict[Any, Example] = {}
    others: dict[str, list[str]] = {}
    for ex in examples:
        key = (id(ex.views), ex.task) if ex.views is not None else ex.id
        if key in firsts:
            others.setdefault(firsts[key].id, []).append(ex.id)
        else:
            firsts[key] = ex
    return list(firsts.values()), others


def _with_twins(predictions: Iterator[Prediction], others: dict[str, list[str]]) -> Iterator[Prediction]:
    for pred in predictions:
        yield pred
        for other in others.get(pred.id, ()):
            yield dataclasses.replace(pred, id=other)


@dataclass
class CheckpointPredictor(Predictor):
    """A reward model that `roboreward.models.load_reward_model` makes from ``path`` and asks in
    batches: a local checkpoint (``mode`` ``score``: its five probabilities; ``generate``: a free-text
    answer, parsed) or a ``roboreward serve`` server. It is loaded on first use."""

    spec: str
    path: str
    batch_size: int = 8
    name: str = ""
    mode: str = "score"  # or "generate": free text, parsed
    # As resolved before loading (from local files); None: known once loaded (a server's settings).
    inference: InferenceSettings | None = DEFAULT_SETTINGS
    overrides: dict[str, Any] = field(default_factory=dict)
    _model: Any = None

    @property
    def settings(self) -> InferenceSettings | None:
        if self.inference is None:
            self.load()
        return self.inference

    def load(self) -> Any:
        """The model, loaded (once) with the run's overrides; its settings replace those resolved before."""
        if self._model is None:
            # A local folder's settings were read before (with the overrides, and their warnings): the
            # model takes them as they are, so no warning is said twice. A Hub id's are resolved again
            # once the model's files are here: its settings file too.
            known = (
                {"settings": self.inference}
                if self.inference is not None and os.path.isdir(self.path)
                else {}
            )
            self._model = load_reward_model(self.path, batch_size=self.batch_size, **known, **self.overrides)
            self.inference = self._model.settings
        return self._model

    def _shown(self, example: Example) -> Any:
        return shown(example, self._model.settings)

    def _unshowable(self, example: Example) -> str | None:
        if self._model.settings.multi_view and not hasattr(self._model, "views_of"):
            # a `roboreward serve` server takes one video a request
            return (
                f"the server's model takes cameras {list(self._model.settings.cameras)}: it is sent one video"
            )
        return unshowable(example, self._model.settings)

    def _generate(self, chunk: Sequence[Example]) -> Iterator[Prediction]:
        try:
            answers = self._model.generate_batch(
                [self._shown(e) for e in chunk], [e.task for e in chunk], batch_size=len(chunk)
            )
        except video.VideoDecodeError:
            answers = [None] * len(chunk)
            for i, e in enumerate(chunk):
                with contextlib.suppress(video.VideoDecodeError):
                    answers[i] = self._model.generate(self._shown(e), e.task)
        for ex, answer in zip(chunk, answers, strict=True):
            if answer is None:
                yield Prediction(ex.id, INVALID, output="video could not be decoded")
            else:
                yield Prediction(ex.id, INVALID if answer.score is None else answer.score, output=answer.text)

    def _score_one(self, example: Example) -> Any:
        try:
            return self._model.score(self._shown(example), example.task)
        except video.VideoDecodeError:
            return None

    def predict(self, examples: Sequence[Example]) -> Iterator[Prediction]:
        self.load()
        unshowable = {e.id: why for e in examples if (why := self._unshowable(e))}
        for ex in examples:
            if ex.id in unshowable:
                yield Prediction(ex.id, INVALID, output=unshowable[ex.id])
        examples, others = one_per_rollout(
            [e for e in examples if e.id not in unshowable], self._model.settings
        )
        yield from _with_twins(self._predict(examples), others)

    def _predict(self, examples: Sequence[Example]) -> Iterator[Prediction]:
        for start in range(0, len(examples), self.batch_size):
            chunk = examples[start : start + self.batch_size]
            if self.mode == "generate":
                yield from self._generate(chunk)
                continue
            try:
                results = self._model.score_batch([self._shown(e) for e in chunk], [e.task for e in chunk])
            except video.VideoDecodeError:  # one bad video: score the rest one by one
                results = [self._score_one(e) for e in chunk]
            for ex, result in zip(chunk, results, strict=True):
                if result is None:
                    yield Prediction(ex.id, INVALID, output="video could not be decoded")
                else:
                    yield Prediction(
                        ex.id,
                        result.score,
                        output=f"{rubric.ANSWER_PREFIX}{result.score}",
                        probs=list(result.probs),
                    )


@dataclass
class ServedPredictor(Predictor):
    """A model behind OpenAI-compatible endpoints (`roboreward.models.served.ServedRewardModel`):
    ``openai+logprobs:`` reads the five-score distribution, ``openai:`` parses a text answer; requests
    go out ``concurrency`` at a time over the endpoints, the frames as a video part when the server
    takes one. Each row records how it was made (``scoring``, ``video_input``)."""

    spec: str
    model: Any  # a ServedRewardModel
    name: str = ""

    @property
    def settings(self) -> InferenceSettings:
        return self.model.settings

    @property
    def key(self) -> str:
        """What besides the settings makes a cached row reusable: the scoring asked for."""
        return f"served/{self.model.scoring}"

    def _one(self, example: Example) -> Prediction:
        why = unshowable(example, self.model.settings)
        if why:
            return Prediction(example.id, INVALID, output=why)
        try:
            answer = self.model.answer(shown(example, self.model.settings), example.task)
        except video.VideoDecodeError:
            return Prediction(example.id, INVALID, output="video could not be decoded")
        except BackendError as exc:  # the endpoints failed after retries: not a model answer
            raise BackendError(f"{self.name}: request for example {example.id} failed: {exc}") from None
        score = answer.score
        return Prediction(
            example.id,
            INVALID if score is None else score,
            output=answer.text,
            probs=None if answer.probs is None else list(answer.probs),
            extra={"scoring": answer.scoring, "video_input": answer.video_input},
        )

    def predict(self, examples: Sequence[Example]) -> Iterator[Prediction]:
        examples, others = one_per_rollout(examples, self.model.settings)
        yield from _with_twins(ordered_map(self._one, examples, self.model.concurrency), others)


def unique_names(predictors: list[Predictor]) -> None:
    """Give each predictor a distinct ``name`` (a repeated one gets ``-2``, ``-3``, ...), in place.

    Args:
        predictors: the run's predictors, in command-line order.
    """
    seen: dict[str, int] = {}
    for p in predictors:
        base = p.name or p.spec
        seen[base] = seen.get(base, 0) + 1
        p.name = base if seen[base] == 1 else f"{base}-{seen[base]}"


def safe_name(name: str) -> str:
    """A model name as a file name: runs of other characters than letters, digits, ``.``, ``-`` and
    ``_`` become ``_``.

    Args:
        name: the model's name.

    >>> safe_name("openai/Qwen 2.5:7b")
    'openai_Qwen_2.5_7b'
    """
    return re.sub(r"[^\w.-]+", "_", name).strip("_") or "model"
