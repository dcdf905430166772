"""A copy of a LeRobot dataset (v2.0/v2.1 or v3.0) that keeps only some episodes, still valid LeRobot.

``roboreward annotate --keep-min-score N --filtered-out DIR`` writes one: the episodes a reward model
scored at or above N, as a dataset of the same version. As LeRobot itself expects, the kept episodes
are numbered again 0..K-1 in their old order (``meta/roboreward_filter.json`` keeps the old index of
each), every data row gets its new ``episode_index``, a new global ``index`` and a ``task_index`` into
the tasks that are left (numbered again too), and ``meta/info.json``'s totals and ``splits`` count
what is there.

- v2.0 / v2.1: one data parquet and one video per camera and episode: written at the paths the
  templates give for the new index (videos copied, not re-encoded); ``episodes.jsonl`` and
  ``episodes_stats.jsonl`` (when present) keep their other fields.
- v3.0: the data files are written again without the dropped rows; the video files are copied as
  they are (never re-encoded), only those a kept episode uses, and each kept episode keeps its
  segment's ``from_timestamp`` / ``to_timestamp`` in its file (frames of dropped episodes stay in
  the file, unreferenced, as LeRobot reads a segment by its timestamps); ``meta/episodes`` is one
  parquet with the kept rows and their new data ranges.

The copy is written into a temporary folder beside ``out`` (``.<name>.partial``) and renamed to
``out`` once complete, so ``out`` is either a whole copy or absent: a run killed at any moment leaves
nothing that blocks a rerun, and the rerun writes the copy an uninterrupted run writes. A rerun
replaces an earlier filtered copy (a folder holding ``meta/roboreward_filter.json``); a folder
holding anything else is refused, never overwritten.

    >>> filter_lerobot("toto_lerobot", keep=[0, 3, 4], out="toto_filtered")  # doctest: +SKIP
    {'episodes': 3, 'frames': 412, 'tasks': 2, 'kept': [0, 3, 4]}
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from roboreward.sources import SourceError
from roboreward.sources.lerobot.layout import (
    INFO_PATH,
    SUPPORTED_VERSIONS,
    V2_EPISODES_PATH,
    V2_TASKS_PATH,
    V3_EPISODES_DIR,
    V3_TASKS_PATH,
)

__all__ = ["FILTER_RECORD", "filter_lerobot"]

#: Written into the copy: the source and the old episode index of each new one.
FILTER_RECORD = "meta/roboreward_filter.json"

V2_STATS_PATH = "meta/episodes_stats.jsonl"
V3_EPISODES_FILE = "meta/episodes/chunk-000/file-000.parquet"


def filter_lerobot(root: str | Path, keep: Sequence[int], out: str | Path) -> dict[str, Any]:
    """Write to ``out`` a copy of the LeRobot dataset at ``root`` holding only episodes ``keep``.

    Args:
        root: the dataset folder (``meta/info.json`` inside).
        keep: the episode indices to keep (any order; numbered again 0..K-1 in ascending order).
        out: the new dataset folder: absent, empty, or an earlier filtered copy (replaced whole).

    Returns:
        ``{"episodes", "frames", "tasks", "kept"}`` of the copy.

    Raises:
        SourceError: an unsupported version, an index not in the dataset, or an ``out`` that is the
            dataset itself or holds files that are not a filtered copy.
    """
    root, out = Path(root), Path(out)
    info = json.loads((root / INFO_PATH).read_text(encoding="utf-8"))
    layout = SUPPORTED_VERSIONS.get(info.get("codebase_version"))
    if layout is None:
        raise SourceError(f"{root / INFO_PATH}: unsupported LeRobot version {info.get('codebase_version')!r}")
    _check_target(root, out)
    kept = sorted(set(int(i) for i in keep))
    renumber = {old: new for new, old in enumerate(kept)}
    work, replaced = _work_folders(out)
    for leftover in (work, replaced):  # from a run killed before it renamed its copy
        shutil.rmtree(leftover, ignore_errors=True)
    try:
        (work / "meta").mkdir(parents=True)
        if layout == "v2":
            frames, tasks = _filter_v2(root, work, info, renumber)
        else:
            frames, tasks = _filter_v3(root, work, info, renumber)
        _write_info(work, info, len(kept), frames, tasks)
        record = {"source": root.name, "kept": kept, "new_index_of": {str(o): n for o, n in renumber.items()}}
        _write_text(work / FILTER_RECORD, json.dumps(record, indent=2) + "\n")
        _publish(work, out, replaced)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return {"episodes": len(kept), "frames": frames, "tasks": tasks, "kept": kept}


def _work_folders(out: Path) -> tuple[Path, Path]:
    """Beside ``out``: the copy being written, and the earlier copy being replaced."""
    return out.with_name(f".{out.name}.partial"), out.with_name(f".{out.name}.replaced")


def _check_target(root: Path, out: Path) -> None:
    """``out`` may be absent, hold no file (a folder made ahead, or the empty ``meta/`` that a run
    of an earlier version left when killed) or be an earlier filtered copy; nothing else."""
    if out.resolve() == root.resolve():
        raise SourceError(f"filtered dataset folder {out} is the dataset being filtered: give a new folder")
    if not out.exists():
        return
    if not out.is_dir():
        raise SourceError(f"filtered dataset folder {out} is a file, not a folder")
    if (out / FILTER_RECORD).is_file() or not any(p.is_file() for p in out.rglob("*")):
        return
    raise SourceError(
        f"filtered dataset folder {out} is not empty and is not a filtered copy (no {FILTER_RECORD}): "
        "give a new folder, or remove this one"
    )


def _publish(work: Path, out: Path, replaced: Path) -> None:
    """Rename the complete copy ``work`` to ``out``; what ``out`` held goes (through ``replaced``)."""
    if out.exists():
        os.replace(out, replaced)
    out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(work, out)
    shutil.rmtree(replaced, ignore_errors=True)


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _write_table(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def _video_keys(info: dict[str, Any]) -> list[str]:
    return [
        k for k, v in info.get("features", {}).items() if isinstance(v, dict) and v.get("dtype") == "video"
    ]


def _write_info(out: Path, info: dict[str, Any], episodes: int, frames: int, tasks: int) -> None:
    info = dict(info)
    info["total_episodes"] = episodes
    info["total_frames"] = frames
    info["total_tasks"] = tasks
    info["splits"] = {"train": f"0:{episodes}"}
    if "total_videos" in info:
        info["total_videos"] = episodes * len(_video_keys(info))
    if "total_chunks" in info:
        info["total_chunks"] = max(1, math.ceil(episodes / info.get("chunks_size", 1000)))
    _write_text(out / INFO_PATH, json.dumps(info, indent=4) + "\n")


def _remap(table: pa.Table, column: str, mapping: dict[int, int]) -> pa.Table:
    if column not in table.column_names:
        return table
    values = [mapping[int(v)] for v in table.column(column).to_pylist()]
    index = table.column_names.index(column)
    return table.set_column(index, column, pa.array(values, table.schema.field(column).type))


def _renumber_rows(table: pa.Table, renumber: dict[int, int], tasks: dict[int, int], first: int) -> pa.Table:
    """Rows of kept episodes with their new episode_index, global index from ``first``, task_index."""
    table = _remap(table, "episode_index", renumber)
    table = _remap(table, "task_index", tasks)
    if "index" in table.column_names:
        position = table.column_names.index("index")
        values = pa.array(range(first, first + table.num_rows), table.schema.field("index").type)
        table = table.set_column(position, "index", values)
    return table


def _kept_rows(table: pa.Table, renumber: dict[int, int]) -> pa.Table:
    mask = pc.is_in(table.column("episode_index"), value_set=pa.array(list(renumber), pa.int64()))
    return table.filter(mask)


def _used_tasks(tables: Sequence[pa.Table]) -> list[int]:
    used: set[int] = set()
    for table in tables:
        if "task_index" in table.column_names:
            used.update(int(v) for v in table.column("task_index").to_pylist())
    return sorted(used)


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


# ---------------------------------------------------------------------------------------------
# v2.0 / v2.1: a file per episode


def _filter_v2(root: Path, out: Path, info: dict[str, Any], renumber: dict[int, int]) -> tuple[int, int]:
    chunks = int(info["chunks_size"])
    lines = {}
    for raw in (root / V2_EPISODES_PATH).read_text(encoding="utf-8").splitlines():
        if raw.strip():
            entry = json.loads(raw)
            lines.setdefault(int(entry["episode_index"]), entry)
    missing = sorted(set(renumber) - set(lines))
    if missing:
        raise SourceError(f"episode indices not in {root / V2_EPISODES_PATH}: {missing}")

    def values(index: int) -> dict[str, int]:
        return {"episode_chunk": index // chunks, "episode_index": index}

    tables = {old: pq.read_table(root / info["data_path"].format(**values(old))) for old in renumber}
    used = _used_tasks(list(tables.values()))
    tasks = {old: new for new, old in enumerate(used)}
    frames = 0
    episodes_out = []
    for old, new in renumber.items():
        table = _renumber_rows(tables[old], renumber, tasks, frames)
        frames += table.num_rows
        _write_table(table, out / info["data_path"].format(**values(new)))
        for key in _video_keys(info):
            src = root / info["video_path"].format(video_key=key, **values(old))
            if src.is_file():
                _copy(src, out / info["video_path"].format(video_key=key, **values(new)))
        episodes_out.append(json.dumps({**lines[old], "episode_index": new}))
    _write_text(out / V2_EPISODES_PATH, "\n".join(episodes_out) + "\n")
    stats = root / V2_STATS_PATH
    if stats.is_file():
        kept = []
        for raw in stats.read_text(encoding="utf-8").splitlines():
            entry = json.loads(raw) if raw.strip() else None
            if entry and int(entry.get("episode_index", -1)) in renumber:
                kept.append(json.dumps({**entry, "episode_index": renumber[int(entry["episode_index"])]}))
        _write_text(out / V2_STATS_PATH, "\n".join(kept) + "\n")
    if (root / V2_TASKS_PATH).is_file():
        rows = [
            json.loads(r)
            for r in (root / V2_TASKS_PATH).read_text(encoding="utf-8").splitlines()
            if r.strip()
        ]
        texts = {int(r["task_index"]): r["task"] for r in rows}
        out_rows = [json.dumps({"task_index": tasks[old], "task": texts[old]}) for old in used]
        _write_text(out / V2_TASKS_PATH, "\n".join(out_rows) + "\n")
    total_tasks = len(used) or len({t for e in (lines[o] for o in renumber) for t in e.get("tasks", [])})
    return frames, total_tasks


# ---------------------------------------------------------------------------------------------
# v3.0: episodes concatenated in data and video files


def _filter_v3(root: Path, out: Path, info: dict[str, Any], renumber: dict[int, int]) -> tuple[int, int]:
    files = sorted((root / V3_EPISODES_DIR).glob("*/*.parquet"))
    meta = pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")
    rows = {}
    for row in meta.to_pylist():
        rows.setdefault(int(row["episode_index"]), row)
    missing = sorted(set(renumber) - set(rows))
    if missing:
        raise SourceError(f"episode indices not in {root / V3_EPISODES_DIR}: {missing}")
    data_files = sorted(
        {(int(rows[o]["data/chunk_index"]), int(rows[o]["data/file_index"])) for o in renumber}
    )
    tables = {}
    for chunk, part in data_files:
        path = root / info["data_path"].format(chunk_index=chunk, file_index=part)
        tables[(chunk, part)] = _kept_rows(pq.read_table(path), renumber)
    used = _used_tasks(list(tables.values()))
    tasks = {old: new for new, old in enumerate(used)}
    frames, ranges = 0, {}
    for (chunk, part), table in tables.items():
        table = table.sort_by([("episode_index", "ascending"), ("frame_index", "ascending")])
        table = _renumber_rows(table, renumber, tasks, frames)
        for new in sorted(set(table.column("episode_index").to_pylist())):
            count = int(pc.sum(pc.equal(table.column("episode_index"), new)).as_py())
            ranges[new] = (frames, frames + count)
            frames += count
        _write_table(table, out / info["data_path"].format(chunk_index=chunk, file_index=part))
    keys = _video_keys(info)
    copied: set[Path] = set()
    out_rows = []
    for old, new in renumber.items():
        row = {
            **rows[old],
            "episode_index": new,
            "meta/episodes/chunk_index": 0,
            "meta/episodes/file_index": 0,
        }
        if new in ranges:
            row["dataset_from_index"], row["dataset_to_index"] = ranges[new]
        for key in keys:
            chunk, part = row.get(f"videos/{key}/chunk_index"), row.get(f"videos/{key}/file_index")
            if chunk is None or part is None:
                continue
            rel = info["video_path"].format(video_key=key, chunk_index=int(chunk), file_index=int(part))
            if rel not in copied and (root / rel).is_file():
                _copy(root / rel, out / rel)
                copied.add(rel)
        out_rows.append(row)
    _write_table(pa.Table.from_pylist(out_rows, schema=meta.schema), out / V3_EPISODES_FILE)
    if (root / V3_TASKS_PATH).is_file():
        table = pq.read_table(root / V3_TASKS_PATH).to_pandas()
        table = table[table["task_index"].isin(used)].copy()
        table["task_index"] = [tasks[int(t)] for t in table["task_index"]]
        _write_table(pa.Table.from_pandas(table.sort_values("task_index")), out / V3_TASKS_PATH)
    return frames, len(used)
