"""`roboreward push {dataset,model,space,metric} PATH --repo-id ORG/NAME`: release to the Hub."""

from __future__ import annotations

import argparse
import json
from typing import Any

from roboreward.cli.commands import COMMANDS
from roboreward.hub import KINDS, push


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
        include_training_state=args.include_training_state,
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


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``push`` on ``commands`` (what ``add_subparsers`` returns).

    Args:
        commands: the sub-command registry of the ``roboreward`` parser.
    """
    parser = commands.add_parser(
        "push",
        help=COMMANDS["push"],
        description="Upload exactly the files a release of this kind needs (no caches, no optimizer states "
        "unless asked). --dry-run --export DIR writes that tree locally for review instead. The token comes "
        "from the usual places (HF_TOKEN, `hf auth login`).",
    )
    parser.add_argument("kind", choices=sorted(KINDS), help="what the folder holds")
    parser.add_argument("path", help="the folder to release")
    parser.add_argument("--repo-id", required=True, metavar="ORG/NAME", help="the Hub repository")
    parser.add_argument("--private", action="store_true", help="create the repository private")
    parser.add_argument("--revision", help="branch to push to (None: main)")
    parser.add_argument("--dry-run", action="store_true", help="upload nothing; list (and --export) the tree")
    parser.add_argument("--export", metavar="DIR", help="with --dry-run: write the release tree here")
    parser.add_argument(
        "--include-training-state", action="store_true", help="models: keep checkpoints and optimizer states"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)
    return parser
