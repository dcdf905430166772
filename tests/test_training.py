"""trl_training/sft.py and roboreward.training.trainer on a tiny Qwen2.5-VL, on CPU."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
import torch
from conftest import TINY_VLM_FIXTURES, write_manifest
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText, AutoProcessor
from trl import ModelConfig, SFTConfig

from roboreward.dataset.builder import BuildConfig, build
from roboreward.models.local import RewardModel, RewardPrompter
from roboreward.training import trainer as training
from roboreward.training.trainer import RewardCollator, RewardScriptArguments, RewardSFTConfig, build_trainer

ROOT = Path(__file__).resolve().parents[1]
# Tasks of different lengths, so that batches are padded.
TASKS = ("open the drawer", "put the red block in the blue bowl and close the lid", "wipe the table")


@pytest.fixture(scope="module")
def data(tmp_path_factory, tiny_vlm_dir):
    root = tmp_path_factory.mktemp("train")
    write_manifest(
        root,
        [{"video": f"ep{i}.mp4", "task": TASKS[i % len(TASKS)], "reward": 1 + i % 5} for i in range(12)],
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
    return out, tiny_vlm_dir


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
        activation_checkpointing=True,
        seed=0,
    )
    config.update(changes)
    return script, SFTConfig(**config), ModelConfig(model_name_or_path=str(model), dtype="float32")


def _rows(out, split, n):
    ds = datasets.load_dataset(str(out), split=split).cast_column("video", datasets.Video(decode=False))
    return [ds[i] for i in range(n)]


def test_collator_trains_only_the_answer_after_the_scoring_prompt(data):
    out, model_path = data
    processor = AutoProcessor.from_pretrained(model_path)
    prompter = RewardPrompter(processor, num_frames=4, max_side=32)
    rows = _rows(out, "train", 4)
    assert len({r["task"] for r in rows}) > 1  # rows of different lengths: padding is exercised
    batch = RewardCollator(prompter)(rows)
    labels, ids, mask = batch["labels"], batch["input_ids"], batch["attention_mask"].bool()
    eos = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert ids.shape == labels.shape and bool((~mask).any())
    assert int((labels != -100).sum()) == 2 * len(rows)  # the score and <|im_end|> of each row, nothing else
    assert (batch["mm_token_type_ids"][~mask] == 0).all()  # padding is no vision token
    scorer = RewardModel(
        AutoModelForImageTextToText.from_pretrained(model_path), processor, num_frames=4, max_side=32
    )
    offset = 0
    for i, row in enumerate(rows):
        assert labels[i][labels[i] != -100].tolist() == [prompter.score_token_ids[row["reward"] - 1], eos]
        # Everything before the answer is exactly what RewardModel.score feeds the model for this row.
        scored = scorer.prepare([row["video"]], [row["task"]])
        n = scored["input_ids"].shape[1]
        assert ids[i][mask[i]][:n].tolist() == scored["input_ids"][0].tolist()
        assert ids[i][mask[i]][n:].tolist() == labels[i][labels[i] != -100].tolist()
        pixels = scored["pixel_values_videos"]
        assert torch.equal(batch["pixel_values_videos"][offset : offset + len(pixels)], pixels)
        assert torch.equal(batch["video_grid_thw"][i], scored["video_grid_thw"][0])
        assert batch["second_per_grid_ts"][i] == pytest.approx(float(scored["second_per_grid_ts"][0]))
        offset += len(pixels)


def test_collator_without_eos_trains_the_score_only(data):
    out, model_path = data
    prompter = RewardPrompter(AutoProcessor.from_pretrained(model_path), num_frames=4, max_side=32)
    rows = _rows(out, "train", 2)
    batch = RewardCollator(prompter, train_eos=False)(rows)
    labels = batch["labels"]
    assert [labels[i][labels[i] != -100].tolist() for i in range(2)] == [
        [prompter.score_token_ids[r["reward"] - 1]] for r in rows
    ]
    assert (batch["input_ids"][:, -1] == labels[:, -1]).all()  # the score ends the row


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_freeze_vision_tower_keeps_the_merger_and_the_llm_trainable(request, family):
    model = AutoModelForImageTextToText.from_pretrained(request.getfixturevalue(TINY_VLM_FIXTURES[family]))
    counts = training.freeze_vision_tower(model)
    params = dict(model.named_parameters())
    frozen = {n for n, p in params.items() if not p.requires_grad}
    assert frozen and all(".visual." in n and "merger" not in n for n in frozen)
    assert any("patch_embed" in n for n in frozen) and any(".blocks." in n for n in frozen)
    assert all(params[n].requires_grad for n in params if "merger" in n or "language_model" in n)
    if family == "qwen3_vl":  # DeepStack mergers are fusion layers too
        assert any("deepstack_merger_list" in n and params[n].requires_grad for n in params)
    assert counts == {
        "frozen": sum(params[n].numel() for n in frozen),
        "trainable": sum(p.numel() for n, p in params.items() if n not in frozen),
    }


def test_training_freezes_the_tower_and_uses_the_papers_optimizer(data, tmp_path):
    script, config, model_args = _args(
        data, tmp_path, learning_rate=1e-3, max_steps=12, eval_steps=6, save_steps=6
    )
    trainer = build_trainer(script, config, model_args)
    micro_batches, training_step = [], trainer.training_step
    trainer.training_step = lambda model, inputs, *a, **k: (
        micro_batches.append(len(inputs["input_ids"])) or training_step(model, inputs, *a, **k)
    )
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
    undecayed = [names[id(p)] for g in groups if g["weight_decay"] == 0.0 for p in g["params"]]
    assert undecayed and all("bias" in n or "norm" in n for n in undecayed)  # HF's rule: biases and norms
    # 4 = 2 per device x 2 accumulated x 1 process: two micro-batches of 2 rows per optimizer step
    assert trainer.args.gradient_accumulation_steps == 2
    assert micro_batches == [2] * 24 and trainer.state.global_step == 12


def test_paper_learning_rate_reaches_the_optimizer(data, tmp_path):
    script, config, model_args = _args(
        data, tmp_path, max_steps=1, eval_strategy="no", save_strategy="no", load_best_model_at_end=False
    )
    trainer = build_trainer(script, config, model_args)
    trainer.train()
    assert {g["initial_lr"] for g in trainer.optimizer.param_groups} == {3e-6}
    assert set(trainer.lr_scheduler.base_lrs) == {3e-6}
    assert sorted({g["weight_decay"] for g in trainer.optimizer.param_groups}) == [0.0, 0.05]


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
    # the toolkit's card, not TRL's generic one: the local base named by its folder, the run's summary
    card = (Path(config.output_dir) / "README.md").read_text()
    assert "fine-tuned version of" not in card and "pipeline_tag: video-text-to-text" in card
    assert f"Fine-tuned from `{Path(model_args.model_name_or_path).name}`" in card and "best_mae" in card
    final = load_file(Path(config.output_dir) / "model.safetensors")
    best = load_file(Path(config.output_dir) / "checkpoint-4" / "model.safetensors")
    last = load_file(Path(config.output_dir) / "checkpoint-6" / "model.safetensors")
    assert all(torch.equal(final[k], best[k]) for k in final)
    assert not all(torch.equal(final[k], last[k]) for k in final)
    # the folder is a reward model on its own: weights and processor
    scorer = RewardModel.from_pretrained(config.output_dir, device="cpu", num_frames=4, max_side=32)
    row = _rows(data[0], "validation", 1)[0]
    assert 1 <= scorer.score(row["video"], row["task"]).score <= 5


def test_evaluation_reads_the_same_logits_and_loss_as_trls_full_forward(data, tmp_path):
    from trl import SFTTrainer

    script, config, model_args = _args(data, tmp_path, eval_strategy="no", load_best_model_at_end=False)
    trainer = build_trainer(script, config, model_args)
    trainer.model.eval()
    batch = trainer.data_collator(_rows(data[0], "validation", 3))
    loss, at_answer, labels = trainer.prediction_step(trainer.model, dict(batch), False)
    with pytest.warns(FutureWarning):  # TRL's path: a fused-loss pass, then the full logits
        full_loss, full_logits, _ = SFTTrainer.prediction_step(trainer, trainer.model, dict(batch), False)
    assert at_answer.shape == (3, full_logits.shape[-1])
    assert loss.item() == pytest.approx(full_loss.item(), rel=1e-5)
    keep = training.answer_logits(trainer.data_collator.prompter.score_token_ids)
    assert torch.allclose(keep(at_answer, labels), keep(full_logits, labels), atol=1e-5)


def test_build_trainer_leaves_the_given_settings_as_they_are(data, tmp_path):
    script, config, model_args = _args(data, tmp_path, eval_strategy="no", load_best_model_at_end=False)
    trainer = build_trainer(script, config, model_args)  # a plain SFTConfig: TRL's defaults
    assert (config.gradient_accumulation_steps, config.remove_unused_columns, config.label_names) == (
        1,
        True,
        None,
    )
    used = trainer.args
    assert (used.gradient_accumulation_steps, used.remove_unused_columns, used.label_names) == (
        2,
        False,
        ["labels"],
    )
    assert (used.metric_for_best_model, used.greater_is_better, used.dataset_kwargs) == (
        "mae",
        False,
        {"skip_prepare_dataset": True},
    )
    paper = RewardSFTConfig(
        output_dir=str(tmp_path / "paper"),
        per_device_train_batch_size=2,
        max_steps=1,
        report_to="none",
        use_cpu=True,
        bf16=False,
    )
    trainer = build_trainer(script, paper, model_args)
    assert paper.gradient_accumulation_steps == 1 and trainer.args.gradient_accumulation_steps == 2
    assert (trainer.args.learning_rate, trainer.args.weight_decay) == (3e-6, 0.05)
    assert isinstance(trainer.args, RewardSFTConfig) and trainer.args.output_dir == paper.output_dir


def test_real_validation_mae_matches_scoring(data, tmp_path):
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


def test_lora_trains_adapters_and_the_merger_with_the_tower_frozen(data, tmp_path):
    script, config, model_args = _args(data, tmp_path, learning_rate=1e-3)
    model_args.use_peft, model_args.lora_r, model_args.lora_alpha = True, 4, 8
    trainer = build_trainer(script, config, model_args)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    after = dict(trainer.model.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed and all("lora_" in n or "merger" in n for n in changed)
    assert any("lora_" in n and "language_model" in n for n in changed)
    assert any("merger" in n and "modules_to_save" in n for n in changed)
    assert not any("lora_" in n and ".visual." in n for n in before)  # no adapter in the vision tower
    summary = json.loads((Path(config.output_dir) / "training_summary.json").read_text())
    assert (
        summary["hyperparameters"]["use_peft"]
        and summary["trainable_parameters"] < summary["frozen_parameters"]
    )


def test_resumed_run_keeps_the_evaluations_made_before(data, tmp_path):
    script, config, model_args = _args(data, tmp_path, learning_rate=1e-3)
    build_trainer(script, config, model_args).train()
    script, config, model_args = _args(data, tmp_path, learning_rate=1e-3, max_steps=6)
    trainer = build_trainer(script, config, model_args)
    trainer.train(resume_from_checkpoint=str(Path(config.output_dir) / "checkpoint-4"))
    summary = json.loads((Path(config.output_dir) / "training_summary.json").read_text())
    assert [e["step"] for e in summary["evals"]] == [2, 4, 6] and summary["global_step"] == 6


def _bad_dataset(tmp_path, good, bad_split, row):
    """A copy of the built dataset whose ``bad_split`` row 1 is changed by ``row``."""
    folder = tmp_path / "bad"
    (folder / "data").mkdir(parents=True)
    for split in ("train", "validation"):
        ds = datasets.load_dataset(str(good), split=split).cast_column("video", datasets.Video(decode=False))
        rows = ds.to_list()
        if split == bad_split:
            rows[1].update(row)
        features = ds.features.copy()  # plain struct: datasets would read (and refuse) a missing file
        features["video"] = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
        datasets.Dataset.from_list(rows, features=datasets.Features(features)).to_parquet(
            str(folder / "data" / f"{split}-00000-of-00001.parquet")
        )
    return folder


@pytest.mark.parametrize(
    ("split", "row", "message"),
    [
        ("train", {"reward": 7}, "reward must be an integer 1..5, got 7"),
        ("train", {"task": "  "}, "task is empty"),
        ("train", {"video": {"bytes": None, "path": "/nonexistent/ep.mp4"}}, "video is missing"),
        ("train", {"video": {"bytes": b"", "path": "EMPTY"}}, "video is empty"),
        ("validation", {"reward": 0}, "reward must be an integer 1..5, got 0"),
    ],
)
def test_a_malformed_row_fails_before_training_naming_it(data, tmp_path, split, row, message, monkeypatch):
    if row.get("video", {}).get("path") == "EMPTY":
        (tmp_path / "empty.mp4").touch()
        row = {"video": {"bytes": b"", "path": str(tmp_path / "empty.mp4")}}
    folder = _bad_dataset(tmp_path, data[0], split, row)
    script, config, model_args = _args(data, tmp_path)
    script.dataset_name = str(folder)
    loaded = []
    monkeypatch.setattr(
        "transformers.AutoModelForImageTextToText.from_pretrained", lambda *a, **k: loaded.append(1)
    )
    with pytest.raises(ValueError, match=rf"^{split} row 1 \(id [^)]+\): {re.escape(message)}"):
        build_trainer(script, config, model_args)
    assert not loaded  # no model was loaded


def test_validation_accepts_integral_float_rewards_and_names_rows_without_an_id():
    video = {"bytes": b"\x00" * 8, "path": None}
    good = datasets.Dataset.from_list([{"video": video, "task": "open the drawer", "reward": 4.0}])
    training.validate_rows(good, "train")  # a float column holding whole scores is fine
    bad = datasets.Dataset.from_list(
        [{"video": video, "task": "open the drawer", "reward": r} for r in (4.0, 3.5)]
    )
    with pytest.raises(ValueError, match=r"^validation row 1: reward must be an integer 1\.\.5, got 3\.5$"):
        training.validate_rows(bad, "validation")


def test_accumulation_for_the_world_size():
    assert training.accumulation_steps(64, 2, 1) == 32
    assert training.accumulation_steps(64, 2, 8) == 4
    with pytest.raises(ValueError, match="not a multiple"):
        training.accumulation_steps(64, 3, 1)


@pytest.mark.slow
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

    parser = TrlParser((RewardScriptArguments, RewardSFTConfig, ModelConfig))  # as sft.py does
    # bf16 needs a GPU to validate: this machine parses the recipe with it off (and checks the YAML below)
    args = ["--config", str(recipe), "--output_dir", "/tmp/unused", "--bf16", "false", "--use_cpu", "true"]
    script, config, model = parser.parse_args_and_config(args)
    assert config.weight_decay == 0.05 and config.learning_rate == 3e-6
    assert config.load_best_model_at_end and script.freeze_vision_tower
    assert (config.metric_for_best_model, config.greater_is_better, config.remove_unused_columns) == (
        "mae",
        False,
        False,
    )
    if recipe.stem != "tiny_cpu":
        assert script.effective_batch_size == 64 and model.model_name_or_path.startswith("Qwen/")
        assert config.warmup_steps == 0.03 and yaml.safe_load(recipe.read_text())["bf16"] is True
