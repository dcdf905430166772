"""Benchmark: `roboreward bench` against served models, ``--concurrency 8`` vs ``--concurrency 1``.

    .venv/bin/python benchmarks/served_concurrency.py [--examples 48] [--latency 0.1] \
        [--out benchmarks/results/served_concurrency.json]

Four scripted OpenAI-compatible endpoints (`roboreward.testing.chat_server.ScriptedChatServer`, vLLM's
request and response shapes), each answering after ``--latency`` seconds (a GPU's time per request;
the servers take any number of requests at once, as vLLM batches them), form one pool:
``openai+logprobs:URL1#judge,...,URL4#judge``. A built dataset of ``--examples`` episodes is benched
with ``--concurrency 1`` (the baseline: one request at a time) and ``--concurrency 8``, each into a
fresh folder, in ``--rounds`` rounds that alternate the two. Reported: wall seconds per run, examples
per second, the speed-up ratio (concurrency 8 over 1, median over rounds), requests per endpoint,
and whether the two ``results.json`` are byte for byte the same.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from _report import write_report

from roboreward.bench.run import BenchConfig, run_bench
from roboreward.dataset.builder import BuildConfig, build
from roboreward.testing.chat_server import Reply, ScriptedChatServer, prompt_text

ENDPOINTS = 4


def _answer(request: dict) -> Reply:
    """A deterministic distribution per task: the same answer whatever the order of requests."""
    digest = hashlib.sha256(prompt_text(request).encode()).digest()
    best = str(1 + digest[0] % 5)
    return Reply(f"ANSWER: {best}", {best: -0.3, str(1 + digest[1] % 5): -1.6, "the": -3.0})


def _dataset(root: Path, examples: int) -> Path:
    """``examples`` 2-second 64x48 H.264 episodes, built into a RoboReward folder (split test)."""
    rows = []
    for i in range(examples):
        path = root / f"ep{i}.mp4"
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=10)
            stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
            for t in range(20):
                frame = np.full((48, 64, 3), (i * 7 + t * 11) % 256, np.uint8)
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode())
        rows.append({"video": path.name, "task": f"stack block {i}", "reward": 1 + i % 5, "source": "bench"})
    manifest = root / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = root / "ds"
    build(BuildConfig(manifest=[str(manifest)], out=str(out), split_ratios={"test": 1.0}, max_side=64))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=48)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per request at each endpoint")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/served_concurrency.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="roboreward-served-bench-") as tmp:
        root = Path(tmp)
        dataset = _dataset(root, args.examples)
        servers = [ScriptedChatServer(_answer, latency=args.latency) for _ in range(ENDPOINTS)]
        for server in servers:
            server.__enter__()
        try:
            spec = "openai+logprobs:" + ",".join(f"{s.url}#judge" for s in servers)
            seconds: dict[int, list[float]] = {1: [], 8: []}
            texts: dict[int, set[str]] = {1: set(), 8: set()}
            per_endpoint: dict[int, list[int]] = {}
            for round_ in range(args.rounds):
                for concurrency in (1, 8) if round_ % 2 == 0 else (8, 1):
                    before = [len(s.requests) for s in servers]
                    out = root / f"out-{concurrency}-{round_}"
                    config = BenchConfig(
                        dataset=str(dataset),
                        models=[spec],
                        out=str(out),
                        concurrency=concurrency,
                        num_frames=4,
                    )
                    start = time.perf_counter()
                    run_bench(config)
                    seconds[concurrency].append(time.perf_counter() - start)
                    texts[concurrency].add((out / "results.json").read_text())
                    per_endpoint[concurrency] = [
                        len(s.requests) - b for s, b in zip(servers, before, strict=True)
                    ]
        finally:
            for server in servers:
                server.__exit__(None, None, None)

    median = {c: statistics.median(v) for c, v in seconds.items()}
    identical = len(texts[1] | texts[8]) == 1
    report = {
        "examples": args.examples,
        "endpoints": ENDPOINTS,
        "latency_s": args.latency,
        "rounds": args.rounds,
        "seconds": {str(c): [round(s, 3) for s in v] for c, v in seconds.items()},
        "examples_per_s": {str(c): round(args.examples / m, 2) for c, m in median.items()},
        "speedup_concurrency_8_over_1": round(median[1] / median[8], 2),
        "requests_per_endpoint": {str(c): v for c, v in per_endpoint.items()},
        "results_identical": identical,
    }
    print(
        f"{args.examples} examples, {ENDPOINTS} endpoints at {args.latency * 1000:.0f} ms: "
        f"concurrency 1 {median[1]:.2f} s, concurrency 8 {median[8]:.2f} s, "
        f"speed-up x{report['speedup_concurrency_8_over_1']}, results identical: {identical}"
    )
    write_report(report, args.out)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
