"""RoboReward: vision-language reward models for robotics, the Hugging Face way.

The package is imported lazily: ``import roboreward`` is cheap, and heavy parts (torch,
transformers, decoders) load when first used.

    >>> import roboreward
    >>> roboreward.rubric.parse_answer("ANSWER: 5")
    5

Its folders are its layers (each imports only those below it): ``cli/`` over ``apps/`` (annotate,
curves, rl, hub, demo), ``bench/``, ``serving/``, ``review/``, ``training/``, ``dataset/``,
``sources/``, ``relabel/``, ``sim/``, ``models/`` (the reward model: `load_reward_model`), the
ground floor (``rubric``, ``video``, ``episode``, ``config``, ...) and ``testing/``.
"""

from __future__ import annotations

import importlib
from typing import Any

from roboreward._imports import install_moved_finder

__version__ = "0.1.0.dev0"

_SUBMODULES = (
    "apps",
    "bench",
    "cli",
    "dataset",
    "episode",
    "models",
    "relabel",
    "review",
    "rubric",
    "serving",
    "sim",
    "sources",
    "testing",
    "training",
    "video",
)
#: Public names re-exported from submodules, loaded on first use.
_EXPORTS = {
    "Episode": "episode",
    "RewardModel": "models.local",
    "RewardScorer": "models.protocol",
    "ScoreResult": "models.results",
    "ServedRewardModel": "models.served",
    "RewardClient": "models.remote",
    "load_reward_model": "models.factory",
    "EpisodicRewardWrapper": "apps.rl",
    "VectorEpisodicRewardWrapper": "apps.rl",
}

__all__ = ["__version__", *_SUBMODULES, *_EXPORTS]

install_moved_finder()


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
