"""Human verification of RoboRewardBench: a review app, durable decisions, agreement statistics.

    roboreward review --dataset roboreward --split test --db reviews.sqlite --annotator alice
    roboreward review export --db reviews.sqlite --dataset roboreward --out roboreward_verified

    >>> from roboreward.review import build_review_app, export_verified
    >>> build_review_app("roboreward", "test", "reviews.sqlite", "alice").launch()  # doctest: +SKIP
    >>> export_verified("reviews.sqlite", "roboreward", "roboreward_verified")  # doctest: +SKIP

**The app** shows one example at a time: the video, the task, the proposed reward with its rubric
line, and how the row was made (source, augmentation, original task, relabel level and failure mode,
clip fraction, the source's raw progress score). The annotator accepts the label, corrects the score
(``1``-``5``), rejects the example with a reason (`REJECT_REASONS`), or skips it for later. Keys:
``1``-``5`` correct, ``a`` accept, ``r`` reject (with the reason chosen in the radio; there is no
default reason), ``s`` skip; keys typed into a text field are ignored. Pressing the proposed score
counts as accepting it. The annotator is, in this order: the ``annotator`` argument, the login name
(basic auth), or the name typed into the page.

**Decisions** live in SQLite (`ReviewStore`): one row per (example id, annotator), replaced when the
annotator changes their mind, and every click also appended to an ``events`` log; both in one
``BEGIN IMMEDIATE`` transaction on a fresh connection, WAL journal, ``synchronous=FULL`` and a busy
timeout, so a crash or a closed tab loses nothing and several annotators (in one app or in several
processes) can write to one database at once.

**Assignment** (`next_example`), deterministic from the database's contents: an example is
*double-labelled* when the first 8 bytes of ``sha256(id)`` read as a fraction are below
``double_fraction``; it needs decisions from 2 annotators, every other example from 1. Each
annotator walks their own order: the double-labelled examples first (by id, so pairs complete
early), then the others ordered by ``sha256(annotator + id)``, so annotators working at the same
time start at different places and rarely see the same single-labelled example. The next example
is the first in that order the annotator has not decided and that still needs a decision; skipped
examples come back after every other open one.

**Export** (`export_verified`) writes a new dataset folder: the verified split with corrections
applied, rejected examples dropped and examples with fewer than ``min_annotators`` decisions left out
(a benchmark row must be verified: there is no "unverified" row in it), plus ``verified`` (bool) and
``reviewers`` (int32) columns. The other splits are copied row for row with ``verified=False`` and
``reviewers=0``, because `datasets` needs one schema across the splits of a config. The final label
of an example (`final_label`): with ``majority``, the most common decision, a tie that includes a
rejection drops the example and a tie between scores takes the lower median of the tied scores (a
score someone gave, the more conservative one); with ``unanimous``, every decision must agree or the
example is dropped as a disagreement. The card is re-rendered (split sizes and features in its YAML)
with a "Human verification" section; `verification_report.json` holds the outcome counts and the
agreement statistics (`agreement`): per annotator pair, Cohen's kappa with quadratic weights on the
examples both scored (rejections excluded: they are not on the ordinal scale) and exact agreement on
every shared example (a rejection counting as its own category); per source and per augmentation,
how often decisions changed the proposed label (corrected, rejected) and the pooled agreement.
"""

# No `from __future__ import annotations`: Gradio reads the handlers' `gr.Request` annotation at run
# time to pass the login name, and a string annotation naming a local import would hide it.
import hashlib
import json
import math
import os
import re
import shutil
import sqlite3
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from roboreward import rubric

__all__ = [
    "DECISIONS",
    "REJECT_REASONS",
    "ReviewStore",
    "SplitReview",
    "agreement",
    "assignment_order",
    "build_review_app",
    "export_verified",
    "final_label",
    "is_double_labelled",
    "next_example",
    "quadratic_kappa",
    "sanitize_annotator",
]

DECISIONS = ("accept", "correct", "reject")
REJECT_REASONS = ("wrong task text", "unclear video", "ambiguous")
POLICIES = ("majority", "unanimous")
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_SCHEMA_VERSION = 1


def sanitize_annotator(name: str | None) -> str:
    """An annotator name as stored: 1-64 letters, digits, ``.``, ``_`` or ``-`` (surrounding blanks
    dropped); anything else raises ValueError.

    >>> sanitize_annotator(" alice_01 ")
    'alice_01'
    """
    text = (name or "").strip() if isinstance(name, str) or name is None else None
    if text is None or not _NAME.fullmatch(text):
        raise ValueError(
            f"annotator name must be 1-64 characters among letters, digits, '.', '_' and '-', got {name!r}"
        )
    return text


# ---------------------------------------------------------------------------------------------
# Decisions


class ReviewStore:
    """The decisions database (SQLite). Every call opens its own connection, so one store may be used
    from many threads, and many processes may open the same file.

    >>> store = ReviewStore("reviews.sqlite")  # doctest: +SKIP
    >>> store.decide("roboarena/ep1/ab12", "alice", "correct", proposed=5, score=4)  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str], timeout: float = 60.0):
        self.path = str(path)
        self.timeout = timeout
        try:
            db = self._connect()
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("BEGIN IMMEDIATE")
                db.execute(
                    """CREATE TABLE IF NOT EXISTS decisions (
                        example_id TEXT NOT NULL,
                        annotator TEXT NOT NULL,
                        decision TEXT NOT NULL CHECK (decision IN ('accept', 'correct', 'reject')),
                        score INTEGER CHECK (score IS NULL OR score BETWEEN 1 AND 5),
                        proposed INTEGER NOT NULL CHECK (proposed BETWEEN 1 AND 5),
                        reason TEXT,
                        decided_at REAL NOT NULL,
                        PRIMARY KEY (example_id, annotator)
                    )"""
                )
                db.execute(
                    """CREATE TABLE IF NOT EXISTS events (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        example_id TEXT NOT NULL,
                        annotator TEXT NOT NULL,
                        decision TEXT NOT NULL,
                        score INTEGER,
                        proposed INTEGER NOT NULL,
                        reason TEXT,
                        decided_at REAL NOT NULL
                    )"""
                )
                db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
                db.execute("COMMIT")
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise ValueError(f"cannot open the review database {self.path}: {exc}") from None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        db.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
        db.execute("PRAGMA synchronous=FULL")  # a committed decision survives a power cut too
        return db

    def decide(
        self,
        example_id: str,
        annotator: str,
        decision: str,
        proposed: int,
        score: int | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Record (or replace) ``annotator``'s decision on an example in one transaction; returns the row.

        ``accept`` takes the proposed score; ``correct`` needs ``score`` 1..5 (the proposed score itself
        is stored as an accept); ``reject`` needs a ``reason`` from `REJECT_REASONS`.
        """
        annotator = sanitize_annotator(annotator)
        rubric.level(proposed)
        if decision == "accept":
            score, reason = proposed, None
        elif decision == "correct":
            rubric.level(score)  # an integer 1..5 or ValueError
            decision, reason = ("accept" if score == proposed else "correct"), None
        elif decision == "reject":
            if reason not in REJECT_REASONS:
                raise ValueError(f"a rejection needs a reason among {REJECT_REASONS}, got {reason!r}")
            score = None
        else:
            raise ValueError(f"decision must be one of {DECISIONS}, got {decision!r}")
        row = {
            "example_id": str(example_id),
            "annotator": annotator,
            "decision": decision,
            "score": score,
            "proposed": int(proposed),
            "reason": reason,
            "decided_at": time.time(),
        }
        values = tuple(row.values())
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(
                    "INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(example_id, annotator) DO UPDATE SET decision=excluded.decision, "
                    "score=excluded.score, proposed=excluded.proposed, reason=excluded.reason, "
                    "decided_at=excluded.decided_at",
                    values,
                )
                db.execute(
                    "INSERT INTO events (example_id, annotator, decision, score, proposed, reason, "
                    "decided_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    values,
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()
        return row

    def _select(self, sql: str, parameters: Sequence[Any] = ()) -> list[dict[str, Any]]:
        db = self._connect()
        try:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute(sql, parameters).fetchall()]
        finally:
            db.close()

    def decisions(self, annotator: str | None = None) -> list[dict[str, Any]]:
        """The current decisions (one per example and annotator), by example id then annotator."""
        if annotator is None:
            return self._select("SELECT * FROM decisions ORDER BY example_id, annotator")
        return self._select("SELECT * FROM decisions WHERE annotator = ? ORDER BY example_id", (annotator,))

    def history(self) -> list[dict[str, Any]]:
        """Every decision ever made, changes of mind included, in the order they were made."""
        return self._select("SELECT * FROM events ORDER BY seq")


# ---------------------------------------------------------------------------------------------
# Assignment


def _unit_hash(text: str) -> float:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


def is_double_labelled(example_id: str, double_fraction: float) -> bool:
    """Whether an example needs two annotators: ``sha256(id)`` as a fraction in [0, 1) is below
    ``double_fraction``; so a fraction of 0 labels everything once and 1 everything twice."""
    return _unit_hash(example_id) < double_fraction


def labels_needed(example_id: str, double_fraction: float) -> int:
    return 2 if is_double_labelled(example_id, double_fraction) else 1


def assignment_order(ids: Iterable[str], annotator: str, double_fraction: float) -> list[str]:
    """The order in which ``annotator`` is offered examples: double-labelled ones by id, then the
    others by ``sha256(annotator + id)``."""
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
    has not decided that still needs a decision; skipped ones come back last, in the order skipped."""
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


# ---------------------------------------------------------------------------------------------
# The split under review


def _split_files(dataset: Path, split: str) -> list[Path]:
    files = sorted((dataset / "data").glob(f"{split}-*.parquet"))
    if not files:
        raise ValueError(f"{dataset} has no {split} split: no data/{split}-*.parquet (build it first)")
    return files


def _row_ids(table: Any, split: str, start: int) -> list[str]:
    """The examples' ids; a dataset without an ``id`` column gets positional ones (``test-000042``)."""
    if "id" in table.column_names:
        return [str(i) for i in table.column("id").to_pylist()]
    return [f"{split}-{start + k:06d}" for k in range(table.num_rows)]


_DEFAULTS = {
    "source": "unknown",
    "augmentation": "original",
    "provenance": "{}",
    "camera": "",
    "episode_id": "",
}


class SplitReview:
    """A split under review: its examples (videos read on demand), the decisions and the assignment.

    The app is a thin layer over this class; scripts and tests can drive a review with it directly.
    """

    def __init__(
        self,
        dataset: str | os.PathLike[str],
        split: str,
        db_path: str | os.PathLike[str],
        double_fraction: float = 0.1,
        cache_dir: str | os.PathLike[str] | None = None,
    ):
        import pyarrow.parquet as pq

        if not 0.0 <= double_fraction <= 1.0:
            raise ValueError(f"double_fraction must be in [0, 1], got {double_fraction}")
        self.dataset = Path(dataset)
        self.split = split
        self.double_fraction = double_fraction
        self.examples: dict[str, dict[str, Any]] = {}
        self._where: dict[str, tuple[Path, int, int]] = {}  # id -> (file, row group, row in group)
        start = 0
        for path in _split_files(self.dataset, split):
            parquet = pq.ParquetFile(path)
            columns = [c for c in parquet.schema_arrow.names if c != "video"]
            for group in range(parquet.num_row_groups):
                table = parquet.read_row_group(group, columns=columns)
                for offset, (example_id, row) in enumerate(
                    zip(_row_ids(table, split, start), table.to_pylist(), strict=True)
                ):
                    if example_id in self.examples:
                        raise ValueError(f"example id {example_id!r} appears twice in the {split} split")
                    try:
                        rubric.level(row.get("reward"))
                    except ValueError as exc:
                        raise ValueError(f"{path.name}: example {example_id!r}: reward: {exc}") from None
                    self.examples[example_id] = {**_DEFAULTS, **row, "id": example_id}
                    self._where[example_id] = (path, group, offset)
                start += table.num_rows
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
        if annotator not in self._orders:
            self._orders[annotator] = assignment_order(self.ids, annotator, self.double_fraction)
        return self._orders[annotator]

    def next_example(self, annotator: str, skipped: Sequence[str] = ()) -> str | None:
        """The example to show ``annotator`` next (None when nothing is left for them)."""
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
        """Store a decision on an example of this split (its proposed score is the row's reward)."""
        if example_id not in self.examples:
            raise ValueError(f"{example_id!r} is not an example of the {self.split} split of {self.dataset}")
        proposed = int(self.examples[example_id]["reward"])
        return self.store.decide(example_id, annotator, decision, proposed, score=score, reason=reason)

    def progress(self, annotator: str) -> dict[str, Any]:
        """What is done: the annotator's decisions, and examples with all the decisions they need,
        in total and per source."""
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
        """The example's mp4 as a file in the cache folder (written on first use)."""
        target = self.cache_dir / (hashlib.sha256(example_id.encode()).hexdigest()[:24] + ".mp4")
        if target.exists():
            return target
        import pyarrow.parquet as pq

        path, group, _ = self._where[example_id]
        with self._lock:  # one reader per row group at a time; its other videos are cached too
            if target.exists():
                return target
            table = pq.ParquetFile(path).read_row_group(group)
            ids = [i for i in self.examples if self._where[i][:2] == (path, group)]
            videos = table.column("video").to_pylist()
            for other in ids:
                self._write_video(other, videos[self._where[other][2]], path)
        return target

    def _write_video(self, example_id: str, value: Any, shard: Path) -> None:
        target = self.cache_dir / (hashlib.sha256(example_id.encode()).hexdigest()[:24] + ".mp4")
        if target.exists():
            return
        value = value if isinstance(value, dict) else {"bytes": None, "path": value}
        tmp = target.with_name(f".{target.name}.tmp")
        if value.get("bytes"):
            tmp.write_bytes(value["bytes"])
        else:
            candidates = [Path(value.get("path") or "")]
            candidates += [self.dataset / candidates[0], shard.parent / candidates[0]]
            found = next((c for c in candidates if str(c) not in ("", ".") and c.is_file()), None)
            if found is None:
                raise ValueError(f"example {example_id!r} has no video bytes and no readable video path")
            shutil.copyfile(found, tmp)
        os.replace(tmp, target)

    def describe(self, example_id: str) -> dict[str, Any]:
        """What the reviewer reads next to the video: task, proposed reward and how the row was made."""
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


# ---------------------------------------------------------------------------------------------
# The app

_KEYS_JS = """
() => {
  if (window.__roborewardReviewKeys) return;
  window.__roborewardReviewKeys = true;
  const buttons = {"1": "review-1", "2": "review-2", "3": "review-3", "4": "review-4", "5": "review-5",
                   "a": "review-accept", "r": "review-reject", "s": "review-skip"};
  const clickable = ["radio", "checkbox", "button", "submit", "reset", "range", "color", "file"];
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat || event.isComposing) return;
    const target = event.target;
    const tag = (target && target.tagName || "").toUpperCase();
    const typing = (target && target.isContentEditable) || tag === "TEXTAREA" || tag === "SELECT" ||
      (tag === "INPUT" && !clickable.includes((target.type || "text").toLowerCase()));
    if (typing) return;
    const id = buttons[(event.key || "").toLowerCase()];
    const element = id && document.getElementById(id);
    const button = element && (element.tagName === "BUTTON" ? element : element.querySelector("button"));
    if (button && !button.disabled) { event.preventDefault(); button.click(); }
  });
}
"""


def _markdown_text(text: Any) -> str:
    """Dataset text shown as Markdown literally (no emphasis, links or HTML from a task string)."""
    return re.sub(r"([\\`*_{}\[\]()<>#+!|~])", r"\\\1", str(text))


def build_review_app(
    dataset_dir: str | os.PathLike[str],
    split: str = "test",
    db_path: str | os.PathLike[str] = "reviews.sqlite",
    annotator: str | None = None,
    double_fraction: float = 0.1,
) -> Any:
    """The Gradio review app (a `gr.Blocks`; see the module docstring). Launch it yourself:
    ``build_review_app("roboreward", "test", "reviews.sqlite").launch()`` (127.0.0.1 by default).

    API endpoints (``gradio_client``): ``/current`` (the example to review), ``/accept``,
    ``/correct_1`` .. ``/correct_5``, ``/reject`` and ``/skip``, each taking the example id shown and the
    reject reason, and ``/start`` (the annotator's name, when neither ``annotator`` nor a login gives it).
    """
    import gradio as gr

    fixed = sanitize_annotator(annotator) if annotator is not None else None
    review = SplitReview(dataset_dir, split, db_path, double_fraction)

    def who(name: str | None, request: gr.Request | None) -> tuple[str | None, bool]:
        """(the annotator, whether the page asks for the name): argument, login, else the page."""
        if fixed is not None:
            return fixed, False
        user = getattr(request, "username", None)
        return (sanitize_annotator(user), False) if user else (name, True)

    def progress_text(name: str | None) -> str:
        if name is None:
            return "Enter your name to start."
        p = review.progress(name)
        sources = ", ".join(f"{_markdown_text(s)} {d}/{t}" for s, (d, t) in p["by_source"].items())
        return f"**{name}**: {p['mine']} decided · {p['done']} / {p['total']} done ({sources})"

    def view(name: str | None, skipped: list[str], ask: bool) -> tuple[Any, ...]:
        """(name, skipped, example id, video, task, proposed, details, progress, reason, name box, start)."""
        head = (name, skipped)
        tail = (gr.Textbox(visible=ask, value=name or ""), gr.Button(visible=ask))
        current = None if name is None else review.next_example(name, skipped)
        if current is None:
            message = (
                "Enter your name to start." if name is None else "Nothing left to review for you. Thank you!"
            )
            return (*head, "", None, f"### {message}", "", "", progress_text(name), None, *tail)
        info = review.describe(current)
        facts = "\n".join(f"- {k}: {_markdown_text(v)}" for k, v in info["facts"])
        return (
            *head,
            current,
            str(review.video_path(current)),
            f"### {_markdown_text(info['task'])}",
            f"**Proposed reward {info['proposed']}**: {_markdown_text(info['rubric_line'])}",
            facts,
            progress_text(name),
            None,
            *tail,
        )

    def refuse(message: str) -> tuple[Any, ...]:
        # A warning toast, the page left as it is: a raised gr.Error would cover the outputs (the
        # reason radio among them) with an error overlay until the next event.
        gr.Warning(message)
        return tuple(gr.skip() for _ in outputs)

    def load(name: str | None, skipped: list[str], request: gr.Request):
        name, ask = who(name, request)
        return view(name, skipped, ask)

    def start(typed: str, name: str | None, skipped: list[str], request: gr.Request):
        current, ask = who(name, request)
        if not ask:  # the name comes from the command line or the login
            return view(current, skipped, ask)
        try:
            typed = sanitize_annotator(typed)
        except ValueError as exc:
            return refuse(str(exc))
        return view(typed, skipped if typed == current else [], ask)

    def act(decision: str, score: int | None):
        def handler(
            current: str, reason: str | None, name: str | None, skipped: list[str], request: gr.Request
        ):
            name, ask = who(name, request)
            if name is None:
                return refuse("Enter your name first.")
            if current:
                if decision == "skip":
                    skipped = [*(s for s in skipped if s != current), current]
                else:
                    if decision == "reject" and reason not in REJECT_REASONS:
                        return refuse(f"Choose why to reject it first: {', '.join(REJECT_REASONS)}.")
                    try:
                        review.decide(current, name, decision, score=score, reason=reason)
                    except ValueError as exc:
                        return refuse(str(exc))
                    skipped = [s for s in skipped if s != current]
            return view(name, skipped, ask)

        return handler

    with gr.Blocks(title=f"RoboRewardBench review: {split}", analytics_enabled=False) as app:
        gr.Markdown(
            "# RoboRewardBench review\n"
            "Judge the **final state** of the episode against the task. Keys: **1**-**5** correct the "
            "score, **a** accept, **r** reject (choose the reason first), **s** skip for later."
        )
        name_state = gr.State(fixed)
        skipped_state = gr.State([])
        with gr.Row():
            name_box = gr.Textbox(label="Your name (letters, digits, . _ -)", elem_id="review-name", scale=3)
            start_button = gr.Button("Start / switch", elem_id="review-start", scale=1)
        progress = gr.Markdown(elem_id="review-progress")
        example_id = gr.Textbox(visible=False, elem_id="review-example-id")
        with gr.Row():
            clip = gr.Video(
                label="episode",
                autoplay=True,
                loop=True,
                interactive=False,
                height=360,
                elem_id="review-video",
            )
            with gr.Column():
                task = gr.Markdown(elem_id="review-task")
                proposed = gr.Markdown(elem_id="review-proposed")
                details = gr.Markdown(elem_id="review-details")
                with gr.Accordion("Rubric", open=False):
                    gr.Markdown("\n".join(f"- {_markdown_text(lv.line())}" for lv in rubric.RUBRIC))
        with gr.Row():
            accept = gr.Button("Accept (a)", variant="primary", elem_id="review-accept")
            corrections = [
                gr.Button(f"{lv.score} · {lv.name}", elem_id=f"review-{lv.score}", min_width=100)
                for lv in rubric.RUBRIC
            ]
        with gr.Row():
            reason = gr.Radio(
                list(REJECT_REASONS), label="Reason to reject", value=None, elem_id="review-reason"
            )
            reject = gr.Button("Reject (r)", variant="stop", elem_id="review-reject")
            skip = gr.Button("Skip (s)", elem_id="review-skip")

        shown = [example_id, clip, task, proposed, details, progress, reason, name_box, start_button]
        outputs = [name_state, skipped_state, *shown]
        inputs = [example_id, reason, name_state, skipped_state]
        events = [
            (accept, "accept", None, "accept"),
            (reject, "reject", None, "reject"),
            (skip, "skip", None, "skip"),
        ]
        events += [(b, "correct", s, f"correct_{s}") for s, b in zip(rubric.SCORES, corrections, strict=True)]
        for button, decision, score, api_name in events:
            button.click(act(decision, score), inputs, outputs, api_name=api_name, trigger_mode="once")
        start_button.click(start, [name_box, name_state, skipped_state], outputs, api_name="start")
        name_box.submit(start, [name_box, name_state, skipped_state], outputs, api_name=False)
        app.load(load, [name_state, skipped_state], outputs, api_name="current")
        app.load(None, js=_KEYS_JS)
    return app


# ---------------------------------------------------------------------------------------------
# Agreement


def quadratic_kappa(a: Sequence[int], b: Sequence[int], categories: Sequence[int] = rubric.SCORES) -> float:
    """Cohen's kappa of two raters' ordinal scores with quadratic weights ``(i - j)^2 / (k - 1)^2``:
    ``1 - sum(W * observed) / sum(W * expected)``, expected from the raters' marginals. NaN when
    undefined (no items, or no disagreement is possible by chance).

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


def _outcome(decision: dict[str, Any]) -> int | str:
    return "reject" if decision["decision"] == "reject" else int(decision["score"])


def final_label(outcomes: Sequence[int | str], policy: str = "majority") -> int | str | None:
    """An example's verified label from its decisions' outcomes (a score or ``"reject"``).

    ``majority``: the most common outcome; a tie with a rejection in it is ``"reject"``; a tie between
    scores is the lower median of the tied scores. ``unanimous``: the common outcome, or None (a
    disagreement) when the decisions differ.

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
    exact = sum(_outcome(x) == _outcome(y) for x, y in pairs) / len(pairs) if pairs else float("nan")
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


# ---------------------------------------------------------------------------------------------
# Export


def _with_review_columns(table: Any, schema: Any, verified: bool, reviewers: Sequence[int]) -> Any:
    import pyarrow as pa

    columns = [table.column(name) for name in table.column_names]
    columns += [pa.array([verified] * table.num_rows, pa.bool_()), pa.array(list(reviewers), pa.int32())]
    return pa.Table.from_arrays(columns, schema=schema)


def _review_schema(schema: Any) -> Any:
    """The split's schema plus ``verified`` and ``reviewers``, with `datasets`' features metadata."""
    import datasets

    features = datasets.Features.from_arrow_schema(schema)
    features["verified"] = datasets.Value("bool")
    features["reviewers"] = datasets.Value("int32")
    return features.arrow_schema


def _write_shards(split: str, tables: Iterable[Any], schema: Any, data_dir: Path) -> list[str]:
    """Write non-empty tables as ``split-XXXXX-of-NNNNN.parquet`` (one shard per input shard)."""
    import pyarrow.parquet as pq

    pending = []
    for k, table in enumerate(tables):
        if table.num_rows:
            tmp = data_dir / f".{split}-{k}.parquet.tmp"
            pq.write_table(table, tmp)
            pending.append(tmp)
    names = []
    for k, tmp in enumerate(pending):
        name = f"{split}-{k:05d}-of-{len(pending):05d}.parquet"
        os.replace(tmp, data_dir / name)
        names.append(f"data/{name}")
    return names


def _verification_section(report: dict[str, Any]) -> str:
    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    outcomes = report["outcomes"]
    left_out = outcomes["unreviewed"] + outcomes["too_few_decisions"]
    lines = [
        "## Human verification",
        "",
        f"The `{report['split']}` split was checked by people before it became the benchmark: "
        f"{len(report['annotators'])} annotator(s) made {report['decisions']} decisions on "
        f"{report['reviewed']} of its {report['examples']} examples (policy `{report['policy']}`, at "
        f"least {report['min_annotators']} decision(s) per example). Corrected scores are applied, "
        "rejected examples are dropped, and so are examples the annotators disagreed on (under the "
        "policy) or that lack decisions. Every remaining row has `verified = true` and `reviewers` "
        "(its number of decisions); the other splits have `verified = false`. Details: "
        "`verification_report.json`.",
        "",
        "| reviewed | accepted | corrected | rejected | disagreement | not enough decisions "
        "| verified rows |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| {report['reviewed']} | {outcomes['accepted']} | {outcomes['corrected']} | {outcomes['rejected']} "
        f"| {outcomes['disagreement']} | {left_out} | {report['verified_rows']} |",
        "",
    ]
    pairs = report["agreement"]["pairs"]
    if pairs:
        lines += [
            "| annotators | shared examples | exact agreement | quadratic-weighted kappa |",
            "| --- | --- | --- | --- |",
        ]
        lines += [
            f"| {name.replace('|', ' / ')} | {v['examples']} | {fmt(v['exact_agreement'])} "
            f"| {fmt(v['quadratic_kappa'])} |"
            for name, v in pairs.items()
        ]
        lines.append("")
    for key in ("source", "augmentation"):
        table = report["agreement"][f"by_{key}"]
        if table:
            lines += [
                f"| {key} | decisions | share corrected | share rejected |",
                "| --- | --- | --- | --- |",
            ]
            lines += [
                f"| {name} | {v['decisions']} | {fmt(v['corrected'])} | {fmt(v['rejected'])} |"
                for name, v in table.items()
            ]
            lines.append("")
    return "\n".join(lines) + "\n"


def _insert_section(card: str, section: str) -> str:
    """The card with ``section`` before its Usage (or Citation) heading, else at its end."""
    for heading in ("\n## Usage", "\n## Citation"):
        at = card.find(heading)
        if at >= 0:
            return card[: at + 1] + section.rstrip("\n") + "\n" + card[at:]
    return card.rstrip("\n") + "\n\n" + section


def export_verified(
    db_path: str | os.PathLike[str],
    dataset_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    split: str = "test",
    min_annotators: int = 1,
    policy: str = "majority",
) -> dict[str, Any]:
    """Write the verified dataset folder ``out`` (see the module docstring) and return the
    verification report (also written to ``out/verification_report.json``).

    The folder appears whole or not at all (it is written next to ``out`` and renamed at the end);
    ``out`` must not exist or be empty.
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from roboreward.builder import SPLITS
    from roboreward.cards import render_dataset_card

    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    if min_annotators < 1:
        raise ValueError(f"min_annotators must be >= 1, got {min_annotators}")
    source, target = Path(dataset_dir), Path(out)
    if not Path(db_path).is_file():
        raise ValueError(f"review database {db_path} does not exist")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ValueError(f"{target} already exists and is not empty: give a new folder")
    if not (source / "build_report.json").is_file():
        raise ValueError(f"{source} has no build_report.json: not a folder written by `roboreward build`")
    review = SplitReview(source, split, db_path)
    examples = review.examples
    all_decisions = review.store.decisions()
    decisions = [d for d in all_decisions if d["example_id"] in examples]
    per_example: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in decisions:
        per_example[d["example_id"]].append(d)

    outcomes = dict.fromkeys(
        ("accepted", "corrected", "rejected", "disagreement", "unreviewed", "too_few_decisions"), 0
    )
    final: dict[str, int] = {}
    for example_id, row in examples.items():
        decided = per_example.get(example_id, [])
        if not decided or len(decided) < min_annotators:
            outcomes["unreviewed" if not decided else "too_few_decisions"] += 1
            continue
        label = final_label([_outcome(d) for d in decided], policy)
        if label is None:
            outcomes["disagreement"] += 1
        elif label == "reject":
            outcomes["rejected"] += 1
        else:
            outcomes["accepted" if label == int(row["reward"]) else "corrected"] += 1
            final[example_id] = int(label)

    work = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    data_dir = work / "data"
    data_dir.mkdir(parents=True)
    try:
        files: dict[str, list[str]] = {}
        start = 0
        for name in SPLITS if split in SPLITS else (*SPLITS, split):
            shards = sorted((source / "data").glob(f"{name}-*.parquet"))
            if not shards:
                continue
            schema = _review_schema(pq.read_schema(shards[0]))
            tables = []
            for shard in shards:
                table = pq.read_table(shard)
                if name != split:
                    tables.append(_with_review_columns(table, schema, False, [0] * table.num_rows))
                    continue
                ids = _row_ids(table, split, start)
                start += table.num_rows
                keep = [i in final for i in ids]
                table = table.filter(keep)
                kept = [i for i in ids if i in final]
                rewards = pc.cast(
                    np.array([final[i] for i in kept], np.int64), table.schema.field("reward").type
                )
                table = table.set_column(table.column_names.index("reward"), "reward", rewards)
                tables.append(_with_review_columns(table, schema, True, [len(per_example[i]) for i in kept]))
            files[name] = _write_shards(name, tables, schema, data_dir)

        build = json.loads((source / "build_report.json").read_text(encoding="utf-8"))
        kept_rows = [examples[i] | {"reward": r} for i, r in final.items()]
        by_source_reward: dict[str, Counter[str]] = defaultdict(Counter)
        for row in kept_rows:
            by_source_reward[row["source"]][str(row["reward"])] += 1
        build.setdefault("rows", {})[split] = {
            "rows": len(kept_rows),
            "by_source": dict(sorted(Counter(r["source"] for r in kept_rows).items())),
            "by_reward": {str(k): v for k, v in sorted(Counter(r["reward"] for r in kept_rows).items())},
            "by_source_and_reward": {s: dict(sorted(c.items())) for s, c in sorted(by_source_reward.items())},
        }
        build.setdefault("totals", {})["rows"] = sum(v.get("rows", 0) for v in build["rows"].values())
        build["files"] = files
        (work / "build_report.json").write_text(json.dumps(build, indent=2, sort_keys=True) + "\n")
        if (source / "relabel_report.json").is_file():
            shutil.copyfile(source / "relabel_report.json", work / "relabel_report.json")

        report = {
            "split": split,
            "policy": policy,
            "min_annotators": min_annotators,
            "examples": len(examples),
            "reviewed": len(per_example),
            "decisions": len(decisions),
            "decisions_on_other_examples": len(all_decisions) - len(decisions),
            "annotators": sorted({d["annotator"] for d in decisions}),
            "outcomes": outcomes,
            "verified_rows": len(final),
            "agreement": agreement(decisions, examples),
        }
        (work / "verification_report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        card = render_dataset_card(work)
        card.write_text(_insert_section(card.read_text(encoding="utf-8"), _verification_section(report)))
        if target.exists():
            target.rmdir()
        os.replace(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return report
