"""Benchmark: `roboreward build` episodes/s at num_proc 1 vs 2, and peak RSS at two dataset sizes.

    python benchmarks/build_throughput.py [--sizes 40 160] [--out benchmarks/results/build_throughput.json]

A manifest of generated rollouts (4 s, 320x240, 15 fps, H.264) is built in a fresh folder for each
run, in a child process, so peak RSS (``ru_maxrss`` of the build process and, separately, of its
worker processes) belongs to that build alone. Ratios: episodes/s with 2 processes over 1 process
(same size), and peak RSS of the large size over the small one (it should stay near 1: rows are
streamed, never all held in memory).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import av
import numpy as np
from _report import write_report

SECONDS, FPS, WIDTH, HEIGHT = 4, 15, 320, 240

CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    from roboreward.dataset.builder import BuildConfig, build
    manifest, out, num_proc = sys.argv[1], sys.argv[2], int(sys.argv[3])
    start = time.perf_counter()
    report = build(BuildConfig(manifest=[manifest], out=out, num_proc=num_proc, max_side=224, max_frames=32))
    seconds = time.perf_counter() - start
    print(json.dumps({
        "seconds": seconds,
        "rows": report["totals"]["rows"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_rss_workers_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }))
    """
)


def _write_rollouts(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    rng = np.random.default_rng(0)
    base = rng.integers(60, 200, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    for index in range(count):
        path = folder / f"rollout_{index:05d}.mp4"
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=FPS, options={"preset": "ultrafast"})
            stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            for t in range(SECONDS * FPS):
                frame = base.copy()
                # every rollout differs (the encoded-video cache would otherwise encode a repeat once)
                x = (index * 7 + t * 4) % (WIDTH - 40)
                y = 20 + (index // 40 * 37) % (HEIGHT - 80)
                frame[y : y + 40, x : x + 40] = (230, 40, 40)
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        rows.append(
            {
                "video": path.name,
                "task": f"push the red block to position {index % 9}",
                "reward": index % 5 + 1,
            }
        )
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def _run(manifest: Path, out: Path, num_proc: int) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(manifest), str(out), str(num_proc)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs=2, default=[40, 160], metavar=("SMALL", "LARGE"))
    parser.add_argument("--out", default="benchmarks/results/build_throughput.json")
    args = parser.parse_args()

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            manifest = _write_rollouts(Path(tmp) / f"data_{size}", size)
            for num_proc in (1, 2):
                stats = _run(manifest, Path(tmp) / f"out_{size}_{num_proc}", num_proc)
                stats.update(episodes=size, num_proc=num_proc, episodes_per_s=size / stats["seconds"])
                runs.append(stats)
                print(
                    f"{size:5d} episodes  num_proc {num_proc}  {stats['episodes_per_s']:6.2f} episodes/s  "
                    f"peak RSS {stats['peak_rss_mb']:7.1f} MB "
                    f"(workers {stats['peak_rss_workers_mb']:7.1f} MB)"
                )

    def pick(size: int, num_proc: int) -> dict:
        return next(r for r in runs if r["episodes"] == size and r["num_proc"] == num_proc)

    small, large = args.sizes
    ratios = {
        f"speedup_num_proc_2_vs_1_at_{size}": round(
            pick(size, 2)["episodes_per_s"] / pick(size, 1)["episodes_per_s"], 2
        )
        for size in args.sizes
    }
    ratios[f"peak_rss_{large}_vs_{small}_num_proc_1"] = round(
        pick(large, 1)["peak_rss_mb"] / pick(small, 1)["peak_rss_mb"], 2
    )
    ratios[f"peak_rss_{large}_vs_{small}_num_proc_2"] = round(
        max(pick(large, 2)["peak_rss_mb"], pick(large, 2)["peak_rss_workers_mb"])
        / max(pick(small, 2)["peak_rss_mb"], pick(small, 2)["peak_rss_workers_mb"]),
        2,
    )
    for name, value in ratios.items():
        print(f"{name}: {value}")
    report = {
        "benchmark": "build_throughput",
        "rollout": f"{SECONDS} s, {WIDTH}x{HEIGHT}, {FPS} fps H.264 -> max_side 224, max_frames 32",
        "runs": runs,
        "ratios": ratios,
    }
    write_report(report, args.out)


if __name__ == "__main__":
    main()
