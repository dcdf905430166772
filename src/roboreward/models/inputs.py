"""The Qwen-VL input recipe of a reward model: prompt, frames, processor call, for scoring and training.

One class, `RewardPrompter`, turns (video, task) into the tokens and pixels a Qwen2.5-VL / Qwen3-VL
reward model reads before its answer. `RewardModel` scores with it and the training collator trains
with it, so a checkpoint sees at scoring time exactly what it saw in training; the relabeling
stages' local VLM uses the same helpers. What it does, in order:

1. The text: the prompt preset's text (`roboreward.rubric`) in a user turn with the video part (before
   the text unless the settings say otherwise), rendered by the processor's chat template with the
   generation prompt, then ``ANSWER: `` prefilled for scoring. The Hub chat template of Qwen3-VL
   wraps a video in ``<|vision_start|>..<|vision_end|>`` while the transformers 5 processor adds
   those markers itself per 2-frame group, so the wrapped form is made bare.
2. The frames: decoded by `roboreward.video` (a path, bytes, a ``datasets.Video(decode=False)`` row;
   or frames given directly), picked by the settings' sampler (``toolkit``: ``num_frames`` evenly or
   one every 1/``fps`` s, longer side at most ``max_side``; ``qwen_vl_utils``: Qwen-VL's own frame
   count and pixel budget), made an even count for the 2-frame temporal patches (the last frame
   repeated, as the processors do) and handed over with their rate, ``do_sample_frames=False``.
3. The processor call, left-padded: the answer is read at the last position.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from roboreward import rubric
from roboreward.models.frames import episode_frames, qwen_vl_utils_frames
from roboreward.models.settings import DEFAULT_SETTINGS, InferenceSettings
from roboreward.models.views import shown_videos
from roboreward.video import DEFAULT_FRAMES_FPS, frames_array

if TYPE_CHECKING:
    import torch

__all__ = [
    "BARE_VIDEO",
    "DEFAULT_FRAMES_FPS",
    "WRAPPED_VIDEO",
    "RewardPrompter",
    "as_device",
    "as_dtype",
    "default_device",
    "even_frames",
    "frames_array",
    "inserts_own_vision_markers",
    "qwen_vl_utils_frames",
    "set_pixel_budget",
]

logger = logging.getLogger("roboreward")

#: How the Hub chat template of Qwen3-VL writes a video, and the bare form its processor expects.
WRAPPED_VIDEO = "<|vision_start|><|video_pad|><|vision_end|>"
BARE_VIDEO = "<|video_pad|>"


def default_device() -> torch.device:
    import torch  # here, not at import: the CLI's --help and the relabel recipes need no torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def as_device(device: torch.device | str | None) -> torch.device:
    """The torch device to load onto (None: `default_device`), checked to exist on this machine.

    Args:
        device: e.g. ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, or None.

    Raises:
        ValueError: one line naming the device: not a device name, or a GPU this machine lacks
            (torch would otherwise fail deep inside the weight loading).

    >>> as_device("cpu").type
    'cpu'
    >>> as_device("tpu")
    Traceback (most recent call last):
    ...
    ValueError: device 'tpu' is not a torch device (e.g. cpu, cuda, cuda:1, mps)
    """
    import torch

    if device is None:
        return default_device()
    try:
        found = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device {device!r} is not a torch device (e.g. cpu, cuda, cuda:1, mps)") from None
    if found.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {device!r}: this machine has no CUDA GPU (use --device cpu)")
        if found.index is not None and found.index >= count:
            raise ValueError(f"device {device!r}: this machine has {count} CUDA GPU(s): cuda:0..{count - 1}")
    if found.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r}: MPS is not available on this machine (use --device cpu)")
    return found


def default_dtype(device: torch.device) -> torch.dtype:
    import torch

    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def as_dtype(dtype: torch.dtype | str | None, device: torch.device) -> torch.dtype:
    import torch

    if dtype is None or dtype == "auto":
        return default_dtype(device)
    if isinstance(dtype, str):
        aliases = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32"}
        value = getattr(torch, aliases.get(dtype, dtype), None)
        if not isinstance(value, torch.dtype):
            raise ValueError(f"dtype must be a torch dtype such as 'bfloat16' or 'float32', got {dtype!r}")
        return value
    return dtype


def even_frames(frames: np.ndarray, fps: float) -> tuple[np.ndarray, dict[str, Any]]:
    """Frames and their processor metadata, with T made even for the 2-frame temporal patches.

    An odd T gets its last frame repeated, which is what the transformers 5.23 Qwen-VL video
    processors do themselves (pixels and Qwen3-VL timestamps alike); doing it here keeps the
    result independent of that detail and keeps ``fps`` the rate of the frames.
    """
    n = len(frames)
    indices = list(range(n))
    if n % 2:
        frames = np.concatenate([frames, frames[-1:]])
        indices.append(n - 1)
    return frames, {"total_num_frames": len(frames), "fps": float(fps), "frames_indices": indices}


def inserts_own_vision_markers(processor: Any) -> bool:
    """True for processors (Qwen3-VL in transformers 5) that wrap each frame group in vision markers."""
    try:
        from transformers import Qwen3VLProcessor
    except ImportError:  # pragma: no cover - transformers without Qwen3-VL
        return False
    return isinstance(processor, Qwen3VLProcessor)


def set_pixel_budget(processor: Any, max_pixels: int | None, min_pixels: int | None) -> None:
    if max_pixels is None and min_pixels is None:
        return
    video_processor = processor.video_processor
    size = video_processor.size
    changes = {}
    if max_pixels is not None:
        changes["longest_edge"] = int(max_pixels)
    if min_pixels is not None:
        changes["shortest_edge"] = int(min_pixels)
    if dataclasses.is_dataclass(size):
        video_processor.size = dataclasses.replace(size, **changes)
    else:
        video_processor.size = {**dict(size), **changes}


class RewardPrompter:
    """The input side of a reward model: prompt preset, frame sampling, processor call.

    Everything a model sees before its answer is made here, for scoring (`RewardModel`) and for
    training (`roboreward.training.trainer`'s collator) alike, so both see the same tokens and pixels.

    Args:
        processor: the model's Qwen2.5-VL / Qwen3-VL processor (its tokenizer is set to pad left).
        num_frames: frames spread evenly over a video (ignored when ``fps`` is given).
        fps: sample videos at this rate instead of a fixed number of frames.
        max_side: shrink decoded frames so their longer side is at most this (``toolkit`` sampler).
        frames_fps: the rate assumed for frames passed directly instead of a video.
        prompt: the prompt preset (`roboreward.rubric.PROMPT_PRESETS`).
        sampler: ``toolkit``, ``qwen_vl_utils`` or ``processor`` (`roboreward.models.settings.SAMPLERS`).
        video_first: the video part before the prompt text.
        settings: all of the above at once (a checkpoint's `InferenceSettings`); when given, the
            other frame and prompt arguments are ignored.
    """

    def __init__(
        self,
        processor: Any,
        num_frames: int | None = 16,
        fps: float | None = None,
        max_side: int | None = None,
        frames_fps: float = DEFAULT_FRAMES_FPS,
        prompt: str = rubric.DEFAULT_PROMPT,
        sampler: str = "toolkit",
        video_first: bool = True,
        settings: InferenceSettings | None = None,
    ):
        if settings is None:
            if fps is None and (num_frames is None or num_frames < 1):
                raise ValueError(f"num_frames must be >= 1 (or give fps), got {num_frames}")
            settings = dataclasses.replace(
                DEFAULT_SETTINGS,
                prompt=prompt,
                prompt_version=None,
                num_frames=None if fps is not None else num_frames,
                fps=fps,
                max_side=max_side,
                sampler=sampler,
                video_first=video_first,
                source="arguments",
            )
        if frames_fps <= 0:
            raise ValueError(f"frames_fps must be > 0, got {frames_fps}")
        self.settings = settings
        self.preset = rubric.get_preset(settings.prompt)
        self.processor = processor
        self.tokenizer = processor.tokenizer
        # The answer is read at the last position, so batches are padded on the left.
        self.tokenizer.padding_side = "left"
        self.num_frames = settings.num_frames
        self.fps = settings.fps
        self.max_side = settings.max_side
        self.frames_fps = float(frames_fps)
        self._bare_video_markers = inserts_own_vision_markers(processor)
        self.score_token_ids = self._score_token_ids()
        self._told_one_camera = False  # the single-camera notice is given once per prompter

    def _score_token_ids(self) -> tuple[int, ...]:
        """Ids of the tokens ``1`` .. ``5`` as they follow ``ANSWER: `` in a tokenized answer."""
        tok = self.tokenizer
        prefix = tok(rubric.ANSWER_PREFIX, add_special_tokens=False).input_ids
        ids = []
        for score in rubric.SCORES:
            alone = tok(str(score), add_special_tokens=False).input_ids
            full = tok(rubric.format_answer(score), add_special_tokens=False).input_ids
            if len(alone) != 1 or full != [*prefix, *alone]:
                raise ValueError(
                    f"the tokenizer of this model does not write score {score} as one token after "
                    f"{rubric.ANSWER_PREFIX!r} (it gives {tok.convert_ids_to_tokens(full)}), so the "
                    "score distribution cannot be read from one next-token prediction; use generate()"
                )
            ids.append(alone[0])
        return tuple(ids)

    # ------------------------------------------------------------------------------------------
    # Inputs

    def views_of(self, item: Any) -> list[Any]:
        """The videos of one episode this model is shown, in the order it takes them.

        A multi-view model (settings naming several ``cameras``) takes a `Views` holding each of its
        cameras, in its settings' order; anything else is a ValueError naming what it takes. Any other
        model takes one video: a plain video as it is; from a `Views`, its own camera (the one named in
        its settings, else the rollout's first camera in the recorded order), saying so once
        (a warning, the first time only): it is never silently fed several.

        Args:
            item: a video, frames, or a `Views`.
        """
        videos, notice = shown_videos(item, self.settings.cameras, getattr(self, "name", "this model"))
        if notice and not self._told_one_camera:
            self._told_one_camera = True
            logger.warning("%s", notice)
        return videos

    def render_prompt(self, task: str, prefill: bool = True) -> str:
        """The chat-template text for ``task``: the preset's prompt, the generation prompt, ``ANSWER: ``.

        For a multi-view model, the one video part is its cameras' videos, each after its label
        (`roboreward.rubric.build_messages` with ``cameras``).

        Raises ValueError for an empty task. For Qwen3-VL, a template that wraps the video in
        ``<|vision_start|>..<|vision_end|>`` (the Hub's, written for older processors) is made to
        give a bare ``<|video_pad|>``: the transformers 5 processor adds the markers itself, per
        2-frame group, and would otherwise double them.
        """
        cameras = self.settings.cameras if self.settings.multi_view else None
        messages = rubric.build_messages(
            task, None, self.preset, video_first=self.settings.video_first, cameras=cameras
        )
        text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if self._bare_video_markers:
            text = text.replace(WRAPPED_VIDEO, BARE_VIDEO)
        return text + rubric.ANSWER_PREFIX if prefill else text

    def load_frames(
        self,
        video_or_frames: Any,
        fps: float | None = None,
        *,
        start: float | None = None,
        end: float | None = None,
    ) -> tuple[np.ndarray, float]:
        """Frames (T, H, W, 3) and their rate, as this model is shown the episode
        (`roboreward.models.frames.episode_frames` with its settings).

        Args:
            video_or_frames: a video, or frames given directly.
            fps: the rate of frames given directly (default the model's ``frames_fps``).
            start, end: seconds: apply the frame policy to that range only.

        Raises VideoDecodeError naming the file for a video that cannot be read.
        """
        return episode_frames(
            video_or_frames, self.settings, fps=fps, start=start, end=end, frames_fps=self.frames_fps
        )

    def encode_parts(self, parts: Sequence[Any]):
        """Processor inputs (a BatchFeature on the CPU) for one user turn of texts and videos in order.

        For prompts with several videos (HELM's A / B / tie preference scenario: two rollouts, each
        with its cameras): a ``str`` part is text, anything else a video (or frames given directly),
        whose frames this model's settings pick (`load_frames`), or a `Views` (`views_of`). No answer
        prefill.

        Args:
            parts: the user turn, in order.
        """
        content, all_frames, metadata = [], [], []
        for part in parts:
            if isinstance(part, str):
                content.append({"type": "text", "text": part})
                continue
            videos = self.views_of(part)
            for index, video in enumerate(videos):
                if len(videos) > 1:  # a multi-view model's cameras, each after its label
                    content.append(
                        {"type": "text", "text": rubric.camera_label(self.settings.cameras[index])}
                    )
                frames, rate = self.load_frames(video)
                frames, meta = even_frames(frames, rate)
                content.append({"type": "video"})
                all_frames.append(frames)
                metadata.append(meta)
        messages = [{"role": "user", "content": content}]
        text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if self._bare_video_markers:
            text = text.replace(WRAPPED_VIDEO, BARE_VIDEO)
        return self.processor(
            text=[text],
            videos=all_frames or None,
            video_metadata=metadata or None,
            do_sample_frames=False,
            return_tensors="pt",
        )

    def encode(
        self,
        videos: Sequence[Any],
        tasks: Sequence[str],
        prefill: bool = True,
        fps: float | Sequence[float] | None = None,
        answers: Sequence[str] | None = None,
        ends: Sequence[float | None] | None = None,
        starts: Sequence[float | None] | None = None,
    ):
        """Processor inputs (a BatchFeature on the CPU, left-padded) for a batch of episodes.

        An episode is a video, frames, or a `Views` of several cameras (`views_of` says which videos
        the model is shown; a multi-view model's are handed to the processor in order, all of one
        episode before the next). ``fps`` is the rate of frames given directly: one value, or one per video.
        ``answers`` (training) are appended after each prompt, e.g. ``"4<|im_end|>"`` after the
        prefilled ``ANSWER: ``, so that training and scoring see exactly the same tokens before the
        answer. ``starts`` / ``ends`` (seconds, one per video; None: from the start / to the end) cut each
        video to a range.
        """
        texts = [self.render_prompt(task, prefill=prefill) for task in tasks]  # tasks checked first: cheap
        if answers is not None:
            texts = [text + answer for text, answer in zip(texts, answers, strict=True)]
        rates = list(fps) if isinstance(fps, (list, tuple)) else [fps] * len(videos)
        all_frames, metadata = [], []
        ends = [None] * len(videos) if ends is None else list(ends)
        starts = [None] * len(videos) if starts is None else list(starts)
        for item, item_fps, start, end in zip(videos, rates, starts, ends, strict=True):
            for view in self.views_of(item):  # a multi-view model's cameras in order, else one video
                frames, rate = self.load_frames(view, fps=item_fps, end=end, start=start)
                frames, meta = even_frames(frames, rate)
                all_frames.append(frames)
                metadata.append(meta)
        inputs = self.processor(
            text=texts,
            videos=all_frames,
            video_metadata=metadata,
            do_sample_frames=False,  # sampled already (Qwen3-VL would re-sample at 2 fps)
            padding=True,
            return_tensors="pt",
        )
        return inputs
