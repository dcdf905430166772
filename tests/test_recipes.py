"""``--config`` takes a recipe's path or the name of one the toolkit ships (issue 26, items 1 and 2):
one resolver, `roboreward.resources.recipe_file`, for every command."""

from pathlib import Path

import pytest
import yaml

from roboreward import resources
from roboreward.cli import build_parser, main
from roboreward.config import from_namespace
from roboreward.dataset.builder import BuildConfig
from roboreward.relabel import RelabelConfig

ROOT = Path(__file__).resolve().parents[1]
BUILD_RECIPES = ROOT / "dataset_builder" / "configs"


def test_the_shipped_recipes_are_listed_by_name():
    shipped = ["relabel_local", "relabel_served", "roboreward", "smoke"]
    assert sorted(resources.shipped_recipes("build")) == shipped
    assert resources.shipped_recipes("relabel") == resources.shipped_recipes("build")
    assert sorted(resources.shipped_recipes("train")) == [
        "qwen2_5_vl_3b",
        "qwen2_5_vl_7b",
        "qwen3_vl_4b",
        "qwen3_vl_8b",
        "tiny_cpu",
    ]
    assert resources.shipped_recipes("bench") == {}
    assert "dataset_builder" in resources.SHIPPED
    assert resources.resource_dir("dataset_builder") == ROOT / "dataset_builder"


@pytest.mark.parametrize(
    ("given", "kind", "expected"),
    [
        ("roboreward", "build", BUILD_RECIPES / "roboreward.yaml"),
        ("roboreward.yaml", "build", BUILD_RECIPES / "roboreward.yaml"),
        ("relabel_served", "relabel", BUILD_RECIPES / "relabel_served.yaml"),
        ("tiny_cpu", "train", ROOT / "trl_training" / "configs" / "tiny_cpu.yaml"),
        # the repository path the README writes works from any folder
        ("dataset_builder/configs/smoke.yaml", "build", BUILD_RECIPES / "smoke.yaml"),
        ("trl_training/configs/qwen3_vl_4b.yaml", "train", ROOT / "trl_training/configs/qwen3_vl_4b.yaml"),
    ],
)
def test_a_name_or_the_repository_path_is_the_shipped_recipe(given, kind, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the checkout: the name is not a file here
    assert resources.recipe_file(given, kind) == expected


def test_a_file_that_exists_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "smoke").write_text("seed: 5\n")
    assert resources.recipe_file("smoke", "build") == Path("smoke")


@pytest.mark.parametrize("given", ["nosuch", "./smoke.yaml", "other/configs/smoke.yaml", "/abs/smoke"])
def test_anything_else_is_refused_naming_the_shipped_recipes(given, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as error:
        resources.recipe_file(given, "build")
    assert str(error.value) == (
        f"cannot read build recipe {given}: no such file, nor a shipped recipe's name (the toolkit ships "
        "relabel_local, relabel_served, roboreward, smoke)"
    )


def test_build_and_relabel_take_a_shipped_recipe_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = build_parser("build").parse_args(["build", "--config", "smoke", "--manifest", "m.jsonl"])
    config = from_namespace(BuildConfig, args)
    assert config == BuildConfig.from_yaml(BUILD_RECIPES / "smoke.yaml", manifest=["m.jsonl"])
    assert (config.name, config.max_side, config.crf) == ("smoke", 128, 28)
    args = build_parser("relabel").parse_args(["relabel", "in", "--out", "o", "--config", "relabel_served"])
    expected = RelabelConfig.from_yaml(BUILD_RECIPES / "relabel_served.yaml")
    assert from_namespace(RelabelConfig, args) == expected
    # build's --relabel takes a name too
    args = build_parser("build").parse_args(["build", "--manifest", "m.jsonl", "--relabel", "relabel_local"])
    served = yaml.safe_load((BUILD_RECIPES / "relabel_local.yaml").read_text())["relabel"]
    assert from_namespace(BuildConfig, args).relabel == served


def test_an_unknown_recipe_name_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["build", "--config", "robo_reward", "--manifest", "m.jsonl"]) == 1
    assert capsys.readouterr().err == (
        "roboreward build: error: cannot read build recipe robo_reward: no such file, nor a shipped "
        "recipe's name (the toolkit ships relabel_local, relabel_served, roboreward, smoke)\n"
    )
