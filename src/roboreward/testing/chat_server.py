"""A scripted OpenAI-compatible chat server, speaking vLLM's request and response shapes, for tests.

`ScriptedChatServer` listens on 127.0.0.1 (a free port) in a thread and answers
``POST /v1/chat/completions`` the way vLLM's OpenAI server does: a ``chat.completion`` with
``choices[0].message`` and, when asked (``logprobs: true``, ``top_logprobs: N``), ``choices[0].logprobs
.content[0].top_logprobs`` as ``[{"token", "logprob", "bytes"}]``. It checks what vLLM checks (a
``model``, ``messages``, parts of type ``text`` / ``image_url`` / ``video_url``, not both
``continue_final_message`` and ``add_generation_prompt``) and answers a bad request with vLLM's
error body (HTTP 400, ``{"object": "error", "message", "type": "BadRequestError", "code": 400}``).

It can also act as a server without a feature: ``video="refuse"`` refuses ``video_url`` parts (HTTP
400, as vLLM for a model without video input), ``video="fail"`` fails on them (HTTP 500, as
``transformers serve`` without a video decoder for their audio track),
``logprobs="reject"`` refuses the log-probability fields (as ``transformers serve`` does) and
``logprobs="ignore"`` answers without them (as servers that drop unknown fields do). Each request
waits ``latency`` seconds first (a GPU's time), so concurrency can be measured without one.

What the model says comes from ``answer(request) -> Reply``: text and, for log-probability
requests, ``{token: logprob}``. Every request is recorded (`ScriptedChatServer.requests`, and its
body as the bytes that came, `ScriptedChatServer.raw_requests`).

    >>> with ScriptedChatServer(lambda request: Reply("ANSWER: 4", {"4": -0.1, "3": -2.4})) as server:
    ...     server.url.startswith("http://127.0.0.1:")
    True
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Reply", "ScriptedChatServer", "prompt_text"]

_PART_TYPES = ("text", "image_url", "video_url")


@dataclass(frozen=True)
class Reply:
    """What the scripted model answers: ``text``, and the first token's ``{token: logprob}``."""

    text: str
    top_logprobs: dict[str, float] = field(default_factory=dict)


def prompt_text(request: dict[str, Any]) -> str:
    """The text parts of a request's user turn, joined.

    Args:
        request: the JSON body of a chat request.
    """
    content = request["messages"][0]["content"]
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if p.get("type") == "text")


class _Refused(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class ScriptedChatServer:
    """A vLLM-shaped ``/v1/chat/completions`` on 127.0.0.1; a context manager that starts and stops it."""

    def __init__(
        self,
        answer: Callable[[dict[str, Any]], Reply],
        video: str = "take",
        logprobs: str = "give",
        latency: float = 0.0,
        model: str | None = None,
    ):
        """Args:
        answer: the scripted model: the request's JSON body -> `Reply`.
        video: ``take``, ``refuse`` (HTTP 400) or ``fail`` (HTTP 500) ``video_url`` parts.
        logprobs: ``give`` (vLLM), ``reject`` (HTTP 422 for the log-probability fields, as
            ``transformers serve``) or ``ignore`` (answered without them).
        latency: seconds each request waits before it is answered.
        model: the only model name served (None: any name).
        """
        if video not in ("take", "refuse", "fail"):
            raise ValueError(f"video must be take, refuse or fail, got {video!r}")
        if logprobs not in ("give", "reject", "ignore"):
            raise ValueError(f"logprobs must be give, reject or ignore, got {logprobs!r}")
        self.answer = answer
        self.video = video
        self.logprobs = logprobs
        self.latency = latency
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.raw_requests: list[bytes] = []  # every POST body as it came, bytes for bytes
        self.refused: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/v1``."""
        if self._server is None:
            raise RuntimeError("the server is not started: use it as a context manager")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> ScriptedChatServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with owner._lock:
                    owner.raw_requests.append(raw)
                try:
                    body = json.loads(raw)
                    if self.path.rstrip("/") != "/v1/chat/completions":
                        raise _Refused(f"no route {self.path}", 404)
                    payload, status = owner._complete(body), 200
                except _Refused as exc:
                    with owner._lock:
                        owner.refused.append(str(exc))
                    payload = {
                        "object": "error",
                        "message": str(exc),
                        "type": "BadRequestError",
                        "code": exc.status,
                    }
                    status = exc.status
                except ValueError as exc:
                    payload, status = {"object": "error", "message": f"bad JSON: {exc}", "code": 400}, 400
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _check(self, body: dict[str, Any]) -> None:
        if not isinstance(body.get("model"), str) or (self.model and body["model"] != self.model):
            raise _Refused(f"The model `{body.get('model')}` does not exist.", 404)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _Refused("messages: field required")
        for message in messages:
            content = message.get("content")
            for part in content if isinstance(content, list) else []:
                if part.get("type") not in _PART_TYPES:
                    raise _Refused(f"Unknown part type: {part.get('type')}")
                if part["type"] == "video_url" and self.video == "refuse":
                    raise _Refused("video_url: this model does not support video input")
                if part["type"] == "video_url" and self.video == "fail":
                    raise _Refused("Internal Server Error", 500)
        if body.get("continue_final_message") and body.get("add_generation_prompt", True):
            raise _Refused("Cannot set both `continue_final_message` and `add_generation_prompt` to True.")
        if body.get("continue_final_message") and messages[-1].get("role") != "assistant":
            raise _Refused("continue_final_message needs a final assistant message")
        asks = {k for k in ("logprobs", "top_logprobs") if body.get(k) is not None}
        if asks and self.logprobs == "reject":
            raise _Refused(f"Unsupported fields in the request: {sorted(asks)}", 422)
        if body.get("top_logprobs") is not None and not body.get("logprobs"):
            raise _Refused("when using `top_logprobs`, `logprobs` must be set to true")

    def _complete(self, body: dict[str, Any]) -> dict[str, Any]:
        self._check(body)
        with self._lock:
            self.requests.append(body)
        if self.latency:
            time.sleep(self.latency)
        reply = self.answer(body)
        logprobs = None
        if body.get("logprobs") and self.logprobs == "give":
            n = int(body.get("top_logprobs") or 0)
            ranked = sorted(reply.top_logprobs.items(), key=lambda item: -item[1])
            first = ranked[0] if ranked else (reply.text[:1], 0.0)
            logprobs = {
                "content": [
                    {
                        "token": first[0],
                        "logprob": first[1],
                        "bytes": list(first[0].encode()),
                        "top_logprobs": [
                            {"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in ranked[:n]
                        ],
                    }
                ]
            }
        text = reply.text
        if body.get("max_tokens") == 1 and logprobs is not None:
            text = logprobs["content"][0]["token"]
        return {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "logprobs": logprobs,
                    "finish_reason": "length" if body.get("max_tokens") == 1 else "stop",
                }
            ],
            "usage": {"prompt_tokens": 0, "completion_tokens": 1, "total_tokens": 1},
        }
