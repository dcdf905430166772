"""Agreement statistics of a review and the verified label of an example.

Per annotator pair, Cohen's kappa with quadratic weights on the examples both scored (rejections
excluded: they are not on the ordinal scale) and exact agreement on every shared example (a
rejection counting as its own category); per source and per augmentation, how often decisions
changed the proposed label (corrected, rejected) and the pooled agreement.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np

from roboreward import rubric

__all__ = ["POLICIES", "agreement", "decision_outcome", "final_label", "quadratic_kappa"]

POLICIES = ("majority", "unanimous")


def quadratic_kappa(a: Sequence[int], b: Sequence[int], categories: Sequence[int] = rubric.SCORES) -> float:
    """Cohen's kappa of two raters' ordinal scores with quadratic weights ``(i - j)^2 / (k - 1)^2``:
    ``1 - sum(W * observed) / sum(W * expected)``, expected from the raters' marginals. NaN when
    undefined (no items, or no disagreement is possible by chance).

    Args:
        a: the first rater's scores.
        b: the second rater's, item for item.
        categories: the ordinal scale.

    >>> round(quadratic_kappa([1, 2, 3, 4, 5], [1, 2, 3, 5, 5]), 4)
    0.9565
    """
    if len(a) != len(b):
        raise ValueError(f"the two raters scored different numbers of items: {len(a)} and {len(b)}")
    if not a:
        return float("nan")
    index = {c: i for i, c in enumerate(categories)}
    k = len(categories)
    observed = np.zeros((k, k))
    for x, y in zip(a, b, strict=True):
        observed[index[x], index[y]] += 1
    i, j = np.indices((k, k))
    weights = (i - j) ** 2 / (k - 1) ** 2
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    denominator = float((weights * expected).sum())
    return float("nan") if denominator == 0 else 1.0 - float((weights * observed).sum()) / denominator


def decision_outcome(decision: dict[str, Any]) -> int | str:
    """A decision as an outcome: the score it gives, or ``"reject"``.

    Args:
        decision: a row of `ReviewStore.decisions`.
    """
    return "reject" if decision["decision"] == "reject" else int(decision["score"])


def final_label(outcomes: Sequence[int | str], policy: str = "majority") -> int | str | None:
    """An example's verified label from its decisions' outcomes (a score or ``"reject"``).

    ``majority``: the most common outcome; a tie with a rejection in it is ``"reject"``; a tie between
    scores is the lower median of the tied scores. ``unanimous``: the common outcome, or None (a
    disagreement) when the decisions differ.

    Args:
        outcomes: the decisions' outcomes (`decision_outcome`).
        policy: one of `POLICIES`.

    >>> final_label([4, 4, 3]), final_label([2, 5]), final_label([3, "reject"])
    (4, 2, 'reject')
    >>> final_label([3, 4], "unanimous")
    """
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    if not outcomes:
        return None
    counts = Counter(outcomes)
    if policy == "unanimous":
        return outcomes[0] if len(counts) == 1 else None
    top = max(counts.values())
    tied = [o for o, n in counts.items() if n == top]
    if "reject" in tied:
        return "reject"
    scores = sorted(int(o) for o in tied)
    return scores[(len(scores) - 1) // 2]


def _number(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def _pair_stats(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    scored = [(x["score"], y["score"]) for x, y in pairs if x["score"] is not None and y["score"] is not None]
    same = sum(decision_outcome(x) == decision_outcome(y) for x, y in pairs)
    exact = same / len(pairs) if pairs else float("nan")
    return {
        "examples": len(pairs),
        "scored": len(scored),
        "exact_agreement": _number(exact),
        "quadratic_kappa": _number(quadratic_kappa([s for s, _ in scored], [t for _, t in scored])),
    }


def agreement(decisions: Sequence[dict[str, Any]], examples: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Agreement statistics of the decisions on ``examples`` (id -> row with ``source``, ``augmentation``).

    ``pairs``: per annotator pair (``"alice|bob"``), the shared examples, how many both scored, exact
    agreement (on every shared example; a rejection is its own category) and quadratic kappa (on the
    scored ones). ``overall``: the same pooled over all pairs. ``by_source`` / ``by_augmentation``: the
    decisions in each group, the share that changed the proposed label (``changed`` = ``corrected`` +
    ``rejected``), and the pooled pair statistics of the group's examples.

    Args:
        decisions: the decisions (`ReviewStore.decisions`); those on other examples are ignored.
        examples: id -> row of the split under review.
    """
    per_example: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for d in decisions:
        if d["example_id"] in examples:
            per_example[d["example_id"]][d["annotator"]] = d
    annotators = sorted({a for e in per_example.values() for a in e})
    pair_items: dict[str, list[tuple[str, tuple[dict[str, Any], dict[str, Any]]]]] = {}
    for x, y in combinations(annotators, 2):
        pair_items[f"{x}|{y}"] = [
            (i, (e[x], e[y])) for i, e in sorted(per_example.items()) if x in e and y in e
        ]
    pooled = [item for items in pair_items.values() for item in items]
    result: dict[str, Any] = {
        "pairs": {name: _pair_stats([p for _, p in items]) for name, items in pair_items.items()},
        "overall": _pair_stats([p for _, p in pooled]),
    }
    for key in ("source", "augmentation"):
        groups: dict[str, Counter[str]] = defaultdict(Counter)
        for example_id, by_annotator in per_example.items():
            for d in by_annotator.values():
                counts = groups[str(examples[example_id][key])]
                counts["decisions"] += 1
                counts[d["decision"]] += 1
        table = {}
        for group, counts in sorted(groups.items()):
            n = counts["decisions"]
            table[group] = {
                "decisions": n,
                "changed": _number((counts["correct"] + counts["reject"]) / n),
                "corrected": _number(counts["correct"] / n),
                "rejected": _number(counts["reject"] / n),
                **{
                    f"pairs_{k}": v
                    for k, v in _pair_stats([p for i, p in pooled if str(examples[i][key]) == group]).items()
                },
            }
        result[f"by_{key}"] = table
    return result
