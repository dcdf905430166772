"""`roboreward train --config RECIPE [--field value ...]`: fine-tune a reward model, from any install.

What ``trl_training/sft.py`` runs in a checkout (`roboreward.training.script.main`), as a command, the
way TRL's ``trl sft`` gives its script one. It trains in this process, so ``accelerate launch`` starts
it like a script: one copy per process.

Examples:
    roboreward train --config qwen2_5_vl_3b --dataset_name ./roboreward
    roboreward train --config tiny_cpu --model_name_or_path ./tiny-qwen2_5_vl --dataset_name ./ds
    accelerate launch --num_processes 8 -m roboreward.cli train --config qwen2_5_vl_7b
    roboreward train --help-all   # every field: RewardScriptArguments, RewardSFTConfig, ModelConfig
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from roboreward.cli.commands import COMMANDS
from roboreward.resources import shipped_recipes

#: What ``--help`` says about the flags it does not list (TRL's hundreds of fields, and seconds of
#: import to list them: ``--help-all``).
FIELDS = (
    "every field of RewardScriptArguments (dataset, frames, effective batch), RewardSFTConfig (TRL's "
    "SFTConfig with the paper's defaults) and TRL's ModelConfig (model, dtype, LoRA) is a flag, e.g. "
    "--dataset_name ./roboreward --output_dir runs/3b --max_steps 1000 --use_peft; the flags win over "
    "the recipe"
)


def run_argv(argv: Sequence[str]) -> int:
    """Train with ``argv`` (what follows ``roboreward train``); ``--help`` / ``--help-all`` print help.

    Args:
        argv: a ``--config`` recipe and any training field as a flag.
    """
    argv = list(argv)
    if "--help-all" in argv:
        from roboreward.training.script import make_parser

        make_parser("roboreward train").print_help()
        return 0
    if "-h" in argv or "--help" in argv:
        from roboreward.cli import build_parser

        build_parser("train").parse_args(["train", "--help"])  # exits after printing
    if not argv:
        raise ValueError(
            f"give a training recipe: --config NAME (shipped: {', '.join(shipped_recipes('train'))}) "
            "or --config FILE.yaml; `roboreward train --help` says more"
        )
    from roboreward.training.script import main

    return main(argv, prog="roboreward train")


def run(args: argparse.Namespace) -> int:
    """Entry point when the ``roboreward`` parser parsed the command line (``--help`` only: `main`
    of `roboreward.cli` hands ``train`` its arguments unparsed, TRL's parser reads them).

    Args:
        args: the parsed command line.
    """
    return run_argv(["--config", args.config, *args.fields])


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``train`` on ``commands`` (what ``add_subparsers(parser_class=RecipeParser)`` returns).

    Args:
        commands: the sub-command registry of the ``roboreward`` parser.
    """
    names = ", ".join(shipped_recipes("train"))
    parser = commands.add_parser(
        "train",
        help=COMMANDS["train"],
        usage="roboreward train --config RECIPE [--FIELD VALUE ...]",
        description="Fine-tune a Qwen2.5-VL / Qwen3-VL reward model on a RoboReward folder, the paper's way "
        "(vision tower frozen, lr 3e-6, weight decay 0.05, effective batch 64, the best checkpoint by "
        "validation MAE), with TRL. What trl_training/sft.py runs in a checkout; under `accelerate launch "
        "-m roboreward.cli train ...` each process runs it.",
        epilog=FIELDS + ".",
    )
    parser.add_argument(
        "--config",
        metavar="RECIPE",
        required=True,
        help=f"a YAML training recipe, or the name of one the toolkit ships ({names})",
    )
    parser.add_argument(
        "--help-all",
        action="store_true",
        help="list every training field with its default (imports TRL: a few seconds)",
    )
    parser.add_argument("fields", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.set_defaults(func=run)
    return parser
