"""`SplitReview`: a split under review, its examples (videos read on demand), its decisions and
the assignment; the app is a thin layer over it, and scripts and tests can drive a review with it."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import threading
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from roboreward import rubric
from roboreward.review.assignment import assignment_order, labels_needed, next_example
from roboreward.review.split import RELEASE_FILE, read_split, read_videos, write_video
from roboreward.review.store import ReviewStore

__all__ = ["SplitReview"]


class SplitReview:
    """A split under review: its examples (videos read on demand), the decisions and the assignment.

    The app is a thin layer over this class; scripts and tests can drive a review with it directly.

    Args:
        dataset: a folder written by `roboreward build`, or in the public release's layout.
        split: the split to review.
        db_path: the SQLite file of decisions (created if missing).
        double_fraction: the share of examples labelled by two annotators.
        cache_dir: where videos are written for the player (None: a new temporary folder).
    """

    def __init__(
        self,
        dataset: str | os.PathLike[str],
        split: str,
        db_path: str | os.PathLike[str],
        double_fraction: float = 0.1,
        cache_dir: str | os.PathLike[str] | None = None,
    ):
        if not 0.0 <= double_fraction <= 1.0:
            raise ValueError(f"double_fraction must be in [0, 1], got {double_fraction}")
        self.dataset = Path(dataset)
        self.split = split
        self.double_fraction = double_fraction
        self.examples, self._where = read_split(self.dataset, split)
        self.ids = sorted(self.examples)
        self.store = ReviewStore(db_path)
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._orders: dict[str, list[str]] = {}
        self._lock = threading.RLock()

    @property
    def cache_dir(self) -> Path:
        """Where videos are written for the player (a new temporary folder unless given)."""
        with self._lock:
            if self._cache_dir is None:
                self._cache_dir = Path(tempfile.mkdtemp(prefix="roboreward-review-"))
            self._cache_dir.mkdir(parents=True, exist_ok=True)
            return self._cache_dir

    def order(self, annotator: str) -> list[str]:
        """The example ids in the order ``annotator`` reviews them (`assignment_order`).

        Args:
            annotator: whose order.
        """
        if annotator not in self._orders:
            self._orders[annotator] = assignment_order(self.ids, annotator, self.double_fraction)
        return self._orders[annotator]

    def next_example(self, annotator: str, skipped: Sequence[str] = ()) -> str | None:
        """The example to show ``annotator`` next (None when nothing is left for them).

        Args:
            annotator: who asks.
            skipped: examples they skipped, in the order skipped.
        """
        return next_example(
            self.order(annotator), self.store.decisions(), annotator, self.double_fraction, skipped
        )

    def decide(
        self,
        example_id: str,
        annotator: str,
        decision: str,
        score: int | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Store a decision on an example of this split (its proposed score is the row's reward).

        Args:
            example_id: an example of this split.
            annotator: who decides.
            decision: one of `DECISIONS`.
            score: the corrected score (``correct``).
            reason: the reason (``reject``).
        """
        if example_id not in self.examples:
            raise ValueError(f"{example_id!r} is not an example of the {self.split} split of {self.dataset}")
        proposed = int(self.examples[example_id]["reward"])
        return self.store.decide(example_id, annotator, decision, proposed, score=score, reason=reason)

    def progress(self, annotator: str) -> dict[str, Any]:
        """What is done: the annotator's decisions, and examples with all the decisions they need,
        in total and per source.

        Args:
            annotator: whose decisions count as theirs.
        """
        deciders: dict[str, set[str]] = defaultdict(set)
        for d in self.store.decisions():
            if d["example_id"] in self.examples:
                deciders[d["example_id"]].add(d["annotator"])
        by_source: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        done = 0
        for i, row in self.examples.items():
            complete = len(deciders[i]) >= labels_needed(i, self.double_fraction)
            done += complete
            by_source[row["source"]][0] += complete
            by_source[row["source"]][1] += 1
        return {
            "annotator": annotator,
            "mine": sum(annotator in d for d in deciders.values()),
            "done": done,
            "total": len(self.examples),
            "by_source": {s: tuple(v) for s, v in sorted(by_source.items())},
        }

    def video_path(self, example_id: str) -> Path:
        """The example's mp4 as a file in the cache folder (written on first use).

        Args:
            example_id: an example of this split.
        """
        target = self._video_file(example_id)
        if target.exists():
            return target
        path, group, _ = self._where[example_id]
        if group == RELEASE_FILE:  # the public release's layout: the video is a file of its own
            write_video(str(path), target, self.dataset, path, example_id)
            return target
        with self._lock:  # one reader per row group at a time; its other videos are cached too
            if target.exists():
                return target
            videos = read_videos(path, group)
            for other in [i for i in self.examples if self._where[i][:2] == (path, group)]:
                write_video(videos[self._where[other][2]], self._video_file(other), self.dataset, path, other)
        return target

    def _video_file(self, example_id: str) -> Path:
        return self.cache_dir / (hashlib.sha256(example_id.encode()).hexdigest()[:24] + ".mp4")

    def describe(self, example_id: str) -> dict[str, Any]:
        """What the reviewer reads next to the video: task, proposed reward and how the row was made.

        Args:
            example_id: an example of this split.
        """
        row = self.examples[example_id]
        try:
            provenance = json.loads(row.get("provenance") or "{}")
        except ValueError:
            provenance = {}
        provenance = provenance if isinstance(provenance, dict) else {}
        facts = [
            ("id", example_id),
            ("source", row["source"]),
            ("episode", row.get("episode_id")),
            ("camera", row.get("camera")),
            ("augmentation", row["augmentation"]),
        ]
        if row.get("original_task") and row["original_task"] != row["task"]:
            facts.append(("original task", row["original_task"]))
        counterfactual = provenance.get("counterfactual") or {}
        if isinstance(counterfactual, dict):
            facts.append(("relabel level", counterfactual.get("level")))
            facts.append(("failure mode", counterfactual.get("failure")))
        clip = provenance.get("temporal_clip") or {}
        if isinstance(clip, dict):
            facts.append(("clip fraction", clip.get("fraction")))
            facts.append(("clip labeller", clip.get("labeller")))
        if provenance.get("partial_success") is not None:
            facts.append(("source progress score", provenance["partial_success"]))
        if row.get("progress") is not None and not (
            isinstance(row["progress"], float) and math.isnan(row["progress"])
        ):
            facts.append(("progress", f"{row['progress']:.2f}"))
        return {
            "id": example_id,
            "task": row["task"],
            "proposed": int(row["reward"]),
            "rubric_line": rubric.level(int(row["reward"])).line(),
            "facts": [(k, v) for k, v in facts if v not in (None, "")],
        }
