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


def _parse_ratios(text: str) -> dict[str, float]:
    ratios = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"--split-ratios wants train=W,validation=W,test=W, got {text!r}")
        ratios[name.strip()] = float(value)
    return ratios


def _relabel_settings(path: str) -> dict:
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read relabel recipe {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"relabel recipe {path} must be a mapping of RelabelConfig fields")
    return data.get("relabel", data)


def _build(args: argparse.Namespace) -> int:
    from roboreward.builder import BuildConfig, format_summary
    from roboreward.pipeline import build

    overrides = {
        "lerobot": args.lerobot,
        "lerobot_video_key": args.video_key,
        "roboarena": args.roboarena,
        "roboarena_cameras": args.roboarena_cameras.split(",") if args.roboarena_cameras else None,
        "manifest": args.manifest,
        "out": args.out,
        "seed": args.seed,
        "num_proc": args.num_proc,
        "oxe_episodes": args.oxe_episodes,
        "split_ratios": _parse_ratios(args.split_ratios) if args.split_ratios else None,
        "max_side": args.max_side,
        "max_frames": args.max_frames,
        "relabel": _relabel_settings(args.relabel) if args.relabel else None,
    }
    if args.config:
        config = BuildConfig.from_yaml(args.config, **overrides)
    else:
        config = BuildConfig(**{k: v for k, v in overrides.items() if v is not None})
    report = build(config)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(format_summary(report))
    return 0


def _sim(args: argparse.Namespace) -> int:
    from roboreward.sources import sim

    codec = {"h264": "libx264", "av1": "libsvtav1"}[args.codec]
    out = sim.write_sim_dataset(
        args.out, episodes=args.episodes, layout=args.layout, seed=args.seed, codec=codec
    )
    print(
        f"wrote {args.episodes} {args.layout} episodes to {out} (ground truth in {out / 'sim_truth.jsonl'})"
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from roboreward.demo import DemoConfig, run_demo

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

    build = commands.add_parser(
        "build",
        help="build RoboReward from LeRobot (OXE), RoboArena and manifest sources into a Hub-ready folder",
        description="Build RoboReward: read the sources, sample OXE uniformly across sub-datasets, split by "
        "source rollout, re-encode videos to H.264 and export Parquet shards, a dataset card and "
        "build_report.json. Flags override the --config recipe.",
    )
    build.add_argument("--config", help="YAML recipe, e.g. dataset_builder/configs/roboreward.yaml")
    build.add_argument(
        "--lerobot", action="append", metavar="PATH_OR_ID", help="LeRobot dataset (repeatable)"
    )
    build.add_argument("--video-key", help="LeRobot camera feature (default: the first non-wrist camera)")
    build.add_argument(
        "--roboarena", action="append", metavar="PATH", help="RoboArena data dump (repeatable)"
    )
    build.add_argument("--roboarena-cameras", metavar="LIST", help="comma-separated: left,right,wrist")
    build.add_argument("--manifest", action="append", metavar="FILE", help="JSONL/CSV manifest (repeatable)")
    build.add_argument("--out", help="output folder (default ./roboreward)")
    build.add_argument("--seed", type=int, help="sampling and split seed (default 0)")
    build.add_argument("--num-proc", type=int, help="processes that encode videos (default 1)")
    build.add_argument("--oxe-episodes", type=int, help="OXE episodes in total, uniform per dataset (1350)")
    build.add_argument("--split-ratios", metavar="SPEC", help="e.g. train=0.9,validation=0.05,test=0.05")
    build.add_argument("--max-side", type=int, help="longer video side after re-encoding (default 448)")
    build.add_argument("--max-frames", type=int, help="frame budget per video (default 64)")
    build.add_argument(
        "--relabel", metavar="YAML", help="relabel recipe (dataset_builder/configs/relabel_*.yaml)"
    )
    build.add_argument("--json", action="store_true", help="print the build report as JSON")
    build.set_defaults(func=_build)

    sim = commands.add_parser(
        "sim",
        help="render procedural tabletop episodes with ground-truth rewards in LeRobot or RoboArena layout",
    )
    sim.add_argument("--out", required=True, help="new folder to write")
    sim.add_argument("--episodes", type=int, default=24, help="how many rollouts (default 24)")
    sim.add_argument("--layout", choices=["lerobot", "roboarena"], default="lerobot")
    sim.add_argument("--codec", choices=["h264", "av1"], default="h264", help="LeRobot videos (default h264)")
    sim.add_argument("--seed", type=int, default=0)
    sim.set_defaults(func=_sim)

    from roboreward.cli_bench import add_bench_parser
    from roboreward.cli_card import add_card_parser
    from roboreward.cli_push import add_push_parser
    from roboreward.cli_relabel import add_relabel_parser
    from roboreward.cli_review import add_review_parser
    from roboreward.cli_score import add_score_parser
    from roboreward.cli_serve import add_serve_parser

    add_relabel_parser(commands)
    add_review_parser(commands)
    add_score_parser(commands)
    add_serve_parser(commands)
    add_bench_parser(commands)
    add_card_parser(commands)
    add_push_parser(commands)

    demo = commands.add_parser(
        "demo",
        help="the offline end-to-end demo (what `make demo` runs): sim -> build -> train -> bench -> card",
    )
    demo.add_argument("--out", default="demo_output", help="output folder, replaced if it exists")
    demo.add_argument("--arena-episodes", type=int, default=72, help="simulated RoboArena policy runs")
    demo.add_argument("--oxe-episodes", type=int, default=36, help="simulated LeRobot (OXE-like) successes")
    demo.add_argument("--steps", type=int, default=500, help="training steps")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--serve", action="store_true", help="then open the Space on the trained model")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `roboreward` console script; returns the exit code."""
    from roboreward.hub import HubError
    from roboreward.video import VideoDecodeError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (VideoDecodeError, HubError, ValueError, OSError) as exc:
        print(f"roboreward {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
