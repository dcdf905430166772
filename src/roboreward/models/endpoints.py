"""Many requests over several endpoints: `EndpointPool` routes each call, `ordered_map` runs them at once.

Several servers (vLLM, SGLang, ``transformers serve``) serving the same model form a pool: each call
goes to the least busy member (ties in turn), and to the next one when a member is down. Calls go
out ``concurrency`` at a time from threads (`ordered_map`), their answers come back in input order,
and the first failure stops the rest.

    >>> list(ordered_map(lambda x: x * x, range(5), concurrency=3))
    [0, 1, 4, 9, 16]
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from roboreward.models.openai_chat import BackendError

__all__ = ["EndpointPool", "ordered_map", "score_many"]

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], concurrency: int = 1) -> Iterator[R]:
    """``fn`` over ``items`` on ``concurrency`` threads, yielding the results in input order.

    At most ``2 * concurrency`` calls are submitted ahead of the one being yielded, so a long input
    is never all in flight; an exception from ``fn`` is raised at its item and the calls not yet
    started are cancelled.

    Args:
        fn: the call (it must be thread-safe).
        items: its inputs.
        concurrency: calls in flight at once (1: one after another, in this thread).
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    if concurrency == 1:
        yield from map(fn, items)
        return
    pending: deque[Future[R]] = deque()
    source = iter(items)
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="roboreward-call") as pool:
        try:
            for item in source:
                pending.append(pool.submit(fn, item))
                if len(pending) >= 2 * concurrency:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def score_many(
    score: Callable[..., R],
    videos: Sequence[Any],
    tasks: Sequence[str] | str,
    *,
    fps: Any = None,
    starts: Sequence[float | None] | None = None,
    ends: Sequence[float | None] | None = None,
    concurrency: int = 1,
    progress: bool = False,
) -> list[R]:
    """``score(video, task, fps=, start=, end=)`` per episode, ``concurrency`` at a time, the results in
    order: the ``score_batch`` of models that score each episode by a request
    (`roboreward.models.remote.RewardClient`, `roboreward.models.served.ServedRewardModel`).

    Args:
        score: one episode's call.
        videos: the episodes.
        tasks: one task per video, or one for all.
        fps: the rate of frames given directly: one value, or one per video.
        starts, ends: one range per video in seconds (None: whole videos).
        concurrency: calls in flight at once.
        progress: show a progress bar.
    """
    videos = list(videos)
    n = len(videos)
    tasks = [tasks] * n if isinstance(tasks, str) else list(tasks)
    rates = list(fps) if isinstance(fps, (list, tuple)) else [fps] * n
    starts = [None] * n if starts is None else list(starts)
    ends = [None] * n if ends is None else list(ends)
    if not n == len(tasks) == len(rates) == len(starts) == len(ends):
        raise ValueError(
            f"got {n} videos, {len(tasks)} tasks, {len(rates)} frame rates, {len(starts)} starts "
            f"and {len(ends)} ends"
        )
    items = list(zip(videos, tasks, rates, starts, ends, strict=True))
    results = ordered_map(
        lambda it: score(it[0], it[1], fps=it[2], start=it[3], end=it[4]), items, concurrency
    )
    if not progress:
        return list(results)
    from tqdm.auto import tqdm

    return list(tqdm(results, total=n, unit="episode", desc="scoring"))


class EndpointPool:
    """Several endpoints serving the same model: each call goes to the least busy member (ties in
    turn), and to the next one when a member is down (connection errors, timeouts, 429 / 5xx).

    It is a relabeling backend (``complete``) like its members, and routes any other call with `call`.
    """

    def __init__(self, members: Sequence[Any]):
        """Args:
        members: the endpoints (`roboreward.models.openai_chat.OpenAIChat` or anything with a
            ``name``); they must serve the same model.
        """
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

    def call(self, fn: Callable[[Any], R]) -> R:
        """``fn(member)`` on the least busy member; on the next one when it raises a retryable
        `BackendError` (the last member's error is raised).

        Args:
            fn: what to do with a member.
        """
        tried: set[int] = set()
        while True:
            index = self._take(tried)
            try:
                answer = fn(self.members[index])
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

    def complete(
        self,
        stage: str,
        prompt: str,
        frames: np.ndarray | None = None,
        max_new_tokens: int = 512,
        fps: float | None = None,
    ) -> str:
        """A member's free-text answer (the relabeling `Backend` interface).

        Args:
            stage, prompt, frames, max_new_tokens, fps: as the members' ``complete``.
        """
        return self.call(lambda member: member.complete(stage, prompt, frames, max_new_tokens, fps))
