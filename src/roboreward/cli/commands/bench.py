"""`roboreward bench`: RoboRewardBench for any set of reward models."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def run(args: argparse.Namespace) -> int:
    from roboreward.bench import BenchConfig, run_bench

    config = BenchConfig(
        dataset=args.dataset,
        models=args.model,
        out=args.out,
        split=args.split,
        max_examples=args.max_examples,
        subsets=args.subsets.split(",") if args.subsets else None,
        batch_size=args.batch_size,
        num_frames=args.num_frames,
        seed=args.seed,
    )
    results = run_bench(config)
    if args.json:
        print(json.dumps(results, indent=2, sort_keys=True))
    else:
        print((Path(args.out) / "leaderboard.md").read_text())
    return 0


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "bench",
        help="benchmark reward models on RoboRewardBench: MAE and mean win rate per subset",
        description="Score each --model on a RoboReward split and write predictions/, results.json, "
        "leaderboard.md/.csv and two plots to --out. A model is a checkpoint folder or Hub id, "
        "openai:URL#name, predictions:FILE.jsonl, baseline:constant-N or baseline:random. Predictions are "
        "cached per (model, example): a re-run only scores what is missing.",
    )
    parser.add_argument("--dataset", required=True, help="a built RoboReward folder or a Hub dataset id")
    parser.add_argument("--split", default="test")
    parser.add_argument("--model", action="append", required=True, metavar="SPEC", help="repeatable")
    parser.add_argument("--out", default="bench_out")
    parser.add_argument("--max-examples", type=int, help="score only the first N examples")
    parser.add_argument("--subsets", help="comma-separated sources to keep")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-frames", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0, help="seed of baseline:random")
    parser.add_argument("--json", action="store_true", help="print results.json")
    parser.set_defaults(func=run)
    return parser
