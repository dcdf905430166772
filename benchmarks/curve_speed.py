"""Benchmark: time of a K=8 progress curve (batched prefixes) against 8 separate `score` calls.

    python benchmarks/curve_speed.py [--points 8] [--repeats 3] [--out benchmarks/results/curve_speed.json]

`RewardModel.progress_curve` scores the 8 prefixes of an episode (ending at 1/8, 2/8, ..., 1 of it)
in one batched forward pass; the baseline scores the same 8 prefixes one `score(video, task, end=t)`
call at a time. Same model (the "small" tiny Qwen2.5-VL of `roboreward.testing.tiny`, random weights, on
CPU), same video (an 8 s mp4, 10 fps, 112x112), same 16 frames per prefix; the two runs take turns
so that other load on the machine slows them alike. The ratio is curve seconds over separate seconds
(below 1: the curve is cheaper). Both runs decode the video once per prefix: the saving is the
batched forward pass.
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
    parser.add_argument("--out", default="benchmarks/results/curve_speed.json")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        clip = video.encode(
            (rng.integers(0, 255, (112, 112, 3), dtype=np.uint8) for _ in range(80)),
            Path(tmp) / "ep.mp4",
            fps=10,
        )
        model = RewardModel.from_pretrained(make_tiny_vlm(Path(tmp) / "m", size=args.size), num_frames=16)
        duration = video.probe(clip).duration
        ends = [duration * i / args.points for i in range(1, args.points + 1)]
        runs = {
            "curve": lambda: model.progress_curve(clip, TASK, points=args.points, batch_size=args.points),
            "separate_scores": lambda: [model.score(clip, TASK, end=end) for end in ends],
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
    ratio = round(seconds["curve"] / seconds["separate_scores"], 3)
    for name, value in seconds.items():
        print(f"{name:16s} {value:8.3f} s")
    print(f"curve / separate scores: {ratio} (max probability difference {same:.2e})")
    write_report(
        {
            "benchmark": "curve_speed",
            "model": f"tiny '{args.size}' Qwen2.5-VL ({parameters / 1e6:.1f} M parameters, random weights), "
            f"CPU, float32, {torch.get_num_threads()} threads",
            "inputs": f"{args.points} prefixes of an 8 s 112x112 mp4, 16 frames each",
            "seconds": seconds,
            "ratio_curve_vs_separate": ratio,
            "max_probability_difference": same,
            "argv": sys.argv[1:],
        },
        args.out,
    )


if __name__ == "__main__":
    main()
