"""`roboreward build`: build RoboReward from LeRobot (OXE), RoboArena and manifest sources.

Examples:
    roboreward build --config dataset_builder/configs/roboreward.yaml --roboarena /data/roboarena/DataDump
    roboreward build --manifest my_rollouts.jsonl --out roboreward_small --max-frames 32 --json
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import yaml

from roboreward.builder import BuildConfig, build, format_summary


def _parse_ratios(text: str) -> dict[str, float]:
    ratios = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"--split-ratios wants train=W,validation=W,test=W, got {text!r}")
        ratios[name.strip()] = float(value)
    return ratios


def _relabel_settings(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read relabel recipe {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"relabel recipe {path} must be a mapping of RelabelConfig fields")
    return data.get("relabel", data)


def run(args: argparse.Namespace) -> int:
    """Build the dataset and print its summary (or the build report with ``--json``).

    Args:
        args: the parsed command line.
    """
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


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``build`` on ``commands`` (what ``add_subparsers`` returns).

    Args:
        commands: the sub-command registry of the ``roboreward`` parser.
    """
    parser = commands.add_parser(
        "build",
        help="build RoboReward from LeRobot (OXE), RoboArena and manifest sources into a Hub-ready folder",
        description="Build RoboReward: read the sources, sample OXE uniformly across sub-datasets, split by "
        "source rollout, re-encode videos to H.264 and export Parquet shards, a dataset card and "
        "build_report.json. Flags override the --config recipe.",
    )
    parser.add_argument("--config", help="YAML recipe, e.g. dataset_builder/configs/roboreward.yaml")
    parser.add_argument(
        "--lerobot", action="append", metavar="PATH_OR_ID", help="LeRobot dataset (repeatable)"
    )
    parser.add_argument("--video-key", help="LeRobot camera feature (default: the first non-wrist camera)")
    parser.add_argument(
        "--roboarena", action="append", metavar="PATH", help="RoboArena data dump (repeatable)"
    )
    parser.add_argument("--roboarena-cameras", metavar="LIST", help="comma-separated: left,right,wrist")
    parser.add_argument("--manifest", action="append", metavar="FILE", help="JSONL/CSV manifest (repeatable)")
    parser.add_argument("--out", help="output folder (default ./roboreward)")
    parser.add_argument("--seed", type=int, help="sampling and split seed (default 0)")
    parser.add_argument("--num-proc", type=int, help="processes that encode videos (default 1)")
    parser.add_argument("--oxe-episodes", type=int, help="OXE episodes in total, uniform per dataset (1350)")
    parser.add_argument("--split-ratios", metavar="SPEC", help="e.g. train=0.9,validation=0.05,test=0.05")
    parser.add_argument("--max-side", type=int, help="longer video side after re-encoding (default 448)")
    parser.add_argument("--max-frames", type=int, help="frame budget per video (default 64)")
    parser.add_argument(
        "--relabel", metavar="YAML", help="relabel recipe (dataset_builder/configs/relabel_*.yaml)"
    )
    parser.add_argument("--json", action="store_true", help="print the build report as JSON")
    parser.set_defaults(func=run)
    return parser
