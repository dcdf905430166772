"""RewardModel: score a robot episode with a vision-language reward model in one forward pass.

A reward model here is any Qwen2.5-VL or Qwen3-VL checkpoint (a RoboReward fine-tune, or an
off-the-shelf VLM). `RewardModel.score` builds the rubric prompt of `roboreward.rubric`, prefills
the assistant turn with ``ANSWER: `` and reads the logits of the next token: the softmax over the
five tokens ``1`` .. ``5`` is a distribution over the rubric's scores. Nothing is generated, so
there are no parse failures, and the expected score gives a smooth reward in [0, 1].

For VLMs that were never trained on the answer format, `RewardModel.generate` lets the model
write freely (greedy, from the same prompt without the prefill) and parses the answer with
`roboreward.rubric.parse_answer`.

The model's inputs are made by `roboreward.models.inputs.RewardPrompter` (the training collator
uses it too), with the checkpoint's own inference settings (`roboreward.models.settings`): prompt
preset, frames, resolution. Videos are a path, bytes, or a ``datasets.Video(decode=False)`` row;
frames can be passed directly: a uint8 array (T, H, W, 3) or a list of PIL images / arrays.

Example:
    >>> from roboreward.models.local import RewardModel
    >>> model = RewardModel.from_pretrained("path/to/roboreward-qwen2.5-vl")  # doctest: +SKIP
    >>> result = model.score("episode_000000.mp4", "put the red block in the blue bowl")  # doctest: +SKIP
    >>> result.score, result.expected, result.reward  # doctest: +SKIP
    (4, 3.87, 0.7175)
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from roboreward import locate, rubric
from roboreward.models.frames import curve_cuts, cut_frames, prefix_frames
from roboreward.models.inputs import (
    DEFAULT_FRAMES_FPS,
    RewardPrompter,
    as_device,
    as_dtype,
    set_pixel_budget,
)
from roboreward.models.results import CurvePoint, ProgressCurve, ScoreResult, score_result
from roboreward.models.settings import InferenceSettings, resolve_settings
from roboreward.models.views import Views
from roboreward.video import is_video_source

__all__ = [
    "DEFAULT_FRAMES_FPS",
    "CurvePoint",
    "GenerateResult",
    "ProgressCurve",
    "RewardModel",
    "RewardPrompter",
    "ScoreResult",
]


@dataclass(frozen=True)
class GenerateResult:
    """A free-text answer and the score `rubric.parse_answer` reads from it (None if it reads none)."""

    text: str
    score: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "score": self.score}


def _chunks(n: int, size: int) -> Iterator[range]:
    for start in range(0, n, size):
        yield range(start, min(start + size, n))


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
        self, model: Any, processor: Any, *, name: str | None = None, batch_size: int = 8, **prompter: Any
    ):
        """Args:
        model: a loaded Qwen2.5-VL / Qwen3-VL ``...ForConditionalGeneration``.
        processor: its processor.
        name: the model's name in results (default: the name the model was loaded from).
        batch_size: episodes per forward pass in `score_batch` and `progress_curve`.
        prompter: `RewardPrompter`'s arguments (``settings``, or ``num_frames``, ``fps``,
            ``max_side``, ``frames_fps``, ``prompt``, ...).
        """
        super().__init__(processor, **prompter)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        self.model = model.eval()
        self.batch_size = batch_size
        self.name = name or _display_name(getattr(model, "name_or_path", "") or type(model).__name__)

    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str | os.PathLike[str],
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        num_frames: int | None = None,
        fps: float | None = None,
        max_side: int | None = None,
        max_pixels: int | None = None,
        min_pixels: int | None = None,
        frames_fps: float = DEFAULT_FRAMES_FPS,
        attn_implementation: str | None = None,
        prompt: str | None = None,
        settings: InferenceSettings | None = None,
        batch_size: int = 8,
        cameras: Sequence[str] | None = None,
        **model_kwargs: Any,
    ) -> RewardModel:
        """Load a Qwen2.5-VL / Qwen3-VL checkpoint (a local folder or a Hub id) as a reward model.

        The prompt, frames and resolution come from the checkpoint's own inference settings
        (`roboreward.models.settings`: its ``roboreward_settings.json``, the published settings of a
        known release such as ``teetone/RoboReward-4B``, else the toolkit's defaults with a notice),
        so it is scored as it was trained. An argument given here overrides its setting, with a
        warning naming both values.

        Args:
            path_or_id: folder or Hub id holding the model and its processor.
            device: default cuda when available, else cpu.
            dtype: default bfloat16 on a GPU that supports it, else float32.
            num_frames: frames sampled evenly over a video (replaces the settings' ``fps``).
            fps: sample videos at this rate instead of a fixed number of frames.
            max_side: shrink decoded frames so their longer side is at most this (before the
                processor's own resizing).
            max_pixels, min_pixels: the video processor's pixel budget (its ``size`` longest /
                shortest edge; per frame for Qwen2.5-VL, for the whole video for Qwen3-VL).
            frames_fps: the rate assumed for frames passed directly instead of a video.
            attn_implementation: e.g. ``"sdpa"`` or ``"flash_attention_2"``.
            prompt: the prompt preset (`roboreward.rubric.PROMPT_PRESETS`), e.g. ``"release"``.
            settings: use these settings instead of looking the checkpoint's up (overrides still apply).
            batch_size: episodes per forward pass in `score_batch` and `progress_curve`.
            cameras: the cameras it is shown in one prompt, in order (overrides its settings'
                ``cameras``; several: each episode is a `roboreward.models.views.Views`).
            model_kwargs: passed on to ``AutoModelForImageTextToText.from_pretrained``.

        Raises ValueError for an unknown prompt preset, and when the tokenizer does not have
        ``1`` .. ``5`` as single tokens; FileNotFoundError ("no such folder") for a path that is not a
        folder and `roboreward.locate.UnreachableHubError` for a Hub id the Hub does not answer for
        (`roboreward.locate.resolve`).
        """
        from transformers import AutoModelForImageTextToText, AutoProcessor

        if prompt is not None:
            rubric.get_preset(prompt)  # an unknown name fails before anything loads
        device = as_device(device)  # a missing GPU is one line here, not a traceback from the loader
        # Weights load straight onto the device (no full copy in CPU memory first).
        kwargs = {"dtype": as_dtype(dtype, device), "device_map": device, **model_kwargs}
        if attn_implementation is not None:
            kwargs["attn_implementation"] = attn_implementation
        path_or_id = locate.resolve(path_or_id, "model")  # a folder, or a Hub id that answers
        processor = AutoProcessor.from_pretrained(path_or_id)
        # After the processor: a Hub model is reachable (or cached), so its settings file can be fetched.
        resolved = resolve_settings(
            path_or_id,
            base=settings,
            download=True,
            prompt=prompt,
            num_frames=num_frames,
            fps=fps,
            max_side=max_side,
            cameras=tuple(cameras) if cameras else None,
        )
        set_pixel_budget(processor, max_pixels=max_pixels, min_pixels=min_pixels)
        model = AutoModelForImageTextToText.from_pretrained(path_or_id, **kwargs)
        return cls(
            model,
            processor,
            name=_display_name(str(path_or_id)),
            batch_size=batch_size,
            frames_fps=frames_fps,
            settings=resolved,
        )

    @property
    def device(self) -> torch.device:
        return self.model.device

    def prepare(
        self,
        videos: Sequence[Any],
        tasks: Sequence[str],
        prefill: bool = True,
        fps: Any = None,
        ends: Sequence[float | None] | None = None,
        starts: Sequence[float | None] | None = None,
    ):
        """Processor inputs (a BatchFeature on the model's device) for a batch of episodes.

        ``starts`` / ``ends`` (seconds, one per video) cut each video to that range.
        """
        inputs = self.encode(videos, tasks, prefill=prefill, fps=fps, ends=ends, starts=starts)
        inputs = inputs.to(self.device)
        # Only the pixels take the model's dtype: second_per_grid_ts stays exact for the rope positions.
        inputs["pixel_values_videos"] = inputs["pixel_values_videos"].to(self.model.dtype)
        return inputs

    # ------------------------------------------------------------------------------------------
    # Scoring

    def score(
        self,
        video: Any,
        task: str,
        *,
        fps: float | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> ScoreResult:
        """Score one episode: the distribution over the rubric's five scores, from one forward pass.

        Args:
            video: a path, bytes, a ``{"bytes", "path"}`` row, a uint8 array (T, H, W, 3) or a list of
                PIL images / arrays.
            task: the instruction the episode is judged against.
            fps: the rate of frames given directly (default the model's ``frames_fps``).
            start, end: seconds: score only that range of the video (an episode of a LeRobot v3 file).

        Raises ValueError for an empty task and VideoDecodeError for a video that cannot be read.
        """
        return self.score_batch([video], [task], fps=fps, starts=[start], ends=[end], batch_size=1)[0]

    def score_batch(
        self,
        videos: Sequence[Any],
        tasks: Sequence[str] | str,
        *,
        fps: float | Sequence[float | None] | None = None,
        starts: Sequence[float | None] | None = None,
        ends: Sequence[float | None] | None = None,
        progress: bool = False,
        batch_size: int | None = None,
    ) -> list[ScoreResult]:
        """Score many episodes, ``batch_size`` at a time (left-padded); same results as one by one.

        Args:
            videos: the episodes (see `score`).
            tasks: one task per video, or a single string for all of them.
            fps: the rate of frames given directly: one value or one per video.
            starts, ends: seconds, one per video (None: the whole video).
            progress: show a progress bar.
            batch_size: episodes per forward pass (default the model's ``batch_size``).
        """
        videos, tasks = _paired(videos, tasks)
        batch_size = self.batch_size if batch_size is None else batch_size
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        rates = list(fps) if isinstance(fps, (list, tuple)) else [fps] * len(videos)
        starts = [None] * len(videos) if starts is None else list(starts)
        ends = [None] * len(videos) if ends is None else list(ends)
        if not len(rates) == len(starts) == len(ends) == len(videos):
            raise ValueError(
                f"got {len(videos)} videos but {len(rates)} rates, {len(starts)} starts and {len(ends)} ends"
            )
        results: list[ScoreResult] = []
        for chunk in _progress(_chunks(len(videos), batch_size), len(videos), batch_size, progress):
            probs = self._forward_probs(
                [videos[i] for i in chunk],
                [tasks[i] for i in chunk],
                [rates[i] for i in chunk],
                [ends[i] for i in chunk],
                [starts[i] for i in chunk],
            )
            results.extend(score_result(p) for p in probs)
        return results

    def _forward_probs(
        self,
        videos: Sequence[Any],
        tasks: Sequence[str],
        rates: Sequence[float | None],
        ends: Sequence[float | None] | None = None,
        starts: Sequence[float | None] | None = None,
    ) -> np.ndarray:
        """The five-score distributions (n, 5) of one batch, from one forward pass."""
        ids = torch.tensor(self.score_token_ids, device=self.device)
        inputs = self.prepare(videos, tasks, fps=list(rates), ends=ends, starts=starts)
        with torch.inference_mode():
            logits = self.model(**inputs, logits_to_keep=1).logits[:, -1]
            return torch.softmax(logits[:, ids].float().cpu().double(), dim=-1).numpy()

    def progress_curve(
        self,
        video: Any,
        task: str,
        *,
        points: int = 8,
        fps: float | None = None,
        start: float | None = None,
        end: float | None = None,
        batch_size: int | None = None,
        align: bool = False,
        share: bool = True,
    ) -> ProgressCurve:
        """Score the prefixes of an episode ending at evenly spaced times: the reward over time.

        Point i of K scores the episode cut at i/K of its length (the last point is the whole
        episode, so it equals `score`), with the model's own frame policy applied to each prefix as
        if the episode had stopped there (`roboreward.models.frames.curve_cuts`). A video is decoded
        once for all prefixes (`roboreward.models.frames.prefix_frames`).

        Prefixes that share their first video tokens (frames sampled at a rate, or frames given
        directly) are scored from one cached prefill: the vision tower and the language model run
        once over the longest prefix's prompt up to the end of its video, and each prefix then runs
        only its own remaining tokens (its last temporal patch where an odd frame count repeats its
        last frame, the task text and the answer prefill) at the positions `score` gives it alone,
        from the cache cropped to what it shares. A prefix shares where its tokens, 3-D rope
        positions and pixel patches are the longest prefix's; the others (every prefix of a
        fixed-count policy, whose frames differ; a prefix whose rate frames / seconds is not the
        nominal one, as Qwen2.5-VL's positions and Qwen3-VL's timestamps scale with it; a Qwen3-VL
        prefix resized
        otherwise by its per-video pixel budget; the ``qwen_vl_utils`` and ``processor`` samplers)
        go through the model ``batch_size`` at a time, as before. ``align=True`` cuts on the
        temporal-patch grid so that every prefix shares.

        Args:
            video: a path, bytes, a ``{"bytes", "path"}`` row, or frames (T, H, W, 3) / a list of them.
            task: the instruction the episode is judged against.
            points: K, the number of prefixes (1..256).
            fps: the rate of frames given directly (default: the model's ``frames_fps``).
            start, end: the episode is this range of the video, in seconds (a LeRobot v3 file);
                the points' times count from ``start``.
            batch_size: prefixes per forward pass where prefixes are batched (default the model's
                ``batch_size``).
            align: cut at whole temporal patches (``temporal_patch_size / fps`` seconds) from
                ``start``, each i/K rounded to the nearest step, the last point the longest
                whole-step prefix (`roboreward.models.frames.curve_cuts`): every prefix at exactly
                the nominal rate, all from one prefill. Needs rate-based sampling (ValueError else).
            share: False: batch every prefix (no cached prefill), for comparison.

        Returns:
            A `ProgressCurve`: per point its time (s), fraction, five probabilities, expected score
            and reward.

        Raises ValueError for a bad ``points``, an empty task, or ``align`` without rate-based
        sampling or on an episode shorter than one step, VideoDecodeError for a video that cannot be
        read.

        >>> curve = model.progress_curve("episode.mp4", "open the drawer", points=4)  # doctest: +SKIP
        >>> [round(p.expected, 2) for p in curve.points]  # doctest: +SKIP
        [1.2, 2.1, 3.4, 4.8]
        """
        _paired([video], [task])
        batch_size = self.batch_size if batch_size is None else batch_size
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if isinstance(video, Views) or self.settings.multi_view:
            shown = self.views_of(video)  # a one-camera model: its own camera, said once
            if len(shown) > 1:
                raise ValueError(
                    f"{self.name} takes the cameras {list(self.settings.cameras)}: progress curves of "
                    "several cameras are not made (score_batch scores them)"
                )
            video = shown[0]
        cuts = curve_cuts(
            video,
            points,
            fps=fps,
            start=start,
            end=end,
            frames_fps=self.frames_fps,
            align=self._align_step(video, fps) if align else None,
        )
        decoded = prefix_frames(cuts, self.settings)  # one decoding pass for every prefix
        if decoded is None and cuts.rate is not None:  # frames given directly: every prefix at their rate
            decoded = [(cut_frames(cuts.source, cuts.rate, cuts.start, end), cuts.rate) for end in cuts.ends]
        distinct = list(dict.fromkeys(cuts.ends))  # aligned cuts of a short episode can repeat
        found = {}
        if decoded is not None and share:
            firsts = [cuts.ends.index(e) for e in distinct]
            shared = self._shared_prefix_probs([decoded[i] for i in firsts], task)
            found = {distinct[j]: p for j, p in shared.items()}
        rest = [e for e in distinct if e not in found]
        for chunk in _chunks(len(rest), batch_size):
            ends_ = [rest[i] for i in chunk]
            if decoded is None:  # a sampler that samples each prefix itself
                batch = ([cuts.source] * len(chunk), [None] * len(chunk), ends_, [start] * len(chunk))
            else:
                picked = [decoded[cuts.ends.index(e)] for e in ends_]
                batch = (
                    [f for f, _ in picked],
                    [r for _, r in picked],
                    [None] * len(chunk),
                    [None] * len(chunk),
                )
            sources, rates, ends, starts = batch
            found.update(
                zip(
                    ends_, self._forward_probs(sources, [task] * len(chunk), rates, ends, starts), strict=True
                )
            )
        probs = [found[e] for e in cuts.ends]
        return ProgressCurve(
            task=task,
            duration=cuts.duration,
            points=tuple(
                CurvePoint(time=t, fraction=f, result=score_result(p))
                for t, f, p in zip(cuts.times, cuts.fractions, probs, strict=True)
            ),
        )

    def _align_step(self, video: Any, fps: float | None) -> float:
        """Seconds of one temporal patch at the rate this model is shown ``video`` (its sampling rate
        for a video, the frames' rate for frames given directly). ValueError where frames are not
        sampled at a rate (a fixed count per prefix has no grid to align to)."""
        patch = int(getattr(self.processor.video_processor, "temporal_patch_size", 2) or 2)
        if not is_video_source(video):
            return patch / float(self.frames_fps if fps is None else fps)
        if self.settings.fps is None or self.settings.sampler != "toolkit":
            raise ValueError(
                f"align needs frames sampled at a rate (the toolkit sampler with fps); {self.name} samples "
                f"{self.settings.num_frames} frames per prefix with the {self.settings.sampler} sampler"
            )
        return patch / float(self.settings.fps)

    def _shared_prefix_probs(
        self, prefixes: Sequence[tuple[np.ndarray, float]], task: str
    ) -> dict[int, np.ndarray]:
        """Score prefixes that share their first video tokens from one cached prefill; {index: probs}.

        Each prefix is first encoded as `score` would encode it alone (the processor's tokens, pixel
        patches and grid, and the 3-D rope positions the model computes for it). The base is the
        longest prefix; the vision tower and the language model run once over its prompt up to the
        end of its video tokens, keeping the keys and values (a ``DynamicCache``). Prefix i shares
        the first L_i tokens with the base where its tokens and positions are the base's and every
        temporal patch of video in them has the base's pixels (the vision tower attends within a
        temporal patch, and attention is causal, so those keys and values are what a standalone
        pass computes). Prefix i is then scored by cropping the cache to L_i and running only its
        own remaining tokens (at most its last temporal patch, whose pixels may differ where an odd
        frame count repeats the last frame, then the task text and the answer prefill) at its own
        positions. Prefixes sharing less than that are not in the result (the caller batches them).

        Args:
            prefixes: (frames, rate) of each prefix, as `roboreward.models.frames.prefix_frames` gives.
            task: the instruction.
        """
        from transformers import DynamicCache

        inner = getattr(self.model, "model", None)
        config = getattr(self.model, "config", None)
        if (
            len(prefixes) < 2
            or getattr(config, "model_type", None) not in ("qwen2_5_vl", "qwen3_vl")
            or not hasattr(inner, "get_rope_index")
        ):
            return {}
        video_token = config.video_token_id
        merge = config.vision_config.spatial_merge_size
        encoded = []
        for frames, rate in prefixes:
            inputs = self.prepare([frames], [task], fps=[rate])
            keys = ("video_grid_thw", "second_per_grid_ts", "attention_mask", "mm_token_type_ids")
            positions, _ = inner.get_rope_index(
                inputs["input_ids"], **{k: inputs[k] for k in keys if k in inputs}
            )
            encoded.append((inputs, positions))
        base = max(range(len(prefixes)), key=lambda i: (encoded[i][0]["input_ids"].shape[1], i))
        base_inputs, base_positions = encoded[base]
        base_ids = base_inputs["input_ids"][0]
        base_pixels = base_inputs["pixel_values_videos"]
        base_end = (
            int(torch.nonzero(base_ids == video_token)[-1]) + 1
        )  # the prefill: up to its last video token
        plans = {}
        for i, (inputs, positions) in enumerate(encoded):
            ids = inputs["input_ids"][0]
            t, h, w = (int(x) for x in inputs["video_grid_thw"][0])
            n = min(len(ids), base_end)
            same = (ids[:n] == base_ids[:n]) & (positions[:, 0, :n] == base_positions[:, 0, :n]).all(0)
            n = int(same.long().cumprod(0).sum())  # tokens and positions equal up to here
            if tuple(int(x) for x in base_inputs["video_grid_thw"][0][1:]) != (h, w):
                continue  # another frame size (Qwen3-VL's budget is per video): nothing shared
            pads = torch.nonzero(ids == video_token)[:, 0]
            tokens, rows = h * w // merge**2, h * w  # per temporal patch: LLM tokens, pixel patches
            pixels = inputs["pixel_values_videos"]
            shared = 0
            while (
                shared < t
                and int(pads[(shared + 1) * tokens - 1]) < n
                and torch.equal(
                    pixels[shared * rows : (shared + 1) * rows],
                    base_pixels[shared * rows : (shared + 1) * rows],
                )
            ):
                shared += 1
            if shared < t - 1:
                continue  # sharing less than all but the last temporal patch: batched instead
            cut = n if shared == t else min(n, int(pads[shared * tokens]))
            plans[i] = (cut, shared, t, h, w)
        if len(plans) < 2:
            return {}
        ids_score = torch.tensor(self.score_token_ids, device=self.device)
        cache = DynamicCache(config=config)
        probs: dict[int, np.ndarray] = {}
        with torch.inference_mode():
            self.model(
                input_ids=base_ids[None, :base_end],
                position_ids=base_positions[..., :base_end],
                pixel_values_videos=base_pixels,
                video_grid_thw=base_inputs["video_grid_thw"],
                cache=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            for i in sorted(
                plans, key=lambda j: -plans[j][0]
            ):  # longest shared part first: crop only shrinks
                cut, shared, t, h, w = plans[i]
                inputs, positions = encoded[i]
                cache.crop(cut - cache.get_seq_length())
                extra = {}
                if shared < t:  # its last temporal patch is its own: the vision tower runs on it
                    extra = {
                        "pixel_values_videos": inputs["pixel_values_videos"][shared * h * w :],
                        "video_grid_thw": torch.tensor([[t - shared, h, w]], device=self.device),
                    }
                logits = self.model(
                    input_ids=inputs["input_ids"][:, cut:],
                    position_ids=positions[..., cut:],
                    cache=cache,
                    use_cache=True,
                    logits_to_keep=1,
                    **extra,
                ).logits[:, -1]
                probs[i] = torch.softmax(logits[:, ids_score].float().cpu().double(), dim=-1).numpy()[0]
        return probs

    def generate(
        self, video: Any, task: str, max_new_tokens: int = 16, fps: float | None = None
    ) -> GenerateResult:
        """Let the model answer in free text (greedy, no prefill) and parse the score from it.

        For VLMs not trained on the ``ANSWER: <score>`` format; ``score`` is None when the text
        holds no unambiguous 1..5 answer.
        """
        return self.generate_batch([video], [task], max_new_tokens=max_new_tokens, batch_size=1, fps=fps)[0]

    def _greedy(self, max_new_tokens: int) -> Any:
        """Greedy decoding of at most ``max_new_tokens``: deterministic, whatever sampling the
        checkpoint's generation config asks for."""
        from transformers import GenerationConfig

        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        eos = self.model.generation_config.eos_token_id
        return GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            eos_token_id=self.tokenizer.eos_token_id if eos is None else eos,
            pad_token_id=self.tokenizer.pad_token_id,
        )

    def generate_parts(self, parts: Sequence[Any], max_new_tokens: int = 1024) -> str:
        """The model's free-text answer (greedy) to one user turn of texts and videos in order.

        For prompts with several videos, such as HELM's A / B / tie preference scenario
        (`roboreward.rubric.preference_parts`); each video's frames are picked by the model's settings.

        Args:
            parts: ``str`` parts are text, anything else a video or frames (`encode_parts`).
            max_new_tokens: the longest answer.
        """
        config = self._greedy(max_new_tokens)
        inputs = self.encode_parts(parts).to(self.device)
        if "pixel_values_videos" in inputs:
            inputs["pixel_values_videos"] = inputs["pixel_values_videos"].to(self.model.dtype)
        with torch.inference_mode():
            out = self.model.generate(**inputs, generation_config=config)
        return self.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()

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
        videos, tasks = _paired(videos, tasks)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        config = self._greedy(max_new_tokens)
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


def _display_name(path_or_id: str) -> str:
    """A model's name in results: a local folder's name (never a path of this machine), else the Hub id."""
    return os.path.basename(os.path.normpath(path_or_id)) if os.path.isdir(path_or_id) else path_or_id


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
