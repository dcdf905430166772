"""The write lock of a dataset folder: one build or relabel writes a folder at a time.

A second writer fails at once with a ValueError naming the lock file and its holder (pid, host,
start time, command line) instead of racing the first one into a half-written folder. The lock is
an OS file lock (`filelock`, which `datasets` uses too), released even when its holder is killed;
it lives in the folder's work area (``.build/build.lock``, with ``build.lock.json`` naming the holder).

    >>> with output_lock("roboreward"):  # doctest: +SKIP
    ...     ...  # write the folder
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import filelock

from roboreward.dataset.folder import BUILD_DIR

__all__ = ["LOCK_HOLDER_NAME", "LOCK_NAME", "check_unlocked", "output_lock"]

#: Held while a build or relabel writes the folder.
LOCK_NAME = f"{BUILD_DIR}/build.lock"
#: Who holds the lock: pid, host, start time, command line (written once the lock is held).
LOCK_HOLDER_NAME = f"{BUILD_DIR}/build.lock.json"


#: The output locks this process holds, by lock path: `build` holds it around `export`, which takes it too.
_HELD_LOCKS: dict[str, filelock.BaseFileLock] = {}


@contextlib.contextmanager
def output_lock(out: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the lock on the output folder ``out`` while a build writes it (re-entrant in a process).

    A second build on the same folder fails at once with a ValueError naming the lock file and its
    holder (pid, host, start time, command), instead of racing the first one. The lock is an OS
    file lock (`filelock`), so it is released even when its holder is killed.
    """
    folder = Path(out)
    (folder / BUILD_DIR).mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    key = str(path.resolve())
    if key in _HELD_LOCKS:
        yield
        return
    lock = _acquire(folder)
    _HELD_LOCKS[key] = lock
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    (folder / LOCK_HOLDER_NAME).write_text(json.dumps({**holder, "command": " ".join(sys.argv)}) + "\n")
    try:
        yield
    finally:
        del _HELD_LOCKS[key]
        (folder / LOCK_HOLDER_NAME).unlink(missing_ok=True)
        lock.release()


def check_unlocked(out: str | os.PathLike[str]) -> None:
    """Raise the ValueError of `output_lock` now if another build holds ``out`` (creates nothing)."""
    folder = Path(out)
    path = folder / LOCK_NAME
    if path.exists() and str(path.resolve()) not in _HELD_LOCKS:
        _acquire(folder).release()


def _acquire(folder: Path) -> filelock.BaseFileLock:
    path = folder / LOCK_NAME
    lock = filelock.FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise ValueError(
            f"{folder} is being written by another build ({_lock_holder(folder)}): it holds the lock {path}; "
            "wait for it to finish or stop it"
        ) from None
    return lock


def _lock_holder(folder: Path) -> str:
    try:
        holder = json.loads((folder / LOCK_HOLDER_NAME).read_text())
        return f"pid {holder['pid']} on {holder['host']} since {holder['since']}: {holder['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"
