import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import frame_index_of, level_of, write_video

from roboreward import video
from roboreward.video import VideoDecodeError


def indices_of(frames: np.ndarray) -> list[int]:
    return [frame_index_of(f) for f in frames]


@pytest.fixture(params=["h264", "av1"])
def fixture_video(request, h264_video, av1_video) -> Path:
    return {"h264": h264_video, "av1": av1_video}[request.param]


def test_probe_reads_the_header(h264_video, av1_video):
    for path, codec in ((h264_video, "h264"), (av1_video, "av1")):
        info = video.probe(path)
        assert (info.frames, info.fps, info.width, info.height, info.codec) == (30, 10.0, 64, 48, codec)
        assert info.duration == pytest.approx(3.0)


def test_auto_backend_uses_decord_for_h264_and_pyav_for_av1(h264_video, av1_video):
    assert video.select_backend(h264_video) == "decord"
    assert video.select_backend(av1_video) == "pyav"
    assert video.select_backend(h264_video, backend="pyav") == "pyav"
    with pytest.raises(ValueError, match="backend must be"):
        video.select_backend(h264_video, backend="ffmpeg")


@pytest.mark.parametrize("backend", ["auto", "pyav"])
def test_sample_exact_frames_evenly(fixture_video, backend):
    frames = video.sample_frames(fixture_video, num_frames=8, backend=backend)
    assert frames.shape == (8, 48, 64, 3) and frames.dtype == np.uint8
    # np.linspace(0, 29, 8) rounded
    assert indices_of(frames) == [0, 4, 8, 12, 17, 21, 25, 29]
    # the decoded pixel values are the encoded ones (flat frames survive compression within 2 levels)
    assert np.abs(frames[3].astype(int) - level_of(12)).max() <= 2


def test_decord_and_pyav_agree(h264_video):
    a = video.sample_frames(h264_video, num_frames=5, backend="decord")
    b = video.sample_frames(h264_video, num_frames=5, backend="pyav")
    assert indices_of(a) == indices_of(b) == [0, 7, 14, 22, 29]
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 2


def test_decord_refuses_av1_when_forced(av1_video):
    with pytest.raises(VideoDecodeError, match="decord failed"):
        video.sample_frames(av1_video, num_frames=4, backend="decord")


def test_sample_by_fps_and_time_range(fixture_video):
    frames = video.sample_frames(fixture_video, fps=2, start=1.0, end=2.5)
    assert indices_of(frames) == [10, 15, 20]
    # asking for more than the native rate gives each frame once
    assert indices_of(video.sample_frames(fixture_video, fps=100, start=2.5)) == [25, 26, 27, 28, 29]


def test_every_frame_when_no_rate_is_given(fixture_video):
    assert indices_of(video.sample_frames(fixture_video)) == list(range(30))


def test_more_frames_than_the_range_holds_repeats_frames(fixture_video):
    frames = video.sample_frames(fixture_video, num_frames=6, start=0.0, end=0.3)
    assert indices_of(frames) == [0, 0, 1, 1, 2, 2]


def test_max_side_keeps_the_aspect_ratio(fixture_video):
    frames = video.sample_frames(fixture_video, num_frames=2, max_side=32)
    assert frames.shape == (2, 24, 32, 3)
    assert indices_of(frames) == [0, 29]
    # never upscales
    assert video.sample_frames(fixture_video, num_frames=1, max_side=1000).shape == (1, 48, 64, 3)


def test_bytes_and_dataset_rows_are_videos_too(fixture_video):
    data = fixture_video.read_bytes()
    expected = indices_of(video.sample_frames(fixture_video, num_frames=4))
    assert indices_of(video.sample_frames(data, num_frames=4)) == expected
    assert indices_of(video.sample_frames({"bytes": data, "path": None}, num_frames=4)) == expected
    row = {"bytes": None, "path": str(fixture_video)}
    assert indices_of(video.sample_frames(row, num_frames=4)) == expected
    assert video.probe(data).frames == 30


def test_frame_indices_argument_errors(h264_video):
    info = video.probe(h264_video)
    with pytest.raises(ValueError, match="not both"):
        video.frame_indices(info, num_frames=4, fps=2)
    with pytest.raises(ValueError, match="num_frames must be >= 1"):
        video.frame_indices(info, num_frames=0)
    with pytest.raises(ValueError, match="at or after the end"):
        video.frame_indices(info, num_frames=2, start=3.0)
    with pytest.raises(ValueError, match="must be after start"):
        video.frame_indices(info, start=2.0, end=1.0)


def test_long_video_is_sampled_without_decoding_everything(tmp_path, monkeypatch):
    # 600 frames with a keyframe every 30: 8 samples should decode a small fraction of the frames.
    path = write_video(tmp_path / "long.mp4", num_frames=600, fps=30, options={"g": "30"})
    decoded = 0
    real_decode = av.container.InputContainer.decode

    def counting_decode(self, *args, **kwargs):
        nonlocal decoded
        for frame in real_decode(self, *args, **kwargs):
            decoded += 1
            yield frame

    monkeypatch.setattr(av.container.InputContainer, "decode", counting_decode)
    frames = video.sample_frames(path, num_frames=8, backend="pyav")
    assert frames.shape[0] == 8
    expected = np.rint(np.linspace(0, 599, 8)).astype(int) % 32
    assert [frame_index_of(f) for f in frames] == expected.tolist()
    assert decoded < 600 / 2, decoded


def test_encode_writes_browser_playable_h264(tmp_path):
    frames = np.stack([np.full((47, 63, 3), level_of(i), np.uint8) for i in range(12)])
    out = video.encode(frames, tmp_path / "out" / "enc.mp4", fps=6)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.width, stream.height) == (62, 46)  # cropped to even sizes
        assert float(stream.average_rate) == 6
    assert indices_of(video.sample_frames(out)) == list(range(12))
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["enc.mp4"]  # no temporary file left


def test_encode_failure_leaves_no_file(tmp_path):
    def frames():
        yield np.zeros((16, 16, 3), np.uint8)
        yield np.zeros((8, 8, 3), np.uint8)

    with pytest.raises(ValueError, match="unlike the first frame"):
        video.encode(frames(), tmp_path / "bad.mp4", fps=5)
    with pytest.raises(ValueError, match="no frames"):
        video.encode([], tmp_path / "empty.mp4", fps=5)
    with pytest.raises(ValueError, match="uint8"):
        video.encode([np.zeros((8, 8, 3), np.float32)], tmp_path / "float.mp4", fps=5)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("kwargs", "expected"), [({"end_fraction": 0.5}, 15), ({"end_time": 1.0}, 10)])
def test_clip_keeps_the_beginning(fixture_video, tmp_path, kwargs, expected):
    out = video.clip(fixture_video, tmp_path / "clip.mp4", **kwargs)
    info = video.probe(out)
    assert (info.frames, info.fps, info.codec) == (expected, 10.0, "h264")
    assert indices_of(video.sample_frames(out)) == list(range(expected))


def test_clip_arguments(fixture_video, tmp_path):
    with pytest.raises(ValueError, match="exactly one"):
        video.clip(fixture_video, tmp_path / "c.mp4")
    with pytest.raises(ValueError, match="end_fraction must be in"):
        video.clip(fixture_video, tmp_path / "c.mp4", end_fraction=0)


def test_iter_frames_range(av1_video):
    frames = video.iter_frames(av1_video, start=2.0, end=2.5)
    assert [frame_index_of(f) for f in frames] == [20, 21, 22, 23, 24]


# Bad input: each kind raises VideoDecodeError naming the file, from every entry point and backend.
def _bad_videos(root: Path, good: bytes) -> dict[str, tuple[Path, str]]:
    (root / "empty.mp4").write_bytes(b"")
    (root / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    (root / "text.mp4").write_text("this is not a video\n" * 50)
    (root / "header_cut.mp4").write_bytes(good[: len(good) // 3])
    (root / "a_dir.mp4").mkdir()
    with av.open(str(root / "audio_only.wav"), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        samples = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        samples.sample_rate = 8000
        for packet in stream.encode(samples):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with av.open(str(root / "zero_frames.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
    return {
        "missing": (root / "missing.mp4", "no such file"),
        "empty": (root / "empty.mp4", "empty"),
        "corrupt": (root / "garbage.mp4", "not a readable video"),
        "non-video text": (root / "text.mp4", "not a readable video"),
        "truncated": (root / "header_cut.mp4", "not a readable video"),
        "directory": (root / "a_dir.mp4", "is a directory"),
        "audio only": (root / "audio_only.wav", "no video stream"),
        "zero frames": (root / "zero_frames.mp4", "no video stream with frames"),
    }


BAD_KINDS = [
    "missing",
    "empty",
    "corrupt",
    "non-video text",
    "truncated",
    "directory",
    "audio only",
    "zero frames",
]


@pytest.mark.parametrize("kind", BAD_KINDS)
@pytest.mark.parametrize("backend", ["auto", "pyav", "decord"])
def test_bad_videos_raise_video_decode_error(tmp_path, h264_video, kind, backend):
    path, reason = _bad_videos(tmp_path, h264_video.read_bytes())[kind]
    with pytest.raises(VideoDecodeError, match=reason) as error:
        video.sample_frames(path, num_frames=4, backend=backend)
    assert str(path) in str(error.value)
    with pytest.raises(VideoDecodeError, match=reason):
        video.probe(path)


def test_stream_cut_after_the_header_is_reported(tmp_path):
    # faststart puts the header first: the file opens, then the frames run out half-way.
    good = video.encode(
        (np.random.default_rng(i).integers(0, 255, (48, 64, 3), dtype=np.uint8) for i in range(40)),
        tmp_path / "fs.mp4",
        fps=10,
    )
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert video.probe(cut).frames == 40  # the header still promises every frame
    for backend in ("auto", "pyav", "decord"):
        with pytest.raises(VideoDecodeError, match=r"cut\.mp4"):
            video.sample_frames(cut, num_frames=4, backend=backend)


def test_empty_bytes_and_wrong_types():
    with pytest.raises(VideoDecodeError, match="empty"):
        video.sample_frames(b"", num_frames=2)
    with pytest.raises(VideoDecodeError, match="neither 'bytes' nor 'path'"):
        video.probe({"bytes": None, "path": None})
    with pytest.raises(VideoDecodeError, match="expected a path"):
        video.probe(12)


ENCODE_TWICE = """
import hashlib, sys
import numpy as np
from roboreward import video
rng = np.random.default_rng(0)
base = rng.integers(60, 200, (168, 224, 3), dtype=np.uint8)
frames = np.stack([base] * 24)
for t, frame in enumerate(frames):
    frame[70:98, 8 * t : 8 * t + 28] = (230, 40, 40)
if sys.argv[1] == "with_mbtree":
    video.X264_OPTIONS = {}
print(hashlib.sha256(video.encode(frames, sys.argv[2], fps=8).read_bytes()).hexdigest())
"""


@pytest.mark.skipif(not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"), reason="glibc's tunables")
def test_encode_bytes_do_not_depend_on_what_the_heap_held(tmp_path):
    # x264's macroblock tree read memory it never wrote (frames 224 wide among others), so the same
    # frames gave other bytes in a process whose heap held other things: under load, one video in
    # ten of a build. glibc fills every fresh allocation with a byte of our choosing here.
    def digest(mode: str, fill: int) -> str:
        env = {**os.environ, "GLIBC_TUNABLES": f"glibc.malloc.perturb={fill}"}
        out = tmp_path / f"{mode}_{fill}.mp4"
        result = subprocess.run(
            [sys.executable, "-c", ENCODE_TWICE, mode, str(out)], env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert digest("as_shipped", 1) == digest("as_shipped", 170)
    assert digest("with_mbtree", 1) != digest("with_mbtree", 170)  # the test sees the bug it guards
