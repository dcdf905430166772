"""Untrusted videos are checked against `VideoLimits` before any frame is decoded: a decompression
bomb (a small H.264 file of 8000x8000 frames) is refused by serve, the Space and `score`, and
skipped by `build`, each without the memory a decode would take."""

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import av
import pytest
from conftest import write_video

from roboreward import video

TESTS = Path(__file__).resolve().parent


def write_bomb(path: Path, side: int = 8000, frames: int = 3) -> Path:
    """A few KB of H.264 whose frames decode to side x side pixels (192 MB each as RGB)."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10, options={"preset": "ultrafast"})
        stream.width = stream.height = side
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        picture = av.VideoFrame(side, side, "yuv420p")
        for plane in picture.planes:
            plane.update(bytes(plane.buffer_size))
        for index in range(frames):
            picture.pts = index
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    return write_bomb(tmp_path_factory.mktemp("bomb") / "bomb.mp4")


def test_the_header_of_a_bomb_is_read_without_decoding_it(bomb):
    info = video.probe(bomb)
    assert (info.width, info.height, info.frames) == (8000, 8000, 3)
    assert bomb.stat().st_size < 300_000
    with pytest.raises(
        video.VideoLimitError, match=r"8000x8000 \(64\.0 Mpx\) are over the limit of 16\.8 Mpx"
    ):
        video.check_limits(info, source=bomb)


def test_every_decode_refuses_a_bomb_by_default(bomb, tmp_path):
    for decode in (
        lambda: video.sample_frames(bomb, num_frames=2),
        lambda: next(video.iter_frames(bomb)),
        lambda: video.clip(bomb, tmp_path / "c.mp4", end_fraction=0.5),
    ):
        with pytest.raises(video.VideoLimitError, match="per frame") as refused:
            decode()
        assert isinstance(refused.value, video.VideoDecodeError)  # every caller's skip path covers it
        assert str(bomb) in str(refused.value)


def test_limits_count_frames_seconds_and_decoded_bytes_of_the_range():
    info = video.VideoInfo(frames=36_000, fps=10.0, width=1920, height=1080, duration=3600.0, codec="h264")
    video.check_limits(info)  # an hour of 1080p at 10 fps: 224 GB of RGB, under 512 GiB
    with pytest.raises(video.VideoLimitError, match="36000 frames to decode are over the limit of 1000"):
        video.check_limits(info, video.VideoLimits(max_frames=1000))
    with pytest.raises(video.VideoLimitError, match=r"3600\.0 s to decode is over the limit of 600 s"):
        video.check_limits(info, video.VideoLimits(max_seconds=600))
    with pytest.raises(video.VideoLimitError, match=r"decode to 208\.6 GiB, over the limit of 100 GiB"):
        video.check_limits(info, video.VideoLimits(max_decoded_bytes=100 * 2**30))
    # one 60 s episode of a long file is judged by its own range: 600 frames
    video.check_limits(info, video.VideoLimits(max_frames=600, max_seconds=60), start=120.0, end=180.0)
    video.check_limits(info, None)  # no limits
    with pytest.raises(ValueError, match="max_pixels must be > 0"):
        video.VideoLimits(max_pixels=0)


def test_custom_limits_apply_to_sampling(make_video):
    path = make_video(num_frames=20, size=(64, 48))
    assert video.sample_frames(path, num_frames=4).shape == (4, 48, 64, 3)
    with pytest.raises(video.VideoLimitError, match=r"64x48 \(0\.0 Mpx\)"):
        video.sample_frames(path, num_frames=4, limits=video.VideoLimits(max_pixels=64 * 47))
    assert video.sample_frames(path, num_frames=4, limits=None).shape == (4, 48, 64, 3)


@pytest.mark.slow
def test_serve_space_score_and_build_refuse_a_bomb_in_bounded_memory(bomb, tmp_path, tiny_vlm_dir):
    good = write_video(tmp_path / "good.mp4", num_frames=12, fps=10)
    result = subprocess.run(
        [
            sys.executable,
            str(TESTS / "bomb_child.py"),
            str(bomb),
            str(good),
            str(tiny_vlm_dir),
            str(tmp_path / "w"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["warm"]["serve"]["status"] == 200 and out["warm"]["space"]["score"] in range(1, 6)
    assert out["warm"]["score"]["code"] == 0 and out["warm"]["build"]["rows"] == 1
    assert out["serve"]["status"] == 422
    assert "8000x8000 (64.0 Mpx) are over the limit" in out["serve"]["detail"]
    assert out["space"]["error"] == "Error" and "too large to score" in out["space"]["message"]
    assert out["score"]["code"] == 1 and "over the limit of 16.8 Mpx per frame" in out["score"]["stderr"]
    assert out["build"]["rows"] == 1
    assert len(out["build"]["skipped"]) == 1 and "over the limit of 16.8 Mpx" in out["build"]["skipped"][0]
    growth = {name: out[name]["growth_mb"] for name in ("serve", "space", "score", "build")}
    print("peak RSS growth (MB):", growth)
    assert all(g < 300 for g in growth.values()), growth


def write_switching_ts(path: Path, then: int, first: int = 64, frames: int = 3) -> Path:
    """An MPEG-TS stream whose header (its first frames) says first x first, then frames of then x then:
    a lying header when ``then`` is over the limits, a resolution change mid-stream when it is not."""
    parts = []
    for side in (first, then):
        buffer = io.BytesIO()
        with av.open(buffer, "w", format="mpegts") as container:
            stream = container.add_stream("libx264", rate=10, options={"preset": "ultrafast"})
            stream.width = stream.height = side
            stream.pix_fmt = "yuv420p"
            stream.codec_context.thread_count = 1
            picture = av.VideoFrame(side, side, "yuv420p")
            for plane in picture.planes:
                plane.update(bytes(plane.buffer_size))
            for index in range(frames):
                picture.pts = index
                for packet in stream.encode(picture):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        parts.append(buffer.getvalue())
    path.write_bytes(b"".join(parts))
    return path


def test_a_stream_that_changes_its_frame_size_is_refused_by_every_decode(tmp_path):
    switch = write_switching_ts(tmp_path / "switch.ts", then=512)
    info = video.probe(switch)
    assert (info.width, info.height, info.container) == (64, 64, "mpegts")
    assert video.select_backend(switch) == "pyav"  # decord would follow the stream into any size
    for decode in (
        lambda: video.sample_frames(switch, num_frames=6),
        lambda: list(video.iter_frames(switch)),
    ):
        with pytest.raises(
            video.VideoDecodeError, match=r"changes its frame size from 64x64 \(its header\) to 512x512"
        ):
            decode()


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("frame.mp4", "png", r"is a still image \(PNG\), not a video"),
        ("frame.mp4", "jpeg", r"is a still image \(JPEG\), not a video"),
        (
            "episode.h264",
            "h264",
            r"is a raw h264 stream without a container .* put it in an mp4 or mkv first",
        ),
    ],
)
def test_still_images_and_raw_streams_are_refused_naming_the_file(tmp_path, name, data, reason):
    path = tmp_path / name
    if data in ("png", "jpeg"):
        from PIL import Image

        Image.new("RGB", (32, 32)).save(path, format=data.upper())
    else:
        with av.open(str(path), "w", format="h264") as container:
            stream = container.add_stream("libx264", rate=10)
            stream.width = stream.height = 64
            stream.pix_fmt = "yuv420p"
            for index in range(4):
                frame = av.VideoFrame(64, 64, "yuv420p")
                for plane in frame.planes:
                    plane.update(bytes([index * 9]) * plane.buffer_size)
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    with pytest.raises(
        video.VideoDecodeError, match=rf"cannot decode video '{re.escape(str(path))}': {reason}"
    ):
        video.probe(path)


@pytest.mark.slow
def test_a_lying_header_is_refused_by_serve_the_space_score_and_build_in_bounded_memory(
    tmp_path, tiny_vlm_dir
):
    liar = write_switching_ts(tmp_path / "liar.ts", then=8000)
    assert (video.probe(liar).width, liar.stat().st_size < 400_000) == (64, True)
    good = write_video(tmp_path / "good.mp4", num_frames=12, fps=10)
    tiny = tiny_vlm_dir
    result = subprocess.run(
        [sys.executable, str(TESTS / "bomb_child.py"), str(liar), str(good), str(tiny), str(tmp_path / "w")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    said = (
        "the stream holds frames of 8000x8000, over the limit of 16.8 Mpx per frame (its header said 64x64)"
    )
    assert out["serve"]["status"] == 422 and said in out["serve"]["detail"]
    assert out["space"]["error"] == "Error" and said in out["space"]["message"]
    assert out["score"]["code"] == 1 and said in out["score"]["stderr"]
    assert (
        out["build"]["rows"] == 1 and len(out["build"]["skipped"]) == 1 and said in out["build"]["skipped"][0]
    )
    growth = {name: out[name]["growth_mb"] for name in ("serve", "space", "score", "build")}
    print("peak RSS growth (MB):", growth)
    assert all(g < 300 for g in growth.values()), growth
