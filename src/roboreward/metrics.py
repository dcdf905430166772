"""Load the toolkit's `evaluate` metric modules from anywhere.

The modules live in the repository's ``metrics/`` folder, Space-ready, and are the single source of
truth for RoboRewardBench's numbers: the library loads them and never copies their formulas. A wheel
carries them inside the package; `roboreward.resources` finds them in any install.

    >>> from roboreward import metrics
    >>> metrics.load("mae").compute(predictions=[5, 4], references=[5, 2])
    {'mae': 1.0, 'invalid': 0}
"""

from __future__ import annotations

from typing import Any

from roboreward.resources import PACKAGE_DATA, resource_dir

__all__ = ["METRICS_DIR", "available", "load"]

#: The evaluate modules: the installed package's copy, else the repository's metrics/ folder.
METRICS_DIR = resource_dir("metrics")


def available() -> list[str]:
    """Names of the metric modules found in `METRICS_DIR` (a folder ``name/`` holding ``name.py``)."""
    if not METRICS_DIR.is_dir():
        return []
    return sorted(p.name for p in METRICS_DIR.iterdir() if (p / f"{p.name}.py").is_file())


def load(name: str, **kwargs: Any) -> Any:
    """``evaluate.load`` of ``metrics/<name>`` by absolute path, so it works from any working directory.

    ``kwargs`` go to ``evaluate.load``. Unless told otherwise (or running with ``num_process > 1``) the
    module keeps its inputs in memory: the toolkit computes in one process, and evaluate's on-disk cache
    keeps a file lock after a compute that raises, which stalls the next compute for a second. Each call
    returns a fresh module (loading takes milliseconds), so callers never share its state.

        >>> win = load("mean_win_rate")
        >>> out = win.compute(
        ...     predictions=[[5, 3], [2, 2]], references=[5, 1], subsets=["a", "a"], model_names=["x", "y"]
        ... )
        >>> out["mean_win_rate"]
        {'x': 1.0, 'y': 0.0}
    """
    import evaluate

    if not METRICS_DIR.is_dir():
        raise FileNotFoundError(
            f"the metrics folder {METRICS_DIR} is missing: a wheel carries the evaluate modules as "
            f"roboreward/{PACKAGE_DATA}/metrics and an editable install reads the repository's metrics/; "
            "reinstall the toolkit (`pip install .`, or `pip install -e .` from its repository)"
        )
    if name not in available():
        raise ValueError(f"unknown metric {name!r}; available in {METRICS_DIR}: {', '.join(available())}")
    if kwargs.get("num_process", 1) == 1:
        kwargs.setdefault("keep_in_memory", True)
    return evaluate.load(str(METRICS_DIR / name), **kwargs)
