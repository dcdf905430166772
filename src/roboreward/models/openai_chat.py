"""An OpenAI-compatible ``/chat/completions`` client (vLLM, SGLang, TGI, ``transformers serve``).

Frames go as JPEG ``image_url`` parts (base64 data URLs) before the prompt text; temperature 0
(seed 0); a timeout per request; retries with exponential backoff and jitter on connection errors,
timeouts, 429 and 5xx (``Retry-After`` honoured up to a minute). ``OPENAI_API_KEY``, when set, is
sent as a bearer token. Used by relabeling's ``openai:`` backends and the bench's served models.

    >>> chat = OpenAIChat("http://127.0.0.1:8000/v1", "Qwen/Qwen2.5-VL-7B-Instruct")
    >>> chat.name
    'Qwen/Qwen2.5-VL-7B-Instruct'
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import random
import threading
import time
from typing import Any

import numpy as np

__all__ = ["BackendError", "OpenAIChat"]


class BackendError(RuntimeError):
    """A model that gave no answer. ``retryable``: the endpoint was down or busy, not the request wrong."""

    def __init__(self, message: str, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


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
