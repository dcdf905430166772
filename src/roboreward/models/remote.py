"""The Python client of `roboreward serve`: what a robot or a data collector runs.

It needs only httpx (a core dependency), never the server's FastAPI: ``pip install roboreward`` on the
robot is enough. It speaks `RewardModel`'s API (``score`` / ``score_batch``), so it can stand in for
the model in `roboreward.apps.rl`'s wrappers.

    >>> from roboreward.models.remote import RewardClient
    >>> client = RewardClient("http://127.0.0.1:8000")  # doctest: +SKIP
    >>> client.score("rollout.mp4", "open the drawer").reward  # doctest: +SKIP
    0.8125
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from roboreward import video

__all__ = ["TOKEN_ENV", "RewardClient", "RewardServerError"]

#: The environment variable `roboreward serve` and `RewardClient` read the bearer token from.
TOKEN_ENV = "ROBOREWARD_SERVE_TOKEN"


class RewardServerError(RuntimeError):
    """The server refused a request: ``status`` (413, 422, ...) and the server's message."""

    def __init__(self, status: int, message: str):
        self.status = status
        self.message = message
        super().__init__(f"reward server answered {status}: {message}")


class RewardClient:
    """A client of the reward server, with `RewardModel`'s ``score`` / ``score_batch``.

    ``video`` is a path, the bytes of a video file, a ``{"bytes", "path"}`` row, or frames (a uint8
    array (T, H, W, 3) or a list of (H, W, 3) arrays), which are encoded to an H.264 mp4 at ``fps``
    (default the client's ``fps``, else 2, the rate `RewardModel` assumes for frames). Because it
    speaks `RewardModel`'s API, a client can stand in for the model in `roboreward.apps.rl`'s wrappers:
    robots and collectors then share one reward server.

    ``token`` (default ``$ROBOREWARD_SERVE_TOKEN``) goes with every request as
    ``Authorization: Bearer <token>``, for a server started with ``--token``.

    >>> with RewardClient("http://127.0.0.1:8000", timeout=60) as client:  # doctest: +SKIP
    ...     print(client.health()["requests"], client.score(frames, "open the drawer", fps=10).score)
    """

    def __init__(
        self,
        url: str,
        timeout: float = 120.0,
        fps: float | None = None,
        max_concurrency: int = 8,
        token: str | None = None,
    ):
        import httpx

        self.url = url.rstrip("/")
        self.fps = fps
        self.max_concurrency = max_concurrency
        token = token if token is not None else os.environ.get(TOKEN_ENV)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(timeout=timeout, headers=headers)

    def __enter__(self) -> RewardClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def video_bytes(self, video_or_frames: Any, fps: float | None = None) -> bytes:
        """The bytes uploaded for ``video_or_frames`` (frames encoded to mp4, see the class docstring)."""
        item = video_or_frames
        if isinstance(item, dict):
            item = item.get("bytes") or item.get("path")
            if item is None:
                raise ValueError("the video row has neither 'bytes' nor 'path'")
        if isinstance(item, (bytes, bytearray, memoryview)):
            return bytes(item)
        if isinstance(item, (str, os.PathLike)):
            with open(item, "rb") as f:
                return f.read()
        frames = np.asarray(item)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
            raise ValueError(f"frames must be uint8 of shape (T, H, W, 3), got {frames.dtype} {frames.shape}")
        rate = fps or self.fps or video.DEFAULT_FRAMES_FPS
        with tempfile.TemporaryDirectory(prefix="roboreward-client-") as tmp:
            path = video.encode(frames, os.path.join(tmp, "episode.mp4"), fps=rate, crf=18, preset="veryfast")
            return path.read_bytes()

    def score(self, video: Any, task: str, fps: float | None = None) -> Any:
        """Score one episode on the server; raises `RewardServerError` when the server refuses it."""
        from roboreward.models.results import ScoreResult

        response = self._http.post(
            f"{self.url}/score",
            files={"video": ("episode.mp4", self.video_bytes(video, fps), "video/mp4")},
            data={"task": task},
        )
        if response.status_code != 200:
            raise RewardServerError(response.status_code, _detail(response))
        body = response.json()
        return ScoreResult(
            score=int(body["score"]),
            probs=tuple(float(p) for p in body["probs"]),
            expected=float(body["expected"]),
            reward=float(body["reward"]),
        )

    def score_batch(
        self,
        videos: Sequence[Any],
        tasks: Sequence[str] | str,
        batch_size: int = 8,
        fps: float | Sequence[float] | None = None,
    ) -> list[Any]:
        """Score many episodes, sending up to ``batch_size`` at once so that the server batches them."""
        from roboreward.models.endpoints import score_many

        return score_many(self.score, videos, tasks, fps, max(1, min(batch_size, self.max_concurrency)))

    def health(self) -> dict[str, Any]:
        """The server's ``GET /health``: status, model and counters."""
        response = self._http.get(f"{self.url}/health")
        if response.status_code != 200:
            raise RewardServerError(response.status_code, _detail(response))
        return response.json()


def _detail(response: Any) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except (ValueError, AttributeError):
        return response.text
