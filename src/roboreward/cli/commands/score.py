"""`roboreward score`: score one robot episode with a reward model.

Examples:
    roboreward score --model path/to/reward-model --video episode.mp4 --task "open the drawer"
    roboreward score --model Qwen/Qwen2.5-VL-3B-Instruct --video episode.mp4 --task "open the drawer" \\
        --mode generate --json
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from roboreward import rubric
from roboreward.cli.commands import COMMANDS


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register the ``score`` sub-command on ``commands`` (what ``add_subparsers`` returns).

    Args:
        commands: the sub-command registry of the ``roboreward`` parser.
    """
    parser = commands.add_parser(
        "score",
        help=COMMANDS["score"],
        description="Score one robot episode on the five-level rubric. --mode prob (default) reads the "
        "distribution over the scores 1..5 from one forward pass after 'ANSWER: ' and prints the most "
        "likely score, the expected score, the reward (expected - 1) / 4 and the five probabilities. "
        "--mode generate lets the model answer in free text (for VLMs not trained on the answer format) "
        "and parses the score from it.",
    )
    parser.add_argument(
        "--model", required=True, metavar="PATH_OR_ID", help="Qwen2.5-VL / Qwen3-VL checkpoint"
    )
    parser.add_argument(
        "--video", required=True, metavar="FILE", help="episode video (any codec FFmpeg reads)"
    )
    parser.add_argument("--task", required=True, metavar="TEXT", help="the task the robot was given")
    parser.add_argument(
        "--mode",
        choices=("prob", "generate"),
        default="prob",
        help="prob: one forward pass; generate: a free-text answer, parsed",
    )
    parser.add_argument(
        "--prompt",
        choices=list(rubric.PROMPT_PRESETS),
        help="prompt preset; overrides the checkpoint's own with a warning (None: the checkpoint's "
        "roboreward_settings.json; release for teetone/RoboReward-4B/8B; else toolkit)",
    )
    parser.add_argument(
        "--num-frames",
        type=int,
        metavar="N",
        help="frames sampled; overrides the checkpoint's own setting (None: the checkpoint's, else 16)",
    )
    parser.add_argument(
        "--fps",
        type=float,
        metavar="RATE",
        help="sample at this rate instead of --num-frames (None: --num-frames)",
    )
    parser.add_argument(
        "--max-side",
        type=int,
        metavar="PX",
        help="shrink frames to this longer side first (None: the checkpoint's setting, else 448)",
    )
    parser.add_argument(
        "--max-new-tokens", type=int, default=16, metavar="N", help="answer budget of --mode generate"
    )
    parser.add_argument("--device", help="e.g. cpu, cuda, cuda:1 (None: cuda if available)")
    parser.add_argument("--dtype", help="e.g. bfloat16, float32 (None: bfloat16 on GPU, else float32)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Score the video against the task and print the result (one JSON object with ``--json``).

    Args:
        args: the parsed command line.
    """
    from roboreward import video
    from roboreward.models.local import RewardModel

    # Bad input fails before the (slow) model load.
    rubric.build_prompt(args.task)
    video.check_limits(video.probe(args.video), source=args.video)  # refused before any frame is decoded
    if args.num_frames is not None and args.num_frames < 1:
        raise ValueError(f"--num-frames must be >= 1, got {args.num_frames}")
    if args.fps is not None and args.fps <= 0:
        raise ValueError(f"--fps must be > 0, got {args.fps}")
    model = RewardModel.from_pretrained(
        args.model,
        device=args.device,
        dtype=args.dtype,
        num_frames=args.num_frames,
        fps=args.fps,
        max_side=args.max_side,
        prompt=args.prompt,
    )
    header = {
        "model": args.model,
        "video": args.video,
        "task": args.task,
        "mode": args.mode,
        "prompt": model.settings.prompt,
    }
    if args.mode == "generate":
        answer = model.generate(args.video, args.task, max_new_tokens=args.max_new_tokens)
        if args.json:
            print(json.dumps({**header, **answer.to_dict()}))
        else:
            print(f"{args.video}: {args.task!r}")
            print(f"answer  {answer.text!r}")
            print(f"score   {_score_line(answer.score)}")
        return 0
    result = model.score(args.video, args.task)
    if args.json:
        print(json.dumps({**header, **result.to_dict()}))
        return 0
    print(f"{args.video}: {args.task!r}")
    print(f"score     {_score_line(result.score)}")
    print(f"expected  {result.expected:.3f}")
    print(f"reward    {result.reward:.3f}")
    print("score  probability")
    for score, p in zip(rubric.SCORES, result.probs, strict=True):
        print(f"{score:>5}  {p:11.4f}  {'#' * round(p * 40)}")
    return 0


def _score_line(score: int | None) -> str:
    return "none (no answer found)" if score is None else f"{score} ({rubric.level(score).name})"
