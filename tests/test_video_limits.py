"""Untrusted videos are checked against `VideoLimits` before any frame is decoded: a decompression
bomb (a small H.264 file of 8000x8000 frames) is refused by serve, the Space and `score`, and
skipped by `build`, each without the memory a decode would take."""

import json
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
