"""`roboreward push {dataset,model,space,metric} PATH --repo-id ORG/NAME`: release to the Hub.

Every field of `PushConfig` (and, for ``push model``, `PushModelConfig`) is an argument of that kind
(``--help`` lists them with their defaults) and a key of its ``--config`` recipe; the command line wins.

Examples:
    roboreward push model runs/3b --repo-id my-org/RoboReward-3B --dry-run --export release_review
    roboreward push dataset ./roboreward --repo-id my-org/RoboReward --private
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from typing import Any

from roboreward.apps.hub import KINDS, push
from roboreward.cli.commands import COMMANDS
from roboreward.config import from_namespace, with_metadata


@dataclass
class PushConfig:
    """What `roboreward push KIND` uploads, and where."""

    path: str = field(metadata={"help": "the folder to release", "positional": True, "metavar": "PATH"})
    repo_id: str = field(metadata={"help": "the Hub repository", "metavar": "ORG/NAME"})
    private: bool = field(default=False, metadata={"help": "create the repository private", "switch": True})
    revision: str | None = field(default=None, metadata={"help": "branch to push to (None: main)"})
    dry_run: bool = field(
        default=False, metadata={"help": "upload nothing; list (and --export) the tree", "switch": True}
    )
    export: str | None = field(
        default=None, metadata={"help": "with --dry-run: write the release tree here", "metavar": "DIR"}
    )
    json: bool = field(default=False, metadata={"help": "print the result as JSON", "switch": True})

    def __post_init__(self) -> None:
        if self.export and not self.dry_run:
            raise ValueError("--export writes the release for review: use it with --dry-run")


@dataclass
class PushModelConfig(PushConfig):
    """`PushConfig` and what only a model release has."""

    include_training_state: bool = field(
        default=False, metadata={"help": "keep checkpoints and optimizer states", "switch": True}
    )
    allow_card_without_results: bool = field(
        default=False,
        metadata={
            "help": "push a card with no RoboRewardBench results in its model-index (e.g. the one "
            "training writes)",
            "switch": True,
        },
    )


def run(args: argparse.Namespace) -> int:
    """Upload the release (or list it with ``--dry-run``) and print what went where.

    Args:
        args: the parsed command line (``kind`` and `PushConfig`'s fields).
    """
    config = from_namespace(PushModelConfig if args.kind == "model" else PushConfig, args)
    result = push(
        args.kind,
        config.path,
        config.repo_id,
        private=config.private,
        revision=config.revision,
        dry_run=config.dry_run,
        export=config.export,
        include_training_state=getattr(config, "include_training_state", False),
        allow_card_without_results=getattr(config, "allow_card_without_results", False),
    )
    if config.json:
        print(json.dumps(result.__dict__, indent=2))
        return 0
    verb = "would upload" if result.dry_run else "uploaded"
    size = f"{result.total_bytes / 2**20:.1f} MiB"
    print(f"{verb} {len(result.files)} files ({size}) to {result.repo_type} {result.repo_id}")
    for name in result.files:
        print(f"  {name}")
    if result.excluded:
        print(f"left out {len(result.excluded)} files (caches, trainer state, build work files)")
    if result.export:
        print(f"wrote the release tree to {result.export}")
    if result.url:
        print(result.url)
    return 0


#: Each kind: (what PATH is, the sub-command's description).
KIND_HELP = {
    "dataset": (
        "a folder built by `roboreward build` (or relabel, review export)",
        "Upload a built dataset: README.md card, data/*.parquet, build/relabel/verification reports "
        "(never OUT/.build), with upload_large_folder.",
    ),
    "metric": (
        "an evaluate metric module folder (metrics/NAME)",
        "Upload an evaluate metric module as a Space: NAME.py, README.md, app.py, requirements.txt.",
    ),
    "model": (
        "a saved reward model (trl_training/sft.py's output_dir)",
        "Upload a reward model: weights, config, processor, inference settings, training summary and its "
        "card. The card must be the toolkit's with RoboRewardBench results in its model-index "
        "(`roboreward card model --checkpoint DIR --bench BENCH_OUT`) unless --allow-card-without-results. "
        "Checkpoints and optimizer states stay out unless --include-training-state.",
    ),
    "space": (
        "a Gradio Space folder (spaces_demo/)",
        "Upload a Gradio Space: app.py, README.md front matter, requirements.txt and the toolkit's own "
        "source it runs on.",
    ),
}


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``push`` and its kinds (``push dataset``, ``push model``, ...) on ``commands``.

    Args:
        commands: the sub-command registry of the ``roboreward`` parser (``parser_class=RecipeParser``).
    """
    parser = commands.add_parser(
        "push",
        help=COMMANDS["push"],
        description="Upload exactly the files a release of this kind needs (no caches, no optimizer states "
        "unless asked). --dry-run --export DIR writes that tree locally for review instead. The token comes "
        "from the usual places (HF_TOKEN, `hf auth login`). `roboreward push KIND --help` for each kind.",
    )
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
    for kind in sorted(KINDS):
        what, description = KIND_HELP[kind]
        config = with_metadata(PushModelConfig if kind == "model" else PushConfig, path={"help": what})
        sub = kinds.add_parser(
            kind,
            dataclass_types=config,
            recipe=f"push {kind}",
            help=description.split(": ")[0].lower(),
            description=description,
        )
        sub.set_defaults(func=run)
    return parser
