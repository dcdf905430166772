"""The `roboreward` command line: one sub-command per part of the toolkit, one module per command
(`roboreward.cli.commands`), as TRL's ``trl/cli/commands/``.

Examples:
    roboreward --help
    roboreward probe episode_000000.mp4 --json
    roboreward demo
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from roboreward import __version__
from roboreward.cli.commands import COMMANDS, load
from roboreward.config import RecipeParser

__all__ = ["build_parser", "main"]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``roboreward`` parser with the sub-commands of `roboreward.cli.commands` registered.

    Args:
        command: register only this command's flags (the others by name and help: their modules,
            and what they import, are not loaded); None registers every command's flags.
    """
    parser = argparse.ArgumentParser(
        prog="roboreward",
        description="Build RoboReward, train and benchmark vision-language reward models for robotics.",
    )
    parser.add_argument("--version", action="version", version=f"roboreward {__version__}")
    registry = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=RecipeParser
    )
    for name, text in COMMANDS.items():
        if command is None or name == command:
            load(name).add_parser(registry)
        else:
            registry.add_parser(name, help=text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `roboreward` console script; returns the exit code.

    Args:
        argv: the arguments after ``roboreward`` (default: ``sys.argv[1:]``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((arg for arg in argv if not arg.startswith("-")), "")
    try:
        if command == "train":  # TRL's parser reads its flags, as `trl sft` hands them to its script
            return load("train").run_argv(argv[argv.index("train") + 1 :])
        # only the command given is loaded; its parser reads a --config recipe (it may fail: ValueError)
        args = build_parser(command if command in COMMANDS else "").parse_args(argv)
        return args.func(args)
    except Exception as exc:
        if not isinstance(exc, _reported_errors()):
            raise
        print(f"roboreward {command}: error: {exc}", file=sys.stderr)
        return 1


def _reported_errors() -> tuple[type[Exception], ...]:
    """The errors a command reports in one line (imported when one is raised: `--help` stays light)."""
    from roboreward.apps.hub import HubError
    from roboreward.extras import MissingExtraError
    from roboreward.models.openai_chat import BackendError
    from roboreward.models.remote import RewardServerError
    from roboreward.video import VideoDecodeError

    return (
        VideoDecodeError,
        HubError,
        MissingExtraError,
        ValueError,
        OSError,
        BackendError,
        RewardServerError,
    )
