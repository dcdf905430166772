"""A disk cache of model calls, keyed by (stage, model id, prompt version, input hash).

One JSON file per call under ``root/<2 hex>/<key>.json``, written to a temporary name in the same
folder and renamed (`os.replace` is atomic), so concurrent workers, threads or processes, never see
a half-written entry, and a process killed with SIGKILL loses only the calls that were in flight.
`CallCache.claim` makes a call single-flight: a second worker asking a call that another one (a
thread, or a process sharing the folder, such as the tasks of a distributed build) is asking waits
for it and reads its answer, instead of asking the model again. Failed calls are never
cached: a re-run asks again.

    >>> key = call_key("rewrite", "Qwen/Qwen3-4B-Instruct-2507", "rewrite-v2", "Rewrite: open the drawer")
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     cache = CallCache(folder)
    ...     before = cache.get(key)
    ...     cache.put(key, '{"task": "open the drawer"}')
    ...     before, cache.get(key)
    (None, '{"task": "open the drawer"}')
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import filelock
import numpy as np

__all__ = ["CallCache", "call_key", "frames_digest"]


def frames_digest(frames: np.ndarray | None) -> str:
    """sha256 of the frames' bytes and shape ("" without frames)."""
    if frames is None:
        return ""
    array = np.ascontiguousarray(frames)
    digest = hashlib.sha256(json.dumps([list(array.shape), str(array.dtype)]).encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def call_key(
    stage: str,
    model: str,
    version: str,
    prompt: str,
    frames: str = "",
    settings: dict[str, Any] | None = None,
) -> str:
    """The cache key of a call: everything that decides its answer (``frames`` is `frames_digest`,
    ``settings`` the generation settings such as ``max_new_tokens``)."""
    payload = json.dumps([stage, model, version, prompt, frames, settings or {}], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


class CallCache:
    """``get`` / ``put`` of model answers under ``root`` (created when missing)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    @contextlib.contextmanager
    def claim(self, key: str) -> Iterator[None]:
        """Hold call ``key`` while this worker asks it: another worker claiming it (another thread, or a
        process sharing ``root``) waits until it is released, then finds the answer with `get`. An OS
        file lock (`filelock`, as the dataset's write lock), released when its holder is killed; one
        lock file per 4-hex prefix of the key (at most 65,536, empty), so unrelated calls rarely wait.

        Args:
            key: the call's `call_key`.
        """
        path = self.root / key[:2] / f".{key[:4]}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with filelock.FileLock(path, thread_local=False):
            yield

    def get(self, key: str) -> str | None:
        """The cached answer, or None (never cached, or an unreadable entry)."""
        try:
            answer = json.loads(self._path(key).read_text(encoding="utf-8"))["answer"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return answer if isinstance(answer, str) else None

    def put(self, key: str, answer: str, meta: dict[str, Any] | None = None) -> None:
        """Store ``answer`` (with ``meta``, for people reading the cache) atomically."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"answer": answer, **(meta or {})}, f, ensure_ascii=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.json"))
