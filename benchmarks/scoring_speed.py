"""Benchmark: videos/s of `RewardModel.score` (one forward pass) vs generate-then-parse.

    python benchmarks/scoring_speed.py [--videos 16] [--out benchmarks/results/scoring_speed.json]

Other integrations score a reward VLM by generating up to 16 new tokens and parsing "ANSWER: n";
`RewardModel.score` reads the five score-token logits after a prefilled "ANSWER: " in one forward
pass. Same model (the "small" tiny Qwen2.5-VL of `roboreward.testing.tiny`, random weights, on CPU),
same 16 frames per video, same inputs; batch 1 (`score` / `generate`) and batch 8 (`score_batch` /
`generate_batch`). The ratio is score throughput over generate throughput, measured in one run with
the four runs taking turns, so that other load on the machine slows them alike.

What generate costs depends on how many tokens the model writes before it stops, so the report also
gives the mean number of generated tokens and the share of answers `rubric.parse_answer` could read:
the random-weight model writes all 16 and never a parsable answer, while a trained one stops after
``ANSWER: n`` and its end token, a handful of tokens; the batch-1 ratio is an upper bound for it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _report import write_report

from roboreward.models.local import RewardModel
from roboreward.testing.tiny import make_tiny_vlm


def _interleaved(runs: dict[str, Callable[[list, list], Any]], clips: list, tasks: list, repeats: int):
    """Median seconds of each run over ``clips``; the runs take turns, so a busy machine slows all alike."""
    for fn in runs.values():
        fn(clips[:8], tasks[:8])  # warm-up
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn(clips, tasks)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def _new_tokens(model: RewardModel, clip: np.ndarray, task: str, max_new_tokens: int) -> int:
    """How many tokens greedy generation writes for one video, its stop token included."""
    inputs = model.prepare([clip], [task], prefill=False, fps=4.0)
    eos = model.model.generation_config.eos_token_id
    stops = set(eos if isinstance(eos, list) else [eos])
    with torch.inference_mode():
        out = model.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
    new = out[0, inputs["input_ids"].shape[1] :].tolist()
    return next((i + 1 for i, token in enumerate(new) if token in stops), len(new))


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
            "score_batch1": lambda v, t: [model.score(*pair, fps=4.0) for pair in zip(v, t, strict=True)],
            "generate_batch1": lambda v, t: [
                model.generate(*pair, max_new_tokens=16, fps=4.0) for pair in zip(v, t, strict=True)
            ],
            "score_batch8": lambda v, t: model.score_batch(v, t, batch_size=8, fps=4.0),
            "generate_batch8": lambda v, t: model.generate_batch(
                v, t, max_new_tokens=16, batch_size=8, fps=4.0
            ),
        }
        parameters = sum(p.numel() for p in model.model.parameters())
        for name, seconds in _interleaved(runs, clips, tasks, args.repeats).items():
            results[name] = {"seconds": round(seconds, 4), "videos_per_s": round(args.videos / seconds, 2)}
            print(f"{name:16s} {args.videos / seconds:8.2f} videos/s")
        answers = model.generate_batch(clips, tasks, max_new_tokens=16, batch_size=8, fps=4.0)
        generated = {
            "mean_new_tokens": statistics.mean(
                _new_tokens(model, clips[i], tasks[i], 16) for i in range(min(4, args.videos))
            ),
            "parsed_fraction": round(sum(a.score is not None for a in answers) / len(answers), 3),
        }
        print(f"generate: {generated}")
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
            "model": f"tiny 'small' Qwen2.5-VL ({parameters / 1e6:.1f} M parameters, random weights), CPU, "
            f"float32, {torch.get_num_threads()} threads",
            "inputs": f"{args.videos} videos x 16 frames of 112x112, max_new_tokens 16 for generate",
            "results": results,
            "generate": generated,
            "ratios": ratios,
            "argv": sys.argv[1:],
        },
        args.out,
    )


if __name__ == "__main__":
    main()
