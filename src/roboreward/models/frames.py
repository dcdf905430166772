"""The frames a reward model is shown for an episode, the same for every kind of reward model.

`episode_frames` applies a model's inference settings (`roboreward.models.settings`) to a video, or
cuts frames given directly, and returns the frames with their rate; `RewardPrompter` (local
checkpoints) and `ServedRewardModel` (served pools) both call it, so a model served elsewhere sees the
frames a local copy of it would see. `curve_cuts` decides where a progress curve cuts an episode,
for every implementation of `roboreward.models.RewardScorer.progress_curve`.

Nothing here imports torch at import time (the served client runs without it); the ``qwen_vl_utils``
sampler imports it when used.

    >>> frames = np.zeros((10, 4, 4, 3), np.uint8)
    >>> [len(f) for f in (cut_frames(frames, 2.0, None, 2.5), cut_frames(frames, 2.0, 1.0, None))]
    [5, 8]
    >>> cuts = curve_cuts(frames, points=4, fps=2.0)
    >>> cuts.duration, cuts.times, cuts.ends
    (5.0, [1.25, 2.5, 3.75, 5.0], [1.25, 2.5, 3.75, None])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from roboreward import video
from roboreward.models.settings import InferenceSettings
from roboreward.video import DEFAULT_FRAMES_FPS, frames_array, is_video_source

__all__ = [
    "CurveCuts",
    "curve_cuts",
    "cut_frames",
    "episode_frames",
    "passthrough_video",
    "prefix_frames",
    "processor_frames",
    "qwen_vl_utils_frames",
]


def cut_frames(frames: np.ndarray, rate: float, start: float | None, end: float | None) -> np.ndarray:
    """Frames given directly, cut to ``[start, end)`` seconds at ``rate``: frames ceil(start * rate) to
    ceil(end * rate), at least one.

    Args:
        frames: (T, H, W, 3).
        rate: their frames per second.
        start, end: seconds (None: from the first / to the last frame).
    """
    if start is None and end is None:
        return frames
    first = 0 if start is None else math.ceil(start * rate - 1e-6)
    stop = len(frames) if end is None else math.ceil(end * rate - 1e-6)
    return frames[first : max(first + 1, stop)]


def episode_frames(
    video_or_frames: Any,
    settings: InferenceSettings,
    *,
    fps: float | None = None,
    start: float | None = None,
    end: float | None = None,
    frames_fps: float = DEFAULT_FRAMES_FPS,
) -> tuple[np.ndarray, float]:
    """Frames (T, H, W, 3) and their rate, as a model with ``settings`` is shown the episode.

    From a video (a path, bytes, a ``{"bytes", "path"}`` row): the settings' sampler (``toolkit``:
    ``num_frames`` evenly or one every 1/``fps`` s, longer side at most ``max_side``;
    ``qwen_vl_utils``: Qwen-VL's own count and pixel budget) over ``[start, end)`` as if the episode
    were just that range; the rate is T / duration. Frames given directly (uint8 (T, H, W, 3) or a
    list of images) are cut with `cut_frames` at their rate.

    Args:
        video_or_frames: the episode.
        settings: the model's inference settings.
        fps: the rate of frames given directly (None: ``frames_fps``).
        start, end: seconds: only that range of the episode.
        frames_fps: the rate assumed for frames given directly without ``fps``.

    Raises VideoDecodeError naming the file for a video that cannot be read, ValueError for a rate <= 0.
    """
    if is_video_source(video_or_frames):
        if settings.sampler == "processor":
            return processor_frames(
                video_or_frames, num_frames=settings.num_frames, fps=settings.fps, start=start, end=end
            )
        if settings.sampler == "qwen_vl_utils":
            return qwen_vl_utils_frames(
                video_or_frames,
                fps=settings.fps,
                num_frames=settings.num_frames,
                max_pixels=settings.max_pixels,
                start=start,
                end=end,
            )
        return video.sample_frames_with_rate(
            video_or_frames,
            num_frames=settings.num_frames,
            fps=settings.fps,
            max_side=settings.max_side,
            start=start,
            end=end,
        )
    frames = frames_array(video_or_frames)
    rate = float(frames_fps if fps is None else fps)
    if not rate > 0 or not math.isfinite(rate):
        raise ValueError(f"fps must be a number > 0, got {fps if fps is not None else frames_fps}")
    return cut_frames(frames, rate, start, end), rate


#: Videos a served model is sent as they are (`passthrough_video`): (codec, profiles) in an mp4, the
#: profiles being 8-bit 4:2:0 ones every FFmpeg-based server decodes (vLLM, SGLang read videos with it).
PASSTHROUGH_CODECS = {
    "h264": frozenset({"Baseline", "Constrained Baseline", "Main", "Extended", "High"}),
    "av1": frozenset({"Main"}),
}
PASSTHROUGH_CONTAINER = "mov,mp4,m4a,3gp,3g2,mj2"


def passthrough_video(
    source: Any,
    settings: InferenceSettings,
    *,
    start: float | None = None,
    end: float | None = None,
) -> tuple[bytes, int, float] | None:
    """The video's own file, its frame count and the rate `episode_frames` would give, when sending
    the file as it is shows a server exactly the frames `episode_frames` picks; else None (its frames
    must be decoded, and re-encoded for a video part).

    That is the case only when all of these hold: the ``toolkit`` sampler; no ``start`` or ``end``
    (a cut would need re-encoding: an H.264 cut that starts between key frames cannot be made from
    the file's packets); the settings pick every frame in order (``num_frames`` equal to the frame
    count, or ``fps`` at or above the video's rate, or neither); no resize (``max_side`` at least the
    longer side); an mp4 of H.264 or AV1 in a profile of `PASSTHROUGH_CODECS`; a constant frame rate
    (frame count over duration within 1% of the stated rate). The header is checked against the
    default `roboreward.video.VideoLimits` as decoding would check it.

    Args:
        source: the episode (a path, bytes or a ``{"bytes", "path"}`` row; anything else: None).
        settings: the model's inference settings.
        start, end: seconds: a range of the episode (then None).

    Raises VideoDecodeError naming the file for a video that cannot be read, `VideoLimitError`
    for one over the limits.
    """
    if settings.sampler != "toolkit" or start is not None or end is not None:
        return None
    if not is_video_source(source):
        return None
    info = video.probe(source)
    if info.container != PASSTHROUGH_CONTAINER or info.profile not in PASSTHROUGH_CODECS.get(info.codec, ()):
        return None
    if settings.max_side is not None and max(info.width, info.height) > settings.max_side:
        return None
    if info.duration <= 0 or abs(info.frames / info.duration - info.fps) > 0.01 * info.fps:
        return None
    indices = video.frame_indices(info, num_frames=settings.num_frames, fps=settings.fps)
    if not np.array_equal(indices, np.arange(info.frames)):
        return None
    video.check_limits(info, video.DEFAULT_LIMITS, source, None, None)
    return video.source_bytes(source), info.frames, info.frames / info.duration


def processor_frames(
    source: Any,
    num_frames: int | None = None,
    fps: float | None = None,
    *,
    start: float | None = None,
    end: float | None = None,
) -> tuple[np.ndarray, float]:
    """Frames (T, H, W, 3), full size, and their rate, as a Qwen3-VL video processor picks them.

    HELM's Qwen-VL client hands the video file to ``processor.apply_chat_template`` and lets the
    processor sample it: ``Qwen3VLVideoProcessor.sample_frames`` with its defaults (2 frames a second
    of the video's duration, int(), at least 4, at most 768 and the video's frame count, spread from
    the first frame to the last, rounded). The count and the indices come from that very method
    (transformers); the frames are decoded by `roboreward.video` at the same indices, full size: the
    processor (or the server's) resizes them to its own pixel budget.

    Args:
        source: the video.
        num_frames, fps: the processor's own arguments (None: its defaults, as HELM leaves them).
        start, end: seconds: the video is treated as if it held only that range.
    """
    from transformers import Qwen3VLVideoProcessor
    from transformers.video_utils import VideoMetadata

    info = video.probe(source)
    total = len(video.frame_indices(info, start=start, end=end))
    metadata = VideoMetadata(total_num_frames=total, fps=info.fps)
    picked = Qwen3VLVideoProcessor().sample_frames(metadata, num_frames=num_frames, fps=fps)
    count = len(picked)
    frames = video.sample_frames(source, num_frames=count, start=start, end=end)  # the same rounded linspace
    return frames, count / max(total, 1e-6) * info.fps


def qwen_vl_utils_frames(
    source: Any,
    fps: float | None = 2.0,
    num_frames: int | None = None,
    max_pixels: int | None = None,
    *,
    start: float | None = None,
    end: float | None = None,
) -> tuple[np.ndarray, float]:
    """Frames (T, H, W, 3) and their rate as ``qwen_vl_utils.process_vision_info`` picks them for a video.

    Qwen-VL's policy, through ``qwen_vl_utils``' own functions: ``smart_nframes`` decides the count
    (``fps`` frames a second, at least 4, at most 768, even; or ``num_frames`` rounded to even), the
    frames are spread from the first to the last with the same rounding as its readers, and
    ``smart_resize`` gives the size within its video pixel budget (bicubic, antialiased, as it does).
    The frames themselves are decoded by `roboreward.video` instead of its decord / torchvision
    readers: the same frames, but AV1, bytes and dataset rows work, and every untrusted file is read
    the way the rest of the toolkit reads it. The returned rate is its ``sample_fps``.

    Args:
        source: the video.
        fps, num_frames: Qwen-VL's sampling request (``num_frames`` wins when given).
        max_pixels: a tighter pixel budget per frame than Qwen-VL's own.
        start, end: seconds: the video is treated as if it held only that range (an episode of a
            concatenated LeRobot v3 file, a progress curve's prefix).
    """
    import torch
    from qwen_vl_utils import vision_process as qv
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as tvf

    info = video.probe(source)
    total = len(video.frame_indices(info, start=start, end=end))
    element = {"nframes": num_frames} if num_frames is not None else {"fps": fps or qv.FPS}
    try:
        count = qv.smart_nframes(element, total_frames=total, video_fps=info.fps)
    except ValueError as exc:  # fewer than 2 frames: no video for a Qwen-VL model
        raise video.VideoDecodeError(source, f"too short for Qwen-VL's sampling ({exc})") from None
    frames = video.sample_frames(source, num_frames=count, start=start, end=end)
    factor = 14 * qv.SPATIAL_MERGE_SIZE  # qwen_vl_utils' default image_patch_size, as the cards call it
    min_pixels = qv.VIDEO_MIN_TOKEN_NUM * factor * factor
    total_pixels = qv.MODEL_SEQ_LEN * factor * factor * 0.9
    budget = max(
        min(qv.VIDEO_MAX_TOKEN_NUM * factor * factor, total_pixels / count * qv.FRAME_FACTOR),
        int(min_pixels * 1.05),
    )
    if max_pixels is not None:
        budget = min(budget, max_pixels)
    height, width = qv.smart_resize(
        info.height, info.width, factor=factor, min_pixels=min_pixels, max_pixels=budget
    )
    tensor = torch.from_numpy(frames).permute(0, 3, 1, 2)
    resized = tvf.resize(tensor, [height, width], interpolation=InterpolationMode.BICUBIC, antialias=True)
    out = resized.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out, count / max(total, 1e-6) * info.fps


@dataclass(frozen=True)
class CurveCuts:
    """Where a K-point progress curve cuts an episode.

    Args:
        source: what each prefix is cut from (the video as given, or its frames as an array).
        rate: the rate of frames given directly (None for a video).
        start: the episode's start in the source (seconds; None: its beginning).
        duration: the episode's length (seconds).
        fractions: i/K for i = 1..K (each point's time over the duration for aligned cuts).
        times: each point's time from the episode's start (seconds).
        ends: each prefix's end in the source (seconds); the last is the episode's own end, so the last
            point is exactly the episode `score` sees.
    """

    source: Any
    rate: float | None
    start: float | None
    duration: float
    fractions: list[float]
    times: list[float]
    ends: list[float | None]


#: The most points a progress curve may have (each is a model call).
MAX_CURVE_POINTS = 256


def curve_cuts(
    video_or_frames: Any,
    points: int,
    *,
    fps: float | None = None,
    start: float | None = None,
    end: float | None = None,
    frames_fps: float = DEFAULT_FRAMES_FPS,
    align: float | None = None,
) -> CurveCuts:
    """The K prefixes of an episode ending at 1/K, 2/K, ..., 1 of its length.

    With ``align`` (seconds: one temporal patch at the rate frames are shown, ``temporal_patch_size
    / fps``), every cut is a whole number of such steps from ``start``: i/K of the length rounded
    to the nearest step, at least one step. The last point is the whole episode when its length is
    a whole number of steps, else the longest prefix that is (the tail shorter than one step is
    left out of the curve). So every prefix holds whole temporal patches at exactly the nominal
    rate, and its video tokens are the first tokens of every longer prefix's
    (`roboreward.models.local.RewardModel.progress_curve` computes them once). With K above the
    number of steps, cuts repeat.

    Args:
        video_or_frames: the episode: a video, or frames given directly.
        points: K, 1 to `MAX_CURVE_POINTS`.
        fps: the rate of frames given directly (None: ``frames_fps``).
        start, end: the episode is this range of the video (seconds); the times count from ``start``.
        frames_fps: the rate assumed for frames given directly without ``fps``.
        align: cut on a grid of this many seconds from ``start`` (None: at exactly i/K).

    Raises ValueError for a bad ``points`` or ``align``, or an episode shorter than one ``align``
    step, and VideoDecodeError for a video that cannot be read.
    """
    if isinstance(points, bool) or not isinstance(points, int) or not 1 <= points <= MAX_CURVE_POINTS:
        raise ValueError(f"points must be an integer in 1..{MAX_CURVE_POINTS}, got {points!r}")
    if is_video_source(video_or_frames):
        total = float(video.probe(video_or_frames).duration)
        source, rate = video_or_frames, None
    else:
        source = frames_array(video_or_frames)
        rate = float(frames_fps if fps is None else fps)
        if not rate > 0 or not math.isfinite(rate):
            raise ValueError(f"fps must be a number > 0, got {fps}")
        total = len(source) / rate
    offset = start or 0.0
    duration = (total if end is None else min(end, total)) - offset
    fractions = [i / points for i in range(1, points + 1)]
    if align is not None:
        return _aligned_cuts(source, rate, start, end, offset, duration, fractions, align)
    times = [f * duration for f in fractions]
    ends: list[float | None] = [*(offset + t for t in times[:-1]), end]
    return CurveCuts(source, rate, start, duration, fractions, times, ends)


def _aligned_cuts(
    source: Any,
    rate: float | None,
    start: float | None,
    end: float | None,
    offset: float,
    duration: float,
    fractions: list[float],
    step: float,
) -> CurveCuts:
    """`curve_cuts` on a grid of ``step`` seconds from ``offset`` (see there)."""
    if not step > 0 or not math.isfinite(step):
        raise ValueError(f"align must be a number of seconds > 0, got {step}")
    steps = math.floor(duration / step + 1e-6)
    if steps < 1:
        raise ValueError(f"the episode ({duration:.3f} s) is shorter than one aligned step ({step:.3f} s)")
    whole = abs(duration - steps * step) <= 1e-6
    counts = [min(steps, max(1, round(f * duration / step))) for f in fractions]
    counts[-1] = steps

    def exact(n: int) -> float:  # an end whose distance from offset is n steps to the last bit
        cut = offset + n * step
        for _ in range(8):
            if cut - offset == n * step:
                break
            cut = math.nextafter(cut, math.inf if cut - offset < n * step else -math.inf)
        return cut

    ends: list[float | None] = [end if whole and n == steps else exact(n) for n in counts]
    times = [duration if whole and n == steps else n * step for n in counts]
    return CurveCuts(source, rate, start, duration, [t / duration for t in times], times, ends)


def prefix_frames(cuts: CurveCuts, settings: InferenceSettings) -> list[tuple[np.ndarray, float]] | None:
    """Each prefix's frames and rate, exactly as `episode_frames` gives them for the prefix alone,
    from one decoding pass over the video (the union of the prefixes' frames); None where the
    prefixes are not cut from a video by the ``toolkit`` sampler (frames given directly need no
    decoding; ``qwen_vl_utils`` samples each prefix itself).

    With a rate (``fps``) the prefixes share their first frames, so the pass decodes the frames of
    the whole episode once; with a fixed count each prefix has its own, and the pass decodes their
    union, still once.

    Args:
        cuts: the curve's prefixes (`curve_cuts`).
        settings: the model's inference settings.

    Raises VideoDecodeError naming the file for a video that cannot be read.
    """
    if cuts.rate is not None or settings.sampler != "toolkit":
        return None
    info = video.probe(cuts.source)
    per_prefix = [
        video.frame_indices(info, num_frames=settings.num_frames, fps=settings.fps, start=cuts.start, end=end)
        for end in cuts.ends
    ]
    union = np.unique(np.concatenate(per_prefix))
    decoded = video.frames_at(cuts.source, union, max_side=settings.max_side)
    offset = cuts.start or 0.0
    prefixes = []
    for end, indices in zip(cuts.ends, per_prefix, strict=True):
        frames = decoded[np.searchsorted(union, indices)]
        span = (info.duration if end is None else min(end, info.duration)) - offset
        prefixes.append((frames, len(frames) / span if span > 0 else info.fps))  # as sample_frames_with_rate
    return prefixes
