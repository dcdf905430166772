"""RoboRewardBench's human-facing outputs: the leaderboard (CSV and Markdown) and its plots.

`roboreward.bench.run.run_bench` computes ``results.json``; this module only renders it, so the
leaderboard can be written again from a saved ``results.json``.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_results", "rate_cell", "write_leaderboard"]


def write_leaderboard(out: Path, results: dict[str, Any]) -> None:
    """Write ``leaderboard.csv`` and ``leaderboard.md`` from ``results.json``'s content.

    Args:
        out: the bench's output folder.
        results: what `roboreward.bench.run.run_bench` returns.
    """
    subsets = results["subsets"]
    header = [
        "rank",
        "model",
        "mean win rate",
        "MAE (mean of subsets)",
        "MAE (all rows)",
        "invalid rate",
        "success F1",
        "preference acc.",
        "ECE",
        "Brier",
        "VOC",
        "success ROC-AUC",
        "success PR-AUC",
        "policy Kendall tau",
        "policy Spearman",
        "A/B/tie from scores",
        "A/B/tie asked",
        *[f"MAE {s}" for s in subsets],
    ]
    rows = []
    for rank, name in enumerate(results["leaderboard"], start=1):
        m = results["models"][name]
        rows.append(
            [
                rank,
                name,
                rate_cell(m["mean_win_rate"]),
                rate_cell(m.get("macro_mae")),  # None in a results.json written before it existed
                rate_cell(m["mae"]),
                f"{m['invalid_rate']:.3f}",
                f"{m['success']['f1']:.3f}",
                *_quality_cells(m),
                *_detection_cells(m),
                *[f"{m['subset_mae'][s]:.3f}" for s in subsets],
            ]
        )
    with open(out / "leaderboard.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    lines = [
        f"# {results['benchmark']}: {results['dataset']} "
        f"({results['split']}, {results['num_examples']} examples)",
        "",
        "| " + " | ".join(header) + " |",
        "|" + " --- |" * len(header),
        *["| " + " | ".join(str(c) for c in row) + " |" for row in rows],
        "",
        "Mean win rate: per subset, the fraction of the other models with a strictly higher MAE (ties",
        'count one half), averaged over subsets (HELM). MAE against the 1..5 labels: "mean of subsets" is',
        'the unweighted mean of the per-subset MAEs (HELM\'s headline, "Mean Abs. Error"), "all rows" the',
        "MAE over every example. " + _RANKING[results["conventions"]],
        "Preference accuracy: pairs of rows of one task (or RoboArena session) with different labels,",
        "ordered right by the scores; a tie is wrong (HELM's A/B/tie). ECE (10 bins) and Brier score of",
        "the five-way distribution, for models that give one (reliability.png). VOC: mean Spearman of",
        "a progress curve against time on the reward-5 episodes (OpenGVL), with --voc K.",
        "Success ROC-AUC / PR-AUC: P(score = 5) (the score, for a text answer) against true score 5.",
        "Policy Kendall tau / Spearman: per-policy mean expected score against per-policy mean true",
        f"reward, over the rows that name a policy ({results.get('num_policies', 0)} policies).",
        "A/B/tie: every pair of rows of one group, ties included, answered A, B or tie and counted as",
        "HELM's preference scenario counts (a tie is right only on a tie): from the two single scores,",
        "and asked directly with both videos in HELM's wording (--preference-pairs N).",
        f"Conventions: {results['conventions']}: " + _CONVENTION_NOTES[results["conventions"]],
        *(
            [f"Skipped rows: {len(results['skipped'])} (reasons in results.json)."]
            if results["skipped"]
            else []
        ),
        "",
    ]
    (out / "leaderboard.md").write_text("\n".join(lines), encoding="utf-8")


def rate_cell(value: float | None) -> str:
    """A number for the leaderboard; one that does not exist (a win rate with no other model to win
    against, NaN or null in ``results.json``) is ``n/a``.

    >>> rate_cell(0.5), rate_cell(float("nan")), rate_cell(None)
    ('0.500', 'n/a', 'n/a')
    """
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


def _quality_cells(entry: dict[str, Any]) -> list[str]:
    """Preference accuracy, ECE, Brier, VOC: '-' where a model has none (no distribution, no curve)."""
    calibration, voc = entry.get("calibration"), entry.get("voc")
    accuracy = entry.get("preference", {}).get("accuracy")
    return [
        "-" if accuracy is None else f"{accuracy:.3f}",
        "-" if not calibration else f"{calibration['ece']:.3f}",
        "-" if not calibration else f"{calibration['brier']:.3f}",
        "-" if not voc or voc["mean"] is None else f"{voc['mean']:.3f}",
    ]


def _detection_cells(entry: dict[str, Any]) -> list[str]:
    """Success ROC-AUC and PR-AUC, policy Kendall tau and Spearman: '-' where there are none."""
    detection = entry.get("success_detection") or {}
    ranking = entry.get("policy_ranking") or {}
    return [
        "-" if not detection else rate_cell(detection.get("roc_auc")),
        "-" if not detection else rate_cell(detection.get("pr_auc")),
        "-" if not ranking else rate_cell(ranking.get("kendall_tau")),
        "-" if not ranking else rate_cell(ranking.get("spearman")),
        rate_cell((entry.get("preference_helm") or {}).get("accuracy")),
        rate_cell(((entry.get("preference_direct") or {}).get("direct") or {}).get("accuracy")),
    ]


_RANKING = {
    "roboreward": "Ranked by mean win rate, then MAE (all rows).",
    "helm": "Ranked by MAE (mean of subsets), as HELM ranks, then MAE (all rows).",
}

_CONVENTION_NOTES = {
    "roboreward": "an unparsable answer costs the largest error possible for its example.",
    "helm": "HELM's RoboRewardBench metric: answers read with HELM's parser, an unparsable one costs 4.0, "
    "an out-of-range number its distance.",
}


#: The right end of the win-rate axis: room for a value label beside a bar at 1.000.
WIN_RATE_XMAX = 1.16


def plot_results(out: Path, results: dict[str, Any]) -> None:
    """Write ``subset_mae_heatmap.png`` and ``mean_win_rate.png``.

    Args:
        out: the bench's output folder.
        results: what `roboreward.bench.run.run_bench` returns.
    """
    try:
        import matplotlib
    except ImportError:
        print(f'bench: no plots in {out}: they need matplotlib (pip install "roboreward[plots]")')
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, subsets = results["leaderboard"], results["subsets"]
    grid = np.array([[results["models"][n]["subset_mae"][s] for s in subsets] for n in names])
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(subsets), 1.2 + 0.5 * len(names)))
    image = ax.imshow(grid, cmap="viridis_r", vmin=0, vmax=4, aspect="auto")
    ax.set_xticks(range(len(subsets)), subsets, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), names)
    for i in range(len(names)):
        for j in range(len(subsets)):
            ax.text(
                j,
                i,
                f"{grid[i, j]:.2f}",
                ha="center",
                va="center",
                color="white" if grid[i, j] > 2 else "black",
            )
    fig.colorbar(image, ax=ax, label="MAE (lower is better)")
    ax.set_title("MAE per subset")
    fig.tight_layout()
    fig.savefig(out / "subset_mae_heatmap.png", dpi=120)
    plt.close(fig)

    fig = mean_win_rate_figure(results)
    if fig is not None:
        fig.savefig(out / "mean_win_rate.png", dpi=120)


def mean_win_rate_figure(results: dict[str, Any]) -> Any:
    """The leaderboard's mean win rates as a matplotlib ``Figure`` (no pyplot state): one bar per
    model, best first, each labelled with its value right of the bar, inside the axes (which reach
    past 1 for it: the x ticks stop at 1).

    Args:
        results: what `roboreward.bench.run.run_bench` returns.

    Returns:
        The figure, or None when no model has a win rate (one model alone).
    """
    from matplotlib.figure import Figure

    names = results["leaderboard"]
    values = [results["models"][n]["mean_win_rate"] for n in names]
    if all(math.isnan(v) for v in values):  # one model: no win rate to draw
        return None
    fig = Figure(figsize=(6, 1.2 + 0.4 * len(names)))
    ax = fig.add_subplot()
    ax.barh(range(len(names)), values, color="#4C72B0")
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlim(0, WIN_RATE_XMAX)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.set_xlabel("mean win rate (higher is better)")
    for i, v in enumerate(values):
        ax.text(v + 0.01, i, f"{v:.3f}", va="center", ha="left")
    fig.tight_layout()
    return fig
