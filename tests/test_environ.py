"""Environment variables are read in one place, `roboreward.environ`, with one rule for flags."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from roboreward import environ as env
from roboreward import locate
from roboreward.bench import parallel
from roboreward.models import settings
from roboreward.models.openai_chat import OpenAIChat

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "roboreward"
#: The variables `roboreward.environ` owns.
OWNED = {env.OFFLINE_ENV, env.OPENAI_KEY_ENV, env.SERVE_TOKEN_ENV, env.MODEL_ENV, *env.WORLD_SIZE_VARIABLES}
#: Modules still reading an owned variable themselves, each to switch to `roboreward.environ` (then drop it
#: here: the test fails while a listed module no longer reads one, so the list cannot go stale).
PENDING: dict[str, set[str]] = {}


@pytest.mark.parametrize("value", ["1", "true", "TRUE", " yes ", "On"])
def test_a_flag_is_on_for_1_true_yes_on_in_any_case(value, monkeypatch):
    assert env.is_true(value)
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert env.hub_offline() and locate.hub_offline()


@pytest.mark.parametrize("value", ["0", "false", "no", "off", "", "2", "enabled"])
def test_a_flag_is_off_for_anything_else(value, monkeypatch):
    assert not env.is_true(value)
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert not env.hub_offline()


def test_unset_flag_is_off(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert env.is_true(None) is False and env.hub_offline() is False


def test_checkpoint_settings_are_not_downloaded_offline_by_the_same_rule(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "on")  # models/settings.py used to ignore "on"
    monkeypatch.setattr(settings, "_hub_settings_file", lambda repo_id: None)
    asked = []
    monkeypatch.setattr("huggingface_hub.hf_hub_download", lambda *a, **k: asked.append(a))
    assert settings._stored_settings("org/not-cached", download=True) is None
    assert asked == []


def test_tokens_and_model_spec(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-1")
    monkeypatch.setenv("ROBOREWARD_SERVE_TOKEN", "  ")  # blanks count as unset
    monkeypatch.setenv("ROBOREWARD_MODEL", "runs/3b")
    assert env.openai_api_key() == "sk-1" and env.serve_token() is None
    assert env.model_spec("teetone/RoboReward-4B") == "runs/3b"
    assert OpenAIChat("http://localhost:8000/v1", "m").api_key == "sk-1"
    assert OpenAIChat("http://localhost:8000/v1", "m", api_key="given").api_key == "given"
    monkeypatch.delenv("ROBOREWARD_MODEL")
    assert env.model_spec("teetone/RoboReward-4B") == "teetone/RoboReward-4B" and env.model_spec() is None
    child = env.with_model_spec(Path("runs") / "x", {"HOME": "/h"})
    assert child == {"HOME": "/h", "ROBOREWARD_MODEL": str(Path("runs") / "x")}


@pytest.mark.parametrize(
    ("variables", "size"),
    [
        ({}, 1),
        ({"WORLD_SIZE": "4"}, 4),
        ({"OMPI_COMM_WORLD_SIZE": "2", "WORLD_SIZE": "x"}, 2),
        ({"PMI_SIZE": "0"}, 1),
    ],
)
def test_launcher_world_size(variables, size, monkeypatch):
    for name in env.WORLD_SIZE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert env.launcher_world_size() == size
    if size == 1:
        assert parallel.data_parallel().world_size == 1  # one process: no process group is set up


# ---------------------------------------------------------------------------------------------
# No other module reads them


def _is_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ"
    )


def _keys_read(tree: ast.AST) -> list[ast.AST]:
    """The key expressions of every environment access in a module."""
    keys: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            if _is_environ(node.func.value) or node.func.attr == "getenv":
                keys.append(node.args[0])  # os.environ.get(K), .setdefault, .pop, os.getenv(K)
        elif isinstance(node, ast.Subscript) and _is_environ(node.value):
            keys.append(node.slice)  # os.environ[K]
        elif isinstance(node, ast.Compare) and any(_is_environ(c) for c in node.comparators):
            keys.append(node.left)  # K in os.environ
        elif isinstance(node, ast.Dict) and any(
            k is None and _is_environ(v) for k, v in zip(node.keys, node.values, strict=True)
        ):
            keys.extend(k for k in node.keys if k is not None)  # {**os.environ, K: ...}
    return keys


def _module_file(module: str) -> Path | None:
    base = ROOT / "src" / Path(*module.split("."))
    return next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)


def _constant(path: Path, name: str, depth: int = 0) -> str | None:
    """The string a module-level name of ``path`` holds (following ``from M import name``)."""
    for node in ast.parse(path.read_text()).body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return node.value.value if isinstance(node.value, ast.Constant) else None
        if isinstance(node, ast.ImportFrom) and node.module and depth < 5:
            for alias in node.names:
                if (alias.asname or alias.name) == name and (found := _module_file(node.module)):
                    return _constant(found, alias.name, depth + 1)
    return None


def _read_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for key in _keys_read(tree):
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            names.add(key.value)
        elif isinstance(key, ast.Name):
            local = [
                n
                for n in ast.walk(tree)
                if isinstance(n, ast.ImportFrom) and any((a.asname or a.name) == key.id for a in n.names)
            ]
            names.add(_constant(path, key.id) if not local else _imported(local[0], key.id))
    return {name for name in names if name in OWNED}


def _imported(node: ast.ImportFrom, name: str) -> str | None:
    alias = next(a for a in node.names if (a.asname or a.name) == name)
    found = _module_file(node.module or "")
    return _constant(found, alias.name) if found else None


def test_the_reader_finds_each_form_of_access(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "import os\nfrom roboreward.environ import MODEL_ENV\nKEY = 'OPENAI_API_KEY'\n"
        "a = os.environ.get(KEY)\nb = os.getenv('HF_HUB_OFFLINE')\nc = os.environ[MODEL_ENV]\n"
        "d = 'WORLD_SIZE' in os.environ\ne = {**os.environ, 'ROBOREWARD_SERVE_TOKEN': 'x'}\n"
    )
    assert _read_names(module) == {
        "OPENAI_API_KEY",
        "HF_HUB_OFFLINE",
        "ROBOREWARD_MODEL",
        "WORLD_SIZE",
        "ROBOREWARD_SERVE_TOKEN",
    }


def test_no_module_but_environ_reads_these_variables():
    files = [*SRC.rglob("*.py"), ROOT / "spaces_demo" / "app.py"]
    readers = {
        str(path.relative_to(ROOT)): found
        for path in files
        if path != SRC / "environ.py" and (found := _read_names(path))
    }
    assert {k: v for k, v in readers.items() if k not in PENDING} == {}
    stale = {k for k in PENDING if readers.get(k) != PENDING[k]}
    assert not stale, f"these modules no longer read {PENDING}: remove them from PENDING: {stale}"
