"""Benchmark: keep 16 frames of a 30 s 480p rollout, by `sample_frames` vs decoding every frame.

    python benchmarks/video_sampling.py [--out benchmarks/results/video_sampling.json] [--repeats 3]

Videos are generated here (moving shapes, 640x480, 30 fps, 30 s): H.264 with x264's default
keyframe interval, AV1 with SVT-AV1's default, and AV1 the way LeRobot encodes (keyframe every 2
frames). The baseline decodes every frame with the same decoder and then keeps 16; the ratio is
baseline time / sample_frames time, measured in the same run (median of --repeats).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from _report import write_report

from roboreward import video

WIDTH, HEIGHT, FPS, SECONDS, KEEP = 640, 480, 30, 30, 16


def _scene(index: int) -> np.ndarray:
    """A frame with a moving gripper-like block and a static textured table."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    frame = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    frame[..., 0] = (x // 8 + y // 8) % 2 * 40 + 90
    frame[..., 1] = 110
    frame[..., 2] = (y * 255 // HEIGHT).astype(np.uint8)
    cx = int(WIDTH / 2 + WIDTH / 3 * np.sin(index / 40))
    cy = int(HEIGHT / 2 + HEIGHT / 4 * np.cos(index / 55))
    frame[max(cy - 30, 0) : cy + 30, max(cx - 40, 0) : cx + 40] = (220, 60, 40)
    return frame


def _write(path: Path, codec: str, options: dict[str, str]) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS, options=options)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i in range(FPS * SECONDS):
            for packet in stream.encode(av.VideoFrame.from_ndarray(_scene(i), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _decode_all_then_subsample(path: Path, backend: str) -> np.ndarray:
    if backend == "decord":
        import decord

        reader = decord.VideoReader(str(path))
        frames = reader.get_batch(list(range(len(reader)))).asnumpy()
    else:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
    keep = np.rint(np.linspace(0, len(frames) - 1, KEEP)).astype(int)
    return frames[keep]


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="benchmarks/results/video_sampling.json")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    cases = [
        ("h264", "libx264", {"preset": "veryfast"}),
        ("av1", "libsvtav1", {"preset": "10"}),
        ("av1-lerobot-g2", "libsvtav1", {"preset": "10", "g": "2", "crf": "30"}),
    ]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, codec, options in cases:
            start = time.perf_counter()
            path = _write(Path(tmp) / f"{name}.mp4", codec, options)
            encode_s = time.perf_counter() - start
            info = video.probe(path)
            backend = video.select_backend(path, info=info)
            sampled = video.sample_frames(path, num_frames=KEEP)
            baseline = _decode_all_then_subsample(path, backend)
            # Both paths must return the same frames (lossy decoders agree to within a few levels).
            max_diff = int(np.abs(sampled.astype(int) - baseline.astype(int)).max())
            t_sample = _median_seconds(lambda p=path: video.sample_frames(p, num_frames=KEEP), args.repeats)
            t_all = _median_seconds(lambda p=path, b=backend: _decode_all_then_subsample(p, b), args.repeats)
            t_pyav = (
                t_sample
                if backend == "pyav"
                else _median_seconds(
                    lambda p=path: video.sample_frames(p, num_frames=KEEP, backend="pyav"), args.repeats
                )
            )
            row = {
                "video": name,
                "codec": info.codec,
                "frames": info.frames,
                "size": f"{info.width}x{info.height}",
                "file_mb": round(path.stat().st_size / 2**20, 2),
                "encode_s": round(encode_s, 2),
                "backend": backend,
                "sample_frames_s": round(t_sample, 4),
                "decode_all_then_subsample_s": round(t_all, 4),
                "speedup": round(t_all / t_sample, 2),
                "sample_frames_pyav_s": round(t_pyav, 4),
                "decord_vs_pyav_sampling": round(t_pyav / t_sample, 2),
                "max_pixel_diff": max_diff,
            }
            results.append(row)
            print(
                f"{name:16s} {backend:6s} sample_frames {t_sample * 1000:8.1f} ms   "
                f"decode-all {t_all * 1000:8.1f} ms   ratio {row['speedup']:6.2f}x   "
                f"(pyav sampling {t_pyav * 1000:6.1f} ms, max diff {max_diff})"
            )
    report = {
        "benchmark": "video_sampling",
        "keep_frames": KEEP,
        "video": f"{WIDTH}x{HEIGHT}, {FPS} fps, {SECONDS} s",
        "repeats": args.repeats,
        "results": results,
    }
    write_report(report, args.out)


if __name__ == "__main__":
    main()
