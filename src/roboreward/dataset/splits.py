"""How a build samples and splits episodes: uniform quotas per sub-dataset, seeded and grouped splits.

The seed paper samples Open X-Embodiment uniformly per sub-dataset (`sample_uniform`), so repetitive
sub-datasets do not dominate; every row derived from one rollout shares its group and lands in one
split (`assign_splits`), stratified by source.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections import defaultdict
from collections.abc import Sequence

from roboreward.dataset.folder import SPLITS
from roboreward.episode import Episode

__all__ = ["assign_splits", "sample_uniform", "seeded_rng", "split_counts"]


def sample_uniform(sizes: dict[str, int], total: int) -> dict[str, int]:
    """How many episodes to take from each sub-dataset: equal shares, what a small one cannot
    fill going to the others ("water filling"), never more than a sub-dataset has.

    >>> sample_uniform({"a": 10, "b": 1000, "c": 1000}, 100)
    {'a': 10, 'b': 45, 'c': 45}
    """
    quota = dict.fromkeys(sizes, 0)
    remaining = min(total, sum(sizes.values()))
    open_names = sorted(n for n, s in sizes.items() if s > 0)
    while remaining > 0 and open_names:
        share, extra = divmod(remaining, len(open_names))
        for rank, name in enumerate(open_names):
            take = min(share + (1 if rank < extra else 0), sizes[name] - quota[name])
            quota[name] += take
            remaining -= take
        open_names = [n for n in open_names if quota[n] < sizes[n]]
    return quota


def seeded_rng(seed: int, *parts: str) -> random.Random:
    """A random generator seeded by ``seed`` and ``parts`` (a hash: independent of Python's hash seed).

    Args:
        seed: the build's seed.
        parts: what the generator is for, e.g. a source's name.
    """
    return random.Random(hashlib.sha256(json.dumps([seed, *parts]).encode()).digest())


def assign_splits(
    episodes: Sequence[Episode], ratios: dict[str, float], seed: int
) -> dict[str, list[Episode]]:
    """Split by group, stratified by source: every row of one group lands in one split.

    Within each source, groups are ordered by a seeded hash (so the result does not depend on the
    order sources list them) and cut into consecutive runs whose sizes follow ``ratios`` (largest
    remainder rounding). A split with a positive ratio gets at least one group when the source
    has at least as many groups as such splits, so small sources still reach validation and test.
    """
    weights = {s: float(ratios.get(s, 0.0)) for s in SPLITS}
    total = sum(weights.values())
    groups_by_source: dict[str, dict[str, list[Episode]]] = defaultdict(lambda: defaultdict(list))
    for ep in episodes:
        groups_by_source[ep.source][ep.group].append(ep)
    out: dict[str, list[Episode]] = {s: [] for s in SPLITS}
    for source in sorted(groups_by_source):
        groups = groups_by_source[source]

        def order(g: str, source: str = source) -> str:
            return hashlib.sha256(json.dumps([seed, source, g]).encode()).hexdigest()

        ordered = sorted(groups, key=order)
        counts = split_counts(len(ordered), {s: w / total for s, w in weights.items()})
        start = 0
        for split in SPLITS:
            for group in ordered[start : start + counts[split]]:
                out[split].extend(groups[group])
            start += counts[split]
    for split in SPLITS:
        out[split].sort(key=lambda ep: ep.id)
    return out


def split_counts(n: int, shares: dict[str, float]) -> dict[str, int]:
    """How many of ``n`` groups each split gets: largest remainders, and at least one for every split
    with a positive share when there are enough groups.

    Args:
        n: the number of groups.
        shares: split -> its share (summing to 1).
    """
    exact = {s: n * shares[s] for s in SPLITS}
    counts = {s: math.floor(v) for s, v in exact.items()}
    by_remainder = sorted(SPLITS, key=lambda s: (-(exact[s] - counts[s]), SPLITS.index(s)))
    for s in by_remainder[: n - sum(counts.values())]:
        counts[s] += 1
    wanted = [s for s in SPLITS if shares[s] > 0]
    if n >= len(wanted):
        for s in wanted:
            if counts[s] == 0:
                donor = max(wanted, key=lambda d: counts[d])
                counts[donor] -= 1
                counts[s] += 1
    return counts
