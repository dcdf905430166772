"""An OpenAI-compatible ``/chat/completions`` client (vLLM, SGLang, TGI, ``transformers serve``).

Each request is one user turn: the frames, then the prompt text (or the text first, ``video_first``
False). The frames go as one ``video_url`` part (an H.264 mp4 data URL of exactly these frames, at
their rate: vLLM's and SGLang's video input) when the endpoint takes one, else as JPEG
``image_url`` parts; ``video_input="auto"`` finds out on the first request (`VIDEO_INPUTS`).

`OpenAIChat.complete` asks for free text. `OpenAIChat.top_logprobs` prefills the assistant's turn
(vLLM's and SGLang's ``continue_final_message``) and asks for the top log-probabilities of the next
token; a server that rejects such a request, or answers without log-probabilities, is marked as
text-only on the first call (a notice says so) and asked in free text from then on.

Temperature 0 (seed 0); a timeout per request; retries with exponential backoff and jitter on
connection errors, timeouts, 429 and 5xx (``Retry-After`` honoured up to a minute). ``OPENAI_API_KEY``,
when set, is sent as a bearer token. Used by relabeling's ``openai:`` backends, the bench's served
models and `roboreward.models.served.ServedRewardModel`.

    >>> chat = OpenAIChat("http://127.0.0.1:8000/v1", "Qwen/Qwen2.5-VL-7B-Instruct")
    >>> chat.name, chat.video_input
    ('Qwen/Qwen2.5-VL-7B-Instruct', 'auto')
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import math
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from roboreward.environ import openai_api_key

__all__ = [
    "PROBE_REFUSED",
    "REJECTED_STATUS",
    "VIDEO_INPUTS",
    "BackendError",
    "ChatAnswer",
    "EncodedVideo",
    "LabelledVideos",
    "OpenAIChat",
    "video_data_url",
]

logger = logging.getLogger("roboreward")

#: How frames reach the server: ``video`` (one ``video_url`` part), ``frames`` (``image_url`` parts),
#: or ``auto`` (a video part, and frames from then on if the endpoint rejects it).
VIDEO_INPUTS = ("auto", "video", "frames")

#: Answers that mean "this server does not take that request" (a field or part it does not know).
REJECTED_STATUS = frozenset({400, 415, 422, 501})
#: The same, for the request that finds out what a server takes: ``transformers serve`` answers a
#: video part it cannot decode with HTTP 500, so there a 500 is not retried but taken as a refusal
#: when the same request without the feature is then answered.
PROBE_REFUSED = REJECTED_STATUS | {500}

#: Log-probabilities asked for the scored token (the OpenAI API's maximum; vLLM's default cap).
TOP_LOGPROBS = 20

#: The largest response body read (a chat completion of a few tokens is a few KB; a server streaming
#: without end is cut here instead of filling memory).
MAX_RESPONSE_BYTES = 8 * 2**20

#: How long an endpoint that failed after its retries is not asked again: calls in that time fail at
#: once with its error, so a dead server is reported after one request's retries, however many
#: requests were waiting for it.
DOWN_FOR_S = 60.0


class BackendError(RuntimeError):
    """A model that gave no answer. ``retryable``: the endpoint was down or busy, not the request
    wrong; ``status``: the HTTP status of a refused request (None for a transport failure)."""

    def __init__(self, message: str, retryable: bool = False, status: int | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.status = status


@dataclass(frozen=True)
class ChatAnswer:
    """One completion: its text, the top log-probabilities of its first token (None when not asked
    for or not given), and how the frames went (``video``, ``frames`` or ``none``)."""

    text: str
    top_logprobs: dict[str, float] | None
    video_input: str


def _jpeg_data_url(frame: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame)).save(buffer, format="JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


@dataclass(frozen=True)
class EncodedVideo:
    """A video file sent as it is, where decoding and re-encoding its frames would show the server
    the same frames (see `roboreward.models.frames.passthrough_video` for when that is).

    Args:
        data: the file's bytes (an mp4 the server decodes).
        count: its frame count.
    """

    data: bytes
    count: int

    def __len__(self) -> int:  # frames (`_has_frames`)
        return self.count

    def data_url(self) -> str:
        """The file as a ``data:video/mp4;base64,...`` URL, byte for byte."""
        return "data:video/mp4;base64," + base64.b64encode(self.data).decode()

    def frames(self) -> np.ndarray:
        """Every frame, decoded (uint8 (T, H, W, 3)): for an endpoint that takes images only."""
        from roboreward import video

        return video.sample_frames(self.data)


def video_data_url(frames: np.ndarray, fps: float) -> str:
    """The frames as an H.264 mp4 ``data:video/mp4;base64,...`` URL, at ``fps`` frames a second.

    Made in memory (`roboreward.video.encode_bytes`: `roboreward.video.encode`'s stream, crf 18,
    without a temporary file). The encoder releases the interpreter lock while it works, so the
    request threads of a pool encode side by side.

    Args:
        frames: uint8 (T, H, W, 3) RGB frames (an odd width or height loses its last column or row).
        fps: their rate.
    """
    from roboreward import video

    data = video.encode_bytes(np.asarray(frames), fps=fps, crf=18, preset="veryfast")
    return "data:video/mp4;base64," + base64.b64encode(data).decode()


_SSL: list[Any] = []  # the process's one SSL context, made on first use
_SSL_LOCK = threading.Lock()


def _ssl_context() -> Any:
    """httpx's default SSL context (its CA certificates, ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` honoured),
    made once per process and shared by every client (an `ssl.SSLContext` is safe across threads)."""
    with _SSL_LOCK:
        if not _SSL:
            import httpx

            _SSL.append(httpx.create_ssl_context())
        return _SSL[0]


class _ResponseTooLarge(Exception):
    pass


class _ResponseTooSlow(Exception):
    pass


def _first_choice(endpoint: str, content: bytes, text: str) -> dict[str, Any]:
    """The first choice of a chat completion body, checked; `BackendError` for anything else."""
    try:
        choice = json.loads(content)["choices"][0]
        if not isinstance(choice, dict) or not isinstance(choice["message"], dict):
            raise TypeError
        return choice
    except (ValueError, KeyError, IndexError, TypeError, RecursionError):
        raise BackendError(
            f"{endpoint} answered something that is not a chat completion: {text[:300]!r}"
        ) from None


@dataclass(frozen=True)
class LabelledVideos:
    """Several videos of one user turn, each after its label: a multi-view model's cameras
    (``("Left camera:", frames, fps)``, ...), sent where one video's frames would go.

    Args:
        videos: ``(label, frames, fps)`` per video, in order: uint8 (T, H, W, 3) frames at ``fps``.
    """

    videos: tuple[tuple[str, np.ndarray, float], ...]

    def __len__(self) -> int:  # frames in all (`_has_frames`)
        return sum(len(frames) for _, frames, _ in self.videos)


def _has_frames(frames: np.ndarray | LabelledVideos | None) -> bool:
    return frames is not None and len(frames) > 0


def _message_text(content: Any) -> str:
    """A chat message's content as text (a string, or a list of parts as some servers send)."""
    if content is None:
        return ""
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def _top_logprobs(choice: dict[str, Any]) -> dict[str, float] | None:
    """``{token: logprob}`` of the first generated token, from OpenAI's (and vLLM's) ``logprobs`` shape;
    None when the answer holds none in that shape (anything else there is ignored, never a crash).

    >>> _top_logprobs({"logprobs": {"content": [{"token": "4", "logprob": -0.1,
    ...     "top_logprobs": [{"token": "4", "logprob": -0.1}, {"token": "3", "logprob": -2.5}]}]}})
    {'4': -0.1, '3': -2.5}
    >>> [_top_logprobs({"logprobs": bad}) for bad in ({"content": {"0": 1}}, {"content": [7]}, 3)]
    [None, None, None]
    """
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list) or not content or not isinstance(content[0], dict):
        return None
    first = content[0]
    listed = first.get("top_logprobs")
    if not isinstance(listed, list) or not listed:
        listed = [{"token": first.get("token"), "logprob": first.get("logprob")}]
    top = {}
    for item in listed:
        if isinstance(item, dict) and isinstance(item.get("token"), str):
            with contextlib.suppress(TypeError, ValueError, OverflowError):
                top.setdefault(item["token"], float(item["logprob"]))
    return top or None


class OpenAIChat:
    """One OpenAI-compatible ``/chat/completions`` endpoint, safe to call from many threads.

    What the endpoint takes (a video part, log-probabilities) is learnt on its first request of
    each kind and kept: ``accepts_video`` and ``gives_logprobs`` are None until then. A refused
    request that is not such a first one is an error, never a silent change of mode.
    """

    RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})

    def __init__(
        self,
        url: str,
        model: str,
        timeout: float = 120.0,
        retries: int = 3,
        backoff: float = 1.0,
        api_key: str | None = None,
        video_input: str = "auto",
    ):
        """Args:
        url: the server's ``http(s)://host:port/v1``.
        model: the model name the server knows.
        timeout: seconds per request.
        retries: retries of a request that failed in a way worth retrying.
        backoff: the first retry's pause in seconds (doubled each time, with jitter).
        api_key: the bearer token (default ``$OPENAI_API_KEY``).
        video_input: one of `VIDEO_INPUTS`.
        """
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
        if video_input not in VIDEO_INPUTS:
            raise ValueError(
                f"video_input must be one of {VIDEO_INPUTS}, got {video_input!r} (endpoint {url!r})"
            )
        self.url = url.rstrip("/")
        self.model = model.strip()
        self.name = self.model
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.api_key = api_key if api_key is not None else openai_api_key()
        self.video_input = video_input
        self.accepts_video: bool | None = None if video_input == "auto" else video_input == "video"
        self.gives_logprobs: bool | None = None
        self._local = threading.local()
        self._probing = threading.RLock()
        self._down: tuple[float, BackendError] | None = None  # (since, the failure) of a dead endpoint

    def _client(self) -> Any:
        """This thread's connection. Each thread has its own client, all made with one SSL context
        (`_ssl_context`): loading the CA certificates for a new client costs ~20 ms of CPU, once per
        thread and endpoint (32 clients for 8 threads over 4 endpoints), and held the interpreter lock
        while requests waited."""
        import httpx

        if getattr(self._local, "client", None) is None:
            self._local.client = httpx.Client(timeout=self.timeout, verify=_ssl_context())
        return self._local.client

    def _reconnect(self) -> None:
        """Drop this thread's connection: the next request opens a new one."""
        client = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            client.close()

    # ------------------------------------------------------------------------------------------
    # Request bodies

    def content(
        self,
        prompt: str,
        frames: np.ndarray | None,
        fps: float | None = None,
        as_video: bool = False,
        video_first: bool = True,
    ) -> list[dict[str, Any]]:
        """The user turn's parts: the frames (one video part, or one image part each) and the prompt.

        Args:
            prompt: the text.
            frames: uint8 (T, H, W, 3), or None for a text-only request; or `LabelledVideos`
                (each video after its label, at its own rate); or an `EncodedVideo`, sent as it is
                (as images: its frames, decoded).
            fps: the frames' rate (for the video part; default 2).
            as_video: one ``video_url`` part rather than ``image_url`` parts.
            video_first: the frames before the text.
        """
        visual: list[dict[str, Any]] = []
        if isinstance(frames, LabelledVideos):
            for label, video_frames, rate in frames.videos:
                visual.append({"type": "text", "text": label})
                visual.extend(self.content("", video_frames, rate, as_video)[:-1])
        elif isinstance(frames, EncodedVideo):
            if as_video:
                visual = [{"type": "video_url", "video_url": {"url": frames.data_url()}}]
            else:
                decoded = frames.frames()
                visual = [{"type": "image_url", "image_url": {"url": _jpeg_data_url(f)}} for f in decoded]
        elif _has_frames(frames):
            if as_video:
                url = video_data_url(frames, fps or 2.0)
                visual = [{"type": "video_url", "video_url": {"url": url}}]
            else:
                visual = [{"type": "image_url", "image_url": {"url": _jpeg_data_url(f)}} for f in frames]
        text = [{"type": "text", "text": prompt}]
        return visual + text if video_first else text + visual

    def request_body(
        self,
        prompt: str,
        frames: np.ndarray | None,
        max_new_tokens: int,
        fps: float | None = None,
        as_video: bool = False,
        video_first: bool = True,
        prefill: str | None = None,
        logprobs: bool = False,
    ) -> dict[str, Any]:
        """The JSON body of one request.

        Args:
            prompt, frames, fps, as_video, video_first: the user turn (see `content`).
            max_new_tokens: ``max_tokens``.
            prefill: the start of the assistant's answer, continued by the model (vLLM's and SGLang's
                ``continue_final_message``, with ``add_generation_prompt`` off).
            logprobs: ask for the top `TOP_LOGPROBS` log-probabilities of each generated token.
        """
        messages: list[dict[str, Any]] = [
            {"role": "user", "content": self.content(prompt, frames, fps, as_video, video_first)}
        ]
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        if prefill is not None:
            messages.append({"role": "assistant", "content": prefill})
            body.update(continue_final_message=True, add_generation_prompt=False)
        body.update(temperature=0.0, seed=0, max_tokens=max_new_tokens)  # seed: servers that sample at 0
        if logprobs:
            body.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
        return body

    # ------------------------------------------------------------------------------------------
    # Sending

    def _pause(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff * 2**attempt * random.uniform(0.8, 1.2)  # jitter: workers do not retry in step
        if retry_after:
            with contextlib.suppress(ValueError):  # an HTTP date: keep the backoff
                asked = float(retry_after)
                if math.isfinite(asked):  # honoured up to a minute, and never past one request's time
                    delay = max(delay, min(asked, 60.0, self.timeout))
        time.sleep(delay)

    def _send(self, endpoint: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any, bytes]:
        """One POST: its status, headers and body, the body read within ``timeout`` seconds and
        `MAX_RESPONSE_BYTES` (a server that drips or streams without end is cut off)."""
        deadline = time.monotonic() + self.timeout
        with self._client().stream("POST", endpoint, json=body, headers=headers) as response:
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise _ResponseTooLarge(f"{endpoint} answered more than {MAX_RESPONSE_BYTES >> 20} MiB")
                if time.monotonic() > deadline:
                    raise _ResponseTooSlow(f"no whole answer within {self.timeout:g} s")
                chunks.append(chunk)
            return response.status_code, response.headers, b"".join(chunks)

    def _went_down(self, failure: BackendError) -> BackendError:
        """Record ``failure`` as the endpoint's: it is down for `DOWN_FOR_S` seconds; returns it."""
        self._down = (time.monotonic(), failure)
        return failure

    def _check_up(self, endpoint: str) -> None:
        down = self._down
        if down is not None:
            elapsed = time.monotonic() - down[0]
            if elapsed < DOWN_FOR_S:
                raise BackendError(
                    f"{endpoint} is down (it failed {elapsed:.0f} s ago: {down[1]})", retryable=True
                )
            self._down = None

    def post(self, body: dict[str, Any], probing: bool = False) -> dict[str, Any]:
        """POST ``body`` to ``/chat/completions`` (with retries) and return its first choice.

        Raises `BackendError`: ``retryable`` after the retries, with ``status`` for a refused request.
        An endpoint that failed after its retries, or answered what is not a chat completion (or more
        than `MAX_RESPONSE_BYTES`), is down for `DOWN_FOR_S` seconds: calls then fail
        at once with its error (a dead server is reported after one request's retries, however many
        requests wait for it). A body is read within ``timeout`` and `MAX_RESPONSE_BYTES`.

        Args:
            body: the request (see `request_body`).
            probing: a request that finds out what the server takes: an HTTP 500 or a dropped
                connection is not retried.
        """
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        endpoint = f"{self.url}/chat/completions"
        self._check_up(endpoint)
        problem = ""
        for attempt in range(self.retries + 1):
            retry_after = None
            try:
                status, response_headers, content = self._send(endpoint, body, headers)
            except (httpx.TimeoutException, _ResponseTooSlow):
                problem = f"no answer within {self.timeout:g} s"
                self._reconnect()
            except _ResponseTooLarge as exc:
                self._reconnect()
                raise self._went_down(BackendError(str(exc))) from None
            except httpx.TransportError as exc:  # connection refused, reset, DNS
                problem = f"{type(exc).__name__}: {exc}"
                self._reconnect()
            else:
                text = content.decode("utf-8", errors="replace")
                if status >= 500:
                    self._reconnect()  # uvicorn closes a connection whose request raised
                if status in self.RETRY_STATUS and not (probing and status == 500):
                    problem = f"HTTP {status}"
                    retry_after = response_headers.get("retry-after")
                elif status >= 400:
                    raise BackendError(f"{endpoint} answered HTTP {status}: {text[:300]}", status=status)
                else:
                    try:
                        return _first_choice(endpoint, content, text)
                    except BackendError as exc:  # a broken server: not asked again for a while
                        raise self._went_down(exc) from None
            if probing and not retry_after and not problem.startswith("HTTP"):
                # Asked something new, the server dropped the connection (``transformers serve`` may,
                # after failing on a video part): the caller tries the plain request next. A server
                # that does not answer in time is down: the plain request would wait as long.
                failure = BackendError(f"{endpoint} failed: {problem}", retryable=True)
                raise self._went_down(failure) if problem.startswith("no answer") else failure
            if attempt < self.retries:
                self._pause(attempt, retry_after)
        raise self._went_down(
            BackendError(f"{endpoint} failed {self.retries + 1} times, last: {problem}", retryable=True)
        )

    def ask(
        self,
        prompt: str,
        frames: np.ndarray | None = None,
        max_new_tokens: int = 512,
        fps: float | None = None,
        video_first: bool = True,
        prefill: str | None = None,
        logprobs: bool = False,
        probing: bool = False,
    ) -> ChatAnswer:
        """One completion, with the frames as a video part when the endpoint takes one.

        While it is unknown whether the endpoint takes a video part (``video_input="auto"``), the
        first request with frames tries one, one request at a time; if that is refused
        (`PROBE_REFUSED`) or its connection dropped (neither retried) and the same request with the
        frames as images is then answered, they go as images from then on, with a notice. Once
        known, a refused request is an error (`BackendError` with its ``status``).

        Args:
            prompt, frames, fps, video_first: the user turn (see `content`).
            max_new_tokens: ``max_tokens``.
            prefill: the start of the assistant's answer (see `request_body`).
            logprobs: ask for the first token's top log-probabilities (see `top_logprobs`).
            probing: this request finds out whether the endpoint takes ``logprobs``: an HTTP 500 or
                a dropped connection is not retried (see `post`).
        """
        has_frames = _has_frames(frames)
        if not has_frames or self.accepts_video is not None:
            return self._ask(
                bool(has_frames and self.accepts_video),
                prompt,
                frames,
                max_new_tokens,
                fps,
                video_first,
                prefill,
                logprobs,
                probing,
            )
        with self._probing:  # the first request finds out; the others wait and then know
            if self.accepts_video is None:
                args = (prompt, frames, max_new_tokens, fps, video_first, prefill, logprobs)
                try:
                    answer = self._ask(True, *args, probing=True)
                except BackendError as exc:
                    if exc.status is not None and exc.status not in PROBE_REFUSED:
                        raise  # a refusal of something else: the plain request would be refused too
                    try:
                        answer = self._ask(False, *args, probing=probing)
                    except BackendError as plain:  # failed with and without the video part: down
                        raise self._went_down(plain) if plain.retryable else plain from None
                    self.accepts_video = False  # the same request without the video part was taken
                    logger.warning(
                        "%s does not take a video part: frames go as images (%s)", self.url, str(exc)[:200]
                    )
                else:
                    self.accepts_video = True
                return answer
        return self.ask(prompt, frames, max_new_tokens, fps, video_first, prefill, logprobs, probing)

    def top_logprobs(
        self,
        prompt: str,
        frames: np.ndarray | None = None,
        prefill: str = "",
        fps: float | None = None,
        video_first: bool = True,
        max_new_tokens: int = 64,
    ) -> ChatAnswer:
        """The top log-probabilities of the token after ``prefill``, or the free-text answer (and
        ``top_logprobs`` None) where the endpoint gives none.

        The first such call finds out: a prefilled one-token request with ``logprobs``; refused
        (`PROBE_REFUSED`) or answered without log-probabilities, the endpoint is marked as
        text-only (``gives_logprobs`` False, a notice) and asked in free text, as every later call is.

        Args:
            prompt, frames, fps, video_first: the user turn (see `content`).
            prefill: the start of the assistant's answer.
            max_new_tokens: the free-text answer's budget.
        """
        if self.gives_logprobs is None:
            with self._probing:
                if self.gives_logprobs is None:
                    return self._probe_logprobs(prompt, frames, prefill, fps, video_first, max_new_tokens)
        if self.gives_logprobs:
            answer = self.ask(prompt, frames, 1, fps, video_first, prefill=prefill, logprobs=True)
            if answer.top_logprobs is None:
                raise BackendError(f"{self.url} gave no log-probabilities this time (it did before)")
            return answer
        return self.ask(prompt, frames, max_new_tokens, fps, video_first)

    def _probe_logprobs(
        self,
        prompt: str,
        frames: np.ndarray | None,
        prefill: str,
        fps: float | None,
        video_first: bool,
        max_new_tokens: int,
    ) -> ChatAnswer:
        try:
            answer = self.ask(
                prompt, frames, 1, fps, video_first, prefill=prefill, logprobs=True, probing=True
            )
        except BackendError as exc:
            if exc.status not in PROBE_REFUSED:
                raise self._went_down(exc) if exc.retryable else exc from None
            reason = f"a request with them was refused: {str(exc)[:200]}"
        else:
            if answer.top_logprobs is not None:
                self.gives_logprobs = True
                return answer
            reason = "it answered without them"
        answer = self.ask(prompt, frames, max_new_tokens, fps, video_first)
        self.gives_logprobs = False  # the same request in free text was answered
        logger.warning(
            "%s does not return log-probabilities (%s): %s is scored from its text answers",
            self.url,
            reason,
            self.model,
        )
        return answer

    def _ask(
        self,
        video: bool,
        prompt: str,
        frames: np.ndarray | None,
        max_new_tokens: int,
        fps: float | None,
        video_first: bool,
        prefill: str | None,
        logprobs: bool,
        probing: bool = False,
    ) -> ChatAnswer:
        body = self.request_body(prompt, frames, max_new_tokens, fps, video, video_first, prefill, logprobs)
        choice = self.post(body, probing)
        has_frames = _has_frames(frames)
        return ChatAnswer(
            text=_message_text(choice["message"].get("content")),
            top_logprobs=_top_logprobs(choice) if logprobs else None,
            video_input=("video" if video else "frames") if has_frames else "none",
        )

    def ask_parts(
        self, parts: Sequence[str | tuple[np.ndarray, float]], max_new_tokens: int = 1024
    ) -> ChatAnswer:
        """One text completion for a user turn of texts and videos in order (several videos: HELM's
        A / B / tie preference scenario). Each video goes as a video part, or as image parts when the
        endpoint is known not to take one or ``video_input`` is ``frames``.

        Args:
            parts: ``str`` parts are text; ``(frames, fps)`` a video (uint8 (T, H, W, 3) and its rate).
            max_new_tokens: ``max_tokens``.
        """
        as_video = self.accepts_video is not False and self.video_input != "frames"
        content: list[dict[str, Any]] = []
        for part in parts:
            if isinstance(part, str):
                content.append({"type": "text", "text": part})
            else:
                frames, fps = part
                content.extend(self.content("", frames, fps, as_video)[:-1])  # the visual parts alone
        body = {"model": self.model, "messages": [{"role": "user", "content": content}]}
        body.update(temperature=0.0, seed=0, max_tokens=max_new_tokens)
        choice = self.post(body)
        return ChatAnswer(
            text=_message_text(choice["message"].get("content")),
            top_logprobs=None,
            video_input="video" if as_video else "frames",
        )

    def complete(
        self,
        stage: str,
        prompt: str,
        frames: np.ndarray | None = None,
        max_new_tokens: int = 512,
        fps: float | None = None,
    ) -> str:
        """The model's free-text answer (the relabeling `Backend` interface).

        Args:
            stage: the caller's stage (unused here; backends may log it).
            prompt: the text.
            frames: uint8 (T, H, W, 3) frames, or None.
            max_new_tokens: ``max_tokens``.
            fps: the frames' rate.
        """
        return self.ask(prompt, frames, max_new_tokens, fps).text
