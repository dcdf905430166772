"""`roboreward train --config RECIPE` (issue 26, item 1): training from any install, a shipped recipe by
name, the same code as ``trl_training/sft.py``, and under ``accelerate launch -m roboreward.cli``."""

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_manifest

from roboreward.cli import main
from roboreward.dataset.builder import BuildConfig, build
from roboreward.training import script

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_cmd")
    rows = [{"video": f"ep{i}.mp4", "task": f"task {i % 2}", "reward": 1 + i % 5} for i in range(6)]
    write_manifest(root, rows, num_frames=4)
    out = root / "ds"
    build(
        BuildConfig(
            manifest=[str(root / "m.jsonl")],
            out=str(out),
            split_ratios={"train": 4, "validation": 2, "test": 0},
            max_side=32,
            max_frames=4,
        )
    )
    return out


def _one_step(model: Path, data: Path, out: Path) -> list[str]:
    return [
        "--model_name_or_path",
        str(model),
        "--dataset_name",
        str(data),
        "--output_dir",
        str(out),
        "--max_steps",
        "1",
        "--eval_steps",
        "1",
        "--save_steps",
        "1",
        "--effective_batch_size",
        "2",
    ]


@pytest.mark.slow  # 10 s: one step and one evaluation
def test_train_runs_the_shipped_tiny_recipe_by_name_from_any_folder(ds, tiny_vlm_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no trl_training/ here: the recipe is the installed toolkit's
    assert main(["train", "--config", "tiny_cpu", *_one_step(tiny_vlm_dir, ds, tmp_path / "run")]) == 0
    summary = json.loads((tmp_path / "run" / "training_summary.json").read_text())
    assert summary["best_step"] == 1 and [e["step"] for e in summary["evals"]] == [1]
    assert summary["hyperparameters"]["gradient_accumulation_steps"] == 1  # 2 = 2 per device x 1
    settings = json.loads((tmp_path / "run" / "roboreward_settings.json").read_text())
    # the tiny_cpu recipe's values, which no flag changed
    assert (settings["num_frames"], settings["max_side"], settings["prompt"]) == (4, 64, "toolkit")
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_a_recipe_name_becomes_the_shipped_file_and_flags_win():
    argv = script.resolve_config(["--config", "qwen2_5_vl_3b", "--lr", "x", "--config=tiny_cpu"])
    assert Path(argv[1]).name == "qwen2_5_vl_3b.yaml" and Path(argv[1]).is_file()
    assert argv[2:4] == ["--lr", "x"] and argv[4].endswith("/configs/tiny_cpu.yaml")
    script_args, config, model = script.parse_args(
        ["--config", "tiny_cpu", "--max_steps", "1", "--output_dir", "/tmp/unused"]
    )
    assert (config.max_steps, script_args.num_frames, model.dtype) == (1, 4, "float32")


def test_an_unknown_recipe_or_no_recipe_is_one_line(capsys):
    assert main(["train", "--config", "qwen9"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("roboreward train: error: cannot read train recipe qwen9: no such file")
    assert "tiny_cpu" in err and "\n" not in err
    assert main(["train"]) == 1
    assert "give a training recipe: --config NAME" in capsys.readouterr().err


def test_help_names_the_shipped_recipes_and_help_all_lists_trls_fields(capsys):
    with pytest.raises(SystemExit) as done:
        main(["train", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "usage: roboreward train --config RECIPE" in text
    assert "qwen2_5_vl_3b, qwen2_5_vl_7b, qwen3_vl_4b, qwen3_vl_8b, tiny_cpu" in " ".join(text.split())
    assert main(["train", "--help-all"]) == 0
    every = capsys.readouterr().out
    assert "--effective_batch_size" in every and "--model_name_or_path" in every and "--use_peft" in every


def test_sft_py_delegates_to_the_training_script(monkeypatch):
    called = []
    monkeypatch.setattr(script, "main", lambda argv=None, prog=None: called.append(argv) or 0)
    monkeypatch.setattr(sys, "argv", ["sft.py", "--config", "tiny_cpu"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(ROOT / "trl_training" / "sft.py"), run_name="__main__")
    assert done.value.code == 0 and called == [None]  # main() reads sys.argv itself


@pytest.mark.slow
def test_accelerate_launch_starts_the_train_command(ds, tiny_vlm_dir, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1"]
    launch += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    command = [*launch, "-m", "roboreward.cli", "train", "--config", "tiny_cpu"]
    command += _one_step(tiny_vlm_dir, ds, tmp_path / "run")
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "training_summary.json").read_text())
    assert summary["best_step"] == 1 and summary["hyperparameters"]["world_size"] == 1
