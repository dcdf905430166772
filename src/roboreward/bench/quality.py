"""RoboRewardBench beyond MAE: calibration, pairwise preference and value-order correlation.

`roboreward.bench.run.run_bench` calls `quality_entry` for every model: the numbers come from the
``calibration_preference`` evaluate module (`roboreward.metrics.load`), never from a copy of its
formulas. For a model that gives a distribution (a local checkpoint scored in one forward pass) they
are the expected calibration error and Brier score of its five-way distribution, with a reliability
diagram (``reliability.png``); for every model, the pairwise preference accuracy on pairs of test
rows that share a group (`pair_group`: the task, or the RoboArena session) and differ in reward, a
tie counting as HELM's A/B/tie scenario counts it (wrong). ``--voc K`` adds, for local checkpoints,
OpenGVL's value-order correlation: the mean Spearman correlation of a K-point progress curve
(`RewardModel.progress_curve`) against time, over the successful (reward 5) test episodes.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from roboreward import rubric, video
from roboreward.apps.curves import value_order_correlation

__all__ = [
    "PreferencePair",
    "detection_entry",
    "direct_preference_entry",
    "helm_preference_entry",
    "pair_group",
    "plot_reliability",
    "policy_entry",
    "preference_pairs",
    "quality_entry",
    "success_scores",
    "voc_entry",
]

#: The metric module holding the formulas.
METRIC = "calibration_preference"


def pair_group(task: str, subset: str, episode_id: str | None = None) -> str:
    """Which rows are compared in pairs: a RoboArena session's runs, else the rows of one task.

    Args:
        task: the row's task.
        subset: the row's subset (source).
        episode_id: the row's episode id (RoboArena's is ``<session>/<policy letter>``).
    """
    if subset == "roboarena" and episode_id and "/" in episode_id:
        return f"roboarena session {episode_id.split('/')[0]}"
    return f"task {task.strip().lower()}"


def quality_entry(
    predictions: Sequence[float | None],
    references: Sequence[int],
    probabilities: Sequence[Sequence[float] | None],
    groups: Sequence[str],
    metric: Any = None,
) -> dict[str, Any]:
    """The calibration and preference numbers of one model, for ``results.json``.

    Args:
        predictions: the model's score per row (None, or 0 = no answer, ties in a pair).
        references: the true 1..5 rewards.
        probabilities: the five probabilities per row (None where the model gave none).
        groups: `pair_group` per row.
        metric: a loaded ``calibration_preference`` module (None: load it).

    Returns:
        ``{"calibration": {ece, brier, calibrated, reliability} or None, "preference": {accuracy,
        pairs, right, wrong, ties, tie_credit}}``; calibration is None for a model without a
        distribution.
    """
    if metric is None:
        from roboreward import metrics

        metric = metrics.load(METRIC)
    has_probs = any(p is not None for p in probabilities)
    scores = [None if p is None or p == 0 else float(p) for p in predictions]
    out = metric.compute(
        predictions=scores,
        references=list(references),
        probabilities=list(probabilities) if has_probs else None,
        groups=list(groups),
    )
    calibration = None
    if has_probs:
        # Six decimals: a row scored again in another batch moves float32 probabilities in the 8th
        # digit, and a re-run from the cache must give the same results.json.
        table = out["reliability"]
        calibration = {
            "ece": round(out["ece"], 6),
            "brier": round(out["brier"], 6),
            "calibrated": out["calibrated"],
            "reliability": {
                "count": table["count"],
                "confidence": [None if c is None else round(c, 6) for c in table["confidence"]],
                "accuracy": [None if a is None else round(a, 6) for a in table["accuracy"]],
            },
        }
    preference = {
        "accuracy": out["preference_accuracy"],
        "pairs": out["pairs"],
        "right": out["right"],
        "wrong": out["wrong"],
        "ties": out["ties"],
        "tie_credit": 0.0,
    }
    return {"calibration": calibration, "preference": preference}


def _number(prediction: float | None) -> float | None:
    """A prediction as a number, None for no answer (None, NaN, or the toolkit's 0)."""
    if prediction is None or prediction == 0 or math.isnan(float(prediction)):
        return None
    return float(prediction)


def _defined(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry with NaN (a number that does not exist: one class, one policy, no pair) as None, the
    way ``results.json`` writes it, so the returned results equal the written ones."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in entry.items()}


def success_scores(
    predictions: Sequence[float | None], probabilities: Sequence[Sequence[float] | None]
) -> tuple[list[float | None], list[float | None], str]:
    """Per row, the success score and the expected score a model gives, and what the success score is.

    With the five probabilities: P(score = 5) and sum k * P(k); without (a text answer): the answer's
    number for both (None for no answer).

    Args:
        predictions: the model's score per row (None or 0 = no answer).
        probabilities: the five probabilities per row (None where the model gave none).

    >>> success_scores([5, 0], [[0.0, 0.0, 0.0, 0.5, 0.5], None])
    ([0.5, None], [4.5, None], 'P(score = 5)')
    >>> success_scores([4, None], [None, None])
    ([4.0, None], [4.0, None], 'score')
    """
    success, expected = [], []
    for prediction, probs in zip(predictions, probabilities, strict=True):
        if probs is not None:
            success.append(round(float(probs[-1]), 9))  # a re-scored batch moves float32 in the 8th digit
            expected.append(round(sum((k + 1) * float(p) for k, p in enumerate(probs)), 9))
        else:
            success.append(_number(prediction))
            expected.append(_number(prediction))
    kind = "P(score = 5)" if any(p is not None for p in probabilities) else "score"
    return success, expected, kind


def detection_entry(
    predictions: Sequence[float | None],
    references: Sequence[int],
    probabilities: Sequence[Sequence[float] | None],
    metric: Any = None,
) -> dict[str, Any]:
    """Success detection without a threshold (the ``success_detection`` module) for ``results.json``.

    Args:
        predictions: the model's score per row (None, or 0 = no answer).
        references: the true 1..5 rewards.
        probabilities: the five probabilities per row (None where the model gave none).
        metric: a loaded ``success_detection`` module (None: load it).

    Returns:
        ``{roc_auc, pr_auc, positives, negatives, missing, score}``; ``score`` says what was ranked
        (``P(score = 5)`` or ``score``).
    """
    if metric is None:
        from roboreward import metrics

        metric = metrics.load("success_detection")
    success, _, kind = success_scores(predictions, probabilities)
    return _defined({**metric.compute(predictions=success, references=list(references)), "score": kind})


def policy_entry(
    predictions: Sequence[float | None],
    references: Sequence[int],
    probabilities: Sequence[Sequence[float] | None],
    policies: Sequence[str | None],
    metric: Any = None,
) -> dict[str, Any] | None:
    """Policy ranking (the ``policy_ranking`` module) over the rows that name a policy, or None if none does.

    Each policy's mean expected score (the answer's number for a model without a distribution)
    against its mean true reward: Kendall tau-b and Spearman, with the number of policies.

    Args:
        predictions: the model's score per row (None, or 0 = no answer).
        references: the true 1..5 rewards.
        probabilities: the five probabilities per row (None where the model gave none).
        policies: the policy per row (None: not a policy rollout).
        metric: a loaded ``policy_ranking`` module (None: load it).
    """
    rows = [i for i, policy in enumerate(policies) if policy]
    if not rows:
        return None
    if metric is None:
        from roboreward import metrics

        metric = metrics.load("policy_ranking")
    _, expected, kind = success_scores(predictions, probabilities)
    out = metric.compute(
        predictions=[expected[i] for i in rows],
        references=[references[i] for i in rows],
        policies=[policies[i] for i in rows],
    )
    return _defined({**out, "rows": len(rows), "score": "expected score" if kind != "score" else "score"})


@dataclass(frozen=True)
class PreferencePair:
    """Two rows of one group (a RoboArena session, or one task) as HELM's A / B / tie scenario asks.

    Args:
        a, b: the rows' positions in the bench's examples (which is A is drawn with a seed).
        reference: ``A``, ``B`` or ``tie``: which has the higher true reward.
    """

    a: int
    b: int
    reference: str


def preference_pairs(
    rewards: Sequence[int], groups: Sequence[str], ids: Sequence[str], seed: int = 0, limit: int | None = None
) -> list[PreferencePair]:
    """Every pair of rows that share a group, ties included (HELM's scenario has tie references).

    Which row is A is drawn per pair from ``seed`` and the two ids, so a model's preference for the
    first or the second video does not line up with the truth. ``limit``: a seeded sample of that
    many pairs, in the same order as all of them.

    Args:
        rewards: the true 1..5 reward per row.
        groups: `pair_group` per row.
        ids: the example ids.
        seed: the draw's seed.
        limit: at most this many pairs (None: all).

    >>> [(p.a, p.b, p.reference) for p in preference_pairs([5, 2, 2, 4], ["s", "s", "s", "t"], "wxyz")]
    [(1, 0, 'B'), (0, 2, 'A'), (2, 1, 'tie')]
    """
    members: dict[str, list[int]] = {}
    for index, group in enumerate(groups):
        members.setdefault(group, []).append(index)
    pairs = []
    for group in sorted(members):
        rows = members[group]
        for k, i in enumerate(rows):
            for j in rows[k + 1 :]:
                swap = random.Random(f"{seed}/{ids[i]}/{ids[j]}").random() < 0.5
                a, b = (j, i) if swap else (i, j)
                ref = "A" if rewards[a] > rewards[b] else "B" if rewards[a] < rewards[b] else "tie"
                pairs.append(PreferencePair(a, b, ref))
    if limit is not None and limit < len(pairs):
        keep = set(random.Random(f"{seed}/pairs").sample(range(len(pairs)), limit))
        pairs = [p for n, p in enumerate(pairs) if n in keep]
    return pairs


def _from_scores(pairs: Sequence[PreferencePair], scores: Sequence[float | None]) -> list[str | None]:
    """A / B / tie from two single-video scores: the higher wins, equal is a tie, no answer: None."""
    answers: list[str | None] = []
    for pair in pairs:
        a, b = scores[pair.a], scores[pair.b]
        answers.append(None if a is None or b is None else "A" if a > b else "B" if a < b else "tie")
    return answers


def helm_preference_entry(
    pairs: Sequence[PreferencePair], predictions: Sequence[float | None], metric: Any = None
) -> dict[str, Any]:
    """Preference accuracy from two single-video scores, every pair (ties included) counted as HELM's
    A / B / tie metric counts it (the ``preference_accuracy`` module).

    Args:
        pairs: `preference_pairs` of the bench's rows.
        predictions: the model's score per row (None, or 0 = no answer, which HELM counts wrong).
        metric: a loaded ``preference_accuracy`` module (None: load it).
    """
    if metric is None:
        from roboreward import metrics

        metric = metrics.load("preference_accuracy")
    scores = [_number(p) for p in predictions]
    answers = [a or "" for a in _from_scores(pairs, scores)]  # "": no answer (evaluate refuses all-None)
    return _defined(metric.compute(predictions=answers, references=[p.reference for p in pairs]))


def direct_preference_entry(
    pairs: Sequence[PreferencePair],
    ask: Callable[[PreferencePair], str | None],
    predictions: Sequence[float | None],
    metric: Any = None,
) -> dict[str, Any]:
    """HELM's A / B / tie scenario asked directly (both videos in one prompt) beside the same pairs
    answered from the two single-video scores.

    Args:
        pairs: the pairs asked.
        ask: the model's raw answer to a pair (None: no answer, e.g. an unreadable video).
        predictions: the model's single-video score per row.
        metric: a loaded ``preference_accuracy`` module (None: load it).

    Returns:
        ``{"direct": {...}, "from_scores": {...}, "answers": [...]}``: the module's numbers for both
        ways of answering, and each pair's raw answer with its ids.
    """
    if metric is None:
        from roboreward import metrics

        metric = metrics.load("preference_accuracy")
    from roboreward import rubric

    raw = [ask(pair) for pair in pairs]
    references = [p.reference for p in pairs]
    said = [rubric.parse_preference_helm(t) or "" for t in raw]  # "": no answer (evaluate refuses all-None)
    direct = _defined(metric.compute(predictions=said, references=references))
    from_scores = helm_preference_entry(pairs, predictions, metric=metric)
    answers = [
        {"a": p.a, "b": p.b, "reference": p.reference, "output": t} for p, t in zip(pairs, raw, strict=True)
    ]
    return {"direct": direct, "from_scores": from_scores, "answers": answers}


def voc_entry(model: Any, items: Sequence[tuple[Any, str]], points: int) -> dict[str, Any]:
    """Value-order correlation of ``model``'s progress curves over successful episodes.

    Args:
        model: a `roboreward.models.RewardScorer`.
        items: (video, task) of each successful test episode.
        points: K, points per curve.

    Returns:
        ``{"points", "episodes", "defined", "mean"}``: ``defined`` counts curves with a correlation
        (a flat curve has none); ``mean`` is over those (None if there are none). Unreadable videos
        are left out of ``episodes``.
    """
    values, episodes = [], 0
    for source, task in items:
        try:
            curve = model.progress_curve(source, task, points=points)
        except video.VideoDecodeError:
            continue
        episodes += 1
        voc = value_order_correlation(curve.expected, curve.times)
        if not math.isnan(voc):
            values.append(voc)
    return {
        "points": points,
        "episodes": episodes,
        "defined": len(values),
        "mean": float(np.mean(values)) if values else None,
    }


#: How far past [0, 1] the reliability diagram's axes reach, so a marker at 0 or 1 is drawn whole.
RELIABILITY_MARGIN = 0.05


def reliability_figure(models: dict[str, dict[str, Any]]) -> Any:
    """The reliability diagram as a matplotlib ``Figure`` (no pyplot state): accuracy against
    confidence per bin, one line per calibrated model, each marker labelled with its bin's count.

    Args:
        models: ``results.json``'s ``models``; those without ``calibration`` are left out.

    Returns:
        The figure, or None when no model gave a distribution.
    """
    calibrated = {n: m["calibration"] for n, m in models.items() if m.get("calibration")}
    if not calibrated:
        return None
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    for name, entry in sorted(calibrated.items()):
        table = entry["reliability"]
        rows = [
            (c, a, n)
            for c, a, n in zip(table["confidence"], table["accuracy"], table["count"], strict=True)
            if a is not None
        ]
        (line,) = ax.plot(
            [c for c, _, _ in rows],
            [a for _, a, _ in rows],
            marker="o",
            label=f"{name} (ECE {entry['ece']:.3f})",
        )
        for confidence, accuracy, count in rows:  # how many examples each point stands for
            ax.annotate(
                f"{count}",
                (confidence, accuracy),
                textcoords="offset points",
                xytext=(-5, 5),  # above left: off a rising line and the diagonal
                ha="right",
                fontsize=8,
                color=line.get_color(),
            )
    low, high = -RELIABILITY_MARGIN, 1 + RELIABILITY_MARGIN
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_xlabel(f"confidence of the most likely score (1..{rubric.MAX_SCORE})")
    ax.set_ylabel("accuracy")
    ax.set_title("Reliability diagram (numbers: examples per bin)")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def plot_reliability(out: Path, models: dict[str, dict[str, Any]]) -> Path | None:
    """``reliability.png``: `reliability_figure` written.

    Args:
        out: the bench's output folder.
        models: ``results.json``'s ``models``.

    Returns:
        The PNG's path, or None when no model gave a distribution.
    """
    fig = reliability_figure(models)
    if fig is None:
        return None
    path = out / "reliability.png"
    fig.savefig(path, dpi=120)
    return path
