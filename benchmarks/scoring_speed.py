"""Benchmark: videos/s of `RewardModel.score` (one forward pass) vs generate-then-parse.

    python benchmarks/scoring_speed.py [--videos 16] [--out benchmarks/results/scoring_speed.json]

Other integrations score a reward VLM by generating up to 16 new tokens and parsing "ANSWER: n";
`RewardModel.score` reads the five score-token logits after a prefilled "ANSWER: " in one forward
pass. Same model (the "small" tiny Qwen2.5-VL of `roboreward.testing`, 4.6 M parameters, on CPU),
same 16 frames per video, same inputs; batch 1 (`score` / `generate`) and batch 8 (`score_batch` /
`generate_batch`). The ratio is score throughput over generate throughput, measured in one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _report import write_report

from roboreward.scoring import RewardModel
from roboreward.testing import make_tiny_vlm


def _timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/scoring_speed.json")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    clips = [rng.integers(0, 255, (16, 112, 112, 3), dtype=np.uint8) for _ in range(args.videos)]
    tasks = [f"put the red block in the blue bowl {i}" for i in range(args.videos)]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = RewardModel.from_pretrained(make_tiny_vlm(Path(tmp) / "small", size="small"), num_frames=16)
        runs = {
            "score_batch1": lambda: [model.score(c, t, fps=4.0) for c, t in zip(clips, tasks, strict=True)],
            "generate_batch1": lambda: [
                model.generate(c, t, max_new_tokens=16, fps=4.0) for c, t in zip(clips, tasks, strict=True)
            ],
            "score_batch8": lambda: model.score_batch(clips, tasks, batch_size=8, fps=4.0),
            "generate_batch8": lambda: model.generate_batch(
                clips, tasks, max_new_tokens=16, batch_size=8, fps=4.0
            ),
        }
        for name, fn in runs.items():
            seconds = _timed(fn, args.repeats)
            results[name] = {"seconds": round(seconds, 4), "videos_per_s": round(args.videos / seconds, 2)}
            print(f"{name:16s} {args.videos / seconds:8.2f} videos/s")
    ratios = {
        f"score_vs_generate_batch{b}": round(
            results[f"score_batch{b}"]["videos_per_s"] / results[f"generate_batch{b}"]["videos_per_s"], 2
        )
        for b in (1, 8)
    }
    for name, value in ratios.items():
        print(f"{name}: {value}x")
    write_report(
        {
            "benchmark": "scoring_speed",
            "model": "tiny 'small' Qwen2.5-VL (4.6 M parameters), CPU, float32",
            "inputs": f"{args.videos} videos x 16 frames of 112x112, max_new_tokens 16 for generate",
            "results": results,
            "ratios": ratios,
            "argv": sys.argv[1:],
        },
        args.out,
    )


if __name__ == "__main__":
    main()
