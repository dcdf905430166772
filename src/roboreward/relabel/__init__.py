"""Counterfactual relabeling, temporal clipping and text augmentation (the paper's §4 cleaning and
augmentation), on local transformers models or OpenAI-compatible endpoints, cached and resumable.

Two ways in:

- ``roboreward build ... --relabel relabel.yaml``: a `Relabeler` runs as the builder's ``augment``
  hook, between reading the sources and splitting, so derived rows share their rollout's split.
- ``roboreward relabel IN_DIR --out OUT_DIR``: `roboreward.dataset.pipeline.relabel_dataset` relabels a
  folder built earlier and keeps each row's split.

Both are composed in `roboreward.dataset.pipeline`, a layer above this package and the builder: the stages
work on Episodes and know nothing of dataset folders.

The modules: `config` (`RelabelConfig`), `backends` (models behind ``complete(stage, prompt,
frames)``), `prompts` (versioned templates), `schema` (answer validation), `cache` (the on-disk
call cache), `calls` (cached, counted, retried calls), one module per stage (`rewrite`,
`counterfactual`, `paraphrase`, `clipping`) and `relabeler` (the hook).

    >>> from roboreward.relabel import RelabelConfig
    >>> from roboreward.dataset.pipeline import relabel_dataset
    >>> config = RelabelConfig(vlm="openai:http://localhost:8000/v1#Qwen/Qwen2.5-VL-7B-Instruct",
    ...                        llm="openai:http://localhost:8001/v1#Qwen/Qwen3-4B-Instruct-2507")
    >>> relabel_dataset("roboreward", "roboreward_relabeled", config)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from roboreward.relabel import prompts
from roboreward.relabel.backends import (
    BackendError,
    OpenAIChat,
    PooledBackend,
    ScriptedBackend,
    TransformersBackend,
    parse_backend,
)
from roboreward.relabel.cache import CallCache
from roboreward.relabel.recipe import STAGES, RelabelConfig
from roboreward.relabel.relabeler import Relabeler
from roboreward.relabel.schema import Rejected, extract_json

__all__ = [
    "STAGES",
    "BackendError",
    "CallCache",
    "OpenAIChat",
    "PooledBackend",
    "Rejected",
    "RelabelConfig",
    "Relabeler",
    "ScriptedBackend",
    "TransformersBackend",
    "augment_from_config",
    "extract_json",
    "parse_backend",
    "prompts",
]


def augment_from_config(settings: dict[str, Any] | RelabelConfig, progress: bool = True) -> Relabeler:
    """The builder's ``augment`` hook for a recipe's ``relabel:`` settings (`BuildConfig.relabel`),
    checked now (no model is loaded yet).

    Args:
        settings: `RelabelConfig` fields (a build recipe's ``relabel:`` section), or a config.
        progress: show progress bars while relabeling.

    Raises:
        ValueError: an unknown field or a bad value, naming it.
    """
    config = settings if isinstance(settings, RelabelConfig) else RelabelConfig.from_dict(settings)
    return Relabeler(config, progress=progress)
