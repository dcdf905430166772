"""The models behind relabeling, one small interface: ``complete(stage, prompt, frames) -> text``.

Spec strings name a backend (`parse_backend`):

- ``hf:PATH_OR_ID``: a local transformers model, loaded once: an ``AutoModelForImageTextToText`` VLM
  when its config has a vision part (frames go in as a video, the recipe of `roboreward.testing.tiny`),
  else an ``AutoModelForCausalLM``. Greedy decoding; bfloat16 on a GPU that supports it.
- ``openai:http://host:port/v1#model-name``: an OpenAI-compatible ``/chat/completions`` endpoint
  (vLLM, SGLang, TGI, ``transformers serve``). Frames go as one ``video_url`` part (an mp4 of them)
  when the server takes one, else as JPEG ``image_url`` parts (``video_input``); temperature 0
  (seed 0); a timeout per request; retries with exponential backoff on connection errors, timeouts,
  429 and 5xx. Several endpoints serving the same model (comma-separated, or a
  list in a recipe) form a pool: each call goes to the least busy one, and to another when one is
  down. ``OPENAI_API_KEY``, when set, is sent as a bearer token.
- ``scripted:package.module:callable``: a Python function ``fn(stage, prompt, frames) -> str``,
  for tests, demos and rule-based relabelers. In the Python API any object with a ``name`` and a
  ``complete`` method (or a `ScriptedBackend` around a function) is a backend too.

    >>> backend = parse_backend("openai:http://127.0.0.1:8000/v1#Qwen/Qwen2.5-VL-7B-Instruct")
    >>> backend.name, backend.url
    ('Qwen/Qwen2.5-VL-7B-Instruct', 'http://127.0.0.1:8000/v1')
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from roboreward.models.endpoints import EndpointPool
from roboreward.models.inputs import (
    BARE_VIDEO,
    WRAPPED_VIDEO,
    as_device,
    as_dtype,
    even_frames,
    inserts_own_vision_markers,
)
from roboreward.models.openai_chat import BackendError, OpenAIChat
from roboreward.models.specs import SPEC_FORMS, parse_model_spec

__all__ = [
    "DEFAULT_LLM",
    "DEFAULT_VLM",
    "JUDGE_KINDS",
    "Backend",
    "BackendError",
    "OpenAIChat",
    "PooledBackend",
    "ScriptedBackend",
    "TransformersBackend",
    "check_spec",
    "parse_backend",
    "published_name",
]

#: The paper's models.
DEFAULT_VLM = "hf:Qwen/Qwen2.5-VL-7B-Instruct"
DEFAULT_LLM = "hf:Qwen/Qwen3-4B-Instruct-2507"

_SPEC_FORMS = SPEC_FORMS["hf"] + ", " + SPEC_FORMS["openai"] + " or " + SPEC_FORMS["scripted"]


@runtime_checkable
class Backend(Protocol):
    #: The model id recorded in cache keys and in each row's provenance.
    name: str

    def complete(
        self,
        stage: str,
        prompt: str,
        frames: np.ndarray | None = None,
        max_new_tokens: int = 512,
        fps: float | None = None,
    ) -> str:
        """The model's answer to ``prompt``; ``frames`` (uint8 (T, H, W, 3), sampled at ``fps``) for a VLM."""
        ...


def published_name(backend: Any) -> str:
    """The model name a row's provenance records: a backend's name, except that a local absolute
    path (``hf:/home/me/models/x``) becomes its last part, since rows go to the Hub and the build
    machine's paths must not.

    >>> published_name(ScriptedBackend(print, name="/home/me/models/qwen-vl/"))
    'qwen-vl'
    >>> published_name(ScriptedBackend(print, name="Qwen/Qwen3-4B-Instruct-2507"))
    'Qwen/Qwen3-4B-Instruct-2507'
    """
    name = str(backend.name)
    if not os.path.isabs(name):
        return name
    return os.path.basename(name.rstrip("/\\")) or name


class ScriptedBackend:
    """A Python callable as a backend: ``fn(stage, prompt, frames) -> str``."""

    def __init__(self, fn: Callable[[str, str, np.ndarray | None], Any], name: str = "scripted"):
        if not callable(fn):
            raise ValueError(f"a scripted model must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.name = name

    def complete(
        self,
        stage: str,
        prompt: str,
        frames: np.ndarray | None = None,
        max_new_tokens: int = 512,
        fps: float | None = None,
    ) -> str:
        return str(self.fn(stage, prompt, frames))


#: The pool of relabeling's ``openai:`` endpoints (its old name).
PooledBackend = EndpointPool


class TransformersBackend:
    """A local transformers model: a VLM (frames as a video) or a text LM; greedy; one call at a time."""

    def __init__(self, path: str, device: str | None = None, dtype: Any = None):
        from transformers import AutoConfig

        self.name = str(path)
        self.device = as_device(device or None)
        kwargs = {"dtype": as_dtype(dtype, self.device), "device_map": self.device}
        self._lock = threading.Lock()
        config = AutoConfig.from_pretrained(path)
        self.is_vlm = getattr(config, "vision_config", None) is not None
        if self.is_vlm:
            from transformers import AutoModelForImageTextToText, AutoProcessor

            self.processor = AutoProcessor.from_pretrained(path)
            self.tokenizer = self.processor.tokenizer
            self._bare_video_markers = inserts_own_vision_markers(self.processor)
            self.model = AutoModelForImageTextToText.from_pretrained(path, **kwargs).eval()
        else:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModelForCausalLM.from_pretrained(path, **kwargs).eval()

    def _inputs(self, prompt: str, frames: np.ndarray | None, fps: float | None) -> Any:
        if not self.is_vlm:
            if frames is not None:
                raise ValueError(f"{self.name} is a text-only model: it cannot be the VLM, which sees frames")
            text = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
            return self.tokenizer([text], return_tensors="pt").to(self.model.device)
        parts = ([{"type": "video"}] if frames is not None else []) + [{"type": "text", "text": prompt}]
        text = self.processor.apply_chat_template(
            [{"role": "user", "content": parts}], tokenize=False, add_generation_prompt=True
        )
        if self._bare_video_markers:  # see RewardPrompter.render_prompt
            text = text.replace(WRAPPED_VIDEO, BARE_VIDEO)
        kwargs: dict[str, Any] = {"text": [text], "return_tensors": "pt"}
        if frames is not None:
            even, meta = even_frames(np.asarray(frames), fps=fps or 2.0)
            kwargs.update(videos=[even], video_metadata=[meta], do_sample_frames=False)
        inputs = self.processor(**kwargs).to(self.model.device)
        if "pixel_values_videos" in inputs:
            inputs["pixel_values_videos"] = inputs["pixel_values_videos"].to(self.model.dtype)
        return inputs

    def complete(
        self,
        stage: str,
        prompt: str,
        frames: np.ndarray | None = None,
        max_new_tokens: int = 512,
        fps: float | None = None,
    ) -> str:
        import torch
        from transformers import GenerationConfig

        eos = self.model.generation_config.eos_token_id
        config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=False,  # greedy, whatever sampling the checkpoint's config asks for
            num_beams=1,
            eos_token_id=self.tokenizer.eos_token_id if eos is None else eos,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        with self._lock, torch.inference_mode():
            inputs = self._inputs(prompt, frames, fps)
            out = self.model.generate(**inputs, generation_config=config)
        return self.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def _scripted(target: str, spec: str) -> ScriptedBackend:
    module_name, _, attr = target.rpartition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r} for model {spec!r}: {exc}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ValueError(f"{module_name} has no callable {attr!r} (model {spec!r})")
    return ScriptedBackend(fn, name=spec)


_RELABEL_KINDS = ("hf", "openai", "scripted")
#: What a clip judge may be besides a backend: a served reward model read from log-probabilities, or
#: a roboreward serve server.
JUDGE_KINDS = (*_RELABEL_KINDS, "openai+logprobs", "serve")


def _joined(spec: Any) -> Any:
    return ",".join(str(s) for s in spec) if isinstance(spec, (list, tuple)) else spec


def check_spec(spec: Any, kinds: tuple[str, ...] = _RELABEL_KINDS) -> None:
    """Raise ValueError naming ``spec`` when it is not a well-formed model spec (nothing is loaded).

    Args:
        spec: a spec string, a recipe's list of endpoints, or a backend object.
        kinds: the spec kinds allowed (`JUDGE_KINDS` for the clip judge).
    """
    spec = _joined(spec)
    if not isinstance(spec, str):
        if not isinstance(spec, Backend):
            raise ValueError(f"a model is a spec string ({_SPEC_FORMS}) or a backend object, got {spec!r}")
        return
    parse_model_spec(spec, kinds=kinds)


def parse_backend(
    spec: Any,
    timeout: float = 120.0,
    retries: int = 3,
    device: str | None = None,
    video_input: str = "auto",
) -> Backend:
    """A backend from its spec string; a backend object (``name`` + ``complete``) is returned as it is.

    Args:
        spec: the spec (see the module docstring), a recipe's list of endpoints, or a backend.
        timeout: seconds per request to an ``openai:`` endpoint.
        retries: retries of a failed request to an ``openai:`` endpoint.
        device: where an ``hf:`` model runs.
        video_input: how frames reach an ``openai:`` endpoint
            (`roboreward.models.openai_chat.VIDEO_INPUTS`).

    Raises ValueError naming the spec when it is malformed.
    """
    spec = _joined(spec)  # a recipe's list of endpoints
    if not isinstance(spec, str):
        if isinstance(spec, Backend):
            return spec
        raise ValueError(f"a model is a spec string ({_SPEC_FORMS}) or a backend object, got {spec!r}")
    parsed = parse_model_spec(spec, kinds=_RELABEL_KINDS)
    if parsed.kind == "hf":
        return TransformersBackend(parsed.target, device=device)
    if parsed.kind == "openai":
        members = [
            OpenAIChat(url, model, timeout=timeout, retries=retries, video_input=video_input)
            for url, model in parsed.endpoints
        ]
        return members[0] if len(members) == 1 else EndpointPool(members)
    return _scripted(parsed.target, spec)
