"""`roboreward relabel IN_DIR --out OUT_DIR`: relabel a built RoboReward folder, keeping its splits."""

from __future__ import annotations

import argparse
import json
from typing import Any


def _relabel(args: argparse.Namespace) -> int:
    from roboreward.relabel import RelabelConfig, relabel_dataset

    settings: dict[str, Any] = {}
    if args.config:
        from roboreward.cli import _relabel_settings

        settings.update(_relabel_settings(args.config))
    flags = {
        "vlm": args.vlm,
        "llm": args.llm,
        "stages": args.stages,
        "paraphrases": args.paraphrases,
        "clip_fractions": [float(f) for f in args.clip_fractions.split(",")] if args.clip_fractions else None,
        "max_retries": args.max_retries,
        "workers": args.workers,
        "num_frames": args.num_frames,
    }
    settings.update({k: v for k, v in flags.items() if v is not None})
    report = relabel_dataset(args.in_dir, args.out, RelabelConfig.from_dict(settings))
    relabel = report["relabel"]
    if args.json:
        print(json.dumps(relabel, indent=2, sort_keys=True))
        return 0
    print(
        f"{relabel['rows']['input']} rows in, {relabel['rows']['output']} out ({relabel['by_augmentation']})"
    )
    for stage, counts in relabel["stages"].items():
        shown = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
        print(f"  {stage:15s} {shown}")
    print(f"wrote {args.out} (see relabel_report.json)")
    return 0


def add_relabel_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "relabel",
        help="add counterfactual negatives, paraphrases and temporal clips to a built dataset",
        description="Run the relabeling stages on a folder written by `roboreward build` and write a new "
        "folder with the same layout and splits. Models: hf:PATH_OR_ID, openai:URL#model (comma-separated "
        "endpoints share the load) or scripted:module:callable. Model calls are cached in "
        "OUT/.build/relabel_cache, so an interrupted run resumes.",
    )
    parser.add_argument("in_dir", help="a folder written by `roboreward build`")
    parser.add_argument("--out", required=True, help="the new folder")
    parser.add_argument(
        "--config", help="relabel recipe (YAML with RelabelConfig fields, or a relabel: section)"
    )
    parser.add_argument("--vlm", help="scene description and checks (default hf:Qwen/Qwen2.5-VL-7B-Instruct)")
    parser.add_argument(
        "--llm", help="rewrites, ladders, paraphrases (default hf:Qwen/Qwen3-4B-Instruct-2507)"
    )
    parser.add_argument("--stages", help="comma-separated: rewrite,counterfactual,paraphrase,temporal_clip")
    parser.add_argument("--paraphrases", type=int, help="paraphrases per task (default 2)")
    parser.add_argument("--clip-fractions", help="temporal clip ends, e.g. 0.25,0.5,0.75")
    parser.add_argument("--max-retries", type=int, help="regenerations of a rejected level (default 2)")
    parser.add_argument("--workers", type=int, help="episodes relabeled at once (default 4)")
    parser.add_argument("--num-frames", type=int, help="frames shown to the VLM (default 8)")
    parser.add_argument("--json", action="store_true", help="print relabel_report.json")
    parser.set_defaults(func=_relabel)
