"""The models behind relabeling, one small interface: ``complete(prompt, frames) -> text``.

Spec strings name a backend:

- ``hf:PATH_OR_ID``: a local transformers model; an ``AutoModelForImageTextToText`` VLM when its
  processor takes videos, else an ``AutoModelForCausalLM``. Greedy decoding.
- ``openai:http://host:port/v1#model-name``: an OpenAI-compatible chat endpoint (vLLM, TGI,
  ``transformers serve``); several comma-separated endpoints share the load. Frames go as JPEG
  images; temperature 0; timeouts and retries with exponential backoff on connection errors, 429 and 5xx.
- ``scripted:package.module:callable``: a Python function ``(stage, prompt, frames) -> text``, for
  tests and for programmatic relabelers.
"""

from __future__ import annotations

import base64
import importlib
import io
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

__all__ = [
    "Backend",
    "OpenAIChat",
    "PooledBackend",
    "ScriptedBackend",
    "TransformersBackend",
    "parse_backend",
]

DEFAULT_VLM = "hf:Qwen/Qwen2.5-VL-7B-Instruct"
DEFAULT_LLM = "hf:Qwen/Qwen3-4B-Instruct-2507"


class Backend(Protocol):
    #: The model id recorded in cache keys and in each row's provenance.
    name: str

    def complete(
        self, stage: str, prompt: str, frames: np.ndarray | None = None, max_new_tokens: int = 512
    ) -> str:
        """The model's answer to ``prompt`` (with ``frames``, uint8 (T, H, W, 3), for a VLM)."""
        ...


class ScriptedBackend:
    """A Python callable as a backend: ``fn(stage, prompt, frames) -> str``."""

    def __init__(self, fn: Callable[[str, str, np.ndarray | None], str], name: str = "scripted"):
        self.fn = fn
        self.name = name

    def complete(
        self, stage: str, prompt: str, frames: np.ndarray | None = None, max_new_tokens: int = 512
    ) -> str:
        return str(self.fn(stage, prompt, frames))


def _jpeg_data_url(frame: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


class OpenAIChat:
    """One OpenAI-compatible ``/chat/completions`` endpoint."""

    RETRY_STATUS = (429, 500, 502, 503, 504)

    def __init__(self, url: str, model: str, timeout: float = 120.0, retries: int = 3, backoff: float = 0.5):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"endpoint URL must start with http:// or https://, got {url!r}")
        self.url = url.rstrip("/")
        self.model = model
        self.name = model
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._local = threading.local()

    def _client(self) -> Any:
        import httpx

        if getattr(self._local, "client", None) is None:
            self._local.client = httpx.Client(timeout=self.timeout)
        return self._local.client

    def complete(
        self, stage: str, prompt: str, frames: np.ndarray | None = None, max_new_tokens: int = 512
    ) -> str:
        import httpx

        content: list[dict[str, Any]] = [
            {"type": "image_url", "image_url": {"url": _jpeg_data_url(f)}}
            for f in (frames if frames is not None else [])
        ]
        content.append({"type": "text", "text": prompt})
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": content}],
            "temperature": 0.0,
            "max_tokens": max_new_tokens,
        }
        for attempt in range(self.retries + 1):
            try:
                response = self._client().post(f"{self.url}/chat/completions", json=body)
                if response.status_code in self.RETRY_STATUS and attempt < self.retries:
                    time.sleep(self.backoff * 2**attempt)
                    continue
                response.raise_for_status()
                return str(response.json()["choices"][0]["message"]["content"] or "")
            except httpx.TransportError:  # connection refused, reset, timeouts
                if attempt >= self.retries:
                    raise
                time.sleep(self.backoff * 2**attempt)
        raise RuntimeError("unreachable")  # pragma: no cover


class PooledBackend:
    """Several endpoints serving the same model, used round-robin from many threads."""

    def __init__(self, members: Sequence[Any]):
        if not members:
            raise ValueError("a pool needs at least one endpoint")
        self.members = list(members)
        self.name = members[0].name
        self._next = itertools.cycle(range(len(self.members)))
        self._lock = threading.Lock()

    def complete(
        self, stage: str, prompt: str, frames: np.ndarray | None = None, max_new_tokens: int = 512
    ) -> str:
        with self._lock:
            member = self.members[next(self._next)]
        return member.complete(stage, prompt, frames, max_new_tokens)


class TransformersBackend:
    """A local transformers model: a video VLM or a text LM, greedy, one call at a time."""

    def __init__(self, path: str, device: str | None = None):
        import torch
        from transformers import AutoConfig

        self.name = path
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._lock = threading.Lock()
        config = AutoConfig.from_pretrained(path)
        self.is_vlm = hasattr(config, "vision_config")
        if self.is_vlm:
            from transformers import AutoModelForImageTextToText, AutoProcessor

            self.processor = AutoProcessor.from_pretrained(path)
            self.tokenizer = self.processor.tokenizer
            self.model = AutoModelForImageTextToText.from_pretrained(path, device_map=self.device).eval()
        else:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModelForCausalLM.from_pretrained(path, device_map=self.device).eval()

    def complete(
        self, stage: str, prompt: str, frames: np.ndarray | None = None, max_new_tokens: int = 512
    ) -> str:
        import torch

        from roboreward.scoring import _even_frames

        with self._lock, torch.inference_mode():
            if self.is_vlm:
                parts = ([{"type": "video"}] if frames is not None else []) + [
                    {"type": "text", "text": prompt}
                ]
                text = self.processor.apply_chat_template(
                    [{"role": "user", "content": parts}], tokenize=False, add_generation_prompt=True
                )
                kwargs: dict[str, Any] = {"text": [text], "return_tensors": "pt"}
                if frames is not None:
                    even, meta = _even_frames(np.asarray(frames), fps=2.0)
                    kwargs.update(videos=[even], video_metadata=[meta], do_sample_frames=False)
                inputs = self.processor(**kwargs).to(self.model.device)
            else:
                text = self.tokenizer.apply_chat_template(
                    [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
                )
                inputs = self.tokenizer([text], return_tensors="pt").to(self.model.device)
            out = self.model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                num_beams=1,
                pad_token_id=self.tokenizer.pad_token_id,
            )
            return self.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def parse_backend(spec: Any) -> Backend:
    """A backend from its spec string (or a backend object, returned as it is)."""
    if not isinstance(spec, str):
        if hasattr(spec, "complete") and hasattr(spec, "name"):
            return spec
        raise ValueError(f"a model is a spec string or a backend object, got {type(spec).__name__}")
    kind, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise ValueError(
            f"model spec must be hf:PATH, openai:URL#model or scripted:module:callable, got {spec!r}"
        )
    if kind == "hf":
        return TransformersBackend(rest)
    if kind == "openai":
        members = []
        for endpoint in rest.split(","):
            url, hash_, model = endpoint.strip().partition("#")
            if not hash_ or not model:
                raise ValueError(f"an OpenAI-compatible endpoint is openai:URL#model-name, got {endpoint!r}")
            members.append(OpenAIChat(url, model))
        return members[0] if len(members) == 1 else PooledBackend(members)
    if kind == "scripted":
        module, colon, attr = rest.rpartition(":")
        if not colon:
            raise ValueError(f"a scripted model is scripted:package.module:callable, got {spec!r}")
        fn = getattr(importlib.import_module(module), attr)
        return ScriptedBackend(fn, name=spec)
    raise ValueError(f"unknown model kind {kind!r} in {spec!r}: use hf:, openai: or scripted:")
