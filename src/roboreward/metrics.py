"""Load the toolkit's `evaluate` metric modules from anywhere.

The modules live in the repository's ``metrics/`` folder, Space-ready, and are the single source of
truth for RoboRewardBench's numbers: the library loads them and never copies their formulas.

    >>> from roboreward import metrics
    >>> metrics.load("mae").compute(predictions=[5, 4], references=[5, 2])
    {'mae': 1.0, 'invalid': 0}
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["METRICS_DIR", "available", "load"]

#: The repository's metrics/ folder, next to src/.
METRICS_DIR = Path(__file__).resolve().parents[2] / "metrics"


def available() -> list[str]:
    """Names of the metric modules found in `METRICS_DIR`."""
    if not METRICS_DIR.is_dir():
        return []
    return sorted(p.name for p in METRICS_DIR.iterdir() if (p / f"{p.name}.py").is_file())


@cache
def load(name: str, **kwargs: Any) -> Any:
    """``evaluate.load`` of ``metrics/<name>`` by absolute path (cached per name and arguments)."""
    import evaluate

    if not METRICS_DIR.is_dir():
        raise FileNotFoundError(
            f"the metrics folder {METRICS_DIR} is missing: roboreward.metrics needs the repository's "
            "metrics/ (install the toolkit from its repository with `pip install -e .`)"
        )
    if name not in available():
        raise ValueError(f"unknown metric {name!r}; available: {available()}")
    return evaluate.load(str(METRICS_DIR / name), **kwargs)
