"""Benchmark: the reward server's videos/s and p50/p95 latency, with and without micro-batching.

    python benchmarks/reward_server.py [--requests 32] [--out benchmarks/results/reward_server.json]

Serves the tiny "small" Qwen2.5-VL of `roboreward.testing` (CPU) on 127.0.0.1 with `create_app` at
max_batch 1 (no batching) and max_batch 8 (requests that arrive within 20 ms share a forward pass),
and sends ``--requests`` requests (8-frame 112x112 clips) from 1, 4 and 16 concurrent clients.
Ratios: batched over unbatched throughput at each concurrency, measured in the same run.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import uvicorn
from _report import write_report

from roboreward import video
from roboreward.scoring import RewardModel
from roboreward.serve import RewardClient, create_app
from roboreward.testing import make_tiny_vlm


def _serve(app):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{port}"


def _load(url: str, clips: list[bytes], clients: int) -> dict:
    latencies = []

    def one(i: int) -> None:
        client = RewardClient(url)
        start = time.perf_counter()
        client.score(clips[i % len(clips)], f"put the red block in the blue bowl {i % 5}")
        latencies.append(time.perf_counter() - start)
        client.close()

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(one, range(len(clips))))
    seconds = time.perf_counter() - start
    ordered = sorted(latencies)
    return {
        "videos_per_s": round(len(clips) / seconds, 2),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--out", default="benchmarks/results/reward_server.json")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = RewardModel.from_pretrained(make_tiny_vlm(Path(tmp) / "small", size="small"), num_frames=8)
        clips = []
        for i in range(args.requests):
            frames = rng.integers(0, 255, (8, 112, 112, 3), dtype=np.uint8)
            clips.append(video.encode(frames, Path(tmp) / f"c{i}.mp4", fps=4).read_bytes())
        for max_batch in (1, 8):
            server, thread, url = _serve(create_app(model, max_batch=max_batch, max_wait_ms=20))
            _load(url, clips[:4], 2)  # warm-up
            for clients in (1, 4, 16):
                key = f"batch{max_batch}_clients{clients}"
                results[key] = _load(url, clips, clients)
                r = results[key]
                print(
                    f"max_batch {max_batch}  {clients:2d} clients  {r['videos_per_s']:7.2f} videos/s  "
                    f"p50 {r['p50_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms"
                )
            server.should_exit = True
            thread.join(timeout=10)
    ratios = {
        f"batched_vs_unbatched_clients{c}": round(
            results[f"batch8_clients{c}"]["videos_per_s"] / results[f"batch1_clients{c}"]["videos_per_s"], 2
        )
        for c in (1, 4, 16)
    }
    for name, value in ratios.items():
        print(f"{name}: {value}x")
    write_report(
        {
            "benchmark": "reward_server",
            "model": "tiny 'small' Qwen2.5-VL (4.6 M parameters), CPU",
            "requests": args.requests,
            "results": results,
            "ratios": ratios,
            "argv": sys.argv[1:],
        },
        args.out,
    )


if __name__ == "__main__":
    main()
