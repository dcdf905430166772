"""The installed package's metadata declares every third-party module the library imports."""

import ast
import importlib.metadata as metadata
import os
import re
import subprocess
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


def _names(requirements: list[str]) -> set[str]:
    return {_canonical(re.split(r"[\s;<>=!~\[(]", r, maxsplit=1)[0]) for r in requirements}


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_every_import_is_a_declared_dependency():
    """Read from pyproject.toml itself: a core dependency, or one of an extra that roboreward.extras names."""
    from roboreward.extras import EXTRAS

    project = _pyproject()
    core = _names(project["dependencies"])
    extras = project["optional-dependencies"]
    optional_modules = {module: extra for extra, modules in EXTRAS.items() for module in modules}
    providers = metadata.packages_distributions()
    missing = {}
    for module, files in sorted(_imported_top_level_modules().items()):
        if module in sys.stdlib_module_names or module in ("roboreward", "__future__"):
            continue
        dists = {_canonical(d) for d in providers.get(module, [])}
        declared = _names(extras[optional_modules[module]]) if module in optional_modules else core
        if not dists & declared:
            missing[module] = (sorted(dists) or ["<not installed>"], sorted(files))
    assert not missing, f"imported but not declared in pyproject.toml (core or its extra): {missing}"


def test_heavy_parts_are_extras_and_dev_has_them_all():
    project = _pyproject()
    core, extras = _names(project["dependencies"]), project["optional-dependencies"]
    assert not {"gradio", "fastapi", "uvicorn", "gymnasium", "matplotlib", "deepspeed", "datatrove"} & core
    assert _names(extras["serve"]) == {"fastapi", "uvicorn", "python-multipart"}
    assert _names(extras["space"]) >= {"gradio", "pandas"}
    assert _names(extras["rl"]) == {"gymnasium"} and _names(extras["train"]) == {"deepspeed"}
    assert _names(extras["datatrove"]) == {"datatrove"}  # build/annotate --executor local|slurm
    assert "roboreward[serve,space,rl,plots,pusht,datatrove]" in extras["dev"]
    assert "pytest>=9.0" in extras["dev"]
    assert ".[dev]" in (ROOT / "Makefile").read_text()  # make test / make demo install what they need


def test_import_and_light_commands_work_without_the_extras(tmp_path):
    """gradio, fastapi, uvicorn, gymnasium and matplotlib hidden: `import roboreward`, `sim`, the reward
    server's client and the light modules work; a module that needs an extra names it."""
    hide = tmp_path / "hide"
    hide.mkdir()
    for name in ("gradio", "fastapi", "uvicorn", "gymnasium", "matplotlib"):
        (hide / f"{name}.py").write_text(f"raise ImportError('hidden', name={name!r})\n")
    code = (
        "import roboreward, roboreward.dataset.cards, roboreward.sim, roboreward.models.remote\n"
        "from roboreward.cli import main\n"
        f"assert main(['sim', '--out', {str(tmp_path / 'sim')!r}, '--episodes', '2']) == 0\n"
        "try:\n    import roboreward.serving.server\nexcept ImportError as exc:\n    print('SERVE', exc)\n"
        "try:\n    roboreward.sim.TabletopEnv\nexcept ImportError as exc:\n    print('RL', exc)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hide), str(ROOT / "src")])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert 'SERVE roboreward.serving.server needs fastapi: pip install "roboreward[serve]"' in done.stdout
    assert 'RL this needs gymnasium, which is not installed: pip install "roboreward[rl]"' in done.stdout
    assert "wrote 2 lerobot episodes to" in done.stdout


def test_the_check_sees_function_level_imports():
    modules = _imported_top_level_modules()
    assert "decord" in modules  # imported lazily inside roboreward.video
    assert {"av", "numpy"} <= modules.keys()
