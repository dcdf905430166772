"""`roboreward probe VIDEO`: a video's frames, fps, size, duration and codec.

Examples:
    roboreward probe episode_000000.mp4
    roboreward probe episode_000000.mp4 --json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from roboreward import video
from roboreward.cli.commands import COMMANDS


def run(args: argparse.Namespace) -> int:
    """Print what `roboreward.video.probe` finds, and the backend that decodes the video.

    Args:
        args: the parsed command line (``video``, ``json``).
    """
    info = video.probe(args.video)
    backend = video.select_backend(args.video, info=info)
    if args.json:
        print(json.dumps({"path": args.video, **asdict(info), "backend": backend}))
    else:
        print(
            f"{args.video}: {info.frames} frames, {info.fps:g} fps, {info.width}x{info.height}, "
            f"{info.duration:.2f} s, codec {info.codec} (decoded by {backend})"
        )
    return 0


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``probe`` on ``commands`` (what ``add_subparsers`` returns).

    Args:
        commands: the sub-command registry of the ``roboreward`` parser.
    """
    parser = commands.add_parser(
        "probe",
        help=COMMANDS["probe"],
        description="Read a video's header and print its frames, fps, size, duration and codec, and which "
        "decoder (decord or PyAV) `auto` would use for it. Nothing is decoded.",
    )
    parser.add_argument("video", help="path to a video file")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)
    return parser
