"""`roboreward serve`: the micro-batching reward server for robots and distributed collectors.

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
import os
import sys
from typing import Any

from roboreward.cli_review import is_loopback

#: Seconds uvicorn gives open requests after SIGTERM before it closes them (the exit stays under 5 s).
SHUTDOWN_GRACE_S = 2.0


def check_serve_access(host: str, token: str | None, insecure: bool) -> None:
    """Refuse to open the server to the network without a token (unless asked to with ``insecure``)."""
    if not is_loopback(host) and not token and not insecure:
        raise ValueError(
            f"--host {host} opens the reward server to the network: add --token TOKEN (or set "
            "ROBOREWARD_SERVE_TOKEN), or --insecure if the network is trusted"
        )


def _serve(args: argparse.Namespace) -> int:
    from roboreward.serve import TOKEN_ENV, check_settings, create_app

    if args.public:
        print(
            "roboreward serve: --public is no longer needed (a non-loopback --host needs --token, "
            "or --insecure)",
            file=sys.stderr,
        )
    token = args.token or os.environ.get(TOKEN_ENV) or None
    check_serve_access(args.host, token, args.insecure)
    check_settings(  # before the (slow) model load
        args.max_batch,
        args.max_wait_ms,
        args.max_upload_mb,
        args.max_seconds,
        args.max_task_chars,
        args.deadline,
    )
    from roboreward.scoring import RewardModel

    model = RewardModel.from_pretrained(
        args.model, device=args.device, dtype=args.dtype, num_frames=args.num_frames
    )
    app = create_app(
        model,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_upload_mb=args.max_upload_mb,
        max_seconds=args.max_seconds,
        model_name=args.model,
        max_task_chars=args.max_task_chars,
        deadline_s=args.deadline,
        token=token,
    )
    auth = "bearer token required" if token else "no authentication"
    print(
        f"roboreward serve: {args.model} on http://{args.host}:{args.port} (POST /score, GET /health; {auth})"
    )
    run_server(app, args.host, args.port, args.log_level)
    return 0


def run_server(app: Any, host: str, port: int, log_level: str = "info") -> None:
    """Serve ``app`` with uvicorn until SIGINT / SIGTERM; open requests get SHUTDOWN_GRACE_S to finish."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=SHUTDOWN_GRACE_S)


def add_serve_parser(commands: Any) -> argparse.ArgumentParser:
    """Register the ``serve`` sub-command on ``commands`` (what ``add_subparsers`` returns)."""
    parser = commands.add_parser(
        "serve",
        help="serve a reward model over HTTP for robots and data collectors (POST /score, GET /health)",
        description="POST /score with a multipart upload (field 'video': a video file, field 'task': "
        "the task text) returns the ScoreResult as JSON (score, expected, reward, probs, latency_ms). "
        "Requests arriving together are scored in one batch (--max-batch, --max-wait-ms). Uploads over "
        "--max-upload-mb get 413; non-videos, videos over --max-seconds or over the video limits (pixels "
        "per frame, frames, decoded bytes), empty tasks and tasks over --max-task-chars get 422; a request "
        "not scored within --deadline gets 504; with a token, a request without it gets 401. SIGTERM "
        "stops the server within a few seconds. "
        "From Python: roboreward.serve.RewardClient(url, token=...).score(video_or_frames, task).",
    )
    parser.add_argument(
        "--model", required=True, metavar="PATH_OR_ID", help="reward model checkpoint folder or Hub id"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need --token)"
    )
    parser.add_argument("--port", type=int, default=8000, help="default 8000")
    parser.add_argument(
        "--token",
        default=None,
        help="bearer token every request must send (default $ROBOREWARD_SERVE_TOKEN); required off loopback",
    )
    parser.add_argument("--insecure", action="store_true", help="allow a non-loopback --host without --token")
    parser.add_argument("--public", action="store_true", help=argparse.SUPPRESS)  # before --token existed
    parser.add_argument(
        "--max-batch",
        type=int,
        default=8,
        help="requests scored together at most (default 8; 1: no batching)",
    )
    parser.add_argument(
        "--max-wait-ms",
        type=float,
        default=20.0,
        help="how long a request waits for others to batch with (default 20)",
    )
    parser.add_argument(
        "--max-upload-mb", type=float, default=50.0, help="largest upload accepted (default 50)"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=120.0, help="longest video accepted (default 120)"
    )
    parser.add_argument(
        "--max-task-chars", type=int, default=500, help="longest task accepted, in characters (default 500)"
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="time a request may wait for and spend in the model before it gets 504 (default 60)",
    )
    parser.add_argument(
        "--num-frames", type=int, default=16, help="frames sampled from each video (default 16)"
    )
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--dtype", default=None, help="default: bfloat16 on a GPU that has it, else float32")
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    parser.set_defaults(func=_serve)
    return parser
