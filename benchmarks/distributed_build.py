"""Benchmark: `roboreward build` in process vs as datatrove tasks (`--executor local`), wall seconds.

    python benchmarks/distributed_build.py [--episodes 24] [--runs 3] [--tasks 4] [--workers 2]
        [--out benchmarks/results/distributed_build.json]

Simulated LeRobot and RoboArena sources (`roboreward sim`) are built into a fresh folder each run, in
a child process (the CLI, as a user runs it), in turn: in process, then as ``--tasks`` tasks on
``--workers`` workers, run after run, so a drift of the machine's speed hits both. Prints the median
and spread of each and the ratio local / in-process per pair: above 1 is datatrove's cost (task
start-up, forkserver imports, the merge), below 1 what the workers gain; on a machine with fewer free
cores than workers expect no gain. The folders' Parquet bytes are checked equal.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import write_report

CLI = [sys.executable, "-m", "roboreward.cli"]


def _timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def _spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=24)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/distributed_build.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        lerobot = [*CLI, "sim", "--out", str(root / "lerobot"), "--episodes", str(args.episodes)]
        subprocess.run(lerobot, check=True)
        arena = [*CLI, "sim", "--out", str(root / "arena"), "--layout", "roboarena", "--seed", "1"]
        subprocess.run([*arena, "--episodes", str(args.episodes // 3)], check=True)
        build = [*CLI, "build", "--lerobot", str(root / "lerobot"), "--roboarena", str(root / "arena")]
        build += ["--max-side", "112", "--max-frames", "16", "--oxe-episodes", str(args.episodes)]
        local = ["--executor", "local", "--tasks", str(args.tasks), "--workers", str(args.workers)]
        times: dict[str, list[float]] = {"inprocess": [], "local": []}
        for run in range(args.runs):
            times["inprocess"].append(_timed([*build, "--out", str(root / f"in{run}")]))
            times["local"].append(_timed([*build, "--out", str(root / f"local{run}"), *local]))
            same = all(
                a.read_bytes() == b.read_bytes()
                for a, b in zip(
                    sorted((root / f"in{run}" / "data").glob("*.parquet")),
                    sorted((root / f"local{run}" / "data").glob("*.parquet")),
                    strict=True,
                )
            )
            assert same, f"run {run}: the local build's Parquet differs from the in-process build's"
    ratios = [b / a for a, b in zip(times["inprocess"], times["local"], strict=True)]
    report = {
        "episodes": args.episodes,
        "tasks": args.tasks,
        "workers": args.workers,
        "seconds": {k: _spread(v) for k, v in times.items()},
        "ratio_local_over_inprocess": _spread(ratios),
    }
    for name, s in report["seconds"].items():
        print(f"{name:10s} median {s['median']:.1f} s (min {s['min']:.1f}, max {s['max']:.1f})")
    r = report["ratio_local_over_inprocess"]
    print(f"local / inprocess: median {r['median']:.2f} (min {r['min']:.2f}, max {r['max']:.2f})")
    write_report(report, args.out)


if __name__ == "__main__":
    main()
