"""Readers that turn robot corpora into `Episode`s.

Every source yields `Episode` for each usable entry and `Skip` (with the reason) for each entry it
leaves out, so the build report can say what was dropped and why. A source that is unusable as a
whole (malformed `meta/info.json`, an unknown LeRobot version, a missing folder) raises
`SourceError` when it is constructed, before any work starts.

- `lerobot.LeRobotSource`: Open X-Embodiment ports in LeRobot format (v2.1 and v3.0), a local folder
  or a Hub dataset id. Every episode is a success: reward 5, progress 1.0.
- `roboarena.RoboArenaSource`: a RoboArena data dump; evaluator partial_success -> reward.
- `manifest.ManifestSource`: your own data, as a JSONL or CSV manifest.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

from roboreward.episode import Episode, Skip

__all__ = ["EpisodeSource", "SourceError", "shown"]


class SourceError(ValueError):
    """A source that cannot be read at all; the message names the file and what is wrong."""


@runtime_checkable
class EpisodeSource(Protocol):
    """What the builder needs from a source."""

    #: The subset name rows get in the `source` column, e.g. ``oxe/toto`` or ``roboarena``.
    name: str

    def episodes(self) -> Iterator[Episode | Skip]:
        """Every entry of the source, in a stable order, as an Episode or a Skip."""
        ...


def shown(value: Any, limit: int = 120) -> str:
    """``repr(value)``, cut to ``limit`` characters so a hostile value (a 5,000-character
    cell, a 5,000-digit number) cannot fill a skip reason or an error message.

    >>> shown("x" * 500, limit=10)
    "'xxxxxx..."
    """
    try:
        text = repr(value)
    except ValueError:  # an int of more than 4,300 digits
        text = f"<{type(value).__name__} too long to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
