"""A newcomer's path (issue 18): help on every flag, rows read the HF way, names that resolve without
surprises and fail fast, the toolkit's card in every checkpoint."""

import argparse
import importlib.util
import json
import re
import time
from pathlib import Path

import datasets
import pytest
from conftest import write_manifest

from roboreward import locate, video
from roboreward.cli import build_parser
from roboreward.cli import main as cli_main
from roboreward.dataset import cards
from roboreward.dataset.builder import BuildConfig, build

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A small built folder named ``roboreward`` (as the README's commands name it)."""
    root = tmp_path_factory.mktemp("newcomer")
    rows = [{"video": f"ep{i}.mp4", "task": f"open the drawer {i}", "reward": 1 + i % 5} for i in range(4)]
    write_manifest(root, rows)
    out = root / "roboreward"
    build(
        BuildConfig(manifest=[str(root / "m.jsonl")], out=str(out), split_ratios={"test": 1.0}, max_side=32)
    )
    return out


# ---------------------------------------------------------------------------------------------
# CLI help


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("roboreward",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def test_every_command_and_sub_command_documents_each_flag_and_default():
    walked = dict(_parsers(build_parser()))
    assert {
        ("roboreward", "push", "model"),
        ("roboreward", "push", "dataset"),
        ("roboreward", "card", "model"),
        ("roboreward", "review", "export"),
        ("roboreward", "sim"),
        ("roboreward", "demo"),
        ("roboreward", "probe"),
    } <= walked.keys()
    for path, parser in walked.items():
        assert parser.description, f"{' '.join(path)} has no description"
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction) or action.dest in ("help", "version"):
                continue
            name = "/".join(action.option_strings) or action.dest
            assert action.help, f"{' '.join(path)} {name} has no help"
            # "(default: X)" in its --help line, unless there is nothing to show: a switch that is off,
            # a flag that is unset (None, an empty list) or required (test_cli_help checks those).
            if action.option_strings and not action.required and action.default not in (None, False, []):
                shown = formatter._expand_help(action)
                assert "(default: " in shown, f"{' '.join(path)} {name} shows no default: {shown!r}"


def test_push_model_help_is_its_own(capsys):
    with pytest.raises(SystemExit):
        cli_main(["push", "model", "--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: roboreward push model")
    assert "--allow-card-without-results" in out and "model-index" in out


# ---------------------------------------------------------------------------------------------
# Rows read the HF way


def test_a_row_video_is_bytes_and_path_that_roboreward_video_reads_without_torchcodec(built):
    assert importlib.util.find_spec("torchcodec") is None  # datasets' own video decoder is absent
    ds = datasets.load_dataset(str(built))
    row = ds["test"][0]
    assert set(row["video"]) == {"bytes", "path"} and row["video"]["bytes"][4:8] == b"ftyp"
    frames = video.sample_frames(row["video"], num_frames=4)
    assert frames.shape[0] == 4 and frames.shape[-1] == 3 and frames.dtype.name == "uint8"
    assert ds["test"].features["video"] == datasets.Video(decode=False)


def test_the_readme_first_dataset_snippet_runs_as_written(built, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    snippet = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "load_dataset" in b)
    monkeypatch.chdir(built.parent)  # "from the folder's parent"
    namespace: dict = {}
    exec(compile(snippet, "README.md", "exec"), namespace)
    assert sorted(namespace["ds"]) == ["test"]
    assert namespace["frames"].shape[0] == 8


# ---------------------------------------------------------------------------------------------
# Names resolve without surprises


def test_bench_bare_name_never_uses_a_cached_dataset_of_that_name(built, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(built.parent)
    assert len(datasets.load_dataset("roboreward", cache_dir=str(tmp_path / "cache"))["test"]) == 4  # cached
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    started = time.monotonic()
    argv = [
        "bench",
        "--dataset",
        "roboreward",
        "--model",
        "baseline:constant-3",
        "--out",
        str(tmp_path / "b"),
    ]
    assert cli_main(argv) == 1
    err = capsys.readouterr().err
    assert "no such folder: roboreward" in err and "org/name" in err
    assert not (tmp_path / "b" / "results.json").exists()
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("name", ["./robo_reward", "../run-tinyy", "/no/such/run", "~/no-such-run-here"])
def test_a_typo_path_is_no_such_folder_in_under_5_s(name, capsys):
    started = time.monotonic()
    argv = ["bench", "--dataset", name, "--model", "baseline:constant-3"]
    assert cli_main(argv) == 1
    assert time.monotonic() - started < 5
    assert f"error: no such folder: {name} (dataset)" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="no such folder"):
        locate.resolve(name, "model")


def test_an_unreachable_hub_id_fails_within_seconds_saying_what_to_do(monkeypatch, capsys):
    import huggingface_hub.constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens
    started = time.monotonic()
    with pytest.raises(locate.UnreachableHubError) as error:
        locate.resolve("org/roboreward-typo", "model")
    assert time.monotonic() - started < 5
    message = str(error.value)
    assert "cannot reach the Hub for model org/roboreward-typo" in message
    assert "HF_HUB_OFFLINE=1" in message and "./roboreward-typo" in message
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # offline: the cache is the user's choice, nothing is asked
    assert locate.resolve("org/roboreward-typo", "model") == "org/roboreward-typo"


def test_a_local_folder_resolves_to_itself(built, monkeypatch):
    monkeypatch.chdir(built.parent)
    assert locate.resolve("roboreward") == "roboreward"  # an existing folder, even without ./
    assert locate.resolve(str(built)) == str(built)


def test_tiny_cpu_recipe_names_a_model_folder_the_readme_says_how_to_make():
    recipe = (ROOT / "trl_training" / "configs" / "tiny_cpu.yaml").read_text()
    model = re.search(r"^model_name_or_path:\s*(\S+)", recipe, re.M).group(1)
    assert model.startswith("./")
    assert "make_tiny_vlm" in recipe and model.removeprefix("./") in recipe.split("make_tiny_vlm", 1)[1]


# ---------------------------------------------------------------------------------------------
# Cards


def test_a_local_base_model_is_named_by_its_folder(tmp_path):
    checkpoint = tmp_path / "run-tiny"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    summary = {"base_model": str(tmp_path / "models" / "tiny-qwen2_5_vl"), "dataset": "./roboreward"}
    (checkpoint / "training_summary.json").write_text(json.dumps(summary))
    text = cards.render_model_card(checkpoint).read_text()
    assert "`tiny-qwen2_5_vl`" in text and "Qwen-VL checkpoint" not in text
    assert "base_model:" not in text.split("---")[1]  # a local folder is no Hub base model
    hub = cards.render_model_card(checkpoint, base_model="Qwen/Qwen2.5-VL-3B-Instruct").read_text()
    assert "base_model: Qwen/Qwen2.5-VL-3B-Instruct" in hub.split("---")[1]


def test_the_trainer_writes_the_toolkits_card_not_trls(tmp_path):
    from roboreward.training.trainer import RewardSFTTrainer, TrainingSummaryCallback

    class Stub:  # what create_model_card reads of a trainer
        args = argparse.Namespace(output_dir=str(tmp_path / "run"), hub_model_id=None)
        callback_handler = argparse.Namespace(
            callbacks=[
                TrainingSummaryCallback({"base_model": "Qwen/Qwen2.5-VL-3B-Instruct", "best_mae": 0.4})
            ]
        )

        def is_world_process_zero(self):
            return True

        _write_card = RewardSFTTrainer._write_card

    RewardSFTTrainer.create_model_card(Stub(), model_name="run")
    text = (tmp_path / "run" / "README.md").read_text()
    assert "base_model: Qwen/Qwen2.5-VL-3B-Instruct" in text and "RoboRewardBench" in text
    assert "fine-tuned version of [None]" not in text and "pipeline_tag: video-text-to-text" in text


# ---------------------------------------------------------------------------------------------
# GPU recipes


def test_gpu_recipes_decode_in_workers_and_accelerate_configs_take_the_process_count_from_the_launch():
    import yaml

    for recipe in sorted((ROOT / "trl_training" / "configs").glob("qwen*.yaml")):
        config = yaml.safe_load(recipe.read_text())
        assert config["dataloader_num_workers"] == 4, recipe.name
        assert config["dataset_name"].startswith("./"), recipe.name
    configs = sorted((ROOT / "trl_training" / "accelerate_configs").glob("*.yaml"))
    assert len(configs) == 4
    for path in configs:
        assert "num_processes" not in yaml.safe_load(path.read_text()), path.name


# ---------------------------------------------------------------------------------------------
# Every command says what it wrote


def test_a_one_model_bench_prints_no_nan_and_says_what_it_wrote(built, tmp_path, capsys):
    out = tmp_path / "b"
    assert (
        cli_main(["bench", "--dataset", str(built), "--model", "baseline:constant-3", "--out", str(out)]) == 0
    )
    printed = capsys.readouterr().out
    assert "nan" not in printed.lower()
    assert "| 1 | baseline:constant-3 | n/a | " in printed
    assert f"wrote {out}: leaderboard.csv, leaderboard.md, results.json" in printed
    assert not (out / "mean_win_rate.png").exists()  # no win rate to draw for one model
    results = json.loads((out / "results.json").read_text())  # strict JSON: null, never NaN
    assert results["models"]["baseline:constant-3"]["mean_win_rate"] is None
    assert "NaN" not in (out / "results.json").read_text()


def test_sim_says_what_it_wrote(tmp_path, capsys):
    assert cli_main(["sim", "--out", str(tmp_path / "s"), "--episodes", "2"]) == 0
    assert f"wrote 2 lerobot episodes to {tmp_path / 's'}" in capsys.readouterr().out


def test_review_reads_only_an_existing_folder(tmp_path):
    from roboreward.review.split import read_split

    with pytest.raises(FileNotFoundError, match="no such folder: robo_reward"):
        read_split(Path("./robo_reward"), "test")


def test_sft_dataset_bare_name_is_no_such_folder(tmp_path, monkeypatch):
    from roboreward.training.trainer import RewardScriptArguments, load_reward_splits

    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such folder: roboreward"):
        load_reward_splits(RewardScriptArguments(dataset_name="roboreward"))


def test_a_card_never_lists_a_local_dataset_as_hub_metadata(tmp_path, monkeypatch):
    checkpoint = tmp_path / "run"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)  # ./roboreward does not exist here: still a path, not a Hub id
    summary = {"base_model": "Qwen/Qwen2.5-VL-3B-Instruct", "dataset": "./roboreward"}
    front = cards.render_model_card(checkpoint, summary=summary).read_text().split("---")[1]
    assert "datasets:" not in front and "./roboreward" not in front
