"""`roboreward serve`: the micro-batching reward server for robots and distributed collectors.

Every `ServeConfig` field is a flag (``--help`` lists them with their defaults) and a key of the
``--config`` recipe; the flags given win over the recipe.

Examples:
    roboreward serve --model path/to/reward-model --port 8000
    roboreward serve --model my-org/RoboReward-3B --host 0.0.0.0 --public --max-batch 16 --max-wait-ms 30

    curl -F video=@rollout.mp4 -F task="open the drawer" http://127.0.0.1:8000/score
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any, Literal

from roboreward import rubric
from roboreward.cli.access import is_loopback
from roboreward.cli.commands import COMMANDS
from roboreward.config import from_namespace


@dataclass
class ServeConfig:
    """The reward server's settings."""

    model: str = field(metadata={"help": "reward model checkpoint folder or Hub id", "metavar": "PATH_OR_ID"})
    host: str = field(
        default="127.0.0.1", metadata={"help": "address to bind (not loopback: needs --public)"}
    )
    port: int = field(default=8000, metadata={"help": "port"})
    public: bool = field(default=False, metadata={"help": "allow a --host other than loopback"})
    max_batch: int = field(default=8, metadata={"help": "requests scored together at most (1: no batching)"})
    max_wait_ms: float = field(
        default=20.0, metadata={"help": "how long a request waits for others to batch with"}
    )
    max_upload_mb: float = field(default=50.0, metadata={"help": "largest upload accepted"})
    max_seconds: float = field(default=120.0, metadata={"help": "longest video accepted"})
    num_frames: int | None = field(
        default=None,
        metadata={
            "help": "frames sampled from each video; overrides the checkpoint's own setting with a warning "
            "(None: the checkpoint's, else 16)"
        },
    )
    max_side: int | None = field(
        default=None,
        metadata={
            "help": "longer side of decoded frames; overrides the checkpoint's own setting (None: the "
            "checkpoint's, else 448)"
        },
    )
    prompt: str | None = field(
        default=None,
        metadata={
            "help": "prompt preset; overrides the checkpoint's own with a warning (None: the checkpoint's; "
            "release for teetone/RoboReward-4B/8B; else toolkit)",
            "choices": list(rubric.PROMPT_PRESETS),
        },
    )
    device: str | None = field(default=None, metadata={"help": "None: cuda when available, else cpu"})
    dtype: str | None = field(
        default=None, metadata={"help": "None: bfloat16 on a GPU that has it, else float32"}
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = field(
        default="info", metadata={"help": "uvicorn's log level"}
    )


def run(args: argparse.Namespace) -> int:
    """Check the settings, load the model and serve it until stopped.

    Args:
        args: the parsed command line.
    """
    config = from_namespace(ServeConfig, args)
    if not is_loopback(config.host) and not config.public:
        raise ValueError(
            f"--host {config.host} exposes the server beyond this machine (it has no authentication): "
            "add --public to mean it"
        )
    import uvicorn

    from roboreward.scoring import RewardModel
    from roboreward.serve import check_settings, create_app

    # before loading the model
    check_settings(config.max_batch, config.max_wait_ms, config.max_upload_mb, config.max_seconds)

    model = RewardModel.from_pretrained(
        config.model,
        device=config.device,
        dtype=config.dtype,
        num_frames=config.num_frames,
        max_side=config.max_side,
        prompt=config.prompt,
    )
    app = create_app(
        model,
        max_batch=config.max_batch,
        max_wait_ms=config.max_wait_ms,
        max_upload_mb=config.max_upload_mb,
        max_seconds=config.max_seconds,
        model_name=config.model,
    )
    print(
        f"roboreward serve: {config.model} on http://{config.host}:{config.port} (POST /score, GET /health)"
    )
    uvicorn.run(app, host=config.host, port=config.port, log_level=config.log_level)
    return 0


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``serve`` on ``commands`` (what ``add_subparsers(parser_class=RecipeParser)`` returns).

    Args:
        commands: the sub-command registry of the ``roboreward`` parser.
    """
    parser = commands.add_parser(
        "serve",
        dataclass_types=ServeConfig,
        recipe="serve",
        help=COMMANDS["serve"],
        description="POST /score with a multipart upload (field 'video': a video file, field 'task': "
        "the task text) returns the ScoreResult as JSON (score, expected, reward, probs, latency_ms). "
        "Requests arriving together are scored in one batch (--max-batch, --max-wait-ms). Uploads over "
        "--max-upload-mb get 413; non-videos, videos over --max-seconds and empty tasks get 422. "
        "From Python: roboreward.serve.RewardClient(url).score(video_or_frames, task).",
    )
    parser.set_defaults(func=run)
    return parser
