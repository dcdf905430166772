"""Benchmark: time of a K=8 progress curve (batched prefixes) against 8 separate `score` calls,
and of a K=32 curve against the K=8 one.

    python benchmarks/curve_speed.py [--points 8] [--sampling count|rate] [--repeats 3]
        [--out benchmarks/results/curve_speed.json]

`RewardModel.progress_curve` scores the 8 prefixes of an episode (ending at 1/8, 2/8, ..., 1 of it)
in one batched forward pass; the baseline scores the same 8 prefixes one `score(video, task, end=t)`
call at a time. Same model (the "small" tiny Qwen2.5-VL of `roboreward.testing.tiny`, random weights, on
CPU), same video (an 8 s mp4, 10 fps, 112x112), same 16 frames per prefix; the two runs take turns
so that other load on the machine slows them alike. The ratio is curve seconds over separate seconds
(below 1: the curve is cheaper), per repeat (min, median, max). The curve decodes the video once for
all its prefixes (`roboreward.models.frames.prefix_frames`); each `score` call decodes its own prefix.
``--sampling rate`` samples 2 frames a second (the released models' policy: prefixes share frames)
instead of 16 frames per prefix.
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", default="small", choices=["tiny", "small"])
    parser.add_argument("--sampling", default="count", choices=["count", "rate"])
    parser.add_argument("--out", default="benchmarks/results/curve_speed.json")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        clip = video.encode(
            (rng.integers(0, 255, (112, 112, 3), dtype=np.uint8) for _ in range(80)),
            Path(tmp) / "ep.mp4",
            fps=10,
        )
        sampling = {"num_frames": 16} if args.sampling == "count" else {"fps": 2.0}
        model = RewardModel.from_pretrained(make_tiny_vlm(Path(tmp) / "m", size=args.size), **sampling)
        duration = video.probe(clip).duration
        ends = [duration * i / args.points for i in range(1, args.points + 1)]
        runs = {
            "curve": lambda: model.progress_curve(clip, TASK, points=args.points, batch_size=args.points),
            "separate_scores": lambda: [model.score(clip, TASK, end=end) for end in ends],
            "curve_k32": lambda: model.progress_curve(clip, TASK, points=32, batch_size=args.points),
        }
        curve = runs["curve"]()
        separate = runs["separate_scores"]()
        same = max(
            abs(a - b)
            for p, s in zip(curve.points, separate, strict=True)
            for a, b in zip(p.result.probs, s.probs, strict=True)
        )
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, fn in runs.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        parameters = sum(p.numel() for p in model.model.parameters())
    seconds = {name: round(statistics.median(t), 4) for name, t in times.items()}

    def spread(a: str, b: str) -> list[float]:  # min, median, max of the per-repeat ratios
        ratios = sorted(x / y for x, y in zip(times[a], times[b], strict=True))
        return [round(ratios[0], 3), round(statistics.median(ratios), 3), round(ratios[-1], 3)]

    ratio = spread("curve", "separate_scores")
    k32 = spread("curve_k32", "curve")
    for name, value in seconds.items():
        print(f"{name:16s} {value:8.3f} s")
    print(f"curve / separate scores: {ratio} (min, median, max; max probability difference {same:.2e})")
    print(f"K=32 curve / K={args.points} curve: {k32}")
    write_report(
        {
            "benchmark": "curve_speed",
            "model": f"tiny '{args.size}' Qwen2.5-VL ({parameters / 1e6:.1f} M parameters, random weights), "
            f"CPU, float32, {torch.get_num_threads()} threads",
            "inputs": f"{args.points} prefixes of an 8 s 112x112 mp4, "
            + ("16 frames each" if args.sampling == "count" else "2 frames a second"),
            "seconds": seconds,
            "ratio_curve_vs_separate": ratio,
            "ratio_k32_vs_k8_curve": k32,
            "max_probability_difference": same,
            "argv": sys.argv[1:],
        },
        args.out,
    )


if __name__ == "__main__":
    main()
