"""The release folders (metric modules, card templates, training recipes, the Space) are found through
`roboreward.resources` in any install: the package's copy in a wheel, the repository's otherwise."""

import ast
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import build_wheel

from roboreward import metrics, resources
from roboreward.dataset import cards

ROOT = Path(__file__).resolve().parents[1]


def test_an_editable_install_finds_the_repository_folders():
    for name in resources.SHIPPED:
        assert resources.resource_dir(name) == ROOT / name
    assert metrics.METRICS_DIR == ROOT / "metrics" and cards.TEMPLATES == ROOT / "model_cards"


def test_an_unknown_folder_is_refused():
    with pytest.raises(ValueError, match="unknown resource folder 'tests'"):
        resources.resource_dir("tests")


def test_no_module_finds_files_relative_to_its_own_location():
    for path in (ROOT / "src" / "roboreward").rglob("*.py"):
        if path.name != "resources.py":
            assert "parents[2]" not in path.read_text(), path


def test_setup_ships_the_same_folders_as_resources_finds():
    tree = ast.parse((ROOT / "setup.py").read_text())
    (shipped,) = [
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["SHIPPED"]
    ]
    assert shipped == resources.SHIPPED


@pytest.mark.slow
def test_a_wheel_carries_the_folders_and_its_install_finds_them(tmp_path):
    """Build a real wheel (no network: the running interpreter's setuptools), install it into a bare
    folder and import the toolkit from there, away from the repository."""
    pytest.importorskip("setuptools")
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "roboreward/_data/metrics/mae/mae.py",
        "roboreward/_data/metrics/mean_win_rate/mean_win_rate.py",
        "roboreward/_data/model_cards/dataset_card.md.j2",
        "roboreward/_data/model_cards/model_card.md.j2",
        "roboreward/_data/trl_training/sft.py",
        "roboreward/_data/trl_training/configs/tiny_cpu.yaml",
    } <= names
    assert not any("__pycache__" in n for n in names)
    target = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:  # what `pip install --target` lays out, without pip
        archive.extractall(target)
    probe = (
        "import roboreward, roboreward.metrics as m, roboreward.dataset.cards as c;"
        "print(roboreward.__file__); print(m.METRICS_DIR); print(c.TEMPLATES); print(m.available())"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(target)}
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, check=True, capture_output=True, text=True
    ).stdout.splitlines()
    assert out[0].startswith(str(target))
    assert out[1] == str(target / "roboreward" / "_data" / "metrics")
    assert out[2] == str(target / "roboreward" / "_data" / "model_cards")
    assert out[3] == (
        "['calibration_preference', 'mae', 'mean_win_rate', 'policy_ranking', 'preference_accuracy', "
        "'success_accuracy', 'success_detection']"
    )
