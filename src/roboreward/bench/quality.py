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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from roboreward import rubric, video
from roboreward.apps.curves import value_order_correlation

__all__ = ["pair_group", "plot_reliability", "quality_entry", "voc_entry"]

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
