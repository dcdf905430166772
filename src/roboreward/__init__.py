"""RoboReward: vision-language reward models for robotics, the Hugging Face way.

The package is imported lazily: ``import roboreward`` is cheap, and heavy parts (torch,
transformers, decoders) load when first used.

    >>> import roboreward
    >>> roboreward.rubric.parse_answer("ANSWER: 5")
    5
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0.dev0"

_SUBMODULES = ("builder", "cli", "episode", "rubric", "scoring", "sim", "sources", "testing", "video")
#: Public names re-exported from submodules, loaded on first use.
_EXPORTS = {
    "Episode": "episode",
    "RewardModel": "scoring",
    "ScoreResult": "models.results",
    "ServedRewardModel": "models.served",
}

__all__ = ["__version__", *_SUBMODULES, *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
