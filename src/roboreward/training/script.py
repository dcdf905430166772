"""The training script: a recipe and flags in, the best checkpoint (lowest validation MAE) out.

One code path for every way training is started: ``roboreward train --config NAME`` (any install),
``accelerate launch -m roboreward.cli train --config NAME`` (one copy per process), and
``accelerate launch trl_training/sft.py --config trl_training/configs/NAME.yaml`` in a checkout (the
script calls `main`). ``--config`` takes a recipe's path or the name of one the toolkit ships
(`roboreward.resources.recipe_file`); every field of `RewardScriptArguments`, `RewardSFTConfig` and
TRL's `ModelConfig` is a flag that wins over the recipe.

Example:
    >>> from roboreward.training.script import parse_args
    >>> script, config, model = parse_args(["--config", "tiny_cpu", "--max_steps", "1"])  # doctest: +SKIP
    >>> config.max_steps, script.num_frames  # doctest: +SKIP
    (1, 4)
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from roboreward.resources import recipe_file

__all__ = ["main", "make_parser", "parse_args", "resolve_config", "train"]


def resolve_config(argv: Sequence[str]) -> list[str]:
    """``argv`` with its ``--config`` value (``--config X`` or ``--config=X``) made a recipe file's path.

    Args:
        argv: the training flags.

    Raises:
        FileNotFoundError: the value is neither a file nor a shipped training recipe's name.
    """
    out = list(argv)
    for index, arg in enumerate(out):
        if arg == "--config" and index + 1 < len(out):
            out[index + 1] = os.fspath(recipe_file(out[index + 1], "train"))
        elif arg.startswith("--config="):
            out[index] = "--config=" + os.fspath(recipe_file(arg.split("=", 1)[1], "train"))
    return out


def make_parser(prog: str | None = None) -> Any:
    """TRL's `TrlParser` over `RewardScriptArguments`, `RewardSFTConfig` and `ModelConfig`.

    Args:
        prog: the program name its usage shows (default: the script's).
    """
    from trl import ModelConfig, TrlParser

    from roboreward.training.trainer import RewardScriptArguments, RewardSFTConfig

    return TrlParser((RewardScriptArguments, RewardSFTConfig, ModelConfig), prog=prog)


def parse_args(argv: Sequence[str] | None = None, prog: str | None = None) -> tuple[Any, Any, Any]:
    """(script arguments, training arguments, model arguments) of a command line.

    Args:
        argv: the flags (default: ``sys.argv[1:]``); ``--config`` may name a shipped recipe.
        prog: the program name shown by ``--help``.
    """
    argv = resolve_config(sys.argv[1:] if argv is None else argv)
    return make_parser(prog).parse_args_and_config(args=argv)


def train(script_args: Any, training_args: Any, model_args: Any) -> Any:
    """Train, save the best checkpoint (lowest validation MAE) with its processor, push if asked.

    Args:
        script_args: a `RewardScriptArguments`.
        training_args: a `RewardSFTConfig` (or TRL's `SFTConfig`).
        model_args: TRL's `ModelConfig`.

    Returns:
        The trainer, after training (its process group ended).
    """
    from roboreward.training.trainer import build_trainer

    trainer = build_trainer(script_args, training_args, model_args)
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    # load_best_model_at_end put the lowest-validation-MAE weights in place; save_model writes them
    # with the processor.
    trainer.save_model(training_args.output_dir)
    trainer.accelerator.print(f"Best checkpoint (lowest validation MAE) saved to {training_args.output_dir}.")
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.dataset_name)
    trainer.end()  # finish the trackers and the process group
    return trainer


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Parse ``argv`` (a recipe and flags), set up logging, train; returns the exit code.

    Args:
        argv: the flags (default: ``sys.argv[1:]``).
        prog: the program name shown by ``--help``.
    """
    script_args, training_args, model_args = parse_args(argv, prog)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("roboreward").setLevel(logging.INFO if training_args.should_log else logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    train(script_args, training_args, model_args)
    return 0
