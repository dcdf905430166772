"""`roboreward annotate`: score every episode of a LeRobot dataset; optionally keep only the good ones.

Every `roboreward.apps.annotate.AnnotateConfig` field is a flag (``--help`` lists them with their defaults)
and a key of the ``--config`` recipe; the flags given win over the recipe.

Examples:
    roboreward annotate --lerobot lerobot/toto --model teetone/RoboReward-4B --out toto_scores
    roboreward annotate --lerobot lerobot/droid --out droid_scores --concurrency 32 \\
        --model openai+logprobs:http://gpu-1:8000/v1#teetone/RoboReward-8B,http://gpu-2:8000/v1#teetone/RoboReward-8B
    accelerate launch --num_processes 8 -m roboreward.cli annotate --lerobot lerobot/toto --model runs/3b
    roboreward annotate --lerobot lerobot/droid --model teetone/RoboReward-8B --out droid_scores \\
        --executor slurm --tasks 64 --slurm-partition gpu --slurm-gpus-per-task 1 \\
        --curve-points 8 --frame-signals
    roboreward annotate --lerobot ./toto_lerobot --model runs/3b --out scores --curve-points 8 \\
        --keep-min-score 4 --filtered-out ./toto_good
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from roboreward.apps.annotate import AnnotateConfig, annotate_lerobot
from roboreward.cli.commands import COMMANDS
from roboreward.config import from_namespace, with_metadata
from roboreward.dataset.executors import ExecutorConfig

#: `AnnotateConfig` with the help (and flag syntax) of each field; its defaults stay `AnnotateConfig`'s.
AnnotateArguments = with_metadata(
    AnnotateConfig,
    lerobot={"help": "LeRobot dataset folder or Hub id (v2.0, v2.1 or v3.0)", "metavar": "PATH_OR_ID"},
    model={
        "help": "the reward model: checkpoint folder or Hub id, openai+logprobs:URL#model (a pool: "
        "comma-separated), or a roboreward serve URL",
        "metavar": "SPEC",
    },
    out={"help": "output folder (annotations.parquet, score_histogram.png, report.json)", "metavar": "DIR"},
    video_key={
        "help": "camera feature (None: the builder's choice, the first camera naming no wrist or hand)",
        "metavar": "KEY",
    },
    batch_size={"help": "episodes per batch (a local checkpoint's forward pass)", "metavar": "N"},
    concurrency={
        "help": "requests in flight at once (a served model or a roboreward serve URL)",
        "metavar": "N",
    },
    curve_points={"help": "also store a K-point progress curve per episode (None: none)", "metavar": "K"},
    keep_min_score={
        "help": "with --filtered-out: keep the episodes scored at least this (None: no copy)",
        "metavar": "N",
    },
    filtered_out={
        "help": "write a copy of the dataset (same LeRobot version) with only the kept episodes here",
        "metavar": "DIR",
    },
    device={"help": "e.g. cpu, cuda (None: cuda if available)"},
    dtype={"help": "e.g. bfloat16, float32 (None: bfloat16 on GPU, else float32)"},
    frame_signals={
        "help": "also write frame_signals.parquet, LeRobot's frame-signal sidecar (progress, "
        "success_probability, expected_score per curve point, keyed by episode_index and frame_index); "
        "needs --curve-points"
    },
    weight_temperature={
        "help": "also write sample_weights.parquet: per-episode weights for reward-weighted BC, "
        "exp((expected - 5) / T) normalised to mean 1, at this temperature T (None: none)",
        "metavar": "T",
    },
)


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``annotate`` on ``commands`` (what ``add_subparsers(parser_class=RecipeParser)`` returns).

    Args:
        commands: the sub-command registry of the ``roboreward`` parser.
    """
    parser = commands.add_parser(
        "annotate",
        dataclass_types=[AnnotateArguments, ExecutorConfig],
        recipe="annotate",
        help=COMMANDS["annotate"],
        description="Score every episode of a LeRobot dataset (v2.x: one video per episode; v3.0: the "
        "episode's segment of a concatenated file) in batches and write OUT/annotations.parquet keyed by "
        "episode_index, OUT/score_histogram.png and OUT/report.json (episodes left out and why). A killed "
        "run resumes where it stopped. --keep-min-score N --filtered-out DIR also writes a copy of the "
        "dataset holding only the episodes scored N or more.",
    )
    parser.add_argument("--json", action="store_true", help="print report.json")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Annotate the dataset and print a summary (or the report with ``--json``).

    Args:
        args: the parsed command line.
    """
    config = from_namespace(AnnotateArguments, args)
    report = annotate_lerobot(config, executor=from_namespace(ExecutorConfig, args))
    if report is None:  # one of several processes under accelerate launch: the main one reports
        return 0
    if "submitted" in report:  # a Slurm submission that does not wait
        jobs = report["submitted"]
        print(
            f"submitted Slurm job {jobs['tasks_job']} and merge job {jobs['merge_job']}; they write "
            f"{report['out']} (logs in {jobs['logs']}). Run the same command again to resubmit only "
            "the tasks that did not finish."
        )
        return 0
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['scored']} of {report['episodes']} episodes scored by {report['model']} -> {config.out}")
    print("score counts: " + ", ".join(f"{k}: {v}" for k, v in report["score_counts"].items()))
    for entry in report["left_out"]:
        print(f"left out: episode {entry['episode']}: {entry['reason']}")
    if "filtered" in report:
        f = report["filtered"]
        print(f"kept {f['episodes']} episodes scored >= {f['min_score']} in {config.filtered_out}")
    return 0
