"""RoboRewardBench's examples: a built folder, the public release's layout or a Hub id, keyed by id, with
their subsets, and the seeded sample stratified by subset that ``--max-examples`` draws.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roboreward import locate, rubric
from roboreward.bench.quality import pair_group
from roboreward.dataset import fingerprint
from roboreward.models.views import Views
from roboreward.sources.release import locate_release, read_release_split

__all__ = ["Example", "load_examples", "rollout_views", "row_policy", "select_examples"]


@dataclass(frozen=True)
class Example:
    id: str
    video: dict[str, Any]
    task: str
    reward: int
    subset: str
    group: str = ""  # which rows are compared in pairs (`bench_quality.pair_group`)
    policy: str | None = None  # the policy that made the rollout (RoboArena rows), for policy ranking
    camera: str | None = None  # the camera the video was recorded by, where a row names it
    # Every camera of the row's rollout (its rows that differ only in camera, in the dataset's order),
    # where it has several: what a multi-view model is shown for this row (`rollout_views`).
    views: Views | None = None


def _release_examples(root: Path, split: str) -> tuple[list[Example], list[dict[str, str]]]:
    read = read_release_split(root, split)
    examples = [
        Example(r["id"], r["video"], r["task"], r["reward"], r["source"], pair_group(r["task"], r["source"]))
        for r in read.rows
    ]
    return examples, read.skipped


def _task_problem(task: Any) -> str | None:
    """Why a row's task cannot reach a model: not text, empty, or over `rubric.MAX_TASK_CHARS`."""
    if not isinstance(task, str) or not task.strip():
        return f"task is empty or not text ({str(task)[:60]!r})"
    if len(task) > rubric.MAX_TASK_CHARS:
        return f"task is {len(task)} characters long; the limit is {rubric.MAX_TASK_CHARS}"
    return None


def _built_examples(dataset: str, split: str) -> tuple[list[Example], list[dict[str, str]]]:
    import datasets

    try:
        ds = fingerprint.load_dataset(dataset, split=split)  # never a stale cache of a rebuilt folder
    except (FileNotFoundError, ValueError) as exc:
        raise ValueError(f"cannot load split {split!r} of {dataset}: {str(exc).splitlines()[0]}") from None
    missing = {"video", "task", "reward"} - set(ds.column_names)
    if missing:
        raise ValueError(f"{dataset} has no column(s) {sorted(missing)}: not a RoboReward dataset")
    ds = ds.cast_column("video", datasets.Video(decode=False))
    wanted = ("id", "task", "reward", "source", "episode_id", "provenance", "camera", "augmentation")
    columns = [c for c in wanted if c in ds.column_names]
    meta = ds.select_columns(columns).to_dict()
    ids = meta.get("id") or [f"{split}/{i:06d}" for i in range(len(ds))]
    sources = meta.get("source") or ["all"] * len(ds)
    episode_ids = meta.get("episode_id") or [None] * len(ds)
    # A policy's rollouts judged on their own task: a relabeled row (another task) ranks no policy.
    augmentations = meta.get("augmentation") or ["original"] * len(ds)
    policies = [
        row_policy(p) if a in (None, "original") else None
        for p, a in zip(meta.get("provenance") or [None] * len(ds), augmentations, strict=True)
    ]
    cameras = meta.get("camera") or [None] * len(ds)
    if len(set(ids)) != len(ids):
        raise ValueError(f"{dataset} split {split} has repeated ids: they must key the examples")
    examples, skipped, keys = [], [], []
    for index, (id_, task, reward, source, episode_id) in enumerate(
        zip(ids, meta["task"], meta["reward"], sources, episode_ids, strict=True)
    ):
        if not isinstance(reward, int) or not rubric.MIN_SCORE <= reward <= rubric.MAX_SCORE:
            raise ValueError(f"row {index} (id {id_}) of {dataset} has reward {reward!r}, not 1..5")
        problem = _task_problem(task)  # a dataset not built here may hold a book in a task
        if problem is not None:
            skipped.append({"where": f"{split} row {index} (id {str(id_)[:120]})", "reason": problem})
            continue
        group = pair_group(task, source, episode_id)
        video = ds[index]["video"]
        examples.append(Example(id_, video, task, reward, source, group, policies[index], cameras[index]))
        keys.append((source, episode_id, task, reward, augmentations[index]))  # one rollout's rows
    return rollout_views(examples, keys), skipped


def rollout_views(examples: Sequence[Example], keys: Sequence[Any]) -> list[Example]:
    """``examples`` with `Example.views` set: rows whose ``keys`` are equal are one rollout seen by
    several cameras (a RoboArena build with ``roboarena_cameras: [left, right]``); each such row gets
    all of its rollout's videos, cameras in the order their rows come. A rollout with a row of no named
    camera, or two rows of one camera, gets none (which video is which camera is not known).

    Args:
        examples: one per row, with ``camera`` where the row names it.
        keys: one per example: what makes two rows the same rollout (source, episode, task, reward,
            augmentation).
    """
    rollouts: dict[Any, list[Example]] = {}
    for ex, key in zip(examples, keys, strict=True):
        rollouts.setdefault(key, []).append(ex)
    views: dict[Any, Views] = {}
    for key, rows in rollouts.items():
        cameras = [ex.camera for ex in rows]
        if len(rows) > 1 and None not in cameras and len(set(cameras)) == len(cameras):
            views[key] = Views(tuple(cameras), tuple(ex.video for ex in rows))
    return [
        dataclasses.replace(ex, views=views[key]) if key in views else ex
        for ex, key in zip(examples, keys, strict=True)
    ]


def row_policy(provenance: str | dict[str, Any] | None) -> str | None:
    """The policy a built row's rollout came from: ``policy_name`` in its provenance (RoboArena), else None.

    Args:
        provenance: the row's ``provenance`` column (JSON text, as a built folder stores it, or a dict).

    >>> row_policy('{"policy_name": "pi0_droid", "session": "s1"}'), row_policy("{}"), row_policy(None)
    ('pi0_droid', None, None)
    """
    if isinstance(provenance, str):
        try:
            provenance = json.loads(provenance) if provenance else None
        except ValueError:
            return None
    name = provenance.get("policy_name") if isinstance(provenance, dict) else None
    return name if isinstance(name, str) and name.strip() else None


def select_examples(examples: Sequence[Example], max_examples: int | None, seed: int = 0) -> list[Example]:
    """A seeded sample of ``max_examples`` examples, stratified by subset, in the examples' order.

    Each subset gets its share of the sample by size (largest remainders break ties, then subset
    names); within a subset the examples are drawn with ``random.Random(seed)`` from the ids sorted,
    so the sample does not depend on the order of the rows. None or a number >= the examples: all.

    >>> exs = [Example(f"{s}/{i}", {}, "t", 5, s) for s in "ab" for i in range(10)]
    >>> [e.id for e in select_examples(exs, 4, seed=0)]
    ['a/0', 'a/5', 'b/2', 'b/4']
    """
    if max_examples is None or max_examples >= len(examples):
        return list(examples)
    if max_examples < 1:
        raise ValueError(f"max_examples must be >= 1, got {max_examples}")
    groups: dict[str, list[Example]] = {}
    for ex in examples:
        groups.setdefault(ex.subset, []).append(ex)
    quotas = {s: max_examples * len(g) / len(examples) for s, g in groups.items()}
    counts = {s: int(q) for s, q in quotas.items()}
    leftover = max_examples - sum(counts.values())
    for s in sorted(quotas, key=lambda s: (-(quotas[s] - counts[s]), s))[:leftover]:
        counts[s] += 1
    chosen: set[str] = set()
    for s in sorted(groups):
        ids = sorted(ex.id for ex in groups[s])
        chosen.update(random.Random(f"{seed}/{s}").sample(ids, counts[s]))
    return [ex for ex in examples if ex.id in chosen]


def load_examples(
    dataset: str,
    split: str = "test",
    subsets: Sequence[str] | None = None,
    max_examples: int | None = None,
    seed: int = 0,
    skipped: list[dict[str, str]] | None = None,
) -> list[Example]:
    """The benchmark's examples, keyed by id, with their subsets.

    Args:
        dataset: a built folder or a Hub id with ``video``, ``task``, ``reward`` (and ``id``,
            ``source``), or the public release's layout, local or a Hub id (`roboreward.sources.release`).
        split: the split (``validation`` reads the release's ``val``).
        subsets: keep only these subsets (ValueError naming an unknown one).
        max_examples: a seeded sample stratified by subset (`select_examples`).
        seed: the sample's seed.
        skipped: a list that receives ``{"where", "reason"}`` for each row left out (a release row
            the reader skips; a row whose task is empty or over `rubric.MAX_TASK_CHARS`).
    """
    locate.resolve(dataset, "dataset")  # "no such folder" at once; never a cached dataset of that name
    release = locate_release(dataset, split)
    if release is not None:
        examples, left_out = _release_examples(release, split)
    else:
        examples, left_out = _built_examples(dataset, split)
    if skipped is not None:
        skipped.extend(left_out)
    if subsets:
        wanted, present = set(subsets), {ex.subset for ex in examples}
        unknown = wanted - present
        if unknown:
            raise ValueError(f"unknown subsets {sorted(unknown)}; the split has {sorted(present)}")
        examples = [ex for ex in examples if ex.subset in wanted]
    examples = select_examples(examples, max_examples, seed)
    if not examples:
        raise ValueError(f"no examples selected from {dataset} split {split}")
    return examples
