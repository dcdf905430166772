"""`roboreward serve`: the micro-batching reward server for robots and distributed collectors.

Examples:
    roboreward serve --model path/to/reward-model --port 8000
    roboreward serve --model my-org/RoboReward-3B --host 0.0.0.0 --public --max-batch 16 --max-wait-ms 30

    curl -F video=@rollout.mp4 -F task="open the drawer" http://127.0.0.1:8000/score
"""

from __future__ import annotations

import argparse
from typing import Any

from roboreward.cli.access import is_loopback


def run(args: argparse.Namespace) -> int:
    if not is_loopback(args.host) and not args.public:
        raise ValueError(
            f"--host {args.host} exposes the server beyond this machine (it has no authentication): "
            "add --public to mean it"
        )
    import uvicorn

    from roboreward.scoring import RewardModel
    from roboreward.serve import check_settings, create_app

    check_settings(args.max_batch, args.max_wait_ms, args.max_upload_mb, args.max_seconds)  # before loading

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
    )
    print(f"roboreward serve: {args.model} on http://{args.host}:{args.port} (POST /score, GET /health)")
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register the ``serve`` sub-command on ``commands`` (what ``add_subparsers`` returns)."""
    parser = commands.add_parser(
        "serve",
        help="serve a reward model over HTTP for robots and data collectors (POST /score, GET /health)",
        description="POST /score with a multipart upload (field 'video': a video file, field 'task': "
        "the task text) returns the ScoreResult as JSON (score, expected, reward, probs, latency_ms). "
        "Requests arriving together are scored in one batch (--max-batch, --max-wait-ms). Uploads over "
        "--max-upload-mb get 413; non-videos, videos over --max-seconds and empty tasks get 422. "
        "From Python: roboreward.serve.RewardClient(url).score(video_or_frames, task).",
    )
    parser.add_argument(
        "--model", required=True, metavar="PATH_OR_ID", help="reward model checkpoint folder or Hub id"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need --public)"
    )
    parser.add_argument("--port", type=int, default=8000, help="default 8000")
    parser.add_argument("--public", action="store_true", help="allow a --host other than loopback")
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
        "--num-frames", type=int, default=16, help="frames sampled from each video (default 16)"
    )
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--dtype", default=None, help="default: bfloat16 on a GPU that has it, else float32")
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    parser.set_defaults(func=run)
    return parser
