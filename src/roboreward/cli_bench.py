"""`roboreward bench`: RoboRewardBench for any set of reward models."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from roboreward import rubric


def _bench(args: argparse.Namespace) -> int:
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
        max_side=args.max_side,
        prompt=args.prompt,
        seed=args.seed,
        conventions=args.conventions,
    )
    results = run_bench(config)
    if args.json:
        print(json.dumps(results, indent=2, sort_keys=True))
    else:
        print((Path(args.out) / "leaderboard.md").read_text())
    return 0


def add_bench_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "bench",
        help="benchmark reward models on RoboRewardBench: MAE and mean win rate per subset",
        description="Score each --model on a RoboReward split and write predictions/, results.json, "
        "leaderboard.md/.csv and two plots to --out. A model is a checkpoint folder or Hub id (scored "
        "with its own inference settings), generate:PATH (free-text answers, parsed), openai:URL#name, "
        "predictions:FILE.jsonl, baseline:constant-N or baseline:random. Predictions are cached per "
        "(model, example, settings): a re-run only scores what is missing.",
    )
    parser.add_argument(
        "--dataset",
        required=True,
        help="a folder built by `roboreward build`, the public release's layout (split/metadata.jsonl + "
        "one folder per source; local or a Hub id such as teetone/RoboReward), or a Hub dataset id",
    )
    parser.add_argument(
        "--split",
        default="test",
        help="the split to score; 'validation' reads the release's val/ (default: test)",
    )
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="SPEC",
        help="repeatable: a checkpoint folder or Hub id (hf:PATH also works), generate:PATH, "
        "openai:URL#name, predictions:FILE.jsonl, baseline:constant-N or baseline:random",
    )
    parser.add_argument("--out", default="bench_out", help="output folder (default: bench_out)")
    parser.add_argument(
        "--max-examples",
        type=int,
        help="score a seeded sample of N examples, stratified by subset (default: all)",
    )
    parser.add_argument("--subsets", help="comma-separated subsets (sources) to keep (default: all)")
    parser.add_argument(
        "--batch-size", type=int, default=8, help="episodes per forward pass of a local model (default: 8)"
    )
    parser.add_argument(
        "--num-frames",
        type=int,
        help="frames per video; overrides each checkpoint's own setting with a warning (default: the "
        "checkpoint's; 16 for served models)",
    )
    parser.add_argument(
        "--max-side",
        type=int,
        help="longer side of decoded frames; overrides each checkpoint's own setting (default: the "
        "checkpoint's; 448 for served models)",
    )
    parser.add_argument(
        "--prompt",
        choices=list(rubric.PROMPT_PRESETS),
        help="prompt preset; overrides each checkpoint's own (default: the checkpoint's; release for "
        "teetone/RoboReward-4B/8B; toolkit for served models)",
    )
    parser.add_argument(
        "--conventions",
        choices=["roboreward", "helm"],
        default="roboreward",
        help="roboreward: an unparsable answer costs the worst error for its example; helm: HELM's "
        "RoboRewardBench metric (HELM's parser, 4.0 for no number, out-of-range numbers kept) "
        "(default: roboreward)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of baseline:random and of the --max-examples sample (default: 0)",
    )
    parser.add_argument("--json", action="store_true", help="print results.json")
    parser.set_defaults(func=_bench)
