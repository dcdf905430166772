"""Reading the split under review from a built folder, and writing the shards of a new one.

The one place the review package touches a built folder's layout (``data/{split}-*.parquet``,
the split statistics of ``build_report.json``), so that it can be routed through
`roboreward.dataset_folder` as a whole.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from roboreward import rubric

__all__ = [
    "ROW_DEFAULTS",
    "read_split",
    "read_videos",
    "row_ids",
    "shard_files",
    "split_statistics",
    "write_shards",
    "write_video",
]

#: Columns a review shows, for folders whose rows lack them.
ROW_DEFAULTS = {
    "source": "unknown",
    "augmentation": "original",
    "provenance": "{}",
    "camera": "",
    "episode_id": "",
}

#: Where a row is: (shard file, row group, row in the group).
Location = tuple[Path, int, int]


def shard_files(dataset: Path, split: str) -> list[Path]:
    """The split's Parquet shards, in order (empty when the folder has no such split).

    Args:
        dataset: a folder written by `roboreward build`.
        split: the split's name.
    """
    return sorted((dataset / "data").glob(f"{split}-*.parquet"))


def row_ids(table: Any, split: str, start: int) -> list[str]:
    """The examples' ids; a dataset without an ``id`` column gets positional ones (``test-000042``).

    Args:
        table: a ``pyarrow.Table`` of the split's rows.
        split: the split's name.
        start: the position of the table's first row in the split.
    """
    if "id" in table.column_names:
        return [str(i) for i in table.column("id").to_pylist()]
    return [f"{split}-{start + k:06d}" for k in range(table.num_rows)]


def read_split(dataset: Path, split: str) -> tuple[dict[str, dict[str, Any]], dict[str, Location]]:
    """The split's rows without their videos (id -> row, `ROW_DEFAULTS` filled in) and where each is.

    Args:
        dataset: a folder written by `roboreward build`.
        split: the split to read.

    Raises:
        ValueError: no such split, an id seen twice, or a reward off the rubric.
    """
    files = shard_files(dataset, split)
    if not files:
        raise ValueError(f"{dataset} has no {split} split: no data/{split}-*.parquet (build it first)")
    examples: dict[str, dict[str, Any]] = {}
    where: dict[str, Location] = {}
    start = 0
    for path in files:
        parquet = pq.ParquetFile(path)
        columns = [c for c in parquet.schema_arrow.names if c != "video"]
        for group in range(parquet.num_row_groups):
            table = parquet.read_row_group(group, columns=columns)
            for offset, (example_id, row) in enumerate(
                zip(row_ids(table, split, start), table.to_pylist(), strict=True)
            ):
                if example_id in examples:
                    raise ValueError(f"example id {example_id!r} appears twice in the {split} split")
                try:
                    rubric.level(row.get("reward"))
                except ValueError as exc:
                    raise ValueError(f"{path.name}: example {example_id!r}: reward: {exc}") from None
                examples[example_id] = {**ROW_DEFAULTS, **row, "id": example_id}
                where[example_id] = (path, group, offset)
            start += table.num_rows
    return examples, where


def read_videos(path: Path, group: int) -> list[Any]:
    """The ``video`` values of one row group (``{"bytes", "path"}`` dicts or paths).

    Args:
        path: the shard.
        group: the row group's index.
    """
    return pq.ParquetFile(path).read_row_group(group, columns=["video"]).column("video").to_pylist()


def write_video(value: Any, target: Path, dataset: Path, shard: Path, example_id: str) -> None:
    """Write a row's video to ``target`` (atomically): its bytes, else the file its path names.

    Args:
        value: the row's ``video`` value.
        target: the file to write.
        dataset: the folder, against which a relative path is resolved (then the shard's folder).
        shard: the shard the row is in.
        example_id: the row's id, for the error message.
    """
    if target.exists():
        return
    value = value if isinstance(value, dict) else {"bytes": None, "path": value}
    tmp = target.with_name(f".{target.name}.tmp")
    if value.get("bytes"):
        tmp.write_bytes(value["bytes"])
    else:
        candidates = [Path(value.get("path") or "")]
        candidates += [dataset / candidates[0], shard.parent / candidates[0]]
        found = next((c for c in candidates if str(c) not in ("", ".") and c.is_file()), None)
        if found is None:
            raise ValueError(f"example {example_id!r} has no video bytes and no readable video path")
        shutil.copyfile(found, tmp)
    os.replace(tmp, target)


def write_shards(split: str, tables: Iterable[Any], schema: Any, data_dir: Path) -> list[str]:
    """Write non-empty tables as ``split-XXXXX-of-NNNNN.parquet`` (one shard per input shard).

    Args:
        split: the split's name.
        tables: ``pyarrow.Table`` objects, each of ``schema``.
        schema: their schema (unused by the writer; the tables carry it).
        data_dir: the new folder's ``data/``.

    Returns:
        The shards' paths relative to the folder (``data/...``).
    """
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


def split_statistics(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A split's entry in ``build_report.json``: rows, and counts by source, reward and both.

    Args:
        rows: the split's rows (``source`` and ``reward`` read).
    """
    by_source_reward: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        by_source_reward[row["source"]][str(row["reward"])] += 1
    return {
        "rows": len(rows),
        "by_source": dict(sorted(Counter(r["source"] for r in rows).items())),
        "by_reward": {str(k): v for k, v in sorted(Counter(r["reward"] for r in rows).items())},
        "by_source_and_reward": {s: dict(sorted(c.items())) for s, c in sorted(by_source_reward.items())},
    }
