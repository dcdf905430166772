"""Benchmark: `roboreward bench` against served models, ``--concurrency`` 8, 16 and 32 vs 1.

    .venv/bin/python benchmarks/served_concurrency.py [--examples 48] [--latency 0.1] \
        [--concurrency 1 8 16 32] [--num-frames 4] [--rounds 3] \
        [--out benchmarks/results/served_concurrency.json]

Four scripted OpenAI-compatible endpoints (`roboreward.testing.chat_server.ScriptedChatServer`, vLLM's
request and response shapes), each answering after ``--latency`` seconds (a GPU's time per request;
the servers take any number of requests at once, as vLLM batches them), form one pool:
``openai+logprobs:URL1#judge,...,URL4#judge``. The servers run in a child process, as real servers
run on other machines: this process's CPU time is the client's alone, and the servers' request
parsing does not share its interpreter lock.

A built dataset of ``--examples`` 2-second 64x48 H.264 episodes (20 frames at 10 fps) is benched with
each ``--concurrency`` (1 is the baseline: one request at a time), each into a fresh folder, after one
run that is not counted (imports, first calls), in ``--rounds`` rounds that rotate the order.
``--num-frames 4`` (the default) samples 4 of the 20 frames, so every request re-encodes them
(`roboreward.models.openai_chat.video_data_url`);
``--num-frames 20`` takes every frame at its size, so the episode's own H.264 file is sent as it is
(`roboreward.models.frames.passthrough_video`).

Reported per concurrency, over rounds (min / median / max): wall seconds of the whole `run_bench`
(reports and plots included) and of its request phase alone (the served predictor's first to last
answer), their speed-ups over concurrency 1 (each round's ratio: the runs of a round are next to
each other in time, so the machine's drift cancels), the client's CPU per request (this process's
CPU seconds over the requests the servers saw: whole run, and the request phase alone), requests per
endpoint, and whether every ``results.json`` is byte for byte the same.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
from _report import write_report

from roboreward.bench import predictors
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


def _serve(latency: float, pipe: Any) -> None:
    """The child process: `ENDPOINTS` scripted servers; sends their URLs, then answers ``count``
    (requests each has seen, and how many of them carried a video part) until ``stop``."""
    servers = [ScriptedChatServer(_answer, latency=latency) for _ in range(ENDPOINTS)]
    for server in servers:
        server.__enter__()
    try:
        pipe.send([s.url for s in servers])
        while (command := pipe.recv()) != "stop":
            assert command == "count"
            pipe.send([len(s.requests) for s in servers])
    finally:
        for server in servers:
            server.__exit__(None, None, None)


class _PhaseClock:
    """Times the served predictor's request phase: from its first call to its last answer."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0
        self._predict = predictors.ServedPredictor.predict

    def __enter__(self) -> _PhaseClock:
        clock, predict = self, self._predict

        def timed(self_: Any, examples: Any) -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            yield from predict(self_, examples)
            clock.wall += time.perf_counter() - wall
            clock.cpu += time.process_time() - cpu

        predictors.ServedPredictor.predict = timed  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: Any) -> None:
        predictors.ServedPredictor.predict = self._predict  # type: ignore[method-assign]


def _spread(values: list[float], digits: int = 3) -> dict[str, float]:
    return {
        "min": round(min(values), digits),
        "median": round(statistics.median(values), digits),
        "max": round(max(values), digits),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=48)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per request at each endpoint")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 16, 32])
    parser.add_argument("--num-frames", type=int, default=4, help="frames sampled per episode (20: all)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/served_concurrency.json")
    args = parser.parse_args()
    levels = sorted(set(args.concurrency) | {1})

    runs: dict[int, list[dict[str, float]]] = {c: [] for c in levels}
    texts: set[str] = set()
    per_endpoint: dict[int, list[int]] = {}
    with tempfile.TemporaryDirectory(prefix="roboreward-served-bench-") as tmp:
        root = Path(tmp)
        dataset = _dataset(root, args.examples)
        context = multiprocessing.get_context("spawn")
        pipe, child_pipe = context.Pipe()
        child = context.Process(target=_serve, args=(args.latency, child_pipe), daemon=True)
        child.start()
        try:
            urls = pipe.recv()
            spec = "openai+logprobs:" + ",".join(f"{url}#judge" for url in urls)
            warm = BenchConfig(dataset=str(dataset), models=[spec], out=str(root / "warm-up"))
            run_bench(dataclasses.replace(warm, concurrency=1, num_frames=args.num_frames))  # not counted
            for round_ in range(args.rounds):
                order = levels[round_ % len(levels) :] + levels[: round_ % len(levels)]
                for concurrency in order:
                    pipe.send("count")
                    before = pipe.recv()
                    out = root / f"out-{concurrency}-{round_}"
                    config = BenchConfig(
                        dataset=str(dataset),
                        models=[spec],
                        out=str(out),
                        concurrency=concurrency,
                        num_frames=args.num_frames,
                    )
                    with _PhaseClock() as phase:
                        wall, cpu = time.perf_counter(), time.process_time()
                        run_bench(config)
                        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                    pipe.send("count")
                    counts = [after - b for after, b in zip(pipe.recv(), before, strict=True)]
                    requests = sum(counts)
                    runs[concurrency].append(
                        {
                            "wall": wall,
                            "phase_wall": phase.wall,
                            "cpu_ms_per_request": 1000 * cpu / requests,
                            "phase_cpu_ms_per_request": 1000 * phase.cpu / requests,
                        }
                    )
                    texts.add((out / "results.json").read_text())
                    per_endpoint[concurrency] = counts
        finally:
            pipe.send("stop")
            child.join(timeout=30)

    identical = len(texts) == 1
    report: dict[str, Any] = {
        "examples": args.examples,
        "endpoints": ENDPOINTS,
        "latency_s": args.latency,
        "num_frames": args.num_frames,
        "rounds": args.rounds,
        "requests_per_endpoint": {str(c): v for c, v in per_endpoint.items()},
        "results_identical": identical,
        "levels": {},
    }
    base = runs[1]
    print(
        f"{args.examples} examples, {ENDPOINTS} endpoints at {args.latency * 1000:.0f} ms, "
        f"{args.num_frames} frames, {args.rounds} rounds (min / median / max):"
    )
    for concurrency in levels:
        mine = runs[concurrency]
        entry = {
            key: _spread([r[key] for r in mine])
            for key in ("wall", "phase_wall", "cpu_ms_per_request", "phase_cpu_ms_per_request")
        }
        entry["speedup"] = _spread([b["wall"] / r["wall"] for b, r in zip(base, mine, strict=True)], 2)
        entry["phase_speedup"] = _spread(
            [b["phase_wall"] / r["phase_wall"] for b, r in zip(base, mine, strict=True)], 2
        )
        report["levels"][str(concurrency)] = entry
        print(
            f"  concurrency {concurrency:>2}: run x{entry['speedup']['min']} / "
            f"{entry['speedup']['median']} / {entry['speedup']['max']}, requests x"
            f"{entry['phase_speedup']['min']} / {entry['phase_speedup']['median']} / "
            f"{entry['phase_speedup']['max']}; wall {entry['wall']['median']:.2f} s "
            f"(requests {entry['phase_wall']['median']:.2f} s); client CPU per request "
            f"{entry['cpu_ms_per_request']['median']:.1f} ms (requests alone "
            f"{entry['phase_cpu_ms_per_request']['median']:.1f} ms)"
        )
    print(f"results identical: {identical}")
    write_report(report, args.out)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
