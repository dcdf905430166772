"""Optional dependencies, grouped in extras: a clear message naming the extra when one is missing.

``pip install roboreward`` brings what building, benchmarking, scoring and the cards need. The heavy
parts are extras (pyproject.toml): ``[serve]`` (fastapi, uvicorn, python-multipart), ``[space]``
(gradio: the Space and ``review``), ``[rl]`` (gymnasium), ``[train]`` (deepspeed), ``[plots]``
(matplotlib: bench's plots), ``[pusht]`` (gym-pusht: LeRobot's PushT simulator), ``[datatrove]``
(build and annotate as datatrove tasks, local or Slurm), ``[dev]`` (all of them and the test tools).

    >>> require("json", "serve").__name__
    'json'
    >>> try:
    ...     require("no_such_module_here", "serve")
    ... except MissingExtraError as exc:
    ...     print(str(exc).split(": ")[-1])
    pip install "roboreward[serve]"
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["EXTRAS", "MissingExtraError", "require"]

#: Extra -> the modules it brings (pyproject.toml's [project.optional-dependencies] say the versions).
EXTRAS = {
    "serve": ("fastapi", "uvicorn", "multipart"),
    "space": ("gradio",),
    "rl": ("gymnasium",),
    "train": ("deepspeed",),
    "plots": ("matplotlib",),
    "pusht": ("gym_pusht",),
    "datatrove": ("datatrove",),
}


class MissingExtraError(ImportError):
    """An optional dependency is missing; the message names the extra that brings it."""


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``, or fail saying which extra installs it.

    Args:
        module: the module to import, e.g. ``fastapi``.
        extra: the extra of the ``roboreward`` distribution that brings it, e.g. ``serve``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is not None and exc.name != module.split(".")[0] and exc.name != module:
            raise  # the module is there but one of its own imports failed: that error says more
        raise MissingExtraError(
            f'this needs {module}, which is not installed: pip install "roboreward[{extra}]"'
        ) from None
