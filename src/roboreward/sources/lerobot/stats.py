"""LeRobot's feature statistics (``meta/stats.json`` and the per-episode stats), computed as LeRobot does.

LeRobot normalises a policy's inputs with a dataset's statistics: per episode (v2.1's
``meta/episodes_stats.jsonl``, v3.0's ``stats/<feature>/<stat>`` columns of ``meta/episodes``) and for
the whole dataset (``meta/stats.json``, which `LeRobotDataset.meta.stats` and the multi-dataset loader
read). `roboreward.sources.lerobot.filter` recomputes them for the episodes a filtered copy keeps.

The definitions follow LeRobot's ``lerobot/datasets/compute_stats.py`` (``compute_episode_stats``,
``get_feature_stats``, ``RunningQuantileStats``, ``aggregate_stats``):

- one episode, a numeric feature: over its frames, per dimension, ``min``, ``max``, ``mean``, ``std``
  (the square root of mean(x²) - mean², in the data's precision promoted to at least float32),
  ``count`` (the frames) and the quantiles ``q01 q10 q50 q90 q99`` read off a 5000-bin histogram
  spanning [min, max] with linear interpolation inside the bin; an episode of one frame gets its
  mean as every quantile. A scalar feature's stats have shape (1,), a vector's (D,).
- one episode, a video or image feature: the same per colour channel over the pixels of about 100
  frames spread evenly over the episode (``rint(linspace(0, n - 1, k))``, ``k = max(min(100, n),
  min(int(n ** 0.75), 10000))``), frames of 300 pixels or more shrunk by striding to about 150,
  divided by 255, shape (3, 1, 1); ``count`` is the number of frames sampled.
- the dataset: ``count`` summed, ``mean`` weighted by count, ``std`` by the parallel-variance rule,
  ``min`` / ``max`` over episodes, and the quantiles kept as a conservative envelope (the least
  ``q01 q10 q50``, the greatest ``q90 q99``) over the episodes that all have them.

    >>> import numpy as np
    >>> stats = episode_feature_stats(np.array([1.0, 2.0, 3.0, 4.0], np.float32))
    >>> stats["mean"].tolist(), stats["count"].tolist(), stats["min"].shape
    ([2.5], [4], (1,))
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "BASIC_STATS",
    "QUANTILES",
    "STAT_KEYS",
    "aggregate_feature_stats",
    "aggregate_stats",
    "episode_feature_stats",
    "episode_image_stats",
    "image_sample_indices",
    "stats_from_json",
    "stats_to_json",
]

#: The quantiles LeRobot keeps, and their keys (q01 ... q99).
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
QUANTILE_KEYS = tuple(f"q{round(q * 100):02d}" for q in QUANTILES)
BASIC_STATS = ("min", "max", "mean", "std", "count")
#: Every statistic of a feature, in the order LeRobot writes them.
STAT_KEYS = (*BASIC_STATS, *QUANTILE_KEYS)
#: Histogram bins behind the quantiles.
QUANTILE_BINS = 5000

#: dtypes LeRobot computes no statistics for.
NO_STATS_DTYPES = ("string", "language")
#: Visual dtypes: statistics per colour channel, from sampled frames.
VISUAL_DTYPES = ("video", "image")


def _quantile(hist: np.ndarray, edges: np.ndarray, target: float) -> float:
    """The value below which ``target`` of the histogram's counts lie, interpolated in its bin."""
    cumulative = np.cumsum(hist)
    at = int(np.searchsorted(cumulative, target))
    if at == 0:
        return float(edges[0])
    if at >= len(cumulative):
        return float(edges[-1])
    before = cumulative[at - 1]
    inside = cumulative[at] - before
    if inside == 0:
        return float(edges[at])
    return float(edges[at] + (target - before) / inside * (edges[at + 1] - edges[at]))


def _column_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """Stats over the rows of ``values`` (rows, dims): one value per dim (count: the rows)."""
    rows = values.shape[0]
    if rows < 2:
        mean = np.mean(values, axis=0)
        stats = {
            "min": np.min(values, axis=0),
            "max": np.max(values, axis=0),
            "mean": mean,
            "std": np.std(values, axis=0),
            "count": np.array([rows]),
        }
        stats.update({key: mean.copy() for key in QUANTILE_KEYS})
        return stats
    low, high = np.min(values, axis=0), np.max(values, axis=0)
    mean = np.mean(values, axis=0)
    variance = np.mean(values**2, axis=0) - mean**2
    stats = {
        "min": low,
        "max": high,
        "mean": mean,
        "std": np.sqrt(np.maximum(0, variance)),
        "count": np.array([rows]),
    }
    quantiles: list[list[float]] = [[] for _ in QUANTILES]
    for dim in range(values.shape[1]):
        edges = np.linspace(low[dim] - 1e-10, high[dim] + 1e-10, QUANTILE_BINS + 1)
        hist, _ = np.histogram(values[:, dim], bins=edges)
        for slot, q in enumerate(QUANTILES):
            quantiles[slot].append(_quantile(hist.astype(float), edges, q * rows))
    for key, column in zip(QUANTILE_KEYS, quantiles, strict=True):
        stats[key] = np.array(column)
    return stats


def _promoted(values: np.ndarray) -> np.ndarray:
    return values.astype(np.result_type(values.dtype, np.float32), copy=False)


def episode_feature_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """One episode's stats of a numeric feature: ``values`` is (frames,) or (frames, dims).

    Shapes as LeRobot writes them: (1,) for a scalar feature, (dims,) for a vector; ``count`` (1,).
    """
    values = _promoted(np.asarray(values))
    if values.ndim == 1:
        return _column_stats(values.reshape(-1, 1))
    return _column_stats(values.reshape(values.shape[0], -1))


def image_sample_indices(length: int) -> np.ndarray:
    """Which of an episode's ``length`` frames LeRobot's image stats look at, evenly spread."""
    if length < 1:
        raise ValueError(f"an episode has at least one frame, got {length}")
    wanted = max(min(100, length), min(int(length**0.75), 10_000))
    return np.round(np.linspace(0, length - 1, wanted)).astype(int)


def _downsampled(frames: np.ndarray) -> np.ndarray:
    """(frames, channels, height, width) shrunk by striding when a side is 300 pixels or more."""
    _, _, height, width = frames.shape
    if max(width, height) < 300:
        return frames
    step = int(width / 150) if width > height else int(height / 150)
    return frames[:, :, ::step, ::step]


def episode_image_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """One episode's stats of a video or image feature from its sampled RGB frames (T, H, W, C) uint8:
    per channel, in [0, 1], shape (C, 1, 1); ``count`` is T."""
    frames = np.asarray(frames)
    if frames.ndim != 4:
        raise ValueError(f"frames must be (T, H, W, C), got shape {frames.shape}")
    chosen = _downsampled(frames.transpose(0, 3, 1, 2))
    pixels = _promoted(chosen.transpose(0, 2, 3, 1).reshape(-1, chosen.shape[1]))
    stats = _column_stats(pixels)
    stats["count"] = np.array([frames.shape[0]])
    return {k: v if k == "count" else (v / 255.0).reshape(-1, 1, 1) for k, v in stats.items()}


def decode_images(cells: Iterable[Any]) -> np.ndarray:
    """Frames of an ``image`` feature as stored in the data parquet (``{"bytes", "path"}`` cells)."""
    from PIL import Image

    frames = []
    for cell in cells:
        data = cell.get("bytes") if isinstance(cell, Mapping) else cell
        if not isinstance(data, (bytes, bytearray)):
            raise ValueError("an image cell holds no bytes")
        with Image.open(io.BytesIO(data)) as image:
            frames.append(np.asarray(image.convert("RGB")))
    return np.stack(frames)


def aggregate_feature_stats(episodes: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One feature's stats over several episodes (each a mapping of stat -> array)."""
    if not episodes:
        raise ValueError("no stats to aggregate")
    means = np.stack([np.asarray(s["mean"]) for s in episodes])
    variances = np.stack([np.asarray(s["std"]) ** 2 for s in episodes])
    counts = np.stack([np.asarray(s["count"]) for s in episodes])
    total = counts.sum(axis=0)
    while counts.ndim < means.ndim:
        counts = np.expand_dims(counts, axis=-1)
    mean = (means * counts).sum(axis=0) / total
    variance = ((variances + (means - mean) ** 2) * counts).sum(axis=0) / total
    result = {
        "min": np.min(np.stack([np.asarray(s["min"]) for s in episodes]), axis=0),
        "max": np.max(np.stack([np.asarray(s["max"]) for s in episodes]), axis=0),
        "mean": mean,
        "std": np.sqrt(variance),
        "count": total,
    }
    for key in (k for k in episodes[0] if k.startswith("q") and k[1:].isdigit()):
        if all(key in s for s in episodes):
            values = np.stack([np.asarray(s[key]) for s in episodes])
            # Exact quantiles of the union cannot be had from the parts: LeRobot keeps a conservative
            # envelope (the lower quantiles' least, the upper quantiles' greatest).
            result[key] = np.min(values, axis=0) if int(key[1:]) <= 50 else np.max(values, axis=0)
    return result


def aggregate_stats(
    episodes: Sequence[Mapping[str, Mapping[str, np.ndarray]]],
) -> dict[str, dict[str, np.ndarray]]:
    """The dataset's stats from its episodes' (feature -> stat -> array): every feature any has."""
    features = sorted({feature for stats in episodes for feature in stats})
    return {
        feature: aggregate_feature_stats([stats[feature] for stats in episodes if feature in stats])
        for feature in features
    }


def stats_to_json(stats: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Stats as LeRobot's JSON files hold them: nested lists of numbers."""
    return {
        feature: {key: np.asarray(value).tolist() for key, value in by_stat.items()}
        for feature, by_stat in stats.items()
    }


def stats_from_json(stats: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, np.ndarray]]:
    """Stats read from JSON or a parquet row, as arrays."""
    return {
        feature: {key: np.asarray(value) for key, value in by_stat.items()}
        for feature, by_stat in stats.items()
        if isinstance(by_stat, Mapping)
    }
