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
    assert "roboreward/_data/trl_training/sft.py" in names and "roboreward/_data/spaces_demo/app.py" in names
    assert "roboreward/_data/dataset_builder/configs/roboreward.yaml" in names
    assert "roboreward/_data/dataset_builder/configs/relabel_served.yaml" in names
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


def test_recipes_by_name_or_repository_path_from_a_regular_install(installed, tmp_path):
    """Issue 26, items 1 and 2: the shipped build and training recipes, by name or by the path the
    README writes, from a folder with no checkout around."""
    _, script, _ = installed
    _run([script, "build", "--config", "dataset_builder/configs/roboreward.yaml", "--help"], tmp_path)
    smoke = _run([script, "build", "--config", "smoke", "--help"], tmp_path)
    assert "(default: train=0.6,validation=0.2,test=0.2)" in " ".join(smoke.split())  # the wheel's recipe
    train = _run([script, "train", "--help"], tmp_path)
    assert "qwen2_5_vl_3b, qwen2_5_vl_7b, qwen3_vl_4b, qwen3_vl_8b, tiny_cpu" in " ".join(train.split())


def _readme_block(text: str, marker: str) -> list[str]:
    """The command lines of the README's ```bash block holding ``marker`` (comments and blanks left out)."""
    import re

    for block in re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M):
        if marker in block:
            return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    raise AssertionError(f"no bash block of the README holds {marker!r}")


def test_the_readme_quickstart_and_python_blocks_run_as_written_from_a_regular_install(installed, tmp_path):
    """Issue 26: after `pip install` (no checkout on the path), the README's CPU quickstart commands
    (tiny model, sim, build, `roboreward train --config tiny_cpu`) and then every python block of the
    README run as written, in an unrelated folder."""
    python, script, _ = installed
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    elsewhere = tmp_path / "user"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{script.parent}{os.pathsep}{env['PATH']}"  # the venv's python and roboreward first
    env.update(OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
    commands = _readme_block(readme, "writes runs/roboreward-tiny")  # the Training section's quickstart
    assert commands[-1].startswith("roboreward train --config tiny_cpu") and len(commands) == 4
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", command], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"{command}\n{done.stderr[-3000:]}"
    run = elsewhere / "runs" / "roboreward-tiny"
    assert json.loads((run / "training_summary.json").read_text())["best_step"] in (2, 4)

    # What the README's prose says the user has: the checkpoint and the built folder just made.
    for name in ("runs/3b", "runs/roboreward-qwen2_5_vl_3b"):
        (elsewhere / name).symlink_to(run, target_is_directory=True)
    (elsewhere / "roboreward").symlink_to(elsewhere / "roboreward_tiny", target_is_directory=True)
    runner = tmp_path / "runner"
    runner.mkdir()
    (runner / "readme_blocks.py").write_text((ROOT / "tests" / "test_readme.py").read_text())
    code = (
        "import sys, pathlib\n"
        f"sys.path.insert(0, {str(runner)!r})\n"
        "import readme_blocks as r\n"
        f"text = pathlib.Path({str(ROOT / 'README.md')!r}).read_text()\n"
        "namespace = {}\n"
        "blocks = r.fenced_blocks('python', text)\n"
        "for line, block in blocks:\n"
        "    r.run_block(line, block, namespace)\n"
        "import roboreward\n"
        "print('RAN', len(blocks), roboreward.__file__)\n"
    )
    done = subprocess.run(
        [python, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    count, package = done.stdout.rsplit("RAN", 1)[1].split()
    assert int(count) == 9 and "site-packages" in package and not package.startswith(str(ROOT))
