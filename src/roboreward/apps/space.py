"""The Gradio Space (``spaces_demo/app.py``, shipped in the wheel) started from any install:
``roboreward space --model M`` and ``roboreward demo --serve``.

The app runs in this process (never a child), so a SIGTERM or Ctrl-C to the command stops the app
with it. gradio is checked before anything else is done, and a missing model is named with the flag
and the variable that set it.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
from types import ModuleType
from typing import Any

from roboreward.environ import MODEL_ENV, model_spec
from roboreward.extras import require
from roboreward.resources import resource_dir

__all__ = ["load_app", "resolve_model", "run_space"]


def load_app() -> ModuleType:
    """The Space's ``app.py`` as a module (gradio checked first: a missing one names the extra).

    Raises:
        MissingExtraError: gradio is not installed (``pip install "roboreward[space]"``).
        FileNotFoundError: the install lacks ``spaces_demo/app.py``.
    """
    require("gradio", "space")
    require("pandas", "space")
    path = resource_dir("spaces_demo") / "app.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall the toolkit (the wheel ships spaces_demo/)")
    spec = importlib.util.spec_from_file_location("roboreward_space_app", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def resolve_model(model: str | os.PathLike[str] | None) -> str:
    """The reward model to serve: ``model``, else ``$ROBOREWARD_MODEL``.

    Args:
        model: what ``--model`` was given (None: not given).

    Raises:
        ValueError: neither is set; the message says what to set.
    """
    spec = os.fspath(model) if model else model_spec()
    if not spec:
        raise ValueError(
            f"no reward model to serve: give --model SPEC or set {MODEL_ENV} (a checkpoint folder, a Hub id "
            "such as teetone/RoboReward-4B, openai+logprobs:URL#model, or a `roboreward serve` URL)"
        )
    return spec


def _stop_on_sigterm() -> None:
    """SIGTERM ends this process as Ctrl-C does (the server's threads go with it)."""

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def run_space(
    model: str | os.PathLike[str] | None,
    host: str = "127.0.0.1",
    port: int = 7860,
    examples: str | os.PathLike[str] | None = None,
    block: bool = True,
) -> Any:
    """Load the reward model and serve the Space on ``host:port`` in this process.

    Args:
        model: a reward-model spec (`roboreward.models.load_reward_model`), else ``$ROBOREWARD_MODEL``.
        host: the address to listen on.
        port: the port.
        examples: a JSONL file of ``{"video", "task"}`` rows shown under the inputs (None: two
            generated clips).
        block: wait until stopped (SIGTERM or Ctrl-C); False returns the running ``gr.Blocks``.
    """
    require("gradio", "space")  # first: a missing extra is said before anything is loaded
    spec = resolve_model(model)
    app = load_app()
    if examples:
        shown = app.read_examples(examples)
    else:
        import tempfile

        shown = app.example_videos(tempfile.mkdtemp(prefix="roboreward-examples-"))
    demo = app.build_demo(spec, examples=shown)
    if block:
        _stop_on_sigterm()
    print(f"serving the Space on {spec} at http://{host}:{port}/ (Ctrl-C or SIGTERM stops it)", flush=True)
    try:
        app.launch(demo, server_name=host, server_port=port, prevent_thread_lock=True, quiet=True)
        if block:
            demo.block_thread()  # returns, the server closed, on Ctrl-C or SIGTERM
    except KeyboardInterrupt:
        demo.close()
        print("stopped the Space", file=sys.stderr, flush=True)
    return demo
