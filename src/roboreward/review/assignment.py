"""Which example an annotator reviews next.

Assignment (`next_example`) is deterministic from the database's contents: an example is
*double-labelled* when the first 8 bytes of ``sha256(id)`` read as a fraction are below
``double_fraction``; it needs decisions from 2 annotators, every other example from 1. Each
annotator walks their own order: the double-labelled examples first (by id, so pairs complete
early), then the others ordered by ``sha256(annotator + id)``, so annotators working at the same
time start at different places and rarely see the same single-labelled example. The next example
is the first in that order the annotator has not decided and that still needs a decision; skipped
examples come back after every other open one.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["assignment_order", "is_double_labelled", "labels_needed", "next_example"]


def _unit_hash(text: str) -> float:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


def is_double_labelled(example_id: str, double_fraction: float) -> bool:
    """Whether an example needs two annotators: ``sha256(id)`` as a fraction in [0, 1) is below
    ``double_fraction``; so a fraction of 0 labels everything once and 1 everything twice.

    Args:
        example_id: the example's id.
        double_fraction: the share of examples labelled twice.
    """
    return _unit_hash(example_id) < double_fraction


def labels_needed(example_id: str, double_fraction: float) -> int:
    """

    Args:
        example_id: the example's id.
        double_fraction: the share of examples labelled twice.
    """
    return 2 if is_double_labelled(example_id, double_fraction) else 1


def assignment_order(ids: Iterable[str], annotator: str, double_fraction: float) -> list[str]:
    """The order in which ``annotator`` is offered examples: double-labelled ones by id, then the
    others by ``sha256(annotator + id)``.

    Args:
        ids: the split's example ids.
        annotator: whose order.
        double_fraction: the share of examples labelled twice.
    """
    ids = list(ids)
    doubles = sorted(i for i in ids if is_double_labelled(i, double_fraction))
    singles = [i for i in ids if not is_double_labelled(i, double_fraction)]
    singles.sort(key=lambda i: (hashlib.sha256(f"{annotator}\n{i}".encode()).digest(), i))
    return doubles + singles


def next_example(
    order: Sequence[str],
    decisions: Iterable[dict[str, Any]],
    annotator: str,
    double_fraction: float,
    skipped: Sequence[str] = (),
) -> str | None:
    """The next example for ``annotator`` along ``order`` (see `assignment_order`): the first one it
    has not decided that still needs a decision; skipped ones come back last, in the order skipped.

    Args:
        order: the annotator's order (`assignment_order`).
        decisions: every decision so far (`ReviewStore.decisions`).
        annotator: who asks.
        double_fraction: the share of examples labelled twice.
        skipped: examples the annotator skipped, in the order skipped.
    """
    deciders: dict[str, set[str]] = defaultdict(set)
    for d in decisions:
        deciders[d["example_id"]].add(d["annotator"])

    def open_(i: str) -> bool:
        return annotator not in deciders[i] and len(deciders[i]) < labels_needed(i, double_fraction)

    later = set(skipped)
    fresh = next((i for i in order if i not in later and open_(i)), None)
    if fresh is not None:
        return fresh
    known = set(order)
    return next((i for i in skipped if i in known and open_(i)), None)
