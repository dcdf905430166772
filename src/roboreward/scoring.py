"""RewardModel: score a robot episode with a vision-language reward model in one forward pass.

A reward model here is any Qwen2.5-VL or Qwen3-VL checkpoint (a RoboReward fine-tune, or an
off-the-shelf VLM). `RewardModel.score` builds the rubric prompt of `roboreward.rubric`, prefills
the assistant turn with ``ANSWER: `` and reads the logits of the next token: the softmax over the
five tokens ``1`` .. ``5`` is a distribution over the rubric's scores. Nothing is generated, so
there are no parse failures, and the expected score gives a smooth reward in [0, 1].

For VLMs that were never trained on the answer format, `RewardModel.generate` lets the model
write freely (greedy, from the same prompt without the prefill) and parses the answer with
`roboreward.rubric.parse_answer`.

Videos are decoded by `roboreward.video` (a path, bytes, or a ``datasets.Video(decode=False)``
row) and fed to the processor as already-sampled frames, following the recipe in the
`roboreward.testing` docstring (the one the training collator uses too). Frames can be passed
directly: a uint8 array (T, H, W, 3) or a list of PIL images / arrays.

Example:
    >>> from roboreward.scoring import RewardModel
    >>> model = RewardModel.from_pretrained("path/to/roboreward-qwen2.5-vl")  # doctest: +SKIP
    >>> result = model.score("episode_000000.mp4", "put the red block in the blue bowl")  # doctest: +SKIP
    >>> result.score, result.expected, result.reward  # doctest: +SKIP
    (4, 3.87, 0.7175)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from roboreward import rubric, video

__all__ = ["DEFAULT_FRAMES_FPS", "GenerateResult", "RewardModel", "RewardPrompter", "ScoreResult"]

#: Frame rate assumed for frames passed directly (not decoded from a video), unless told otherwise.
DEFAULT_FRAMES_FPS = 2.0

# The Hub chat template of Qwen3-VL wraps a video in vision markers, and the transformers 5
# Qwen3-VL processor inserts its own per 2-frame group: the wrapped form is made bare (see
# `RewardModel.render_prompt`).
_WRAPPED_VIDEO = "<|vision_start|><|video_pad|><|vision_end|>"
_BARE_VIDEO = "<|video_pad|>"


@dataclass(frozen=True)
class ScoreResult:
    """The reward model's judgement of one episode.

    ``probs[k - 1]`` is the probability of score k (they sum to 1), ``score`` the most likely
    score, ``expected`` the mean score sum(k * p_k) and ``reward`` = (expected - 1) / 4 in [0, 1].
    """

    score: int
    probs: tuple[float, float, float, float, float]
    expected: float
    reward: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"score", "expected", "reward", "probs": [p1, ..., p5]}``."""
        return {
            "score": self.score,
            "expected": self.expected,
            "reward": self.reward,
            "probs": list(self.probs),
        }


@dataclass(frozen=True)
class GenerateResult:
    """A free-text answer and the score `rubric.parse_answer` reads from it (None if it reads none)."""

    text: str
    score: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "score": self.score}


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _default_dtype(device: torch.device) -> torch.dtype:
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def _as_dtype(dtype: torch.dtype | str | None, device: torch.device) -> torch.dtype:
    if dtype is None or dtype == "auto":
        return _default_dtype(device)
    if isinstance(dtype, str):
        aliases = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32"}
        value = getattr(torch, aliases.get(dtype, dtype), None)
        if not isinstance(value, torch.dtype):
            raise ValueError(f"dtype must be a torch dtype such as 'bfloat16' or 'float32', got {dtype!r}")
        return value
    return dtype


def _is_video_source(item: Any) -> bool:
    return isinstance(item, (str, os.PathLike, bytes, bytearray, memoryview, dict))


def _frames_array(frames: Any) -> np.ndarray:
    """Frames given directly, as one uint8 array (T, H, W, 3)."""
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


def _even_frames(frames: np.ndarray, fps: float) -> tuple[np.ndarray, dict[str, Any]]:
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


def _chunks(n: int, size: int) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(start + size, n))


class RewardPrompter:
    """The input side of a reward model: rubric prompt, frame sampling, processor call.

    Everything a model sees before its answer is made here, for scoring (`RewardModel`) and for
    training (`roboreward.training`'s collator) alike, so both see the same tokens and pixels.
    """

    def __init__(
        self,
        processor: Any,
        num_frames: int | None = 16,
        fps: float | None = None,
        max_side: int | None = None,
        frames_fps: float = DEFAULT_FRAMES_FPS,
    ):
        if fps is None and (num_frames is None or num_frames < 1):
            raise ValueError(f"num_frames must be >= 1 (or give fps), got {num_frames}")
        if fps is not None and fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        if frames_fps <= 0:
            raise ValueError(f"frames_fps must be > 0, got {frames_fps}")
        self.processor = processor
        self.tokenizer = processor.tokenizer
        # The answer is read at the last position, so batches are padded on the left.
        self.tokenizer.padding_side = "left"
        self.num_frames = None if fps is not None else num_frames
        self.fps = fps
        self.max_side = max_side
        self.frames_fps = float(frames_fps)
        self._bare_video_markers = _inserts_own_vision_markers(processor)
        self.score_token_ids = self._score_token_ids()

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

    def render_prompt(self, task: str, prefill: bool = True) -> str:
        """The chat-template text for ``task``: the rubric prompt, the generation prompt, ``ANSWER: ``.

        Raises ValueError for an empty task. For Qwen3-VL, a template that wraps the video in
        ``<|vision_start|>..<|vision_end|>`` (the Hub's, written for older processors) is made to
        give a bare ``<|video_pad|>``: the transformers 5 processor adds the markers itself, per
        2-frame group, and would otherwise double them.
        """
        messages = rubric.build_messages(task, None)
        text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if self._bare_video_markers:
            text = text.replace(_WRAPPED_VIDEO, _BARE_VIDEO)
        return text + rubric.ANSWER_PREFIX if prefill else text

    def load_frames(self, video_or_frames: Any, fps: float | None = None) -> tuple[np.ndarray, float]:
        """Frames (T, H, W, 3) and their rate: decoded from a video, or frames given directly.

        From a video, the rate is T / duration (the recipe in `roboreward.testing`); for frames
        given directly it is ``fps``, else the model's ``frames_fps``. Raises VideoDecodeError
        naming the file for a video that cannot be read.
        """
        if _is_video_source(video_or_frames):
            info = video.probe(video_or_frames)
            frames = video.sample_frames(
                video_or_frames, num_frames=self.num_frames, fps=self.fps, max_side=self.max_side
            )
            rate = len(frames) / info.duration if info.duration > 0 else info.fps
            return frames, rate
        frames = _frames_array(video_or_frames)
        rate = self.frames_fps if fps is None else float(fps)
        if rate <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        return frames, rate

    def encode(
        self,
        videos: Sequence[Any],
        tasks: Sequence[str],
        prefill: bool = True,
        fps: float | Sequence[float] | None = None,
        answers: Sequence[str] | None = None,
    ):
        """Processor inputs (a BatchFeature on the CPU, left-padded) for a batch of episodes.

        ``fps`` is the rate of frames given directly: one value, or one per video.
        ``answers`` (training) are appended after each prompt, e.g. ``"4<|im_end|>"`` after the
        prefilled ``ANSWER: ``, so that training and scoring see exactly the same tokens before the
        answer.
        """
        texts = [self.render_prompt(task, prefill=prefill) for task in tasks]  # tasks checked first: cheap
        if answers is not None:
            texts = [text + answer for text, answer in zip(texts, answers, strict=True)]
        rates = list(fps) if isinstance(fps, (list, tuple)) else [fps] * len(videos)
        all_frames, metadata = [], []
        for item, item_fps in zip(videos, rates, strict=True):
            frames, rate = self.load_frames(item, fps=item_fps)
            frames, meta = _even_frames(frames, rate)
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


class RewardModel(RewardPrompter):
    """A Qwen2.5-VL / Qwen3-VL reward model that scores robot episodes on the five-level rubric.

    Build it with `RewardModel.from_pretrained`. ``score`` / ``score_batch`` read the five-score
    distribution from one forward pass; ``generate`` / ``generate_batch`` let the model answer in
    free text (for off-the-shelf VLMs). Built directly from a loaded ``model`` and ``processor``,
    it sets the processor's tokenizer to pad on the left (the answer is read at the last position).

    >>> model = RewardModel.from_pretrained("tiny-qwen2.5-vl", num_frames=8)  # doctest: +SKIP
    >>> model.score("episode.mp4", "open the drawer").to_dict()  # doctest: +SKIP
    {'score': 3, 'expected': 3.02, 'reward': 0.505, 'probs': [0.1, 0.2, 0.4, 0.2, 0.1]}
    """

    def __init__(
        self,
        model: Any,
        processor: Any,
        num_frames: int | None = 16,
        fps: float | None = None,
        max_side: int | None = None,
        frames_fps: float = DEFAULT_FRAMES_FPS,
    ):
        super().__init__(processor, num_frames=num_frames, fps=fps, max_side=max_side, frames_fps=frames_fps)
        self.model = model.eval()

    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str | os.PathLike[str],
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        num_frames: int | None = 16,
        fps: float | None = None,
        max_side: int | None = None,
        max_pixels: int | None = None,
        min_pixels: int | None = None,
        frames_fps: float = DEFAULT_FRAMES_FPS,
        attn_implementation: str | None = None,
        **model_kwargs: Any,
    ) -> RewardModel:
        """Load a Qwen2.5-VL / Qwen3-VL checkpoint (a local folder or a Hub id) as a reward model.

        Args:
            path_or_id: folder or Hub id holding the model and its processor.
            device: default cuda when available, else cpu.
            dtype: default bfloat16 on a GPU that supports it, else float32.
            num_frames: frames sampled evenly over a video (ignored when ``fps`` is given).
            fps: sample videos at this rate instead of a fixed number of frames.
            max_side: shrink decoded frames so their longer side is at most this (before the
                processor's own resizing).
            max_pixels, min_pixels: the video processor's pixel budget (its ``size`` longest /
                shortest edge; per frame for Qwen2.5-VL, for the whole video for Qwen3-VL).
            frames_fps: the rate assumed for frames passed directly instead of a video.
            attn_implementation: e.g. ``"sdpa"`` or ``"flash_attention_2"``.
            model_kwargs: passed on to ``AutoModelForImageTextToText.from_pretrained``.

        Raises ValueError when the tokenizer does not have ``1`` .. ``5`` as single tokens.
        """
        from transformers import AutoModelForImageTextToText, AutoProcessor

        device = torch.device(device) if device is not None else _default_device()
        # Weights load straight onto the device (no full copy in CPU memory first).
        kwargs = {"dtype": _as_dtype(dtype, device), "device_map": device, **model_kwargs}
        if attn_implementation is not None:
            kwargs["attn_implementation"] = attn_implementation
        processor = AutoProcessor.from_pretrained(path_or_id)
        _set_pixel_budget(processor, max_pixels=max_pixels, min_pixels=min_pixels)
        model = AutoModelForImageTextToText.from_pretrained(path_or_id, **kwargs)
        return cls(model, processor, num_frames=num_frames, fps=fps, max_side=max_side, frames_fps=frames_fps)

    @property
    def device(self) -> torch.device:
        return self.model.device

    def prepare(self, videos: Sequence[Any], tasks: Sequence[str], prefill: bool = True, fps: Any = None):
        """Processor inputs (a BatchFeature on the model's device) for a batch of episodes."""
        inputs = self.encode(videos, tasks, prefill=prefill, fps=fps).to(self.device)
        # Only the pixels take the model's dtype: second_per_grid_ts stays exact for the rope positions.
        inputs["pixel_values_videos"] = inputs["pixel_values_videos"].to(self.model.dtype)
        return inputs

    # ------------------------------------------------------------------------------------------
    # Scoring

    def score(self, video: Any, task: str, fps: float | None = None) -> ScoreResult:
        """Score one episode: the distribution over the rubric's five scores, from one forward pass.

        ``video`` is a path, bytes, a ``{"bytes", "path"}`` row, a uint8 array (T, H, W, 3) or a
        list of PIL images / arrays; ``fps`` is the rate of frames given directly.

        Raises ValueError for an empty task and VideoDecodeError for a video that cannot be read.
        """
        return self.score_batch([video], [task], batch_size=1, fps=fps)[0]

    def score_batch(
        self,
        videos: Sequence[Any],
        tasks: Sequence[str] | str,
        batch_size: int = 8,
        fps: float | None = None,
        progress: bool = False,
    ) -> list[ScoreResult]:
        """Score many episodes, ``batch_size`` at a time (left-padded); same results as one by one.

        ``tasks`` is one task per video, or a single string for all of them; ``fps`` (the rate of
        frames given directly) one value or one per video.
        """
        videos, tasks = _paired(videos, tasks)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        rates = list(fps) if isinstance(fps, (list, tuple)) else [fps] * len(videos)
        ids = torch.tensor(self.score_token_ids, device=self.device)
        results: list[ScoreResult] = []
        for chunk in _progress(_chunks(len(videos), batch_size), len(videos), batch_size, progress):
            inputs = self.prepare(
                [videos[i] for i in chunk], [tasks[i] for i in chunk], fps=[rates[i] for i in chunk]
            )
            with torch.inference_mode():
                logits = self.model(**inputs, logits_to_keep=1).logits[:, -1]
                probs = torch.softmax(logits[:, ids].float().cpu().double(), dim=-1).numpy()
            results.extend(_score_result(p) for p in probs)
        return results

    def generate(
        self, video: Any, task: str, max_new_tokens: int = 16, fps: float | None = None
    ) -> GenerateResult:
        """Let the model answer in free text (greedy, no prefill) and parse the score from it.

        For VLMs not trained on the ``ANSWER: <score>`` format; ``score`` is None when the text
        holds no unambiguous 1..5 answer.
        """
        return self.generate_batch([video], [task], max_new_tokens=max_new_tokens, batch_size=1, fps=fps)[0]

    def generate_batch(
        self,
        videos: Sequence[Any],
        tasks: Sequence[str] | str,
        max_new_tokens: int = 16,
        batch_size: int = 8,
        fps: float | None = None,
        progress: bool = False,
    ) -> list[GenerateResult]:
        """`generate` for many episodes, ``batch_size`` at a time."""
        from transformers import GenerationConfig

        videos, tasks = _paired(videos, tasks)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        eos = self.model.generation_config.eos_token_id
        config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=False,  # greedy: deterministic, whatever sampling the checkpoint's config asks for
            num_beams=1,
            eos_token_id=self.tokenizer.eos_token_id if eos is None else eos,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        results: list[GenerateResult] = []
        for chunk in _progress(_chunks(len(videos), batch_size), len(videos), batch_size, progress):
            inputs = self.prepare(
                [videos[i] for i in chunk], [tasks[i] for i in chunk], prefill=False, fps=fps
            )
            with torch.inference_mode():
                out = self.model.generate(**inputs, generation_config=config)
            texts = self.tokenizer.batch_decode(
                out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True
            )
            results.extend(
                GenerateResult(text=t.strip(), score=rubric.parse_answer(t.strip())) for t in texts
            )
        return results


def _score_result(probs: np.ndarray) -> ScoreResult:
    expected = float(np.dot(np.arange(1, 6), probs))
    # Clamped: float rounding can put a certain 5 a hair above 5.
    expected = min(max(expected, rubric.MIN_SCORE), rubric.MAX_SCORE)
    return ScoreResult(
        score=int(np.argmax(probs)) + 1,
        probs=tuple(float(p) for p in probs),  # type: ignore[arg-type]
        expected=expected,
        reward=rubric.score_to_reward(expected),
    )


def _paired(videos: Sequence[Any], tasks: Sequence[str] | str) -> tuple[list[Any], list[str]]:
    videos = list(videos)
    tasks = [tasks] * len(videos) if isinstance(tasks, str) else list(tasks)
    if len(videos) != len(tasks):
        raise ValueError(f"got {len(videos)} videos but {len(tasks)} tasks: give one task per video")
    for i, task in enumerate(tasks):
        try:
            rubric.build_prompt(task)
        except ValueError as exc:
            raise ValueError(f"{exc} (episode {i})") from None
    return videos, tasks


def _progress(chunks: Iterator[range], total: int, batch_size: int, enabled: bool) -> Iterator[range]:
    if not enabled:
        yield from chunks
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, unit="episode", desc="scoring") as bar:
        for chunk in chunks:
            yield chunk
            bar.update(len(chunk))


def _inserts_own_vision_markers(processor: Any) -> bool:
    """True for processors (Qwen3-VL in transformers 5) that wrap each frame group in vision markers."""
    try:
        from transformers import Qwen3VLProcessor
    except ImportError:  # pragma: no cover - transformers without Qwen3-VL
        return False
    return isinstance(processor, Qwen3VLProcessor)


def _set_pixel_budget(processor: Any, max_pixels: int | None, min_pixels: int | None) -> None:
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
