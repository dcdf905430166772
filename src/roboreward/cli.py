"""The `roboreward` command line: one sub-command per part of the toolkit.

Examples:
    roboreward --help
    roboreward probe episode_000000.mp4 --json
    roboreward demo
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict

from roboreward import __version__

_DEMO_PLAN = """\
roboreward demo: the offline end-to-end run is not built yet.
When it lands it will, on 2 CPU cores and with no downloads:
  1. render a procedural tabletop robot dataset with ground-truth rewards (LeRobot and RoboArena layouts),
  2. build RoboReward from it (`roboreward build`), with counterfactual relabeling and temporal clips,
  3. fine-tune a small Qwen2.5-VL-architecture reward model with TRL (trl_training/sft.py),
  4. benchmark it against the untrained model and constant/random baselines (`roboreward bench`),
  5. write the leaderboard, plots and a model card to ./demo_output.
What works today: the rubric, video I/O and the offline tiny models (see README.md)."""


def _probe(args: argparse.Namespace) -> int:
    from roboreward import video

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


def _demo(args: argparse.Namespace) -> int:
    print(_DEMO_PLAN)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="roboreward",
        description="Build RoboReward, train and benchmark vision-language reward models for robotics.",
    )
    parser.add_argument("--version", action="version", version=f"roboreward {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    probe = commands.add_parser("probe", help="print a video's frames, fps, size, duration and codec")
    probe.add_argument("video", help="path to a video file")
    probe.add_argument("--json", action="store_true", help="print one JSON object")
    probe.set_defaults(func=_probe)

    demo = commands.add_parser("demo", help="the offline end-to-end demo (what `make demo` runs)")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `roboreward` console script; returns the exit code."""
    from roboreward.video import VideoDecodeError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (VideoDecodeError, ValueError, FileNotFoundError) as exc:
        print(f"roboreward {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
