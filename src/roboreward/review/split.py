"""The split under review, read through `roboreward.dataset.folder` (the owner of a built folder's
layout): its rows without their videos, positional ids for rows without one, a row's video on demand.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from roboreward import locate, rubric
from roboreward.dataset.folder import DatasetFolder
from roboreward.sources.release import is_release_layout, read_release_split

__all__ = ["RELEASE_FILE", "ROW_DEFAULTS", "read_split", "read_videos", "row_ids", "write_video"]

logger = logging.getLogger("roboreward")

#: Columns a review shows, for folders whose rows lack them.
ROW_DEFAULTS = {
    "source": "unknown",
    "augmentation": "original",
    "provenance": "{}",
    "camera": "",
    "episode_id": "",
}

#: Where a row is: (shard file, row group, row in the group); for the public release's layout
#: (video files + metadata.jsonl), (the video file, `RELEASE_FILE`, 0).
Location = tuple[Path, int, int]

#: The row group of a row whose video is a file of its own (the public release's layout).
RELEASE_FILE = -1


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
        dataset: a folder written by `roboreward build`, or in the public release's layout
            (`roboreward.sources.release`: its rows that cannot be read are skipped with a logged reason).
        split: the split to read.

    Raises:
        ValueError: no such split, an id seen twice, or a reward off the rubric.
        FileNotFoundError: ``dataset`` is no folder ("no such folder"; review reads local folders only).
    """
    dataset = Path(locate.resolve(dataset, "dataset", check_hub=False))
    if is_release_layout(dataset):
        return _read_release(dataset, split)
    folder = DatasetFolder(dataset)
    columns = [c for c in folder.schema(split).names if c != "video"]  # no such split: ValueError
    examples: dict[str, dict[str, Any]] = {}
    where: dict[str, Location] = {}
    start = 0
    for group in folder.iter_row_groups(split, columns=columns):
        table = group.table
        for offset, (example_id, row) in enumerate(
            zip(row_ids(table, split, start), table.to_pylist(), strict=True)
        ):
            if example_id in examples:
                raise ValueError(f"example id {example_id!r} appears twice in the {split} split")
            try:
                rubric.level(row.get("reward"))
            except ValueError as exc:
                raise ValueError(f"{group.path.name}: example {example_id!r}: reward: {exc}") from None
            examples[example_id] = {**ROW_DEFAULTS, **row, "id": example_id}
            where[example_id] = (group.path, group.index, offset)
        start += table.num_rows
    return examples, where


def _read_release(dataset: Path, split: str) -> tuple[dict[str, dict[str, Any]], dict[str, Location]]:
    try:
        read = read_release_split(dataset, split)
    except FileNotFoundError as exc:
        raise ValueError(str(exc)) from None
    for skip in read.skipped:
        logger.warning("review: skipped %s: %s", skip["where"], skip["reason"])
    examples: dict[str, dict[str, Any]] = {}
    where: dict[str, Location] = {}
    for row in read.rows:
        row = dict(row)
        video = row.pop("video")
        examples[row["id"]] = {**ROW_DEFAULTS, **row}
        where[row["id"]] = (Path(video["path"]), RELEASE_FILE, 0)
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
