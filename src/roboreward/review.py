"""Human verification of RoboRewardBench: a review app, durable decisions, agreement statistics.

    roboreward review --dataset roboreward --split test --db reviews.sqlite --annotator alice
    roboreward review export --db reviews.sqlite --dataset roboreward --out roboreward_verified

The app shows one example at a time (video, task, proposed reward with its rubric line, provenance);
the annotator accepts it, corrects the score (1..5) or rejects it with a reason, or skips it for later.
Keys: ``1``-``5`` correct, ``a`` accept, ``r`` reject, ``s`` skip. Every click is one SQLite
transaction (WAL mode), so a crash or a closed tab loses nothing and several annotators can work on
one database at once. A ``double_fraction`` of the examples (chosen by a hash of their id) is shown to
two annotators, so agreement can be measured; the others need one decision.

`export_verified` writes the verified dataset (corrections applied, rejections dropped, ``verified``
and ``reviewers`` columns), re-renders the dataset card with a "Human verification" section, and
reports agreement: Cohen's kappa with quadratic weights per annotator pair, exact agreement, and how
often the proposed label was changed, per source and per augmentation.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import tempfile
import time
from collections import Counter, defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from roboreward import rubric

__all__ = [
    "REJECT_REASONS",
    "ReviewStore",
    "build_review_app",
    "export_verified",
    "quadratic_kappa",
    "sanitize_annotator",
]

REJECT_REASONS = ("wrong task text", "unclear video", "ambiguous")
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


def sanitize_annotator(name: str) -> str:
    """An annotator name: letters, digits, ``.``, ``_`` and ``-`` only, at most 64 characters."""
    name = (name or "").strip()
    if not _NAME.fullmatch(name):
        raise ValueError(f"annotator name must be 1-64 letters, digits, '.', '_' or '-', got {name!r}")
    return name


class ReviewStore:
    """The decisions database: one row per (example id, annotator), written in a transaction."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = str(path)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                """CREATE TABLE IF NOT EXISTS decisions (
                    example_id TEXT NOT NULL,
                    annotator TEXT NOT NULL,
                    decision TEXT NOT NULL CHECK (decision IN ('accept', 'correct', 'reject')),
                    score INTEGER CHECK (score IS NULL OR score BETWEEN 1 AND 5),
                    proposed INTEGER NOT NULL,
                    reason TEXT,
                    decided_at REAL NOT NULL,
                    PRIMARY KEY (example_id, annotator)
                )"""
            )

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        db.execute("PRAGMA busy_timeout=30000")
        return db

    def decide(
        self,
        example_id: str,
        annotator: str,
        decision: str,
        proposed: int,
        score: int | None = None,
        reason: str | None = None,
    ) -> None:
        """Record (or replace) an annotator's decision on an example, atomically."""
        annotator = sanitize_annotator(annotator)
        if decision == "accept":
            score, reason = proposed, None
        elif decision == "correct":
            rubric.level(score)  # 1..5 or ValueError
            reason = None
        elif decision == "reject":
            if reason not in REJECT_REASONS:
                raise ValueError(f"a rejection needs a reason among {REJECT_REASONS}, got {reason!r}")
            score = None
        else:
            raise ValueError(f"decision must be accept, correct or reject, got {decision!r}")
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(example_id, annotator) DO UPDATE SET decision=excluded.decision, "
                "score=excluded.score, proposed=excluded.proposed, reason=excluded.reason, "
                "decided_at=excluded.decided_at",
                (example_id, annotator, decision, score, int(proposed), reason, time.time()),
            )
            db.execute("COMMIT")
        finally:
            db.close()

    def decisions(self) -> list[dict[str, Any]]:
        db = self._connect()
        try:
            db.row_factory = sqlite3.Row
            rows = db.execute("SELECT * FROM decisions ORDER BY example_id, annotator").fetchall()
        finally:
            db.close()
        return [dict(r) for r in rows]


def _needs_two(example_id: str, double_fraction: float) -> bool:
    digest = hashlib.sha256(example_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < double_fraction


def next_example(
    ids: list[str],
    decisions: list[dict[str, Any]],
    annotator: str,
    double_fraction: float,
    skipped: list[str],
) -> str | None:
    """The next example for ``annotator``: the first (in id order) it has not decided that still needs
    a decision (two for the double-labelled fraction, else one); skipped ones come back last."""
    mine = {d["example_id"] for d in decisions if d["annotator"] == annotator}
    count = Counter(d["example_id"] for d in decisions)
    open_ids = [i for i in ids if i not in mine and count[i] < (2 if _needs_two(i, double_fraction) else 1)]
    fresh = [i for i in open_ids if i not in skipped]
    if fresh:
        return fresh[0]
    later = [i for i in skipped if i in open_ids]
    return later[0] if later else None


def _load_split(dataset: str | os.PathLike[str], split: str) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    files = sorted((Path(dataset) / "data").glob(f"{split}-*.parquet"))
    if not files:
        raise ValueError(f"{dataset} has no {split} split (data/{split}-*.parquet)")
    rows = [r for f in files for r in pq.read_table(f).to_pylist()]
    return sorted(rows, key=lambda r: r["id"])


_KEYS_JS = """
() => {
  document.addEventListener("keydown", (event) => {
    const tag = (event.target && event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || event.ctrlKey || event.metaKey || event.altKey) return;
    const ids = {"1": "btn-1", "2": "btn-2", "3": "btn-3", "4": "btn-4", "5": "btn-5",
                 "a": "btn-accept", "r": "btn-reject", "s": "btn-skip"};
    const id = ids[event.key.toLowerCase()];
    if (!id) return;
    const button = document.getElementById(id);
    if (button) { event.preventDefault(); button.click(); }
  });
}
"""


def build_review_app(
    dataset: str | os.PathLike[str],
    split: str,
    db_path: str | os.PathLike[str],
    annotator: str = "annotator",
    double_fraction: float = 0.1,
) -> Any:
    """The Gradio review app for one annotator (see the module docstring)."""
    import gradio as gr

    annotator = sanitize_annotator(annotator)
    if not 0.0 <= double_fraction <= 1.0:
        raise ValueError(f"double_fraction must be in [0, 1], got {double_fraction}")
    rows = _load_split(dataset, split)
    by_id = {r["id"]: r for r in rows}
    ids = list(by_id)
    store = ReviewStore(db_path)
    videos = Path(tempfile.mkdtemp(prefix="roboreward-review-"))

    def video_file(example: dict[str, Any]) -> str:
        path = videos / (hashlib.sha256(example["id"].encode()).hexdigest()[:20] + ".mp4")
        if not path.exists():
            path.write_bytes(example["video"]["bytes"])
        return str(path)

    def progress_text() -> str:
        decisions = store.decisions()
        done = {d["example_id"] for d in decisions if d["annotator"] == annotator}
        per_source = Counter(by_id[i]["source"] for i in done if i in by_id)
        totals = Counter(r["source"] for r in rows)
        parts = ", ".join(f"{s} {per_source.get(s, 0)}/{n}" for s, n in sorted(totals.items()))
        return f"**{annotator}**: {len(done)} / {len(rows)} done ({parts}); {len(decisions)} decisions in all"

    def show(skipped: list[str]):
        current = next_example(ids, store.decisions(), annotator, double_fraction, skipped)
        if current is None:
            return (
                None,
                None,
                "All examples here are reviewed. Thank you!",
                "",
                "",
                progress_text(),
                REJECT_REASONS[0],
            )
        example = by_id[current]
        provenance = json.loads(example.get("provenance") or "{}")
        level = (provenance.get("counterfactual") or {}).get("level")
        details = (
            f"source `{example['source']}`, augmentation `{example['augmentation']}`, "
            f"original task: _{example['original_task']}_" + (f", relabel level {level}" if level else "")
        )
        proposed = f"**Proposed reward {example['reward']}**: {rubric.level(example['reward']).line()}"
        return (
            current,
            video_file(example),
            f"### {example['task']}",
            proposed,
            details,
            progress_text(),
            REJECT_REASONS[0],
        )

    def act(decision: str, score: int | None):
        def handler(current: str | None, skipped: list[str], reason: str | None):
            if current is None:
                return (*show(skipped), skipped)
            if decision == "reject" and reason not in REJECT_REASONS:
                raise gr.Error(f"Pick a reason to reject: {', '.join(REJECT_REASONS)}")
            store.decide(current, annotator, decision, by_id[current]["reward"], score=score, reason=reason)
            skipped = [s for s in skipped if s != current]
            return (*show(skipped), skipped)

        return handler

    def skip(current: str | None, skipped: list[str], reason: str | None):
        skipped = [*(s for s in skipped if s != current), *([current] if current else [])]
        return (*show(skipped), skipped)

    with gr.Blocks(title="RoboRewardBench review", js=_KEYS_JS) as app:
        gr.Markdown(
            "# RoboRewardBench review\n"
            "Keys: **1-5** correct the score, **a** accept, **r** reject, **s** skip."
        )
        progress = gr.Markdown(elem_id="progress")
        current = gr.State(None)
        skipped = gr.State([])
        with gr.Row():
            clip = gr.Video(label="episode", autoplay=True, elem_id="clip")
            with gr.Column():
                task = gr.Markdown(elem_id="task")
                proposed = gr.Markdown(elem_id="proposed")
                details = gr.Markdown(elem_id="details")
                reason = gr.Radio(list(REJECT_REASONS), label="reason to reject", value=REJECT_REASONS[0])
        with gr.Row():
            accept = gr.Button("Accept (a)", variant="primary", elem_id="btn-accept")
            corrections = [gr.Button(f"{s} ({s})", elem_id=f"btn-{s}") for s in rubric.SCORES]
            reject = gr.Button("Reject (r)", variant="stop", elem_id="btn-reject")
            skip_button = gr.Button("Skip (s)", elem_id="btn-skip")
        outputs = [current, clip, task, proposed, details, progress, reason, skipped]
        inputs = [current, skipped, reason]
        accept.click(act("accept", None), inputs, outputs, api_name="accept")
        for score, button in zip(rubric.SCORES, corrections, strict=True):
            button.click(act("correct", score), inputs, outputs, api_name=f"correct_{score}")
        reject.click(act("reject", None), inputs, outputs, api_name="reject")
        skip_button.click(skip, inputs, outputs, api_name="skip")
        app.load(lambda s: (*show(s), s), [skipped], outputs, api_name="current")

    return app


# ---------------------------------------------------------------------------------------------
# Export and agreement


def quadratic_kappa(a: list[int], b: list[int], categories: tuple[int, ...] = rubric.SCORES) -> float:
    """Cohen's kappa with quadratic weights of two raters' ordinal scores (NaN when undefined)."""
    if len(a) != len(b) or not a:
        return float("nan")
    k = len(categories)
    index = {c: i for i, c in enumerate(categories)}
    observed = np.zeros((k, k))
    for x, y in zip(a, b, strict=True):
        observed[index[x], index[y]] += 1
    weights = np.array([[(i - j) ** 2 for j in range(k)] for i in range(k)], dtype=float) / (k - 1) ** 2
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    denominator = (weights * expected).sum()
    return float("nan") if denominator == 0 else float(1 - (weights * observed).sum() / denominator)


def _outcome(decision: dict[str, Any]) -> int | str:
    return "reject" if decision["decision"] == "reject" else int(decision["score"])


def _final(outcomes: list[int | str], policy: str) -> int | str | None:
    """The verified label of an example from its decisions; None when the policy cannot settle it."""
    counts = Counter(outcomes)
    if policy == "unanimous":
        return outcomes[0] if len(counts) == 1 else None
    top = max(counts.values())
    tied = [o for o, n in counts.items() if n == top]
    if "reject" in tied:
        return "reject"  # a tie with a rejection drops the example
    tied_scores = sorted(int(o) for o in tied)
    return tied_scores[(len(tied_scores) - 1) // 2]  # the lower median of tied scores


def agreement(decisions: list[dict[str, Any]], rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per-pair quadratic kappa and exact agreement; how often the proposed label changed, by group."""
    by_example: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for d in decisions:
        if d["example_id"] in rows:
            by_example[d["example_id"]][d["annotator"]] = d
    annotators = sorted({d["annotator"] for d in decisions})
    pairs = {}
    for x, y in combinations(annotators, 2):
        both = [e for e in by_example.values() if x in e and y in e]
        scored = [
            (e[x]["score"], e[y]["score"])
            for e in both
            if e[x]["score"] is not None and e[y]["score"] is not None
        ]
        pairs[f"{x}|{y}"] = {
            "examples": len(both),
            "exact_agreement": (sum(_outcome(e[x]) == _outcome(e[y]) for e in both) / len(both))
            if both
            else None,
            "quadratic_kappa": quadratic_kappa([s[0] for s in scored], [s[1] for s in scored])
            if scored
            else None,
        }
    changed: dict[str, dict[str, Counter[str]]] = {
        "source": defaultdict(Counter),
        "augmentation": defaultdict(Counter),
    }
    for example_id, per_annotator in by_example.items():
        for d in per_annotator.values():
            kept = d["decision"] == "accept"
            for key in ("source", "augmentation"):
                group = changed[key][rows[example_id][key]]
                group["decisions"] += 1
                group["changed"] += 0 if kept else 1
    changed_rates = {
        key: {
            g: {"decisions": c["decisions"], "changed_rate": c["changed"] / c["decisions"]}
            for g, c in sorted(groups.items())
        }
        for key, groups in changed.items()
    }
    return {"pairs": pairs, "changed": changed_rates}


def export_verified(
    db_path: str | os.PathLike[str],
    dataset: str | os.PathLike[str],
    out: str | os.PathLike[str],
    split: str = "test",
    min_annotators: int = 1,
    policy: str = "majority",
) -> dict[str, Any]:
    """Write the verified dataset to ``out`` and return the verification report (also written there)."""
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    from roboreward.builder import SPLITS
    from roboreward.cards import render_dataset_card

    if policy not in ("majority", "unanimous"):
        raise ValueError(f"policy must be 'majority' or 'unanimous', got {policy!r}")
    if min_annotators < 1:
        raise ValueError(f"min_annotators must be >= 1, got {min_annotators}")
    source, target = Path(dataset), Path(out)
    if target.exists() and any(target.iterdir()):
        raise ValueError(f"{target} is not empty: give a new folder")
    rows = {r["id"]: r for r in _load_split(source, split)}
    decisions = [d for d in ReviewStore(db_path).decisions() if d["example_id"] in rows]
    per_example: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in decisions:
        per_example[d["example_id"]].append(d)

    counts = Counter()
    verified_rows = []
    for example_id, row in rows.items():
        decided = per_example.get(example_id, [])
        if len(decided) < min_annotators:
            counts["unreviewed"] += 1
            continue
        final = _final([_outcome(d) for d in decided], policy)
        if final is None:
            counts["disagreement_dropped"] += 1
            continue
        if final == "reject":
            counts["rejected"] += 1
            continue
        counts["corrected" if final != row["reward"] else "accepted"] += 1
        verified_rows.append({**row, "reward": int(final), "verified": True, "reviewers": len(decided)})

    (target / "data").mkdir(parents=True, exist_ok=True)
    for other in SPLITS:
        files = sorted((source / "data").glob(f"{other}-*.parquet"))
        if other == split or not files:
            continue
        for f in files:  # same columns in every split: the others are marked unverified
            table = pq.read_table(f)
            table = table.append_column("verified", pa.array([False] * table.num_rows))
            table = table.append_column("reviewers", pa.array([0] * table.num_rows, pa.int32()))
            pq.write_table(table, target / "data" / f.name)
    if verified_rows:
        schema = pq.read_schema(sorted((source / "data").glob(f"{split}-*.parquet"))[0])
        schema = schema.append(pa.field("verified", pa.bool_())).append(pa.field("reviewers", pa.int32()))
        table = pa.Table.from_pylist(verified_rows, schema=schema)
        pq.write_table(table, target / "data" / f"{split}-00000-of-00001.parquet")

    build = json.loads((source / "build_report.json").read_text())
    split_rows = build["rows"].setdefault(split, {})
    split_rows["rows"] = len(verified_rows)
    split_rows["by_source"] = dict(sorted(Counter(r["source"] for r in verified_rows).items()))
    split_rows["by_reward"] = {
        str(k): v for k, v in sorted(Counter(r["reward"] for r in verified_rows).items())
    }
    build["totals"]["rows"] = sum(v.get("rows", 0) for v in build["rows"].values())
    (target / "build_report.json").write_text(json.dumps(build, indent=2, sort_keys=True) + "\n")
    if (source / "relabel_report.json").exists():
        shutil.copy(source / "relabel_report.json", target / "relabel_report.json")
    report = {
        "split": split,
        "policy": policy,
        "min_annotators": min_annotators,
        "examples": len(rows),
        "decisions": len(decisions),
        "annotators": sorted({d["annotator"] for d in decisions}),
        "outcomes": dict(sorted(counts.items())),
        "verified_rows": len(verified_rows),
        "agreement": agreement(decisions, rows),
    }
    (target / "verification_report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    card = render_dataset_card(target)

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    pairs = "\n".join(
        f"| {pair.replace('|', ' / ')} | {v['examples']} | {fmt(v['exact_agreement'])} "
        f"| {fmt(v['quadratic_kappa'])} |"
        for pair, v in report["agreement"]["pairs"].items()
    )
    section = (
        "\n## Human verification\n\n"
        f"The {split} split was reviewed by {len(report['annotators'])} annotator(s) "
        f"({len(decisions)} decisions, policy `{policy}`, at least {min_annotators} per example): "
        + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(counts.items()))
        + f". {len(verified_rows)} rows remain, with `verified` and `reviewers` columns.\n"
        + (
            "\n| annotators | shared examples | exact agreement | quadratic kappa |\n"
            "| --- | --- | --- | --- |\n" + pairs + "\n"
            if pairs
            else ""
        )
    )
    with open(card, "a", encoding="utf-8") as f:
        f.write(section)
    return report
