"""`LeRobotSource`: Open X-Embodiment ports in LeRobot format (v2.0/v2.1 and v3.0) as `Episode`s.

The reader follows the dataset's own description of itself, as LeRobot does: ``meta/info.json``
gives the version, the fps, the features and the path templates of data and video files, and every
path is built from those templates (never hard-coded). Only metadata is read: the episode list
(``meta/episodes.jsonl`` in v2, ``meta/episodes/*/*.parquet`` in v3), the tasks table and, when an
episode's metadata lists no task, the episode's rows of the data parquet. Videos are checked for
existence, never decoded: a corrupt file is caught later, when the builder encodes it.

Every metadata entry ends as an Episode or a `Skip` with its reason, never silently: a broken
``episodes.jsonl`` line and an entry without an ``episode_index`` included (they are reported even
when episodes are picked by index, since no index picks them). A video or data path that a
template puts outside the dataset folder (``../``, an absolute path) is refused; the check is
lexical, on the joined path before symlinks are resolved, so the Hub cache's snapshot symlinks
into its blob store still work. Provenance names the Hub id, or the folder's name: never a local
absolute path, which would otherwise travel to the Hub with the dataset.

Every OXE episode is a demonstration that succeeded, so by default every row is ``reward=5,
progress=1.0``. A dataset whose episodes are not all successes says so per episode, in one of two
places (the ``rewards`` argument, `BuildConfig.lerobot_rewards`):

- a sidecar file: ``meta/episode_rewards.jsonl`` (`layout.REWARDS_PATH`), one JSON line per episode,
  ``{"episode_index": 3, "reward": 2, "progress": 0.31}`` (reward an integer 1..5, progress an
  optional fraction), is used whenever a dataset has it (``rewards="auto"``, the default); this is
  where ``roboreward sim`` writes its ground truth, so simulated failures stay failures. Another
  sidecar (JSONL or Parquet, the same columns) can be named by its path.
- a column of the episode metadata (``rewards="column:NAME"``: a key of ``episodes.jsonl`` in v2, a
  column of ``meta/episodes`` in v3) holding the reward 1..5.

An episode the sidecar or column gives no valid reward becomes a `Skip` naming the file, never a
guess; ``rewards="success"`` ignores any sidecar (5 for every episode, as for OXE).

- v2.0 / v2.1: one mp4 per episode and camera, at ``video_path.format(episode_chunk=...,
  episode_index=..., video_key=...)``; the Episode covers the whole file.
- v3.0: many episodes concatenated in one mp4 per camera and file; the episode's rows in
  ``meta/episodes`` say which file (``videos/<key>/chunk_index``, ``file_index``) and which time
  range (``from_timestamp``, ``to_timestamp``), which become ``video_start`` / ``video_end``.

Example:
    >>> from roboreward.sources.lerobot.reader import LeRobotSource
    >>> source = LeRobotSource("lerobot/berkeley_autolab_ur5")  # doctest: +SKIP
    >>> source.name, source.video_key, source.count()  # doctest: +SKIP
    ('oxe/berkeley_autolab_ur5', 'observation.images.image', 1000)
    >>> first = next(source.episodes(indices=[0]))  # doctest: +SKIP
    >>> first.task, first.reward, first.progress  # doctest: +SKIP
    ('take the tiger out of the red bowl and put it in the grey bowl', 5, 1.0)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from huggingface_hub import snapshot_download

from roboreward import video as video_io
from roboreward.episode import Episode, EpisodeError, Skip
from roboreward.sources import SourceError
from roboreward.sources.lerobot.layout import (
    INFO_PATH,
    MAX_EPISODE_INDEX,
    REWARDS_PATH,
    SUPPORTED_VERSIONS,
    V2_EPISODES_PATH,
    V2_FIELDS,
    V2_TASKS_PATH,
    V3_EPISODES_DIR,
    V3_FIELDS,
    V3_TASKS_PATH,
    Unreadable,
    as_float,
    as_index,
    as_int,
    check_template,
    choose_video_key,
    dataset_name,
    default_video_key,
    entry_index,
    episode_index,
    first_text,
    inside,
    instruction_text,
    listed_tasks,
    parse_jsonl_line,
    read_info,
    relative,
    reward_label,
    shown,
    video_keys,
)

__all__ = ["REWARDS_PATH", "SUPPORTED_VERSIONS", "LeRobotSource", "default_video_key", "parse_rewards"]

OXE_REWARD = 5
OXE_PROGRESS = 1.0

#: A metadata entry that has no reward column at all (as opposed to one holding null).
_ABSENT: Any = object()


def parse_rewards(spec: str) -> tuple[str, str | None]:
    """Where a LeRobot source's rewards come from, as (kind, detail).

    ``auto``: the sidecar `REWARDS_PATH` when the dataset has one, else 5 for every episode;
    ``success``: 5 for every episode; ``column:NAME``: the episode metadata's NAME; anything else:
    the path of a sidecar file (JSONL or Parquet), relative to the dataset folder unless absolute.

    >>> parse_rewards("auto"), parse_rewards("column:reward"), parse_rewards("truth.parquet")
    (('auto', None), ('column', 'reward'), ('file', 'truth.parquet'))
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"LeRobot rewards must be auto, success, column:NAME or a file, got {spec!r}")
    spec = spec.strip()
    if spec in ("auto", "success"):
        return spec, None
    if spec.startswith("column:"):
        name = spec[len("column:") :].strip()
        if not name:
            raise ValueError(f"LeRobot rewards {spec!r} names no column: write column:NAME")
        return "column", name
    if not spec.endswith((".jsonl", ".json", ".parquet")):
        raise ValueError(
            f"LeRobot rewards {spec!r}: a sidecar file ends in .jsonl or .parquet "
            "(or give auto, success, column:NAME)"
        )
    return "file", spec


_REPO_ID_RE = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")
_TASK_INDEX_RE = re.compile(rb'"task_index"\s*:\s*(\d{1,19})(?!\d)')


@dataclass(frozen=True)
class _Record:
    """One entry of the episode metadata, before it is judged."""

    index: int | None
    where: str  # e.g. "meta/episodes.jsonl line 3": named in every Skip reason
    tasks: list[Any] | None  # the tasks the metadata lists; None when it lists none
    problem: str | None  # why the entry cannot become an Episode, found while parsing
    video: Path | None
    start: float | None
    end: float | None
    data: Path | None  # the data parquet holding the episode's frames (task fallback)
    reward: Any = _ABSENT  # the reward column's value (``rewards="column:NAME"``)


@dataclass(frozen=True)
class _DataTask:
    """What an episode's rows of the data parquet say about its task."""

    task_index: int | None
    instruction: str | None
    problem: str | None


class LeRobotSource:
    """Episodes of one LeRobot-format dataset (a local folder or a Hub dataset repo), all successes.

    Args:
        dataset: a local folder, or a Hub dataset repo id (used only when no such folder exists),
            e.g. ``"lerobot/toto"``. From the Hub, ``snapshot_download`` fetches the metadata when the
            source is made, then, in `episodes`, only the files of the episodes asked for: their data
            parquet files and the chosen camera's videos (with huggingface_hub's progress bar).
        video_key: the camera feature to use, e.g. ``"observation.images.image"`` (the short
            ``"image"`` works too). Default: the first video feature, in ``info.json`` order, whose
            key names no wrist or hand, else the first video feature.
        name: the dataset part of the subset name ``oxe/<name>``. Default: the folder or repo name
            without a trailing ``_lerobot``.
        revision: Hub branch, tag or commit (Hub only).
        cache_dir: Hub cache folder (Hub only).
        rewards: where each episode's reward comes from (`parse_rewards`): ``auto`` (the sidecar
            ``meta/episode_rewards.jsonl`` when there is one, else 5 as for OXE), ``success``,
            ``column:NAME`` or a sidecar file's path.

    Raises:
        SourceError: the source is unusable as a whole (missing folder, missing or malformed
            ``meta/info.json``, unknown LeRobot version, no video features, unknown ``video_key``,
            missing episode metadata, failed download, a rewards sidecar that is missing when named
            or has a line that names no episode, a reward column no episode has); the message
            names the file and the problem.
        ValueError: a ``rewards`` that is none of the forms above.

    Example:
        >>> source = LeRobotSource("datasets/toto_lerobot", video_key="image")  # doctest: +SKIP
        >>> source.name, source.codebase_version, source.episode_indices()[:3]  # doctest: +SKIP
        ('oxe/toto', 'v2.1', [0, 1, 2])
        >>> [e.episode_id for e in source.episodes(indices=[2, 0])]  # doctest: +SKIP
        ['0', '2']
    """

    def __init__(
        self,
        dataset: str | os.PathLike[str],
        *,
        video_key: str | None = None,
        name: str | None = None,
        revision: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        rewards: str = "auto",
    ) -> None:
        self.rewards = rewards
        self._rewards_kind, self._rewards_detail = parse_rewards(rewards)
        self.dataset = os.fspath(dataset)
        self.revision = revision
        self._cache_dir = cache_dir
        local = Path(self.dataset).expanduser()
        if local.exists():
            if not local.is_dir():
                raise SourceError(f"LeRobot dataset is not a folder: {local}")
            self.repo_id: str | None = None
            self.root = Path(os.path.abspath(local))
            info = read_info(self.root / INFO_PATH, label=str(self.root / INFO_PATH))
        elif _REPO_ID_RE.fullmatch(self.dataset) and ".." not in self.dataset:
            self.repo_id = self.dataset
            info_root = self._download([INFO_PATH], cache_dir)
            info = read_info(info_root / INFO_PATH, label=f"{INFO_PATH} of Hub dataset {self.repo_id!r}")
        else:
            raise SourceError(f"LeRobot dataset folder not found: {local}")

        self.info = info
        self.codebase_version: str = info["codebase_version"]
        self.layout = SUPPORTED_VERSIONS[self.codebase_version]
        self.fps: float = info["fps"]
        self.video_keys: list[str] = video_keys(info, self._info_label)
        self.video_key = choose_video_key(self.video_keys, video_key, self._info_label)
        self._data_template: str | None = info.get("data_path")
        self._video_template: str = info["video_path"]
        self._chunks_size: int | None = info.get("chunks_size")

        self._check_templates()  # before a Hub download, which the templates steer
        if self.repo_id is not None:
            self.root = self._download(self._allow_patterns(), cache_dir)  # the metadata only
        short = name if name is not None else dataset_name(self.repo_id or self.root.name)
        if not short or not short.strip():
            raise SourceError(f"dataset name is empty for {self.dataset!r}")
        self.name = f"oxe/{short}"
        self.provenance: dict[str, Any] = {
            "dataset": self.repo_id or self.root.name,  # never a local absolute path (it gets published)
            "codebase_version": self.codebase_version,
            "fps": self.fps,
        }
        if self.repo_id is not None and revision is not None:
            self.provenance["revision"] = revision
        self._check_metadata_files()
        self._records_cache: list[_Record] | None = None
        self._tasks_cache: tuple[dict[int, str | Unreadable], str] | None = None
        self._data_cache: dict[Path, dict[int, _DataTask]] = {}
        #: Where the episodes' rewards come from: "success" (5 for all, as OXE), "column:NAME", or
        #: the sidecar file (relative to the dataset folder when inside it).
        self.rewards_from: str = "success"
        self._reward_table: dict[int, tuple[int, float | None] | str] | None = None
        self._read_rewards()

    def __repr__(self) -> str:
        return (
            f"LeRobotSource({self.dataset!r}, name={self.name!r}, version={self.codebase_version!r}, "
            f"video_key={self.video_key!r})"
        )

    # -- public API ---------------------------------------------------------------------------

    def episode_indices(self) -> list[int]:
        """Every episode index the metadata lists, ascending and unique (metadata only, cached).

        Entries whose index cannot be read are not in the list; `episodes()` reports them as Skips.
        """
        return sorted({r.index for r in self._records() if r.index is not None})

    def count(self) -> int:
        """How many episode indices the metadata lists: ``len(episode_indices())``."""
        return len(self.episode_indices())

    def episodes(self, indices: Iterable[int] | None = None) -> Iterator[Episode | Skip]:
        """Each episode as an `Episode`, or a `Skip` with the reason, in ascending episode index.

        ``indices`` keeps only those episode indices (as `episode_indices` lists them); an index
        the metadata lacks raises ValueError. Metadata entries whose episode index is unreadable
        come last, as Skips, with or without ``indices`` (no index can pick them, and an entry
        must never vanish unreported). Reads metadata and checks that video files exist; never
        decodes a video.

        Example:
            >>> picked = source.episodes(indices=[3, 1])  # doctest: +SKIP
            >>> [e.episode_id for e in picked if isinstance(e, Episode)]  # doctest: +SKIP
            ['1', '3']
        """
        records = self._records()
        if indices is not None:
            wanted = {as_index(i) for i in indices}
            unknown = sorted(wanted - set(self.episode_indices()))
            if unknown:
                shown = ", ".join(map(str, unknown[:10])) + (" ..." if len(unknown) > 10 else "")
                raise ValueError(f"episode indices not in the metadata of {self.dataset}: {shown}")
            records = [r for r in records if r.index in wanted or r.index is None]
        if self.repo_id is not None:
            self._download(self.episode_files(records), self._cache_dir)
        return self._judge_all(records)

    def episode_frames(self, episode_index: int) -> pa.Table:
        """The frames of one episode as its data parquet lists them: ``index`` (the dataset-wide
        frame index), ``frame_index`` (from 0 in the episode) and ``timestamp`` (seconds from the
        episode's start), ordered by ``frame_index``.

        Args:
            episode_index: the episode (`episode_indices`).

        Raises:
            ValueError: no such episode, or its data file is missing or lacks those columns.
        """
        record = next((r for r in self._records() if r.index == episode_index), None)
        if record is None or record.data is None or not record.data.is_file():
            raise ValueError(f"{self.root}: no data file for episode {episode_index}")
        columns = ["episode_index", "index", "frame_index", "timestamp"]
        missing = sorted(set(columns) - set(pq.read_schema(record.data).names))
        if missing:
            raise ValueError(f"{relative(record.data, self.root)} has no {', '.join(missing)} column")
        table = pq.read_table(record.data, columns=columns)
        mine = table.filter(pc.equal(table["episode_index"], episode_index))
        return mine.select(columns[1:]).sort_by("frame_index")

    def episode_files(self, records: Iterable[_Record] | None = None) -> list[str]:
        """The data and video files of ``records`` (default: every episode), relative to the root,
        sorted and unique: what a Hub source downloads for them (v3.0 episodes share files)."""
        chosen = self._records() if records is None else records
        files = {path for r in chosen for path in (r.data, r.video) if path is not None}
        return sorted(path.relative_to(self.root).as_posix() for path in files)

    # -- Hub ------------------------------------------------------------------------------------

    @property
    def _info_label(self) -> str:
        if self.repo_id is not None:
            return f"{INFO_PATH} of Hub dataset {self.repo_id!r}"
        return str(self.root / INFO_PATH)

    def _download(self, allow_patterns: list[str], cache_dir: str | os.PathLike[str] | None) -> Path:
        assert self.repo_id is not None
        try:
            folder = snapshot_download(
                self.repo_id,
                repo_type="dataset",
                revision=self.revision,
                cache_dir=cache_dir,
                allow_patterns=allow_patterns,
            )
        except Exception as exc:  # offline, unknown repo or revision, auth: all leave nothing to read
            raise SourceError(
                f"cannot download LeRobot dataset {self.repo_id!r} from the Hub "
                f"(and there is no local folder of that name): {type(exc).__name__}: {exc}"
            ) from exc
        return Path(os.path.abspath(folder))

    def _allow_patterns(self) -> list[str]:
        """What a Hub source fetches when it is made: the metadata (episodes' files come in `episodes`)."""
        if self.layout == "v2":
            patterns = [INFO_PATH, V2_EPISODES_PATH, V2_TASKS_PATH]
        else:
            patterns = [INFO_PATH, f"{V3_EPISODES_DIR}/*", V3_TASKS_PATH]
        if self._rewards_kind == "auto":
            patterns.append(REWARDS_PATH)
        elif self._rewards_kind == "file" and not Path(str(self._rewards_detail)).is_absolute():
            patterns.append(Path(str(self._rewards_detail)).as_posix())
        return patterns

    # -- rewards ---------------------------------------------------------------------------------

    def _read_rewards(self) -> None:
        """Read the rewards sidecar, if the episodes' rewards come from one (see `parse_rewards`)."""
        kind, detail = self._rewards_kind, self._rewards_detail
        if kind == "column":
            self.rewards_from = f"column:{detail}"
            return
        if kind == "success":
            return
        path = self.root / REWARDS_PATH if kind == "auto" else self.root / str(detail)
        if not path.is_file():
            if kind == "file":
                raise SourceError(f"rewards sidecar {path} not found (--lerobot-rewards {detail})")
            return
        where = relative(path, self.root) if inside(Path(os.path.abspath(path)), self.root) else str(path)
        self.rewards_from = where
        entries = _read_parquet_rewards(path) if path.suffix == ".parquet" else _read_jsonl_rewards(path)
        table: dict[int, tuple[int, float | None] | str] = {}
        first: dict[int, str] = {}
        for index, reward, progress, line in entries:
            spot = f"{where} {line}"
            if index is None:
                raise SourceError(f"{path} {line}: no integer episode_index (a rewards sidecar line)")
            if index in first:
                raise SourceError(
                    f"{path}: episode {index} has two rewards ({first[index]} and {line}): keep one"
                )
            first[index] = line
            table[index] = reward_label(reward, progress, spot)
        self._reward_table = table

    def _label(self, record: _Record) -> tuple[int, float | None] | str:
        """(reward, progress) of an entry, or why it has none."""
        if self._rewards_kind == "column":
            name = self._rewards_detail
            if record.reward is _ABSENT or record.reward is None:
                return f"no {name} (the reward column) in {record.where}"
            return reward_label(record.reward, None, f"{name} of {record.where}")
        if self._reward_table is None:
            return OXE_REWARD, OXE_PROGRESS
        found = self._reward_table.get(record.index) if record.index is not None else None
        if found is None:
            return f"no reward for episode {record.index} in {self.rewards_from}"
        return found

    # -- metadata -------------------------------------------------------------------------------

    def _check_templates(self) -> None:
        fields = V2_FIELDS if self.layout == "v2" else V3_FIELDS
        check_template(self._video_template, ("video_key", *fields), self._info_label, "video_path")
        if self._data_template is not None:
            check_template(self._data_template, fields, self._info_label, "data_path")
        chunks = self._chunks_size
        if self.layout == "v2" and (isinstance(chunks, bool) or not isinstance(chunks, int) or chunks <= 0):
            raise SourceError(f"{self._info_label}: chunks_size must be a positive integer, got {chunks!r}")

    def _check_metadata_files(self) -> None:
        if self.layout == "v2":
            path = self.root / V2_EPISODES_PATH
            if not path.is_file():
                raise SourceError(f"{path}: episode metadata not found")
            return
        files = self._v3_episode_files()
        if not files:
            raise SourceError(f"{self.root / V3_EPISODES_DIR}: no episode metadata (*/*.parquet) found")
        needed = ["episode_index", *self._v3_video_columns()]
        for file in files:
            try:
                names = set(pq.read_schema(file).names)
            except (OSError, pa.ArrowException) as exc:
                raise SourceError(f"{file}: not a readable parquet file ({exc})") from None
            missing = [c for c in needed if c not in names]
            if missing:
                raise SourceError(f"{file}: missing column(s) {', '.join(missing)}")

    def _v3_episode_files(self) -> list[Path]:
        return sorted((self.root / V3_EPISODES_DIR).glob("*/*.parquet"))

    def _v3_video_columns(self) -> list[str]:
        prefix = f"videos/{self.video_key}"
        return [
            f"{prefix}/chunk_index",
            f"{prefix}/file_index",
            f"{prefix}/from_timestamp",
            f"{prefix}/to_timestamp",
        ]

    def _records(self) -> list[_Record]:
        if self._records_cache is None:
            records = self._read_v2_records() if self.layout == "v2" else self._read_v3_records()
            # Ascending episode index, entries without a readable index last; the sort is stable,
            # so duplicates keep file order and the first one listed is the one kept.
            records.sort(key=lambda r: (r.index is None, r.index or 0))
            if self._rewards_kind == "column" and records and all(r.reward is _ABSENT for r in records):
                where = V2_EPISODES_PATH if self.layout == "v2" else f"{V3_EPISODES_DIR}/*/*.parquet"
                raise SourceError(
                    f"{self.root / where}: no episode has the reward column {self._rewards_detail!r} "
                    f"(--lerobot-rewards {self.rewards})"
                )
            self._records_cache = records
        return self._records_cache

    def _read_v2_records(self) -> list[_Record]:
        records = []
        raw_lines = (self.root / V2_EPISODES_PATH).read_bytes().splitlines()
        for number, raw in enumerate(raw_lines, start=1):
            if not raw.strip():
                continue
            where = f"{V2_EPISODES_PATH} line {number}"
            entry, problem = parse_jsonl_line(raw, where)
            index = entry_index(entry, raw)
            if problem is None and not isinstance(entry, dict):
                problem = f"not a JSON object in {where}"
            if problem is None and index is None:
                problem = _index_problem(entry.get("episode_index"), where)
            tasks = listed_tasks(entry.get("tasks")) if isinstance(entry, dict) else None
            reward = _ABSENT
            if self._rewards_kind == "column" and isinstance(entry, dict):
                reward = entry.get(str(self._rewards_detail), _ABSENT)
            video = data = None
            if index is not None:
                assert self._chunks_size is not None
                values = {"episode_chunk": index // self._chunks_size, "episode_index": index}
                video = self.root / self._video_template.format(video_key=self.video_key, **values)
                if self._data_template:
                    data = self.root / self._data_template.format(**values)
            records.append(_Record(index, where, tasks, problem, video, None, None, data, reward))
        return records

    def _read_v3_records(self) -> list[_Record]:
        records = []
        chunk_col, file_col, from_col, to_col = self._v3_video_columns()
        for file in self._v3_episode_files():
            rel = file.relative_to(self.root).as_posix()
            names = pq.read_schema(file).names
            wanted = [
                "episode_index",
                "tasks",
                "data/chunk_index",
                "data/file_index",
                *self._v3_video_columns(),
            ]
            reward_column = str(self._rewards_detail) if self._rewards_kind == "column" else None
            if reward_column is not None and reward_column not in wanted:
                wanted.append(reward_column)
            try:
                rows = pq.read_table(file, columns=[c for c in wanted if c in names]).to_pylist()
            except (OSError, pa.ArrowException) as exc:
                raise SourceError(f"{file}: not a readable parquet file ({exc})") from None
            for number, row in enumerate(rows):
                where = f"{rel} row {number}"
                index = episode_index(row.get("episode_index"))
                problem = None if index is not None else _index_problem(row.get("episode_index"), where)
                chunk, part = as_int(row.get(chunk_col)), as_int(row.get(file_col))
                start, end = as_float(row.get(from_col)), as_float(row.get(to_col))
                video = None
                if chunk is None or part is None or start is None or end is None:
                    problem = problem or f"no {self.video_key} video file or time range in {where}"
                else:
                    problem = problem or _time_range_problem(start, end, where)
                    video = self.root / self._video_template.format(
                        video_key=self.video_key, chunk_index=chunk, file_index=part
                    )
                data = None
                data_chunk, data_part = (
                    as_int(row.get("data/chunk_index")),
                    as_int(row.get("data/file_index")),
                )
                if self._data_template and data_chunk is not None and data_part is not None:
                    data = self.root / self._data_template.format(
                        chunk_index=data_chunk, file_index=data_part
                    )
                tasks = listed_tasks(row.get("tasks")) if "tasks" in row else None
                reward = row.get(reward_column, _ABSENT) if reward_column is not None else _ABSENT
                records.append(_Record(index, where, tasks, problem, video, start, end, data, reward))
        return records

    # -- judging ---------------------------------------------------------------------------------

    def _judge_all(self, records: list[_Record]) -> Iterator[Episode | Skip]:
        first_at: dict[int, str] = {}
        for record in records:
            yield self._judge(record, first_at)

    def _judge(self, record: _Record, first_at: dict[int, str]) -> Episode | Skip:
        episode_id = str(record.index) if record.index is not None else record.where
        if record.index is not None:
            if record.index in first_at:
                return self._skip(
                    episode_id,
                    f"duplicate episode_index {record.index} in {record.where} "
                    f"(first listed in {first_at[record.index]})",
                )
            first_at[record.index] = record.where
        if record.problem is not None:
            return self._skip(episode_id, record.problem)
        task, reason = self._task(record)
        if task is None:
            return self._skip(episode_id, reason)
        assert record.video is not None
        video = Path(os.path.abspath(record.video))  # absolute, symlinks kept (Hub cache snapshots)
        if not inside(video, self.root):
            return self._skip(
                episode_id,
                f"video path {os.path.relpath(video, self.root)} escapes the dataset folder "
                f"(video_path template, {record.where})",
            )
        if not video.is_file():
            return self._skip(episode_id, f"video file missing: {video}")
        label = self._label(record)
        if isinstance(label, str):
            return self._skip(episode_id, label)
        reward, progress = label
        provenance = dict(self.provenance)
        if self.rewards_from != "success":
            provenance["reward_from"] = self.rewards_from  # a path inside the dataset, or as given
        try:
            return Episode(
                video=str(video),
                task=task,
                reward=reward,
                progress=progress,
                source=self.name,
                episode_id=episode_id,
                camera=self.video_key,
                video_start=record.start,
                video_end=record.end,
                provenance=provenance,
            )
        except EpisodeError as exc:
            return self._skip(episode_id, f"{exc} ({record.where})")

    def _skip(self, episode_id: str, reason: str) -> Skip:
        return Skip(source=self.name, episode_id=episode_id, reason=reason)

    def _task(self, record: _Record) -> tuple[str | None, str]:
        """The episode's task text, or None and why there is none."""
        listed = first_text(record.tasks)
        if listed is not None:
            return listed, ""
        found, note = self._task_from_data(record)
        if found is not None:
            return found, ""
        if record.tasks is not None and any(isinstance(t, str) for t in record.tasks):
            reason = f"task is empty in {record.where}"
        else:
            reason = f"no task listed in {record.where}"
        return None, f"{reason}; {note}" if note else reason

    def _task_from_data(self, record: _Record) -> tuple[str | None, str]:
        """The task via the episode's rows of the data parquet: task_index, else language_instruction."""
        if record.data is None or record.index is None:
            return None, ""
        rel = relative(record.data, self.root)
        if not inside(Path(os.path.abspath(record.data)), self.root):
            return None, f"data path {os.path.relpath(record.data, self.root)} escapes the dataset folder"
        if not record.data.is_file():
            return None, f"data file missing: {rel}"
        try:
            found = self._data_tasks(record.data).get(record.index)
        except (OSError, pa.ArrowException) as exc:
            return None, f"cannot read {rel} ({exc})"
        if found is None:
            return None, f"no rows of episode {record.index} in {rel}"
        notes = []
        if found.task_index is not None:
            tasks, table_note = self._tasks_table()
            text = tasks.get(found.task_index)
            if isinstance(text, str) and text.strip():
                return text, ""
            if isinstance(text, Unreadable):
                notes.append(text.reason)
            elif text is None:
                notes.append(
                    table_note or f"task_index {found.task_index} of {rel} is not in the tasks table"
                )
            else:
                notes.append(f"task_index {found.task_index} names an empty task")
        if found.instruction is not None:
            return found.instruction, ""
        if found.problem is not None:
            notes.append(found.problem)
        return None, "; ".join(notes)

    def _data_tasks(self, path: Path) -> dict[int, _DataTask]:
        cached = self._data_cache.get(path)
        if cached is not None:
            return cached
        names = pq.read_schema(path).names
        columns = [c for c in ("episode_index", "task_index", "language_instruction") if c in names]
        result: dict[int, _DataTask] = {}
        if "episode_index" in columns and len(columns) > 1:
            table = pq.read_table(path, columns=columns)
            episodes = table["episode_index"].to_pylist()
            task_indices = (
                table["task_index"].to_pylist() if "task_index" in columns else [None] * len(episodes)
            )
            instructions = (
                table["language_instruction"].to_pylist()
                if "language_instruction" in columns
                else [None] * len(episodes)
            )
            rel = relative(path, self.root)
            for episode, task_index, instruction in zip(episodes, task_indices, instructions, strict=True):
                if episode is None:
                    continue
                old = result.get(episode, _DataTask(None, None, None))
                if old.task_index is None and task_index is not None:
                    old = _DataTask(as_int(task_index), old.instruction, old.problem)
                if old.instruction is None and instruction is not None:
                    text, problem = instruction_text(instruction, f"language_instruction of {rel}")
                    old = _DataTask(old.task_index, text, old.problem or problem)
                result[episode] = old
        self._data_cache[path] = result
        return result

    def _tasks_table(self) -> tuple[dict[int, str | Unreadable], str]:
        """task_index -> task text, and a note when the table is missing or unreadable."""
        if self._tasks_cache is None:
            self._tasks_cache = self._read_v2_tasks() if self.layout == "v2" else self._read_v3_tasks()
        return self._tasks_cache

    def _read_v2_tasks(self) -> tuple[dict[int, str | Unreadable], str]:
        path = self.root / V2_TASKS_PATH
        if not path.is_file():
            return {}, f"{V2_TASKS_PATH} not found"
        table: dict[int, str | Unreadable] = {}
        for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
            if not raw.strip():
                continue
            where = f"{V2_TASKS_PATH} line {number}"
            entry, problem = parse_jsonl_line(raw, where)
            index = as_int(entry.get("task_index")) if isinstance(entry, dict) else None
            if index is None:
                match = _TASK_INDEX_RE.search(raw)
                index = int(match.group(1)) if match else None
            if index is None or index in table:
                continue
            if problem is None and isinstance(entry, dict) and isinstance(entry.get("task"), str):
                table[index] = entry["task"]
            else:
                table[index] = Unreadable(problem or f"no task text in {where}")
        return table, ""

    def _read_v3_tasks(self) -> tuple[dict[int, str | Unreadable], str]:
        path = self.root / V3_TASKS_PATH
        if not path.is_file():
            return {}, f"{V3_TASKS_PATH} not found"
        try:
            tasks = pq.read_table(path)
        except (OSError, pa.ArrowException) as exc:
            return {}, f"cannot read {V3_TASKS_PATH} ({exc})"
        # LeRobot writes the task strings as the pandas index (a column named `task` or
        # `__index_level_0__`, listed in the pandas metadata); some ports write a `task` column.
        index_columns = [
            c for c in (tasks.schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)
        ]
        text_column = next((c for c in ("task", *index_columns) if c in tasks.column_names), None)
        if "task_index" not in tasks.column_names or text_column is None:
            return {}, f"{V3_TASKS_PATH} has no task_index and task text columns"
        table: dict[int, str | Unreadable] = {}
        for task_index, text in zip(
            tasks["task_index"].to_pylist(), tasks[text_column].to_pylist(), strict=True
        ):
            index = as_int(task_index)
            if index is not None and index not in table:
                table[index] = text if isinstance(text, str) else Unreadable(f"task {index} is not text")
        return table, ""


def _index_problem(value: Any, where: str) -> str:
    """Why an entry's episode_index is unusable (missing, not an integer, or not an int64 >= 0)."""
    if value is None:
        return f"no integer episode_index in {where}"
    return f"episode_index {shown(value, 60)} is not an integer 0..{MAX_EPISODE_INDEX} in {where}"


def _time_range_problem(start: float, end: float, where: str) -> str | None:
    """Why a v3.0 episode's [from_timestamp, to_timestamp) cannot be decoded, or None.

    A range that starts before the video (a negative time) names no frame of it, and one longer than
    `video.VideoLimits.max_seconds` would be refused by every decode: both are skips here, before a
    frame is read (an empty range is the Episode's own check).
    """
    if start < 0:
        return f"video time range [{start:g}, {end:g}) s starts before the video in {where}"
    limit = video_io.DEFAULT_LIMITS.max_seconds
    if end - start > limit:
        return f"video time range [{start:g}, {end:g}) s is over the limit of {limit:g} s in {where}"
    return None


def _read_jsonl_rewards(path: Path) -> list[tuple[int | None, Any, Any, str]]:
    """(episode_index, reward, progress, "line N") of each line of a JSONL rewards sidecar."""
    entries = []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        if not raw.strip():
            continue
        line = f"line {number}"
        entry, problem = parse_jsonl_line(raw, f"{path} {line}")
        if problem is not None or not isinstance(entry, dict):
            raise SourceError(problem or f"{path} {line}: not a JSON object")
        entries.append((as_int(entry.get("episode_index")), entry.get("reward"), entry.get("progress"), line))
    return entries


def _read_parquet_rewards(path: Path) -> list[tuple[int | None, Any, Any, str]]:
    """(episode_index, reward, progress, "row N") of each row of a Parquet rewards sidecar."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise SourceError(f"{path}: not a readable parquet file ({exc})") from None
    missing = [c for c in ("episode_index", "reward") if c not in table.column_names]
    if missing:
        raise SourceError(f"{path}: missing column(s) {', '.join(missing)} (a rewards sidecar)")
    indices = table["episode_index"].to_pylist()
    rewards = table["reward"].to_pylist()
    progress = table["progress"].to_pylist() if "progress" in table.column_names else [None] * len(indices)
    rows = zip(indices, rewards, progress, strict=True)
    return [(as_int(i), r, p, f"row {n}") for n, (i, r, p) in enumerate(rows)]
