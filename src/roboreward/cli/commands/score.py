"""`roboreward score`: score one robot episode with a reward model.

Every `ScoreConfig` field is a flag (``--help`` lists them with their defaults) and a key of the
``--config`` recipe; the flags given win over the recipe.

Examples:
    roboreward score --model path/to/reward-model --video episode.mp4 --task "open the drawer"
    roboreward score --model openai+logprobs:http://gpu-1:8000/v1#teetone/RoboReward-8B \\
        --video episode.mp4 --task "open the drawer" --json
    roboreward score --model http://127.0.0.1:8000 --video episode.mp4 --task "open the drawer"
    roboreward score --model Qwen/Qwen2.5-VL-3B-Instruct --video episode.mp4 --task "open the drawer" \\
        --mode generate --json
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from roboreward import rubric
from roboreward.cli.commands import COMMANDS
from roboreward.config import from_namespace
from roboreward.models.settings import MAX_NUM_FRAMES


@dataclass
class ScoreConfig:
    """What ``roboreward score`` does."""

    model: str = field(
        metadata={
            "help": "the reward model: checkpoint folder or Hub id, openai+logprobs:URL#model (a pool: "
            "comma-separated), or a roboreward serve URL",
            "metavar": "SPEC",
        }
    )
    video: str = field(metadata={"help": "episode video (any codec FFmpeg reads)", "metavar": "FILE"})
    task: str = field(metadata={"help": "the task the robot was given", "metavar": "TEXT"})
    mode: Literal["prob", "generate"] = field(
        default="prob",
        metadata={"help": "prob: the five-score distribution; generate: a free-text answer, parsed (local)"},
    )
    prompt: str | None = field(
        default=None,
        metadata={
            "help": "prompt preset; overrides the model's own with a warning (None: the checkpoint's "
            "roboreward_settings.json; release for teetone/RoboReward-4B/8B; else toolkit)",
            "choices": list(rubric.PROMPT_PRESETS),
        },
    )
    num_frames: int | None = field(
        default=None,
        metadata={
            "help": "frames sampled; overrides the model's own setting (None: the model's, else 16)",
            "metavar": "N",
        },
    )
    fps: float | None = field(
        default=None, metadata={"help": "sample at this rate instead of --num-frames", "metavar": "RATE"}
    )
    max_side: int | None = field(
        default=None,
        metadata={
            "help": "shrink frames to this longer side first (None: the model's, else 448)",
            "metavar": "PX",
        },
    )
    max_new_tokens: int = field(
        default=16, metadata={"help": "answer budget of --mode generate", "metavar": "N"}
    )
    request_timeout: float = field(
        default=120.0, metadata={"help": "seconds per request to a served model", "metavar": "SECONDS"}
    )
    device: str | None = field(
        default=None, metadata={"help": "e.g. cpu, cuda, cuda:1 (None: cuda if available)"}
    )
    dtype: str | None = field(
        default=None, metadata={"help": "e.g. bfloat16, float32 (None: bfloat16 on GPU, else float32)"}
    )

    def __post_init__(self) -> None:
        rubric.build_prompt(self.task)  # an empty task fails here, before anything loads
        for name in ("num_frames", "max_new_tokens"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"--{name.replace('_', '-')} must be an integer >= 1, got {value!r}")
        if self.num_frames is not None and self.num_frames > MAX_NUM_FRAMES:
            raise ValueError(f"--num-frames must be at most {MAX_NUM_FRAMES}, got {self.num_frames}")
        for name in ("fps", "request_timeout"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"--{name.replace('_', '-')} must be a number > 0, got {value!r}")


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register the ``score`` sub-command on ``commands`` (what ``add_subparsers`` returns).

    Args:
        commands: the sub-command registry of the ``roboreward`` parser.
    """
    parser = commands.add_parser(
        "score",
        dataclass_types=ScoreConfig,
        recipe="score",
        help=COMMANDS["score"],
        description="Score one robot episode on the five-level rubric with any reward model (a checkpoint, "
        "an openai+logprobs: pool, a roboreward serve URL). --mode prob (default) reads the distribution "
        "over the scores 1..5 and prints the most likely score, the expected score, the reward "
        "(expected - 1) / 4 and the five probabilities. --mode generate lets a local model answer in free "
        "text (for VLMs not trained on the answer format) and parses the score from it.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Score the video against the task and print the result (one JSON object with ``--json``).

    Args:
        args: the parsed command line.
    """
    from roboreward import video
    from roboreward.models.factory import load_configured
    from roboreward.models.local import RewardModel

    config = from_namespace(ScoreConfig, args)
    video.check_limits(video.probe(config.video), source=config.video)  # refused before any frame is decoded
    model = load_configured(config)
    header = {
        "model": model.name,
        "video": config.video,
        "task": config.task,
        "mode": config.mode,
        "prompt": model.settings.prompt if model.settings is not None else None,
    }
    if config.mode == "generate":
        if not isinstance(model, RewardModel):
            raise ValueError(f"--mode generate needs a local checkpoint, not {config.model!r}")
        answer = model.generate(config.video, config.task, max_new_tokens=config.max_new_tokens)
        if args.json:
            print(json.dumps({**header, **answer.to_dict()}))
        else:
            print(f"{config.video}: {config.task!r}")
            print(f"answer  {answer.text!r}")
            print(f"score   {_score_line(answer.score)}")
        return 0
    result = model.score(config.video, config.task)
    if args.json:
        print(json.dumps({**header, **result.to_dict()}))
        return 0
    print(f"{config.video}: {config.task!r}")
    print(f"score     {_score_line(result.score)}")
    print(f"expected  {result.expected:.3f}")
    print(f"reward    {result.reward:.3f}")
    print("score  probability")
    for score, p in zip(rubric.SCORES, result.probs, strict=True):
        print(f"{score:>5}  {p:11.4f}  {'#' * round(p * 40)}")
    return 0


def _score_line(score: int | None) -> str:
    return "none (no answer found)" if score is None else f"{score} ({rubric.level(score).name})"
