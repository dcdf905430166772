"""Training a small reward model inside another command (the demo, the PushT imitation experiment):
``roboreward train`` on the shipped ``tiny_cpu`` recipe in this process, its console copied to a log.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["Tee", "train_tiny_reward_model"]


class Tee:
    """Within ``with``: what is printed goes to the console and to a log file too.

    Args:
        path: the log file (written anew).
    """

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> Tee:
        self.file = self.path.open("w", encoding="utf-8")
        self.streams = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = (_Both(stream, self.file) for stream in self.streams)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.stdout, sys.stderr = self.streams
        self.file.close()


class _Both:
    def __init__(self, stream: Any, file: Any):
        self.stream, self.file = stream, file

    def write(self, text: str) -> int:
        self.file.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.file.flush()
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:  # isatty, encoding, fileno: the console's
        return getattr(self.stream, name)


def train_tiny_reward_model(
    base: Path,
    dataset: Path,
    run: Path,
    *,
    train_steps: int,
    learning_rate: float,
    batch_size: int,
    num_frames: int,
    max_side: int,
    seed: int,
) -> None:
    """``roboreward train`` (`roboreward.training.script`, what ``trl_training/sft.py`` runs) on the
    shipped ``tiny_cpu`` recipe, in this process, with the Trainer's progress bar (and its logs) on
    the console.

    Args:
        base: the model to fine-tune.
        dataset: a built dataset folder with train and validation splits.
        run: the output (checkpoint) folder.
        train_steps: optimizer steps; a fifth of them apart, the model is evaluated and saved.
        learning_rate: the peak learning rate (cosine schedule, 5 % warm-up).
        batch_size: examples per step (one device, no accumulation).
        num_frames: frames per video.
        max_side: the longer side of each frame, in pixels.
        seed: the training seed.
    """
    from roboreward.training.script import parse_args, train

    eval_steps = max(train_steps // 5, 1)
    flags = {
        "model_name_or_path": base,
        "dataset_name": dataset,
        "output_dir": run,
        "max_steps": train_steps,
        "eval_steps": eval_steps,
        "save_steps": eval_steps,
        "learning_rate": learning_rate,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 0.05,
        "per_device_train_batch_size": batch_size,
        "effective_batch_size": batch_size,
        "num_frames": num_frames,
        "max_side": max_side,
        "logging_steps": max(eval_steps // 2, 1),
        "seed": seed,
    }
    argv = ["--config", "tiny_cpu"]
    argv += [item for key, value in flags.items() for item in (f"--{key}", str(value))]
    # parse + train, not the script's main: the demo's console (and its log file) keep the logging
    # set up here, no handler is bound to the tee that closes after this step.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    train(*parse_args(argv, prog="roboreward train"))
