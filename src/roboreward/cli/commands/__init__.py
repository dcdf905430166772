"""The ``roboreward`` sub-commands, one module each, as TRL's ``trl/cli/commands/``: each has
``add_parser(commands)`` (its flags) and ``run(args)`` (parse, call, print).

A command's module is imported when that command runs (`load`), so ``roboreward --help`` and light
commands do not pay for the heavy ones' imports (torch, datasets).
"""

import importlib
from types import ModuleType

__all__ = ["COMMANDS", "load"]

#: Each command and its one-line help, in the order ``roboreward --help`` lists them.
COMMANDS = {
    "probe": "print a video's frames, fps, size, duration and codec",
    "build": "build RoboReward from LeRobot (OXE), RoboArena and manifest sources into a Hub-ready folder",
    "sim": "render procedural tabletop episodes with ground-truth rewards in LeRobot or RoboArena layout",
    "relabel": "add counterfactual negatives, paraphrases and temporal clips to a built dataset",
    "review": "human verification of a split: the review app, or `review export` for the verified dataset",
    "score": "score one episode video against a task with a reward model (1..5, probabilities, reward)",
    "curve": "a reward model's progress curve over one episode (JSON and a PNG with the frames)",
    "annotate": "score every episode of a LeRobot dataset; keep only the episodes at or above a score",
    "serve": "serve a reward model over HTTP for robots and data collectors (POST /score, GET /health)",
    "train": "fine-tune a reward model with TRL from a recipe (--config NAME), as trl_training/sft.py",
    "space": "serve the Gradio Space on a reward model (--model SPEC): scores, frames, progress curve",
    "bench": "benchmark reward models on RoboRewardBench: MAE and mean win rate per subset",
    "card": "render a dataset or model card from the toolkit's reports",
    "push": "release a dataset, model, Space or metric to the Hugging Face Hub",
    "demo": "the offline end-to-end demo (what `make demo` runs): sim -> build -> train -> bench -> card",
}


def load(name: str) -> ModuleType:
    """The module of command ``name`` (imported on first use).

    Args:
        name: a key of `COMMANDS`.
    """
    return importlib.import_module(f"{__name__}.{name}")
