"""The verified dataset: a review's decisions applied to the split, with a report and a card section.

`export_verified` writes a new dataset folder: the verified split with corrections
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
"
"""

from __future__ import annotations

import json
import os
import shutil
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from roboreward.dataset.cards import render_dataset_card
from roboreward.dataset.folder import (
    BUILD_REPORT,
    RELABEL_REPORT,
    SPLITS,
    VERIFICATION_REPORT,
    DatasetFolder,
    split_statistics,
)
from roboreward.review.agreement import POLICIES, agreement, decision_outcome, final_label
from roboreward.review.session import SplitReview
from roboreward.review.split import ROW_DEFAULTS, row_ids
from roboreward.sources.release import METADATA, is_release_layout, release_folder

__all__ = ["export_verified"]


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


def _write_release(
    source: Path,
    work: Path,
    split: str,
    examples: dict[str, dict[str, Any]],
    final: dict[str, int],
    per_example: dict[str, list[dict[str, Any]]],
) -> None:
    """The verified split in the public release's layout: ``<split folder>/metadata.jsonl`` of the kept
    rows (their columns as read, the final reward, ``verified`` and ``reviewers``) and their videos
    (hard links where the file system allows, else copies)."""
    folder = release_folder(split)
    (work / folder).mkdir(parents=True)
    lines = []
    for example_id, row in examples.items():
        if example_id not in final:
            continue
        name = example_id.split("/", 1)[1]  # ids are "<split folder>/<file_name>"
        target = work / folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source / folder / name, target)
        except OSError:
            shutil.copyfile(source / folder / name, target)
        dropped = {*ROW_DEFAULTS, "id", "source", "reward"}  # the review's own, or the layout's
        extra = {k: v for k, v in row.items() if k not in dropped}
        record = {**extra, "file_name": name, "reward": final[example_id]}
        lines.append(json.dumps({**record, "verified": True, "reviewers": len(per_example[example_id])}))
    (work / folder / METADATA).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def export_verified(
    db_path: str | os.PathLike[str],
    dataset_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    split: str = "test",
    min_annotators: int = 1,
    policy: str = "majority",
) -> dict[str, Any]:
    """Write the verified dataset folder ``out`` (see the module docstring) and return the
    verification report (also written to ``out/verification_report.json``). A review of a folder in
    the public release's layout is written in that layout: the verified split's ``metadata.jsonl``
    and its videos.

    The folder appears whole or not at all (it is written next to ``out`` and renamed at the end);
    ``out`` must not exist or be empty.

    Args:
        db_path: the review's SQLite file.
        dataset_dir: the folder that was reviewed.
        out: the new folder.
        split: the reviewed split.
        min_annotators: decisions an example needs to be kept.
        policy: how the decisions on an example combine (`POLICIES`).
    """

    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    if min_annotators < 1:
        raise ValueError(f"min_annotators must be >= 1, got {min_annotators}")
    source, target = DatasetFolder(dataset_dir), Path(out)
    if not Path(db_path).is_file():
        raise ValueError(f"review database {db_path} does not exist")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ValueError(f"{target} already exists and is not empty: give a new folder")
    release = is_release_layout(source.root)
    build = None if release else source.read_report(BUILD_REPORT)
    if build is None and not release:
        raise ValueError(f"{source.root} has no {BUILD_REPORT}: not a folder written by `roboreward build`")
    review = SplitReview(source.root, split, db_path)
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
        label = final_label([decision_outcome(d) for d in decided], policy)
        if label is None:
            outcomes["disagreement"] += 1
        elif label == "reject":
            outcomes["rejected"] += 1
        else:
            outcomes["accepted" if label == int(row["reward"]) else "corrected"] += 1
            final[example_id] = int(label)

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
    work = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    try:
        if release:
            _write_release(source.root, work, split, examples, final, per_example)
        else:
            _write_built(source, work, split, build, examples, final, per_example)
        DatasetFolder(work).write_report(VERIFICATION_REPORT, report)
        if not release:  # the card reads the reports just written
            card = render_dataset_card(work)
            card.write_text(_insert_section(card.read_text(encoding="utf-8"), _verification_section(report)))
        if target.exists():
            target.rmdir()
        os.replace(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return report


def _write_built(
    source: DatasetFolder,
    work: Path,
    split: str,
    build: dict[str, Any],
    examples: dict[str, dict[str, Any]],
    final: dict[str, int],
    per_example: dict[str, list[dict[str, Any]]],
) -> None:
    """The verified folder of a built dataset: every split's shards (the reviewed one filtered and
    corrected, with ``verified`` and ``reviewers``), the build report's statistics, the relabel report."""
    import pyarrow.compute as pc

    written = DatasetFolder(work)
    written.data_dir.mkdir(parents=True)
    files: dict[str, list[str]] = {}
    start = 0
    for name in SPLITS if split in SPLITS else (*SPLITS, split):
        if not source.shard_files(name):
            continue
        schema = _review_schema(source.schema(name))
        tables = []
        for _, table in source.iter_tables(name):
            if name != split:
                tables.append(_with_review_columns(table, schema, False, [0] * table.num_rows))
                continue
            ids = row_ids(table, split, start)
            start += table.num_rows
            keep = [i in final for i in ids]
            table = table.filter(keep)
            kept = [i for i in ids if i in final]
            rewards = pc.cast(np.array([final[i] for i in kept], np.int64), table.schema.field("reward").type)
            table = table.set_column(table.column_names.index("reward"), "reward", rewards)
            tables.append(_with_review_columns(table, schema, True, [len(per_example[i]) for i in kept]))
        files[name] = written.write_shards(name, tables)

    kept_rows = [examples[i] | {"reward": r} for i, r in final.items()]
    build.setdefault("rows", {})[split] = split_statistics((r["source"], r["reward"]) for r in kept_rows)
    build.setdefault("totals", {})["rows"] = sum(v.get("rows", 0) for v in build["rows"].values())
    build["files"] = files
    written.write_report(BUILD_REPORT, build)
    if (source.root / RELABEL_REPORT).is_file():
        shutil.copyfile(source.root / RELABEL_REPORT, work / RELABEL_REPORT)
