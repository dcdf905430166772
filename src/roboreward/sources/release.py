"""The layout the RoboReward authors published (``teetone/RoboReward``): a video folder, not Parquet.

::

    train/  val/  test/                 one folder per split (``val`` is the validation split)
        metadata.jsonl                  {"file_name": "droid/000123.mp4", "task": ..., "reward": 1..5,
                                         "gpt5_mini_check": ..., ...}: one row per video
        droid/  bridge/  ...            one sub-folder of MP4s per source dataset (23 in the test split)

A row's subset is the source folder its file sits in, as on HELM's leaderboard. Extra columns
(``gpt5_mini_check`` ...) are kept. Nothing is decoded here and no torchcodec is needed: a row's
video is ``{"bytes": None, "path": <absolute path>}``, what `roboreward.video` reads. A row whose file
is missing, whose reward is not an integer 1..5, whose task is empty or longer than
`rubric.MAX_TASK_CHARS`, or whose line is not a JSON object (not UTF-8, nested too deep, a lone
surrogate no file can store, an unusable file name) is skipped with its reason
(`ReleaseSplit.skipped`), never silently; the other rows are kept.

A Hub id is fetched with ``huggingface_hub.snapshot_download``: the split's metadata first, then,
only for a release layout, that split's folder (offline: from the local cache).

    >>> split = read_release_split("RoboReward", "test")  # doctest: +SKIP
    >>> split.rows[0]["source"], len(split.skipped)  # doctest: +SKIP
    ('droid', 0)
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roboreward import rubric

__all__ = [
    "METADATA",
    "SPLIT_FOLDERS",
    "ReleaseSplit",
    "is_release_layout",
    "load_release_dataset",
    "locate_release",
    "read_release_split",
    "release_folder",
]

logger = logging.getLogger("roboreward")

METADATA = "metadata.jsonl"

#: Split names as the toolkit (and `datasets`) call them -> the release's folder names.
SPLIT_FOLDERS = {"train": "train", "validation": "val", "val": "val", "test": "test"}


def release_folder(split: str) -> str:
    """The release's folder of ``split`` (``validation`` -> ``val``); other names pass through."""
    return SPLIT_FOLDERS.get(split, split)


def is_release_layout(root: str | os.PathLike[str]) -> bool:
    """True for a local folder holding ``train|val|test/metadata.jsonl`` (at least one of them)."""
    root = Path(root)
    return root.is_dir() and any((root / d / METADATA).is_file() for d in ("train", "val", "test"))


def locate_release(dataset: str, split: str) -> Path | None:
    """The local root of ``dataset`` when it is in the release layout, else None.

    Args:
        dataset: a local folder, or a Hub dataset id.
        split: the split about to be read; for a Hub id only that split's files are fetched.

    A local folder is looked at, never the network. A Hub id is asked for ``*/metadata.jsonl``
    first; only when that finds the split's metadata is the split's folder fetched. Any failure to
    reach the Hub means "not a release layout here" (the caller's own loading then says why).
    """
    local = Path(dataset).expanduser()
    if local.is_dir():
        return local if is_release_layout(local) else None
    if dataset.startswith((".", "/", "~")) or dataset.count("/") != 1:
        return None
    try:
        from huggingface_hub import snapshot_download

        folder = release_folder(split)
        root = Path(snapshot_download(dataset, repo_type="dataset", allow_patterns=[f"*/{METADATA}"]))
        if not (root / folder / METADATA).is_file():
            return None
        return Path(snapshot_download(dataset, repo_type="dataset", allow_patterns=[f"{folder}/**"]))
    except Exception:  # offline, no such repo, no access: not a release we can read
        return None


@dataclass
class ReleaseSplit:
    """The usable rows of one split, and the rows skipped with their reasons."""

    root: Path
    split: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


def _shown(value: Any, limit: int = 120) -> str:
    """``value`` as text for a skip reason, cut to ``limit`` characters (a hostile cell is huge)."""
    text = value if isinstance(value, str) else repr(value)
    text = text.encode("utf-8", errors="backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _parsed(raw: bytes) -> tuple[Any, str | None]:
    """One metadata line as JSON, or why it cannot be read."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (byte {raw[exc.start]:#04x} at {exc.start})"
    try:
        row = json.loads(text)
    except RecursionError:
        return None, "not JSON (nested too deep)"
    except ValueError:  # a syntax error, a number of 5,000 digits
        return None, "not JSON"
    try:
        json.dumps(row, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return None, "a lone surrogate (\\ud800-\\udfff) in the line: no file can store it as UTF-8"
    except (RecursionError, ValueError):
        return None, "not JSON (nested too deep)"
    return row, None


def _problem(row: Any, folder: Path) -> str | None:
    if not isinstance(row, dict):
        return "not a JSON object"
    name = row.get("file_name")
    if not isinstance(name, str) or not name.strip():
        return "file_name is missing"
    if "\x00" in name:
        return f"file_name {_shown(name)!r} holds a NUL byte"
    try:
        if Path(name).is_absolute() or ".." in Path(name).parts:
            return f"file_name {_shown(name)!r} points outside the split folder"
        if not (folder / name).is_file():
            return f"video file {_shown(name)} is missing"
    except (OSError, ValueError) as exc:  # a NUL, a name too long, a symlink loop
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)[:120]
        return f"file_name {_shown(name)!r} is unusable ({why})"
    task = row.get("task")
    if not isinstance(task, str) or not task.strip():
        return f"task is empty ({_shown(task)})"
    if len(task) > rubric.MAX_TASK_CHARS:
        return f"task is {len(task)} characters long; the limit is {rubric.MAX_TASK_CHARS}"
    reward = row.get("reward")
    if (
        isinstance(reward, bool)
        or not isinstance(reward, (int, float))
        or not float(reward).is_integer()
        or not rubric.MIN_SCORE <= reward <= rubric.MAX_SCORE
    ):
        return f"reward must be an integer 1..5, got {_shown(reward)}"
    return None


def read_release_split(root: str | os.PathLike[str], split: str) -> ReleaseSplit:
    """Rows of ``split`` (``train``, ``validation``/``val``, ``test``) of a release-layout folder.

    Each row: ``id`` (``<split folder>/<file_name>``), ``video`` (``{"bytes": None, "path": ...}``),
    ``task``, ``reward`` (int), ``source`` (the file's sub-folder; ``all`` for a file at the top), and
    every other column of ``metadata.jsonl`` as it is.

    Raises FileNotFoundError naming the folder when the split has no ``metadata.jsonl``.
    """
    root = Path(root)
    folder = root / release_folder(split)
    metadata = folder / METADATA
    if not metadata.is_file():
        present = sorted(d for d in ("train", "val", "test") if (root / d / METADATA).is_file())
        raise FileNotFoundError(f"{root} has no {release_folder(split)}/{METADATA} (splits there: {present})")
    out = ReleaseSplit(root=root, split=split)
    seen: set[str] = set()
    for number, line in enumerate(metadata.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{release_folder(split)}/{METADATA} line {number}"
        row, unreadable = _parsed(line)
        if unreadable is not None:
            out.skipped.append({"where": where, "reason": unreadable})
            continue
        problem = _problem(row, folder)
        if problem is None and row["file_name"] in seen:
            problem = f"file_name {row['file_name']} is listed twice"
        if problem:
            name = row.get("file_name") if isinstance(row, dict) else None
            out.skipped.append({"where": where, "file_name": _shown(str(name)), "reason": problem})
            continue
        seen.add(row["file_name"])
        parts = Path(row["file_name"]).parts
        extra = {k: v for k, v in row.items() if k not in ("file_name", "task", "reward")}
        out.rows.append(
            {
                **extra,
                "id": f"{release_folder(split)}/{row['file_name']}",
                "video": {"bytes": None, "path": str((folder / row["file_name"]).resolve())},
                "task": row["task"],
                "reward": int(row["reward"]),
                "source": parts[0] if len(parts) > 1 else "all",
            }
        )
    return out


def load_release_dataset(root: str | os.PathLike[str], split: str) -> Any:
    """A `datasets.Dataset` of a release split's usable rows, ``video`` as ``Video(decode=False)``.

    Columns: ``id``, ``video``, ``task``, ``reward``, ``source`` and the metadata's extra columns (a
    column missing from some rows is None there). Skipped rows are logged with their reasons.
    """
    import datasets

    read = read_release_split(root, split)
    for skip in read.skipped:
        logger.warning("skipped %s: %s", skip["where"], skip["reason"])
    if not read.rows:
        raise ValueError(f"{root} split {split}: no usable row ({len(read.skipped)} skipped)")
    columns = sorted({k for row in read.rows for k in row})
    table = {c: [row.get(c) for row in read.rows] for c in columns}
    dataset = datasets.Dataset.from_dict(table)
    return dataset.cast_column("video", datasets.Video(decode=False))
