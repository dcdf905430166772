"""`roboreward build`: build RoboReward from LeRobot (OXE), RoboArena and manifest sources.

Every `BuildConfig` field is a flag (``--help`` lists them with their defaults) and a key of the
``--config`` recipe; the flags given win over the recipe.

Examples:
    roboreward build --config dataset_builder/configs/roboreward.yaml --roboarena /data/roboarena/DataDump
    roboreward build --manifest my_rollouts.jsonl --out roboreward_small --max-frames 32 --json
    roboreward build --config roboreward --executor local --tasks 16 --workers 8
    roboreward build --config roboreward --executor slurm --tasks 64 --slurm-partition cpu --slurm-wait
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from roboreward.cli.commands import COMMANDS
from roboreward.config import from_namespace
from roboreward.dataset.build_options import BuildConfig
from roboreward.dataset.executors import ExecutorConfig


def run(args: argparse.Namespace) -> int:
    """Build the dataset and print its summary (or the build report with ``--json``).

    Args:
        args: the parsed command line.
    """
    from roboreward.dataset.builder import format_summary  # datasets: not for --help
    from roboreward.dataset.pipeline import build_with_relabel  # torch, through relabeling: not for --help

    executor = from_namespace(ExecutorConfig, args)
    report = build_with_relabel(from_namespace(BuildConfig, args), executor=executor)
    if "submitted" in report:  # a Slurm submission that does not wait
        jobs = report["submitted"]
        print(
            json.dumps(report, indent=2)
            if args.json
            else (
                f"submitted Slurm job {jobs['tasks_job']} ({executor.tasks} tasks) and merge job "
                f"{jobs['merge_job']}; they write {report['out']} (logs in {jobs['logs']}). Run the same "
                "command again to resubmit only the tasks that did not finish."
            )
        )
        return 0
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(format_summary(report))
    return 0


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``build`` on ``commands`` (what ``add_subparsers(parser_class=RecipeParser)`` returns).

    Args:
        commands: the sub-command registry of the ``roboreward`` parser.
    """
    parser = commands.add_parser(
        "build",
        dataclass_types=[BuildConfig, ExecutorConfig],
        recipe="build",
        help=COMMANDS["build"],
        description="Build RoboReward: read the sources, sample OXE uniformly across sub-datasets, split by "
        "source rollout, re-encode videos to H.264 and export Parquet shards, a dataset card and "
        "build_report.json. Flags override the --config recipe.",
    )
    parser.add_argument("--json", action="store_true", help="print the build report as JSON")
    parser.set_defaults(func=run)
    return parser
