"""`roboreward relabel IN_DIR --out OUT_DIR`: relabel a built RoboReward folder, keeping its splits.

Examples:
    roboreward relabel ./roboreward --out ./roboreward_relabeled \\
        --config dataset_builder/configs/relabel_served.yaml
    roboreward relabel ./roboreward --out ./roboreward_relabeled --stages counterfactual,temporal_clip \\
        --vlm openai:http://localhost:8000/v1#Qwen/Qwen2.5-VL-7B-Instruct \\
        --llm openai:http://localhost:8001/v1#Qwen/Qwen3-4B-Instruct-2507 --workers 16 --json
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from roboreward.cli.commands import COMMANDS
from roboreward.config import from_namespace
from roboreward.relabel import RelabelConfig


def format_relabel_summary(report: dict[str, Any]) -> str:
    """The relabel report as the short table `roboreward relabel` prints.

    Args:
        report: the ``relabel`` section of the build report.
    """
    rows = report["rows"]
    by_augmentation = ", ".join(f"{k} {v}" for k, v in report["by_augmentation"].items())
    lines = [f"{rows['input']} rows in, {rows['output']} out ({by_augmentation})"]
    for stage, counts in report["stages"].items():
        shown = ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "-"
        lines.append(f"  {stage:15s} {shown}")
    for source, histogram in report["reward_histogram"].items():
        lines.append(f"  rewards of {source}: " + " ".join(f"{k}:{v}" for k, v in histogram.items()))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Relabel ``IN_DIR`` into ``--out`` and print what each stage did.

    Args:
        args: the parsed command line.
    """
    from roboreward.dataset.pipeline import relabel_dataset  # torch: not for --help

    config = from_namespace(RelabelConfig, args)  # bad settings fail before any work
    settings = {"num_proc": args.num_proc} if args.num_proc else {}
    report = relabel_dataset(args.in_dir, args.out, config, progress=not args.json, **settings)
    relabel = report["relabel"]
    errors = sum(counts["errors"] for counts in relabel["stages"].values())
    if errors:
        first = relabel["errors"][0] if relabel["errors"] else ""
        print(
            f"roboreward relabel: warning: {errors} model calls or videos failed ({first}); their rows "
            "are missing. Run the same command again: answers so far are cached, only the failed calls "
            "are redone.",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(relabel, indent=2, sort_keys=True))
    else:
        print(format_relabel_summary(relabel))
        print(f"wrote {args.out} (see relabel_report.json and build_report.json)")
    return 0


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``relabel`` on ``commands`` (what ``add_subparsers(parser_class=RecipeParser)`` returns).

    Args:
        commands: the sub-command registry of the ``roboreward`` parser.
    """
    parser = commands.add_parser(
        "relabel",
        dataclass_types=RelabelConfig,
        recipe="relabel",
        recipe_section="relabel",
        help=COMMANDS["relabel"],
        description="Run the relabeling stages (rewrite, counterfactual, paraphrase, temporal_clip) on a "
        "folder written by `roboreward build` and write a new folder with the same layout; every derived "
        "row stays in its source row's split. Models: hf:PATH_OR_ID (local transformers), "
        "openai:URL#model (OpenAI-compatible servers; comma-separated endpoints share the load) or "
        "scripted:module:callable. Every model call is cached (OUT/.build/relabel_cache), so an "
        "interrupted run, started again, resumes and ends with the same rows. Flags override the "
        "--config recipe (RelabelConfig fields, or a build recipe's relabel: section).",
    )
    parser.add_argument("in_dir", metavar="IN_DIR", help="a folder written by `roboreward build`")
    parser.add_argument("--out", required=True, metavar="OUT_DIR", help="the new folder")
    parser.add_argument(
        "--num-proc", type=int, metavar="N", help="processes that encode videos (None: the input build's)"
    )
    parser.add_argument("--json", action="store_true", help="print relabel_report.json")
    parser.set_defaults(func=run)
    return parser
