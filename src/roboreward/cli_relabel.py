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


def _fractions(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(
            f"--clip-fractions wants comma-separated fractions such as 0.25,0.5,0.75, got {text!r}"
        ) from None


def relabel_config(args: argparse.Namespace) -> Any:
    """The `RelabelConfig` of a ``relabel`` command line: the --config recipe, then the flags."""
    from roboreward.relabel import RelabelConfig

    flags = {
        "vlm": args.vlm,
        "llm": args.llm,
        "stages": args.stages,
        "paraphrases": args.paraphrases,
        "clip_fractions": _fractions(args.clip_fractions) if args.clip_fractions else None,
        "clip_labeller": args.clip_labeller,
        "judge": args.judge,
        "max_retries": args.max_retries,
        "workers": args.workers,
        "num_frames": args.num_frames,
        "timeout": args.timeout,
        "cache_dir": args.cache_dir,
    }
    if args.config:
        return RelabelConfig.from_yaml(args.config, **flags)
    return RelabelConfig.from_dict({}, **flags)


def format_relabel_summary(report: dict[str, Any]) -> str:
    """The relabel report as the short table `roboreward relabel` prints."""
    rows = report["rows"]
    by_augmentation = ", ".join(f"{k} {v}" for k, v in report["by_augmentation"].items())
    lines = [f"{rows['input']} rows in, {rows['output']} out ({by_augmentation})"]
    for stage, counts in report["stages"].items():
        shown = ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "-"
        lines.append(f"  {stage:15s} {shown}")
    for source, histogram in report["reward_histogram"].items():
        lines.append(f"  rewards of {source}: " + " ".join(f"{k}:{v}" for k, v in histogram.items()))
    return "\n".join(lines)


def _relabel(args: argparse.Namespace) -> int:
    from roboreward.pipeline import relabel_dataset

    config = relabel_config(args)  # bad settings fail before any work
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


def add_relabel_parser(commands: Any) -> argparse.ArgumentParser:
    """Register the ``relabel`` sub-command on ``commands`` (what ``add_subparsers`` returns)."""
    parser = commands.add_parser(
        "relabel",
        help="add counterfactual negatives, paraphrases and temporal clips to a built dataset",
        description="Run the relabeling stages (rewrite, counterfactual, paraphrase, temporal_clip) on a "
        "folder written by `roboreward build` and write a new folder with the same layout; every derived "
        "row stays in its source row's split. Models: hf:PATH_OR_ID (local transformers), "
        "openai:URL#model (OpenAI-compatible servers; comma-separated endpoints share the load) or "
        "scripted:module:callable. Every model call is cached (OUT/.build/relabel_cache), so an "
        "interrupted run, started again, resumes and ends with the same rows. Flags override the "
        "--config recipe.",
    )
    parser.add_argument("in_dir", metavar="IN_DIR", help="a folder written by `roboreward build`")
    parser.add_argument("--out", required=True, metavar="OUT_DIR", help="the new folder")
    parser.add_argument(
        "--config", metavar="YAML", help="relabel recipe (RelabelConfig fields, or a relabel: section)"
    )
    parser.add_argument(
        "--vlm", metavar="SPEC", help="scene descriptions and checks (default hf:Qwen/Qwen2.5-VL-7B-Instruct)"
    )
    parser.add_argument(
        "--llm",
        metavar="SPEC",
        help="rewrites, ladders, paraphrases (default hf:Qwen/Qwen3-4B-Instruct-2507)",
    )
    parser.add_argument(
        "--stages", metavar="LIST", help="comma-separated: rewrite,counterfactual,paraphrase,temporal_clip"
    )
    parser.add_argument("--paraphrases", type=int, metavar="N", help="paraphrases per task (default 2)")
    parser.add_argument("--clip-fractions", metavar="LIST", help="temporal clip ends (default 0.25,0.5,0.75)")
    parser.add_argument(
        "--clip-labeller", choices=("map", "judge"), help="clip rewards from clip_scores or a judge (map)"
    )
    parser.add_argument(
        "--judge", metavar="SPEC", help="the clip judge: hf:REWARD_MODEL or a backend spec (default: --vlm)"
    )
    parser.add_argument(
        "--max-retries", type=int, metavar="K", help="re-asks after a rejected answer (default 2)"
    )
    parser.add_argument("--workers", type=int, metavar="N", help="episodes relabeled at once (default 4)")
    parser.add_argument("--num-frames", type=int, metavar="N", help="frames shown to the VLM (default 8)")
    parser.add_argument("--timeout", type=float, metavar="S", help="seconds per served request (120)")
    parser.add_argument("--cache-dir", metavar="DIR", help="model answer cache (OUT/.build/relabel_cache)")
    parser.add_argument("--num-proc", type=int, metavar="N", help="processes that encode videos (default 1)")
    parser.add_argument("--json", action="store_true", help="print relabel_report.json")
    parser.set_defaults(func=_relabel)
    return parser
