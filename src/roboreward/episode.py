"""`Episode`: the one record every stage passes on (sources -> relabelers -> builder).

An Episode is one row of RoboReward before export: a reference to a rollout video (a file, or a
time range of a file for LeRobot v3.0's concatenated videos), the task text, the 1..5 reward, the
progress it came from, where it came from, and how it was made. It validates itself on creation,
so a bad label can never travel further than the reader that made it.

Task text is cleaned on creation, for every source alike: ANSI escape sequences (``ESC [ ... m``
and the like) and every other control character (NUL, BEL, DEL, C1 controls ...) are removed,
line breaks and tabs become spaces, and runs of whitespace one space. A task with nothing left
is refused (`EpisodeError`, so the reader skips the entry with its reason).

    >>> ep = Episode(video="ep0.mp4", task="open the drawer", reward=5, progress=1.0,
    ...              source="oxe/toto", episode_id="0")
    >>> ep.group, ep.augmentation, ep.original_task
    ('oxe/toto/0', 'original', 'open the drawer')
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from roboreward import rubric
from roboreward.rubric import MAX_SCORE, MIN_SCORE

__all__ = ["AUGMENTATIONS", "Episode", "EpisodeError", "Skip", "clean_text"]

#: How a row was made. `original` rows come straight from a source.
AUGMENTATIONS = ("original", "rewrite", "counterfactual", "paraphrase", "temporal_clip")


#: ANSI / VT100 escape sequences: CSI (``ESC [`` parameters, a final byte), OSC (``ESC ]`` up to
#: BEL or ``ESC \``), and two-character escapes.
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")


def clean_text(text: str) -> str:
    r"""``text`` without ANSI escape sequences, control characters or lone surrogates (which no file
    can store as UTF-8), whitespace collapsed.

    >>> clean_text("open the\x00 drawer\x1b[31m now\x1b[0m\n")
    'open the drawer now'
    >>> clean_text("open \ud800the drawer")
    'open the drawer'
    """
    text = _ANSI_ESCAPE.sub("", text)
    kept = "".join(c for c in text if c.isspace() or unicodedata.category(c) not in ("Cc", "Cs"))
    return " ".join(kept.split())  # tabs and line breaks (controls too) become single spaces


class EpisodeError(ValueError):
    """An episode that cannot become a row (empty task, reward out of range, ...)."""


@dataclass(frozen=True)
class Skip:
    """A source entry that was left out, and why: collected into the build report."""

    source: str
    episode_id: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Episode:
    """One rollout video with its task and end-of-episode reward.

    Attributes:
        video: path of the video file (absolute, or as the source gives it).
        task: the instruction the reward is judged against.
        reward: the rubric score 1..5 of the episode's final state for ``task``.
        source: subset name, e.g. ``oxe/berkeley_autolab_ur5`` or ``roboarena``.
        episode_id: the episode's id inside its source.
        progress: task progress in [0, 1] the reward was derived from, or None.
        camera: which camera the video shows (``image``, ``left``, ...), or None.
        video_start, video_end: the episode's time range in seconds inside ``video`` (LeRobot
            v3.0 stores many episodes in one file); None means the whole file.
        original_task: the source's task text before any rewrite or relabel (default: ``task``).
        augmentation: one of `AUGMENTATIONS`.
        group: the split group: every row derived from one source rollout shares it, so all of
            them land in the same split (default: ``source/episode_id``).
        provenance: free-form JSON-serialisable facts on how the row was made (dataset repo,
            relabel level, checker verdict, model ids, ...).
    """

    video: str
    task: str
    reward: int
    source: str
    episode_id: str
    progress: float | None = None
    camera: str | None = None
    video_start: float | None = None
    video_end: float | None = None
    original_task: str | None = None
    augmentation: str = "original"
    group: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        where = f"episode {self.episode_id!r} of {self.source!r}"
        if not isinstance(self.source, str) or not self.source.strip():
            raise EpisodeError(f"source is empty for episode {self.episode_id!r}")
        if not isinstance(self.episode_id, str) or not self.episode_id.strip():
            raise EpisodeError(f"episode_id is empty in source {self.source!r}")
        if not isinstance(self.task, str) or not clean_text(self.task):
            raise EpisodeError(f"task is empty in {where}")
        object.__setattr__(self, "task", clean_text(self.task))
        if len(self.task) > rubric.MAX_TASK_CHARS:
            raise EpisodeError(
                f"task is {len(self.task)} characters long in {where}; the limit is {rubric.MAX_TASK_CHARS}"
            )
        if isinstance(self.reward, bool) or not isinstance(self.reward, int):
            raise EpisodeError(f"reward must be an integer 1..5 in {where}, got {self.reward!r}")
        if not MIN_SCORE <= self.reward <= MAX_SCORE:
            raise EpisodeError(f"reward must be 1..5 in {where}, got {self.reward}")
        if self.progress is not None:
            if isinstance(self.progress, bool) or not isinstance(self.progress, (int, float)):
                raise EpisodeError(f"progress must be a number in {where}, got {self.progress!r}")
            if math.isnan(self.progress) or not 0.0 <= self.progress <= 1.0:
                raise EpisodeError(f"progress must be in [0, 1] in {where}, got {self.progress}")
            object.__setattr__(self, "progress", float(self.progress))
        if not isinstance(self.video, str) or not self.video:
            raise EpisodeError(f"video path is empty in {where}")
        if self.video_start is not None and self.video_end is not None and self.video_end <= self.video_start:
            raise EpisodeError(
                f"video time range is empty in {where}: [{self.video_start}, {self.video_end})"
            )
        if self.augmentation not in AUGMENTATIONS:
            raise EpisodeError(
                f"augmentation must be one of {AUGMENTATIONS} in {where}, got {self.augmentation!r}"
            )
        if self.original_task is None:
            object.__setattr__(self, "original_task", self.task)
        elif isinstance(self.original_task, str):
            object.__setattr__(self, "original_task", clean_text(self.original_task))
        if self.group is None:
            object.__setattr__(self, "group", f"{self.source}/{self.episode_id}")
        try:
            json.dumps(self.provenance)
        except TypeError as exc:
            raise EpisodeError(f"provenance must be JSON-serialisable in {where}: {exc}") from None

    @property
    def id(self) -> str:
        """A stable row id: readable prefix + a hash of everything that makes the row distinct."""
        key = json.dumps(
            [
                self.source,
                self.episode_id,
                self.camera,
                self.video_start,
                self.video_end,
                self.augmentation,
                self.task,
                self.reward,
            ]
        )
        digest = hashlib.sha1(key.encode()).hexdigest()[:12]
        return f"{self.source}/{self.episode_id}/{digest}"

    def replace(self, **changes: Any) -> Episode:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict, the inverse of `from_dict`."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Episode:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise EpisodeError(f"unknown episode fields: {sorted(unknown)}")
        return cls(**data)
