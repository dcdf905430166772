"""A reward server for robots and distributed collectors, and its Python client.

    roboreward serve --model my-org/RoboReward-3B --port 8000          # FastAPI + uvicorn

    from roboreward.serve import RewardClient
    RewardClient("http://127.0.0.1:8000").score("rollout.mp4", "open the drawer")  # -> ScoreResult

``POST /score`` takes a multipart upload (``video``: the bytes of a video file, ``task``: text) and
returns the `ScoreResult` as JSON (plus ``latency_ms``). Requests that arrive together are scored in
one batch: the first waits up to ``max_wait_ms`` for others, up to ``max_batch``, and one worker runs
`RewardModel.score_batch` in a thread, so the server keeps accepting while the model works. Uploads
over ``max_upload_mb`` get 413, videos longer than ``max_seconds``, non-videos and empty tasks 422,
each with a message; the server keeps serving. ``GET /health`` reports the model and counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np

# At module level: FastAPI reads the endpoints' (string) annotations in this module's namespace.
from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile

from roboreward import video

__all__ = ["RewardClient", "RewardServerError", "create_app"]


@dataclass
class _Stats:
    requests: int = 0
    batches: int = 0
    batch_sizes: list[int] = field(default_factory=list)


def create_app(
    reward_model: Any,
    max_batch: int = 8,
    max_wait_ms: float = 20.0,
    max_upload_mb: float = 50.0,
    max_seconds: float = 120.0,
    model_name: str | None = None,
) -> Any:
    """The FastAPI app around a `RewardModel` (see the module docstring)."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    stats = _Stats()
    limit = int(max_upload_mb * 2**20)
    state: dict[str, Any] = {}

    async def worker() -> None:
        queue: asyncio.Queue = state["queue"]
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            deadline = loop.time() + max_wait_ms / 1000
            while len(batch) < max_batch:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), remaining))
                except TimeoutError:
                    break
            stats.batches += 1
            stats.batch_sizes.append(len(batch))
            try:
                videos, tasks = [b[0] for b in batch], [b[1] for b in batch]
                results = await loop.run_in_executor(
                    None, reward_model.score_batch, videos, tasks, len(batch)
                )
                for (_, _, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
            except Exception as exc:  # one bad batch must not stop the worker
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any):
        state["queue"] = asyncio.Queue()
        task = asyncio.create_task(worker())
        yield
        task.cancel()

    app = FastAPI(title="RoboReward reward server", lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": model_name or getattr(reward_model, "name", type(reward_model).__name__),
            "requests": stats.requests,
            "batches": stats.batches,
            "max_batch": max_batch,
            "max_wait_ms": max_wait_ms,
        }

    @app.post("/score")
    async def score(
        request: Request,
        video_file: Annotated[UploadFile, File(alias="video")],
        task: Annotated[str, Form()],
    ):
        started = time.perf_counter()
        declared = int(request.headers.get("content-length") or 0)
        if declared > limit + 65536:
            raise HTTPException(
                413, f"upload of {declared / 2**20:.1f} MB is over the {max_upload_mb:g} MB limit"
            )
        data = await video_file.read(limit + 1)
        if len(data) > limit:
            raise HTTPException(413, f"upload is over the {max_upload_mb:g} MB limit")
        if not task.strip():
            raise HTTPException(422, "task is empty")
        try:
            info = video.probe(data)
        except video.VideoDecodeError as exc:
            raise HTTPException(422, f"the upload is not a readable video: {exc.reason}") from None
        if info.duration > max_seconds:
            raise HTTPException(
                422, f"the video is {info.duration:.1f} s long; the limit is {max_seconds:g} s"
            )
        future = asyncio.get_running_loop().create_future()
        stats.requests += 1
        await state["queue"].put((data, task, future))
        try:
            result = await future
        except (video.VideoDecodeError, ValueError) as exc:
            raise HTTPException(422, str(exc)) from None
        return {**result.to_dict(), "latency_ms": round((time.perf_counter() - started) * 1000, 2)}

    app.state.stats = stats
    return app


class RewardServerError(RuntimeError):
    """The server refused a request; the message is the server's."""

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(f"reward server answered {status}: {message}")


class RewardClient:
    """A client of `create_app`'s server: ``score(video, task) -> ScoreResult``, ``health()``."""

    def __init__(self, url: str, timeout: float = 120.0, fps: float = 10.0):
        import httpx

        self.url = url.rstrip("/")
        self.fps = fps
        self._http = httpx.Client(timeout=timeout)

    def _bytes(self, video_or_frames: Any) -> bytes:
        if isinstance(video_or_frames, (bytes, bytearray)):
            return bytes(video_or_frames)
        if isinstance(video_or_frames, (str, os.PathLike)):
            with open(video_or_frames, "rb") as f:
                return f.read()
        frames = np.asarray(video_or_frames)  # frames: encode them as an H.264 clip
        with tempfile.TemporaryDirectory() as tmp:
            return video.encode(frames, os.path.join(tmp, "clip.mp4"), fps=self.fps).read_bytes()

    def score(self, video_or_frames: Any, task: str) -> Any:
        from roboreward.scoring import ScoreResult

        response = self._http.post(
            f"{self.url}/score",
            files={"video": ("video.mp4", self._bytes(video_or_frames), "video/mp4")},
            data={"task": task},
        )
        if response.status_code != 200:
            try:
                message = response.json().get("detail", response.text)
            except ValueError:
                message = response.text
            raise RewardServerError(response.status_code, str(message))
        body = response.json()
        return ScoreResult(
            score=body["score"], probs=tuple(body["probs"]), expected=body["expected"], reward=body["reward"]
        )

    def health(self) -> dict[str, Any]:
        response = self._http.get(f"{self.url}/health")
        response.raise_for_status()
        return response.json()

    def close(self) -> None:
        self._http.close()
