"""`roboreward card dataset DIR` and `roboreward card model --checkpoint DIR [--bench DIR]`.

Every field of `CardDatasetConfig` / `CardModelConfig` is an argument of its kind (``--help`` lists
them with their defaults) and a key of that kind's ``--config`` recipe; the command line wins.

Examples:
    roboreward card dataset ./roboreward --repo-id my-org/RoboReward
    roboreward card model --checkpoint runs/3b --bench bench_out --repo-id my-org/RoboReward-3B
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from roboreward.cli.commands import COMMANDS
from roboreward.config import from_namespace
from roboreward.dataset import cards


@dataclass
class CardDatasetConfig:
    """What `roboreward card dataset` renders."""

    folder: str = field(
        metadata={
            "help": "a folder written by `roboreward build` or `roboreward relabel`",
            "positional": True,
            "metavar": "FOLDER",
        }
    )
    repo_id: str | None = field(
        default=None, metadata={"help": "the Hub id to show in the usage snippet", "metavar": "ORG/NAME"}
    )
    license: str | None = field(
        default=None, metadata={"help": "license id for the card's metadata (None: the build's)"}
    )


@dataclass
class CardModelConfig:
    """What `roboreward card model` renders."""

    checkpoint: str = field(
        metadata={"help": "a saved reward model (output of trl_training/sft.py)", "metavar": "DIR"}
    )
    bench: str | None = field(
        default=None,
        metadata={"help": "a `roboreward bench` output folder (its results.json)", "metavar": "DIR"},
    )
    bench_model: str | None = field(
        default=None, metadata={"help": "the model's name in results.json, when it cannot be told"}
    )
    out: str | None = field(
        default=None, metadata={"help": "where to write (None: CHECKPOINT/README.md)", "metavar": "FILE"}
    )
    repo_id: str | None = field(
        default=None, metadata={"help": "the Hub id to show in the usage snippets", "metavar": "ORG/NAME"}
    )
    base_model: str | None = field(
        default=None, metadata={"help": "the model it was fine-tuned from (None: from the training summary)"}
    )
    license: str = field(default="apache-2.0", metadata={"help": "license id"})


def run_dataset(args: argparse.Namespace) -> int:
    """Render the dataset card and say where it is.

    Args:
        args: the parsed command line (`CardDatasetConfig`'s fields).
    """
    config = from_namespace(CardDatasetConfig, args)
    path = cards.render_dataset_card(config.folder, repo_id=config.repo_id, license=config.license)
    print(f"wrote {path}")
    return 0


def run_model(args: argparse.Namespace) -> int:
    """Render the model card and say where it is.

    Args:
        args: the parsed command line (`CardModelConfig`'s fields).
    """
    config = from_namespace(CardModelConfig, args)
    path = cards.render_model_card(
        config.checkpoint,
        bench=config.bench,
        out=config.out,
        repo_id=config.repo_id,
        bench_model=config.bench_model,
        base_model=config.base_model,
        license=config.license,
    )
    print(f"wrote {path}")
    return 0


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``card`` (with its ``dataset`` and ``model`` kinds) on ``commands``.

    Args:
        commands: the sub-command registry of the ``roboreward`` parser (``parser_class=RecipeParser``).
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
        dataclass_types=CardDatasetConfig,
        recipe="card dataset",
        help="README.md of a built dataset, from build/relabel reports",
        description="Write FOLDER/README.md: configs, splits and features for `datasets.load_dataset`, rows "
        "per source and reward from build_report.json, relabeling from relabel_report.json.",
    )
    dataset.set_defaults(func=run_dataset)
    model = kinds.add_parser(
        "model",
        dataclass_types=CardModelConfig,
        recipe="card model",
        help="model card with RoboRewardBench results in model-index",
        description="Write the reward model's card (default CHECKPOINT/README.md): base model, rubric, "
        "training summary, usage, and with --bench the RoboRewardBench results in its model-index (what "
        "`roboreward push model` requires).",
    )
    model.set_defaults(func=run_model)
    return parser
