"""`roboreward sim`: procedural tabletop episodes with ground-truth rewards, in a real on-disk layout.

Examples:
    roboreward sim --out sim_oxe --episodes 24
    roboreward sim --out sim_arena --episodes 36 --layout roboarena
"""

from __future__ import annotations

import argparse
from typing import Any

from roboreward import sim


def run(args: argparse.Namespace) -> int:
    """Write the simulated dataset and say where its ground truth is.

    Args:
        args: the parsed command line.
    """
    codec = {"h264": "libx264", "av1": "libsvtav1"}[args.codec]
    out = sim.write_sim_dataset(
        args.out, episodes=args.episodes, layout=args.layout, seed=args.seed, codec=codec
    )
    print(
        f"wrote {args.episodes} {args.layout} episodes to {out} (ground truth in {out / 'sim_truth.jsonl'})"
    )
    return 0


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``sim`` on ``commands`` (what ``add_subparsers`` returns).

    Args:
        commands: the sub-command registry of the ``roboreward`` parser.
    """
    parser = commands.add_parser(
        "sim",
        help="render procedural tabletop episodes with ground-truth rewards in LeRobot or RoboArena layout",
    )
    parser.add_argument("--out", required=True, help="new folder to write")
    parser.add_argument("--episodes", type=int, default=24, help="how many rollouts (default 24)")
    parser.add_argument("--layout", choices=["lerobot", "roboarena"], default="lerobot")
    parser.add_argument(
        "--codec", choices=["h264", "av1"], default="h264", help="LeRobot videos (default h264)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)
    return parser
