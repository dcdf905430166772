"""`card`, `push` and `probe` on the dataclass parser: every argument from the command line or a recipe."""

from __future__ import annotations

import argparse
from dataclasses import MISSING, dataclass, field, fields

import pytest

from roboreward.cli import build_parser, main
from roboreward.cli.commands.card import CardDatasetConfig, CardModelConfig
from roboreward.cli.commands.probe import ProbeConfig
from roboreward.cli.commands.push import PushConfig, PushModelConfig
from roboreward.config import RecipeParser, from_namespace

#: Each command path and the dataclass its arguments come from.
COMMANDS = {
    ("probe",): ProbeConfig,
    ("card", "dataset"): CardDatasetConfig,
    ("card", "model"): CardModelConfig,
    ("push", "dataset"): PushConfig,
    ("push", "model"): PushModelConfig,
}


def _parser(path: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = build_parser(path[0])
    for name in path:
        parser = next(a.choices for a in parser._actions if isinstance(a.choices, dict))[name]
    return parser


def _config(cls, argv):
    return from_namespace(cls, build_parser(argv[0]).parse_args(argv))


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_every_field_is_an_argument_with_its_help_and_default(path):
    parser = _parser(path)
    (cls,) = parser.dataclass_types  # the command's dataclass (push: with the kind's help for PATH)
    assert issubclass(cls, COMMANDS[path])
    actions = {a.dest: a for a in parser._actions}
    for f in fields(cls):
        action = actions[f.name]
        assert action.help == f.metadata["help"], f.name
        if f.default is not MISSING:  # a default: the argument is optional and shows it
            assert not action.required and action.default == f.default, f.name
    assert "config" in actions  # and a --config recipe


def test_probe_takes_the_video_from_the_command_line_or_the_recipe(tmp_path):
    assert _config(ProbeConfig, ["probe", "a.mp4", "--json"]) == ProbeConfig("a.mp4", json=True)
    assert _config(ProbeConfig, ["probe", "--json", "a.mp4"]) == ProbeConfig("a.mp4", json=True)
    recipe = tmp_path / "probe.yaml"
    recipe.write_text("video: b.mp4\njson: true\n")
    assert _config(ProbeConfig, ["probe", "--config", str(recipe)]) == ProbeConfig("b.mp4", json=True)
    given = _config(ProbeConfig, ["probe", "--config", str(recipe), "c.mp4", "--no-json"])
    assert given == ProbeConfig("c.mp4", json=False)  # the command line wins, a switch can be cleared


def test_probe_without_a_video_names_it(capsys):
    with pytest.raises(SystemExit):
        build_parser("probe").parse_args(["probe"])
    assert "the following arguments are required: VIDEO" in capsys.readouterr().err


def test_push_switches_take_no_value_so_the_path_may_follow_them():
    config = _config(PushModelConfig, ["push", "model", "--dry-run", "runs/3b", "--repo-id", "org/m"])
    assert config == PushModelConfig("runs/3b", "org/m", dry_run=True)
    config = _config(
        PushConfig, ["push", "space", "--private", "spaces_demo", "--repo_id", "org/s", "--json"]
    )
    assert (config.path, config.private, config.json, config.dry_run) == ("spaces_demo", True, True, False)


def test_push_reads_its_recipe_and_the_flags_win(tmp_path):
    recipe = tmp_path / "push.yaml"
    recipe.write_text(
        "path: runs/3b\nrepo_id: org/RoboReward-3B\ndry_run: true\ninclude_training_state: true\n"
    )
    argv = ["push", "model", "--config", str(recipe)]
    assert _config(PushModelConfig, argv) == PushModelConfig(
        "runs/3b", "org/RoboReward-3B", dry_run=True, include_training_state=True
    )
    changed = _config(PushModelConfig, [*argv, "runs/8b", "--no-dry-run", "--revision", "v2"])
    assert (changed.path, changed.dry_run, changed.revision) == ("runs/8b", False, "v2")


def test_push_model_only_switches_belong_to_push_model(capsys):
    with pytest.raises(SystemExit):
        build_parser("push").parse_args(
            ["push", "dataset", "d", "--repo-id", "o/n", "--include-training-state"]
        )
    assert "unrecognized arguments: --include-training-state" in capsys.readouterr().err


def test_push_export_without_dry_run_is_refused_when_the_config_is_made(capsys):
    with pytest.raises(ValueError, match=r"^--export writes the release for review: use it with --dry-run$"):
        PushConfig("runs/3b", "org/m", export="review")
    assert main(["push", "model", "runs/3b", "--repo-id", "org/m", "--export", "review"]) == 1
    err = capsys.readouterr().err
    assert err == "roboreward push: error: --export writes the release for review: use it with --dry-run\n"


def test_card_reads_its_recipe(tmp_path):
    recipe = tmp_path / "card.yaml"
    recipe.write_text("checkpoint: runs/3b\nbench: bench_out\nbench_model: runs/3b\nrepo_id: org/m\n")
    config = _config(CardModelConfig, ["card", "model", "--config", str(recipe), "--license", "mit"])
    assert config == CardModelConfig(
        "runs/3b", bench="bench_out", bench_model="runs/3b", repo_id="org/m", license="mit"
    )
    assert CardModelConfig("runs/3b").license == "apache-2.0"
    assert _config(CardDatasetConfig, ["card", "dataset", "ds", "--repo-id", "org/d"]) == CardDatasetConfig(
        "ds", repo_id="org/d"
    )


def test_positional_and_switch_fields_on_their_own():
    @dataclass
    class Settings:
        count: int = field(metadata={"help": "how many", "positional": True})
        name: str = field(default="x", metadata={"help": "a name", "positional": True})
        loud: bool = field(default=True, metadata={"help": "shout", "switch": True})

    parser = RecipeParser(Settings)
    assert from_namespace(Settings, parser.parse_args(["3"])) == Settings(3, "x", True)
    assert from_namespace(Settings, parser.parse_args(["4", "y", "--no-loud"])) == Settings(4, "y", False)

    @dataclass
    class NotABool:
        loud: int = field(default=0, metadata={"help": "shout", "switch": True})

    with pytest.raises(TypeError, match="field 'loud' is a switch but not a bool"):
        RecipeParser(NotABool)
