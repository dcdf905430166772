"""The house: folders that show the layers, one name per job, and the old module paths for one release."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings
from collections import defaultdict
from pathlib import Path

import pytest

from roboreward._imports import MOVED

SRC = Path(__file__).parent.parent / "src" / "roboreward"

#: The ground floor: the only modules at the top of the package (everything else is a package).
GROUND_FLOOR = {
    "__init__.py",
    "_imports.py",
    "config.py",
    "environ.py",
    "episode.py",
    "extras.py",
    "locate.py",
    "metrics.py",
    "resources.py",
    "rubric.py",
    "video.py",
    "py.typed",
}
PACKAGES = {
    "apps",
    "bench",
    "cli",
    "dataset",
    "models",
    "relabel",
    "review",
    "serving",
    "sim",
    "sources",
    "testing",
    "training",
}


def test_the_top_level_holds_only_the_ground_floor_and_packages():
    entries = {p.name for p in SRC.iterdir() if p.name != "__pycache__" and not p.name.endswith(".egg-info")}
    assert entries == GROUND_FLOOR | PACKAGES
    assert all((SRC / name / "__init__.py").is_file() for name in PACKAGES)


def test_no_two_modules_share_a_name_for_different_jobs():
    """A stem names one module, but for the command modules under cli/commands/, which are named after
    their command (TRL's cli/commands/<command>.py) and only parse, call and print."""
    stems = defaultdict(list)
    for path in SRC.rglob("*.py"):
        if path.name != "__init__.py" and path.parent.name != "commands":
            stems[path.stem].append(path.relative_to(SRC).as_posix())
    for name in PACKAGES:
        stems[name].append(f"{name}/")
    assert {stem: where for stem, where in stems.items() if len(where) > 1} == {}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_module_path_imports_the_new_module_with_a_deprecation_warning(old):
    code = (
        "import importlib, warnings\n"
        "warnings.simplefilter('error', DeprecationWarning)\n"
        f"try:\n    importlib.import_module({old!r})\n"
        "except DeprecationWarning as exc:\n    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == (
        f"{old} moved to {MOVED[old]}; the old path will be removed in the next release"
    ), done.stderr[-2000:]


def test_the_old_path_is_the_new_module_itself():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = importlib.import_module("roboreward.sources.lerobot_layout")
    assert old is importlib.import_module("roboreward.sources.lerobot.layout")
    assert sorted(set(MOVED.values())) == sorted(
        v for v in set(MOVED.values()) if (SRC.parent / (v.replace(".", "/") + ".py")).is_file()
    )


def test_the_package_reexports_resolve():
    import roboreward

    for name in roboreward.__all__:
        assert getattr(roboreward, name) is not None, name
    for package in PACKAGES - {"cli", "relabel", "review", "sim", "sources"}:
        module = importlib.import_module(f"roboreward.{package}")
        for name in getattr(module, "__all__", []):
            if package == "apps" and name.endswith("RewardWrapper"):
                pytest.importorskip("gymnasium")
            assert getattr(module, name) is not None, f"roboreward.{package}.{name}"
