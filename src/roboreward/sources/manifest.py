"""`ManifestSource`: your own rollouts, listed in a JSONL or CSV manifest.

One row per rollout video. Columns:

- ``video`` (required): the video file; a relative path resolves against the manifest's folder, and
  every path must stay inside that folder (``../``, absolute paths elsewhere and symlinks pointing out
  are refused).
- ``task`` (required): the instruction the reward is judged against.
- ``reward`` (an integer 1..5) and/or ``progress`` (a fraction in [0, 1] or a percent in (1, 100],
  mapped by `rubric.progress_to_score`); when both are given they must agree.
- ``source`` (optional): the subset name (default: the source's name, ``manifest/<file stem>``).
- ``episode_id`` (optional): default the row's line number in the file.
- ``camera`` (optional).

``manifest.jsonl`` (``.json`` and ``.ndjson`` are read as JSON lines too)::

    {"video": "clips/ep0.mp4", "task": "open the drawer", "reward": 5}
    {"video": "clips/ep1.mp4", "task": "open the drawer", "progress": 0.5, "camera": "front"}

``manifest.csv``::

    video,task,reward,progress
    clips/ep0.mp4,open the drawer,5,
    clips/ep1.mp4,open the drawer,,0.5

A row that cannot become an episode (bad JSON, no video, a missing file, an empty task, a reward that
is not an integer 1..5, text that is not UTF-8, a repeated episode id) is a `Skip` whose reason names
``<file> line N``; the other rows are unaffected.

    >>> source = ManifestSource("my_rollouts/manifest.jsonl")  # doctest: +SKIP
    >>> [e.reward for e in source.episodes()]  # doctest: +SKIP
    [5, 3]
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from roboreward import rubric
from roboreward.episode import Episode, EpisodeError, Skip
from roboreward.sources import SourceError, shown

__all__ = ["COLUMNS", "JSON_LINES_SUFFIXES", "ManifestSource"]

#: The columns a manifest row may have; other columns are ignored.
COLUMNS = ("video", "task", "reward", "progress", "source", "episode_id", "camera")
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson", ".json")
_CSV_SUFFIXES = (".csv",)

_INTEGER = re.compile(r"[+-]?\d+")
_SURROGATE = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8 (decoded with surrogateescape)


class _RowError(Exception):
    """One row's problem; becomes a Skip."""


class ManifestSource:
    """Episodes listed in a JSONL or CSV manifest of your own rollouts.

    Args:
        path: the manifest file, ``.jsonl`` / ``.ndjson`` / ``.json`` (JSON lines) or ``.csv``
            (header row first).
        name: the default subset name (``source`` column); default ``manifest/<file stem>``.
        thresholds: the (t1, t2, t3, t4) of `rubric.progress_to_score` for the ``progress`` column.

    Raises:
        SourceError: the file is missing, is not a file, has an unknown extension, or (CSV) has no
            header or a header without ``video``, ``task`` and ``reward``/``progress`` columns.
        ValueError: an empty name or bad thresholds.

    Example:
        >>> source = ManifestSource("rollouts/manifest.csv")  # doctest: +SKIP
        >>> source.name  # doctest: +SKIP
        'manifest/manifest'
        >>> ep = next(iter(source.episodes()))  # doctest: +SKIP
        >>> ep.video, ep.task, ep.reward, ep.episode_id  # doctest: +SKIP
        ('/abs/rollouts/clips/ep0.mp4', 'open the drawer', 5, '2')
    """

    def __init__(
        self,
        path: str | Path,
        name: str | None = None,
        thresholds: Sequence[float] = rubric.DEFAULT_PROGRESS_THRESHOLDS,
    ) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in JSON_LINES_SUFFIXES + _CSV_SUFFIXES:
            raise SourceError(
                f"manifest {str(self.path)!r} has an unknown extension {self.path.suffix!r}: "
                "use .jsonl (JSON lines) or .csv"
            )
        if not self.path.exists():
            raise SourceError(f"manifest {str(self.path)!r} does not exist")
        if not self.path.is_file():
            raise SourceError(f"manifest {str(self.path)!r} is not a file")
        if name is None:
            name = f"manifest/{self.path.stem}"
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"source name must be a non-empty string, got {name!r}")
        rubric.progress_to_score(0.0, thresholds)  # raises ValueError naming bad thresholds, now
        self.name = name
        self.thresholds = tuple(thresholds)
        self.format = "csv" if suffix in _CSV_SUFFIXES else "jsonl"
        self.folder = self.path.parent.resolve()
        if self.format == "csv":
            self._csv_header()  # a CSV without a usable header is unusable as a whole: fail now

    def __repr__(self) -> str:
        return f"ManifestSource({str(self.path)!r}, name={self.name!r})"

    def episodes(self) -> Iterator[Episode | Skip]:
        """Every row in file order, as an Episode or a Skip naming ``<file> line N``."""
        rows = self._csv_rows() if self.format == "csv" else self._jsonl_rows()
        seen: dict[tuple[str, str], int] = {}
        for line, row in rows:
            where = f"{self.path.name} line {line}"
            source, episode_id = self.name, str(line)
            try:
                if isinstance(row, _RowError):
                    raise row
                source, episode_id = self._identity(row, line, where)
                first = seen.get((source, episode_id))
                if first is not None:
                    raise _RowError(
                        f"duplicate episode_id {episode_id!r} of source {source!r} in {where} "
                        f"(first at line {first})"
                    )
                episode = self._episode(row, line, where, source, episode_id)
            except _RowError as exc:
                yield Skip(source, episode_id, str(exc))
                continue
            seen[(source, episode_id)] = line
            yield episode

    # -- reading ------------------------------------------------------------------------------

    def _jsonl_rows(self) -> Iterator[tuple[int, dict[str, Any] | _RowError]]:
        data = self.path.read_bytes()
        for number, raw in enumerate(data.splitlines(), start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            where = f"{self.path.name} line {number}"
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield number, _RowError(f"not UTF-8 in {where} (byte {raw[exc.start]:#04x})")
                continue
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                yield number, _RowError(f"invalid JSON in {where}: {exc.msg} (column {exc.colno})")
                continue
            except (ValueError, RecursionError) as exc:  # nested too deep, a number of 5,000 digits
                yield number, _RowError(f"unreadable JSON in {where}: {str(exc)[:120] or type(exc).__name__}")
                continue
            if not isinstance(row, dict):
                yield number, _RowError(f"not a JSON object in {where} (got {type(row).__name__})")
                continue
            yield number, row

    def _csv_text(self) -> str:
        data = self.path.read_bytes()
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        # Keep undecodable bytes as lone surrogates so one bad row does not sink the whole file.
        return data.decode("utf-8", errors="surrogateescape")

    def _csv_header(self) -> list[str]:
        reader = csv.reader(io.StringIO(self._csv_text(), newline=""))
        header = next((r for r in reader if r), None)
        if header is None:
            raise SourceError(f"manifest {str(self.path)!r} is empty: expected a header row")
        if any(_SURROGATE.search(cell) for cell in header):
            raise SourceError(f"manifest {str(self.path)!r} header (line {reader.line_num}) is not UTF-8")
        header = [cell.strip() for cell in header]
        missing = [c for c in ("video", "task") if c not in header]
        if missing:
            raise SourceError(f"manifest {str(self.path)!r} header has no {' or '.join(missing)} column")
        if "reward" not in header and "progress" not in header:
            raise SourceError(f"manifest {str(self.path)!r} header needs a reward or a progress column")
        return header

    def _csv_rows(self) -> Iterator[tuple[int, dict[str, Any] | _RowError]]:
        header = self._csv_header()
        reader = csv.reader(io.StringIO(self._csv_text(), newline=""))
        header_seen = False
        end = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # a cell over the csv module's field limit (128 KiB), a NUL
                start, end = end + 1, reader.line_num
                yield start, _RowError(f"unreadable CSV in {self.path.name} line {start}: {exc}")
                continue
            start, end = end + 1, reader.line_num
            if not cells or all(not c.strip() for c in cells):
                continue
            if not header_seen:
                header_seen = True
                continue
            where = f"{self.path.name} line {start}"
            if any(_SURROGATE.search(c) for c in cells):
                yield start, _RowError(f"not UTF-8 in {where}")
                continue
            if len(cells) != len(header):
                yield start, _RowError(f"{where} has {len(cells)} fields, the header has {len(header)}")
                continue
            # An empty CSV cell means "not given", like a missing key in JSON lines.
            yield start, {k: v for k, v in zip(header, cells, strict=True) if v.strip()}

    # -- one row ------------------------------------------------------------------------------

    def _identity(self, row: dict[str, Any], line: int, where: str) -> tuple[str, str]:
        source = row.get("source")
        if source is None:
            source = self.name
        elif not isinstance(source, str) or not source.strip():
            raise _RowError(f"source must be a non-empty string in {where}, got {shown(source)}")
        episode_id = row.get("episode_id")
        if episode_id is None:
            episode_id = str(line)
        elif isinstance(episode_id, bool) or not isinstance(episode_id, (str, int)):
            raise _RowError(f"episode_id must be a string or an integer in {where}, got {shown(episode_id)}")
        elif not str(episode_id).strip():
            raise _RowError(f"episode_id is empty in {where}")
        elif len(str(episode_id)) > 200:
            raise _RowError(
                f"episode_id is {len(str(episode_id))} characters long in {where}; the limit is 200"
            )
        return source.strip(), str(episode_id).strip()

    def _episode(self, row: dict[str, Any], line: int, where: str, source: str, episode_id: str) -> Episode:
        task = row.get("task")
        if task is None:
            raise _RowError(f"task is missing in {where}")
        if not isinstance(task, str) or not task.strip():
            raise _RowError(
                f"task is empty in {where}" if isinstance(task, str) else f"task must be text in {where}"
            )
        video = self._video(row.get("video"), where)
        reward, progress = self._label(row.get("reward"), row.get("progress"), where)
        camera = row.get("camera")
        if camera is not None and (not isinstance(camera, str) or not camera.strip()):
            raise _RowError(f"camera must be a non-empty string in {where}, got {shown(camera)}")
        try:
            return Episode(
                video=video,
                task=task,
                reward=reward,
                progress=progress,
                source=source,
                episode_id=episode_id,
                camera=camera.strip() if camera else None,
                provenance={"manifest": self.path.name, "line": line},
            )
        except EpisodeError as exc:
            raise _RowError(f"{exc} in {where}") from None

    def _video(self, value: Any, where: str) -> str:
        if value is None:
            raise _RowError(f"video is missing in {where}")
        if not isinstance(value, str) or not value.strip():
            raise _RowError(f"video must be a non-empty path in {where}, got {shown(value)}")
        path_text = value if len(value) <= 120 else value[:117] + "..."
        try:
            given = Path(value.strip())
            # resolve() follows symlinks, so a link inside the folder that points out is caught too.
            resolved = (given if given.is_absolute() else self.folder / given).resolve()
            if not resolved.is_relative_to(self.folder):
                raise _RowError(f"path escapes the manifest folder in {where}: {path_text!r}")
            if not resolved.is_file():
                raise _RowError(f"video file not found in {where}: {path_text!r}")
        except (OSError, ValueError, RuntimeError) as exc:  # a NUL, a name too long, a symlink loop
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)[:120]
            raise _RowError(f"video path is unusable in {where}: {path_text!r} ({why})") from None
        return str(resolved)

    def _label(self, reward_value: Any, progress_value: Any, where: str) -> tuple[int, float | None]:
        reward = None if reward_value is None else _reward(reward_value, where)
        progress = score = None
        if progress_value is not None:
            value = _number(progress_value, "progress", where)
            try:
                score = rubric.progress_to_score(value, self.thresholds)
            except ValueError as exc:
                raise _RowError(f"{exc} in {where}") from None
            progress = value / 100.0 if value > 1.0 else value  # the reading progress_to_score used
        if reward is None and score is None:
            raise _RowError(f"reward and progress are both missing in {where}: give one")
        if reward is not None and score is not None and reward != score:
            raise _RowError(
                f"reward {reward} disagrees with progress {progress_value!r} (score {score}) in {where}"
            )
        return (reward if reward is not None else score), progress  # type: ignore[return-value]


def _reward(value: Any, where: str) -> int:
    """An integer 1..5 from a JSON number or CSV text; 4.0 is 4, 3.5 and "high" are refused."""
    number: float | int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if _INTEGER.fullmatch(text) and len(text) < 20:
            number = int(text)
        else:
            try:
                parsed = float(text)
            except ValueError:
                parsed = math.nan
            if parsed.is_integer():
                number = int(parsed)
    if number is None or not rubric.MIN_SCORE <= number <= rubric.MAX_SCORE:
        raise _RowError(f"reward must be an integer 1..5 in {where}, got {shown(value)}")
    return int(number)


def _number(value: Any, column: str, where: str) -> float:
    if isinstance(value, bool):
        raise _RowError(f"{column} must be a number in {where}, got {shown(value)}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise _RowError(f"{column} must be a number in {where}, got {shown(value)}")
