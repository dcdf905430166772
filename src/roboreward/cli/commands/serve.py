"""`roboreward serve`: the micro-batching reward server for robots and distributed collectors.

Every `ServeConfig` field is a flag (``--help`` lists them with their defaults) and a key of the
``--config`` recipe; the flags given win over the recipe.

Examples:
    roboreward serve --model path/to/reward-model --port 8000
    ROBOREWARD_SERVE_TOKEN=SECRET roboreward serve --model my-org/RoboReward-3B --host 0.0.0.0 --max-batch 16

    curl -F video=@rollout.mp4 -F task="open the drawer" http://127.0.0.1:8000/score
    curl -H "Authorization: Bearer SECRET" -F video=@rollout.mp4 -F task="open the drawer" http://HOST:8000/score

As `roboreward review`: off loopback the server needs a login (here a bearer token, ``--token`` or
``$ROBOREWARD_SERVE_TOKEN``), or ``--insecure`` to open it without one on a trusted network.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import Any, Literal

from roboreward import rubric
from roboreward.cli.access import is_loopback
from roboreward.cli.commands import COMMANDS
from roboreward.config import check_fields, check_range, from_namespace
from roboreward.environ import serve_token
from roboreward.extras import require
from roboreward.models.settings import MAX_NUM_FRAMES

#: Seconds uvicorn gives open requests after SIGTERM before it closes them (the exit stays under 5 s).
SHUTDOWN_GRACE_S = 2.0


@dataclass
class ServeConfig:
    """The reward server's settings."""

    model: str = field(
        metadata={
            "help": "the reward model: a checkpoint folder or Hub id, openai+logprobs:URL#model (a pool: "
            "comma-separated), or another roboreward serve URL",
            "metavar": "SPEC",
        }
    )
    host: str = field(
        default="127.0.0.1", metadata={"help": "address to bind (not loopback: needs --token or --insecure)"}
    )
    port: int = field(default=8000, metadata={"help": "port"})
    token: str | None = field(
        default=None,
        metadata={
            "help": "bearer token every request must send (None: $ROBOREWARD_SERVE_TOKEN); required off "
            "loopback unless --insecure"
        },
    )
    insecure: bool = field(
        default=False, metadata={"help": "allow a non-loopback --host without a token (a trusted network)"}
    )
    public: bool = field(
        default=False, metadata={"help": "no longer needed (kept so old command lines run): see --token"}
    )
    max_batch: int = field(default=8, metadata={"help": "requests scored together at most (1: no batching)"})
    max_wait_ms: float = field(
        default=20.0, metadata={"help": "how long a request waits for others to batch with"}
    )
    max_upload_mb: float = field(default=50.0, metadata={"help": "largest upload accepted"})
    max_seconds: float = field(default=120.0, metadata={"help": "longest video accepted"})
    max_task_chars: int = field(default=500, metadata={"help": "longest task accepted, in characters"})
    deadline: float = field(
        default=60.0,
        metadata={
            "help": "seconds a request may wait for and spend in the model before it gets 504",
            "metavar": "SECONDS",
        },
    )
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
    upload_timeout: float = field(
        default=30.0,
        metadata={"help": "seconds an upload may take to arrive (408 beyond)", "metavar": "SECONDS"},
    )
    concurrency: int = field(
        default=8, metadata={"help": "requests in flight at once to a served model (openai+logprobs: pools)"}
    )
    request_timeout: float = field(
        default=120.0, metadata={"help": "seconds per request to a served model", "metavar": "SECONDS"}
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = field(
        default="info", metadata={"help": "uvicorn's log level"}
    )

    def __post_init__(self) -> None:
        check_fields(self)
        check_range(self, "num_frames", 1, MAX_NUM_FRAMES)  # before the (slow) model load


def check_serve_access(host: str, token: str | None, insecure: bool) -> None:
    """Refuse to open the server to the network without a token (unless asked to with ``insecure``).

    Args:
        host: the address to bind.
        token: the bearer token requests must send (None: none).
        insecure: the ``--insecure`` flag (the same word as `roboreward review`'s).
    """
    if not is_loopback(host) and not token and not insecure:
        raise ValueError(
            f"--host {host} opens the reward server to the network: add --token TOKEN (or set "
            "ROBOREWARD_SERVE_TOKEN), or --insecure if the network is trusted"
        )


def run_server(app: Any, host: str, port: int, log_level: str = "info") -> None:
    """Serve ``app`` with uvicorn until SIGINT / SIGTERM; open requests get `SHUTDOWN_GRACE_S` to finish.

    Args:
        app: the ASGI app (`roboreward.serving.server.create_app`).
        host: the address to bind.
        port: the port.
        log_level: uvicorn's log level.
    """
    uvicorn = require("uvicorn", "serve")
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=SHUTDOWN_GRACE_S)


def run(args: argparse.Namespace) -> int:
    """Check the settings, load the model and serve it until stopped.

    Args:
        args: the parsed command line.
    """
    from roboreward.serving.server import check_settings, create_app

    config = from_namespace(ServeConfig, args)
    if config.public:
        print(
            "roboreward serve: --public is no longer needed (a non-loopback --host needs --token, "
            "or --insecure)",
            file=sys.stderr,
        )
    token = config.token or serve_token()
    check_serve_access(config.host, token, config.insecure)
    check_settings(  # before the (slow) model load
        config.max_batch,
        config.max_wait_ms,
        config.max_upload_mb,
        config.max_seconds,
        config.max_task_chars,
        config.deadline,
    )
    from roboreward.models.factory import load_configured

    model = load_configured(config)
    app = create_app(
        model,
        max_batch=config.max_batch,
        max_wait_ms=config.max_wait_ms,
        max_upload_mb=config.max_upload_mb,
        max_seconds=config.max_seconds,
        model_name=model.name,
        max_task_chars=config.max_task_chars,
        deadline_s=config.deadline,
        token=token,
        upload_timeout_s=config.upload_timeout,
    )
    auth = "bearer token required" if token else "no authentication"
    print(
        f"roboreward serve: {model.name} on http://{config.host}:{config.port} "
        f"(POST /score, GET /health; {auth})"
    )
    run_server(app, config.host, config.port, config.log_level)
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
        "--max-upload-mb get 413; non-videos, videos over --max-seconds or over the video limits (pixels "
        "per frame, frames, decoded bytes), empty tasks and tasks over --max-task-chars get 422; a request "
        "not scored within --deadline gets 504; with a token, a request without it gets 401. SIGTERM "
        "stops the server within a few seconds. "
        "From Python: roboreward.models.remote.RewardClient(url, token=...).score(video_or_frames, task).",
    )
    parser.set_defaults(func=run)
    return parser
