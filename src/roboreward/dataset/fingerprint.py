"""Fresh reads of local dataset folders: content fingerprints that `datasets`' cache key sees.

`datasets.load_dataset(folder)` caches its Arrow copy of a folder under a key made from the card's
YAML (``configs`` and ``dataset_info``), not from the data files: a folder rebuilt in place with a
task changed (same length, so the same split sizes) was served from the old cache. Two fixes:

- `content_fingerprint` of a built folder's shards goes into the card's config
  (``description``, a `BuilderConfig` field that `datasets` hashes into the cache key), so anyone's
  ``load_dataset(folder)`` reads a rebuilt folder afresh;
- the toolkit's own loaders go through `load_dataset`, which does the same from the files' names,
  sizes and modification times, so they read the current files of any local folder, built by this
  version or not (the public release's layout included).

Each fingerprint gets its own cache folder; the older ones stay until the datasets cache is cleaned.

    >>> from roboreward.dataset.fingerprint import load_dataset
    >>> load_dataset("./roboreward", split="test")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["content_fingerprint", "files_fingerprint", "load_dataset"]

_CHUNK = 2**20


def content_fingerprint(folder: str | os.PathLike[str], files: Iterable[Path]) -> str:
    """SHA-256 (first 16 hex digits) of the names (relative to ``folder``) and bytes of ``files``.

    Deterministic: the same files give the same fingerprint on any machine. A built folder's is
    `roboreward.dataset.folder.DatasetFolder.content_fingerprint` (its shards).

    Args:
        folder: the folder the names are taken relative to.
        files: the files to hash (in any order).
    """
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def files_fingerprint(folder: str | os.PathLike[str]) -> str:
    """SHA-256 (first 16 hex digits) of every file's path, size and modification time under
    ``folder`` (hidden files and folders, such as the builder's ``.build``, left out): cheap, and
    different after any rewrite of a file."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(f for f in files if not f.startswith(".")):
            stat = os.stat(os.path.join(root, name))
            rel = Path(root, name).relative_to(folder).as_posix()
            digest.update(f"{rel}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()[:16]


def load_dataset(path: str, *args: Any, **kwargs: Any) -> Any:
    """`datasets.load_dataset`, never served from a cache of an older version of a local folder.

    For a local folder the config's ``description`` carries `files_fingerprint`, which `datasets`
    puts into the cache folder's name; Hub ids and files are loaded as `datasets` does.
    """
    import datasets

    if os.path.isdir(path) and "description" not in kwargs:
        kwargs["description"] = f"roboreward files fingerprint {files_fingerprint(path)}"
    return datasets.load_dataset(path, *args, **kwargs)
