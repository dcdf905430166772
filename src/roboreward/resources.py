"""The release folders the toolkit ships: evaluate metric modules, card templates, training and build
recipes and the Space.

They live at the repository's top level (``metrics/``, ``model_cards/``, ``trl_training/``,
``spaces_demo/``, ``dataset_builder/``), the single source of truth. A wheel carries a copy of each
inside the package, as ``roboreward/_data/NAME`` (``setup.py``'s build step puts it there); an
editable install, or a checkout on ``PYTHONPATH``, has the repository's. `resource_dir` looks in that
order, so every module finds them the same way, whatever the install.

    >>> from roboreward import resources
    >>> (resources.resource_dir("model_cards") / "dataset_card.md.j2").is_file()
    True

A command's ``--config`` takes a recipe's path or the name of a shipped one (`recipe_file`):

    >>> resources.recipe_file("tiny_cpu", "train").name, sorted(resources.shipped_recipes("train"))[-1]
    ('tiny_cpu.yaml', 'tiny_cpu')
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PACKAGE_DATA", "RECIPES", "SHIPPED", "recipe_file", "resource_dir", "shipped_recipes"]

#: The top-level folders shipped inside the package (``setup.py`` copies the same ones).
SHIPPED = ("metrics", "model_cards", "trl_training", "spaces_demo", "dataset_builder")
#: Where the recipes of each kind that the toolkit ships live: a `SHIPPED` folder and its sub-folder.
RECIPES = {
    "build": ("dataset_builder", "configs"),
    "relabel": ("dataset_builder", "configs"),
    "train": ("trl_training", "configs"),
}
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


def shipped_recipes(kind: str) -> dict[str, Path]:
    """The recipes the toolkit ships for ``kind`` (a key of `RECIPES`), by name (the file's stem).

    Args:
        kind: what the recipes configure: ``build``, ``relabel``, ``train``; any other kind has none.
    """
    if kind not in RECIPES:
        return {}
    folder, sub = RECIPES[kind]
    found = resource_dir(folder) / sub
    return {p.stem: p for p in sorted(found.glob("*.yaml"))} if found.is_dir() else {}


def recipe_file(name: str | os.PathLike[str], kind: str) -> Path:
    """The YAML file ``--config NAME`` means: a file that exists, else a recipe the toolkit ships.

    One rule for every command: an existing file is that file; ``tiny_cpu`` (or ``tiny_cpu.yaml``)
    is the shipped recipe of that name; a shipped recipe's path in the repository
    (``trl_training/configs/tiny_cpu.yaml``) is that recipe from any folder, so the commands the
    README writes run after ``pip install`` too.

    Args:
        name: what ``--config`` was given.
        kind: what the recipe configures (``build``, ``relabel``, ``train``, ...), which decides the
            shipped recipes looked among, and the message.

    Raises:
        FileNotFoundError: neither a file nor a shipped recipe's name; the message lists those.
    """
    text = os.fspath(name)
    path = Path(text).expanduser()
    if path.is_file():
        return path
    shipped = shipped_recipes(kind)
    stem = path.name[: -len(path.suffix)] if path.suffix in (".yaml", ".yml") else path.name
    folder = RECIPES.get(kind)
    bare = path.parent == Path(".") and not text.startswith((".", "/", "~"))
    if stem in shipped and (bare or (folder is not None and path.parent.as_posix() == "/".join(folder))):
        return shipped[stem]
    names = f"the toolkit ships {', '.join(shipped)}" if shipped else f"the toolkit ships no {kind} recipe"
    raise FileNotFoundError(
        f"cannot read {kind} recipe {text}: no such file, nor a shipped recipe's name ({names})"
    )
