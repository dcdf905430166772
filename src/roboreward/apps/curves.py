"""Progress curves: the reward model's judgement of an episode over time, written and plotted.

A reward model's ``progress_curve`` (`roboreward.models.RewardScorer`: a local checkpoint, a served
pool, a ``roboreward serve`` server) scores the K prefixes of an episode ending at i/K of
its length; this module writes that curve (``curve.json``), draws it (``curve.png``: the expected
score with a one-standard-deviation band of the five-way distribution, both in its legend with the
curve's VOC, above a strip of the frames at those points) and reads its value-order correlation:
OpenGVL's VOC, the Spearman correlation of the curve against time (1.0 when the curve only ever rises).

    roboreward curve episode.mp4 --task "open the drawer" --model runs/3b --points 8 --out curve_out

    >>> value_order_correlation([1.0, 2.0, 2.0, 4.0])
    0.9486832980505138
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from roboreward import rubric, video
from roboreward.config import check_fields, check_range
from roboreward.models.factory import load_configured
from roboreward.models.frames import MAX_CURVE_POINTS
from roboreward.models.results import ProgressCurve
from roboreward.video import frames_array, is_video_source

__all__ = [
    "CurveConfig",
    "average_ranks",
    "curve_figure",
    "curve_frames",
    "plot_curve",
    "run_curve",
    "spearman",
    "value_order_correlation",
    "write_curve",
]


@dataclass
class CurveConfig:
    """What ``roboreward curve`` does (the video is the command's one positional argument).

    Args:
        task: the instruction the episode is judged against.
        model: the reward model: a checkpoint folder or Hub id, ``openai+logprobs:URL#model`` (a
            pool), or a ``roboreward serve`` URL (`roboreward.models.load_reward_model`).
        out: output folder for ``curve.json`` and ``curve.png``.
        points: K, the prefixes scored (ending at 1/K, 2/K, ..., 1 of the episode), 1..256.
        batch_size: prefixes per forward pass of a local checkpoint.
        concurrency: requests in flight at once to a served model or server.
        device: e.g. ``cpu`` or ``cuda`` (None: cuda if available).
        dtype: e.g. ``bfloat16`` (None: bfloat16 on a GPU, else float32).
        align: cut on the temporal-patch grid (a local checkpoint that samples at a rate:
            `roboreward.models.local.RewardModel.progress_curve` ``align=True``), so every prefix
            comes from one cached prefill.
    """

    task: str = field(metadata={"help": "the task the robot was given", "metavar": "TEXT"})
    model: str = field(
        metadata={
            "help": "the reward model: checkpoint folder or Hub id, openai+logprobs:URL#model, or a "
            "roboreward serve URL",
            "metavar": "SPEC",
        }
    )
    out: str = field(default="curve_out", metadata={"help": "output folder", "metavar": "DIR"})
    points: int = field(
        default=8,
        metadata={"help": f"prefixes scored, evenly spaced (1..{MAX_CURVE_POINTS})", "metavar": "K"},
    )
    batch_size: int = field(
        default=8, metadata={"help": "prefixes per forward pass (a local checkpoint)", "metavar": "N"}
    )
    concurrency: int = field(
        default=8, metadata={"help": "requests in flight at once (a served model or server)", "metavar": "N"}
    )
    device: str | None = field(default=None, metadata={"help": "e.g. cpu, cuda (None: cuda if available)"})
    dtype: str | None = field(default=None, metadata={"help": "e.g. bfloat16 (None: bf16 on GPU, else fp32)"})
    align: bool = field(
        default=False,
        metadata={
            "help": "cut at whole temporal patches (a local checkpoint sampling at a rate): one prefill"
        },
    )

    def __post_init__(self) -> None:
        check_fields(self)
        rubric.build_prompt(self.task)  # an empty task fails here, before anything loads
        check_range(self, "points", 1, MAX_CURVE_POINTS)  # each point is a model call
        check_range(self, "batch_size", 1)
        check_range(self, "concurrency", 1)


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n of ``values``, ties sharing their average rank (as ``scipy.stats.rankdata``).

    Args:
        values: the numbers to rank.
    """
    x = np.asarray(values, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    sorted_x = x[order]
    start = 0
    while start < len(x):
        stop = start
        while stop + 1 < len(x) and sorted_x[stop + 1] == sorted_x[start]:
            stop += 1
        ranks[order[start : stop + 1]] = (start + stop) / 2 + 1
        start = stop + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation (Pearson's of the average ranks); NaN when either side is constant.

    Args:
        a: first sequence.
        b: second sequence, as long as ``a``.
    """
    if len(a) != len(b):
        raise ValueError(f"spearman needs sequences of one length, got {len(a)} and {len(b)}")
    ra, rb = average_ranks(a), average_ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = math.sqrt(float((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denominator) if denominator > 0 else float("nan")


def value_order_correlation(values: Sequence[float], times: Sequence[float] | None = None) -> float:
    """OpenGVL's value-order correlation: Spearman of a progress curve against time.

    Args:
        values: the curve, in time order (e.g. `ProgressCurve.expected`).
        times: the points' times (None: 0, 1, 2, ...).

    Returns:
        In [-1, 1]; NaN for a constant curve or fewer than two points (no order to read).
    """
    if len(values) < 2:
        return float("nan")
    return spearman(values, range(len(values)) if times is None else times)


def curve_frames(
    source: Any, curve: ProgressCurve, max_side: int = 160, fps: float | None = None
) -> np.ndarray:
    """The last frame of each prefix the curve scored, (K, H, W, 3): the strip under the plot.

    Args:
        source: the episode, as given to `RewardModel.progress_curve`.
        curve: its curve.
        max_side: longer side of the strip's frames.
        fps: rate of frames given directly (None: `roboreward.models.inputs.DEFAULT_FRAMES_FPS`).
    """
    if is_video_source(source):
        info = video.probe(source)
        picked = []
        for t in curve.times:
            index = min(info.frames, max(1, math.ceil(t * info.fps - 1e-6))) - 1
            picked.append(
                video.sample_frames(
                    source,
                    num_frames=1,
                    start=index / info.fps,
                    end=(index + 1) / info.fps,
                    max_side=max_side,
                )[0]
            )
        return np.stack(picked)
    frames = frames_array(source)
    rate = fps or len(frames) / curve.duration
    return np.stack([frames[min(len(frames), max(1, math.ceil(t * rate - 1e-6))) - 1] for t in curve.times])


def _spread(probs: Sequence[float]) -> float:
    """Standard deviation of the score under the five-way distribution."""
    p = np.asarray(probs, dtype=np.float64)
    scores = np.asarray(rubric.SCORES, dtype=np.float64)
    mean = float(p @ scores)
    return float(math.sqrt(max(0.0, p @ (scores - mean) ** 2)))


#: The band's legend entry: what the shaded area around the curve is.
BAND_LABEL = "±1 std of the five-way score distribution"


def curve_figure(curve: ProgressCurve, frames: np.ndarray | None = None) -> Any:
    """The curve as a matplotlib ``Figure``: the expected score with its +-1 std band (both in the
    legend, the curve's entry carrying its VOC) above a strip of ``frames``.

    Made without pyplot (no global figure state), so a server can draw one per request.

    Args:
        curve: the progress curve.
        frames: one frame per point (`curve_frames`), or None for the curve alone.
    """
    from matplotlib.figure import Figure

    k = len(curve.points)
    times = np.array(curve.times)
    mean = np.array(curve.expected)
    spread = np.array([_spread(p.result.probs) for p in curve.points])
    voc = value_order_correlation(curve.expected, curve.times)
    rows = 2 if frames is not None else 1
    fig = Figure(figsize=(max(6.0, 1.2 * k), 4.5 if rows == 2 else 3.2))
    grid = fig.add_gridspec(rows, k, height_ratios=[3, 1] if rows == 2 else [1])
    ax = fig.add_subplot(grid[0, :])
    ax.fill_between(
        times, np.clip(mean - spread, 1, 5), np.clip(mean + spread, 1, 5), alpha=0.25, label=BAND_LABEL
    )
    voc_text = "n/a: a flat curve" if math.isnan(voc) else f"{voc:.2f}"
    ax.plot(times, mean, marker="o", label=f"expected score (VOC {voc_text})")
    ax.set_ylim(0.8, 5.2)
    ax.set_yticks(rubric.SCORES)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("expected score")
    ax.set_title(curve.task, fontsize=10)
    ax.legend(loc="upper left", fontsize=8, framealpha=0.8)
    if frames is not None:
        for i, frame in enumerate(frames):
            strip = fig.add_subplot(grid[1, i])
            strip.imshow(frame)
            strip.set_axis_off()
            strip.set_title(f"{curve.points[i].time:.1f}s", fontsize=8)
    fig.tight_layout()
    return fig


def plot_curve(curve: ProgressCurve, frames: np.ndarray | None, path: str | Path) -> Path:
    """Draw the curve (`curve_figure`: expected score, +-1 std band, VOC) above a strip of ``frames``;
    write a PNG.

    Args:
        curve: the progress curve.
        frames: one frame per point (`curve_frames`), or None for the curve alone.
        path: the PNG to write.
    """
    path = Path(path)
    curve_figure(curve, frames).savefig(path, dpi=100)
    return path


def write_curve(
    curve: ProgressCurve, out: str | Path, frames: np.ndarray | None = None, **extra: Any
) -> Path:
    """Write ``curve.json`` (the curve, its VOC and ``extra``) and ``curve.png`` into ``out``.

    Args:
        curve: the progress curve.
        out: the output folder (created).
        frames: the strip's frames (`curve_frames`), or None.
        extra: more JSON-ready fields for ``curve.json`` (the model, the video).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    voc = value_order_correlation(curve.expected, curve.times)
    record = {**extra, **curve.to_dict(), "voc": None if math.isnan(voc) else voc}
    (out / "curve.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    plot_curve(curve, frames, out / "curve.png")
    return out


def run_curve(source: Any, config: CurveConfig, model: Any = None) -> ProgressCurve:
    """Load the model, score the curve of ``source`` and write it to ``config.out``.

    Args:
        source: the episode video (a path).
        config: the command's settings.
        model: an already made reward model (None: `roboreward.models.load_reward_model` of
            ``config.model``).
    """
    rubric.build_prompt(config.task)  # bad input fails before the model loads
    video.check_limits(video.probe(source), source=source)
    if model is None:
        model = load_configured(config)
    if config.align:
        from roboreward.models.local import RewardModel

        if not isinstance(model, RewardModel):
            raise ValueError(f"--align needs a local checkpoint; {config.model} is served")
        curve = model.progress_curve(source, config.task, points=config.points, align=True)
    else:
        curve = model.progress_curve(source, config.task, points=config.points)
    write_curve(
        curve,
        config.out,
        curve_frames(source, curve),
        model=model.name,
        video=str(source),
        prompt=model.settings.prompt if model.settings is not None else None,
    )
    return curve
