"""`roboreward bench`: RoboRewardBench for any set of reward models.

Every `roboreward.bench.BenchConfig` field is a flag (``--help`` lists them with their defaults) and
a key of the ``--config`` recipe; the flags given win over the recipe.

Examples:
    roboreward bench --dataset ./roboreward --model runs/3b --model baseline:constant-3 --out bench_out
    roboreward bench --config bench.yaml --max-examples 50 --json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from roboreward.bench import BenchConfig, run_bench
from roboreward.config import comma_list, from_namespace, with_metadata

#: `BenchConfig` with the help (and flag syntax) of each field; its defaults stay `BenchConfig`'s.
BenchArguments = with_metadata(
    BenchConfig,
    dataset={"help": "a built RoboReward folder or a Hub dataset id", "metavar": "DIR_OR_ID"},
    models={
        "help": "a model to score (repeatable): a checkpoint folder or Hub id, openai:URL#name, "
        "predictions:FILE.jsonl, baseline:constant-N or baseline:random",
        "aliases": ["--model"],
        "repeat": True,
        "metavar": "SPEC",
    },
    out={"help": "output folder (predictions are cached there per model and example)", "metavar": "DIR"},
    split={"help": "the split to score"},
    max_examples={"help": "score only the first N examples (None: all)", "metavar": "N"},
    subsets={"help": "comma-separated sources to keep (None: all)", "parse": comma_list, "metavar": "LIST"},
    batch_size={"help": "examples per forward pass", "metavar": "N"},
    num_frames={"help": "frames sampled from each video", "metavar": "N"},
    max_side={"help": "longer side of those frames", "metavar": "PX"},
    request_timeout={"help": "seconds per request to an openai: model", "metavar": "S"},
    seed={"help": "seed of baseline:random"},
)


def run(args: argparse.Namespace) -> int:
    """Benchmark the models and print the leaderboard (or results.json with ``--json``).

    Args:
        args: the parsed command line.
    """
    config = from_namespace(BenchArguments, args)
    results = run_bench(config)
    if args.json:
        print(json.dumps(results, indent=2, sort_keys=True))
    else:
        print((Path(config.out) / "leaderboard.md").read_text())
    return 0


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``bench`` on ``commands`` (what ``add_subparsers(parser_class=RecipeParser)`` returns).

    Args:
        commands: the sub-command registry of the ``roboreward`` parser.
    """
    parser = commands.add_parser(
        "bench",
        dataclass_types=BenchArguments,
        recipe="bench",
        help="benchmark reward models on RoboRewardBench: MAE and mean win rate per subset",
        description="Score each --model on a RoboReward split and write predictions/, results.json, "
        "leaderboard.md/.csv and two plots to --out. A model is a checkpoint folder or Hub id, "
        "openai:URL#name, predictions:FILE.jsonl, baseline:constant-N or baseline:random. Predictions are "
        "cached per (model, example): a re-run only scores what is missing.",
    )
    parser.add_argument("--json", action="store_true", help="print results.json")
    parser.set_defaults(func=run)
    return parser
