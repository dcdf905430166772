"""LeRobot's on-disk dataset format as this toolkit reads it: file names, templates, and checked reads.

The format is described by data (``meta/info.json``: features, fps, path templates), as LeRobot's
own metadata classes read it; `roboreward.sources.lerobot.reader` (the reader) and
`roboreward.sources.lerobot.filter` (the filtered copy) follow it through this module. Every read
here checks what it reads and names the file on failure (`roboreward.sources.SourceError`).
"""

from __future__ import annotations

import json
import math
import re
import string
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from roboreward.sources import SourceError, shown

__all__ = [
    "EPISODE_INDEX_RE",
    "INFO_PATH",
    "MAX_EPISODE_INDEX",
    "MAX_TEMPLATE_WIDTH",
    "REWARDS_PATH",
    "SUPPORTED_VERSIONS",
    "V2_EPISODES_PATH",
    "V2_FIELDS",
    "V2_TASKS_PATH",
    "V3_EPISODES_DIR",
    "V3_FIELDS",
    "V3_TASKS_PATH",
    "V21_CHUNKS_SIZE",
    "V21_DATA_PATH",
    "V21_VIDEO_PATH",
    "Unreadable",
    "as_float",
    "as_index",
    "as_int",
    "check_template",
    "choose_video_key",
    "dataset_name",
    "default_video_key",
    "entry_index",
    "episode_index",
    "first_text",
    "inside",
    "instruction_text",
    "listed_tasks",
    "parse_jsonl_line",
    "read_info",
    "relative",
    "reward_label",
    "shown",
    "video_keys",
    "write_episode_rewards",
]

INFO_PATH = "meta/info.json"
#: LeRobot v2.1's file layout as its writers spell it in info.json (the readers take info.json's own).
V21_DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
V21_VIDEO_PATH = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
V21_CHUNKS_SIZE = 1000
V2_EPISODES_PATH = "meta/episodes.jsonl"
V2_TASKS_PATH = "meta/tasks.jsonl"
V3_EPISODES_DIR = "meta/episodes"
V3_TASKS_PATH = "meta/tasks.parquet"
#: Per-episode rewards beside LeRobot's own metadata, one JSON line per episode:
#: ``{"episode_index": 3, "reward": 2, "progress": 0.31}`` (reward: the rubric score, an integer
#: 1..5; progress: optional, a fraction in [0, 1]). The simulators write it with their ground truth;
#: `roboreward.sources.lerobot.reader.LeRobotSource` labels episodes with it when it is there.
REWARDS_PATH = "meta/episode_rewards.jsonl"

#: An entry's episode index, read from a raw line of episodes.jsonl even when the line is not JSON
#: (at most 19 digits: a longer number is no int64 index, and converting 5,000 digits is refused).
EPISODE_INDEX_RE = re.compile(rb'"episode_index"\s*:\s*(\d{1,19})(?!\d)')

_TOO_MANY_DIGITS = f"a number over {sys.get_int_max_str_digits()} digits"

#: The largest episode index: LeRobot stores indices as int64.
MAX_EPISODE_INDEX = 2**63 - 1

#: The widest field a path template may ask for (``{episode_index:06d}`` is 6): a width of 1e9 would
#: make every path a gigabyte string.
MAX_TEMPLATE_WIDTH = 32

#: codebase_version -> on-disk layout this reader follows.
SUPPORTED_VERSIONS = {"v2.0": "v2", "v2.1": "v2", "v3.0": "v3"}

#: Template fields each layout fills (besides ``video_key``).
V2_FIELDS = ("episode_chunk", "episode_index")
V3_FIELDS = ("chunk_index", "file_index")

#: Camera names that film the gripper rather than the scene; the default camera avoids them.
CLOSE_UP_WORDS = ("wrist", "hand")


def default_video_key(video_keys: Sequence[str]) -> str:
    """The camera a source uses unless told otherwise: the first scene camera, else the first camera.

    A scene camera is one whose key names no wrist or hand: the reward is judged on the scene.

    >>> default_video_key(["observation.images.wrist_image", "observation.images.image"])
    'observation.images.image'
    >>> default_video_key(["observation.images.hand_left", "observation.images.wrist"])
    'observation.images.hand_left'
    """
    if not video_keys:
        raise ValueError("no video keys to choose from")
    for key in video_keys:
        if not any(word in key.lower() for word in CLOSE_UP_WORDS):
            return key
    return video_keys[0]


@dataclass(frozen=True)
class Unreadable:
    """A tasks-table entry that exists but cannot be read, and why."""

    reason: str


# -- helpers ------------------------------------------------------------------------------------


def read_info(path: Path, label: str) -> dict[str, Any]:
    """meta/info.json, checked for what every layout needs; SourceError names the file otherwise."""
    if not path.is_file():
        raise SourceError(f"{label}: file not found (not a LeRobot dataset?)")
    try:
        info = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"{label}: not valid JSON ({exc})") from None
    except RecursionError:
        raise SourceError(f"{label}: not readable JSON (nested too deep)") from None
    except ValueError:  # a number of 5,000 digits
        raise SourceError(f"{label}: not readable JSON ({_TOO_MANY_DIGITS})") from None
    if not isinstance(info, dict):
        raise SourceError(f"{label}: expected a JSON object, got {type(info).__name__}")
    missing = [k for k in ("codebase_version", "fps", "features", "video_path") if k not in info]
    if missing:
        raise SourceError(f"{label}: missing key(s) {', '.join(missing)}")
    version = info["codebase_version"]
    if not isinstance(version, str) or version not in SUPPORTED_VERSIONS:
        raise SourceError(
            f"{label}: unknown LeRobot version {shown(version)} (supported: {', '.join(SUPPORTED_VERSIONS)})"
        )
    fps = info["fps"]
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
        raise SourceError(f"{label}: fps must be a positive number, got {shown(fps)}")
    if not isinstance(info["features"], dict):
        raise SourceError(f"{label}: features must be an object, got {type(info['features']).__name__}")
    data_path = info.get("data_path")
    if data_path is not None and not isinstance(data_path, str):
        raise SourceError(f"{label}: data_path must be a path template string, got {shown(data_path)}")
    return info


def video_keys(info: dict[str, Any], label: str) -> list[str]:
    keys = [k for k, ft in info["features"].items() if isinstance(ft, dict) and ft.get("dtype") == "video"]
    if not keys:
        raise SourceError(f"{label}: no video features (no feature has dtype 'video')")
    if not info["video_path"]:
        raise SourceError(f"{label}: video_path is empty although features {keys} are videos")
    return keys


def choose_video_key(video_keys: list[str], asked: str | None, label: str) -> str:
    if asked is None:
        return default_video_key(video_keys)
    if asked in video_keys:
        return asked
    short = [k for k in video_keys if k.rsplit(".", 1)[-1] == asked]
    if len(short) == 1:
        return short[0]
    raise SourceError(
        f"{label}: video_key {asked!r} is not a video feature; available: {', '.join(video_keys)}"
    )


def check_template(template: Any, fields: Sequence[str], label: str, key: str) -> None:
    """Refuse a path template that is not plain ``{field}`` / ``{field:06d}`` replacement fields.

    Only the named ``fields`` may appear, with no attribute or item access (``{episode_index.real}``,
    ``{episode_index[0]}``), no conversion (``!r``), no nested field in a format spec, and no width
    over `MAX_TEMPLATE_WIDTH` (a width of 1e9 would allocate a gigabyte per path).

    >>> check_template("episode_{episode_index:06d}.mp4", ("episode_index",), "info.json", "video_path")
    >>> try:
    ...     check_template("{episode_index:099999d}", ("episode_index",), "info.json", "video_path")
    ... except SourceError as exc:
    ...     print(exc)  # doctest: +NORMALIZE_WHITESPACE
    info.json: video_path template '{episode_index:099999d}' cannot be filled with episode_index
    (field width 99999 is over 32)
    """
    if not isinstance(template, str) or not template:
        raise SourceError(f"{label}: {key} must be a path template string, got {shown(template)}")

    def refuse(why: str) -> SourceError:
        return SourceError(
            f"{label}: {key} template {shown(template)} cannot be filled with {', '.join(fields)} ({why})"
        )

    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise refuse(str(exc)) from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in fields:
            raise refuse(f"unknown field {shown(name, 60)}")
        if conversion is not None:
            raise refuse(f"conversion !{conversion} in field {name}")
        if spec and ("{" in spec or "}" in spec):
            raise refuse(f"nested field in the format of {name}")
        widths = [int(w) for w in re.findall(r"\d{1,12}", spec or "")]
        if len(spec or "") > 16 or any(w > MAX_TEMPLATE_WIDTH for w in widths):
            too_wide = max(widths, default=0)
            raise refuse(f"field width {too_wide} is over {MAX_TEMPLATE_WIDTH}")
    values: dict[str, Any] = {f: 0 for f in fields}
    if "video_key" in values:
        values["video_key"] = "camera"
    try:
        template.format(**values)
    except (KeyError, IndexError, ValueError, TypeError, AttributeError) as exc:
        raise refuse(repr(exc)) from None


def dataset_name(folder_or_repo: str) -> str:
    name = folder_or_repo.rstrip("/").rsplit("/", 1)[-1]
    return name.removesuffix("_lerobot") or name


def parse_jsonl_line(raw: bytes, where: str) -> tuple[Any, str | None]:
    """One JSONL line: the parsed value (None if unparseable) and the problem, if any."""
    problem = None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="replace")
        problem = f"non-UTF-8 bytes in {where}"
    try:
        return json.loads(text), problem
    except json.JSONDecodeError as exc:
        return None, problem or f"not valid JSON in {where} ({exc.msg})"
    except RecursionError:
        return None, problem or f"not readable JSON in {where} (nested too deep)"
    except ValueError:  # a number of 5,000 digits
        return None, problem or f"not readable JSON in {where} ({_TOO_MANY_DIGITS})"


def episode_index(value: Any) -> int | None:
    """An episode index as LeRobot stores it (an int64 >= 0), or None.

    >>> episode_index(3), episode_index(3.0), episode_index(-1), episode_index(10**300), episode_index("3")
    (3, 3, None, None, None)
    """
    index = as_int(value)
    return index if index is not None and 0 <= index <= MAX_EPISODE_INDEX else None


def entry_index(entry: Any, raw: bytes) -> int | None:
    """episode_index of a JSONL entry; read from the raw bytes when the line does not parse."""
    if isinstance(entry, dict):
        return episode_index(entry.get("episode_index"))
    match = EPISODE_INDEX_RE.search(raw)
    return episode_index(int(match.group(1))) if match else None


def listed_tasks(value: Any) -> list[Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    try:
        return list(value)
    except TypeError:
        return [value]


def first_text(tasks: list[Any] | None) -> str | None:
    for task in tasks or ():
        if isinstance(task, str) and task.strip():
            return task
    return None


def instruction_text(value: Any, where: str) -> tuple[str | None, str | None]:
    """A language_instruction cell as text (OXE ports may keep TFDS bytes), or the problem."""
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None, f"non-UTF-8 bytes in {where}"
    if isinstance(value, str) and value.strip():
        return value, None
    return None, None


def as_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, np.integer):  # from pandas
        return int(value)
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    return None


def as_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def as_index(value: Any) -> int:
    index = as_int(value)
    if index is None:
        raise ValueError(f"episode indices must be integers, got {value!r}")
    return index


def inside(path: Path, root: Path) -> bool:
    """Whether the (absolute, normalised) ``path`` lies in ``root``, judged lexically: symlinks are
    not resolved, so a Hub snapshot's links into the cache's blob store count as inside.

    >>> import os
    >>> root = Path("/data/toto")
    >>> inside(root / "videos/a.mp4", root), inside(Path(os.path.abspath(root / "../other/a.mp4")), root)
    (True, False)
    """
    return path == root or root in path.parents


def relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def reward_label(reward: Any, progress: Any, where: str) -> tuple[int, float | None] | str:
    """(reward 1..5, progress in [0, 1] or None) from a rewards sidecar or column, or what is wrong.

    >>> reward_label(4.0, None, "line 1"), reward_label(3, 0.5, "line 2")
    ((4, None), (3, 0.5))
    >>> reward_label(3.5, None, "line 3")
    'reward 3.5 is not an integer 1..5 in line 3'
    """
    score = as_int(reward)
    if score is None or not 1 <= score <= 5:
        return f"reward {reward!r} is not an integer 1..5 in {where}"
    if progress is None:
        return score, None
    value = as_float(progress)
    if value is None or not 0.0 <= value <= 1.0:
        return f"progress {progress!r} is not a fraction in [0, 1] in {where}"
    return score, value


def write_episode_rewards(root: Path, rewards: Sequence[tuple[int, int, float | None]]) -> Path:
    """Write `REWARDS_PATH` under ``root``: one line per (episode_index, reward, progress)."""
    lines = []
    for index, reward, progress in rewards:
        entry: dict[str, Any] = {"episode_index": int(index), "reward": int(reward)}
        if progress is not None:
            entry["progress"] = float(progress)
        lines.append(json.dumps(entry))
    path = root / REWARDS_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path
