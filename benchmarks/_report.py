"""What every benchmark script shares: the machine it ran on, and writing its JSON report."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    return {"processor": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()}


def write_report(report: dict[str, Any], out: str | os.PathLike[str]) -> Path:
    """Write the report as JSON (with the machine added) and say where."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**report, "machine": machine()}, indent=2) + "\n")
    print(f"wrote {path}")
    return path
