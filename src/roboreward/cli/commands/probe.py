"""`roboreward probe VIDEO`: a video's frames, fps, size, duration and codec.

Every `ProbeConfig` field is an argument (``--help`` lists them with their defaults) and a key of the
``--config`` recipe; what the command line gives wins over the recipe.

Examples:
    roboreward probe episode_000000.mp4
    roboreward probe episode_000000.mp4 --json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from roboreward import video
from roboreward.cli.commands import COMMANDS
from roboreward.config import from_namespace


@dataclass
class ProbeConfig:
    """What `roboreward probe` reads and how it prints it."""

    video: str = field(metadata={"help": "path to a video file", "positional": True, "metavar": "VIDEO"})
    json: bool = field(default=False, metadata={"help": "print one JSON object", "switch": True})


def run(args: argparse.Namespace) -> int:
    """Print what `roboreward.video.probe` finds, and the backend that decodes the video.

    Args:
        args: the parsed command line (`ProbeConfig`'s fields).
    """
    config = from_namespace(ProbeConfig, args)
    info = video.probe(config.video)
    backend = video.select_backend(config.video, info=info)
    if config.json:
        print(json.dumps({"path": config.video, **asdict(info), "backend": backend}))
    else:
        print(
            f"{config.video}: {info.frames} frames, {info.fps:g} fps, {info.width}x{info.height}, "
            f"{info.duration:.2f} s, codec {info.codec} (decoded by {backend})"
        )
    return 0


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``probe`` on ``commands`` (what ``add_subparsers(parser_class=RecipeParser)`` returns).

    Args:
        commands: the sub-command registry of the ``roboreward`` parser.
    """
    parser = commands.add_parser(
        "probe",
        dataclass_types=ProbeConfig,
        recipe="probe",
        help=COMMANDS["probe"],
        description="Read a video's header and print its frames, fps, size, duration and codec, and which "
        "decoder (decord or PyAV) `auto` would use for it. Nothing is decoded.",
    )
    parser.set_defaults(func=run)
    return parser
