"""A disk cache of model calls, keyed by (stage, model id, prompt version, input hash).

One JSON file per call, written to a temporary name and renamed, so concurrent workers never see a
half-written entry and a process killed with SIGKILL loses only the calls that were in flight.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def call_key(stage: str, model: str, version: str, prompt: str, frames_digest: str = "") -> str:
    """The cache key of a call: everything that decides its answer."""
    payload = json.dumps([stage, model, version, prompt, frames_digest], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


class CallCache:
    """``get`` / ``put`` of model answers under ``root``."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        try:
            return json.loads(self._path(key).read_text(encoding="utf-8"))["answer"]
        except (OSError, ValueError, KeyError):
            return None

    def put(self, key: str, answer: str, meta: dict[str, Any]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"answer": answer, **meta}, f, ensure_ascii=False)
        os.replace(tmp, path)
