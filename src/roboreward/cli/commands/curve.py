"""`roboreward curve`: the reward model's progress curve over one episode, as JSON and a PNG.

Every `roboreward.apps.curves.CurveConfig` field is a flag (``--help`` lists them with their defaults);
the video is the one positional argument.

Examples:
    roboreward curve episode.mp4 --task "open the drawer" --model runs/3b --out curve_out
    roboreward curve episode.mp4 --task "open the drawer" --model teetone/RoboReward-4B --points 16 --json
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from roboreward.cli.commands import COMMANDS
from roboreward.config import from_namespace


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``curve`` on ``commands`` (what ``add_subparsers(parser_class=RecipeParser)`` returns).

    Args:
        commands: the sub-command registry of the ``roboreward`` parser.
    """
    from roboreward.apps.curves import CurveConfig

    parser = commands.add_parser(
        "curve",
        dataclass_types=CurveConfig,
        recipe="curve",
        help=COMMANDS["curve"],
        description="Score the K prefixes of an episode ending at 1/K, 2/K, ..., 1 of its length (the "
        "model's own frame policy applied to each, batched) and write OUT/curve.json (per point: time, "
        "five probabilities, expected score, reward; the curve's value-order correlation) and "
        "OUT/curve.png (the curve with a +-1 std band, in a legend with its VOC, above a strip of the "
        "frames at those points).",
    )
    parser.add_argument("video", metavar="VIDEO", help="the episode video")
    parser.add_argument("--json", action="store_true", help="print curve.json")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Score the curve, write it, and print a one-line-per-point table (or the JSON with ``--json``).

    Args:
        args: the parsed command line.
    """
    from roboreward.apps.curves import CurveConfig, run_curve

    config = from_namespace(CurveConfig, args)
    curve = run_curve(args.video, config)
    if args.json:
        print((Path(config.out) / "curve.json").read_text().strip())
        return 0
    print(f"{args.video}: {config.task!r}")
    print("  time  expected  score")
    for point in curve.points:
        print(f"{point.time:6.2f}  {point.result.expected:8.3f}  {point.result.score:5d}")
    print(f"wrote {Path(config.out) / 'curve.json'} and curve.png")
    return 0
