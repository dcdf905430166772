"""Fine-tune Qwen2.5-VL / Qwen3-VL reward models with TRL, the RoboReward paper's way.

`trl_training/sft.py` is the thin script; everything it needs lives here:

- `RewardScriptArguments`: the dataset and the paper's knobs (target effective batch, frames).
- `load_reward_splits`: a built RoboReward folder or a Hub id with ``video``, ``task``, ``reward``,
  every row checked before training starts (`validate_rows`).
- `RewardCollator`: each row becomes the rubric prompt of `roboreward.scoring.RewardPrompter` (the
  very tokens and frames `RewardModel.score` sees) followed by the answer ``<reward><|im_end|>``;
  the loss is on those answer tokens only.
- `freeze_vision_tower`: patch embedding and vision blocks frozen, the merger and the LLM trained.
- `answer_logits` + `compute_reward_metrics`: validation MAE from the five answer-token logits (the
  numbers `RewardModel.score` would give), computed by the ``metrics/mae`` evaluate module.
- `TrainingSummaryCallback`: ``training_summary.json`` with every evaluation's MAE and the best step.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import TrainerCallback

from roboreward import rubric
from roboreward.scoring import RewardPrompter

__all__ = [
    "RewardCollator",
    "RewardScriptArguments",
    "TrainingSummaryCallback",
    "accumulation_steps",
    "answer_logits",
    "build_trainer",
    "compute_reward_metrics",
    "freeze_vision_tower",
    "load_reward_splits",
    "validate_rows",
]

logger = logging.getLogger(__name__)
IGNORE_INDEX = -100


@dataclass
class RewardScriptArguments:
    """What to train on and the paper's settings that TRL's SFTConfig does not have."""

    dataset_name: str = field(
        default="roboreward", metadata={"help": "a folder built by `roboreward build` or a Hub dataset id"}
    )
    dataset_config: str | None = field(default=None, metadata={"help": "dataset config name, if any"})
    dataset_train_split: str = field(default="train")
    dataset_test_split: str = field(default="validation", metadata={"help": "the split for validation MAE"})
    effective_batch_size: int = field(
        default=64,
        metadata={"help": "per-device batch x accumulation x processes; the accumulation is derived from it"},
    )
    num_frames: int = field(default=16, metadata={"help": "frames sampled evenly per video"})
    max_side: int | None = field(default=448, metadata={"help": "longer frame side before the processor"})
    max_pixels: int | None = field(default=None, metadata={"help": "the video processor's pixel budget"})
    freeze_vision_tower: bool = field(
        default=True, metadata={"help": "freeze patch embedding and vision blocks"}
    )
    train_eos: bool = field(default=True, metadata={"help": "also train <|im_end|> after the score"})
    max_train_samples: int | None = field(default=None, metadata={"help": "use only the first N train rows"})
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "use only the first N validation rows"}
    )


# ---------------------------------------------------------------------------------------------
# Data


def validate_rows(dataset: Any, split: str) -> None:
    """Fail before training on a row that cannot be trained on, naming its split, index and id.

    Checks without decoding any video: a task that is empty or not text, a reward that is not an
    integer 1..5, a video with neither bytes nor an existing file.
    """
    ids = dataset["id"] if "id" in dataset.column_names else [None] * len(dataset)
    videos = dataset.select_columns(["video"]).to_dict()["video"]
    for index, (task, reward, video, id_) in enumerate(
        zip(dataset["task"], dataset["reward"], videos, ids, strict=True)
    ):
        where = f"{split} row {index}" + (f" (id {id_})" if id_ else "")
        if not isinstance(task, str) or not task.strip():
            raise ValueError(f"{where}: task is empty")
        if (
            isinstance(reward, bool)
            or not isinstance(reward, int)
            or not rubric.MIN_SCORE <= reward <= rubric.MAX_SCORE
        ):
            raise ValueError(f"{where}: reward must be an integer 1..5, got {reward!r}")
        if not isinstance(video, dict) or not (
            video.get("bytes") or (video.get("path") and os.path.isfile(video["path"]))
        ):
            raise ValueError(
                f"{where}: video is missing (no bytes and no file at {video and video.get('path')!r})"
            )


def load_reward_splits(args: RewardScriptArguments) -> tuple[Any, Any]:
    """(train, validation) datasets with videos as ``{"bytes", "path"}``, every row checked."""
    import datasets

    loaded = datasets.load_dataset(args.dataset_name, args.dataset_config)
    for split in (args.dataset_train_split, args.dataset_test_split):
        if split not in loaded:
            raise ValueError(f"{args.dataset_name} has no split {split!r} (it has {sorted(loaded)})")
    out = []
    for split, limit in (
        (args.dataset_train_split, args.max_train_samples),
        (args.dataset_test_split, args.max_eval_samples),
    ):
        ds = loaded[split]
        missing = {"video", "task", "reward"} - set(ds.column_names)
        if missing:
            raise ValueError(f"{args.dataset_name} split {split} lacks column(s) {sorted(missing)}")
        ds = ds.cast_column("video", datasets.Video(decode=False))
        if limit is not None:
            ds = ds.select(range(min(limit, len(ds))))
        validate_rows(ds, split)
        out.append(ds)
    return out[0], out[1]


class RewardCollator:
    """Rows -> model inputs: the scoring prompt (prefilled ``ANSWER: ``) plus the answer as labels."""

    def __init__(self, prompter: RewardPrompter, train_eos: bool = True):
        self.prompter = prompter
        self.train_eos = train_eos
        self.eos = prompter.tokenizer.convert_ids_to_tokens(prompter.tokenizer.eos_token_id)

    def answer(self, reward: int) -> str:
        return str(rubric.level(int(reward)).score) + (self.eos if self.train_eos else "")

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.prompter.encode(
            [row["video"] for row in rows],
            [row["task"] for row in rows],
            answers=[self.answer(row["reward"]) for row in rows],
        )
        labels = torch.full_like(batch["input_ids"], IGNORE_INDEX)
        # Left padding: every row ends with its answer, so the answer tokens are the last ones.
        width = 2 if self.train_eos else 1
        labels[:, -width:] = batch["input_ids"][:, -width:]
        batch["labels"] = labels
        return dict(batch)


# ---------------------------------------------------------------------------------------------
# Model


def freeze_vision_tower(model: Any) -> dict[str, int]:
    """Freeze the vision encoder (patch embedding and blocks); keep the merger and the LLM trainable.

    Returns parameter counts ``{"frozen": ..., "trainable": ...}``. The merger ("fusion layers" in
    the paper; for Qwen3-VL also its deepstack mergers) is every vision parameter whose name holds
    ``merger``.
    """
    visual = None
    for name, module in model.named_modules():
        if name.endswith("visual"):
            visual = module
            break
    if visual is None:
        raise ValueError(f"{type(model).__name__} has no vision tower ('visual') to freeze")
    for name, param in visual.named_parameters():
        if "merger" not in name:
            param.requires_grad_(False)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"frozen": frozen, "trainable": trainable}


def accumulation_steps(effective_batch_size: int, per_device_batch_size: int, world_size: int) -> int:
    """Gradient accumulation that makes ``per_device x accumulation x world == effective``."""
    per_step = per_device_batch_size * world_size
    if effective_batch_size < per_step or effective_batch_size % per_step:
        raise ValueError(
            f"effective_batch_size {effective_batch_size} is not a multiple of per-device batch "
            f"{per_device_batch_size} x {world_size} process(es) = {per_step}"
        )
    return effective_batch_size // per_step


# ---------------------------------------------------------------------------------------------
# Validation MAE


def answer_logits(score_token_ids: tuple[int, ...]) -> Any:
    """A ``preprocess_logits_for_metrics`` that keeps, per row, the logits of ``1``..``5`` where the
    score is predicted (the position before the first answer label): (batch, 5), not (batch, L, V)."""
    ids = torch.tensor(score_token_ids)

    def keep(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if isinstance(logits, tuple):
            logits = logits[0]
        first = (labels != IGNORE_INDEX).int().argmax(dim=1)  # the score token
        rows = torch.arange(labels.shape[0], device=labels.device)
        return logits[rows, first - 1][:, ids.to(logits.device)]

    return keep


def compute_reward_metrics(score_token_ids: tuple[int, ...]) -> Any:
    """A ``compute_metrics`` returning ``{"mae": ...}`` from the kept answer logits and the labels."""
    from roboreward import metrics

    to_score = {token: score for score, token in zip(rubric.SCORES, score_token_ids, strict=True)}
    mae = metrics.load("mae")

    def compute(eval_prediction: Any) -> dict[str, float]:
        logits = np.asarray(eval_prediction.predictions)
        labels = np.asarray(eval_prediction.label_ids)
        predictions = (logits.argmax(axis=-1) + 1).tolist()
        first = (labels != IGNORE_INDEX).argmax(axis=1)
        references = [to_score.get(int(labels[i, j]), 0) for i, j in enumerate(first)]
        return {"mae": mae.compute(predictions=predictions, references=references)["mae"]}

    return compute


class TrainingSummaryCallback(TrainerCallback):
    """Writes ``training_summary.json`` at the end: every evaluation's MAE, the best step, settings."""

    def __init__(self, summary: dict[str, Any]):
        self.summary = summary
        self.evals: list[dict[str, float]] = []

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None, **kw: Any
    ):
        if metrics and "eval_mae" in metrics:
            self.evals.append({"step": state.global_step, "mae": float(metrics["eval_mae"])})

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any):
        if not state.is_world_process_zero:
            return
        best = min(self.evals, key=lambda e: (e["mae"], e["step"])) if self.evals else None
        self.summary.update(
            evals=self.evals,
            best_step=best["step"] if best else None,
            best_mae=best["mae"] if best else None,
            best_checkpoint=state.best_model_checkpoint,
            global_step=state.global_step,
        )
        path = Path(args.output_dir) / "training_summary.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.summary, indent=2, default=str) + "\n")


class ReloadBestCheckpointCallback(TrainerCallback):
    """Put the best checkpoint's weights back in the model at the end of training.

    transformers 5's Trainer reloads the best checkpoint by state-dict keys, which for Qwen-VL models
    are saved under their original names (``visual.*``, ``model.layers.*``) and loaded under the new
    ones (``model.visual.*``, ``model.language_model.*``): every key is reported missing and the
    *last* weights silently stay. ``from_pretrained`` applies the key mapping, so the best weights
    are loaded here from the checkpoint folder instead. (PEFT adapters reload through the Trainer's
    own path, which works.)
    """

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any):
        if model is None or not (args.load_best_model_at_end and state.best_model_checkpoint):
            return
        if hasattr(model, "peft_config"):
            return
        from transformers import AutoModelForImageTextToText

        dtype = next(model.parameters()).dtype
        best = AutoModelForImageTextToText.from_pretrained(state.best_model_checkpoint, dtype=dtype)
        model.load_state_dict(best.state_dict(), strict=True)
        logger.info("loaded the best checkpoint %s (lowest validation MAE)", state.best_model_checkpoint)


# ---------------------------------------------------------------------------------------------
# The trainer


def _lora_target(model_args: Any) -> Any:
    if model_args.lora_target_modules:
        return model_args.lora_target_modules
    # The LLM's projections only: the vision tower's MLP shares these names and stays frozen.
    return r"^(?!.*visual).*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)$"


def build_trainer(script_args: RewardScriptArguments, training_args: Any, model_args: Any) -> Any:
    """The SFTTrainer for a RoboReward recipe: data checked, tower frozen, MAE-based model selection."""
    from accelerate import PartialState
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import SFTTrainer, get_peft_config

    world = PartialState().num_processes
    training_args.gradient_accumulation_steps = accumulation_steps(
        script_args.effective_batch_size, training_args.per_device_train_batch_size, world
    )
    logger.info(
        "effective batch %d = %d per device x %d accumulation x %d process(es)",
        script_args.effective_batch_size,
        training_args.per_device_train_batch_size,
        training_args.gradient_accumulation_steps,
        world,
    )
    train, validation = load_reward_splits(script_args)  # fails on a bad row before any model loads

    processor = AutoProcessor.from_pretrained(
        model_args.model_name_or_path, revision=model_args.model_revision
    )
    if script_args.max_pixels:
        from roboreward.scoring import _set_pixel_budget

        _set_pixel_budget(processor, max_pixels=script_args.max_pixels, min_pixels=None)
    dtype = model_args.dtype if model_args.dtype in (None, "auto") else getattr(torch, model_args.dtype)
    model = AutoModelForImageTextToText.from_pretrained(
        model_args.model_name_or_path,
        revision=model_args.model_revision,
        dtype=dtype,
        attn_implementation=model_args.attn_implementation,
    )
    counts = (
        freeze_vision_tower(model)
        if script_args.freeze_vision_tower
        else {"frozen": 0, "trainable": sum(p.numel() for p in model.parameters())}
    )
    prompter = RewardPrompter(processor, num_frames=script_args.num_frames, max_side=script_args.max_side)

    training_args.remove_unused_columns = False
    training_args.dataset_kwargs = {"skip_prepare_dataset": True}
    training_args.metric_for_best_model = "mae"
    training_args.greater_is_better = False
    training_args.label_names = ["labels"]
    peft_config = None
    if model_args.use_peft:
        model_args.lora_target_modules = _lora_target(model_args)
        peft_config = get_peft_config(model_args)
        peft_config.modules_to_save = sorted({*(peft_config.modules_to_save or []), "merger"})

    summary = {
        "base_model": model_args.model_name_or_path,
        "dataset": script_args.dataset_name,
        "frozen_parameters": counts["frozen"],
        "trainable_parameters": counts["trainable"],
        "hyperparameters": {
            "learning_rate": training_args.learning_rate,
            "weight_decay": training_args.weight_decay,
            "per_device_train_batch_size": training_args.per_device_train_batch_size,
            "gradient_accumulation_steps": training_args.gradient_accumulation_steps,
            "world_size": world,
            "effective_batch_size": script_args.effective_batch_size,
            "num_train_epochs": training_args.num_train_epochs,
            "max_steps": training_args.max_steps,
            "num_frames": script_args.num_frames,
            "max_side": script_args.max_side,
            "freeze_vision_tower": script_args.freeze_vision_tower,
            "use_peft": bool(model_args.use_peft),
            "bf16": bool(training_args.bf16),
            "train_rows": len(train),
            "validation_rows": len(validation),
        },
    }
    return SFTTrainer(
        model=model,
        args=training_args,
        data_collator=RewardCollator(prompter, train_eos=script_args.train_eos),
        train_dataset=train,
        eval_dataset=validation,
        processing_class=processor,
        compute_metrics=compute_reward_metrics(prompter.score_token_ids),
        preprocess_logits_for_metrics=answer_logits(prompter.score_token_ids),
        peft_config=peft_config,
        callbacks=[ReloadBestCheckpointCallback(), TrainingSummaryCallback(summary)],
    )
