"""`roboreward push {dataset,model,space,metric} PATH --repo-id ORG/NAME`: release to the Hub."""

from __future__ import annotations

import argparse
import json
from typing import Any

from roboreward.apps.hub import KINDS, push
from roboreward.cli.commands import COMMANDS


def run(args: argparse.Namespace) -> int:
    """Upload the release (or list it with ``--dry-run``) and print what went where.

    Args:
        args: the parsed command line.
    """
    if args.export and not args.dry_run:
        raise ValueError("--export writes the release for review: use it with --dry-run")
    result = push(
        args.kind,
        args.path,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        dry_run=args.dry_run,
        export=args.export,
        include_training_state=getattr(args, "include_training_state", False),
        allow_card_without_results=getattr(args, "allow_card_without_results", False),
    )
    if args.json:
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
        commands: the sub-command registry of the ``roboreward`` parser.
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
        sub = kinds.add_parser(kind, help=description.split(": ")[0].lower(), description=description)
        sub.add_argument("path", help=what)
        sub.add_argument("--repo-id", required=True, metavar="ORG/NAME", help="the Hub repository")
        sub.add_argument("--private", action="store_true", help="create the repository private")
        sub.add_argument("--revision", help="branch to push to (None: main)")
        sub.add_argument(
            "--dry-run", action="store_true", help="upload nothing; list (and --export) the tree"
        )
        sub.add_argument("--export", metavar="DIR", help="with --dry-run: write the release tree here")
        if kind == "model":
            sub.add_argument(
                "--include-training-state",
                action="store_true",
                help="keep checkpoints and optimizer states",
            )
            sub.add_argument(
                "--allow-card-without-results",
                action="store_true",
                help="push a card with no RoboRewardBench results in its model-index (e.g. the one "
                "training writes)",
            )
        sub.add_argument("--json", action="store_true", help="print the result as JSON")
        sub.set_defaults(func=run)
    return parser
