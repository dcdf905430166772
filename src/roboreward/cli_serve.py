"""`roboreward serve --model PATH --port N`: the micro-batching reward server."""

from __future__ import annotations

import argparse
from typing import Any


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from roboreward.scoring import RewardModel
    from roboreward.serve import create_app

    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.public:
        raise ValueError(
            f"--host {args.host} exposes the server beyond this machine: add --public to mean it"
        )
    model = RewardModel.from_pretrained(args.model, num_frames=args.num_frames)
    app = create_app(
        model,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_upload_mb=args.max_upload_mb,
        max_seconds=args.max_seconds,
        model_name=args.model,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def add_serve_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "serve",
        help="serve a reward model over HTTP for robots and data collectors (POST /score, GET /health)",
        description="POST /score with a multipart video upload and a task returns the ScoreResult as JSON; "
        "requests arriving together are scored in one batch. Use roboreward.serve.RewardClient from Python.",
    )
    parser.add_argument("--model", required=True, help="a reward model checkpoint folder or Hub id")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--public", action="store_true", help="allow a --host other than loopback")
    parser.add_argument("--max-batch", type=int, default=8, help="requests scored together at most")
    parser.add_argument("--max-wait-ms", type=float, default=20.0, help="how long a request waits for others")
    parser.add_argument("--max-upload-mb", type=float, default=50.0)
    parser.add_argument("--max-seconds", type=float, default=120.0, help="longest video accepted")
    parser.add_argument("--num-frames", type=int, default=16)
    parser.set_defaults(func=_serve)
