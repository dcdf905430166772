"""`roboreward space --model M`: the Gradio Space (``spaces_demo/app.py``) on a reward model, from any
install.

gradio is checked first (a missing one names ``pip install "roboreward[space]"``), a missing model
says which flag or variable to set, and the app runs in this process: SIGTERM or Ctrl-C stops it.
The Space's other settings are its environment variables (``spaces_demo/README.md`` lists them).

Examples:
    roboreward space --model runs/3b
    roboreward space --model openai+logprobs:http://gpu-1:8000/v1#teetone/RoboReward-8B --port 7861
    ROBOREWARD_MODEL=teetone/RoboReward-4B roboreward space --host 0.0.0.0
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from roboreward.cli.commands import COMMANDS
from roboreward.config import from_namespace


@dataclass
class SpaceConfig:
    """What `roboreward space` serves, and where."""

    model: str | None = field(
        default=None,
        metadata={
            "help": "a reward-model spec: a checkpoint folder, a Hub id, openai+logprobs:URL#model, a "
            "`roboreward serve` URL (unset: $ROBOREWARD_MODEL)",
            "metavar": "SPEC",
        },
    )
    host: str = field(default="127.0.0.1", metadata={"help": "address to listen on"})
    port: int = field(default=7860, metadata={"help": "port"})
    examples: str | None = field(
        default=None,
        metadata={
            "help": 'a JSONL file of {"video", "task"} rows shown under the inputs '
            "(unset: two generated clips)",
            "metavar": "JSONL",
        },
    )


def run(args: argparse.Namespace) -> int:
    """Serve the Space until stopped.

    Args:
        args: the parsed command line (`SpaceConfig`'s fields).
    """
    from roboreward.apps.space import run_space

    config = from_namespace(SpaceConfig, args)
    run_space(config.model, host=config.host, port=config.port, examples=config.examples)
    return 0


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``space`` on ``commands`` (what ``add_subparsers(parser_class=RecipeParser)`` returns).

    Args:
        commands: the sub-command registry of the ``roboreward`` parser.
    """
    parser = commands.add_parser(
        "space",
        dataclass_types=SpaceConfig,
        help=COMMANDS["space"],
        description="Serve the Gradio Space (spaces_demo/app.py, shipped in the package) on a reward model: "
        "upload a video, type the task, get the five-score distribution, the expected score and reward, "
        "the frames the model saw and, on request, the episode's progress curve. Needs the space extra "
        '(pip install "roboreward[space]"). SIGTERM or Ctrl-C stops it.',
    )
    parser.set_defaults(func=run)
    return parser
