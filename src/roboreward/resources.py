"""The release folders the toolkit ships: evaluate metric modules, card templates, training recipes and
the Space.

They live at the repository's top level (``metrics/``, ``model_cards/``, ``trl_training/``,
``spaces_demo/``), the single source of truth. A wheel carries a copy of each inside the package,
as ``roboreward/_data/NAME`` (``setup.py``'s build step puts it there); an editable install, or a
checkout on ``PYTHONPATH``, has the repository's. `resource_dir` looks in that order, so every module
finds them the same way, whatever the install.

    >>> from roboreward import resources
    >>> (resources.resource_dir("model_cards") / "dataset_card.md.j2").is_file()
    True
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PACKAGE_DATA", "SHIPPED", "resource_dir"]

#: The top-level folders shipped inside the package (``setup.py`` copies the same ones).
SHIPPED = ("metrics", "model_cards", "trl_training", "spaces_demo")
#: Where, inside the installed package, a wheel puts them.
PACKAGE_DATA = "_data"

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """The folder ``name`` (one of `SHIPPED`): the installed package's copy, else the repository's.

    When neither exists, the package's path is returned (it does not exist): callers say what is
    missing and how to install it.

    Args:
        name: the folder's name at the repository's top level, e.g. ``metrics``.
    """
    if name not in SHIPPED:
        raise ValueError(f"unknown resource folder {name!r}; shipped: {', '.join(SHIPPED)}")
    packaged = _PACKAGE / PACKAGE_DATA / name
    repository = _PACKAGE.parent.parent / name  # src/roboreward -> the checkout's top level
    for candidate in (packaged, repository):
        if candidate.is_dir():
            return candidate
    return packaged
