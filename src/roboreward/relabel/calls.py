"""Model calls as the stages make them: cached on disk, counted per stage, retried with feedback.

`ModelCalls.ask` is one cached call; `ModelCalls.ask_valid` asks until the answer passes its
`schema` parser, at most ``1 + max_retries`` times, each retry carrying the reason of the last
rejection (`prompts.retry`), so a deterministic model is asked something new. A call that gets no
answer at all (an endpoint down after its own retries, a model that raised) raises `StageError`:
the stage then gives no rows for that episode, nothing is cached, and a re-run asks again.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from roboreward.relabel import prompts
from roboreward.relabel.backends import Backend, TransformersBackend, parse_backend
from roboreward.relabel.cache import CallCache, call_key, frames_digest
from roboreward.relabel.recipe import RelabelConfig
from roboreward.relabel.schema import Rejected

__all__ = ["COUNTERS", "Counters", "ModelCalls", "StageError"]

#: What `relabel_report.json` counts per stage.
COUNTERS = (
    "episodes",  # source episodes the stage looked at
    "calls",  # model calls made (cache misses)
    "cache_hits",  # model calls answered from the cache
    "retries",  # calls that re-asked after a rejected answer
    "proposed",  # valid proposals (rewrites, ladder rungs, paraphrases, clips)
    "accepted",  # rows written
    "rejected_by_check",  # counterfactuals the VLM checker said "no" to
    "unparseable",  # answers with no JSON object (or no rubric score, for a clip judge)
    "invalid",  # JSON, but not what was asked for
    "dropped",  # given up after max_retries (a ladder's levels, a rewrite, a clip, ...)
    "errors",  # calls without an answer (endpoint down, model raised) and unreadable videos
)
MAX_ERRORS_KEPT = 20


class StageError(RuntimeError):
    """A model call that got no answer: the stage gives nothing for this episode (a re-run retries)."""


class Counters:
    """Thread-safe per-stage counters, plus the first error messages for the report."""

    def __init__(self, stages: Iterable[str]):
        self._counts: dict[str, Counter[str]] = {s: Counter() for s in stages}
        self._errors: list[str] = []
        self._lock = threading.Lock()

    def add(self, stage: str, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts.setdefault(stage, Counter())[key] += n

    def error(self, stage: str, message: str) -> None:
        with self._lock:
            self._counts.setdefault(stage, Counter())["errors"] += 1
            if len(self._errors) < MAX_ERRORS_KEPT and message not in self._errors:
                self._errors.append(message)

    def stages(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {s: {k: c.get(k, 0) for k in COUNTERS} for s, c in self._counts.items()}

    def errors(self) -> list[str]:
        with self._lock:
            return list(self._errors)


class ModelCalls:
    """The backends of a run (one object per distinct spec), the cache and the counters."""

    def __init__(self, config: RelabelConfig, cache: CallCache, counters: Counters):
        self.config = config
        self.cache = cache
        self.counters = counters
        self._roles: dict[str, Backend] = {}
        self._by_spec: dict[Any, Backend] = {}
        self._lock = threading.Lock()

    def backend(self, role: str) -> Backend:
        """The ``vlm`` or ``llm`` backend, made on first use (equal specs share one object)."""
        spec = self.config.vlm if role == "vlm" else self.config.llm
        key = spec if isinstance(spec, str) else repr(spec) if isinstance(spec, (list, tuple)) else id(spec)
        with self._lock:
            if role not in self._roles:
                if key not in self._by_spec:
                    self._by_spec[key] = parse_backend(
                        spec,
                        timeout=self.config.timeout,
                        retries=self.config.request_retries,
                        device=self.config.device,
                        video_input=self.config.video_input,
                    )
                backend = self._by_spec[key]
                if role == "vlm" and isinstance(backend, TransformersBackend) and not backend.is_vlm:
                    raise ValueError(
                        f"the VLM {backend.name} is a text-only model: give an image-text-to-text model"
                    )
                self._roles[role] = backend
            return self._roles[role]

    def loaded(self) -> dict[str, str]:
        """Role -> model name of the backends made so far."""
        with self._lock:
            return {role: backend.name for role, backend in self._roles.items()}

    def ask(
        self,
        stage: str,
        counter: str,
        backend: Any,
        prompt: str,
        frames: np.ndarray | None = None,
        fps: float | None = None,
        call: Callable[[str], str] | None = None,
        options: dict[str, Any] | None = None,
    ) -> str:
        """One cached call of ``backend`` (``call(prompt)`` instead of ``backend.complete`` when given),
        counted under ``counter``; raises StageError when it gets no answer. ``options``: what else
        decides the answer, for its cache key (a judge's scoring)."""
        max_new_tokens = self.config.max_new_tokens
        key = call_key(
            stage,
            backend.name,
            prompts.VERSIONS[stage],
            prompt,
            frames_digest(frames),
            {"max_new_tokens": max_new_tokens, **(options or {})},
        )
        cached = self.cache.get(key)
        if cached is None:
            # Single-flight: two episodes of one task (or two tasks of a distributed build) asking the
            # same call at once ask the model once; the second reads the first one's answer.
            with self.cache.claim(key):
                cached = self.cache.get(key)
                if cached is None:
                    return self._call(stage, counter, backend, prompt, frames, fps, call, key)
        self.counters.add(counter, "cache_hits")
        return cached

    def _call(
        self,
        stage: str,
        counter: str,
        backend: Any,
        prompt: str,
        frames: np.ndarray | None,
        fps: float | None,
        call: Callable[[str], str] | None,
        key: str,
    ) -> str:
        """Ask the model (``call`` or ``backend.complete``) and cache its answer under ``key``."""
        self.counters.add(counter, "calls")
        try:
            if call is not None:
                answer = call(prompt)
            else:
                answer = backend.complete(stage, prompt, frames, self.config.max_new_tokens, fps)
            answer = str(answer)
        except Exception as exc:  # no answer: counted, not cached, asked again on a re-run
            self.counters.error(counter, f"{stage} call to {backend.name} failed: {exc}")
            raise StageError(f"{stage} call to {backend.name} failed: {exc}") from exc
        self.cache.put(
            key, answer, {"stage": stage, "model": backend.name, "version": prompts.VERSIONS[stage]}
        )
        return answer

    def ask_valid(
        self,
        stage: str,
        counter: str,
        backend: Any,
        prompt: str,
        parse: Callable[[str], Any],
        frames: np.ndarray | None = None,
        fps: float | None = None,
        call: Callable[[str], str] | None = None,
        options: dict[str, Any] | None = None,
    ) -> Any:
        """The parsed answer, asking again (with the rejection's reason) up to ``max_retries`` times;
        None when every answer was rejected (each one counted as unparseable or invalid)."""
        request = prompt
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                self.counters.add(counter, "retries")
            value = parse(self.ask(stage, counter, backend, request, frames, fps, call, options))
            if not isinstance(value, Rejected):
                return value
            self.counters.add(counter, value.kind)
            request = prompts.retry(prompt, value.reason, attempt + 1)
        return None
