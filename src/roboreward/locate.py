"""One rule for what a dataset or model argument names: a local folder or a Hub repository.

Every command that takes a dataset or a model (``bench``, ``sft.py``, ``review``, ``score``,
``serve``) resolves it here first, so a name means the same thing everywhere and fails fast:

- a name that looks like a path (``./x``, ``../x``, ``/x``, ``~/x``), or any name that is an
  existing folder, is that folder; a path-like name that is not a folder is "no such folder", at
  once, never a Hub look-up;
- a bare name (no ``/``) that is not a folder is "no such folder" too: Hub repositories are
  ``org/name``, and a bare name must never fall back to a cached dataset of that name;
- ``org/name`` that is not a folder is a Hub id: one quick request (a few seconds at most) checks
  that the Hub answers, so an unreachable Hub or a mistyped id fails now, saying what to do,
  instead of after minutes of retries. With ``HF_HUB_OFFLINE=1`` nothing is asked (the local cache
  is what the user chose).

    >>> resolve("/no/such/run", kind="model")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no such folder: /no/such/run (model)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from roboreward.environ import hub_offline

__all__ = ["HUB_TIMEOUT", "UnreachableHubError", "hub_offline", "looks_like_path", "resolve"]

#: Seconds the Hub gets to answer the check of an id.
HUB_TIMEOUT = 5.0

Kind = Literal["dataset", "model"]


class UnreachableHubError(OSError):
    """A Hub id that could not be checked: no network, the Hub down, or no such repository."""


def looks_like_path(name: str) -> bool:
    """Whether ``name`` is written as a path (``./``, ``../``, ``/``, ``~``, a Windows drive or ``\\``).

    >>> looks_like_path("./run-tiny"), looks_like_path("~/data"), looks_like_path("org/name")
    (True, True, False)
    """
    return name.startswith((".", "/", "~", "\\")) or (len(name) > 1 and name[1] == ":")


def resolve(name: str | os.PathLike[str], kind: Kind = "dataset", *, check_hub: bool = True) -> str:
    """The local folder ``name`` is, or the Hub id it is (checked reachable); never a guess.

    Args:
        name: what the user gave: a folder or a Hub id (``org/name``).
        kind: ``dataset`` or ``model``, for the Hub check and the messages.
        check_hub: ask the Hub whether the id exists (skipped when ``HF_HUB_OFFLINE`` is set).

    Returns:
        The folder's path as given (``~`` expanded), or the Hub id unchanged.

    Raises:
        FileNotFoundError: a path-like or bare name that is not a folder ("no such folder").
        UnreachableHubError: the Hub did not answer within `HUB_TIMEOUT` seconds, or has no such id.
    """
    text = os.fspath(name)
    local = Path(text).expanduser()
    if local.is_dir():
        return str(local)
    if looks_like_path(text) or local.exists():
        raise FileNotFoundError(f"no such folder: {text} ({kind})")
    if text.count("/") != 1 or not all(text.split("/")):
        raise FileNotFoundError(
            f"no such folder: {text} ({kind}; a Hub id has the form org/name, a folder is looked for "
            f"in {Path.cwd()})"
        )
    if check_hub and not hub_offline():
        _check_hub(text, kind)
    return text


def _check_hub(repo_id: str, kind: Kind) -> None:
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    advice = (
        f"give a local folder as ./{repo_id.split('/')[-1]}, or set HF_HUB_OFFLINE=1 to use a copy "
        "already in the Hugging Face cache"
    )
    try:
        huggingface_hub.HfApi().repo_info(repo_id, repo_type=kind, timeout=HUB_TIMEOUT)
    except GatedRepoError:
        return  # it exists; loading says what access it needs
    except RepositoryNotFoundError:
        raise UnreachableHubError(
            f"no {kind} {repo_id} on the Hub (or no access: `hf auth login`), and no such folder; {advice}"
        ) from None
    except Exception as exc:  # no network, DNS, timeout, the Hub down
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UnreachableHubError(
            f"cannot reach the Hub for {kind} {repo_id} within {HUB_TIMEOUT:g} s ({reason}); {advice}"
        ) from None
