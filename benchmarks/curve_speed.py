"""Benchmark: time of a K=8 progress curve against 8 separate `score` calls, and of a K=32 curve
against the K=8 one, for rate-based (aligned) and fixed-count sampling side by side.

    python benchmarks/curve_speed.py [--points 8] [--seconds 32] [--repeats 3] [--size small]
        [--side 112] [--max-pixels N] [--sampling rate count] [--out benchmarks/results/curve_speed.json]

Per sampling policy, the same model (a tiny Qwen2.5-VL of `roboreward.testing.tiny`, random
weights, on CPU) and the same video (``--seconds`` long, 10 fps, ``--side`` pixels square):

- ``rate``: 2 frames a second, curves cut on the temporal-patch grid (``align=True``: every prefix
  a whole number of 2-frame patches at exactly 2 fps), so every prefix's video tokens are the first
  tokens of the longest one's: `RewardModel.progress_curve` runs the vision tower and the language
  model once over them (a KV cache) and then only each prefix's task text and answer prefill.
- ``rate_unaligned``: 2 frames a second, the default cuts at exactly i/K of the length (a prefix
  shares where its tokens, positions and patches are those of the longest; the others are batched).
- ``count``: 16 frames per prefix (no frames shared): the prefixes are batched, ``--points`` a pass.

The baseline scores the same K prefixes one `score(video, task, end=t)` call at a time. The runs take
turns so that other load on the machine slows them alike; each ratio is reported per repeat as
(min, median, max), of wall time and of this process's CPU time. ``whole_episode_tokens`` says how
many of the whole episode's prompt tokens are video and how many come after it: a shared prefill
saves the video tokens, and every prefix still runs the tokens after the video (the rubric text),
so the ratios approach their goals (0.2x, 2x) only where video tokens outnumber K times those.
``max_probability_difference`` is the largest difference between a curve point
and the `score` of its prefix.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _report import write_report

from roboreward import video
from roboreward.models.local import RewardModel
from roboreward.testing.tiny import make_tiny_vlm

TASK = "put the red block in the blue bowl"
POLICIES = {
    "rate": ({"fps": 2.0}, True),
    "rate_unaligned": ({"fps": 2.0}, False),
    "count": ({"num_frames": 16}, False),
}


def _spread(times: dict[str, list[float]], a: str, b: str) -> list[float]:
    """min, median, max of the per-repeat ratios a / b."""
    ratios = sorted(x / y for x, y in zip(times[a], times[b], strict=True))
    return [round(ratios[0], 3), round(statistics.median(ratios), 3), round(ratios[-1], 3)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=8)
    parser.add_argument(
        "--seconds", type=int, default=32, help="video length (32: K=32 aligned cuts are distinct)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", default="small", choices=["tiny", "small"])
    parser.add_argument("--side", type=int, default=112, help="frame width and height (pixels)")
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        help="the processor's pixel budget per frame (more video tokens)",
    )
    parser.add_argument("--sampling", nargs="+", default=["rate", "count"], choices=list(POLICIES))
    parser.add_argument("--out", default="benchmarks/results/curve_speed.json")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        clip = video.encode(
            (
                rng.integers(0, 255, (args.side, args.side, 3), dtype=np.uint8)
                for _ in range(10 * args.seconds)
            ),
            Path(tmp) / "ep.mp4",
            fps=10,
        )
        path = make_tiny_vlm(Path(tmp) / "m", size=args.size)
        for policy in args.sampling:
            sampling, align = POLICIES[policy]
            model = RewardModel.from_pretrained(path, max_pixels=args.max_pixels, **sampling)
            curve = model.progress_curve(clip, TASK, points=args.points, batch_size=args.points, align=align)
            ends = [None if i == len(curve.points) - 1 else p.time for i, p in enumerate(curve.points)]
            if align:  # an aligned curve's last point is a whole number of steps, not always the end
                ends = [p.time for p in curve.points]
            runs = {
                "curve": lambda m=model, a=align: m.progress_curve(
                    clip, TASK, points=args.points, batch_size=args.points, align=a
                ),
                "separate_scores": lambda m=model, e=ends: [m.score(clip, TASK, end=t) for t in e],
                "curve_k32": lambda m=model, a=align: m.progress_curve(
                    clip, TASK, points=32, batch_size=args.points, align=a
                ),
            }
            separate = runs["separate_scores"]()
            same = max(
                abs(a - b)
                for p, s in zip(curve.points, separate, strict=True)
                for a, b in zip(p.result.probs, s.probs, strict=True)
            )
            runs["curve_k32"]()  # once untimed: every run has been warmed up
            times: dict[str, list[float]] = {name: [] for name in runs}
            cpu: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(args.repeats):
                for name, fn in runs.items():
                    start, start_cpu = time.perf_counter(), time.process_time()
                    fn()
                    times[name].append(time.perf_counter() - start)
                    cpu[name].append(time.process_time() - start_cpu)
            ids = model.prepare([clip], [TASK])["input_ids"][0]
            pads = (ids == model.model.config.video_token_id).nonzero()[:, 0]
            results[policy] = {
                "sampling": sampling,
                "align": align,
                "seconds": {name: round(statistics.median(t), 4) for name, t in times.items()},
                "ratio_curve_vs_separate": _spread(times, "curve", "separate_scores"),
                "ratio_k32_vs_k8_curve": _spread(times, "curve_k32", "curve"),
                "cpu_ratio_curve_vs_separate": _spread(cpu, "curve", "separate_scores"),
                "cpu_ratio_k32_vs_k8_curve": _spread(cpu, "curve_k32", "curve"),
                "wall_seconds_per_repeat": {name: [round(x, 3) for x in t] for name, t in times.items()},
                "whole_episode_tokens": {
                    "all": len(ids),
                    "video": len(pads),
                    "after_video": len(ids) - int(pads[-1]) - 1,
                },
                "max_probability_difference": same,
            }
            print(
                f"{policy:15s} curve/separate {results[policy]['ratio_curve_vs_separate']}  "
                f"K=32/K={args.points} {results[policy]['ratio_k32_vs_k8_curve']}  "
                f"(CPU time: {results[policy]['cpu_ratio_curve_vs_separate']}, "
                f"{results[policy]['cpu_ratio_k32_vs_k8_curve']})  seconds {results[policy]['seconds']}  "
                f"tokens {results[policy]['whole_episode_tokens']}  max diff {same:.1e}",
                flush=True,
            )
        parameters = sum(p.numel() for p in model.model.parameters())
    write_report(
        {
            "benchmark": "curve_speed",
            "model": f"tiny '{args.size}' Qwen2.5-VL ({parameters / 1e6:.1f} M parameters, random weights), "
            f"CPU, float32, {torch.get_num_threads()} threads",
            "inputs": f"K={args.points} and K=32 prefixes of a {args.seconds} s "
            f"{args.side}x{args.side} mp4 (10 fps)",
            "policies": results,
            "argv": sys.argv[1:],
        },
        args.out,
    )


if __name__ == "__main__":
    main()
