"""`roboreward demo`: the offline end-to-end demo (what `make demo` runs).

Examples:
    roboreward demo
    roboreward demo --out demo_output --steps 200 --serve
"""

from __future__ import annotations

import argparse
from typing import Any

from roboreward.demo import DemoConfig, run_demo


def run(args: argparse.Namespace) -> int:
    """Run the demo: sim -> build -> train -> bench -> card (optionally open the Space).

    Args:
        args: the parsed command line.
    """
    run_demo(
        DemoConfig(
            out=args.out,
            arena_episodes=args.arena_episodes,
            oxe_episodes=args.oxe_episodes,
            train_steps=args.steps,
            seed=args.seed,
            serve=args.serve,
        )
    )
    return 0


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``demo`` on ``commands`` (what ``add_subparsers`` returns).

    Args:
        commands: the sub-command registry of the ``roboreward`` parser.
    """
    parser = commands.add_parser(
        "demo",
        help="the offline end-to-end demo (what `make demo` runs): sim -> build -> train -> bench -> card",
    )
    parser.add_argument("--out", default="demo_output", help="output folder, replaced if it exists")
    parser.add_argument("--arena-episodes", type=int, default=72, help="simulated RoboArena policy runs")
    parser.add_argument("--oxe-episodes", type=int, default=36, help="simulated LeRobot (OXE-like) successes")
    parser.add_argument("--steps", type=int, default=500, help="training steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--serve", action="store_true", help="then open the Space on the trained model")
    parser.set_defaults(func=run)
    return parser
