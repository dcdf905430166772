"""The one place the toolkit reads environment variables: each variable has one function here, and no
other module looks it up in ``os.environ``.

- ``HF_HUB_OFFLINE``: `hub_offline` (no Hub request at all); a flag is on by `is_true`, the rule
  ``huggingface_hub`` itself applies (``1``, ``true``, ``yes``, ``on``, any case);
- ``OPENAI_API_KEY``: `openai_api_key`, the bearer token sent to OpenAI-compatible servers;
- ``ROBOREWARD_SERVE_TOKEN``: `serve_token`, the bearer token of a ``roboreward serve`` server (what
  the server requires and what its client sends);
- ``ROBOREWARD_MODEL``: `model_spec`, the reward model the Space serves; `with_model_spec` is the
  environment that hands one to a child process;
- the launcher's process count (``WORLD_SIZE`` from accelerate / torchrun, or MPI's): `launcher_world_size`.

A variable set to blanks counts as unset.

    >>> is_true(" Yes "), is_true("0"), is_true(None)
    (True, False, False)
    >>> with_model_spec("runs/3b", {"PATH": "/usr/bin"})
    {'PATH': '/usr/bin', 'ROBOREWARD_MODEL': 'runs/3b'}
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = [
    "MODEL_ENV",
    "OFFLINE_ENV",
    "OPENAI_KEY_ENV",
    "SERVE_TOKEN_ENV",
    "TRUE_VALUES",
    "WORLD_SIZE_VARIABLES",
    "hub_offline",
    "is_true",
    "launcher_world_size",
    "model_spec",
    "openai_api_key",
    "serve_token",
    "with_model_spec",
]

#: ``huggingface_hub``'s switch for no network at all.
OFFLINE_ENV = "HF_HUB_OFFLINE"
#: The bearer token of OpenAI-compatible servers.
OPENAI_KEY_ENV = "OPENAI_API_KEY"
#: The bearer token of a ``roboreward serve`` server.
SERVE_TOKEN_ENV = "ROBOREWARD_SERVE_TOKEN"
#: The reward model the Space (``spaces_demo/app.py``) serves.
MODEL_ENV = "ROBOREWARD_MODEL"
#: The variables through which launchers (accelerate and torchrun, MPI) give the number of processes.
WORLD_SIZE_VARIABLES = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
#: The values (stripped, any case) that turn a flag variable on: ``huggingface_hub``'s own rule.
TRUE_VALUES = ("1", "true", "yes", "on")


def is_true(value: str | None) -> bool:
    """Whether a flag variable's value turns it on: one of `TRUE_VALUES`, blanks and case ignored.

    Args:
        value: the variable's text (None: unset).
    """
    return value is not None and value.strip().lower() in TRUE_VALUES


def _text(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value is not None and value.strip() else None


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` asks for no network at all (`is_true`)."""
    return is_true(os.environ.get(OFFLINE_ENV))


def openai_api_key() -> str | None:
    """``$OPENAI_API_KEY``: the bearer token for OpenAI-compatible servers (None when unset or blank)."""
    return _text(OPENAI_KEY_ENV)


def serve_token() -> str | None:
    """``$ROBOREWARD_SERVE_TOKEN``: the bearer token of a ``roboreward serve`` server (None when unset
    or blank)."""
    return _text(SERVE_TOKEN_ENV)


def model_spec(default: str | None = None) -> str | None:
    """``$ROBOREWARD_MODEL``: the reward model to serve (a folder or a Hub id), else ``default``.

    Args:
        default: what to return when the variable is unset or blank.
    """
    return _text(MODEL_ENV) or default


def with_model_spec(spec: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child process that serves ``spec`` (``ROBOREWARD_MODEL`` set to it).

    Args:
        spec: the reward model (a folder or a Hub id).
        environ: the environment to extend (None: this process's).
    """
    return {**(os.environ if environ is None else environ), MODEL_ENV: os.fspath(spec)}


def launcher_world_size() -> int:
    """How many processes a launcher (``accelerate launch``, torchrun, MPI) started, 1 without one.

    The largest of `WORLD_SIZE_VARIABLES`; a value that is not a whole number counts as 1.
    """
    sizes = [os.environ.get(name, "").strip() for name in WORLD_SIZE_VARIABLES]
    return max([int(size) for size in sizes if size.isdigit()] + [1])
