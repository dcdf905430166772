"""Score every episode of a LeRobot dataset with a reward model; optionally keep only the good ones.

    roboreward annotate --lerobot lerobot/toto --model teetone/RoboReward-4B --out toto_scores
    roboreward annotate --lerobot ./toto_lerobot --model runs/3b --out scores --curve-points 8 \\
        --keep-min-score 4 --filtered-out ./toto_good

`annotate` reads the dataset with `roboreward.sources.lerobot.reader.LeRobotSource` (v2.0/v2.1/v3.0; the
camera chosen as the builder chooses it: the first scene camera unless ``--video-key``), scores each
episode (a v3.0 episode is its segment of the concatenated file) in batches with any reward model
(`roboreward.models.load_reward_model`: a checkpoint, an ``openai+logprobs:`` pool with
``--concurrency``, a ``roboreward serve`` URL), and writes into ``--out``:

- ``annotations.parquet``: one row per scored episode, keyed by ``episode_index``: ``task``,
  ``score``, ``probs`` (the five probabilities), ``expected``, ``reward``, ``prompt`` (the preset),
  ``model`` (the model id) and, with ``--curve-points K``, ``curve`` (the expected score at K points).
- ``score_histogram.png``; ``report.json``: counts, and every episode left out with its reason (an
  empty task, a missing or unreadable video): bad episodes are reported, never fatal.
- ``annotations.partial.jsonl``: the rows as they are scored, a batch at a time, while the run lasts
  (deleted when it completes). A run that is killed resumes from it: batches are fixed by position in
  the episode list, so a re-run scores the same batches and writes the same ``annotations.parquet``
  as a run that was never interrupted. A row is reused only when it was made by the same model,
  settings, camera and curve points for the same episode content (task, the video file's bytes, the
  episode's time range): another dataset run into the same ``--out`` is scored afresh.

Under ``accelerate launch`` (``accelerate launch --num_processes N -m roboreward.cli annotate ...``;
on CPU add ``--multi_gpu``) each process scores its share of the batches (batch k to process k mod N,
`roboreward.bench.parallel`) into its own part file; the main process merges them and writes the same
files, byte for byte, as one process.

With ``--keep-min-score N --filtered-out DIR`` it also writes a copy of the dataset keeping only the
episodes scored N or more (`roboreward.sources.lerobot.filter.filter_lerobot`).
"""

from __future__ import annotations

import dataclasses
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
from roboreward.apps import frame_signals
from roboreward.bench.parallel import data_parallel, read_rows
from roboreward.config import check_fields, check_range
from roboreward.dataset.executors import ExecutorConfig, require_datatrove, run_tasks, share
from roboreward.episode import Episode, Skip
from roboreward.models.factory import load_configured
from roboreward.models.frames import MAX_CURVE_POINTS
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
        model: the reward model: a checkpoint folder or Hub id, ``openai+logprobs:URL#model`` (a pool:
            comma-separated), or a ``roboreward serve`` URL (`roboreward.models.load_reward_model`).
        out: output folder.
        video_key: the camera (None: the builder's choice, the first scene camera).
        batch_size: episodes per batch (a local checkpoint's forward pass; a unit of resumption).
        concurrency: requests in flight at once to a served model or a ``roboreward serve`` server.
        curve_points: also store a progress curve of this many points per episode (None: no curve).
        keep_min_score: with ``filtered_out``, keep the episodes scored at least this (1..5).
        filtered_out: where to write the filtered copy of the dataset.
        device: e.g. ``cpu`` or ``cuda`` (None: cuda if available).
        dtype: e.g. ``bfloat16`` (None: bfloat16 on a GPU, else float32).
        frame_signals: also write ``frame_signals.parquet`` (`roboreward.apps.frame_signals`: LeRobot's
            frame-signal sidecar) from the progress curve (needs ``curve_points``).
        weight_temperature: also write ``sample_weights.parquet``, per-episode weights for
            reward-weighted BC at this temperature (`roboreward.apps.frame_signals.episode_weights`).
    """

    lerobot: str
    model: str
    out: str = "annotate_out"
    video_key: str | None = None
    batch_size: int = 8
    concurrency: int = 8
    curve_points: int | None = None
    keep_min_score: int | None = None
    filtered_out: str | None = None
    device: str | None = None
    dtype: str | None = None
    frame_signals: bool = False
    weight_temperature: float | None = None

    def __post_init__(self) -> None:
        check_fields(self)
        if self.frame_signals and self.curve_points is None:
            raise ValueError("frame_signals come from the progress curve: give --curve-points K too")
        if self.weight_temperature is not None and self.weight_temperature <= 0:
            raise ValueError(f"weight_temperature must be above 0, got {self.weight_temperature}")
        for name in ("lerobot", "model", "out"):
            if not getattr(self, name).strip():
                raise ValueError(f"{name} is empty")
        check_range(self, "batch_size", 1)
        check_range(self, "concurrency", 1)
        check_range(self, "curve_points", 1, MAX_CURVE_POINTS)
        if self.filtered_out is not None and Path(self.filtered_out).resolve() in (
            Path(self.out).resolve(),
            Path(self.lerobot).resolve(),
        ):
            raise ValueError(
                f"filtered_out {self.filtered_out!r} must be a new folder, not --out or the dataset"
            )
        if (self.keep_min_score is None) != (self.filtered_out is None):
            raise ValueError("give --keep-min-score and --filtered-out together")
        if self.keep_min_score is not None and self.keep_min_score not in rubric.SCORES:
            raise ValueError(f"keep_min_score must be one of 1..5, got {self.keep_min_score}")


def _run_key(model: Any, curve_points: int | None, video_key: str, frame_signals: bool = False) -> str:
    settings = model.settings.to_dict() if model.settings is not None else None
    record = {"model": model.name, "settings": settings, "curve": curve_points, "camera": video_key}
    if frame_signals:  # rows that also hold each point's time and success probability
        record["frame_signals"] = True
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


class _EpisodeKeys:
    """Each episode's content key: its task, the bytes of its video file and its time range."""

    def __init__(self) -> None:
        self._files: dict[str, str] = {}

    def _file(self, source: Any) -> str:
        if isinstance(source, (str, os.PathLike)):
            path = os.fspath(source)
            if path not in self._files:
                digest = hashlib.sha256()
                with open(path, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        digest.update(block)
                self._files[path] = digest.hexdigest()
            return self._files[path]
        return hashlib.sha256(bytes(source)).hexdigest()

    def __call__(self, episode: Episode) -> str:
        try:
            content = self._file(episode.video)
        except (OSError, TypeError):  # unreadable: scoring reports it; the key still names the episode
            content = f"unreadable:{episode.video!r}"
        record = [episode.task, content, episode.video_start, episode.video_end]
        return hashlib.sha256(json.dumps(record).encode()).hexdigest()[:16]


def _score_chunk(
    model: Any, chunk: Sequence[Episode], curve_points: int | None, frame_signals: bool = False
) -> list[dict[str, Any]]:
    """Rows for a batch of episodes; an episode whose video cannot be read gets an ``error``."""
    videos, tasks = [e.video for e in chunk], [e.task for e in chunk]
    starts, ends = [e.video_start for e in chunk], [e.video_end for e in chunk]
    try:
        results: list[Any] = model.score_batch(videos, tasks, starts=starts, ends=ends)
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
                    start=episode.video_start,
                    end=episode.video_end,
                )
                row["curve"] = curve.expected
                if frame_signals:
                    row["curve_times"] = curve.times
                    row["curve_success"] = [p.result.probs[-1] for p in curve.points]
        rows.append(row)
    return rows


def _write_parquet(
    path: Path, rows: list[dict[str, Any]], prompt: str | None, model_id: str, curve: bool
) -> None:
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


def annotate_lerobot(
    config: AnnotateConfig,
    model: Any = None,
    progress: bool = True,
    executor: ExecutorConfig | None = None,
) -> dict[str, Any] | None:
    """Score every episode of ``config.lerobot`` and write the annotations (see the module docstring).

    Args:
        config: what to do.
        model: an already made reward model (`roboreward.models.RewardScorer`; None: load
            ``config.model`` with `roboreward.models.load_reward_model`).
        progress: show a progress bar.
        executor: where to run (None or ``inprocess``: here, data-parallel under ``accelerate launch``;
            ``local`` or ``slurm``: as datatrove tasks, each loading the model and scoring a
            contiguous share of the batches, then a merge writing the same files).

    Returns:
        The report written to ``report.json``: counts, the episodes left out and why, the filtered
        copy; None in the processes of an ``accelerate launch`` run other than the main one, and for
        a Slurm submission that does not wait (``{"submitted": ...}`` then).
    """
    if executor is not None and executor.distributed:
        if model is not None:
            raise ValueError("datatrove tasks load the model themselves: pass model=None")
        return _annotate_distributed(config, executor)
    # Annotation scores what the episodes show; what a rewards sidecar says is never read here.
    source, items, episodes, skipped = _read_episodes(config)
    dp = data_parallel()
    if model is None:
        if config.device is None and dp.device is not None:
            config = dataclasses.replace(config, device=str(dp.device))
        model = load_configured(config)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    run_key = _run_key(model, config.curve_points, source.video_key, config.frame_signals)
    keys = _content_keys(episodes)
    cache = out / PARTIAL
    dp.merge_leftovers(cache)
    done = _done_rows(cache, run_key, keys)
    todo = [b for b in _batches(episodes, config.batch_size) if not all(int(e.episode_id) in done for e in b)]
    _score_into(
        model,
        dp.share(todo),
        config,
        run_key,
        keys,
        dp.writes_to(cache),
        done,
        progress and dp.is_main,
        dp.label("annotating"),
    )
    order = [int(e.episode_id) for e in episodes]
    merged = dp.collect(cache, {str(i): r for i, r in done.items()}, [str(i) for i in order])
    if merged is None:  # not the main process: the main one writes the files
        return None
    done = {int(r["episode_index"]): r for r in merged.values() if r.get("run_key") == run_key}
    report = _write_outputs(config, source, _describe(model), episodes, skipped, done, len(items))
    cache.unlink(missing_ok=True)  # complete: annotations.parquet holds every row
    return report


def _read_episodes(
    config: AnnotateConfig,
) -> tuple[LeRobotSource, list[Any], list[Episode], list[dict[str, str]]]:
    """The source, every entry it lists, its episodes and the entries left out (with their reason)."""
    source = LeRobotSource(config.lerobot, video_key=config.video_key, rewards="success")
    items = list(source.episodes())
    episodes = [e for e in items if isinstance(e, Episode)]
    skipped = [{"episode": s.episode_id, "reason": s.reason} for s in items if isinstance(s, Skip)]
    return source, items, episodes, skipped


def _content_keys(episodes: Sequence[Episode]) -> dict[int, str]:
    content_key = _EpisodeKeys()
    return {int(e.episode_id): content_key(e) for e in episodes}


def _done_rows(path: Path, run_key: str, keys: dict[int, str]) -> dict[int, dict[str, Any]]:
    """The rows of a partial file made by this run (same model and settings, same episode content)."""
    return {
        int(row["episode_index"]): row
        for row in read_rows(path)[0].values()
        if row.get("run_key") == run_key and row.get("key") == keys.get(int(row["episode_index"]))
    }


def _batches(episodes: list[Episode], size: int) -> list[list[Episode]]:
    """Batches fixed by position, so every run (resumed, or one of N processes or tasks) makes the same."""
    return [episodes[i : i + size] for i in range(0, len(episodes), size)]


def _score_into(
    model: Any,
    batches: Sequence[Sequence[Episode]],
    config: AnnotateConfig,
    run_key: str,
    keys: dict[int, str],
    path: Path,
    done: dict[int, dict[str, Any]],
    progress: bool,
    label: str = "annotating",
) -> None:
    """Score ``batches``, appending their rows to ``path`` a batch at a time and adding them to ``done``."""
    with (
        open(path, "a", encoding="utf-8") as partial,
        tqdm(total=sum(len(b) for b in batches), desc=label, unit="episode", disable=not progress) as bar,
    ):
        for chunk in batches:
            rows = [
                {
                    **row,
                    "id": str(row["episode_index"]),
                    "run_key": run_key,
                    "key": keys[row["episode_index"]],
                }
                for row in _score_chunk(model, chunk, config.curve_points, config.frame_signals)
            ]
            # One write per batch, flushed to disk: a kill leaves whole batches, or a torn last line.
            partial.write("".join(json.dumps(r) + "\n" for r in rows))
            partial.flush()
            os.fsync(partial.fileno())
            done.update({r["episode_index"]: r for r in rows})
            bar.update(len(chunk))


def _describe(model: Any) -> dict[str, Any]:
    """What the outputs say of the model: its id, prompt preset and version, settings."""
    settings = model.settings
    return {
        "name": model.name,
        "prompt": settings.prompt if settings is not None else None,
        "prompt_version": getattr(settings, "prompt_version", None) if settings is not None else None,
        "settings": settings.to_dict() if settings is not None else None,
    }


# ---------------------------------------------------------------------------------------------
# As datatrove tasks


def _work_dir(config: AnnotateConfig) -> Path:
    key = hashlib.sha256(json.dumps(dataclasses.asdict(config), sort_keys=True).encode()).hexdigest()[:16]
    return Path(config.out) / ".datatrove" / f"annotate-{key}"


@dataclass
class AnnotateTask:
    """A task of a distributed annotation: score a contiguous share of the batches into its part file.

    Args:
        config: `AnnotateConfig` fields.
        work: the job's work folder.
    """

    config: dict[str, Any]
    work: str

    def __call__(self, data: Any, rank: int = 0, world_size: int = 1) -> None:
        self.run(rank, world_size)

    def run(self, rank: int, world_size: int) -> None:
        """Do task ``rank`` of ``world_size`` (a rerun scores only the batches its part lacks)."""
        config = AnnotateConfig(**self.config)
        source, _, episodes, _ = _read_episodes(config)
        model = load_configured(config)
        run_key, keys = (
            _run_key(model, config.curve_points, source.video_key, config.frame_signals),
            _content_keys(episodes),
        )
        parts = Path(self.work) / "parts"
        parts.mkdir(parents=True, exist_ok=True)
        path = parts / f"task-{rank:05d}.jsonl"
        done = _done_rows(path, run_key, keys)
        batches = _batches(episodes, config.batch_size)
        mine = [batches[i] for i in share(len(batches), rank, world_size)]
        todo = [b for b in mine if not all(int(e.episode_id) in done for e in b)]
        _score_into(model, todo, config, run_key, keys, path, done, progress=False)
        model_file = parts / f"model-{rank:05d}.json"
        model_file.write_text(json.dumps({**_describe(model), "run_key": run_key}), encoding="utf-8")


@dataclass
class AnnotateMerge:
    """The merge of a distributed annotation: every task's rows, written as one process writes them.

    Args:
        config: `AnnotateConfig` fields.
        work: the job's work folder.
        tasks: how many tasks wrote parts.
    """

    config: dict[str, Any]
    work: str
    tasks: int

    def __call__(self, data: Any, rank: int = 0, world_size: int = 1) -> None:
        self.run()

    def run(self) -> dict[str, Any]:
        """Merge and write the outputs; returns the report."""
        config = AnnotateConfig(**self.config)
        source, items, episodes, skipped = _read_episodes(config)
        parts = Path(self.work) / "parts"
        keys = _content_keys(episodes)
        model = json.loads((parts / "model-00000.json").read_text(encoding="utf-8"))
        run_key = model.pop("run_key")
        done: dict[int, dict[str, Any]] = {}
        for path in sorted(parts.glob("task-*.jsonl")):  # any run's tasks: rows are keyed by content
            done.update(_done_rows(path, run_key, keys))
        missing = [int(e.episode_id) for e in episodes if int(e.episode_id) not in done]
        if missing:
            raise ValueError(f"episodes {missing[:5]} were not scored by any task: rerun the annotation")
        return _write_outputs(config, source, model, episodes, skipped, done, len(items))


def _annotate_distributed(config: AnnotateConfig, executor: ExecutorConfig) -> dict[str, Any] | None:
    require_datatrove()
    _read_episodes(config)  # an unusable dataset fails here, before any task starts
    work = _work_dir(config)
    work.mkdir(parents=True, exist_ok=True)
    fields = dataclasses.asdict(config)
    task, merge = AnnotateTask(fields, str(work)), AnnotateMerge(fields, str(work), executor.tasks)
    # datatrove's logs per number of tasks (a share depends on it); the parts are shared by every run
    submitted = run_tasks("annotate", executor, work / f"{executor.tasks}-tasks", task, merge)
    if submitted is not None and not executor.slurm_wait:
        return {"submitted": submitted.to_dict(), "out": config.out}
    return json.loads((Path(config.out) / REPORT).read_text(encoding="utf-8"))


def _write_outputs(
    config: AnnotateConfig,
    source: LeRobotSource,
    model: dict[str, Any],
    episodes: list[Episode],
    skipped: list[dict[str, str]],
    done: dict[int, dict[str, Any]],
    total: int,
) -> dict[str, Any]:
    """Write annotations.parquet, the histogram, the sidecars asked for, the filtered copy and
    report.json; return the report. ``model`` is `_describe`'s."""
    out = Path(config.out)
    prompt, model_id = model["prompt"], model["name"]
    order = [int(e.episode_id) for e in episodes]
    scored = [done[i] for i in order if "error" not in done[i]]
    failed = [
        {"episode": str(done[i]["episode_index"]), "reason": done[i]["error"]}
        for i in order
        if "error" in done[i]
    ]
    _write_parquet(out / ANNOTATIONS, scored, prompt, model_id, config.curve_points is not None)
    _plot_histogram(out / HISTOGRAM, [r["score"] for r in scored], model_id)
    report: dict[str, Any] = {
        "dataset": source.provenance["dataset"],
        "codebase_version": source.codebase_version,
        "camera": source.video_key,
        "model": model_id,
        "prompt": prompt,
        "episodes": total,
        "scored": len(scored),
        "left_out": skipped + failed,
        "score_counts": {str(k): sum(1 for r in scored if r["score"] == k) for k in rubric.SCORES},
    }
    if config.frame_signals:
        provenance = {
            "scorer": "roboreward annotate",
            "model": model_id,
            "prompt_preset": prompt,
            "prompt_version": model["prompt_version"],
            "settings": model["settings"],
            "curve_points": config.curve_points,
            "camera": source.video_key,
            "dataset": source.provenance["dataset"],
            "codebase_version": source.codebase_version,
        }
        table = frame_signals.frame_signals_table(scored, source.episode_frames, provenance)
        frame_signals.write_table(table, out / frame_signals.FRAME_SIGNALS)
        report["frame_signals"] = {
            "file": frame_signals.FRAME_SIGNALS,
            "format": frame_signals.FORMAT,
            "schema_version": frame_signals.SCHEMA_VERSION,
            "rows": table.num_rows,
        }
    if config.weight_temperature is not None:
        frame_signals.write_sample_weights(
            out / frame_signals.SAMPLE_WEIGHTS, scored, config.weight_temperature
        )
        report["sample_weights"] = {
            "file": frame_signals.SAMPLE_WEIGHTS,
            "temperature": config.weight_temperature,
        }
    if config.keep_min_score is not None and config.filtered_out is not None:
        keep = [r["episode_index"] for r in scored if r["score"] >= config.keep_min_score]
        report["filtered"] = {
            "min_score": config.keep_min_score,
            "folder": Path(config.filtered_out).name,
            **filter_lerobot(source.root, keep, config.filtered_out),
        }
    tmp = out / f".{REPORT}.tmp"
    tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out / REPORT)
    return report
