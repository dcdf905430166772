"""Video I/O for robot rollouts: probe, sample frames, clip, encode.

Two decoders sit behind one API. decord is the fast path for the codecs it reads (H.264, HEVC,
VP9, ...); PyAV reads everything FFmpeg does, AV1 included, which most LeRobot datasets use and
decord cannot decode. ``backend="auto"`` picks per file; ``"decord"`` or ``"pyav"`` forces one.

Every file is first opened by PyAV, which reads only the container header. That step rejects
missing, empty, non-video and zero-frame files with a `VideoDecodeError` naming the file before
decord ever sees them (decord can crash the process on such inputs, which no ``except`` catches).

Untrusted videos are checked against `VideoLimits` before any frame is decoded: a tiny file can
declare huge frames (a 17 KB H.264 file of 8000x8000 frames costs gigabytes to decode). The header
is read with frame decoding switched off (``skip_frame=all``), so even probing such a file costs no
frame buffers; `sample_frames`, `iter_frames` and `clip` then refuse over-limit input with a
`VideoLimitError` (a `VideoDecodeError`, so every caller that skips or refuses unreadable videos
handles it too), and the PyAV decoders re-check each decoded frame in case the header lied.

Sampling decodes only what it needs: decord seeks by its keyframe index; the PyAV path seeks to
the keyframe before a target when the target lies further ahead than decoding forward would cost,
so keeping 16 frames of a long video never decodes the whole video.

Videos are given as a path, raw bytes of a container, or a ``datasets.Video(decode=False)`` row
(``{"bytes": ..., "path": ...}``).

Example:
    >>> from roboreward import video
    >>> info = video.probe("episode_000000.mp4")  # doctest: +SKIP
    >>> frames = video.sample_frames("episode_000000.mp4", num_frames=16, max_side=448)  # doctest: +SKIP
    >>> frames.shape, frames.dtype  # doctest: +SKIP
    ((16, 448, 336, 3), dtype('uint8'))
"""

from __future__ import annotations

import io
import itertools
import math
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np
from PIL import Image

__all__ = [
    "DECORD_CODECS",
    "DEFAULT_FRAMES_FPS",
    "DEFAULT_LIMITS",
    "X264_OPTIONS",
    "VideoDecodeError",
    "VideoInfo",
    "VideoLimitError",
    "VideoLimits",
    "check_limits",
    "clip",
    "encode",
    "encode_bytes",
    "frames_array",
    "frames_at",
    "is_video_source",
    "iter_frames",
    "probe",
    "sample_frames",
    "sample_frames_with_rate",
    "select_backend",
    "source_bytes",
]

Backend = Literal["auto", "decord", "pyav"]

#: Frames a second assumed for frames given directly without a rate (the reward models' default).
DEFAULT_FRAMES_FPS = 2.0

#: Codecs (FFmpeg decoder names) that decord 0.6 decodes reliably. Anything else goes to PyAV.
DECORD_CODECS = frozenset({"h264", "hevc", "mpeg4", "mpeg2video", "vp8", "vp9", "mjpeg"})

#: Containers whose header states the frame size for the whole stream (a global codec header), the
#: only ones decord reads: a stream container such as MPEG-TS carries the size in the stream and can
#: change it mid-way, which decord would follow into any size (and then scale back without a word);
#: PyAV checks every decoded frame against the header instead.
DECORD_CONTAINERS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi"})

#: FFmpeg's demuxers of single still images: such a file is refused, not scored as a one-frame video.
STILL_IMAGE_FORMATS = ("_pipe", "image2", "apng")


class VideoDecodeError(RuntimeError):
    """A video that cannot be read: missing, empty, corrupt, not a video, or without frames."""

    def __init__(self, source: Any, reason: str):
        self.source = _describe(source)
        self.reason = reason
        super().__init__(f"cannot decode video {self.source}: {reason}")


class VideoLimitError(VideoDecodeError):
    """A video whose header is over a `VideoLimits` bound: refused before any frame is decoded."""


@dataclass(frozen=True)
class VideoLimits:
    """Bounds on what decoding one untrusted video may cost, checked against its header.

    The defaults admit any real robot recording (4K UHD is 8.3 Mpx, a long episode a few minutes)
    and refuse decompression bombs:

    - ``max_pixels``: pixels per frame, 4096 x 4096 = 16,777,216 (16.8 Mpx; one RGB frame 48 MiB).
    - ``max_frames``: frames decoded, 108,000 (one hour at 30 fps).
    - ``max_seconds``: duration decoded, 3,600 s (one hour).
    - ``max_decoded_bytes``: frames x width x height x 3 (every frame of the range as RGB, the
      decoding work), 512 GiB: an hour of 720p or half an hour of 1080p at 30 fps.

    Frames, seconds and bytes count the range decoded (`sample_frames`' ``start``/``end``), so
    one episode of a long LeRobot file that packs many is judged by its own length.
    """

    max_pixels: int = 4096 * 4096
    max_frames: int = 108_000
    max_seconds: float = 3600.0
    max_decoded_bytes: int = 512 * 2**30

    def __post_init__(self) -> None:
        for name in ("max_pixels", "max_frames", "max_seconds", "max_decoded_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"VideoLimits.{name} must be > 0, got {getattr(self, name)}")


#: The limits every decode applies unless given others (``limits=None`` turns them off).
DEFAULT_LIMITS = VideoLimits()


@dataclass(frozen=True)
class VideoInfo:
    """What `probe` reads from a video's header (frames counted from packets when it lacks them)."""

    frames: int
    fps: float
    width: int
    height: int
    duration: float
    codec: str
    container: str = ""  # FFmpeg's demuxer name ("mov,mp4,m4a,3gp,3g2,mj2", "mpegts", ...)
    profile: str = ""  # the codec's profile as FFmpeg names it ("High", "Main", ...); "" when unknown


def _describe(source: Any) -> str:
    if isinstance(source, dict):
        path = source.get("path")
        nbytes = len(source["bytes"]) if source.get("bytes") else None
        return f"'{path}'" if path and nbytes is None else f"'{path or '<bytes>'}' ({nbytes} bytes)"
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    return f"'{os.fspath(source)}'" if isinstance(source, (str, os.PathLike)) else repr(source)


def _resolve(source: Any) -> str | bytes:
    """A path string or the bytes of a container; raises VideoDecodeError for missing or empty input."""
    if isinstance(source, dict):
        if source.get("bytes"):
            return bytes(source["bytes"])
        if source.get("path"):
            return _resolve(source["path"])
        raise VideoDecodeError(source, "the row has neither 'bytes' nor 'path'")
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise VideoDecodeError(source, "no bytes (empty video)")
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise VideoDecodeError(source, "no such file")
        if os.path.isdir(path):
            raise VideoDecodeError(source, "is a directory, not a video file")
        if os.path.getsize(path) == 0:
            raise VideoDecodeError(source, "file is empty (0 bytes)")
        return path
    raise VideoDecodeError(
        source, f"expected a path, bytes or a {{'bytes', 'path'}} row, got {type(source).__name__}"
    )


#: Reading the header decodes no frame: FFmpeg's stream analysis would otherwise decode the first
#: frames (150 MB for one 8000x8000 frame) before any limit could be checked. Decoding later is
#: unaffected (PyAV opens its own decoder with its own options).
_HEADER_OPTIONS = {"skip_frame": "all"}


def _open(data: str | bytes, source: Any) -> av.container.InputContainer:
    try:
        return av.open(
            io.BytesIO(data) if isinstance(data, bytes) else data, mode="r", options=_HEADER_OPTIONS
        )
    except av.error.FFmpegError as exc:
        raise VideoDecodeError(source, f"not a readable video container ({exc.strerror or exc})") from None
    except (OSError, ValueError) as exc:
        raise VideoDecodeError(source, f"not a readable video container ({exc})") from None


def _video_stream(container: av.container.InputContainer, source: Any) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise VideoDecodeError(source, "has no video stream with frames")
    return container.streams.video[0]


def _stream_fps(stream: av.video.stream.VideoStream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and float(rate) > 0:
            return float(rate)
    return 0.0


def _probe_container(container: av.container.InputContainer, source: Any) -> VideoInfo:
    fmt = container.format.name or ""
    if fmt.endswith(STILL_IMAGE_FORMATS):
        kind = fmt.removesuffix("_pipe").upper()
        raise VideoDecodeError(source, f"is a still image ({kind}), not a video: give a video file")
    if fmt in ("h264", "hevc", "rawvideo", "mjpeg"):
        raise VideoDecodeError(
            source,
            f"is a raw {fmt} stream without a container (no timestamps, no header to check): put it in an "
            "mp4 or mkv first (ffmpeg -i IN -c copy OUT.mp4)",
        )
    stream = _video_stream(container, source)
    ctx = stream.codec_context
    fps = _stream_fps(stream)
    frames = int(stream.frames or 0)
    if frames <= 0:
        # Containers such as webm/mkv store no frame count: count packets, which demuxes without decoding.
        try:
            frames = sum(1 for packet in container.demux(stream) if packet.size > 0)
        except av.error.FFmpegError as exc:
            raise VideoDecodeError(source, f"corrupt stream ({exc.strerror or exc})") from None
        try:
            container.seek(0)
        except (av.error.FFmpegError, OSError) as exc:
            raise VideoDecodeError(source, f"cannot be read from its start again ({exc})") from None
    if frames <= 0:
        raise VideoDecodeError(source, "has no frames")
    if fps <= 0:
        raise VideoDecodeError(source, "has no frame rate")
    if not ctx.width or not ctx.height:
        raise VideoDecodeError(source, "has no frame size")
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / av.time_base
    else:
        duration = frames / fps
    return VideoInfo(
        frames=frames,
        fps=fps,
        width=int(ctx.width),
        height=int(ctx.height),
        duration=duration,
        codec=_codec_name(ctx),
        container=fmt,
        profile=str(ctx.profile or ""),
    )


def _codec_name(ctx: Any) -> str:
    codec = ctx.codec
    return getattr(codec, "canonical_name", None) or codec.name  # "av1", not the decoder "libdav1d"


def source_bytes(source: Any) -> bytes:
    """The bytes of a video as given: a file's contents, or the bytes of a ``{"bytes", "path"}`` row
    (its file when it holds none). Raises VideoDecodeError for missing or empty input.

    Args:
        source: a path, bytes or a ``{"bytes", "path"}`` row.
    """
    data = _resolve(source)
    return data if isinstance(data, bytes) else Path(data).read_bytes()


def probe(source: Any) -> VideoInfo:
    """Frames, fps, width, height, duration (s) and codec of a video, read from its header.

    Raises VideoDecodeError naming the file for missing, empty, non-video and zero-frame input.
    """
    data = _resolve(source)
    with _open(data, source) as container:
        return _probe_container(container, source)


def check_limits(
    info: VideoInfo,
    limits: VideoLimits | None = DEFAULT_LIMITS,
    source: Any = None,
    start: float | None = None,
    end: float | None = None,
) -> None:
    """Raise `VideoLimitError` when decoding [start, end) s of a video described by ``info`` would
    exceed ``limits`` (see `VideoLimits`); ``limits=None`` checks nothing.

    >>> info = VideoInfo(frames=3, fps=10.0, width=8000, height=8000, duration=0.3, codec="h264")
    >>> try:
    ...     check_limits(info, source="bomb.mp4")
    ... except VideoLimitError as exc:
    ...     print(exc.reason)
    frames of 8000x8000 (64.0 Mpx) are over the limit of 16.8 Mpx per frame
    """
    if limits is None:
        return
    pixels = info.width * info.height
    if pixels > limits.max_pixels:
        raise VideoLimitError(
            source,
            f"frames of {info.width}x{info.height} ({pixels / 1e6:.1f} Mpx) are over the limit of "
            f"{limits.max_pixels / 1e6:.1f} Mpx per frame",
        )
    lo = max(0.0, start or 0.0)
    hi = info.duration if end is None else min(end, info.duration)
    seconds = max(hi - lo, 0.0)
    frames = info.frames if start is None and end is None else min(info.frames, math.ceil(seconds * info.fps))
    if seconds > limits.max_seconds:
        raise VideoLimitError(
            source, f"{seconds:.1f} s to decode is over the limit of {limits.max_seconds:g} s"
        )
    if frames > limits.max_frames:
        raise VideoLimitError(source, f"{frames} frames to decode are over the limit of {limits.max_frames}")
    decoded = frames * pixels * 3
    if decoded > limits.max_decoded_bytes:
        raise VideoLimitError(
            source,
            f"{frames} frames of {info.width}x{info.height} decode to {decoded / 2**30:.1f} GiB, over the "
            f"limit of {limits.max_decoded_bytes / 2**30:g} GiB",
        )


def _check_frame(frame: av.VideoFrame, limits: VideoLimits | None, source: Any, info: VideoInfo) -> None:
    """Refuse a decoded frame larger than the limits allow, or of another size than the header says
    (a stream whose header lied, or that changes resolution mid-way), before it becomes RGB."""
    if limits is not None and frame.width * frame.height > limits.max_pixels:
        raise VideoLimitError(
            source,
            f"the stream holds frames of {frame.width}x{frame.height}, over the limit of "
            f"{limits.max_pixels / 1e6:.1f} Mpx per frame (its header said {info.width}x{info.height})",
        )
    if (frame.width, frame.height) != (info.width, info.height):
        raise VideoDecodeError(
            source,
            f"the stream changes its frame size from {info.width}x{info.height} (its header) to "
            f"{frame.width}x{frame.height}: a video must keep one size",
        )


def select_backend(source: Any, backend: Backend = "auto", info: VideoInfo | None = None) -> str:
    """The decoder `sample_frames` uses for this video: ``"decord"`` or ``"pyav"``."""
    if backend not in ("auto", "decord", "pyav"):
        raise ValueError(f"backend must be 'auto', 'decord' or 'pyav', got {backend!r}")
    if backend != "auto":
        return backend
    info = info or probe(source)
    if info.codec in DECORD_CODECS and info.container in DECORD_CONTAINERS and _decord() is not None:
        return "decord"
    return "pyav"


def _decord() -> Any:
    try:
        import decord
    except ImportError:  # decord has no wheels for some platforms (macOS arm64): PyAV does it all
        return None
    decord.bridge.set_bridge("native")
    return decord


def frame_indices(
    info: VideoInfo,
    num_frames: int | None = None,
    fps: float | None = None,
    start: float | None = None,
    end: float | None = None,
) -> np.ndarray:
    """Indices of the frames `sample_frames` returns, for a video described by ``info``.

    Frame i is shown at time i / fps; the range [start, end) is in seconds. ``num_frames`` spreads
    exactly that many indices evenly from the first to the last frame of the range (repeating
    frames when the range holds fewer); ``fps`` takes one frame every 1 / fps seconds (at most the
    video's own rate); neither takes every frame of the range.
    """
    if num_frames is not None and fps is not None:
        raise ValueError("give num_frames or fps, not both")
    if start is not None and end is not None and end <= start:
        raise ValueError(f"end ({end}) must be after start ({start})")
    if end is not None and end <= 0:
        raise ValueError(f"end={end}s is at or before the start of the video: the range holds no frame")
    # Clamped before rounding, so an end of 1e308 s (inf frames) is the last frame, not an overflow.
    lo = 0 if start is None else math.ceil(min(max(0.0, start) * info.fps, info.frames) - 1e-6)
    hi = info.frames if end is None else math.ceil(min(end * info.fps, info.frames) - 1e-6)
    if lo >= info.frames:
        raise ValueError(f"start={start}s is at or after the end of the video ({info.duration:.3f}s)")
    hi = max(hi, lo + 1)
    if num_frames is not None:
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        return np.rint(np.linspace(lo, hi - 1, num_frames)).astype(np.int64)
    if fps is not None:
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        step = max(info.fps / fps, 1.0)
        return np.unique(np.minimum(np.rint(np.arange(lo, hi, step)), hi - 1).astype(np.int64))
    return np.arange(lo, hi, dtype=np.int64)


def _target_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    if max_side is None or max(width, height) <= max_side:
        return width, height
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _resize(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (frames.shape[2], frames.shape[1]) == size:
        return frames
    return np.stack([np.asarray(Image.fromarray(f).resize(size, Image.BILINEAR)) for f in frames])


def is_video_source(item: Any) -> bool:
    """Whether ``item`` is a video (a path, bytes or a ``{"bytes", "path"}`` row) rather than frames."""
    return isinstance(item, (str, os.PathLike, bytes, bytearray, memoryview, dict))


def frames_array(frames: Any) -> np.ndarray:
    """Frames given directly (a uint8 array or a list of PIL images / arrays) as one uint8 array (T, H, W, 3).

    Raises TypeError for anything else and ValueError for an empty or wrongly shaped input.
    """
    if isinstance(frames, np.ndarray):
        array = frames
    elif isinstance(frames, (list, tuple)):
        if not frames:
            raise ValueError("frames are empty: give at least one frame")
        array = np.stack([np.asarray(f.convert("RGB") if hasattr(f, "convert") else f) for f in frames])
    else:
        raise TypeError(
            "video must be a path, bytes, a {'bytes', 'path'} row, a uint8 array (T, H, W, 3) or a list "
            f"of frames, got {type(frames).__name__}"
        )
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3 or array.shape[0] == 0:
        raise ValueError(
            f"frames must be uint8 of shape (T, H, W, 3) with T >= 1, got {array.dtype} {array.shape}"
        )
    return array


def sample_frames(
    source: Any,
    num_frames: int | None = None,
    fps: float | None = None,
    start: float | None = None,
    end: float | None = None,
    max_side: int | None = None,
    backend: Backend = "auto",
    limits: VideoLimits | None = DEFAULT_LIMITS,
) -> np.ndarray:
    """Decode the frames picked by `frame_indices` as a uint8 array (T, H, W, 3), RGB.

    ``max_side`` shrinks frames (keeping the aspect ratio) so the longer side is at most that.
    Only the frames needed are decoded. Raises VideoDecodeError naming the file when it cannot
    be read, `VideoLimitError` (before decoding) when its header is over ``limits``, and
    ValueError for arguments that select nothing.
    """
    return _sample(source, num_frames, fps, start, end, max_side, backend, limits)[0]


def _sample(
    source: Any,
    num_frames: int | None,
    fps: float | None,
    start: float | None,
    end: float | None,
    max_side: int | None,
    backend: Backend,
    limits: VideoLimits | None,
) -> tuple[np.ndarray, VideoInfo]:
    """`sample_frames` and the header it read (the container is opened once for both)."""
    data = _resolve(source)
    with _open(data, source) as container:
        info = _probe_container(container, source)
        check_limits(info, limits, source, start, end)
        indices = frame_indices(info, num_frames=num_frames, fps=fps, start=start, end=end)
        frames = _decode(data, container, info, indices, source, backend, limits)
    return _resize(frames, _target_size(info.width, info.height, max_side)), info


def frames_at(
    source: Any,
    indices: Sequence[int] | np.ndarray,
    max_side: int | None = None,
    backend: Backend = "auto",
    limits: VideoLimits | None = DEFAULT_LIMITS,
) -> np.ndarray:
    """Decode the frames at ``indices`` (from `frame_indices`; repeats allowed) in one pass, as a
    uint8 array (len(indices), H, W, 3), RGB: the frames `sample_frames` gives for the same indices.

    A progress curve decodes the union of its prefixes' frames this way, once, instead of once per
    prefix.

    Args:
        source: a path, bytes or a ``{"bytes", "path"}`` row.
        indices: frame numbers, each below the video's frame count.
        max_side, backend, limits: as `sample_frames` (the limits are checked for the whole video).
    """
    wanted = np.asarray(indices, dtype=np.int64)
    if wanted.ndim != 1 or len(wanted) == 0:
        raise ValueError(f"indices must be a non-empty list of frame numbers, got {indices!r}")
    data = _resolve(source)
    with _open(data, source) as container:
        info = _probe_container(container, source)
        if wanted.min() < 0 or wanted.max() >= info.frames:
            raise ValueError(
                f"frame indices must be in 0..{info.frames - 1}, got {wanted.min()}..{wanted.max()}"
            )
        check_limits(info, limits, source, int(wanted.min()) / info.fps, (int(wanted.max()) + 1) / info.fps)
        frames = _decode(data, container, info, wanted, source, backend, limits)
    return _resize(frames, _target_size(info.width, info.height, max_side))


def _decode(
    data: str | bytes,
    container: Any,
    info: VideoInfo,
    indices: np.ndarray,
    source: Any,
    backend: Backend,
    limits: VideoLimits | None,
) -> np.ndarray:
    chosen = select_backend(source, backend, info)
    frames = None
    if chosen == "decord":
        frames = _sample_decord(data, indices, source, forced=backend == "decord")
    if frames is None:
        frames = _sample_pyav(container, indices, info, source, limits)
    return frames


def sample_frames_with_rate(
    source: Any,
    num_frames: int | None = None,
    fps: float | None = None,
    start: float | None = None,
    end: float | None = None,
    max_side: int | None = None,
) -> tuple[np.ndarray, float]:
    """`sample_frames` and the rate of the frames it returned: their count over the range's seconds
    (the video's own rate for a range too short to measure).

    Args:
        source, num_frames, fps, start, end, max_side: as `sample_frames`.
    """
    frames, info = _sample(source, num_frames, fps, start, end, max_side, "auto", DEFAULT_LIMITS)
    span = (info.duration if end is None else min(end, info.duration)) - (start or 0.0)
    return frames, (len(frames) / span if span > 0 else info.fps)


def _sample_decord(data: str | bytes, indices: np.ndarray, source: Any, forced: bool) -> np.ndarray | None:
    decord = _decord()
    if decord is None:
        raise VideoDecodeError(source, "backend='decord' was asked for but decord is not installed")
    try:
        reader = decord.VideoReader(io.BytesIO(data) if isinstance(data, bytes) else data, ctx=decord.cpu(0))
        count = len(reader)
        if count == 0:
            raise RuntimeError("decord found no frames")
        # Header frame counts can exceed what decord indexes by a frame or two (edit lists).
        return reader.get_batch(np.minimum(indices, count - 1).tolist()).asnumpy()
    except Exception as exc:  # decord raises its own DECORDError and bare RuntimeErrors
        if forced:
            raise VideoDecodeError(source, f"decord failed: {str(exc).splitlines()[0][:200]}") from None
        return None  # PyAV reads what decord cannot


def _thread_type(info: VideoInfo) -> str:
    """Frame threads (several frames decoded at once: fast) where the header states the frame size
    for the whole stream; one frame at a time in a stream container, whose frames may be larger than
    its header says, so that only one such frame is decoded before `_check_frame` refuses it."""
    return "AUTO" if info.container in DECORD_CONTAINERS else "SLICE"


def _frame_index(frame: av.VideoFrame, stream: Any, fps: float) -> int | None:
    if frame.pts is None:
        return None
    start = stream.start_time or 0
    return round(float((frame.pts - start) * stream.time_base) * fps)


def _seek(container: Any, stream: Any, seconds: float) -> Iterator[av.VideoFrame]:
    offset = (stream.start_time or 0) + int(seconds / stream.time_base)
    container.seek(max(offset, 0), stream=stream, backward=True, any_frame=False)
    return container.decode(stream)


def _sample_pyav(
    container: Any, indices: np.ndarray, info: VideoInfo, source: Any, limits: VideoLimits | None
) -> np.ndarray:
    stream = container.streams.video[0]
    stream.thread_type = _thread_type(info)
    got: dict[int, np.ndarray] = {}
    # Seeking lands on the keyframe before the target; it pays only when the target is further
    # ahead than the longest keyframe distance seen so far (else decoding forward is cheaper).
    seek_gap: float = max(int(info.fps), 8)
    position = -1  # index of the last decoded frame
    decoder = container.decode(stream)
    pending: list[av.VideoFrame] = []
    last: np.ndarray | None = None
    try:
        for target in sorted(set(indices.tolist())):
            if target - position > seek_gap:
                decoder = _seek(container, stream, target / info.fps)
                first = next(decoder, None)
                landed = None if first is None else _frame_index(first, stream, info.fps)
                if landed is None or landed > target:
                    # No timestamps, or the demuxer overshot: decode forward from the start instead.
                    decoder, pending, position, seek_gap = _seek(container, stream, 0.0), [], -1, math.inf
                else:
                    pending, position = [first], landed - 1
                    seek_gap = max(seek_gap, target - landed)
            for frame in itertools.chain(pending, decoder):
                pending = []
                _check_frame(frame, limits, source, info)
                index = _frame_index(frame, stream, info.fps)
                position = position + 1 if index is None else index
                if position >= target:
                    last = frame.to_ndarray(format="rgb24")
                    got[target] = last
                    break
            else:
                if position < target - 2 or last is None:
                    raise VideoDecodeError(
                        source,
                        f"stream ends at frame {position} but frame {target} of {info.frames} was asked for",
                    )
                got[target] = last  # a header that over-counts by a frame or two
    except av.error.FFmpegError as exc:
        raise VideoDecodeError(source, f"corrupt stream ({exc.strerror or exc})") from None
    return np.stack([got[i] for i in indices.tolist()])


def iter_frames(
    source: Any,
    start: float | None = None,
    end: float | None = None,
    limits: VideoLimits | None = DEFAULT_LIMITS,
) -> Iterator[np.ndarray]:
    """Yield every frame in [start, end) seconds as uint8 (H, W, 3), decoding lazily with PyAV.

    Raises `VideoLimitError` before decoding when the range is over ``limits``.
    """
    data = _resolve(source)
    with _open(data, source) as container:
        info = _probe_container(container, source)
        check_limits(info, limits, source, start, end)
        indices = frame_indices(info, start=start, end=end)
        lo, hi = int(indices[0]), int(indices[-1])
        stream = container.streams.video[0]
        stream.thread_type = _thread_type(info)
        decoder = _seek(container, stream, lo / info.fps) if lo > 0 else container.decode(stream)
        position = -1
        try:
            for frame in decoder:
                _check_frame(frame, limits, source, info)
                index = _frame_index(frame, stream, info.fps)
                position = position + 1 if index is None else index
                if position > hi:
                    return
                if position >= lo:
                    yield frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as exc:
            raise VideoDecodeError(source, f"corrupt stream ({exc.strerror or exc})") from None


#: libx264 settings `encode` fixes whatever the preset. ``mbtree`` is off: x264's macroblock-tree
#: lookahead (libx264 core 165, as PyAV's wheels bundle it) reads memory it never initialised at
#: some frame widths (224 and 240 among them), so the same frames encoded twice gave other bytes
#: whenever the process's heap held something else (about one video in ten of a build at
#: 224x168, more under load). Without it the bytes no longer depend on the heap's contents
#: (``tests/test_video.py`` fills fresh allocations with different bytes and compares). The cost:
#: about 40% more bytes at the same ``crf`` on small robot videos.
X264_OPTIONS = {"mbtree": "0"}


def encode(
    frames: Iterable[np.ndarray],
    out: str | os.PathLike[str],
    fps: float,
    crf: int = 23,
    preset: str = "medium",
) -> Path:
    """Write RGB uint8 frames to an H.264 mp4 (yuv420p, faststart) that plays in browsers.

    Odd widths or heights lose their last column or row (yuv420p needs even sizes). The bytes
    depend only on the frames and settings (`X264_OPTIONS`): x264 runs on one thread (its output,
    and the settings line it stores in the file, otherwise vary with the thread count it picks from
    the machine's cores) and without macroblock-tree rate control (whose lookahead reads memory it
    never wrote, see `X264_OPTIONS`), so a build is byte for byte the same on any machine, under
    any load and with any number of worker processes. The file appears at ``out`` only once
    complete (written to a temporary file, then renamed), so a killed job never leaves a
    half-written video behind.
    """
    if not fps or fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=".mp4", dir=out.parent)
    os.close(fd)
    try:
        _write_mp4(tmp, frames, fps, crf, preset, faststart=True)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def encode_bytes(frames: Iterable[np.ndarray], fps: float, crf: int = 23, preset: str = "medium") -> bytes:
    """The frames as an H.264 mp4 made in memory, no file written (a served request's video part).

    The same stream as `encode` (the same encoder settings, so the same frames decode from it and its
    bytes depend only on the frames and settings); only the container differs: the index (``moov``)
    comes after the frames, as FFmpeg's faststart needs a file to move it. Any reader that has the
    whole file (a server decoding a data URL) reads it the same.

    Args:
        frames, fps, crf, preset: as `encode`.
    """
    if not fps or fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    buffer = io.BytesIO()
    _write_mp4(buffer, frames, fps, crf, preset, faststart=False)
    return buffer.getvalue()


def _write_mp4(
    target: str | io.BytesIO,
    frames: Iterable[np.ndarray],
    fps: float,
    crf: int,
    preset: str,
    faststart: bool,
) -> None:
    """`encode`'s H.264 stream of ``frames`` into ``target`` (a path or a buffer)."""
    count = 0
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(target, mode="w", format="mp4", options=options) as container:
        stream = None
        for frame in frames:
            array = np.asarray(frame)
            if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
                raise ValueError(f"frame {count} must be uint8 (H, W, 3), got {array.dtype} {array.shape}")
            if stream is None:
                height, width = array.shape[0] // 2 * 2, array.shape[1] // 2 * 2
                if width == 0 or height == 0:
                    raise ValueError(
                        f"frames must be at least 2x2 pixels, got {array.shape[1]}x{array.shape[0]}"
                    )
                rate = _as_rate(fps)
                frame_time = Fraction(rate.denominator, rate.numerator)
                stream = container.add_stream(
                    "libx264", rate=rate, options={"crf": str(crf), "preset": preset, **X264_OPTIONS}
                )
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                stream.codec_context.time_base = frame_time
                stream.codec_context.thread_count = 1  # deterministic bytes (see `encode`)
            array = np.ascontiguousarray(array[: stream.height, : stream.width])
            if array.shape[:2] != (stream.height, stream.width):
                raise ValueError(
                    f"frame {count} is {array.shape[1]}x{array.shape[0]}, "
                    f"unlike the first frame ({stream.width}x{stream.height})"
                )
            picture = av.VideoFrame.from_ndarray(array, format="rgb24")
            picture.pts, picture.time_base = count, frame_time  # constant frame rate, from 0
            for packet in stream.encode(picture):
                container.mux(packet)
            count += 1
        if stream is None:
            raise ValueError("no frames to encode")
        for packet in stream.encode():
            container.mux(packet)


def _as_rate(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1001)


def clip(
    source: Any,
    out: str | os.PathLike[str],
    end_fraction: float | None = None,
    end_time: float | None = None,
    start_time: float = 0.0,
    max_side: int | None = None,
    limits: VideoLimits | None = DEFAULT_LIMITS,
) -> Path:
    """Cut a video to [start_time, end) and write it as H.264 mp4 at the source's frame rate.

    Give the end as ``end_fraction`` of the duration (0 < f <= 1) or as ``end_time`` in seconds.
    Used to make temporal clips (partial-progress rollouts) of successful episodes. Raises
    `VideoLimitError` before decoding when the range is over ``limits``.
    """
    if (end_fraction is None) == (end_time is None):
        raise ValueError("give exactly one of end_fraction or end_time")
    info = probe(source)
    if end_fraction is not None:
        if not 0 < end_fraction <= 1:
            raise ValueError(f"end_fraction must be in (0, 1], got {end_fraction}")
        end_time = info.duration * end_fraction
    assert end_time is not None
    if end_time <= start_time:
        raise ValueError(f"end_time ({end_time}) must be after start_time ({start_time})")
    size = _target_size(info.width, info.height, max_side)
    frames = (
        _resize(f[None], size)[0] for f in iter_frames(source, start=start_time, end=end_time, limits=limits)
    )
    return encode(frames, out, fps=info.fps)
