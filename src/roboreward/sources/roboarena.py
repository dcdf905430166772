"""`RoboArenaSource`: a RoboArena data dump, with the evaluators' partial_success as the reward.

RoboArena (arXiv:2506.18123) publishes its pairwise real-robot evaluations as data dumps on the Hub
(``RoboArena/DataDump_08-05-2025``, ``RoboArena/DataDump_02-03-2026``)::

    DataDump_<date>/
    ├── global_metadata.yaml
    └── evaluation_sessions/
        └── <session>/
            ├── metadata.yaml          language_instruction, policies: {A: {policy_name, partial_success}}
            ├── A_<policy_name>/       one rollout per policy: <stem>_left.mp4, <stem>_right.mp4,
            │                          <stem>_wrist.mp4 (2025); left_shoulder.mp4, right_shoulder.mp4,
            │                          wrist.mp4 (2026), plus proprioception (.npz, not read here)
            └── B_<policy_name>/ ...   (C_... when a session compared more than two policies)

Each policy run becomes one `Episode` per configured camera. The evaluator's partial_success (a
fraction in [0, 1], or a percent in [0, 100] as the paper's protocol states it) is the episode's
progress, and `rubric.progress_to_score` turns it into the 1..5 reward. All cameras of one run share a
split group. An entry that cannot be labelled without guessing (no metadata, no instruction, no or a
malformed partial_success, no video, two videos for one camera) becomes a `Skip` naming the file.

The unit of partial_success is decided once for the whole dump, never per value (read per value, a
1 % run would be a full success and a 0.5 % run a 3): ``progress_unit="auto"`` reads every value as a
percent when any value of the dump is above 1, else every value as a fraction; ``"percent"`` and
``"fraction"`` say it outright, and a dump whose values contradict the unit given (a value above 1
with ``"fraction"``) is refused with a `SourceError` naming the file. `RoboArenaSource.progress_unit`
says what was decided and why (the builder records it in ``build_report.json``).

    >>> source = RoboArenaSource("DataDump_08-05-2025", cameras=("left", "right"))  # doctest: +SKIP
    >>> next(iter(source.episodes()))  # doctest: +SKIP
    Episode(video='.../evaluation_sessions/<session>/A_pi0_droid/..._left.mp4',
            task='put the marker in the cup', reward=4, source='roboarena', episode_id='<session>/A', ...)
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml

from roboreward import rubric
from roboreward.episode import Episode, EpisodeError, Skip
from roboreward.sources import SourceError

__all__ = ["CAMERAS", "PROGRESS_UNITS", "ProgressUnit", "RoboArenaSource"]

#: The cameras of a DROID station as RoboArena names them: two exterior views and the wrist view.
CAMERAS = ("left", "right", "wrist")

#: How a dump's partial_success values are read: ``auto`` (percent when any value is above 1, else
#: fraction), ``percent`` (every value in [0, 100]) or ``fraction`` (every value in [0, 1]).
ProgressUnit = Literal["auto", "percent", "fraction"]
PROGRESS_UNITS: tuple[str, ...] = ("auto", "percent", "fraction")

# Video names per camera across dump versions (matched on the lower-cased file name). Hidden files
# (macOS `._x_left.mp4` resource forks) are never candidates.
_CAMERA_PATTERNS: dict[str, tuple[str, ...]] = {
    "left": ("*_left.mp4", "left.mp4", "*_left_shoulder.mp4", "left_shoulder.mp4"),
    "right": ("*_right.mp4", "right.mp4", "*_right_shoulder.mp4", "right_shoulder.mp4"),
    "wrist": ("*_wrist.mp4", "wrist.mp4"),
}

_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class RoboArenaSource:
    """Episodes of a RoboArena data dump, labelled by the evaluators' partial_success.

    Args:
        root: the dump folder (the one holding ``evaluation_sessions/``).
        cameras: which views to read, any of ``left``, ``right``, ``wrist``; each gives one row per
            policy run, all rows of a run in the same split group.
        thresholds: the (t1, t2, t3, t4) of `rubric.progress_to_score`.
        name: the subset name rows get in the ``source`` column.
        progress_unit: the unit of every partial_success of the dump: ``auto`` (percent when any
            value is above 1, else fraction), ``percent`` or ``fraction``.

    Raises:
        ValueError: an unknown camera, no camera, bad thresholds, an empty name or an unknown
            progress unit.
        SourceError: ``root`` is not a folder or has no ``evaluation_sessions`` folder; and, from
            `progress_unit` or `episodes`, a dump whose values contradict the unit given.

    Example:
        >>> source = RoboArenaSource("DataDump_08-05-2025")  # doctest: +SKIP
        >>> rows = [e for e in source.episodes() if isinstance(e, Episode)]  # doctest: +SKIP
        >>> rows[0].episode_id, rows[0].camera, rows[0].progress, rows[0].reward  # doctest: +SKIP
        ('0a1b.../A', 'left', 0.8, 4)
    """

    def __init__(
        self,
        root: str | Path,
        cameras: Sequence[str] = ("left",),
        thresholds: Sequence[float] = rubric.DEFAULT_PROGRESS_THRESHOLDS,
        name: str = "roboarena",
        progress_unit: ProgressUnit = "auto",
    ) -> None:
        if isinstance(cameras, str):
            cameras = (cameras,)
        cameras = tuple(dict.fromkeys(cameras))
        if not cameras:
            raise ValueError(f"cameras is empty: choose from {CAMERAS}")
        unknown = [c for c in cameras if c not in CAMERAS]
        if unknown:
            raise ValueError(f"unknown RoboArena camera(s) {unknown}: choose from {CAMERAS}")
        rubric.progress_to_score(0.0, thresholds)  # raises ValueError naming bad thresholds, now
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"source name must be a non-empty string, got {name!r}")
        if progress_unit not in PROGRESS_UNITS:
            raise ValueError(
                f"RoboArena progress unit must be one of {', '.join(PROGRESS_UNITS)}, got {progress_unit!r}"
            )
        self.unit_asked: str = progress_unit
        self._unit: dict[str, Any] | None = None
        self.root = Path(root)
        self.cameras: tuple[str, ...] = cameras
        self.thresholds = tuple(thresholds)
        self.name = name
        if not self.root.is_dir():
            raise SourceError(f"RoboArena dump {str(self.root)!r} is not a folder")
        self.sessions_dir = self.root / "evaluation_sessions"
        if not self.sessions_dir.is_dir():
            raise SourceError(
                f"RoboArena dump {str(self.root)!r} has no evaluation_sessions folder "
                "(expected <dump>/evaluation_sessions/<session>/metadata.yaml)"
            )

    def __repr__(self) -> str:
        return (
            f"RoboArenaSource({str(self.root)!r}, cameras={self.cameras!r}, name={self.name!r}, "
            f"progress_unit={self.unit_asked!r})"
        )

    @property
    def progress_unit(self) -> dict[str, Any]:
        """The unit every partial_success of the dump is read in, decided once from all its values.

        Returns ``{"unit", "asked", "values", "above_1", "max"}``: the unit used (``percent`` or
        ``fraction``), the unit asked for (``auto``, ``percent``, ``fraction``), and what the
        decision saw: how many readable values in [0, 100], how many of them above 1, the largest.
        Values that are no number or out of [0, 100] do not take part (their runs become Skips).

        Raises:
            SourceError: ``fraction`` was asked for but a value is above 1 (the message names its
                file and policy, and how many values are above 1).
        """
        if self._unit is None:
            self._unit = self._decide_unit()
        return dict(self._unit)

    def episodes(self) -> Iterator[Episode | Skip]:
        """Every policy run x camera, sessions and policies in sorted order, as Episode or Skip.

        Raises:
            SourceError: the dump's values contradict the progress unit asked for (before any entry).
        """
        percent = self.progress_unit["unit"] == "percent"
        for session_dir in self._sessions():
            yield from self._session(session_dir, percent)

    def _sessions(self) -> list[Path]:
        return sorted(p for p in self.sessions_dir.iterdir() if p.is_dir() and not p.name.startswith("."))

    def _decide_unit(self) -> dict[str, Any]:
        values: list[tuple[float, Any, str, Path]] = []  # (value, raw, policy id, metadata file)
        for session_dir in self._sessions():
            meta_path = session_dir / "metadata.yaml"
            metadata = _read_metadata(meta_path)
            policies = metadata.get("policies") if isinstance(metadata, dict) else None
            if not isinstance(policies, dict):
                continue  # the whole session becomes a Skip
            for key in sorted(policies, key=str):
                entry = policies[key]
                raw = entry.get("partial_success") if isinstance(entry, dict) else None
                value = _number(raw)
                if isinstance(value, float) and 0.0 <= value <= 100.0:
                    values.append((value, raw, str(key), meta_path))
        above = [v for v in values if v[0] > 1.0]
        decision: dict[str, Any] = {
            "unit": self.unit_asked,
            "asked": self.unit_asked,
            "values": len(values),
            "above_1": len(above),
            "max": max((v[0] for v in values), default=None),
        }
        if self.unit_asked == "auto":
            decision["unit"] = "percent" if above else "fraction"
        elif self.unit_asked == "fraction" and above:
            value, raw, policy_id, meta_path = above[0]
            files = len({v[3] for v in above})
            raise SourceError(
                f"RoboArena dump {str(self.root)!r} mixes progress units: the unit given is fraction "
                f"(partial_success in [0, 1]) but policy {policy_id}'s partial_success {raw!r} in "
                f"{meta_path} is above 1, a percent ({len(above)} of {len(values)} values above 1, "
                f"in {files} file(s)); if the dump is in percent, give the progress unit percent "
                "(--roboarena-progress-unit percent) or auto"
            )
        return decision

    # -- one session -------------------------------------------------------------------------

    def _session(self, session_dir: Path, percent: bool) -> Iterator[Episode | Skip]:
        session = session_dir.name
        meta_path = session_dir / "metadata.yaml"
        metadata = _read_metadata(meta_path)
        if isinstance(metadata, str):
            yield Skip(self.name, session, metadata)
            return
        instruction = metadata.get("language_instruction")
        problem = None
        if instruction is None:
            problem = "language_instruction is missing"
        elif not isinstance(instruction, str):
            problem = f"language_instruction must be a string, got {instruction!r}"
        elif not instruction.strip():
            problem = "language_instruction is empty"
        policies = metadata.get("policies")
        if problem is None and not isinstance(policies, dict):
            problem = "policies is missing" if policies is None else "policies is not a mapping"
        if problem is not None:
            yield Skip(self.name, session, f"{problem} in {meta_path}")
            return
        assert isinstance(instruction, str) and isinstance(policies, dict)
        for key in sorted(policies, key=str):
            yield from self._policy(session_dir, meta_path, instruction, str(key), policies[key], percent)

    # -- one policy run ----------------------------------------------------------------------

    def _policy(
        self, session_dir: Path, meta_path: Path, instruction: str, policy_id: str, entry: Any, percent: bool
    ) -> Iterator[Episode | Skip]:
        session = session_dir.name
        episode_id = f"{session}/{policy_id}"

        def skip(reason: str) -> Skip:
            return Skip(self.name, episode_id, reason)

        if not isinstance(entry, dict):
            yield skip(f"policy {policy_id} is not a mapping in {meta_path}")
            return
        policy_name = entry.get("policy_name")
        if not isinstance(policy_name, str) or not policy_name.strip():
            yield skip(f"policy {policy_id}: policy_name is missing or empty in {meta_path}")
            return
        raw = entry.get("partial_success")
        label = _label(raw, self.thresholds, percent)
        if isinstance(label, str):
            yield skip(f"policy {policy_id}: partial_success {label} in {meta_path}")
            return
        progress, reward = label

        folder = session_dir / f"{policy_id}_{policy_name}"
        if not folder.is_dir():
            yield skip(f"policy folder {folder} is missing")
            return
        videos = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        provenance = {
            "session": session,
            "policy_id": policy_id,
            "policy_name": policy_name,
            "partial_success": raw,
        }
        for camera in self.cameras:
            patterns = _CAMERA_PATTERNS[camera]
            found = [n for n in videos if any(fnmatch.fnmatchcase(n.lower(), p) for p in patterns)]
            if not found:
                yield skip(f"no {camera} video ({', '.join(patterns)}) in {folder}")
                continue
            if len(found) > 1:
                yield skip(f"{len(found)} videos match camera {camera} in {folder}: {', '.join(found)}")
                continue
            try:
                yield Episode(
                    video=str((folder / found[0]).absolute()),
                    task=instruction,
                    reward=reward,
                    progress=progress,
                    source=self.name,
                    episode_id=episode_id,
                    camera=camera,
                    group=f"{self.name}/{episode_id}",
                    provenance=dict(provenance),
                )
            except EpisodeError as exc:
                yield skip(f"{exc} ({meta_path})")


def _read_metadata(path: Path) -> dict[str, Any] | str:
    """The session's metadata mapping, or what is wrong with it (a Skip reason naming the file)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return f"{path} is missing"
    except OSError as exc:
        return f"{path} cannot be read: {exc.strerror or exc}"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return f"{path} is not UTF-8 (byte {data[exc.start]:#04x} at offset {exc.start})"
    try:
        metadata = yaml.load(text, Loader=_SafeLoader)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or type(exc).__name__
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        return f"{path} is not valid YAML: {problem}{where}"
    if not isinstance(metadata, dict):
        return f"{path} is not a YAML mapping (got {type(metadata).__name__})"
    return metadata


def _number(raw: Any) -> float | str:
    """A raw partial_success as a float, or what is wrong with it."""
    if raw is None:
        return "is missing"
    if isinstance(raw, bool):
        return f"is not a number: {raw!r}"
    if isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            return f"is not a number: {raw!r}"
    elif isinstance(raw, (int, float)):
        value = float(raw)
    else:
        return f"is not a number: {raw!r}"
    if math.isnan(value):
        return "is NaN"
    return value


def _label(raw: Any, thresholds: Sequence[float], percent: bool) -> tuple[float, int] | str:
    """(progress as a fraction, reward) from a raw partial_success in the dump's unit, or what is
    wrong with it."""
    value = _number(raw)
    if isinstance(value, str):
        return value
    if not 0.0 <= value <= (100.0 if percent else 1.0):
        unit = "a percent in [0, 100]" if percent else "a fraction in [0, 1]"
        return f"{raw!r} is out of range (the dump's unit: {unit})"
    # The dump's unit, decided once (`RoboArenaSource.progress_unit`): never per value.
    reward = rubric.progress_to_score(value, thresholds, percent=percent)
    progress = value / 100.0 if percent else value
    return progress, reward
