"""The decisions of a review, durable in SQLite, and the annotator names they are filed under.

Decisions live in SQLite (`ReviewStore`): one row per (example id, annotator), replaced when the
annotator changes their mind, and every click also appended to an ``events`` log; both in one
``BEGIN IMMEDIATE`` transaction on a fresh connection, WAL journal, ``synchronous=FULL`` and a busy
timeout, so a crash or a closed tab loses nothing and several annotators (in one app or in several
processes) can write to one database at once.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from roboreward import rubric

__all__ = ["DECISIONS", "REJECT_REASONS", "ReviewStore", "sanitize_annotator"]

DECISIONS = ("accept", "correct", "reject")
REJECT_REASONS = ("wrong task text", "unclear video", "ambiguous")
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_SCHEMA_VERSION = 1


def sanitize_annotator(name: str | None) -> str:
    """An annotator name as stored: 1-64 letters, digits, ``.``, ``_`` or ``-`` (surrounding blanks
    dropped); anything else raises ValueError.

    Args:
        name: the name as typed or logged in.

    >>> sanitize_annotator(" alice_01 ")
    'alice_01'
    """
    text = (name or "").strip() if isinstance(name, str) or name is None else None
    if text is None or not _NAME.fullmatch(text):
        raise ValueError(
            f"annotator name must be 1-64 characters among letters, digits, '.', '_' and '-', got {name!r}"
        )
    return text


class ReviewStore:
    """The decisions database (SQLite). Every call opens its own connection, so one store may be used
    from many threads, and many processes may open the same file.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     store = ReviewStore(os.path.join(folder, "reviews.sqlite"))
    ...     row = store.decide("roboarena/ep1/ab12", "alice", "correct", proposed=5, score=4)
    ...     [(d["example_id"], d["annotator"], d["decision"], d["score"]) for d in store.decisions()]
    [('roboarena/ep1/ab12', 'alice', 'correct', 4)]
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

        Args:
            example_id: the example's id.
            annotator: who decides (see `sanitize_annotator`).
            decision: one of `DECISIONS`.
            proposed: the example's proposed score 1..5.
            score: the corrected score (``correct``).
            reason: one of `REJECT_REASONS` (``reject``).
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
        """The current decisions (one per example and annotator), by example id then annotator.

        Args:
            annotator: only this annotator's (None: everyone's).
        """
        if annotator is None:
            return self._select("SELECT * FROM decisions ORDER BY example_id, annotator")
        return self._select("SELECT * FROM decisions WHERE annotator = ? ORDER BY example_id", (annotator,))

    def history(self) -> list[dict[str, Any]]:
        """Every decision ever made, changes of mind included, in the order they were made."""
        return self._select("SELECT * FROM events ORDER BY seq")
