"""The installed package's metadata declares every third-party module the library imports."""

import ast
import importlib.metadata as metadata
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "roboreward"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_top_level_modules() -> dict[str, set[str]]:
    """Top-level modules imported anywhere in the library (function-level imports too) -> files."""
    found: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(path.relative_to(ROOT).as_posix())
    return found


def _declared_distributions() -> set[str]:
    requires = metadata.requires("roboreward") or []
    runtime = [r for r in requires if "extra ==" not in r.replace("'", '"').replace('"', "")]
    return {_canonical(re.split(r"[\s;<>=!~\[(]", r, maxsplit=1)[0]) for r in runtime}


def test_installed_metadata_matches_pyproject():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_canonical(re.split(r"[\s;<>=!~\[(]", r, maxsplit=1)[0]) for r in project["dependencies"]}
    assert _declared_distributions() == declared, "reinstall with `pip install -e .[dev]`"
    assert metadata.entry_points(group="console_scripts", name="roboreward")


def _optional_extras() -> set[str]:
    """Distributions of the optional extras users opt into (``pusht``), from pyproject.toml: a module
    that imports one of them must say which extra to install when it is missing."""
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return {
        _canonical(re.split(r"[\s;<>=!~\[(]", r, maxsplit=1)[0])
        for name, requirements in extras.items()
        if name != "dev"
        for r in requirements
    }


def test_every_import_is_a_declared_dependency():
    providers = metadata.packages_distributions()
    declared = _declared_distributions() | _optional_extras()
    missing = {}
    for module, files in sorted(_imported_top_level_modules().items()):
        if module in sys.stdlib_module_names or module in ("roboreward", "__future__"):
            continue
        dists = {_canonical(d) for d in providers.get(module, [])}
        if not dists & declared:
            missing[module] = (sorted(dists) or ["<not installed>"], sorted(files))
    assert not missing, f"imported but not declared in pyproject.toml dependencies: {missing}"


def test_the_check_sees_function_level_imports():
    modules = _imported_top_level_modules()
    assert "decord" in modules  # imported lazily inside roboreward.video
    assert {"av", "numpy"} <= modules.keys()
