"""One configuration mechanism: dataclass fields with help and defaults, a YAML recipe, generated flags."""

import argparse
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest
import yaml

from roboreward.bench.run import BenchConfig
from roboreward.cli import build_parser, main
from roboreward.cli.commands.bench import BenchArguments
from roboreward.cli.commands.review import ReviewConfig, ReviewExportConfig
from roboreward.cli.commands.serve import ServeConfig
from roboreward.cli.commands.sim import SimConfig
from roboreward.config import RecipeParser, comma_list, from_namespace, weights, with_metadata
from roboreward.dataset.builder import BuildConfig
from roboreward.relabel import RelabelConfig

RECIPES = Path(__file__).resolve().parents[1] / "dataset_builder" / "configs"
CONFIGURED = {"build": BuildConfig, "relabel": RelabelConfig, "bench": BenchArguments, "serve": ServeConfig}
CONFIGURED |= {"review": ReviewConfig, "sim": SimConfig}


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next(a.choices for a in parser._actions if isinstance(a.choices, dict))


def _parse(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(argv)


# ---------------------------------------------------------------------------------------------
# The recipes that ship load through the command line


@pytest.mark.parametrize("recipe", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_recipe_loads_through_its_command(recipe):
    data = yaml.safe_load(recipe.read_text())
    if recipe.name.startswith("relabel_"):
        config = from_namespace(
            RelabelConfig, _parse(["relabel", "in", "--out", "o", "--config", str(recipe)])
        )
        expected = RelabelConfig.from_yaml(recipe)
        assert config == expected
        assert config.describe()["stages"] == data["relabel"]["stages"]
        assert config.clip_scores == {float(k): v for k, v in data["relabel"]["clip_scores"].items()}
    else:
        args = _parse(["build", "--config", str(recipe), "--manifest", "m.jsonl"])
        config = from_namespace(BuildConfig, args)
        assert config == BuildConfig.from_yaml(recipe, manifest=["m.jsonl"])
        for key, value in data.items():
            assert getattr(config, key) == value, key


def test_a_build_recipe_relabel_section_and_a_relabel_recipe_agree(tmp_path):
    served = RECIPES / "relabel_served.yaml"
    args = _parse(["build", "--manifest", "m.jsonl", "--relabel", str(served)])
    assert from_namespace(BuildConfig, args).relabel == yaml.safe_load(served.read_text())["relabel"]
    build_recipe = tmp_path / "b.yaml"
    build_recipe.write_text(yaml.safe_dump({"manifest": ["m.jsonl"], **yaml.safe_load(served.read_text())}))
    # the relabel command reads a build recipe's relabel: section
    relabel = from_namespace(
        RelabelConfig, _parse(["relabel", "in", "--out", "o", "--config", str(build_recipe)])
    )
    assert relabel == RelabelConfig.from_yaml(served)


# ---------------------------------------------------------------------------------------------
# Defaults written once, flags win over the recipe


@pytest.mark.parametrize("command", sorted(CONFIGURED))
def test_defaults_come_from_the_dataclass_and_every_flag_has_help_and_shows_its_default(command):
    parser = _subparsers(build_parser())[command]
    cls = CONFIGURED[command]
    actions = {a.dest: a for a in parser._actions}
    for f in cls.__dataclass_fields__.values():
        action = actions[f.name]
        assert action.help and action.help == f.metadata["help"], f.name
        if not action.required:
            default = f.default_factory() if callable(f.default_factory) else f.default
            assert action.default == default, f.name
    entries = re.split(r"\n  (?=-)", parser.format_help().split("\noptions:\n", 1)[1])
    shown = {entry.split()[0]: " ".join(entry.split()) for entry in entries}
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, f"{command} {action.option_strings[0]} has no help"
            # a default is shown unless it says nothing (None, empty, off) or the flag is required
            silent = action.default in (None, [], {}) or action.default is False or action.required
            assert ("(default: " in shown[action.option_strings[0]]) != silent, action.option_strings[0]


def test_flags_win_over_the_recipe_and_repeatable_flags_replace_its_list(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("lerobot: [a, b]\nseed: 3\nmax_frames: 8\nsplit_ratios: {train: 1, test: 1}\n")
    config = from_namespace(BuildConfig, _parse(["build", "--config", str(recipe), "--seed", "9"]))
    assert (config.seed, config.max_frames, config.lerobot) == (9, 8, ["a", "b"])
    assert config.split_ratios == {"train": 1, "test": 1}
    argv = ["build", "--config", str(recipe), "--lerobot", "c", "--lerobot", "d", "--split-ratios", "train=3"]
    config = from_namespace(BuildConfig, _parse(argv))
    assert config.lerobot == ["c", "d"] and config.split_ratios == {"train": 3.0}
    assert (
        from_namespace(
            BuildConfig, _parse(["build", "--manifest", "m", "--video-key", "cam"])
        ).lerobot_video_key
        == "cam"
    )


def test_a_recipe_can_set_what_a_flag_requires(tmp_path):
    recipe = tmp_path / "bench.yaml"
    recipe.write_text(
        "dataset: ./roboreward\nmodels: [baseline:random, baseline:constant-3]\nbatch_size: 2\n"
    )
    config = from_namespace(BenchArguments, _parse(["bench", "--config", str(recipe), "--model", "runs/3b"]))
    assert isinstance(config, BenchConfig)
    assert (config.dataset, config.models, config.batch_size, config.out) == (
        "./roboreward",
        ["runs/3b"],
        2,
        "bench_out",
    )
    with pytest.raises(SystemExit):
        _parse(["bench", "--model", "runs/3b"])  # no --dataset and no recipe


def test_review_export_reads_its_own_recipe(tmp_path):
    recipe = tmp_path / "export.yaml"
    recipe.write_text("db: r.sqlite\ndataset: built\nout: verified\npolicy: unanimous\n")
    config = from_namespace(
        ReviewExportConfig, _parse(["review", "export", "--config", str(recipe), "--split", "val"])
    )
    assert config == ReviewExportConfig(
        db="r.sqlite", dataset="built", out="verified", split="val", policy="unanimous"
    )


# ---------------------------------------------------------------------------------------------
# Bad input: one line, exit 1, before any work


def test_a_recipe_typo_is_one_line_naming_the_key(tmp_path, capsys):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("manifest: [m.jsonl]\nmax_frame: 3\n")
    assert main(["build", "--config", str(recipe), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("roboreward build: error: unknown fields in build recipe") and "'max_frame'" in err
    assert "\n" not in err and not (tmp_path / "o").exists()
    recipe.write_text("episodes: 2\nlayot: roboarena\n")
    assert main(["sim", "--out", str(tmp_path / "s"), "--config", str(recipe)]) == 1
    assert "unknown fields in sim recipe" in capsys.readouterr().err and not (tmp_path / "s").exists()
    assert main(["serve", "--config", str(tmp_path / "missing.yaml")]) == 1
    assert "cannot read serve recipe" in capsys.readouterr().err


def test_a_flag_in_the_wrong_syntax_is_one_line(tmp_path, capsys):
    assert main(["build", "--manifest", "m.jsonl", "--split-ratios", "train:1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "roboreward build: error: --split-ratios wants train=W,validation=W,test=W, got 'train:1'"


# ---------------------------------------------------------------------------------------------
# The mechanism itself


@dataclass
class Example:
    name: str = field(metadata={"help": "a name"})
    tags: list[str] = field(default_factory=lambda: ["x"], metadata={"help": "tags", "parse": comma_list})
    ratio: dict[str, float] = field(default_factory=dict, metadata={"help": "ratios", "parse": weights})
    steps: int = field(default=3, metadata={"help": "steps"})


def test_recipe_parser_on_its_own(tmp_path):
    parser = RecipeParser(Example, recipe="example")
    config = from_namespace(
        Example, parser.parse_args(["--name", "a", "--tags", "p, q", "--ratio", "a=1,b=2"])
    )
    assert config == Example(name="a", tags=["p", "q"], ratio={"a": 1.0, "b": 2.0}, steps=3)
    recipe = tmp_path / "e.yaml"
    recipe.write_text("name: r\ntags: [m, n]\nsteps: 5\n")
    config = from_namespace(Example, parser.parse_args(["--config", str(recipe), "--steps", "7"]))
    assert config == Example(name="r", tags=["m", "n"], ratio={}, steps=7)


def test_a_field_without_help_is_refused_when_the_parser_is_built():
    @dataclass
    class NoHelp:
        seed: int = 0

    with pytest.raises(TypeError, match="'seed' has no help"):
        RecipeParser(NoHelp)


def test_with_metadata_keeps_the_owner_defaults_and_checks_names():
    config = BenchArguments(dataset="d", models=["m"])
    assert isinstance(config, BenchConfig) and asdict(config) == asdict(
        BenchConfig(dataset="d", models=["m"])
    )
    with pytest.raises(TypeError, match=r"no fields \['modle'\]"):
        with_metadata(BenchConfig, modle={"help": "typo"})


def _all_parsers(parser: argparse.ArgumentParser, name: str = "roboreward"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action.choices, dict):
            for sub, subparser in action.choices.items():
                yield from _all_parsers(subparser, f"{name} {sub}")


def test_every_flag_of_every_command_has_help():
    parsers = dict(_all_parsers(build_parser()))
    assert {"roboreward review export", "roboreward card model", "roboreward demo"} <= set(parsers)
    for name, parser in parsers.items():
        for action in parser._actions:
            if not isinstance(action.choices, dict):
                assert action.help, f"{name} {action.option_strings or action.dest} has no help"


def test_only_the_command_given_is_loaded():
    code = (
        "import sys; from roboreward.cli import build_parser; "
        "build_parser('probe').parse_args(['probe', 'x.mp4']); "
        "print(sorted(m for m in sys.modules if m.startswith('roboreward.cli.commands.')), "
        "'torch' in sys.modules, 'datasets' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['roboreward.cli.commands.probe'] False False"
