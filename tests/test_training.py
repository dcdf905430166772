"""trl_training/sft.py and roboreward.training on a tiny Qwen2.5-VL, on CPU."""

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
import torch
from conftest import write_manifest
from safetensors.torch import load_file
from transformers import AutoProcessor
from trl import ModelConfig, SFTConfig

from roboreward import training
from roboreward.builder import BuildConfig, build
from roboreward.scoring import RewardPrompter
from roboreward.testing import make_tiny_vlm
from roboreward.training import RewardCollator, RewardScriptArguments, build_trainer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    write_manifest(
        root,
        [{"video": f"ep{i}.mp4", "task": f"open the drawer {i}", "reward": 1 + i % 5} for i in range(12)],
    )
    out = root / "ds"
    build(
        BuildConfig(
            manifest=[str(root / "m.jsonl")],
            out=str(out),
            split_ratios={"train": 8, "validation": 4, "test": 0},
            max_side=32,
            max_frames=8,
        )
    )
    model = make_tiny_vlm(root / "tiny")
    return out, model


def _args(data, tmp_path, **changes):
    out, model = data
    script = RewardScriptArguments(dataset_name=str(out), effective_batch_size=4, num_frames=4, max_side=32)
    config = dict(
        output_dir=str(tmp_path / "run"),
        per_device_train_batch_size=2,
        per_device_eval_batch_size=4,
        learning_rate=3e-6,
        weight_decay=0.05,
        max_steps=4,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="steps",
        save_steps=2,
        load_best_model_at_end=True,
        logging_steps=1,
        report_to="none",
        use_cpu=True,
        bf16=False,
        seed=0,
    )
    config.update(changes)
    return script, SFTConfig(**config), ModelConfig(model_name_or_path=str(model), dtype="float32")


def test_collator_trains_only_the_answer_after_the_scoring_prompt(data):
    out, model = data
    processor = AutoProcessor.from_pretrained(model)
    prompter = RewardPrompter(processor, num_frames=4, max_side=32)
    train = datasets.load_dataset(str(out), split="train").cast_column("video", datasets.Video(decode=False))
    rows = [train[0], train[1]]
    batch = RewardCollator(prompter)(rows)
    labels, ids = batch["labels"], batch["input_ids"]
    eos = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    for i, row in enumerate(rows):
        answer = labels[i][labels[i] != -100].tolist()
        assert answer == [prompter.score_token_ids[row["reward"] - 1], eos]
    # everything before the answer is exactly what RewardModel.score feeds the model
    prompt = prompter.encode([rows[0]["video"]], [rows[0]["task"]])
    n = prompt["input_ids"].shape[1]
    mask = batch["attention_mask"][0].bool()
    assert batch["input_ids"][0][mask][:n].tolist() == prompt["input_ids"][0].tolist()
    assert torch.equal(
        batch["pixel_values_videos"][: prompt["pixel_values_videos"].shape[0]], prompt["pixel_values_videos"]
    )
    assert int((labels != -100).sum()) == 4 and ids.shape == labels.shape


def test_training_freezes_the_tower_and_uses_the_papers_optimizer(data, tmp_path):
    script, config, model_args = _args(
        data, tmp_path, learning_rate=1e-3, max_steps=12, eval_steps=6, save_steps=6
    )
    trainer = build_trainer(script, config, model_args)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    after = dict(trainer.model.named_parameters())
    visual = [n for n in before if ".visual." in n]
    tower = [n for n in visual if "merger" not in n]
    assert tower and all(torch.equal(before[n], after[n]) for n in tower)  # bit-identical
    assert all(not after[n].requires_grad for n in tower)
    assert any(not torch.equal(before[n], after[n]) for n in visual if "merger" in n)
    assert any(not torch.equal(before[n], after[n]) for n in before if "language_model" in n)
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert losses[-1] < losses[0]
    groups = trainer.optimizer.param_groups
    assert {g["initial_lr"] for g in groups} == {1e-3}
    assert sorted({g["weight_decay"] for g in groups}) == [0.0, 0.05]
    decayed = next(g for g in groups if g["weight_decay"] == 0.05)
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    assert all("bias" not in names[id(p)] and "norm" not in names[id(p)] for p in decayed["params"])
    assert trainer.args.gradient_accumulation_steps == 2  # 4 = 2 per device x 2 x 1 process


def test_paper_learning_rate_reaches_the_optimizer(data, tmp_path):
    script, config, model_args = _args(
        data, tmp_path, max_steps=1, eval_strategy="no", save_strategy="no", load_best_model_at_end=False
    )
    trainer = build_trainer(script, config, model_args)
    trainer.train()
    assert {g["initial_lr"] for g in trainer.optimizer.param_groups} == {3e-6}


def test_best_checkpoint_is_the_lowest_validation_mae(data, tmp_path, monkeypatch):
    scripted = iter([1.5, 0.25, 0.75])
    monkeypatch.setattr(training, "compute_reward_metrics", lambda ids: lambda pred: {"mae": next(scripted)})
    script, config, model_args = _args(data, tmp_path, learning_rate=1e-3, max_steps=6)
    trainer = build_trainer(script, config, model_args)
    trainer.train()
    trainer.save_model(config.output_dir)
    summary = json.loads((Path(config.output_dir) / "training_summary.json").read_text())
    assert [e["mae"] for e in summary["evals"]] == [1.5, 0.25, 0.75]
    assert (summary["best_step"], summary["best_mae"]) == (4, 0.25)
    assert summary["best_checkpoint"].endswith("checkpoint-4")
    assert summary["hyperparameters"]["effective_batch_size"] == 4
    assert summary["frozen_parameters"] > 0 and summary["trainable_parameters"] > 0
    final = load_file(Path(config.output_dir) / "model.safetensors")
    best = load_file(Path(config.output_dir) / "checkpoint-4" / "model.safetensors")
    last = load_file(Path(config.output_dir) / "checkpoint-6" / "model.safetensors")
    assert all(torch.equal(final[k], best[k]) for k in final)
    assert not all(torch.equal(final[k], last[k]) for k in final)


def test_real_validation_mae_matches_scoring(data, tmp_path):
    from roboreward.scoring import RewardModel

    script, config, model_args = _args(
        data, tmp_path, max_steps=1, save_strategy="no", load_best_model_at_end=False
    )
    trainer = build_trainer(script, config, model_args)
    mae = trainer.evaluate()["eval_mae"]
    model = RewardModel(trainer.model, trainer.processing_class, num_frames=4, max_side=32)
    validation = datasets.load_dataset(str(data[0]), split="validation").cast_column(
        "video", datasets.Video(decode=False)
    )
    results = model.score_batch(validation["video"], validation["task"])
    expected = sum(abs(r.score - ref) for r, ref in zip(results, validation["reward"], strict=True)) / len(
        results
    )
    assert mae == pytest.approx(expected)


def _bad_dataset(tmp_path, good, row):
    train = datasets.load_dataset(str(good), split="train").cast_column("video", datasets.Video(decode=False))
    rows = train.to_list()
    rows[1].update(row)
    folder = tmp_path / "bad"
    (folder / "data").mkdir(parents=True)
    features = train.features.copy()  # plain struct: datasets would read (and refuse) a missing file
    features["video"] = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
    datasets.Dataset.from_list(rows, features=datasets.Features(features)).to_parquet(
        str(folder / "data" / "train-00000-of-00001.parquet")
    )
    datasets.load_dataset(str(good), split="validation").to_parquet(
        str(folder / "data" / "validation-00000-of-00001.parquet")
    )
    return folder


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"reward": 7}, "reward must be an integer 1..5, got 7"),
        ({"task": "  "}, "task is empty"),
        ({"video": {"bytes": None, "path": "/nonexistent/ep.mp4"}}, "video is missing"),
    ],
)
def test_a_malformed_row_fails_before_training_naming_it(data, tmp_path, row, message, monkeypatch):
    folder = _bad_dataset(tmp_path, data[0], row)
    script, config, model_args = _args(data, tmp_path)
    script.dataset_name = str(folder)
    loaded = []
    monkeypatch.setattr(
        "transformers.AutoModelForImageTextToText.from_pretrained", lambda *a, **k: loaded.append(1)
    )
    with pytest.raises(
        ValueError,
        match=r"train row 1 \(id .+\): "
        + message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\."),
    ):
        build_trainer(script, config, model_args)
    assert not loaded  # no model was loaded


def test_accumulation_for_the_world_size():
    assert training.accumulation_steps(64, 2, 1) == 32
    assert training.accumulation_steps(64, 2, 8) == 4
    with pytest.raises(ValueError, match="not a multiple"):
        training.accumulation_steps(64, 3, 1)


def test_accelerate_launch_two_processes_halves_the_accumulation(data, tmp_path):
    out, model = data
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    runs = {}
    for processes in (1, 2):
        target = tmp_path / f"run{processes}"
        # accelerate 1.15 starts several CPU processes only through its torchrun path (--multi_gpu);
        # `use_cpu: true` in tiny_cpu.yaml keeps them on the CPU, talking over gloo.
        launcher = (
            ["--multi_gpu", "--num_processes", "2"] if processes == 2 else ["--cpu", "--num_processes", "1"]
        )
        command = [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            *launcher,
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            str(ROOT / "trl_training" / "sft.py"),
            "--config",
            str(ROOT / "trl_training" / "configs" / "tiny_cpu.yaml"),
            "--model_name_or_path",
            str(model),
            "--dataset_name",
            str(out),
            "--output_dir",
            str(target),
            "--effective_batch_size",
            "8",
            "--max_steps",
            "2",
            "--eval_steps",
            "2",
            "--save_steps",
            "2",
        ]
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        runs[processes] = json.loads((target / "training_summary.json").read_text())["hyperparameters"]
    assert (runs[1]["world_size"], runs[1]["gradient_accumulation_steps"]) == (1, 4)
    assert (runs[2]["world_size"], runs[2]["gradient_accumulation_steps"]) == (2, 2)


@pytest.mark.parametrize(
    "recipe", sorted((ROOT / "trl_training" / "configs").glob("*.yaml")), ids=lambda p: p.stem
)
def test_every_recipe_parses_with_trl(recipe):
    import yaml
    from trl import TrlParser

    parser = TrlParser((RewardScriptArguments, SFTConfig, ModelConfig))
    # bf16 needs a GPU to validate: this machine parses the recipe with it off (and checks the YAML below)
    args = ["--config", str(recipe), "--output_dir", "/tmp/unused", "--bf16", "false", "--use_cpu", "true"]
    script, config, model = parser.parse_args_and_config(args)
    assert config.weight_decay == 0.05 and config.learning_rate == 3e-6
    assert config.load_best_model_at_end and script.freeze_vision_tower
    if recipe.stem != "tiny_cpu":
        assert script.effective_batch_size == 64 and model.model_name_or_path.startswith("Qwen/")
        assert config.warmup_steps == 0.03 and yaml.safe_load(recipe.read_text())["bf16"] is True
