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

import functools
import importlib
from types import ModuleType
from typing import Any

__all__ = ["EXTRAS", "MissingExtraError", "refusing_blocks", "require"]

#: Extra -> the modules it brings (pyproject.toml's [project.optional-dependencies] say the versions).
EXTRAS = {
    "serve": ("fastapi", "uvicorn", "multipart"),
    "space": ("gradio",),
    "rl": ("gymnasium",),
    "train": ("deepspeed",),
    "plots": ("matplotlib",),
    "pusht": ("gym_pusht", "shapely"),
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


@functools.cache
def refusing_blocks() -> type:
    """A ``gr.Blocks`` (extra ``space``) whose refusals of a request's inputs are answers, not tracebacks.

    Gradio checks a request's inputs before the app's function runs: a server path that was not
    uploaded (``/etc/passwd``, ``../``), text where a file goes, a value outside a radio's choices, too
    few inputs. Plain ``gr.Blocks`` answers most of these ``{"error": null}`` and logs a traceback for
    each, so a caller cannot tell a refusal from a crash and the log fills. Here each is a ``gr.Error``
    that says what was refused, logged without a traceback. The Space and ``roboreward review`` use it;
    a subclass may word `not_uploaded` and `wrong_input` for its page.
    """
    gr = require("gradio", "space")
    from gradio.exceptions import InvalidPathError

    class RefusingBlocks(gr.Blocks):
        not_uploaded = "Only uploaded files are taken: that file was not uploaded."
        wrong_input = "This request's inputs are not what the app takes"

        async def preprocess_data(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return await super().preprocess_data(*args, **kwargs)
            except gr.Error as exc:  # a component's own refusal (a radio value not among its choices)
                raise gr.Error(exc.message, print_exception=False) from None
            except InvalidPathError:
                raise gr.Error(self.not_uploaded, print_exception=False) from None
            except ValueError as exc:  # a path or text where a file goes, too few inputs
                first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
                detail = "" if self.wrong_input.endswith(".") else f": {first}"
                raise gr.Error(self.wrong_input + detail, print_exception=False) from None

    return RefusingBlocks
