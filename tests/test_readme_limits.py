"""The README's reliability table states each bound as the constant it names holds."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Reliability: limits, and what each command does with bad input"


def _table_rows() -> list[tuple[str, str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[2].startswith("`") and cells[0] != "---":
            rows.append((cells[0], cells[1], cells[2].strip("`")))
    return rows


def _space_constant(name: str) -> Any:
    """A module-level literal of spaces_demo/app.py, read without importing gradio."""
    tree = ast.parse((ROOT / "spaces_demo" / "app.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise KeyError(name)


def _resolve(path: str) -> Any:
    """``module.NAME.attr``, ``module.Class.field`` (a dataclass default), ``module.func(param)``
    (a parameter's default) or ``spaces_demo/app.py:NAME``."""
    if path.startswith("spaces_demo/app.py:"):
        return _space_constant(path.split(":", 1)[1])
    parameter = None
    if path.endswith(")"):
        path, parameter = path[:-1].split("(")
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            value = getattr(value, attribute)
        break
    if parameter is not None:
        return inspect.signature(value).parameters[parameter].default
    return value


def test_every_bound_in_the_readme_is_the_constant_it_names():
    rows = _table_rows()
    assert len(rows) >= 20
    for what, stated, path in rows:
        written = re.match(r"[\d,]+(\.\d+)?", stated).group(0).replace(",", "")
        number = float(written) if "." in written else int(written)
        assert number == _resolve(path), (what, stated, path)
