"""Benchmark: the reward server's videos/s and p50/p95 latency, with and without micro-batching.

    .venv/bin/python benchmarks/reward_server.py [--requests 64] [--out benchmarks/results/reward_server.json]

Serves the tiny "small" Qwen2.5-VL of `roboreward.testing.tiny` (CPU) on 127.0.0.1 with `create_app` at
max_batch 1 (no batching: the baseline) and max_batch 8 (requests that arrive within 20 ms share a
forward pass), and sends ``--requests`` uploads (8-frame 112x112 H.264 clips, distinct tasks) from 1,
4 and 16 concurrent clients, each a `RewardClient` sending its share one request after another,
in ``--rounds`` rounds that alternate between the two servers. Latency is what a client waits for
one answer (upload, queueing, scoring). Ratios: batched over unbatched throughput, and unbatched
over batched p95 latency, at each concurrency, in the same run; and, for scale, the model's own
gain from batching (`RewardModel.score_batch` at batch 8 vs 1, no server): the most the server's
batching can give on this machine.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import uvicorn
from _report import write_report

from roboreward import video
from roboreward.models.local import RewardModel
from roboreward.models.remote import RewardClient
from roboreward.serving.server import create_app
from roboreward.testing.tiny import make_tiny_vlm

CONCURRENCY = (1, 4, 16)


def _serve(app):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not server.started:
        if time.time() > deadline:
            raise RuntimeError("the benchmark server did not start within 60 s")
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{port}"


def _load(url: str, clips: list[bytes], clients: int) -> tuple[float, list[float]]:
    """``len(clips)`` requests from ``clients`` concurrent clients: videos/s and each request's latency."""
    shares = [list(range(c, len(clips), clients)) for c in range(clients)]

    def session(share: list[int]) -> list[float]:
        waits = []
        with RewardClient(url, timeout=300) as client:
            for i in share:
                start = time.perf_counter()
                client.score(clips[i], f"put the red block in the blue bowl, take {i}")
                waits.append(time.perf_counter() - start)
        return waits

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        latencies = [w for waits in pool.map(session, shares) for w in waits]
    return len(clips) / (time.perf_counter() - start), latencies


def _summary(rates: list[float], latencies: list[float], batched: int, batches: int) -> dict:
    return {
        "videos_per_s": round(float(np.median(rates)), 2),
        "p50_ms": round(float(np.percentile(latencies, 50)) * 1000, 1),
        "p95_ms": round(float(np.percentile(latencies, 95)) * 1000, 1),
        "mean_batch": round(batched / max(batches, 1), 2),
    }


def _model_only(model: RewardModel, clips: list[bytes]) -> dict:
    """The model's own videos/s at batch 1 and 8 (best of 3): the most batching can give on this machine."""
    tasks = [f"put the red block in the blue bowl, take {i}" for i in range(len(clips))]
    model.score_batch(clips[:8], tasks[:8], batch_size=8)  # warm-up
    out = {}
    for batch in (1, 8):
        best = min(_timed(lambda b=batch: model.score_batch(clips, tasks, batch_size=b)) for _ in range(3))
        out[f"batch{batch}_videos_per_s"] = round(len(clips) / best, 2)
    return out


def _timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=64, help="requests per setting (default 64)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each setting (default 3)")
    parser.add_argument("--max-wait-ms", type=float, default=20.0)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", default="benchmarks/results/reward_server.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = RewardModel.from_pretrained(make_tiny_vlm(Path(tmp) / "small", size="small"), num_frames=8)
        n_params = sum(p.numel() for p in model.model.parameters())
        clips = []
        for i in range(args.requests):
            frames = rng.integers(0, 255, (8, 112, 112, 3), dtype=np.uint8)
            clips.append(video.encode(frames, Path(tmp) / f"c{i}.mp4", fps=4).read_bytes())
        model_only = _model_only(model, clips)
        print(
            f"model alone (no server): batch 1 {model_only['batch1_videos_per_s']:.2f} videos/s, "
            f"batch 8 {model_only['batch8_videos_per_s']:.2f} videos/s"
        )
        apps = {b: create_app(model, max_batch=b, max_wait_ms=args.max_wait_ms) for b in (1, 8)}
        servers = {b: _serve(app) for b, app in apps.items()}
        for b in apps:
            _load(servers[b][2], clips[:8], 4)  # warm-up
        # Rounds alternate between the two servers, so that load from elsewhere on the machine
        # falls on both alike; throughput is the median over rounds, latency pooled over them.
        runs = {(b, c): ([], [], [0, 0]) for b in apps for c in CONCURRENCY}
        for _ in range(args.rounds):
            for clients in CONCURRENCY:
                for b, app in apps.items():
                    stats = app.state.stats
                    batches, scored = stats.batches, sum(k * v for k, v in stats.batch_sizes.items())
                    rate, latencies = _load(servers[b][2], clips, clients)
                    rates, pooled, counts = runs[(b, clients)]
                    rates.append(rate)
                    pooled.extend(latencies)
                    counts[0] += sum(k * v for k, v in stats.batch_sizes.items()) - scored
                    counts[1] += stats.batches - batches
        for (b, clients), (rates, pooled, counts) in sorted(runs.items()):
            r = results[f"batch{b}_clients{clients}"] = _summary(rates, pooled, *counts)
            print(
                f"max_batch {b}  {clients:2d} clients  {r['videos_per_s']:7.2f} videos/s  "
                f"p50 {r['p50_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms  mean batch {r['mean_batch']:.2f}"
            )
        for server, thread, _ in servers.values():
            server.should_exit = True
            thread.join(timeout=10)
    ratios = {}
    for c in CONCURRENCY:
        batched, single = results[f"batch8_clients{c}"], results[f"batch1_clients{c}"]
        ratios[f"throughput_batched_vs_unbatched_clients{c}"] = round(
            batched["videos_per_s"] / single["videos_per_s"], 2
        )
        ratios[f"p95_unbatched_vs_batched_clients{c}"] = round(single["p95_ms"] / batched["p95_ms"], 2)
    ratios["model_alone_batch8_vs_batch1"] = round(
        model_only["batch8_videos_per_s"] / model_only["batch1_videos_per_s"], 2
    )
    for name, value in ratios.items():
        print(f"{name}: {value}x")
    write_report(
        {
            "benchmark": "reward_server",
            "model": f"tiny 'small' Qwen2.5-VL ({n_params / 1e6:.1f} M parameters), CPU",
            "requests": args.requests,
            "rounds": args.rounds,
            "max_wait_ms": args.max_wait_ms,
            "torch_threads": torch.get_num_threads(),
            "cpus": os.cpu_count(),
            "model_alone": model_only,
            "results": results,
            "ratios": ratios,
            "argv": sys.argv[1:],
        },
        args.out,
    )


if __name__ == "__main__":
    main()
