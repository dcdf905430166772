"""`roboreward bench`: RoboRewardBench for any set of reward models.

Every `roboreward.bench.run.BenchConfig` field is a flag (``--help`` lists them with their defaults) and
a key of the ``--config`` recipe; the flags given win over the recipe.

Examples:
    roboreward bench --dataset ./roboreward --model runs/3b --model baseline:constant-3 --out bench_out
    roboreward bench --config bench.yaml --max-examples 50 --json
    # one process per GPU, each scoring its share (`roboreward.bench.parallel`); the main one reports
    accelerate launch --num_processes 8 -m roboreward.cli bench --dataset ./roboreward --model runs/3b
    # the same on CPU: --multi_gpu is what makes accelerate start several processes
    accelerate launch --multi_gpu --num_processes 2 --main_process_port 0 -m roboreward.cli bench ...
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from roboreward import rubric
from roboreward.bench.run import BenchConfig, results_json, run_bench
from roboreward.cli.commands import COMMANDS
from roboreward.config import comma_list, from_namespace, with_metadata

#: `BenchConfig` with the help (and flag syntax) of each field; its defaults stay `BenchConfig`'s.
BenchArguments = with_metadata(
    BenchConfig,
    dataset={
        "help": "a folder built by `roboreward build`, the public release's layout (split/metadata.jsonl + "
        "one folder per source; local or a Hub id such as teetone/RoboReward), or a Hub dataset id",
        "metavar": "DIR_OR_ID",
    },
    models={
        "help": "a model to score (repeatable): a checkpoint folder or Hub id (hf:PATH also works), "
        "generate:PATH, openai:URL#name (text answers), openai+logprobs:URL#name (the five-score "
        "distribution from log-probabilities), predictions:FILE.jsonl, baseline:constant-N or "
        "baseline:random",
        "flag": "--model",
        "repeat": True,
        "metavar": "SPEC",
    },
    out={"help": "output folder (predictions are cached there)", "metavar": "DIR"},
    split={"help": "the split to score; 'validation' reads the release's val/"},
    max_examples={
        "help": "score a seeded sample of N examples, stratified by subset (None: all)",
        "metavar": "N",
    },
    subsets={
        "help": "comma-separated subsets (sources) to keep (None: all)",
        "parse": comma_list,
        "metavar": "LIST",
    },
    batch_size={"help": "episodes per forward pass of a local model", "metavar": "N"},
    num_frames={
        "help": "frames per video; overrides each checkpoint's own setting with a warning (None: the "
        "checkpoint's; for served models a known release's, else 16)",
        "metavar": "N",
    },
    max_side={
        "help": "longer side of decoded frames; overrides each checkpoint's own setting (None: the "
        "checkpoint's; for served models a known release's, else 448)",
        "metavar": "PX",
    },
    prompt={
        "help": "prompt preset; overrides each checkpoint's own (None: the checkpoint's; release for "
        "teetone/RoboReward-4B/8B, served or not; toolkit for other served models); helm asks as "
        "HELM's RoboRewardBench does: text before video, the frames a Qwen3-VL processor's defaults pick",
        "choices": list(rubric.PROMPT_PRESETS),
    },
    cameras={
        "help": "comma-separated cameras each model is shown of a row's rollout in one prompt, in this "
        "order (e.g. left,right: rows of one RoboArena run built with --roboarena-cameras); overrides "
        "each checkpoint's own with a warning; served models get them as labelled video parts of one "
        "message (None: each checkpoint's cameras; one video for served models)",
        "parse": comma_list,
        "metavar": "LIST",
    },
    request_timeout={"help": "seconds per request to an openai: model", "metavar": "S"},
    concurrency={
        "help": "requests in flight at once to an openai: / openai+logprobs: model, over its endpoints",
        "metavar": "N",
    },
    video_input={
        "help": "how frames reach a served model: auto (one video part when the server takes it, else "
        "images), video or frames",
        "choices": ["auto", "video", "frames"],
    },
    seed={"help": "seed of baseline:random and of the --max-examples sample"},
    conventions={
        "help": "roboreward: an unparsable answer costs the worst error for its example; helm: HELM's "
        "RoboRewardBench metric (HELM's parser, 4.0 for no number, out-of-range numbers kept)",
        "choices": ["roboreward", "helm"],
    },
    voc={
        "help": "value-order correlation (OpenGVL) of local checkpoints: a K-point progress curve per "
        "reward-5 episode, its Spearman correlation with time, averaged (None: not computed)",
        "metavar": "K",
    },
    preference_pairs={
        "help": "HELM's A / B / tie preference scenario asked directly of generate: and served models: "
        "N seeded pairs of rows of one RoboArena session (or task), both videos in one prompt in "
        "HELM's wording (None: not asked)",
        "metavar": "N",
    },
)


def run(args: argparse.Namespace) -> int:
    """Benchmark the models and print the leaderboard (or results.json with ``--json``).

    Args:
        args: the parsed command line.
    """
    config = from_namespace(BenchArguments, args)
    results = run_bench(config)
    if results is None:  # not the main process of `accelerate launch`: that one prints
        return 0
    if args.json:
        print(results_json(results), end="")
    else:
        print((Path(config.out) / "leaderboard.md").read_text())
        written = sorted(p.name for p in Path(config.out).iterdir() if p.is_file())
        print(f"wrote {config.out}: {', '.join(written)} and predictions/")
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
        help=COMMANDS["bench"],
        description="Score each --model on a RoboReward split and write predictions/, results.json, "
        "leaderboard.md/.csv and two plots to --out. A model is a checkpoint folder or Hub id (scored "
        "with its own inference settings), generate:PATH (free-text answers, parsed), openai:URL#name, "
        "openai+logprobs:URL#name, "
        "predictions:FILE.jsonl, baseline:constant-N or baseline:random. Predictions are cached per "
        "(model, example, settings): a re-run only scores what is missing. Under `accelerate launch "
        "--num_processes N -m roboreward.cli bench ...` each process scores its share of the examples "
        "(a local checkpoint on its own GPU; on CPU add --multi_gpu) and the main one writes the results, "
        "identical to one process's (--voc on the main process only).",
    )
    parser.add_argument("--json", action="store_true", help="print results.json")
    parser.set_defaults(func=run)
    return parser
