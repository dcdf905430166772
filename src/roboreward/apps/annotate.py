"""Score every episode of a LeRobot dataset with a reward model; optionally keep only the good ones.

    roboreward annotate --lerobot lerobot/toto --model teetone/RoboReward-4B --out toto_scores
    roboreward annotate --lerobot ./toto_lerobot --model runs/3b --out scores --curve-points 8 \\
        --keep-min-score 4 --filtered-out ./toto_good

`annotate` reads the dataset with `roboreward.sources.lerobot.reader.LeRobotSource` (v2.0/v2.1/v3.0; the
camera chosen as the builder chooses it: the first scene camera unless ``--video-key``), scores each
episode (a v3.0 episode is its segment of the concatenated file) in batches with
`RewardModel.score_batch`, and writes into ``--out``:

- ``annotations.parquet``: one row per scored episode, keyed by ``episode_index``: ``task``,
  ``score``, ``probs`` (the five probabilities), ``expected``, ``reward``, ``prompt`` (the preset),
  ``model`` (the model id) and, with ``--curve-points K``, ``curve`` (the expected score at K points).
- ``score_histogram.png``; ``report.json``: counts, and every episode left out with its reason (an
  empty task, a missing or unreadable video): bad episodes are reported, never fatal.
- ``annotations.partial.jsonl``: the rows as they are scored, a batch at a time. A run that is
  killed resumes from it: batches are fixed by position in the episode list, so a re-run scores the
  same batches and writes the same ``annotations.parquet`` as a run that was never interrupted.

With ``--keep-min-score N --filtered-out DIR`` it also writes a copy of the dataset keeping only the
episodes scored N or more (`roboreward.sources.lerobot.filter.filter_lerobot`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from roboreward import rubric, video
from roboreward.episode import Episode, Skip
from roboreward.sources.lerobot.filter import filter_lerobot
from roboreward.sources.lerobot.reader import LeRobotSource

__all__ = ["ANNOTATIONS", "AnnotateConfig", "annotate_lerobot"]

ANNOTATIONS = "annotations.parquet"
PARTIAL = "annotations.partial.jsonl"
REPORT = "report.json"
HISTOGRAM = "score_histogram.png"


@dataclass
class AnnotateConfig:
    """What ``roboreward annotate`` does.

    Args:
        lerobot: a LeRobot dataset folder or Hub id (v2.0, v2.1 or v3.0).
        model: a reward-model checkpoint folder or Hub id.
        out: output folder.
        video_key: the camera (None: the builder's choice, the first scene camera).
        batch_size: episodes per forward pass.
        curve_points: also store a progress curve of this many points per episode (None: no curve).
        keep_min_score: with ``filtered_out``, keep the episodes scored at least this (1..5).
        filtered_out: where to write the filtered copy of the dataset.
        device: e.g. ``cpu`` or ``cuda`` (None: cuda if available).
        dtype: e.g. ``bfloat16`` (None: bfloat16 on a GPU, else float32).
    """

    lerobot: str
    model: str
    out: str = "annotate_out"
    video_key: str | None = None
    batch_size: int = 8
    curve_points: int | None = None
    keep_min_score: int | None = None
    filtered_out: str | None = None
    device: str | None = None
    dtype: str | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.curve_points is not None and self.curve_points < 1:
            raise ValueError(f"curve_points must be >= 1, got {self.curve_points}")
        if (self.keep_min_score is None) != (self.filtered_out is None):
            raise ValueError("give --keep-min-score and --filtered-out together")
        if self.keep_min_score is not None and self.keep_min_score not in rubric.SCORES:
            raise ValueError(f"keep_min_score must be one of 1..5, got {self.keep_min_score}")


def _model_id(spec: str) -> str:
    """The model as the annotations name it: a Hub id, or a local folder's name (never a local path)."""
    path = Path(spec)
    return path.name if path.exists() else spec


def _run_key(model_id: str, settings: Any, curve_points: int | None, video_key: str) -> str:
    record = {"model": model_id, "settings": settings.to_dict(), "curve": curve_points, "camera": video_key}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def _read_partial(path: Path, key: str) -> dict[int, dict[str, Any]]:
    """Rows already scored by this model and settings; a torn last line (a killed run) is ignored."""
    rows: dict[int, dict[str, Any]] = {}
    if not path.is_file():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):
            row = json.loads(line)
            if isinstance(row, dict) and row.get("run_key") == key:
                rows[int(row["episode_index"])] = row
    return rows


def _score_chunk(model: Any, chunk: Sequence[Episode], curve_points: int | None) -> list[dict[str, Any]]:
    """Rows for a batch of episodes; an episode whose video cannot be read gets an ``error``."""
    videos, tasks = [e.video for e in chunk], [e.task for e in chunk]
    starts, ends = [e.video_start for e in chunk], [e.video_end for e in chunk]
    try:
        results: list[Any] = model.score_batch(videos, tasks, batch_size=len(chunk), starts=starts, ends=ends)
    except video.VideoDecodeError:  # one bad video: the rest one by one, the bad one reported
        results = []
        for e in chunk:
            try:
                results.append(model.score(e.video, e.task, start=e.video_start, end=e.video_end))
            except video.VideoDecodeError as exc:
                results.append(exc)
    rows = []
    for episode, result in zip(chunk, results, strict=True):
        row: dict[str, Any] = {"episode_index": int(episode.episode_id), "task": episode.task}
        if isinstance(result, Exception):
            row["error"] = f"video could not be read: {result}"
        else:
            row.update(result.to_dict())
            if curve_points is not None:
                curve = model.progress_curve(
                    episode.video,
                    episode.task,
                    points=curve_points,
                    batch_size=curve_points,
                    start=episode.video_start,
                    end=episode.video_end,
                )
                row["curve"] = curve.expected
        rows.append(row)
    return rows


def _write_parquet(path: Path, rows: list[dict[str, Any]], prompt: str, model_id: str, curve: bool) -> None:
    columns: dict[str, pa.Array] = {
        "episode_index": pa.array([r["episode_index"] for r in rows], pa.int64()),
        "task": pa.array([r["task"] for r in rows], pa.string()),
        "score": pa.array([r["score"] for r in rows], pa.int64()),
        "probs": pa.array([r["probs"] for r in rows], pa.list_(pa.float64(), 5)),
        "expected": pa.array([r["expected"] for r in rows], pa.float64()),
        "reward": pa.array([r["reward"] for r in rows], pa.float64()),
        "prompt": pa.array([prompt] * len(rows), pa.string()),
        "model": pa.array([model_id] * len(rows), pa.string()),
    }
    if curve:
        columns["curve"] = pa.array([r["curve"] for r in rows], pa.list_(pa.float64()))
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(pa.table(columns), tmp)
    os.replace(tmp, path)


def _plot_histogram(path: Path, scores: Sequence[int], model_id: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = [sum(1 for s in scores if s == k) for k in rubric.SCORES]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.bar(rubric.SCORES, counts, color="#4C72B0")
    ax.set_xticks(rubric.SCORES)
    ax.set_xlabel("score (most likely)")
    ax.set_ylabel("episodes")
    ax.set_title(f"{len(scores)} episodes scored by {model_id}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def annotate_lerobot(config: AnnotateConfig, model: Any = None, progress: bool = True) -> dict[str, Any]:
    """Score every episode of ``config.lerobot`` and write the annotations (see the module docstring).

    Args:
        config: what to do.
        model: an already loaded `roboreward.models.local.RewardModel` (None: load ``config.model``).
        progress: show a progress bar.

    Returns:
        The report written to ``report.json``: counts, the episodes left out and why, the filtered copy.
    """
    source = LeRobotSource(config.lerobot, video_key=config.video_key)
    if model is None:
        from roboreward.models.local import RewardModel

        model = RewardModel.from_pretrained(config.model, device=config.device, dtype=config.dtype)
    model_id = _model_id(config.model)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    items = list(source.episodes())
    episodes = [e for e in items if isinstance(e, Episode)]
    skipped = [{"episode": s.episode_id, "reason": s.reason} for s in items if isinstance(s, Skip)]
    key = _run_key(model_id, model.settings, config.curve_points, source.video_key)
    done = _read_partial(out / PARTIAL, key)
    with (
        open(out / PARTIAL, "a", encoding="utf-8") as partial,
        tqdm(total=len(episodes), desc="annotating", unit="episode", disable=not progress) as bar,
    ):
        for start in range(0, len(episodes), config.batch_size):
            chunk = episodes[start : start + config.batch_size]
            if all(int(e.episode_id) in done for e in chunk):
                bar.update(len(chunk))
                continue
            rows = _score_chunk(model, chunk, config.curve_points)
            # One write per batch, flushed to disk: a kill leaves whole batches, or a torn last line.
            partial.write("".join(json.dumps({**r, "run_key": key}) + "\n" for r in rows))
            partial.flush()
            os.fsync(partial.fileno())
            done.update({r["episode_index"]: r for r in rows})
            bar.update(len(chunk))
    order = [int(e.episode_id) for e in episodes]
    scored = [done[i] for i in order if "error" not in done[i]]
    failed = [
        {"episode": str(done[i]["episode_index"]), "reason": done[i]["error"]}
        for i in order
        if "error" in done[i]
    ]
    _write_parquet(
        out / ANNOTATIONS, scored, model.settings.prompt, model_id, config.curve_points is not None
    )
    _plot_histogram(out / HISTOGRAM, [r["score"] for r in scored], model_id)
    report: dict[str, Any] = {
        "dataset": source.provenance["dataset"],
        "codebase_version": source.codebase_version,
        "camera": source.video_key,
        "model": model_id,
        "prompt": model.settings.prompt,
        "episodes": len(items),
        "scored": len(scored),
        "left_out": skipped + failed,
        "score_counts": {str(k): sum(1 for r in scored if r["score"] == k) for k in rubric.SCORES},
    }
    if config.keep_min_score is not None and config.filtered_out is not None:
        keep = [r["episode_index"] for r in scored if r["score"] >= config.keep_min_score]
        report["filtered"] = {
            "min_score": config.keep_min_score,
            "folder": Path(config.filtered_out).name,
            **filter_lerobot(source.root, keep, config.filtered_out),
        }
    (out / REPORT).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report
