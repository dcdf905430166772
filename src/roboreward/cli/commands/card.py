"""`roboreward card dataset DIR` and `roboreward card model --checkpoint DIR [--bench DIR]`."""

from __future__ import annotations

import argparse
from typing import Any

from roboreward.cli.commands import COMMANDS
from roboreward.dataset import cards


def run(args: argparse.Namespace) -> int:
    """Render the dataset or model card and say where it is.

    Args:
        args: the parsed command line.
    """
    if args.what == "dataset":
        path = cards.render_dataset_card(args.folder, repo_id=args.repo_id, license=args.license)
    else:
        path = cards.render_model_card(
            args.checkpoint,
            bench=args.bench,
            out=args.out,
            repo_id=args.repo_id,
            bench_model=args.bench_model,
            base_model=args.base_model,
            license=args.license or "apache-2.0",
        )
    print(f"wrote {path}")
    return 0


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``card`` (with its ``dataset`` and ``model`` kinds) on ``commands``.

    Args:
        commands: the sub-command registry of the ``roboreward`` parser.
    """
    parser = commands.add_parser(
        "card",
        help=COMMANDS["card"],
        description="Write README.md cards with Hub metadata: `card dataset FOLDER` for a built dataset, "
        "`card model --checkpoint DIR --bench BENCH_OUT` for a reward model with its benchmark results.",
    )
    kinds = parser.add_subparsers(dest="what", required=True, metavar="KIND")
    dataset = kinds.add_parser(
        "dataset",
        help="README.md of a built dataset, from build/relabel reports",
        description="Write FOLDER/README.md: configs, splits and features for `datasets.load_dataset`, rows "
        "per source and reward from build_report.json, relabeling from relabel_report.json.",
    )
    dataset.add_argument("folder", help="a folder written by `roboreward build` or `roboreward relabel`")
    dataset.add_argument("--repo-id", help="the Hub id to show in the usage snippet")
    dataset.add_argument("--license", help="license id for the card's metadata (None: the build's)")
    dataset.set_defaults(func=run)
    model = kinds.add_parser(
        "model",
        help="model card with RoboRewardBench results in model-index",
        description="Write the reward model's card (default CHECKPOINT/README.md): base model, rubric, "
        "training summary, usage, and with --bench the RoboRewardBench results in its model-index (what "
        "`roboreward push model` requires).",
    )
    model.add_argument(
        "--checkpoint", required=True, help="a saved reward model (output of trl_training/sft.py)"
    )
    model.add_argument("--bench", help="a `roboreward bench` output folder (its results.json)")
    model.add_argument("--bench-model", help="the model's name in results.json, when it cannot be told")
    model.add_argument("--out", help="where to write (None: CHECKPOINT/README.md)")
    model.add_argument("--repo-id", help="the Hub id to show in the usage snippets")
    model.add_argument(
        "--base-model", help="the model it was fine-tuned from (None: from the training summary)"
    )
    model.add_argument("--license", help="license id (None: apache-2.0)")
    model.set_defaults(func=run)
    return parser
