"""How the package imports itself: lazy re-exports from subpackages, and the old module paths.

Each package's ``__init__`` names what it re-exports (`lazy_exports`), so ``import roboreward.bench``
stays cheap and the heavy parts (torch, transformers, decoders) load when a name is first used.

Modules that moved into packages (``roboreward.scoring`` is now `roboreward.models.local`, ...) keep
importing from their old paths for one release, with a DeprecationWarning naming the new path:
`MOVED` is the one table of those paths, and `install_moved_finder` puts a finder for them on
``sys.meta_path``.

    >>> MOVED["roboreward.scoring"]
    'roboreward.models.local'
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = ["MOVED", "install_moved_finder", "lazy_exports"]

#: Old module path -> new module path (the old paths work until the next minor release).
MOVED: dict[str, str] = {
    "roboreward.annotate": "roboreward.apps.annotate",
    "roboreward.curves": "roboreward.apps.curves",
    "roboreward.demo": "roboreward.apps.demo",
    "roboreward.hub": "roboreward.apps.hub",
    "roboreward.rl": "roboreward.apps.rl",
    "roboreward.bench_examples": "roboreward.bench.examples",
    "roboreward.bench_parallel": "roboreward.bench.parallel",
    "roboreward.bench_predictors": "roboreward.bench.predictors",
    "roboreward.bench_quality": "roboreward.bench.quality",
    "roboreward.bench_report": "roboreward.bench.report",
    "roboreward.builder": "roboreward.dataset.builder",
    "roboreward.pipeline": "roboreward.dataset.pipeline",
    "roboreward.dataset_folder": "roboreward.dataset.folder",
    "roboreward.splits": "roboreward.dataset.splits",
    "roboreward.folder_lock": "roboreward.dataset.lock",
    "roboreward.fingerprint": "roboreward.dataset.fingerprint",
    "roboreward.cards": "roboreward.dataset.cards",
    "roboreward.scoring": "roboreward.models.local",
    "roboreward.client": "roboreward.models.remote",
    "roboreward.serve": "roboreward.serving.server",
    "roboreward.training_data": "roboreward.training.data",
    "roboreward.testing_tokenizer": "roboreward.testing.tokenizer",
    "roboreward.testing_server": "roboreward.testing.chat_server",
    "roboreward.sources.lerobot_layout": "roboreward.sources.lerobot.layout",
    "roboreward.sources.lerobot_filter": "roboreward.sources.lerobot.filter",
    "roboreward.relabel.config": "roboreward.relabel.recipe",
}


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[list[str], Callable[[str], Any]]:
    """``__all__`` and a module ``__getattr__`` that imports ``exports[name]`` on first use.

    Args:
        package: the package's ``__name__``.
        exports: public name -> the module that defines it: relative to ``package``, or a full
            ``roboreward.`` path.
    """

    def __getattr__(name: str) -> Any:
        if name in exports:
            where = exports[name]
            module = where if where.startswith("roboreward.") else f"{package}.{where}"
            return getattr(importlib.import_module(module), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return sorted(exports), __getattr__


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old paths of `MOVED` and loads the module at its new path in their place."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None  # a placeholder, replaced in sys.modules by exec_module

    def exec_module(self, module: ModuleType) -> None:
        new = MOVED[module.__name__]
        warnings.warn(
            f"{module.__name__} moved to {new}; the old path will be removed in the next release",
            DeprecationWarning,
            stacklevel=2,  # warnings skips the import machinery's own frames
        )
        # The import system returns what sys.modules holds after exec_module: the module itself.
        sys.modules[module.__name__] = importlib.import_module(new)


def install_moved_finder() -> None:
    """Put the finder of `MOVED`'s old paths on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
