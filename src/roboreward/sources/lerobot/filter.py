"""A copy of a LeRobot dataset (v2.0/v2.1 or v3.0) that keeps only some episodes, still valid LeRobot.

``roboreward annotate --keep-min-score N --filtered-out DIR`` writes one: the episodes a reward model
scored at or above N, as a dataset of the same version. As LeRobot itself expects, the kept episodes
are numbered again 0..K-1 in their old order (``meta/roboreward_filter.json`` keeps the old index of
each), every data row gets its new ``episode_index``, a new global ``index`` and a ``task_index`` into
the tasks that are left (numbered again too), and ``meta/info.json``'s totals and ``splits`` count
what is there.

- v2.0 / v2.1: one data parquet and one video per camera and episode: written at the paths the
  templates give for the new index (videos copied, not re-encoded); ``episodes.jsonl`` keeps its
  other fields; v2.1 gets ``episodes_stats.jsonl``, the kept episodes' stats.
- v3.0: the data files are written again without the dropped rows; the video files are copied as
  they are (never re-encoded), only those a kept episode uses, and each kept episode keeps its
  segment's ``from_timestamp`` / ``to_timestamp`` in its file (frames of dropped episodes stay in
  the file, unreferenced, as LeRobot reads a segment by its timestamps); ``meta/episodes`` is one
  parquet with the kept rows, their new data ranges and their stats (``stats/<feature>/<stat>``).
- The rewards sidecar ``meta/episode_rewards.jsonl`` (`layout.REWARDS_PATH`, which the simulators
  write), when the source has one, keeps the kept episodes' lines under their new indices.
- Every version gets ``meta/stats.json``, the statistics LeRobot normalises with (its
  ``LeRobotDataset.meta.stats``, which the multi-dataset loader and the training factory read),
  aggregated from the kept episodes' stats as LeRobot aggregates them
  (`roboreward.sources.lerobot.stats`). An episode's stats come from the source's per-episode stats
  where it has them, except those of ``episode_index``, ``index`` and ``task_index``, whose values
  the copy changes: those, and every stat the source lacks (v2.0 keeps no per-episode stats), are
  computed from the kept data rows and, for cameras, from frames decoded as LeRobot samples them.
  ``meta/roboreward_filter.json`` says which features' stats were computed and which came from the
  source.

The copy is written into a temporary folder beside ``out`` (``.<name>.partial``) and renamed to
``out`` once complete, so ``out`` is either a whole copy or absent: a run killed at any moment leaves
nothing that blocks a rerun, and the rerun writes the copy an uninterrupted run writes. A rerun
replaces an earlier filtered copy (a folder holding ``meta/roboreward_filter.json``); a folder
holding anything else is refused, never overwritten.

    >>> filter_lerobot("toto_lerobot", keep=[0, 3, 4], out="toto_filtered")  # doctest: +SKIP
    {'episodes': 3, 'frames': 412, 'tasks': 2, 'kept': [0, 3, 4]}
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from roboreward import video
from roboreward.sources import SourceError
from roboreward.sources.lerobot import stats as lerobot_stats
from roboreward.sources.lerobot.layout import (
    INFO_PATH,
    REWARDS_PATH,
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
#: The dataset's stats (every version).
STATS_PATH = "meta/stats.json"
#: Columns whose values a filtered copy changes: their stats are always computed again.
RENUMBERED = ("episode_index", "index", "task_index")


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
        stats = _Stats(info)
        if layout == "v2":
            frames, tasks = _filter_v2(root, work, info, renumber, stats)
        else:
            frames, tasks = _filter_v3(root, work, info, renumber, stats)
        if stats.episodes:
            aggregated = lerobot_stats.aggregate_stats(list(stats.episodes.values()))
            text = json.dumps(lerobot_stats.stats_to_json(aggregated), indent=4)
            _write_text(work / STATS_PATH, text + "\n")
        _filter_rewards(root, work, renumber)
        _write_info(work, info, len(kept), frames, tasks)
        record = {
            "source": root.name,
            "kept": kept,
            "new_index_of": {str(o): n for o, n in renumber.items()},
            "stats": stats.summary(),
        }
        _write_text(work / FILTER_RECORD, json.dumps(record, indent=2) + "\n")
        _publish(work, out, replaced)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return {"episodes": len(kept), "frames": frames, "tasks": tasks, "kept": kept}


def _filter_rewards(root: Path, out: Path, renumber: dict[int, int]) -> None:
    """The kept episodes' lines of the rewards sidecar, under their new indices (when there is one)."""
    path = root / REWARDS_PATH
    if not path.is_file():
        return
    kept: dict[int, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError, TypeError, KeyError):
            entry = json.loads(raw)
            new = renumber.get(int(entry["episode_index"]))
            if new is not None and new not in kept:
                kept[new] = json.dumps({**entry, "episode_index": new})
    _write_text(out / REWARDS_PATH, "".join(kept[new] + "\n" for new in sorted(kept)))


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
# Stats of the kept episodes


def _column_values(table: pa.Table, name: str) -> np.ndarray:
    """A data column as numbers: (rows,) for a scalar feature, (rows, dims) for a list of numbers."""
    column = table.column(name).combine_chunks()
    nested = (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list)
    if any(is_type(column.type) for is_type in nested):
        lengths = set(pc.list_value_length(column).to_pylist())
        if len(lengths) != 1 or None in lengths:
            raise ValueError(f"{name} holds rows of different lengths (or empty ones): no stats")
        # The values in their own type (float32 stays float32, as LeRobot computes with it).
        return column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), lengths.pop())
    return column.to_numpy(zero_copy_only=False)


class _Stats:
    """Per-episode stats of the copy (new index -> feature -> stat -> array), and where they came from."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.features = {
            key: ft["dtype"]
            for key, ft in info.get("features", {}).items()
            if isinstance(ft, dict) and ft.get("dtype") not in lerobot_stats.NO_STATS_DTYPES
        }
        self.episodes: dict[int, dict[str, dict[str, np.ndarray]]] = {}
        self.computed: set[str] = set()
        self.from_source: set[str] = set()
        self.unavailable: dict[str, list[int]] = {}

    def add(
        self,
        new: int,
        table: pa.Table,
        source: dict[str, dict[str, np.ndarray]] | None,
        frames: Callable[[str, int], np.ndarray | None],
    ) -> dict[str, dict[str, np.ndarray]]:
        """Episode ``new``'s stats from its (renumbered) rows ``table``, the source's stats of it
        (None: none) and ``frames(key, length)``, its sampled frames of a camera (None: unreadable)."""
        source = source or {}
        result: dict[str, dict[str, np.ndarray]] = {}
        for key, dtype in self.features.items():
            if key in source and key not in RENUMBERED:
                result[key] = source[key]
                self.from_source.add(key)
                continue
            computed = None
            if dtype in lerobot_stats.VISUAL_DTYPES:
                sampled = frames(key, table.num_rows) if table.num_rows else None
                if sampled is not None:
                    computed = lerobot_stats.episode_image_stats(sampled)
            elif key in table.column_names and table.num_rows:
                with contextlib.suppress(ValueError, TypeError, pa.ArrowException):  # not numbers
                    computed = lerobot_stats.episode_feature_stats(_column_values(table, key))
            if computed is None:
                self.unavailable.setdefault(key, []).append(new)
                continue
            if key in source:  # the source's choice of stats (e.g. no quantiles, as LeRobot v2.1 wrote)
                computed = {k: v for k, v in computed.items() if k in source[key]}
            result[key] = computed
            self.computed.add(key)
        self.episodes[new] = result
        return result

    def summary(self) -> dict[str, Any]:
        return {
            "computed": sorted(self.computed),
            "from_source": sorted(self.from_source),
            "unavailable": {key: episodes for key, episodes in sorted(self.unavailable.items())},
        }


def _image_frames(table: pa.Table, key: str) -> np.ndarray | None:
    """The sampled frames of an ``image`` feature, decoded from the data rows (None: unreadable)."""
    if key not in table.column_names:
        return None
    indices = lerobot_stats.image_sample_indices(table.num_rows)
    cells = table.column(key).take(pa.array(indices)).to_pylist()
    try:
        return lerobot_stats.decode_images(cells)
    except (OSError, ValueError):
        return None


def _video_frames(path: Path, length: int, start: float | None, end: float | None) -> np.ndarray | None:
    """The frames LeRobot's stats sample from an episode of ``length`` frames in ``path``'s range."""
    if not path.is_file():
        return None
    wanted = len(lerobot_stats.image_sample_indices(length))
    try:
        return video.sample_frames(path, num_frames=wanted, start=start, end=end)
    except (video.VideoDecodeError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# v2.0 / v2.1: a file per episode


def _read_v2_stats(root: Path) -> dict[int, dict[str, dict[str, np.ndarray]]]:
    """episodes_stats.jsonl (v2.1): episode index -> its stats; {} when there is none."""
    path = root / V2_STATS_PATH
    if not path.is_file():
        return {}
    found: dict[int, dict[str, dict[str, np.ndarray]]] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
            index, stats = int(entry["episode_index"]), entry["stats"]
        except (ValueError, KeyError, TypeError):
            raise SourceError(f"{path} line {number}: not an episode's stats ({raw[:80]!r})") from None
        if isinstance(stats, dict):
            found.setdefault(index, lerobot_stats.stats_from_json(stats))
    return found


def _filter_v2(
    root: Path, out: Path, info: dict[str, Any], renumber: dict[int, int], stats: _Stats
) -> tuple[int, int]:
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
    source_stats = _read_v2_stats(root)
    frames = 0
    episodes_out, stats_out = [], []
    for old, new in renumber.items():
        table = _renumber_rows(tables[old], renumber, tasks, frames)
        frames += table.num_rows
        _write_table(table, out / info["data_path"].format(**values(new)))
        for key in _video_keys(info):
            src = root / info["video_path"].format(video_key=key, **values(old))
            if src.is_file():
                _copy(src, out / info["video_path"].format(video_key=key, **values(new)))
        episodes_out.append(json.dumps({**lines[old], "episode_index": new}))

        def frames_of(key: str, length: int, old: int = old, table: pa.Table = table) -> np.ndarray | None:
            if stats.features[key] == "image":
                return _image_frames(table, key)
            path = root / info["video_path"].format(video_key=key, **values(old))
            return _video_frames(path, length, None, None)

        episode_stats = stats.add(new, table, source_stats.get(old), frames_of)
        stats_out.append(
            json.dumps({"episode_index": new, "stats": lerobot_stats.stats_to_json(episode_stats)})
        )
    _write_text(out / V2_EPISODES_PATH, "\n".join(episodes_out) + "\n")
    if info.get("codebase_version") != "v2.0" or source_stats:  # v2.0 kept only meta/stats.json
        _write_text(out / V2_STATS_PATH, "\n".join(stats_out) + "\n")
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


def _row_stats(row: dict[str, Any]) -> dict[str, dict[str, np.ndarray]] | None:
    """The stats in a v3.0 episode row (``stats/<feature>/<stat>`` columns); None when it has none."""
    found: dict[str, dict[str, Any]] = {}
    for column, value in row.items():
        if column.startswith("stats/") and value is not None and column.count("/") >= 2:
            feature, stat = column[len("stats/") :].rsplit("/", 1)
            found.setdefault(feature, {})[stat] = value
    return lerobot_stats.stats_from_json(found) if found else None


def _episodes_table(meta: pa.Schema, rows: list[dict[str, Any]]) -> pa.Table:
    """The kept episode rows in the source's schema; stats columns the source lacked are added."""
    names = list(meta.names)
    names += list(dict.fromkeys(c for row in rows for c in row if c not in meta.names))  # in row order
    columns = []
    for name in names:
        values = [row.get(name) for row in rows]
        if name in meta.names:
            try:
                array = pa.array(values, meta.field(name).type)
            except (pa.ArrowInvalid, pa.ArrowTypeError):  # e.g. stats computed as floats, kept as ints
                array = pa.array(values)
                with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    array = array.cast(meta.field(name).type)
        else:
            array = pa.array(values)
        columns.append(array)
    return pa.Table.from_arrays(columns, names=names)


def _filter_v3(
    root: Path, out: Path, info: dict[str, Any], renumber: dict[int, int], stats: _Stats
) -> tuple[int, int]:
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
    frames, ranges, episode_rows = 0, {}, {}
    for (chunk, part), table in tables.items():
        table = table.sort_by([("episode_index", "ascending"), ("frame_index", "ascending")])
        table = _renumber_rows(table, renumber, tasks, frames)
        for new in sorted(set(table.column("episode_index").to_pylist())):
            rows_of = table.filter(pc.equal(table.column("episode_index"), new))
            episode_rows[new] = rows_of
            ranges[new] = (frames, frames + rows_of.num_rows)
            frames += rows_of.num_rows
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

        def frames_of(key: str, length: int, row: dict[str, Any] = row, new: int = new) -> np.ndarray | None:
            if stats.features[key] == "image":
                return _image_frames(episode_rows[new], key)
            chunk, part = row.get(f"videos/{key}/chunk_index"), row.get(f"videos/{key}/file_index")
            start, end = row.get(f"videos/{key}/from_timestamp"), row.get(f"videos/{key}/to_timestamp")
            if chunk is None or part is None:
                return None
            rel = info["video_path"].format(video_key=key, chunk_index=int(chunk), file_index=int(part))
            return _video_frames(root / rel, length, start, end)

        rows_of = episode_rows.get(new, pa.table({}))
        episode_stats = stats.add(new, rows_of, _row_stats(rows[old]), frames_of)
        flat = {
            f"stats/{feature}/{stat}": np.asarray(value).tolist()
            for feature, by_stat in episode_stats.items()
            for stat, value in by_stat.items()
        }
        out_rows.append({**{k: v for k, v in row.items() if not k.startswith("stats/")}, **flat})
    _write_table(_episodes_table(meta.schema, out_rows), out / V3_EPISODES_FILE)
    if (root / V3_TASKS_PATH).is_file():
        table = pq.read_table(root / V3_TASKS_PATH).to_pandas()
        table = table[table["task_index"].isin(used)].copy()
        table["task_index"] = [tasks[int(t)] for t in table["task_index"]]
        _write_table(pa.Table.from_pandas(table.sort_values("task_index")), out / V3_TASKS_PATH)
    return frames, len(used)
