"""`RewardClient`: a ``roboreward serve`` server as a reward model, for robots and data collectors.

It needs only httpx (a core dependency), never the server's FastAPI or torch: ``pip install
roboreward`` on the robot is enough. It is a `roboreward.models.RewardScorer` (``score``,
``score_batch``, ``progress_curve``), so anything that takes a reward model takes it: the RL
wrappers, ``annotate``, ``curve``, the bench (``--model http://HOST:PORT``), the Space.

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

from roboreward import video as video_io
from roboreward.environ import SERVE_TOKEN_ENV, serve_token
from roboreward.models.endpoints import score_many
from roboreward.models.frames import cut_frames
from roboreward.models.protocol import curve_by_requests
from roboreward.models.results import ProgressCurve, ScoreResult
from roboreward.models.settings import InferenceSettings

__all__ = ["TOKEN_ENV", "RewardClient", "RewardServerError"]

#: The environment variable `roboreward serve` and `RewardClient` read the bearer token from.
TOKEN_ENV = SERVE_TOKEN_ENV


class RewardServerError(RuntimeError):
    """The server refused a request: ``status`` (413, 422, ...) and the server's message; or gave no
    answer (``status`` None: nothing listening, no answer in time, a dropped connection)."""

    def __init__(self, status: int | None, message: str):
        self.status = status
        self.message = message
        super().__init__(f"reward server answered {status}: {message}" if status else message)


class RewardClient:
    """A client of the reward server: a `roboreward.models.RewardScorer`.

    ``video`` is a path, the bytes of a video file, a ``{"bytes", "path"}`` row, or frames (a uint8
    array (T, H, W, 3) or a list of (H, W, 3) arrays), which are cut to ``start`` / ``end`` here and
    encoded to an H.264 mp4 at ``fps`` (default the client's ``fps``, else 2, the rate `RewardModel`
    assumes for frames). A video's ``start`` / ``end`` go to the server, which applies its model's
    frame policy to that range.

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
        concurrency: int = 8,
        token: str | None = None,
    ):
        """Args:
        url: the server, ``http(s)://HOST:PORT``.
        timeout: seconds per request.
        fps: the rate of frames given directly (None: 2).
        concurrency: requests in flight at once in `score_batch` (the server batches them).
        token: the bearer token (None: ``$ROBOREWARD_SERVE_TOKEN``).
        """
        import httpx

        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be an integer >= 1, got {concurrency!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.url = url.rstrip("/")
        self.fps = fps
        self.concurrency = concurrency
        token = token if token is not None else serve_token()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(timeout=timeout, headers=headers)
        self._health: dict[str, Any] | None = None

    def __enter__(self) -> RewardClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _server(self) -> dict[str, Any]:
        if self._health is None:
            self._health = self.health()
        return self._health

    @property
    def name(self) -> str:
        """The served model's name, as the server's ``/health`` gives it."""
        return str(self._server().get("model") or self.url)

    @property
    def settings(self) -> InferenceSettings | None:
        """The inference settings the server scores with (None: a server that does not say)."""
        data = self._server().get("settings")
        return InferenceSettings.from_dict(data, source=f"{self.url}/health") if data else None

    def video_bytes(
        self,
        video_or_frames: Any,
        fps: float | None = None,
        *,
        start: float | None = None,
        end: float | None = None,
    ) -> bytes:
        """The bytes uploaded for ``video_or_frames``: a video file as it is, frames cut to
        ``start`` / ``end`` and encoded to mp4 (see the class docstring).

        Args:
            video_or_frames: the episode.
            fps: the rate of frames given directly.
            start, end: seconds (frames given directly only; a video's range goes to the server).
        """
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
        frames = video_io.frames_array(item)
        rate = float(fps or self.fps or video_io.DEFAULT_FRAMES_FPS)
        frames = cut_frames(frames, rate, start, end)
        with tempfile.TemporaryDirectory(prefix="roboreward-client-") as tmp:
            path = video_io.encode(
                frames, os.path.join(tmp, "episode.mp4"), fps=rate, crf=18, preset="veryfast"
            )
            return path.read_bytes()

    def score(
        self,
        video: Any,
        task: str,
        *,
        fps: float | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> ScoreResult:
        """Score one episode on the server; raises `RewardServerError` when the server refuses it.

        Args:
            video: the episode (see the class docstring).
            task: the instruction.
            fps: the rate of frames given directly.
            start, end: seconds: only that range of the episode.
        """
        is_file = video_io.is_video_source(video)
        form: dict[str, str] = {"task": task}
        if is_file:
            form.update({k: repr(float(v)) for k, v in (("start", start), ("end", end)) if v is not None})
            data = self.video_bytes(video)
        else:
            data = self.video_bytes(video, fps, start=start, end=end)
        response = self._request(
            "POST", "/score", files={"video": ("episode.mp4", data, "video/mp4")}, data=form
        )
        if response.status_code != 200:
            raise RewardServerError(response.status_code, _detail(response))
        body = response.json()
        return ScoreResult(
            score=int(body["score"]),
            probs=tuple(float(p) for p in body["probs"]),  # type: ignore[arg-type]
            expected=float(body["expected"]),
            reward=float(body["reward"]),
        )

    def score_batch(
        self,
        videos: Sequence[Any],
        tasks: Sequence[str] | str,
        *,
        fps: float | Sequence[float | None] | None = None,
        starts: Sequence[float | None] | None = None,
        ends: Sequence[float | None] | None = None,
        progress: bool = False,
    ) -> list[ScoreResult]:
        """Score many episodes, ``concurrency`` requests at once so that the server batches them.

        Args:
            videos, tasks, fps, starts, ends, progress: as for `roboreward.models.RewardScorer`.
        """
        return score_many(
            self.score,
            videos,
            tasks,
            fps=fps,
            starts=starts,
            ends=ends,
            concurrency=self.concurrency,
            progress=progress,
        )

    def progress_curve(
        self,
        video: Any,
        task: str,
        *,
        points: int = 8,
        fps: float | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> ProgressCurve:
        """Score the K prefixes of an episode on the server (K requests; the last is the whole episode).

        Args:
            video, task, fps, start, end: the episode, as for `score`.
            points: K, the number of prefixes (1..256).
        """
        rate = fps or self.fps or video_io.DEFAULT_FRAMES_FPS
        return curve_by_requests(
            self, video, task, points=points, fps=fps, start=start, end=end, frames_fps=rate
        )

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            return self._http.request(method, f"{self.url}{path}", **kwargs)
        except httpx.HTTPError as exc:  # nothing listening, no answer in time, a dropped connection
            raise RewardServerError(None, f"no answer from the reward server {self.url}: {exc}") from None

    def health(self) -> dict[str, Any]:
        """The server's ``GET /health``: status, model, its settings and counters."""
        response = self._request("GET", "/health")
        if response.status_code != 200:
            raise RewardServerError(response.status_code, _detail(response))
        return response.json()


def _detail(response: Any) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except (ValueError, AttributeError):
        return response.text
