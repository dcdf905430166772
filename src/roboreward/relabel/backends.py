"""The models behind relabeling, one small interface: ``complete(stage, prompt, frames) -> text``.

Spec strings name a backend (`parse_backend`):

- ``hf:PATH_OR_ID``: a local transformers model, loaded once: an ``AutoModelForImageTextToText`` VLM
  when its config has a vision part (frames go in as a video, the recipe of `roboreward.testing`),
  else an ``AutoModelForCausalLM``. Greedy decoding; bfloat16 on a GPU that supports it.
- ``openai:http://host:port/v1#model-name``: an OpenAI-compatible ``/chat/completions`` endpoint
  (vLLM, TGI, ``transformers serve``). Frames go as JPEG ``image_url`` parts (base64 data URLs);
  temperature 0 (seed 0); a timeout per request; retries with exponential backoff on connection
  errors, timeouts, 429 and 5xx. Several endpoints serving the same model (comma-separated, or a
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

import base64
import contextlib
import importlib
import io
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "DEFAULT_LLM",
    "DEFAULT_VLM",
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

_SPEC_FORMS = "hf:PATH_OR_ID, openai:URL#model-name or scripted:package.module:callable"


class BackendError(RuntimeError):
    """A model that gave no answer. ``retryable``: the endpoint was down or busy, not the request wrong."""

    def __init__(self, message: str, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


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


def _jpeg_data_url(frame: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame)).save(buffer, format="JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _message_text(content: Any) -> str:
    """A chat message's content as text (a string, or a list of parts as some servers send)."""
    if content is None:
        return ""
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


class OpenAIChat:
    """One OpenAI-compatible ``/chat/completions`` endpoint, safe to call from many threads."""

    RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})

    def __init__(
        self,
        url: str,
        model: str,
        timeout: float = 120.0,
        retries: int = 3,
        backoff: float = 1.0,
        api_key: str | None = None,
    ):
        import httpx

        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise ValueError(f"endpoint URL {url!r} is not a URL: {exc}") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"endpoint URL must be http(s)://host[:port]/v1, got {url!r}")
        if not model.strip():
            raise ValueError(f"endpoint {url!r} names no model: write openai:URL#model-name")
        if timeout <= 0 or retries < 0 or backoff < 0:
            raise ValueError(f"timeout must be > 0, retries and backoff >= 0 (endpoint {url!r})")
        self.url = url.rstrip("/")
        self.model = model.strip()
        self.name = self.model
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self._local = threading.local()

    def _client(self) -> Any:
        import httpx

        if getattr(self._local, "client", None) is None:
            self._local.client = httpx.Client(timeout=self.timeout)
        return self._local.client

    def request_body(self, prompt: str, frames: np.ndarray | None, max_new_tokens: int) -> dict[str, Any]:
        """The JSON body: one user turn, the frames as images first, then the prompt text."""
        content: list[dict[str, Any]] = [
            {"type": "image_url", "image_url": {"url": _jpeg_data_url(f)}}
            for f in (frames if frames is not None else [])
        ]
        content.append({"type": "text", "text": prompt})
        return {
            "model": self.model,
            "messages": [{"role": "user", "content": content}],
            "temperature": 0.0,
            "seed": 0,  # for servers that sample even at temperature 0
            "max_tokens": max_new_tokens,
        }

    def _pause(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff * 2**attempt * random.uniform(0.8, 1.2)  # jitter: workers do not retry in step
        if retry_after:
            with contextlib.suppress(ValueError):  # an HTTP date: keep the backoff
                delay = max(delay, min(float(retry_after), 60.0))
        time.sleep(delay)

    def complete(
        self,
        stage: str,
        prompt: str,
        frames: np.ndarray | None = None,
        max_new_tokens: int = 512,
        fps: float | None = None,
    ) -> str:
        import httpx

        body = self.request_body(prompt, frames, max_new_tokens)
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        endpoint = f"{self.url}/chat/completions"
        problem = ""
        for attempt in range(self.retries + 1):
            retry_after = None
            try:
                response = self._client().post(endpoint, json=body, headers=headers)
            except httpx.TimeoutException:
                problem = f"no answer within {self.timeout:g} s"
            except httpx.TransportError as exc:  # connection refused, reset, DNS
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code in self.RETRY_STATUS:
                    problem = f"HTTP {response.status_code}"
                    retry_after = response.headers.get("retry-after")
                elif response.status_code >= 400:
                    raise BackendError(
                        f"{endpoint} answered HTTP {response.status_code}: {response.text[:300]}"
                    )
                else:
                    try:
                        return _message_text(response.json()["choices"][0]["message"].get("content"))
                    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                        raise BackendError(
                            f"{endpoint} answered something that is not a chat completion: "
                            f"{response.text[:300]}"
                        ) from None
            if attempt < self.retries:
                self._pause(attempt, retry_after)
        raise BackendError(f"{endpoint} failed {self.retries + 1} times, last: {problem}", retryable=True)


class PooledBackend:
    """Several endpoints serving the same model: each call goes to the least busy member (ties in
    turn), and to the next one when a member is down (connection errors, timeouts, 429 / 5xx)."""

    def __init__(self, members: Sequence[Any]):
        if not members:
            raise ValueError("a pool needs at least one endpoint")
        names = sorted({m.name for m in members})
        if len(names) > 1:
            raise ValueError(f"pooled endpoints must serve the same model, got {names}")
        self.members = list(members)
        self.name = names[0]
        self.busy = [0] * len(self.members)
        self.served = [0] * len(self.members)
        self._turn = 0
        self._lock = threading.Lock()

    def _take(self, tried: set[int]) -> int:
        with self._lock:
            n = len(self.members)
            free = [i for i in range(n) if i not in tried]
            index = min(free, key=lambda i: (self.busy[i], (i - self._turn) % n))
            self.busy[index] += 1
            self._turn = (index + 1) % n
            return index

    def complete(
        self,
        stage: str,
        prompt: str,
        frames: np.ndarray | None = None,
        max_new_tokens: int = 512,
        fps: float | None = None,
    ) -> str:
        tried: set[int] = set()
        while True:
            index = self._take(tried)
            try:
                answer = self.members[index].complete(stage, prompt, frames, max_new_tokens, fps)
            except BackendError as exc:
                tried.add(index)
                if not exc.retryable or len(tried) == len(self.members):
                    raise
                continue
            finally:
                with self._lock:
                    self.busy[index] -= 1
            with self._lock:
                self.served[index] += 1
            return answer


class TransformersBackend:
    """A local transformers model: a VLM (frames as a video) or a text LM; greedy; one call at a time."""

    def __init__(self, path: str, device: str | None = None, dtype: Any = None):
        import torch
        from transformers import AutoConfig

        from roboreward.scoring import _as_dtype, _inserts_own_vision_markers

        self.name = str(path)
        self.device = (
            torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        )
        kwargs = {"dtype": _as_dtype(dtype, self.device), "device_map": self.device}
        self._lock = threading.Lock()
        config = AutoConfig.from_pretrained(path)
        self.is_vlm = getattr(config, "vision_config", None) is not None
        if self.is_vlm:
            from transformers import AutoModelForImageTextToText, AutoProcessor

            self.processor = AutoProcessor.from_pretrained(path)
            self.tokenizer = self.processor.tokenizer
            self._bare_video_markers = _inserts_own_vision_markers(self.processor)
            self.model = AutoModelForImageTextToText.from_pretrained(path, **kwargs).eval()
        else:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModelForCausalLM.from_pretrained(path, **kwargs).eval()

    def _inputs(self, prompt: str, frames: np.ndarray | None, fps: float | None) -> Any:
        from roboreward.scoring import _BARE_VIDEO, _WRAPPED_VIDEO, _even_frames

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
            text = text.replace(_WRAPPED_VIDEO, _BARE_VIDEO)
        kwargs: dict[str, Any] = {"text": [text], "return_tensors": "pt"}
        if frames is not None:
            even, meta = _even_frames(np.asarray(frames), fps=fps or 2.0)
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
    module_name, colon, attr = target.rpartition(":")
    if not colon or not module_name or not attr:
        raise ValueError(f"a scripted model is scripted:package.module:callable, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r} for model {spec!r}: {exc}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ValueError(f"{module_name} has no callable {attr!r} (model {spec!r})")
    return ScriptedBackend(fn, name=spec)


def check_spec(spec: Any) -> None:
    """Raise ValueError naming ``spec`` when it is not a well-formed model spec (nothing is loaded)."""
    if isinstance(spec, (list, tuple)):
        spec = ",".join(str(s) for s in spec)
    if not isinstance(spec, str):
        if not isinstance(spec, Backend):
            raise ValueError(f"a model is a spec string ({_SPEC_FORMS}) or a backend object, got {spec!r}")
        return
    kind, sep, rest = spec.strip().partition(":")
    if not sep or not rest.strip():
        raise ValueError(f"model spec must be {_SPEC_FORMS}, got {spec!r}")
    if kind == "openai":
        for endpoint in rest.split(","):
            url, hash_, model = endpoint.strip().removeprefix("openai:").partition("#")
            if not hash_ or not model.strip():
                raise ValueError(f"an OpenAI-compatible endpoint is openai:URL#model-name, got {endpoint!r}")
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"endpoint URL must be http(s)://host[:port]/v1, got {url!r} in {spec!r}")
    elif kind == "scripted":
        module_name, colon, attr = rest.strip().rpartition(":")
        if not colon or not module_name or not attr:
            raise ValueError(f"a scripted model is scripted:package.module:callable, got {spec!r}")
    elif kind != "hf":
        raise ValueError(f"unknown model kind {kind!r} in {spec!r}: use {_SPEC_FORMS}")


def parse_backend(spec: Any, timeout: float = 120.0, retries: int = 3, device: str | None = None) -> Backend:
    """A backend from its spec string; a backend object (``name`` + ``complete``) is returned as it is.

    ``timeout`` (seconds per request) and ``retries`` apply to ``openai:`` endpoints, ``device`` to
    ``hf:`` models. Raises ValueError naming the spec when it is malformed.
    """
    if isinstance(spec, (list, tuple)):  # a recipe's list of endpoints
        return parse_backend(",".join(str(s) for s in spec), timeout=timeout, retries=retries, device=device)
    if not isinstance(spec, str):
        if isinstance(spec, Backend):
            return spec
        raise ValueError(f"a model is a spec string ({_SPEC_FORMS}) or a backend object, got {spec!r}")
    kind, sep, rest = spec.strip().partition(":")
    if not sep or not rest.strip():
        raise ValueError(f"model spec must be {_SPEC_FORMS}, got {spec!r}")
    if kind == "hf":
        return TransformersBackend(rest.strip(), device=device)
    if kind == "openai":
        members = []
        for endpoint in rest.split(","):
            endpoint = endpoint.strip().removeprefix("openai:")  # each member may repeat the kind
            url, hash_, model = endpoint.partition("#")
            if not hash_ or not model.strip():
                raise ValueError(f"an OpenAI-compatible endpoint is openai:URL#model-name, got {endpoint!r}")
            members.append(OpenAIChat(url, model, timeout=timeout, retries=retries))
        return members[0] if len(members) == 1 else PooledBackend(members)
    if kind == "scripted":
        return _scripted(rest.strip(), spec)
    raise ValueError(f"unknown model kind {kind!r} in {spec!r}: use {_SPEC_FORMS}")
