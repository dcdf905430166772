"""One way to configure a command: a dataclass whose fields carry their help and defaults, read from a
YAML recipe (``--config``) and overridden by flags generated from those fields.

As in TRL (``TrlParser``) and transformers (``HfArgumentParser``, whose field rules `RecipeParser`
follows without importing transformers, so ``--help`` stays instant): a field ``seed: int =
field(default=0, metadata={"help": "split seed"})`` becomes ``--seed`` with that help and ``(default:
0)`` in ``--help``; a recipe's ``seed: 7`` replaces the default; ``--seed 9`` on the command line wins
over both. ``--config`` takes a recipe's path or the name of one the toolkit ships (`recipe_file`).

``--help`` shows one spelling per flag (the dashed one; ``--max_side`` is accepted too), each yes/no
field as a switch (``--dry-run``, and ``--no-dry-run`` when it is on), and defaults in the flag's own
syntax, as a recipe writes them (``train=64850,validation=2442,test=3105``); None, empty and off
defaults are not shown. A field's metadata may also hold:

- ``parse``: a function reading the flag's text when the value is not one token, e.g.
  `comma_list` for ``--stages rewrite,paraphrase`` or `weights` for ``--split-ratios train=9,test=1``.
  A recipe gives the value in YAML (a list, a mapping) and skips it.
- ``repeat``: the flag may be given several times (``--lerobot A --lerobot B``); the values given
  replace the recipe's list.
- ``positional``: the value is given without a flag (``roboreward probe VIDEO``); a recipe may give
  it instead.
- ``switch``: kept for older configs: every yes/no field is ``--flag`` / ``--no-flag``, taking no
  value (so ``--dry-run PATH`` never reads PATH as the switch's value).
- ``flag``: the spelling ``--help`` shows when it is not the field's dashed name (bench's ``--model``
  for the field ``models``); the dashed name is still accepted.
- ``aliases``: other accepted spellings (``--help`` names them once, in the flag's help).
- ``metavar``, ``choices``: as for ``argparse``.

    >>> from dataclasses import dataclass, field
    >>> @dataclass
    ... class Settings:
    ...     seed: int = field(default=0, metadata={"help": "split seed"})
    ...     stages: list[str] = field(default_factory=list, metadata={"help": "stages", "parse": comma_list})
    >>> parser = RecipeParser(Settings, recipe="example")
    >>> from_namespace(Settings, parser.parse_args(["--seed", "3", "--stages", "a,b"]))
    Settings(seed=3, stages=['a', 'b'])
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from roboreward.resources import recipe_file

__all__ = [
    "FlagSyntaxError",
    "HelpFormatter",
    "RecipeParser",
    "check_fields",
    "check_range",
    "comma_floats",
    "comma_list",
    "format_default",
    "fraction_scores",
    "from_namespace",
    "read_recipe",
    "recipe_file",
    "relabel_recipe",
    "weights",
    "with_metadata",
]

T = TypeVar("T")

#: Metadata keys this module reads itself (the rest goes to ``argparse.add_argument``).
OWN_KEYS = ("parse", "repeat", "positional", "switch", "flag", "aliases")


class FlagSyntaxError(ValueError):
    """A flag's text is not in the syntax its ``parse`` function reads (the message says which)."""


# ---------------------------------------------------------------------------------------------
# Reading flags whose value is more than one token


def comma_list(text: str) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]``.

    Args:
        text: comma-separated names.
    """
    return [part.strip() for part in text.split(",") if part.strip()]


def comma_floats(text: str) -> list[float]:
    """``"0.25,0.5"`` -> ``[0.25, 0.5]``.

    Args:
        text: comma-separated numbers.
    """
    try:
        return [float(part) for part in comma_list(text)]
    except ValueError:
        raise FlagSyntaxError("comma-separated fractions such as 0.25,0.5,0.75") from None


def _pairs(text: str, key: Callable[[str], Any], value: Callable[[str], Any], syntax: str) -> dict[Any, Any]:
    out = {}
    for part in comma_list(text):
        name, sep, number = part.partition("=")
        try:
            if not sep:
                raise ValueError(part)
            out[key(name.strip())] = value(number)
        except ValueError:
            raise FlagSyntaxError(syntax) from None
    return out


def weights(text: str) -> dict[str, float]:
    """``"train=0.9,test=0.1"`` -> ``{"train": 0.9, "test": 0.1}``.

    Args:
        text: comma-separated ``NAME=WEIGHT`` pairs.
    """
    return _pairs(text, str, float, "train=W,validation=W,test=W")


def fraction_scores(text: str) -> dict[float, int]:
    """``"0.25=2,0.5=3"`` -> ``{0.25: 2, 0.5: 3}``.

    Args:
        text: comma-separated ``FRACTION=SCORE`` pairs.
    """
    return _pairs(text, float, int, "FRACTION=SCORE pairs such as 0.25=2,0.5=3,0.75=4")


# ---------------------------------------------------------------------------------------------
# Recipes


def read_recipe(path: str | os.PathLike[str], what: str, section: str | None = None) -> dict[str, Any]:
    """The mapping a YAML recipe holds (its ``section`` when it has one, e.g. a build recipe's ``relabel:``).

    Args:
        path: the YAML file, or the name of a recipe the toolkit ships for ``what`` (`recipe_file`).
        what: what the recipe configures, for error messages (``build``, ``relabel``, ...).
        section: a key whose mapping, when present, is the recipe (the rest of the file is ignored).

    Raises:
        FileNotFoundError: no such file, and no shipped recipe of that name.
        ValueError: the file cannot be read or is not a mapping.
    """
    path = recipe_file(path, what)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {what} recipe {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{what} recipe {path} must be a mapping of settings")
    if section is not None and isinstance(data.get(section), dict):
        data = data[section]
    return data


def relabel_recipe(path: str) -> dict[str, Any]:
    """A relabel recipe's settings (its ``relabel:`` section, or the whole file); ``build --relabel``.

    Args:
        path: the YAML file (e.g. ``dataset_builder/configs/relabel_served.yaml``), or a shipped
            recipe's name (``relabel_served``).
    """
    return read_recipe(path, "relabel", section="relabel")


# ---------------------------------------------------------------------------------------------
# Flags from dataclass fields


class Repeat(argparse.Action):
    """A flag given once per value; the values given replace the default (or the recipe's list)."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: Any = None
    ) -> None:
        current = getattr(namespace, self.dest, None)
        given = [] if current is self.default or current is None else list(current)
        setattr(namespace, self.dest, [*given, values])


class Switch(argparse.Action):
    """A yes/no flag taking no value: ``--dry-run`` sets it, ``--no-dry-run`` clears it (a recipe's yes)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any):
        names = [s[2:].replace("_", "-") for s in option_strings if s.startswith("--")]
        self.negatives = [f"--no-{name}" for name in dict.fromkeys(names)]
        super().__init__([*option_strings, *self.negatives], dest, nargs=0, **kwargs)

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: Any = None
    ) -> None:
        setattr(namespace, self.dest, option not in self.negatives)

    def format_usage(self) -> str:
        return self.option_strings[0]


def _spellings(field: dataclasses.Field, shown: str | None, aliases: Sequence[str]) -> list[str]:
    """The flag's spellings, the one ``--help`` shows first: ``--max-side``, then ``--max_side``."""
    dashed = f"--{field.name.replace('_', '-')}"
    return list(dict.fromkeys([shown or dashed, dashed, f"--{field.name}", *aliases]))


def _default(field: dataclasses.Field) -> dict[str, Any]:
    if field.default is not dataclasses.MISSING:
        return {"default": field.default}
    if field.default_factory is not dataclasses.MISSING:
        return {"default": field.default_factory()}
    return {"required": True}


def _choice_type(choices: Sequence[Any]) -> Callable[[str], Any]:
    """A flag's text -> the choice it names (``Literal[1, 2]`` takes ``--x 2`` as the number 2)."""
    by_text = {str(choice): choice for choice in choices}
    return lambda text: by_text.get(text, text)


def format_default(value: Any) -> str:
    """A default in the syntax a flag (and a recipe) writes it: lists comma-separated, mappings as
    ``key=value`` pairs, numbers as Python writes them shortest.

    >>> format_default({"train": 64850, "test": 3105}), format_default([0.0, 0.5]), format_default(3e-6)
    ('train=64850,test=3105', '0.0,0.5', '3e-06')
    """
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, dict):
        return ",".join(f"{format_default(k)}={format_default(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ",".join(format_default(v) for v in value)
    return str(value)


class HelpFormatter(argparse.HelpFormatter):
    """``--help`` as a user reads it: one spelling per flag, each default once, in the flag's syntax.

    A flag shows its first spelling (``--max-side PX``; the others are accepted); a switch shows
    ``--name``, and ``--no-name`` too when it is on. A default that says nothing (None, empty, off) or
    belongs to a required flag is not shown.
    """

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings or isinstance(action, argparse._HelpAction | argparse._VersionAction):
            return super()._format_action_invocation(action)
        if isinstance(action, Switch):  # --no-name only where it changes something
            return ", ".join([action.option_strings[0], *action.negatives[: 1 if action.default else 0]])
        if action.nargs == 0:
            return action.option_strings[0]
        default = self._get_default_metavar_for_optional(action)
        return f"{action.option_strings[0]} {self._format_args(action, default)}"

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if getattr(action, "also", None):
            text = f"{text} (also {', '.join(action.also)})"
        value = action.default
        silent = value is None or value is argparse.SUPPRESS or value is False or value in ([], {}, ())
        if action.required or silent or (not action.option_strings and action.nargs != "?"):
            return text
        if isinstance(action, argparse._HelpAction | argparse._VersionAction):
            return text
        return f"{text} (default: {format_default(value).replace('%', '%%')})"

    def _get_default_metavar_for_optional(self, action: argparse.Action) -> str:
        return action.dest.upper()


class RecipeParser(argparse.ArgumentParser):
    """An ``argparse`` parser whose flags are the fields of dataclasses, with a ``--config`` YAML
    recipe, for commands and sub-commands alike (TRL's ``TrlParser``, without importing transformers).

    The recipe is read when the parser parses (so it works as a sub-command's parser too): its keys
    must be fields of the parser's dataclasses and become their defaults (a required field the
    recipe sets is no longer required); the flags given win. Build the dataclass with
    `from_namespace`.

    Args:
        dataclass_types: the dataclass (or dataclasses) whose fields become flags.
        recipe: what the recipe configures, for messages and for the shipped recipes ``--config``
            may name (``build``, ``relabel``, ...); None adds no ``--config`` (a command without one).
        recipe_section: a key whose mapping, when present, is the recipe (``relabel``: a build
            recipe's section works as a relabel recipe).
        **kwargs: passed to ``argparse.ArgumentParser``.
    """

    def __init__(
        self,
        dataclass_types: Any = None,
        recipe: str | None = None,
        recipe_section: str | None = None,
        **kwargs: Any,
    ):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(**kwargs)
        if dataclass_types is None:
            dataclass_types = []
        elif not isinstance(dataclass_types, list | tuple):
            dataclass_types = [dataclass_types]
        self.dataclass_types = list(dataclass_types)
        for dtype in self.dataclass_types:
            hints = typing.get_type_hints(dtype)
            for field in dataclasses.fields(dtype):
                if field.init:
                    self._add_field(field, hints[field.name])
        self.recipe = recipe
        self.recipe_section = recipe_section
        if recipe is not None:
            self.add_argument(
                "--config",
                metavar="YAML",
                help=f"a YAML {recipe} recipe, or the name of one the toolkit ships: its keys are the "
                "flags' names (with _), its values their defaults; the flags given win",
            )

    def _add_field(self, field: dataclasses.Field, kind: Any) -> None:
        metadata = dict(field.metadata)
        if "help" not in metadata:
            raise TypeError(f"field {field.name!r} has no help: add metadata={{'help': ...}}")
        parse, repeat = metadata.pop("parse", None), metadata.pop("repeat", False)
        positional, switch = metadata.pop("positional", False), metadata.pop("switch", False)
        aliases, shown = list(metadata.pop("aliases", [])), metadata.pop("flag", None)
        base = _without_none(kind)
        if positional:
            default = _default(field)
            optional = {} if default.pop("required", False) else {"nargs": "?", **default}
            if base in (int, float):
                optional["type"] = base
            self.add_argument(field.name, **optional, **metadata)
            return
        options = {"dest": field.name, **_default(field), **metadata}
        spellings = _spellings(field, shown, aliases)
        if switch or base is bool:
            if base is not bool:
                raise TypeError(f"field {field.name!r} is a switch but not a bool")
            action = self.add_argument(*spellings, action=Switch, **options)
        elif parse is not None or base is Any:
            # read as text; `from_namespace` applies `parse` (a recipe's YAML value passes as it is)
            action = self.add_argument(*spellings, **options)
        elif repeat:
            item = typing.get_args(base)[0] if typing.get_args(base) else str
            action = self.add_argument(*spellings, action=Repeat, type=item, **options)
        elif typing.get_origin(base) is typing.Literal:
            choices = typing.get_args(base)
            action = self.add_argument(*spellings, type=_choice_type(choices), choices=choices, **options)
        elif typing.get_origin(base) is list:
            item = typing.get_args(base)[0] if typing.get_args(base) else str
            action = self.add_argument(*spellings, type=item, nargs="+", **options)
        else:
            action = self.add_argument(*spellings, type=base if base in (int, float) else None, **options)
        action.also = aliases  # the other spellings --help names, once (`HelpFormatter`)

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:
        """Parse as argparse does, after reading the ``--config`` recipe in ``args`` (if any)."""
        if self.recipe is not None and args is not None:
            # a sub-command's own --config belongs to the sub-command's parser
            commands = {name for a in self._actions if isinstance(a.choices, dict) for name in a.choices}
            args = list(args)
            ends = [i for i, arg in enumerate(args) if arg in commands]
            path = _recipe_path(args[: ends[0]] if ends else args)
            if path is not None:
                self.apply_recipe(path)
        return super().parse_known_args(args, namespace)

    def apply_recipe(self, path: str) -> None:
        """Make the recipe's values the defaults of their flags.

        Args:
            path: the YAML recipe, or the name of one the toolkit ships (`recipe_file`).

        Raises:
            FileNotFoundError: no such file, and no shipped recipe of that name.
            ValueError: the recipe cannot be read, or names a field this command does not have.
        """
        data = read_recipe(path, self.recipe or "the", self.recipe_section)
        known = [f.name for dtype in self.dataclass_types for f in dataclasses.fields(dtype) if f.init]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown fields in {self.recipe} recipe {path}: {unknown}; known: {known}")
        self.set_defaults(**data)
        for action in self._actions:
            if action.dest in data:
                action.required = False


def _without_none(kind: Any) -> Any:
    """``int | None`` -> ``int``; any other annotation as it is."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        others = [a for a in typing.get_args(kind) if a is not type(None)]
        if len(others) == 1:
            return others[0]
        return str if str in others else others[0]
    return kind


def _recipe_path(args: Sequence[str]) -> str | None:
    args = list(args)
    for i, arg in enumerate(args):
        if arg == "--config" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return None


def from_namespace(cls: Callable[..., T], namespace: argparse.Namespace) -> T:
    """The dataclass ``cls`` from the values parsed for its fields (their ``parse`` applied to text).

    Args:
        cls: a dataclass whose fields a `RecipeParser` turned into flags.
        namespace: what the parser returned.

    Raises:
        ValueError: a flag's text is not in its syntax (``--clip-fractions wants ...``), or the
            dataclass refuses the values.
    """
    values = {}
    for field in dataclasses.fields(cls):
        if not field.init or not hasattr(namespace, field.name):
            continue
        value = getattr(namespace, field.name)
        parse = field.metadata.get("parse")
        if parse is not None and isinstance(value, str):
            try:
                value = parse(value)
            except FlagSyntaxError as exc:
                flag = field.name.replace("_", "-")
                raise ValueError(f"--{flag} wants {exc}, got {value!r}") from None
        values[field.name] = value
    return cls(**values)


# ---------------------------------------------------------------------------------------------
# Checking a config's values


def _plural(kind: Any) -> str:
    names = {int: "integers", float: "numbers", str: "strings", bool: "true/false values"}
    return names.get(kind, "values")


def _describe(kind: Any) -> str:
    """``list[str]`` -> ``a list of strings``: a type annotation in the words of an error message."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is list:
        return f"a list of {_plural(args[0])}" if args else "a list"
    if origin is dict:
        return f"a mapping of {_plural(args[0])} to {_plural(args[1])}" if args else "a mapping"
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", type(None): "none"}
    return names.get(kind, getattr(kind, "__name__", str(kind)))


def _matches(value: Any, kind: Any) -> bool:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any or isinstance(kind, TypeVar):
        return True
    if origin is typing.Literal:
        return value in args
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is list:
        return isinstance(value, list) and all(_matches(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(
            _matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items()
        )
    if origin is not None:  # tuple[...], Callable[...], ...: the config checks those itself
        return True
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is type(None):
        return value is None
    return isinstance(value, kind) if isinstance(kind, type) else True


def check_fields(config: Any, skip: Sequence[str] = ()) -> None:
    """Refuse a field whose value is not of its annotated type, or not one of its ``choices``.

    A flag's text is converted by argparse, but a recipe's value (and a Python caller's) reaches the
    config as it is: ``crf: high`` in YAML, or ``--manifest`` given as a number, must fail when the
    config is made, naming the field (the recipe key and, dashed, the flag), not as a traceback later.
    Call it first in ``__post_init__``; the checks of what the values mean follow it.

    Args:
        config: a dataclass instance.
        skip: fields the config checks itself (a value several types may have).

    Raises:
        ValueError: ``crf must be an integer, got 'high'``.

    >>> @dataclasses.dataclass
    ... class Encoding:
    ...     crf: int = 23
    >>> check_fields(Encoding(crf="high"))
    Traceback (most recent call last):
    ...
    ValueError: crf must be an integer, got 'high'
    """
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        if f.name in skip or not f.init:
            continue
        value = getattr(config, f.name)
        if not _matches(value, hints.get(f.name, Any)):
            raise ValueError(f"{f.name} must be {_describe(hints[f.name])}, got {_shown(value)}")
        choices = f.metadata.get("choices")
        if choices is not None and value is not None and value not in choices:
            raise ValueError(f"{f.name} must be one of {', '.join(map(str, choices))}, got {_shown(value)}")


def check_range(config: Any, name: str, low: float | None = None, high: float | None = None) -> None:
    """Refuse a numeric field outside ``low .. high`` (either end may be open; None passes).

    Args:
        config: a dataclass instance whose field ``name`` has passed `check_fields`.
        name: the field.
        low: the smallest value allowed (None: no lower bound).
        high: the largest value allowed (None: no upper bound).

    Raises:
        ValueError: ``crf must be in 0..51, got 60`` (``>= 1`` or ``<= 51`` with one bound).
    """
    value = getattr(config, name)
    if value is None or ((low is None or value >= low) and (high is None or value <= high)):
        return
    bounds = f"in {low:g}..{high:g}" if low is not None and high is not None else None
    bounds = bounds or (f">= {low:g}" if low is not None else f"<= {high:g}")
    raise ValueError(f"{name} must be {bounds}, got {_shown(value)}")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def with_metadata(cls: type[T], **metadata: dict[str, Any]) -> type[T]:
    """``cls`` (a dataclass another module owns) with help and flag metadata added to its fields.

    The subclass keeps the fields' defaults (written once, in ``cls``) and validation; its
    instances are instances of ``cls``.

    Args:
        cls: the dataclass.
        **metadata: field name -> metadata to add (``help``, ``parse``, ``aliases``, ...).
    """
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(metadata) - names)
    if unknown:
        raise TypeError(f"{cls.__name__} has no fields {unknown}")
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        added = dataclasses.field(
            default=f.default,
            default_factory=f.default_factory,
            init=f.init,
            metadata={**f.metadata, **metadata.get(f.name, {})},
        )
        specs.append((f.name, hints[f.name], added))
    return dataclasses.make_dataclass(cls.__name__, specs, bases=(cls,), namespace={"__module__": __name__})
