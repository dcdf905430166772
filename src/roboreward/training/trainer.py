"""Fine-tune Qwen2.5-VL / Qwen3-VL reward models with TRL, the RoboReward paper's way.

`trl_training/sft.py` is the thin script; everything it needs lives here:

- `RewardScriptArguments`: the dataset and the paper's knobs TRL's SFTConfig lacks (target effective
  batch, frame sampling).
- `RewardSFTConfig`: TRL's `SFTConfig` with the paper's training settings as its defaults (lr 3e-6,
  weight decay 0.05, the best checkpoint by validation MAE) and those this trainer needs.
- `load_reward_splits`: a built RoboReward folder or a Hub id with ``video``, ``task``, ``reward``;
  every row is checked before training starts (`validate_rows`, no video decoded).
- `RewardCollator`: each row becomes the rubric prompt of `roboreward.models.local.RewardPrompter` (the
  very tokens and frames `RewardModel.score` sees, ``ANSWER: `` prefilled) followed by the answer
  ``<reward><|im_end|>``; the loss is on those answer tokens only.
- `freeze_vision_tower`: patch embedding and vision blocks frozen; the merger ("fusion layers") and
  the LLM trained.
- `RewardSFTTrainer`: TRL's SFTTrainer that evaluates with one forward pass over the answer positions
  only, and reloads the best checkpoint correctly for Qwen-VL models.
- `answer_logits` + `compute_reward_metrics`: validation MAE from the five answer-token logits (the
  numbers `RewardModel.score` reads), computed by the ``metrics/mae`` evaluate module.
- `TrainingSummaryCallback`: ``training_summary.json`` with every evaluation's MAE and the best step.

Example (what ``trl_training/sft.py`` does):
    >>> from trl import ModelConfig
    >>> script = RewardScriptArguments(dataset_name="./roboreward")  # doctest: +SKIP
    >>> model_args = ModelConfig("Qwen/Qwen2.5-VL-3B-Instruct", dtype="bfloat16")
    >>> args = RewardSFTConfig(output_dir="run")  # doctest: +SKIP
    >>> trainer = build_trainer(script, args, model_args)  # doctest: +SKIP
    >>> trainer.train()  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate.utils import is_peft_model
from transformers import TrainerCallback
from trl import SFTConfig, SFTTrainer

from roboreward import locate, rubric
from roboreward.dataset import cards
from roboreward.models.inputs import RewardPrompter, set_pixel_budget
from roboreward.models.settings import InferenceSettings, save_settings
from roboreward.training.data import IGNORE_INDEX, RewardCollator, load_reward_splits, validate_rows

__all__ = [
    "IGNORE_INDEX",
    "RewardCollator",
    "RewardSFTConfig",
    "RewardSFTTrainer",
    "RewardScriptArguments",
    "TrainingSummaryCallback",
    "accumulation_steps",
    "answer_logits",
    "answer_positions",
    "build_trainer",
    "compute_reward_metrics",
    "freeze_vision_tower",
    "inference_settings",
    "load_reward_splits",
    "parameter_counts",
    "reward_training_args",
    "validate_rows",
]

logger = logging.getLogger(__name__)


@dataclass
class RewardScriptArguments:
    """What to train on, and the paper's settings that TRL's SFTConfig does not have."""

    dataset_name: str = field(
        default="roboreward",
        metadata={
            "help": "a folder built by `roboreward build`, or a Hub dataset id with video, task, reward"
        },
    )
    dataset_config: str | None = field(default=None, metadata={"help": "dataset config name, if any"})
    dataset_train_split: str = field(default="train", metadata={"help": "the split to train on"})
    dataset_test_split: str = field(
        default="validation", metadata={"help": "the split whose MAE selects the best checkpoint"}
    )
    effective_batch_size: int = field(
        default=64,
        metadata={
            "help": "per-device batch x gradient accumulation x processes; the accumulation is derived from "
            "it for the number of processes the run has (the paper: 64)"
        },
    )
    prompt: str = field(
        default=rubric.DEFAULT_PROMPT,
        metadata={
            "help": "the prompt preset the model is trained with, saved in the checkpoint's "
            f"roboreward_settings.json so every consumer prompts it the same way: one of "
            f"{', '.join(rubric.PROMPT_PRESETS)}"
        },
    )
    sampler: str = field(
        default="toolkit",
        metadata={
            "help": "how frames are picked: toolkit (num_frames evenly, or one every 1/fps s, shrunk to "
            "max_side) or qwen_vl_utils (Qwen-VL's own policy: fps frames a second, 4 to 768, its pixel "
            "budget; the published RoboReward-4B/8B's); saved with the checkpoint"
        },
    )
    num_frames: int = field(default=16, metadata={"help": "frames sampled evenly over each video"})
    fps: float | None = field(
        default=None, metadata={"help": "sample videos at this rate instead of num_frames frames"}
    )
    max_side: int | None = field(
        default=448, metadata={"help": "shrink decoded frames to this longer side before the processor"}
    )
    max_pixels: int | None = field(
        default=None,
        metadata={
            "help": "the video processor's pixel budget (saved with the processor, so scoring uses it)"
        },
    )
    cameras: list[str] | None = field(
        default=None,
        metadata={
            "help": "the cameras each rollout is shown with, in this order, as separate videos of one "
            "prompt (the rows of one rollout, differing in camera, are grouped), e.g. left right; one "
            "camera trains on that camera's rows; saved with the checkpoint (None: every row as built)"
        },
    )
    freeze_vision_tower: bool = field(
        default=True, metadata={"help": "freeze the vision encoder (patch embedding and blocks)"}
    )
    train_eos: bool = field(
        default=True, metadata={"help": "also train the <|im_end|> after the score, so generation stops"}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "use only the first N train rows"})
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "use only the first N validation rows"}
    )


#: Metrics where lower is better (TrainingArguments would take any name not ending in "loss" as higher).
LOWER_IS_BETTER = ("mae",)


@dataclass
class RewardSFTConfig(SFTConfig):
    r"""Configuration of `RewardSFTTrainer`: TRL's `SFTConfig` with the RoboReward paper's settings.

    As TRL's configs do for their trainers, this one holds the defaults of the recipe (RoboReward
    §4.3) and the settings the reward trainer needs, so `build_trainer` changes nothing but the
    gradient accumulation (derived from ``effective_batch_size`` and the number of processes, known
    only at launch). Every field works from a YAML recipe and the command line (`trl.TrlParser`).

    > [!NOTE]
    > These parameters have defaults different from `SFTConfig`:
    > - `learning_rate`: `3e-6` (the paper's) instead of `2e-5`.
    > - `weight_decay`: `0.05` (the paper's) instead of `0.0`.
    > - `metric_for_best_model`: `"mae"`, the validation MAE of the score (lower is better:
    >   `greater_is_better` follows it), instead of the loss.
    > - `remove_unused_columns`: `False` (`RewardCollator` reads the rows' video, task and reward).
    > - `dataset_kwargs`: `{"skip_prepare_dataset": True}` (the collator builds each row's prompt).
    > - `label_names`: `["labels"]` (what the collator returns and evaluation reads).

    Raises:
        ValueError: ``remove_unused_columns`` true, or ``dataset_kwargs`` asking TRL to prepare the
            dataset: the collator would get rows without their video, task and reward.

    >>> args = RewardSFTConfig(output_dir="run", use_cpu=True, bf16=False, report_to="none")
    >>> args.learning_rate, args.weight_decay, args.metric_for_best_model, args.greater_is_better
    (3e-06, 0.05, 'mae', False)
    """

    learning_rate: float = field(
        default=3e-6, metadata={"help": "The initial learning rate for AdamW (the paper's 3e-6)."}
    )
    weight_decay: float = field(
        default=0.05, metadata={"help": "Weight decay (the paper's 0.05), not on biases and norms."}
    )
    metric_for_best_model: str | None = field(
        default="mae",
        metadata={"help": "The metric that selects the best checkpoint: the validation MAE of the score."},
    )
    remove_unused_columns: bool = field(
        default=False,
        metadata={"help": "Must stay false: the collator reads the rows' video, task and reward columns."},
    )
    dataset_kwargs: dict[str, Any] | str | None = field(
        default_factory=lambda: {"skip_prepare_dataset": True},
        metadata={"help": "Dataset preparation options: skip_prepare_dataset must stay true."},
    )
    label_names: list[str] | None = field(
        default_factory=lambda: ["labels"],
        metadata={"help": "The batch keys that hold the labels (the collator's labels)."},
    )

    def __post_init__(self) -> None:
        if self.greater_is_better is None and self.metric_for_best_model in LOWER_IS_BETTER:
            self.greater_is_better = False
        super().__post_init__()  # a JSON-string dataset_kwargs becomes a mapping here
        if self.remove_unused_columns:
            raise ValueError(
                "remove_unused_columns must be false: RewardCollator reads the rows' video, task and reward"
            )
        kwargs = dict(self.dataset_kwargs or {})
        if not kwargs.get("skip_prepare_dataset", True):
            raise ValueError(
                "dataset_kwargs skip_prepare_dataset must be true: RewardCollator builds each row's prompt"
            )
        self.dataset_kwargs = {**kwargs, "skip_prepare_dataset": True}
        self.label_names = self.label_names or ["labels"]


def reward_training_args(training_args: SFTConfig, gradient_accumulation_steps: int) -> SFTConfig:
    """A copy of ``training_args`` for `RewardSFTTrainer`, with the accumulation derived at launch.

    A `RewardSFTConfig` is copied as it is. A plain `SFTConfig` (built before this class existed, or
    by code that knows only TRL) gets the settings `RewardSFTConfig` fixes: the rows' columns kept, the
    dataset not prepared by TRL, ``labels`` as the labels, the best checkpoint by the lowest MAE.
    ``training_args`` itself is not changed.

    Args:
        training_args: the recipe's training settings.
        gradient_accumulation_steps: from `accumulation_steps` for this run's processes.
    """
    args = copy.copy(training_args)
    if not isinstance(training_args, RewardSFTConfig):
        args.remove_unused_columns = False
        args.dataset_kwargs = {**(training_args.dataset_kwargs or {}), "skip_prepare_dataset": True}
        args.metric_for_best_model = "mae"
        args.greater_is_better = False
        args.label_names = ["labels"]
    args.gradient_accumulation_steps = gradient_accumulation_steps
    return args


# ---------------------------------------------------------------------------------------------
# Model


def _vision_tower(model: Any) -> Any:
    for name, module in model.named_modules():
        if name == "visual" or name.endswith(".visual"):
            return module
    raise ValueError(f"{type(model).__name__} has no vision tower ('visual') to freeze")


def _is_merger(name: str) -> bool:
    # Qwen2.5-VL: visual.merger.*; Qwen3-VL: visual.merger.* and visual.deepstack_merger_list.N.*
    return "merger" in name


def parameter_counts(model: Any) -> dict[str, int]:
    """``{"frozen": n, "trainable": n}`` parameters (full sizes, also under DeepSpeed ZeRO-3)."""
    counts = {"frozen": 0, "trainable": 0}
    for param in model.parameters():
        counts["trainable" if param.requires_grad else "frozen"] += getattr(param, "ds_numel", param.numel())
    return counts


def freeze_vision_tower(model: Any) -> dict[str, int]:
    """Freeze the vision encoder (patch embedding, position embedding, blocks); keep the merger and LLM.

    The merger ("fusion layers" in the paper; for Qwen3-VL also its DeepStack mergers) is every
    vision parameter whose name holds ``merger``. Returns `parameter_counts` afterwards.
    """
    for name, param in _vision_tower(model).named_parameters():
        if not _is_merger(name):
            param.requires_grad_(False)
    return parameter_counts(model)


def accumulation_steps(effective_batch_size: int, per_device_batch_size: int, world_size: int) -> int:
    """Gradient accumulation that makes ``per_device x accumulation x world == effective``.

    >>> accumulation_steps(64, 2, 8)
    4
    """
    per_step = per_device_batch_size * world_size
    if effective_batch_size < per_step or effective_batch_size % per_step:
        raise ValueError(
            f"effective_batch_size {effective_batch_size} is not a multiple of per-device batch "
            f"{per_device_batch_size} x {world_size} process(es) = {per_step}"
        )
    return effective_batch_size // per_step


def _merger_modules(model: Any) -> list[str]:
    """Names of the merger modules (for PEFT's ``modules_to_save``: trained fully beside LoRA)."""
    pattern = re.compile(r"(^|\.)(merger|deepstack_merger_list\.\d+)$")
    return [name for name, _ in model.named_modules() if pattern.search(name)]


def _lora_target(model_args: Any) -> Any:
    if model_args.lora_target_modules:
        return model_args.lora_target_modules
    # The LLM's projections only: the vision blocks' MLPs share these names and stay frozen.
    return r"^(?!.*visual).*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)$"


# ---------------------------------------------------------------------------------------------
# Validation MAE


def answer_positions(labels: torch.Tensor) -> torch.Tensor:
    """Per row, the position whose logits predict the score: the one before the first label."""
    first = (labels != IGNORE_INDEX).int().argmax(dim=1)
    return (first - 1).clamp(min=0)


def answer_logits(score_token_ids: tuple[int, ...]) -> Any:
    """A ``preprocess_logits_for_metrics`` keeping, per row, the logits of ``1``..``5`` where the score
    is predicted: (batch, 5) instead of (batch, length, vocab).

    It takes full logits (batch, length, vocab), or the (batch, vocab) logits at the answer position
    that `RewardSFTTrainer` evaluates.
    """
    ids = torch.tensor(score_token_ids)

    def keep(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if isinstance(logits, tuple):
            logits = logits[0]
        if logits.dim() == 3:
            rows = torch.arange(logits.shape[0], device=logits.device)
            logits = logits[rows, answer_positions(labels).to(logits.device)]
        return logits[:, ids.to(logits.device)].float()

    return keep


def compute_reward_metrics(score_token_ids: tuple[int, ...]) -> Any:
    """A ``compute_metrics`` returning ``{"mae": ...}``: argmax over the five answer logits vs the label.

    The prediction is the score `RewardModel.score` would give; the MAE comes from the toolkit's
    ``metrics/mae`` evaluate module (`roboreward.metrics.load`).
    """
    from roboreward import metrics

    to_score = {token: score for score, token in zip(rubric.SCORES, score_token_ids, strict=True)}
    mae = metrics.load("mae")

    def compute(eval_prediction: Any) -> dict[str, float]:
        logits = np.asarray(eval_prediction.predictions)
        labels = np.asarray(eval_prediction.label_ids)
        predictions = (logits.argmax(axis=-1) + rubric.MIN_SCORE).tolist()
        first = (labels != IGNORE_INDEX).argmax(axis=1)
        references = [to_score[int(labels[i, j])] for i, j in enumerate(first)]
        return {"mae": float(mae.compute(predictions=predictions, references=references)["mae"])}

    return compute


class TrainingSummaryCallback(TrainerCallback):
    """Writes ``output_dir/training_summary.json`` at the end of training.

    It holds every evaluation's MAE with its step (read from the trainer's log history, so a resumed
    run keeps the evaluations made before it stopped), the best step and MAE, the best checkpoint,
    the effective hyper-parameters and the frozen / trainable parameter counts of the trained model.
    """

    def __init__(self, summary: dict[str, Any]):
        self.summary = summary

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any):
        if model is not None:  # the model as trained: after PEFT wrapping, if any
            counts = parameter_counts(model)
            self.summary.update(frozen_parameters=counts["frozen"], trainable_parameters=counts["trainable"])

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any):
        if not state.is_world_process_zero:
            return
        evals = [
            {"step": entry["step"], "mae": float(entry["eval_mae"])}
            for entry in state.log_history
            if "eval_mae" in entry
        ]
        best = min(evals, key=lambda e: (e["mae"], e["step"])) if evals else None
        self.summary.update(
            evals=evals,
            best_step=best["step"] if best else None,
            best_mae=best["mae"] if best else None,
            best_checkpoint=state.best_model_checkpoint,
            global_step=state.global_step,
        )
        path = Path(args.output_dir) / "training_summary.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.summary, indent=2, default=str) + "\n")


# ---------------------------------------------------------------------------------------------
# The trainer


def inference_settings(script_args: RewardScriptArguments) -> InferenceSettings:
    """The inference settings a recipe trains with, written into every checkpoint it saves.

    Args:
        script_args: the recipe's `RewardScriptArguments` (prompt, num_frames / fps, max_side, max_pixels,
            cameras).

    Raises ValueError for an unknown prompt preset or frame settings that select nothing.
    """
    return InferenceSettings(
        prompt=script_args.prompt,
        num_frames=None if script_args.fps else script_args.num_frames,
        fps=script_args.fps,
        max_side=None if script_args.sampler in ("qwen_vl_utils", "processor") else script_args.max_side,
        max_pixels=script_args.max_pixels,
        sampler=script_args.sampler,
        cameras=tuple(script_args.cameras) if script_args.cameras else None,
        source="the training recipe",
    )


class RewardSFTTrainer(SFTTrainer):
    """TRL's SFTTrainer with three changes for reward VLMs.

    - Evaluation runs one forward pass that builds logits for the answer positions only
      (``logits_to_keep``) and hands on the (batch, vocab) logits where the score is predicted, with
      the loss over the answer tokens. TRL 1.16 would run its fused-loss pass and then a second pass
      building the full (batch, length, vocab) logits (deprecated there, to go in TRL 2).
    - The best checkpoint is reloaded with ``from_pretrained``: transformers 5's Trainer loads it by
      raw state-dict keys, which Qwen-VL checkpoints hold under their original names
      (``model.layers.*``) while the model has ``model.language_model.*``; every key comes out
      missing and the *last* weights silently stay. DeepSpeed, FSDP and PEFT checkpoints reload
      through the Trainer's own paths, which work.
    - Every saved model (each checkpoint and the final one) carries the inference settings it was
      trained with (`roboreward.models.settings`, ``roboreward_settings.json``), read by every
      consumer, so the checkpoint is scored as it was trained.
    - The model card is the toolkit's (`roboreward.dataset.cards.render_model_card`: the base model from the
      recipe in ``base_model:``, the rubric, the training summary), not TRL's generic one: TRL writes
      its card into ``output_dir`` at each checkpoint and on ``push_to_hub``, through
      `create_model_card`, which is replaced here; the final ``save_model`` writes it again with the
      summary of the finished run.
    """

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        super().save_model(output_dir, _internal_call=_internal_call)
        if self.args.should_save:
            save_settings(self.data_collator.prompter.settings, output_dir or self.args.output_dir)
            if not _internal_call:
                self._write_card(output_dir or self.args.output_dir)

    def create_model_card(self, model_name: str | None = None, *args: Any, **kwargs: Any) -> None:
        """Write the toolkit's model card into ``output_dir`` (TRL's generic card never is)."""
        if self.is_world_process_zero():
            self._write_card(self.args.output_dir, model_name)

    def _write_card(self, folder: str, model_name: str | None = None) -> None:
        summary = next(
            (cb.summary for cb in self.callback_handler.callbacks if isinstance(cb, TrainingSummaryCallback)),
            {},
        )
        cards.render_model_card(
            folder,
            summary=summary,
            model_name=model_name,
            repo_id=self.args.hub_model_id,
        )

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        labels = inputs["labels"]
        model_inputs = {k: v for k, v in inputs.items() if k != "labels"}
        length = labels.shape[1]
        # From the position predicting the earliest label to the end (left padding: answers end rows).
        keep = length - int(answer_positions(labels).min())
        with torch.no_grad(), self.compute_loss_context_manager():
            logits = model(**model_inputs, use_cache=False, logits_to_keep=keep).logits.float()
        targets = labels[:, length - keep + 1 :]
        predicted = logits[:, :-1]
        loss = torch.nn.functional.cross_entropy(
            predicted.reshape(-1, predicted.shape[-1]), targets.reshape(-1), ignore_index=IGNORE_INDEX
        )
        mask = targets != IGNORE_INDEX
        correct = (predicted.argmax(-1) == targets) & mask
        self._metrics["eval"]["mean_token_accuracy"].append((correct.sum() / mask.sum().clamp(min=1)).item())
        if prediction_loss_only:
            return loss.detach(), None, None
        rows = torch.arange(labels.shape[0], device=logits.device)
        at_answer = logits[rows, answer_positions(labels) - (length - keep)]
        return loss.detach(), at_answer, labels

    def _load_best_model(self):
        if self.is_deepspeed_enabled or self.is_fsdp_enabled or is_peft_model(self.model):
            return super()._load_best_model()
        from transformers import AutoModelForImageTextToText

        path = self.state.best_model_checkpoint
        logger.info("loading the best checkpoint %s (mae %s)", path, self.state.best_metric)
        # One extra copy of the weights in CPU memory, for the time of the copy.
        best = AutoModelForImageTextToText.from_pretrained(path, dtype=next(self.model.parameters()).dtype)
        self.model.load_state_dict(best.state_dict(), strict=True)
        return None


def _world_size() -> int:
    from accelerate import PartialState

    return PartialState().num_processes


def build_trainer(script_args: RewardScriptArguments, training_args: SFTConfig, model_args: Any) -> Any:
    """The trainer of a RoboReward recipe: data checked, accumulation derived, tower frozen, MAE selection.

    Every row of the train and validation splits is checked before any model is loaded. The trainer
    gets a copy of ``training_args`` (`reward_training_args`) whose ``gradient_accumulation_steps``
    comes from ``effective_batch_size`` and the number of processes; ``training_args`` is not changed.

    Args:
        script_args: the dataset and the paper's knobs (`RewardScriptArguments`).
        training_args: a `RewardSFTConfig` (a plain `SFTConfig` gets its fixed settings, see
            `reward_training_args`).
        model_args: TRL's ``ModelConfig`` (the base model, dtype, LoRA).

    Raises:
        ValueError: a bad prompt preset or frame settings, an effective batch the per-device batch
            does not divide, a malformed row (naming its split, index and id).
    """
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import get_peft_config

    inference_settings(script_args)  # an unknown prompt preset or bad frame settings fail first
    world = _world_size()
    accumulation = accumulation_steps(
        script_args.effective_batch_size, training_args.per_device_train_batch_size, world
    )
    if training_args.gradient_accumulation_steps not in (1, accumulation):
        logger.warning(
            "gradient_accumulation_steps %d is replaced by %d, derived from effective_batch_size %d",
            training_args.gradient_accumulation_steps,
            accumulation,
            script_args.effective_batch_size,
        )
    args = reward_training_args(training_args, accumulation)
    logger.info(
        "effective batch %d = %d per device x %d gradient accumulation x %d process(es)",
        script_args.effective_batch_size,
        args.per_device_train_batch_size,
        accumulation,
        world,
    )
    train, validation = load_reward_splits(script_args)  # fails on a bad row before any model loads

    locate.resolve(model_args.model_name_or_path, "model")  # "no such folder" now, not after the data
    processor = AutoProcessor.from_pretrained(
        model_args.model_name_or_path,
        revision=model_args.model_revision,
        trust_remote_code=args.trust_remote_code,
    )
    # Saved with the processor, so RewardModel.from_pretrained(output_dir) uses the same budget.
    set_pixel_budget(processor, max_pixels=script_args.max_pixels, min_pixels=None)
    dtype = model_args.dtype if model_args.dtype in (None, "auto") else getattr(torch, model_args.dtype)
    model = AutoModelForImageTextToText.from_pretrained(
        model_args.model_name_or_path,
        revision=model_args.model_revision,
        trust_remote_code=args.trust_remote_code,
        dtype=dtype,
        attn_implementation=model_args.attn_implementation,
    )
    if script_args.freeze_vision_tower:
        freeze_vision_tower(model)
    prompter = RewardPrompter(processor, settings=inference_settings(script_args))

    peft_config = None
    if model_args.use_peft:
        lora_args = copy.copy(model_args)  # the caller's ModelConfig stays as given
        lora_args.lora_target_modules = _lora_target(model_args)
        peft_config = get_peft_config(lora_args)
        peft_config.modules_to_save = sorted({*(peft_config.modules_to_save or []), *_merger_modules(model)})

    counts = parameter_counts(model)  # replaced by the counts of the model as trained (PEFT) at train begin
    summary = {
        "base_model": model_args.model_name_or_path,
        "dataset": script_args.dataset_name,
        "frozen_parameters": counts["frozen"],
        "trainable_parameters": counts["trainable"],
        "hyperparameters": {
            "learning_rate": args.learning_rate,
            "weight_decay": args.weight_decay,
            "lr_scheduler_type": getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type),
            "per_device_train_batch_size": args.per_device_train_batch_size,
            "gradient_accumulation_steps": accumulation,
            "world_size": world,
            "effective_batch_size": script_args.effective_batch_size,
            "num_train_epochs": args.num_train_epochs,
            "max_steps": args.max_steps,
            "prompt": script_args.prompt,
            "sampler": script_args.sampler,
            "num_frames": None if script_args.fps else script_args.num_frames,
            "fps": script_args.fps,
            "max_side": script_args.max_side,
            "max_pixels": script_args.max_pixels,
            "cameras": list(script_args.cameras) if script_args.cameras else None,
            "freeze_vision_tower": script_args.freeze_vision_tower,
            "train_eos": script_args.train_eos,
            "use_peft": bool(model_args.use_peft),
            "bf16": bool(args.bf16),
            "activation_checkpointing": bool(args.activation_checkpointing),
            "seed": args.seed,
            "train_rows": len(train),
            "validation_rows": len(validation),
        },
    }
    return RewardSFTTrainer(
        model=model,
        args=args,
        data_collator=RewardCollator(prompter, train_eos=script_args.train_eos),
        train_dataset=train,
        eval_dataset=validation,
        processing_class=processor,
        compute_metrics=compute_reward_metrics(prompter.score_token_ids),
        preprocess_logits_for_metrics=answer_logits(prompter.score_token_ids),
        peft_config=peft_config,
        callbacks=[TrainingSummaryCallback(summary)],
    )
