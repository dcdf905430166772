"""A regular install (issue 18): the wheel, installed into a fresh virtual environment that reuses the
installed dependencies, runs bench with baselines, card model and evaluate.load of a shipped metric
from an unrelated folder, with no trace of the checkout."""

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
from conftest import build_wheel, write_manifest

from roboreward.dataset.builder import BuildConfig, build

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(python, roboreward script) of a fresh venv holding the wheel; deps come from this environment."""
    root = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(root)
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # The dependencies installed here, as a plain path (no .pth of this environment runs there, so the
    # checkout's editable install is not seen).
    Path(purelib, "_reuse_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return python, env_dir / "bin" / "roboreward", wheel


def _run(command, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_wheel_carries_the_release_folders_and_declares_the_extras(installed):
    import zipfile

    _, _, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "roboreward/_data/metrics/mean_win_rate/mean_win_rate.py" in names
    assert "roboreward/_data/model_cards/model_card.md.j2" in names
    assert "roboreward/_data/trl_training/configs/tiny_cpu.yaml" in names
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert {
        "Provides-Extra: serve",
        "Provides-Extra: space",
        "Provides-Extra: rl",
        "Provides-Extra: dev",
    } <= set(text.splitlines())
    assert 'Requires-Dist: gradio>=6.31; extra == "space"' in text


def test_bench_card_and_evaluate_load_from_a_regular_install(installed, tmp_path):
    python, script, _ = installed
    rows = [{"video": f"ep{i}.mp4", "task": f"task {i}", "reward": 1 + i % 5} for i in range(4)]
    write_manifest(tmp_path, rows)
    data = tmp_path / "data"
    build(
        BuildConfig(
            manifest=[str(tmp_path / "m.jsonl")], out=str(data), split_ratios={"test": 1.0}, max_side=32
        )
    )
    elsewhere = tmp_path / "elsewhere"  # an unrelated folder: no metrics/ or model_cards/ around
    elsewhere.mkdir()

    bench = ["bench", "--dataset", str(data), "--model", "baseline:constant-3", "--model", "baseline:random"]
    out = _run([script, *bench, "--out", "b", "--json"], cwd=elsewhere)
    results = json.loads(out[out.index("{") :])
    assert set(results["models"]) == {"baseline:constant-3", "baseline:random"}
    assert results["num_examples"] == 4 and (elsewhere / "b" / "leaderboard.md").is_file()

    checkpoint = elsewhere / "run"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    (checkpoint / "training_summary.json").write_text(
        json.dumps({"base_model": "Qwen/Qwen2.5-VL-3B-Instruct"})
    )
    card = ["card", "model", "--checkpoint", "run", "--bench", "b", "--bench-model", "baseline:constant-3"]
    assert "wrote run/README.md" in _run([script, *card], cwd=elsewhere)
    text = (checkpoint / "README.md").read_text()
    assert "model-index" in text and "base_model: Qwen/Qwen2.5-VL-3B-Instruct" in text

    code = (
        "import evaluate, roboreward, roboreward.resources as r\n"
        "folder = r.resource_dir('metrics') / 'mae'\n"
        "m = evaluate.load(str(folder))\n"
        "print(roboreward.__file__, folder, m.compute(predictions=[1, 5], references=[2, 5])['mae'])\n"
    )
    package, folder, mae = _run([python, "-c", code], cwd=elsewhere).split()
    assert float(mae) == 0.5
    assert not package.startswith(str(ROOT)) and "site-packages" in package  # the wheel's, not the checkout
    assert folder.endswith("roboreward/_data/metrics/mae") and "site-packages" in folder
