"""What `roboreward annotate` leaves beside a LeRobot dataset for training: frame-aligned signals in
LeRobot's offline-scoring sidecar format, and per-episode sample weights for reward-weighted BC.

``frame_signals.parquet`` follows LeRobot's frame-signal contract (``lerobot.rewards.scoring``,
format ``lerobot.frame_signals``, schema version 1): one row per scored frame, the columns
``index`` (the dataset-wide frame index), ``episode_index`` and ``frame_index`` (int64, rows ordered
by episode then frame), then one column per signal, sorted by name:

- ``progress``: the expected score rescaled to 0..1, ``(expected - 1) / 4``;
- ``success_probability``: the probability the model gives the top score (5: task complete);
- ``expected_score``: the expected rubric score, 1..5.

Each row is a point of the episode's progress curve (``--curve-points K``): the episode cut after
the frame it names, scored (the last point is the whole episode). The Parquet schema metadata
carries, under LeRobot's keys (``lerobot.reward_scoring.*``), the format, the schema version, the
signal descriptors (description, direction, bounds, unit, comparison scope, NaN policy), the sorted
episode selection and the provenance: model id, prompt preset and version, the model's settings,
the curve points, the camera, the dataset and its LeRobot version.

``sample_weights.parquet``: ``episode_index``, ``expected`` and ``weight`` per scored episode, for a
training loop that weights each episode's loss (reward-weighted behaviour cloning). The mapping
is exponential in the expected score, ``w = exp((expected - 5) / T)``, normalised so the weights
average 1 (the loss keeps its scale); a small temperature ``T`` keeps mostly the best episodes, a
large one weights all nearly alike.

    >>> [round(w, 3) for w in episode_weights([5.0, 4.0, 1.0], temperature=1.0)]
    [2.164, 0.796, 0.04]
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "FORMAT",
    "FRAME_SIGNALS",
    "SAMPLE_WEIGHTS",
    "SCHEMA_VERSION",
    "SIGNALS",
    "episode_weights",
    "frame_signals_table",
    "read_frame_signals",
    "write_sample_weights",
    "write_table",
]

FRAME_SIGNALS = "frame_signals.parquet"
SAMPLE_WEIGHTS = "sample_weights.parquet"
#: LeRobot's format name and schema version (lerobot.rewards.scoring.schema).
FORMAT = "lerobot.frame_signals"
SCHEMA_VERSION = 1
_KEY = "lerobot.reward_scoring."
IDENTITY = ("index", "episode_index", "frame_index")

#: The signals and their descriptors, in LeRobot's descriptor fields.
SIGNALS: dict[str, dict[str, Any]] = {
    "expected_score": {
        "description": "expected RoboReward rubric score (1..5) of the episode cut after this frame",
        "direction": "higher",
        "bounds": [1.0, 5.0],
        "unit": "rubric score",
        "comparison_scope": "global",
        "allow_nan": False,
    },
    "progress": {
        "description": "task progress up to this frame: the expected rubric score rescaled, "
        "(expected - 1) / 4",
        "direction": "higher",
        "bounds": [0.0, 1.0],
        "unit": None,
        "comparison_scope": "global",
        "allow_nan": False,
    },
    "success_probability": {
        "description": "probability the model gives the top score (5: task complete) to the episode cut "
        "after this frame",
        "direction": "higher",
        "bounds": [0.0, 1.0],
        "unit": "probability",
        "comparison_scope": "global",
        "allow_nan": False,
    },
}


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def curve_frames(times: Sequence[float], timestamps: np.ndarray) -> list[int]:
    """The frame each curve point ends after: the last frame starting before the point's time.

    >>> curve_frames([0.5, 1.0], np.arange(10) / 10)
    [4, 9]

    Args:
        times: the points' times, in seconds from the episode's start.
        timestamps: each frame's timestamp (seconds from the episode's start), ascending.
    """
    return [max(0, int(np.searchsorted(timestamps, t - 1e-6, side="right")) - 1) for t in times]


def frame_signals_table(
    rows: Sequence[Mapping[str, Any]], frames_of: Any, provenance: Mapping[str, Any]
) -> pa.Table:
    """The sidecar's table for scored rows (each with ``episode_index``, ``curve_times``, ``curve`` (the
    expected scores) and ``curve_success``), its metadata attached.

    Args:
        rows: annotate's rows, any order.
        frames_of: ``episode_index -> pa.Table`` with ``index``, ``frame_index``, ``timestamp``
            (`roboreward.sources.lerobot.reader.LeRobotSource.episode_frames`).
        provenance: what made the signals (model, prompt preset and version, settings, ...).
    """
    columns: dict[str, list[Any]] = {name: [] for name in (*IDENTITY, *sorted(SIGNALS))}
    episodes = sorted(int(r["episode_index"]) for r in rows)
    by_episode = {int(r["episode_index"]): r for r in rows}
    for episode in episodes:
        row, frames = by_episode[episode], frames_of(episode)
        picked = curve_frames(row["curve_times"], frames["timestamp"].to_numpy())
        last: dict[int, int] = {}
        for point, frame in enumerate(picked):
            last[frame] = point  # two points on one frame (K above the frame count): the later one
        index, frame_index = frames["index"].to_pylist(), frames["frame_index"].to_pylist()
        for frame, point in sorted(last.items()):
            expected = float(row["curve"][point])
            columns["index"].append(int(index[frame]))
            columns["episode_index"].append(episode)
            columns["frame_index"].append(int(frame_index[frame]))
            columns["expected_score"].append(expected)
            columns["progress"].append((expected - 1.0) / 4.0)
            columns["success_probability"].append(float(row["curve_success"][point]))
    table = pa.table(
        {
            **{name: pa.array(columns[name], pa.int64()) for name in IDENTITY},
            **{name: pa.array(columns[name], pa.float64()) for name in sorted(SIGNALS)},
        }
    )
    metadata = {
        f"{_KEY}format": FORMAT.encode(),
        f"{_KEY}schema_version": str(SCHEMA_VERSION).encode(),
        f"{_KEY}provenance": _canonical(dict(provenance)),
        f"{_KEY}descriptors": _canonical(SIGNALS),
        f"{_KEY}episode_indices": _canonical(episodes),
    }
    return table.replace_schema_metadata(metadata)


def read_frame_signals(path: str | os.PathLike[str]) -> tuple[pa.Table, dict[str, Any]]:
    """A sidecar and its metadata (``format``, ``schema_version``, ``provenance``, ``descriptors``,
    ``episode_indices``), checked against the format.

    Args:
        path: a ``frame_signals.parquet``.

    Raises:
        ValueError: not this format or version, or its columns differ from its descriptors.
    """
    table = pq.read_table(path)
    raw = table.schema.metadata or {}
    if raw.get(f"{_KEY}format".encode()) != FORMAT.encode():
        raise ValueError(f"{path} is not a {FORMAT} sidecar")
    meta = {
        key: json.loads(raw[f"{_KEY}{key}".encode()])
        for key in ("schema_version", "provenance", "descriptors", "episode_indices")
    }
    meta["format"] = FORMAT
    if meta["schema_version"] != SCHEMA_VERSION:
        raise ValueError(
            f"{path}: schema version {meta['schema_version']}, this reader knows {SCHEMA_VERSION}"
        )
    if list(table.column_names) != [*IDENTITY, *sorted(meta["descriptors"])]:
        raise ValueError(f"{path}: columns {table.column_names} do not match its descriptors")
    return table, meta


def episode_weights(expected: Sequence[float], temperature: float) -> list[float]:
    """Reward-weighted BC weights: ``exp((expected - 5) / temperature)``, normalised to mean 1.

    Args:
        expected: each episode's expected score (1..5).
        temperature: how sharply the best episodes are favoured (> 0).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be above 0, got {temperature}")
    raw = [math.exp((e - 5.0) / temperature) for e in expected]
    mean = sum(raw) / len(raw) if raw else 1.0
    return [w / mean for w in raw]


def write_table(table: pa.Table, path: Path) -> None:
    """Write a Parquet file atomically (beside, then renamed)."""
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def write_sample_weights(path: Path, rows: Sequence[Mapping[str, Any]], temperature: float) -> None:
    """Write ``sample_weights.parquet`` for scored rows (``episode_index``, ``expected``).

    Args:
        path: the file.
        rows: annotate's scored rows, in episode order.
        temperature: `episode_weights`' temperature.
    """
    expected = [float(r["expected"]) for r in rows]
    table = pa.table(
        {
            "episode_index": pa.array([int(r["episode_index"]) for r in rows], pa.int64()),
            "expected": pa.array(expected, pa.float64()),
            "weight": pa.array(episode_weights(expected, temperature), pa.float64()),
        }
    )
    mapping = {
        "weight": "exp((expected - 5) / temperature), normalised to mean 1",
        "temperature": temperature,
    }
    write_table(table.replace_schema_metadata({"roboreward.sample_weights": _canonical(mapping)}), path)
