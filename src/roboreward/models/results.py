"""What a reward model says about one episode: `ScoreResult`, the same for every way of asking.

A local checkpoint (`roboreward.models.local.RewardModel`), a reward server
(`roboreward.models.remote.RewardClient`)
and a served model (`roboreward.models.served.ServedRewardModel`) all answer with a `ScoreResult`,
made from five probabilities by `score_result`. This module needs nothing but numpy, so the
lightweight clients do not import torch.

    >>> score_result([0.0, 0.0, 0.2, 0.6, 0.2]).to_dict()
    {'score': 4, 'expected': 4.0, 'reward': 0.75, 'probs': [0.0, 0.0, 0.2, 0.6, 0.2]}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from roboreward import rubric

__all__ = ["CurvePoint", "ProgressCurve", "ScoreResult", "score_result"]


@dataclass(frozen=True)
class ScoreResult:
    """The reward model's judgement of one episode.

    ``probs[k - 1]`` is the probability of score k (they sum to 1), ``score`` the most likely
    score, ``expected`` the mean score sum(k * p_k) and ``reward`` = (expected - 1) / 4 in [0, 1].
    """

    score: int
    probs: tuple[float, float, float, float, float]
    expected: float
    reward: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"score", "expected", "reward", "probs": [p1, ..., p5]}``."""
        return {
            "score": self.score,
            "expected": self.expected,
            "reward": self.reward,
            "probs": list(self.probs),
        }


def score_result(probs: Sequence[float] | np.ndarray) -> ScoreResult:
    """The `ScoreResult` of a distribution over the scores 1..5 (it must sum to 1).

    Args:
        probs: the probabilities of scores 1, 2, 3, 4 and 5.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape != (5,):
        raise ValueError(f"a score distribution has 5 probabilities, got shape {probs.shape}")
    expected = float(np.dot(np.arange(1, 6), probs))
    # Clamped: float rounding can put a certain 5 a hair above 5.
    expected = min(max(expected, rubric.MIN_SCORE), rubric.MAX_SCORE)
    return ScoreResult(
        score=int(np.argmax(probs)) + 1,
        probs=tuple(float(p) for p in probs),  # type: ignore[arg-type]
        expected=expected,
        reward=rubric.score_to_reward(expected),
    )


@dataclass(frozen=True)
class CurvePoint:
    """One point of a progress curve: the episode cut at ``time`` seconds (``fraction`` of it), scored."""

    time: float
    fraction: float
    result: ScoreResult

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"time", "fraction", "score", "expected", "reward", "probs"}``."""
        return {"time": self.time, "fraction": self.fraction, **self.result.to_dict()}


@dataclass(frozen=True)
class ProgressCurve:
    """A reward model's judgement of each prefix of an episode (`RewardScorer.progress_curve`).

    >>> curve = ProgressCurve("open the drawer", 2.0, (
    ...     CurvePoint(1.0, 0.5, score_result([0.5, 0.5, 0, 0, 0])),
    ...     CurvePoint(2.0, 1.0, score_result([0, 0, 0, 0.5, 0.5]))))
    >>> curve.times, curve.expected
    ([1.0, 2.0], [1.5, 4.5])
    """

    task: str
    duration: float
    points: tuple[CurvePoint, ...]

    @property
    def times(self) -> list[float]:
        return [p.time for p in self.points]

    @property
    def expected(self) -> list[float]:
        """The expected score (1..5) at each point."""
        return [p.result.expected for p in self.points]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"task", "duration", "points": [CurvePoint.to_dict(), ...]}``."""
        return {"task": self.task, "duration": self.duration, "points": [p.to_dict() for p in self.points]}
