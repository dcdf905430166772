"""A reward server for robots and distributed collectors (its client: `roboreward.models.remote`).

    roboreward serve --model my-org/RoboReward-3B --port 8000          # FastAPI + uvicorn

``POST /score`` takes a multipart upload (``video``: the bytes of a video file, ``task``: text, and
optionally ``start`` / ``end``: seconds, the episode's range in the video) and
returns the `ScoreResult` as JSON (``score``, ``expected``, ``reward``, ``probs``) plus
``latency_ms``. Requests that arrive together are scored in one batch: while other requests are
still uploading, the oldest queued one waits up to ``max_wait_ms`` for them, up to ``max_batch``
(a lone request is scored at once). One worker runs `RewardModel.score_batch` in a thread, so the
event loop keeps accepting uploads while the model works. When a batch fails, its requests are
scored one by one, so that one bad video fails alone.

Refusals, each ``{"detail": message}``, after which the server keeps serving: with a ``token``,
a request without ``Authorization: Bearer <token>`` gets 401 before its body is read; a request
body over ``max_upload_mb`` gets 413, refused while it streams in (nothing over the limit is
stored); an upload that is not a readable video, a video longer than ``max_seconds`` or over the
`roboreward.video.VideoLimits` (pixels per frame, frames, decoded bytes: checked on the header,
before any frame is decoded), a missing upload, an empty task and a task over ``max_task_chars``
get 422. A request not scored within ``deadline_s`` of being queued gets 504; the worker then
leaves a batch that overran behind (its thread finishes on its own, its answer dropped) and
goes on with the next one, so one pathological batch cannot hold the server.

``GET /health`` reports ``status`` (``ok``, or ``degraded`` while a batch runs past its deadline),
``model``, ``settings`` (the inference settings it scores with), and counters: ``requests``
(scored), ``refused``, ``expired`` (504s), ``overruns`` (batches left behind), ``batches`` and
``batch_sizes`` (how many batches had each size).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hmac
import json
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

# At module level: FastAPI reads the endpoints' (string) annotations in this module's namespace.
try:
    from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
except ImportError as exc:  # the [serve] extra
    from roboreward.extras import MissingExtraError

    raise MissingExtraError(
        'roboreward.serving.server needs fastapi: pip install "roboreward[serve]"'
    ) from exc

from roboreward import rubric, video
from roboreward.models.remote import TOKEN_ENV, RewardClient, RewardServerError

__all__ = [
    "MAX_TASK_CHARS",
    "TOKEN_ENV",
    "RewardClient",
    "RewardServerError",
    "ServerStats",
    "check_settings",
    "create_app",
]

#: The longest task accepted, in characters (as the Space's): a task is one instruction, and the
#: model's work grows with its length (a 1 MB task held the worker for minutes).
MAX_TASK_CHARS = 500
#: Batches past their deadline still running (in their threads) before the worker waits for one.
MAX_LEFT_BEHIND = 2

#: Room in a request body for the multipart framing and the task, on top of the video's bytes.
FORM_OVERHEAD = 64 * 1024
#: An oversize body is read (and dropped) up to this much more before the 413, so that the client,
#: which sends its whole request before reading the answer, gets the message and not a reset.
_DRAIN_LIMIT = 256 * 2**20


@dataclass
class ServerStats:
    """The server's counters (``app.state.stats``), shown by ``GET /health``."""

    requests: int = 0  # scored
    refused: int = 0  # answered with 4xx
    expired: int = 0  # answered 504: not scored within the deadline
    overruns: int = 0  # batches that ran past their deadline and were left behind
    stalled: int = 0  # uploads that did not arrive within the upload timeout (answered 408)
    batches: int = 0
    batch_sizes: collections.Counter = field(default_factory=collections.Counter)


class DeadlineExceeded(RuntimeError):
    """A request that was not scored within the server's deadline (answered 504)."""


@dataclass
class _Job:
    data: bytes
    task: str
    span: tuple[float | None, float | None]  # the episode's (start, end) in the video, seconds
    future: asyncio.Future
    arrived: float
    deadline: float


class _MicroBatcher:
    """A queue of requests and one asyncio worker that scores them in batches, in a thread.

    The queue is a deque plus an event rather than an `asyncio.Queue`: the worker's timed wait for
    more requests is a wait on the event, which can time out without ever losing a request.

    Each job fails with `DeadlineExceeded` at its deadline, wherever it is. A batch runs in its own
    daemon thread; when the earliest deadline in it passes first, the worker stops waiting for it
    (a Python thread cannot be stopped: it finishes on its own, and counts as ``overrunning`` till
    then), puts the batch's jobs that still have time back at the front of the queue, and goes on.
    At most `MAX_LEFT_BEHIND` batches run past their deadline at once: beyond that the worker waits
    for one to finish (queued requests meanwhile get 504 at their deadlines), so stuck batches can
    never pile up threads and memory.
    Daemon threads also let the process exit on SIGTERM while a batch is still in the model.
    """

    def __init__(
        self, reward_model: Any, max_batch: int, max_wait_s: float, stats: ServerStats, deadline_s: float
    ):
        self.reward_model = reward_model
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.deadline_s = deadline_s
        self.stats = stats
        self.overrunning = 0  # batches left behind whose threads still run
        self.freed: asyncio.Event | None = None  # set when a batch left behind finishes
        self.pending: collections.deque[_Job] = collections.deque()
        self.wakeup: asyncio.Event | None = None
        self.worker: asyncio.Task | None = None
        self.arriving = 0  # requests inside the server (uploading, checked) but not queued yet

    def arrive(self) -> dict[str, bool]:
        """Count a request that entered the server; `leave` it when queued or answered."""
        self.arriving += 1
        return {"open": True}

    def leave(self, token: dict[str, bool] | None) -> None:
        if token is not None and token["open"]:
            token["open"] = False
            self.arriving -= 1
            if self.wakeup is not None:
                self.wakeup.set()

    def start(self) -> None:
        if self.worker is None or self.worker.done():
            self.wakeup = asyncio.Event()
            self.freed = asyncio.Event()
            self.worker = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.worker
        while self.pending:
            job = self.pending.popleft()
            if not job.future.done():
                job.future.set_exception(RuntimeError("the reward server is shutting down"))

    async def submit(
        self,
        data: bytes,
        task: str,
        token: dict[str, bool] | None = None,
        span: tuple[float | None, float | None] = (None, None),
    ) -> Any:
        self.start()
        loop = asyncio.get_running_loop()
        now = loop.time()
        job = _Job(data, task, span, loop.create_future(), now, now + self.deadline_s)
        expiry = loop.call_at(job.deadline, self._expire, job)
        self.pending.append(job)
        self.leave(token)
        self.wakeup.set()
        try:
            return await job.future
        finally:
            expiry.cancel()

    def _expire(self, job: _Job) -> None:
        if not job.future.done():
            self.stats.expired += 1
            job.future.set_exception(
                DeadlineExceeded(
                    f"not scored within the server's {self.deadline_s:g} s deadline (--deadline)"
                )
            )

    def _in_thread(self, batch: list[_Job]) -> asyncio.Future:
        """Score a batch in a new daemon thread; the returned future gets its outcomes."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def deliver(outcomes: list[Any]) -> None:
            if not future.done():
                future.set_result(outcomes)

        videos, tasks, spans = [j.data for j in batch], [j.task for j in batch], [j.span for j in batch]

        def run() -> None:
            outcomes = self._score(videos, tasks, spans)
            with contextlib.suppress(RuntimeError):  # the loop closed: the server has stopped
                loop.call_soon_threadsafe(deliver, outcomes)

        threading.Thread(target=run, name="roboreward-batch", daemon=True).start()
        return future

    def _left_behind(self, future: asyncio.Future) -> None:
        self.overrunning += 1
        self.stats.overruns += 1

        def finished(_: asyncio.Future) -> None:
            self.overrunning -= 1
            if self.freed is not None:
                self.freed.set()

        future.add_done_callback(finished)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self.pending:
                self.wakeup.clear()
                await self.wakeup.wait()
            # Wait for company only while other requests are on their way in (uploading), and at most
            # max_wait from the oldest one's arrival: a lone client never waits.
            deadline = self.pending[0].arrived + self.max_wait_s
            while (
                len(self.pending) < self.max_batch
                and self.arriving > 0
                and (remaining := deadline - loop.time()) > 0
            ):
                self.wakeup.clear()
                try:
                    await asyncio.wait_for(self.wakeup.wait(), remaining)
                except asyncio.TimeoutError:
                    break
            while self.overrunning >= MAX_LEFT_BEHIND:
                self.freed.clear()
                await self.freed.wait()
            batch = [self.pending.popleft() for _ in range(min(self.max_batch, len(self.pending)))]
            batch = [job for job in batch if not job.future.done()]  # clients that went away
            if not batch:
                continue
            self.stats.batches += 1
            self.stats.batch_sizes[len(batch)] += 1
            running = self._in_thread(batch)
            remaining = min(j.deadline for j in batch) - loop.time()
            try:
                outcomes = await asyncio.wait_for(asyncio.shield(running), max(remaining, 0.0))
            except asyncio.TimeoutError:
                self._left_behind(running)
                self.pending.extendleft(reversed([j for j in batch if not j.future.done()]))
                continue
            for job, outcome in zip(batch, outcomes, strict=True):
                if job.future.done():
                    continue
                if isinstance(outcome, BaseException):
                    job.future.set_exception(outcome)
                else:
                    job.future.set_result(outcome)

    def _score(
        self, videos: list[bytes], tasks: list[str], spans: list[tuple[float | None, float | None]]
    ) -> list[Any]:
        starts, ends = [s for s, _ in spans], [e for _, e in spans]
        try:
            return list(self.reward_model.score_batch(videos, tasks, starts=starts, ends=ends))
        except Exception as exc:
            if len(videos) == 1:
                return [exc]
        outcomes: list[Any] = []
        for data, task, (start, end) in zip(videos, tasks, spans, strict=True):  # one bad video fails alone
            try:
                outcomes.append(self.reward_model.score_batch([data], [task], starts=[start], ends=[end])[0])
            except Exception as exc:
                outcomes.append(exc)
        return outcomes


class _Admission:
    """ASGI middleware in front of the app: counts arrivals, 4xx answers, and limits request bodies.

    Requests to /score count as arriving (for the batcher's wait) until they are queued or
    answered. A body over ``limit`` bytes gets a 413 before anything is stored: a declared
    Content-Length over it is refused without calling the app; a streamed (chunked) body is cut
    off once it passes the limit, and the app's answer replaced by the 413.
    """

    def __init__(
        self,
        app: Any,
        limit: int,
        max_upload_mb: float,
        stats: ServerStats,
        batcher: _MicroBatcher,
        token: str | None = None,
        upload_timeout_s: float = 30.0,
    ):
        self.app = app
        self.upload_timeout_s = upload_timeout_s
        self.limit = limit
        self.max_upload_mb = max_upload_mb
        self.stats = stats
        self.batcher = batcher
        self.authorization = f"Bearer {token}".encode() if token else None

    async def _refuse(self, send: Any, size: str | None) -> None:
        what = f"upload of {size}" if size else "upload"
        await self._answer(send, 413, f"{what} is over the {self.max_upload_mb:g} MB limit (--max-upload-mb)")

    @staticmethod
    async def _answer(send: Any, status: int, detail: str, extra: list[tuple[bytes, bytes]] = ()) -> None:
        body = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": [*headers, *extra]})
        await send({"type": "http.response.body", "body": body})

    def _authorized(self, scope: Any) -> bool:
        if self.authorization is None:
            return True
        given = dict(scope["headers"]).get(b"authorization", b"")
        return hmac.compare_digest(given, self.authorization)

    async def _drain(self, receive: Any, budget: int) -> None:
        """Read and drop up to ``budget`` bytes of the body, for at most the upload timeout."""
        deadline = asyncio.get_running_loop().time() + self.upload_timeout_s
        with contextlib.suppress(asyncio.TimeoutError):
            while budget > 0:
                left = deadline - asyncio.get_running_loop().time()
                message = await asyncio.wait_for(receive(), max(left, 0.0))
                if message["type"] != "http.request" or not message.get("more_body"):
                    return
                budget -= len(message.get("body", b""))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self._authorized(scope):  # before anything of the body is read or stored
            self.stats.refused += 1
            await self._drain(receive, self.limit)
            await self._answer(
                send,
                401,
                "missing or wrong bearer token: send the header 'Authorization: Bearer <token>'",
                [(b"www-authenticate", b"Bearer")],
            )
            return

        token = self.batcher.arrive() if scope["path"].endswith("/score") else None
        scope.setdefault("state", {})["roboreward_arrival"] = token
        started = False

        async def tracked_send(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._limited(scope, receive, tracked_send)
        except asyncio.CancelledError:
            # uvicorn cancels the requests still open when its graceful shutdown ends (a stalled
            # upload among them): each is answered 503 and ends here, instead of a CancelledError
            # traceback per request in the log. Nothing else cancels a request's task.
            if not started:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await self._answer(
                        send, 503, "the server is shutting down: retry later", [(b"connection", b"close")]
                    )
        finally:
            self.batcher.leave(token)

    async def _limited(self, scope: Any, receive: Any, send: Any) -> None:
        async def counting_send(message: Any) -> None:  # every 4xx answer counts as refused, once
            if message["type"] == "http.response.start" and 400 <= message["status"] < 500:
                self.stats.refused += 1
            await send(message)

        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._drain(receive, _DRAIN_LIMIT)
            await self._refuse(counting_send, f"{int(declared) / 2**20:.1f} MB")
            return
        seen, over, stalled, answered = 0, False, False, False
        deadline = asyncio.get_running_loop().time() + self.upload_timeout_s

        async def limited_receive() -> Any:
            nonlocal seen, over, stalled
            if over or stalled:
                return {"type": "http.request", "body": b"", "more_body": False}
            try:  # a client that stalls its upload holds a connection: not past the upload timeout
                left = deadline - asyncio.get_running_loop().time()
                message = await asyncio.wait_for(receive(), max(left, 0.0))
            except asyncio.TimeoutError:
                stalled = True
                return {"type": "http.request", "body": b"", "more_body": False}
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    over = True
                    if message.get("more_body"):
                        await self._drain(receive, _DRAIN_LIMIT)
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def guarded_send(message: Any) -> None:
            nonlocal answered
            if not over and not stalled:
                await counting_send(message)
            elif not answered:  # the app saw a cut-off body: answer 413 / 408 instead of what it says
                answered = True
                if over:
                    await self._refuse(counting_send, None)
                else:
                    self.stats.stalled += 1
                    await self._answer(
                        counting_send,
                        408,
                        f"the upload did not arrive within {self.upload_timeout_s:g} s (--upload-timeout)",
                        [(b"connection", b"close")],
                    )

        await self.app(scope, limited_receive, guarded_send)


def check_settings(
    max_batch: int,
    max_wait_ms: float,
    max_upload_mb: float,
    max_seconds: float,
    max_task_chars: int = MAX_TASK_CHARS,
    deadline_s: float = 60.0,
) -> None:
    """Raise ValueError naming the first server setting out of range."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    if max_wait_ms < 0:
        raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
    if max_upload_mb <= 0:
        raise ValueError(f"max_upload_mb must be > 0, got {max_upload_mb}")
    if max_seconds <= 0:
        raise ValueError(f"max_seconds must be > 0, got {max_seconds}")
    if (
        not 1 <= max_task_chars <= rubric.MAX_TASK_CHARS
    ):  # a longer task would reach the prompt and be refused there
        raise ValueError(f"max_task_chars must be in 1..{rubric.MAX_TASK_CHARS}, got {max_task_chars}")
    if deadline_s <= 0:
        raise ValueError(f"deadline_s must be > 0, got {deadline_s}")


def create_app(
    reward_model: Any,
    max_batch: int = 8,
    max_wait_ms: float = 20.0,
    max_upload_mb: float = 50.0,
    max_seconds: float = 120.0,
    model_name: str | None = None,
    max_task_chars: int = MAX_TASK_CHARS,
    deadline_s: float = 60.0,
    token: str | None = None,
    limits: video.VideoLimits | None = video.DEFAULT_LIMITS,
    upload_timeout_s: float = 30.0,
) -> FastAPI:
    """The FastAPI app serving a reward model (see the module docstring).

    Run it with ``uvicorn.run(app, host="127.0.0.1", port=8000)``; ``app.state.stats`` holds the
    counters. ``max_batch=1`` turns micro-batching off.

    Args:
        reward_model: a `roboreward.models.RewardScorer` (any kind: `load_reward_model` makes one).
        max_batch: requests scored together at most.
        max_wait_ms: how long the oldest queued request waits for others still uploading.
        max_upload_mb: the largest video upload (413 beyond).
        max_seconds: the longest video (422 beyond).
        model_name: the name ``/health`` shows.
        max_task_chars: the longest task in characters (422 beyond).
        deadline_s: seconds a queued request may wait for and spend in the model (504 beyond).
        token: when given, every request needs ``Authorization: Bearer <token>`` (401 without).
        limits: the bounds on an upload's header (422 beyond); None checks only ``max_seconds``.
        upload_timeout_s: seconds a request's body may take to arrive (408 beyond, the connection
            closed): a client that stalls its upload cannot hold the server's connections.
    """
    check_settings(max_batch, max_wait_ms, max_upload_mb, max_seconds, max_task_chars, deadline_s)
    if not upload_timeout_s > 0:
        raise ValueError(f"upload_timeout must be > 0 seconds, got {upload_timeout_s}")
    stats = ServerStats()
    limit = int(max_upload_mb * 2**20)
    batcher = _MicroBatcher(reward_model, max_batch, max_wait_ms / 1000, stats, deadline_s)
    name = model_name or getattr(reward_model, "name", None)
    settings = getattr(reward_model, "settings", None)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="RoboReward reward server", lifespan=lifespan)
    app.add_middleware(
        _Admission,
        limit=limit + FORM_OVERHEAD,
        max_upload_mb=max_upload_mb,
        stats=stats,
        batcher=batcher,
        token=token,
        upload_timeout_s=upload_timeout_s,
    )
    app.state.stats = stats

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "degraded" if batcher.overrunning else "ok",
            "model": name or type(reward_model).__name__,
            "settings": settings.to_dict() if settings is not None else None,
            "requests": stats.requests,
            "refused": stats.refused,
            "expired": stats.expired,
            "overruns": stats.overruns,
            "stalled": stats.stalled,
            "overrunning": batcher.overrunning,
            "deadline_s": deadline_s,
            "batches": stats.batches,
            "batch_sizes": {str(k): v for k, v in sorted(stats.batch_sizes.items())},
            "queued": len(batcher.pending),
            "max_batch": max_batch,
            "max_wait_ms": max_wait_ms,
        }

    @app.post("/score")
    async def score(
        request: Request,
        video_file: Annotated[UploadFile | None, File(alias="video")] = None,
        task: Annotated[str | None, Form()] = None,
        start: Annotated[float | None, Form()] = None,
        end: Annotated[float | None, Form()] = None,
    ) -> dict[str, Any]:
        started = time.perf_counter()
        if video_file is None:
            raise HTTPException(422, "no video: send the video file as the multipart field 'video'")
        if not task or not task.strip():
            raise HTTPException(422, "task is empty: send the task text as the form field 'task'")
        if len(task) > max_task_chars:
            raise HTTPException(
                422,
                f"the task is {len(task)} characters long; the limit is {max_task_chars} (--max-task-chars)",
            )
        for field_name, value in (("start", start), ("end", end)):
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise HTTPException(422, f"{field_name} must be a number of seconds >= 0, got {value}")
        if start is not None and end is not None and end <= start:
            raise HTTPException(422, f"end ({end}) must be after start ({start})")
        data = await video_file.read(limit + 1)
        if len(data) > limit:
            raise HTTPException(413, f"the video is over the {max_upload_mb:g} MB limit (--max-upload-mb)")
        try:
            info = await asyncio.to_thread(video.probe, data)
        except video.VideoDecodeError as exc:
            raise HTTPException(422, f"the upload 'video' is not a readable video: {exc.reason}") from None
        if info.duration > max_seconds:
            raise HTTPException(
                422,
                f"the video is {info.duration:.1f} s long; the limit is {max_seconds:g} s (--max-seconds)",
            )
        try:
            video.check_limits(info, limits, "upload 'video'")
        except video.VideoLimitError as exc:
            raise HTTPException(422, f"the upload 'video' is refused: {exc.reason}") from None
        try:
            result = await batcher.submit(
                data, task, request.scope.get("state", {}).get("roboreward_arrival"), (start, end)
            )
        except DeadlineExceeded as exc:
            raise HTTPException(504, str(exc)) from None
        except (video.VideoDecodeError, ValueError) as exc:
            raise HTTPException(422, str(exc)) from None
        except Exception as exc:  # the model failed: say how, and keep serving
            raise HTTPException(500, f"scoring failed: {type(exc).__name__}: {exc}") from None
        stats.requests += 1
        return {**result.to_dict(), "latency_ms": round((time.perf_counter() - started) * 1000, 2)}

    return app


# ---------------------------------------------------------------------------------------------
# Client
