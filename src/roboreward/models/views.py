"""Multi-view rows: one rollout seen by several cameras, given to a model as separate videos in one prompt.

A built dataset holds one row per camera (``roboarena_cameras: [left, right]`` gives a RoboArena run
two rows that share ``episode_id``, task and reward and differ in ``camera``). A checkpoint trained
with ``cameras`` in its inference settings (`roboreward.models.settings.InferenceSettings.cameras`)
takes every one of those cameras in one prompt, in that recorded order: training groups the rows of
one run (`group_views`), scoring and the bench hand it a `Views`.

    >>> views = Views(("left", "right"), ("l.mp4", "r.mp4"))
    >>> views.select(["right"]).videos
    ('r.mp4',)
    >>> group_views([("ep1", 3), ("ep1", 3), ("ep2", 5)], ["right", "left", "left"], ["left", "right"])
    ([[1, 0]], 1)
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Views", "checked_cameras", "group_views", "shown_videos"]


def checked_cameras(cameras: Sequence[str], what: str = "cameras") -> tuple[str, ...]:
    """``cameras`` as a tuple of distinct non-empty names, in order; else a ValueError naming ``what``.

    Args:
        cameras: camera names.
        what: how the error names the input (``"cameras"``, ``"--cameras"``, a file's name).
    """
    if isinstance(cameras, str):
        raise ValueError(f"{what} must be a list of camera names, got the string {cameras!r}")
    names = tuple(cameras)
    if not names:
        raise ValueError(f"{what} is empty: name at least one camera")
    bad = [c for c in names if not isinstance(c, str) or not c.strip() or c != c.strip()]
    if bad:
        raise ValueError(f"{what}: camera names must be non-empty strings without spaces around, got {bad}")
    repeated = sorted({c for c in names if names.count(c) > 1})
    if repeated:
        raise ValueError(f"{what} names {repeated} more than once")
    return names


@dataclass(frozen=True)
class Views:
    """One rollout as several cameras saw it: each camera's video, in a fixed order.

    Anything `roboreward.models.local.RewardModel.score` takes as a video (a path, bytes, a
    ``{"bytes", "path"}`` row, frames) can be one camera's video.

    Args:
        cameras: the camera names, distinct, in the order the videos are given.
        videos: one video per camera.
    """

    cameras: tuple[str, ...]
    videos: tuple[Any, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "cameras", checked_cameras(self.cameras, "Views cameras"))
        object.__setattr__(self, "videos", tuple(self.videos))
        if len(self.videos) != len(self.cameras):
            raise ValueError(f"Views has {len(self.videos)} videos for cameras {list(self.cameras)}")

    def select(self, cameras: Sequence[str]) -> Views:
        """These cameras' videos, in the order of ``cameras``; a ValueError names any that is missing."""
        missing = [c for c in cameras if c not in self.cameras]
        if missing:
            raise ValueError(f"no video of camera(s) {missing}: this rollout has {list(self.cameras)}")
        return Views(tuple(cameras), tuple(self.videos[self.cameras.index(c)] for c in cameras))


def group_views(
    keys: Sequence[Hashable], cameras_of_rows: Sequence[str | None], cameras: Sequence[str]
) -> tuple[list[list[int]], int]:
    """Rows of one rollout gathered into multi-view rows: per rollout, its rows' indices in camera order.

    Rows belong to one rollout when their ``keys`` are equal (a dataset's episode id, task, reward,
    ...). A rollout with a row for every camera of ``cameras`` gives one group; rows of other cameras are
    left out, and so is a rollout that lacks one of ``cameras`` (counted). A second row of the same
    rollout and camera is left out (the first one is kept). Groups come in the order of their first row.

    Args:
        keys: one per row: what makes two rows the same rollout.
        cameras_of_rows: one per row: the camera of its video (None: not named).
        cameras: the cameras a group must have, in the order its indices are given.

    Returns:
        (groups, incomplete): the index lists, and how many rollouts lacked a camera.
    """
    cameras = checked_cameras(cameras)
    if len(keys) != len(cameras_of_rows):
        raise ValueError(f"got {len(keys)} keys but {len(cameras_of_rows)} cameras")
    found: dict[Hashable, dict[str, int]] = {}
    for index, (key, camera) in enumerate(zip(keys, cameras_of_rows, strict=True)):
        slots = found.setdefault(key, {})
        if camera in cameras and camera not in slots:
            slots[camera] = index
    groups = [[slots[c] for c in cameras] for slots in found.values() if len(slots) == len(cameras)]
    return groups, len(found) - len(groups)


def shown_videos(item: Any, cameras: tuple[str, ...] | None, name: str) -> tuple[list[Any], str | None]:
    """The videos of one episode a model taking ``cameras`` is shown, in order, and a notice to give.

    Several ``cameras`` (a multi-view model): ``item`` must be a `Views` holding each of them; they
    come in the order of ``cameras``. Otherwise one video: a plain video as it is; from a `Views`, the
    model's own camera (``cameras[0]``, else the rollout's first camera in the recorded order), with a
    notice (for the caller to give once) when the rollout has more cameras than that one.

    Args:
        item: a video, frames, or a `Views`.
        cameras: the model's settings' cameras (None: not recorded).
        name: the model's name, for the messages.

    Raises ValueError when a multi-view model is given a plain video, or any model a `Views` without
    its camera.
    """
    if cameras is not None and len(cameras) > 1:
        if not isinstance(item, Views):
            raise ValueError(
                f"{name} takes the cameras {list(cameras)} in one prompt: give each episode as Views of "
                f"those cameras, got {type(item).__name__}"
            )
        return list(item.select(cameras).videos), None
    if not isinstance(item, Views):
        return [item], None
    own = cameras[0] if cameras else item.cameras[0]
    notice = None
    if len(item.cameras) > 1:
        why = f"trained on {own!r}" if cameras else "none recorded: the first in the recorded order"
        notice = (
            f"{name} takes one camera ({why}): it is shown the {own!r} camera of rollouts with cameras "
            f"{', '.join(item.cameras)}, not all of them (said once)"
        )
    return list(item.select([own]).videos), notice
