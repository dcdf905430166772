"""A config checks its own values when it is made (from flags, a recipe or Python), naming the field."""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass
from pathlib import Path

import pytest

from roboreward.apps.demo import DemoConfig
from roboreward.cli import main
from roboreward.cli.commands.review import ReviewConfig, ReviewExportConfig
from roboreward.cli.commands.sim import SimConfig
from roboreward.config import check_fields, check_range
from roboreward.dataset.build_options import H264_PRESETS, BuildConfig, ExportConfig


def _build(**changes) -> BuildConfig:
    return BuildConfig(**{"manifest": ["m.jsonl"], **changes})


# ---------------------------------------------------------------------------------------------
# The checks on their own


def test_check_fields_names_the_field_and_the_type_it_wants():
    @dataclass
    class Settings:
        count: int = 1
        rate: float = 0.5
        name: str | None = None
        names: list[str] = None  # type: ignore[assignment]
        weights: dict[str, float] = None  # type: ignore[assignment]
        mode: typing.Literal["a", "b"] = "a"
        anything: typing.Any = None

    check_fields(Settings(rate=1, names=["x"], weights={"t": 1}, anything=object()))  # an int is a number
    for changes, message in [
        ({"count": True}, "count must be an integer, got True"),
        ({"count": 1.5}, "count must be an integer, got 1.5"),
        ({"rate": "fast"}, "rate must be a number, got 'fast'"),
        ({"name": 3}, "name must be a string or none, got 3"),
        ({"names": ["x", 2]}, "names must be a list of strings, got ['x', 2]"),
        ({"names": "x"}, "names must be a list of strings, got 'x'"),
        ({"weights": {"t": "1"}}, "weights must be a mapping of strings to numbers, got {'t': '1'}"),
        ({"mode": "c"}, "mode must be one of 'a', 'b', got 'c'"),
        ({"names": [1, "x" * 100]}, "names must be a list of strings, got [1, '" + "x" * 72 + "..."),
    ]:
        values = {"names": [], "weights": {}, **changes}
        with pytest.raises(ValueError) as error:
            check_fields(Settings(**values))
        assert str(error.value) == message


def test_check_range_says_which_bound():
    @dataclass
    class Settings:
        crf: int | None = 23

    check_range(Settings(None), "crf", 0, 51)  # None: not set, nothing to check
    check_range(Settings(51), "crf", 0, 51)  # both ends are allowed
    for value, low, high, message in [
        (60, 0, 51, "crf must be in 0..51, got 60"),
        (23, 30, None, "crf must be >= 30, got 23"),
        (23, None, 20, "crf must be <= 20, got 23"),
    ]:
        with pytest.raises(ValueError) as error:
            check_range(Settings(value), "crf", low, high)
        assert str(error.value) == message


# ---------------------------------------------------------------------------------------------
# BuildConfig / ExportConfig


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"crf": 60}, "crf must be in 0..51, got 60"),
        ({"crf": -1}, "crf must be in 0..51, got -1"),
        ({"crf": "high"}, "crf must be an integer, got 'high'"),
        ({"max_shard_size_mb": 0}, "max_shard_size_mb must be >= 1, got 0"),
        ({"max_side": 8}, "max_side must be >= 16, got 8"),
        ({"max_frames": 1}, "max_frames must be >= 2, got 1"),
        ({"num_proc": 0}, "num_proc must be >= 1, got 0"),
        ({"oxe_episodes": 0}, "oxe_episodes must be >= 1, got 0"),
        ({"preset": "fastest"}, f"preset must be one of {', '.join(H264_PRESETS)}, got 'fastest'"),
        ({"name": " "}, "name is empty"),
        ({"manifest": 5}, "manifest must be a list of strings, got 5"),
        ({"manifest": [{"video": "a.mp4"}]}, "manifest must be a list of strings, got [{'video': 'a.mp4'}]"),
        ({"manifest": ["m.jsonl", ""]}, "manifest holds an empty entry: ['m.jsonl', '']"),
        ({"roboarena_cameras": ["top"]}, "roboarena_cameras must be among left, right, wrist, got ['top']"),
        ({"seed": "7"}, "seed must be an integer, got '7'"),
        ({"split_ratios": {"train": "most"}}, "split_ratios must be a mapping of strings to numbers, got"),
        ({"relabel": "relabel.yaml"}, "relabel must be a mapping of relabel settings"),
    ],
)
def test_build_config_refuses_a_bad_value_naming_it(changes, message):
    with pytest.raises(ValueError) as error:
        _build(**changes)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_build_config_takes_paths_and_a_single_source():
    config = BuildConfig(manifest=Path("data") / "m.jsonl", out=Path("out"), lerobot=[Path("toto")])
    assert (config.manifest, config.out, config.lerobot) == ([str(Path("data/m.jsonl"))], "out", ["toto"])
    assert config.preset == "veryfast" and config.crf == 23  # the defaults pass their own checks


def test_export_config_checks_the_same_encoding_settings():
    with pytest.raises(ValueError, match=r"^crf must be in 0\.\.51, got 52$"):
        ExportConfig(crf=52)
    with pytest.raises(ValueError, match=r"^max_shard_size_mb must be >= 1, got -5$"):
        ExportConfig(max_shard_size_mb=-5)


@pytest.mark.parametrize(
    ("recipe", "flags", "message"),
    [
        ("manifest: 5\n", [], "manifest must be a list of strings, got 5"),
        ("manifest: [m.jsonl]\ncrf: [20]\n", [], "crf must be an integer, got [20]"),
        ("manifest: [m.jsonl]\npreset: quick\n", [], "preset must be one of ultrafast,"),
        ("manifest: [m.jsonl]\n", ["--crf", "60"], "crf must be in 0..51, got 60"),
        ("manifest: [m.jsonl]\n", ["--max-shard-size-mb", "0"], "max_shard_size_mb must be >= 1, got 0"),
    ],
)
def test_a_bad_build_value_from_a_recipe_or_a_flag_is_one_line(tmp_path, capsys, recipe, flags, message):
    path = tmp_path / "build.yaml"
    path.write_text(recipe)
    assert main(["build", "--config", str(path), "--out", str(tmp_path / "out"), *flags]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"roboreward build: error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# review, review export, sim, demo


def _review(**changes) -> ReviewConfig:
    return ReviewConfig(**{"dataset": "ds", "db": "r.sqlite", **changes})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"dataset": None},
            "roboreward review needs --dataset DIR and --db FILE (or the `export` sub-command)",
        ),
        ({"port": 0}, "port must be in 1..65535, got 0"),
        ({"port": "7861"}, "port must be an integer, got '7861'"),
        ({"double_fraction": 1.5}, "double_fraction must be in 0..1, got 1.5"),
        ({"annotator": "bob smith"}, "annotator name must be 1-64 characters"),
        ({"auth": ["alice"]}, "--auth must be USER:PASSWORD (the user being an annotator name)"),
        ({"host": "0.0.0.0"}, "--host 0.0.0.0 opens the review app to the network: add --auth USER:PASSWORD"),
    ],
)
def test_review_config_refuses_a_bad_value_naming_it(changes, message):
    with pytest.raises(ValueError) as error:
        _review(**changes)
    assert str(error.value).startswith(message)


def test_review_config_keeps_good_values_normalised():
    config = _review(annotator=" alice ", host="0.0.0.0", auth=["alice:pw", "bob:s3:cret"])
    assert config.annotator == "alice" and config.logins == [("alice", "pw"), ("bob", "s3:cret")]
    assert _review(host="0.0.0.0", insecure=True).logins == []


def test_review_export_refuses_an_unknown_policy_from_its_recipe(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"^min_annotators must be >= 1, got 0$"):
        ReviewExportConfig(db="r.sqlite", dataset="ds", out="v", min_annotators=0)
    recipe = tmp_path / "export.yaml"
    recipe.write_text("db: r.sqlite\ndataset: ds\nout: v\npolicy: unanimously\n")
    assert main(["review", "export", "--config", str(recipe)]) == 1
    err = capsys.readouterr().err
    assert err == (
        "roboreward review: error: policy must be one of 'majority', 'unanimous', got 'unanimously'\n"
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"episodes": 0}, "episodes must be >= 1, got 0"),
        ({"layout": "oxe"}, "layout must be one of 'lerobot', 'roboarena', got 'oxe'"),
        ({"codec": "vp9"}, "codec must be one of 'h264', 'av1', got 'vp9'"),
        (
            {"env": "pusht", "layout": "roboarena"},
            "--env pusht writes the LeRobot layout in H.264: --layout roboarena --codec h264 do not apply "
            "to it",
        ),
    ],
)
def test_sim_config_refuses_a_bad_value_naming_it(changes, message):
    with pytest.raises(ValueError) as error:
        SimConfig(**{"out": "sim", **changes})
    assert str(error.value) == message


def test_a_sim_recipe_with_an_unknown_layout_is_one_line(tmp_path, capsys):
    recipe = tmp_path / "sim.yaml"
    recipe.write_text("layout: droid\n")  # argparse checks the --layout flag's choices, not a recipe's value
    assert main(["sim", "--out", str(tmp_path / "s"), "--config", str(recipe)]) == 1
    assert capsys.readouterr().err == (
        "roboreward sim: error: layout must be one of 'lerobot', 'roboarena', got 'droid'\n"
    )
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"train_steps": 0}, "train_steps must be >= 1, got 0"),
        ({"batch_size": -2}, "batch_size must be >= 1, got -2"),
        ({"max_side": 4}, "max_side must be >= 16, got 4"),
        ({"learning_rate": 0.0}, "learning_rate must be > 0, got 0.0"),
        ({"model_size": "huge"}, "model_size must be one of 'tiny', 'small', got 'huge'"),
    ],
)
def test_demo_config_refuses_a_bad_value_before_any_step(changes, message, tmp_path, capsys):
    with pytest.raises(ValueError) as error:
        DemoConfig(**changes)
    assert str(error.value) == message


def test_demo_model_sizes_are_the_tiny_models():
    from roboreward.testing.tiny import SIZES

    assert typing.get_args(typing.get_type_hints(DemoConfig)["model_size"]) == SIZES


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"timeout": "slow"}, "timeout must be a number, got 'slow'"),
        ({"max_side": "big"}, "max_side must be an integer or none, got 'big'"),
        ({"video_input": "gif"}, "video_input must be one of auto, video, frames, got 'gif'"),
    ],
)
def test_relabel_config_refuses_a_value_of_the_wrong_type(changes, message):
    from roboreward.relabel import RelabelConfig

    with pytest.raises(ValueError) as error:
        RelabelConfig(**changes)
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"num_frames": 0}, "num_frames must be in 1..768, got 0"),
        ({"batch_size": 0}, "batch_size must be >= 1, got 0"),
        ({"voc": 0}, "voc must be in 2..256, got 0"),
        ({"voc": -2}, "voc must be in 2..256, got -2"),
        ({"request_timeout": 0}, "request_timeout must be a number of seconds > 0, got 0"),
        ({"request_timeout": float("nan")}, "request_timeout must be a number of seconds > 0, got nan"),
        ({"concurrency": 0}, "concurrency must be >= 1, got 0"),
        ({"max_side": 4}, "max_side must be >= 16, got 4"),
        ({"conventions": "mine"}, "conventions must be one of"),
        ({"models": [""]}, "models must be non-empty model specs"),
    ],
)
def test_bench_refuses_arguments_that_make_no_sense_when_its_config_is_made(fields, message):
    from roboreward.bench.run import BenchConfig

    with pytest.raises(ValueError, match=re.escape(message)):
        BenchConfig(dataset="d", models=fields.pop("models", ["baseline:random"]), **fields)


def test_annotate_and_curve_configs_check_their_numbers_and_folders(tmp_path):
    from roboreward.apps.annotate import AnnotateConfig
    from roboreward.apps.curves import CurveConfig

    with pytest.raises(ValueError, match=re.escape("curve_points must be in 1..256, got 5000")):
        AnnotateConfig(lerobot="ds", model="m", curve_points=5000)
    with pytest.raises(ValueError, match="must be a new folder"):
        AnnotateConfig(lerobot="ds", model="m", out="o", keep_min_score=4, filtered_out="o")
    with pytest.raises(ValueError, match=re.escape("points must be in 1..256, got 5000")):
        CurveConfig(task="open the drawer", model="m", points=5000)
    with pytest.raises(ValueError, match="empty"):
        CurveConfig(task="  ", model="m")


# ---------------------------------------------------------------------------------------------
# Frame counts and devices: bounded where they are parsed, one line on the command line


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["bench", "--dataset", "d", "--model", "baseline:random", "--num-frames", "100000"],
            "num_frames must be in 1..768, got 100000",
        ),
        (["serve", "--model", "m", "--num-frames", "100000"], "num_frames must be in 1..768, got 100000"),
        (["serve", "--model", "m", "--num-frames", "0"], "num_frames must be in 1..768, got 0"),
        (["demo", "--num-frames", "769"], "num_frames must be in 1..768, got 769"),
        (
            ["score", "--model", "m", "--video", "v.mp4", "--task", "t", "--num-frames", "100000"],
            "--num-frames must be at most 768, got 100000",
        ),
        (
            ["score", "--model", "m", "--video", "v.mp4", "--task", "t", "--fps", "nan"],
            "--fps must be a number > 0, got nan",
        ),
    ],
    ids=["bench", "serve", "serve-0", "demo", "score", "score-fps-nan"],
)
def test_a_frame_count_over_the_maximum_is_one_line_before_anything_loads(capsys, argv, message):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err == f"roboreward {argv[0]}: error: {message}\n"


def test_inference_settings_bound_the_frames_every_consumer_samples():
    from roboreward.models.settings import MAX_NUM_FRAMES, InferenceSettings

    assert InferenceSettings(num_frames=MAX_NUM_FRAMES).num_frames == 768
    with pytest.raises(ValueError, match=r"^num_frames must be in 1\.\.768, got 100000$"):
        InferenceSettings(num_frames=100_000)  # a checkpoint's settings file, the Space's variable
    with pytest.raises(ValueError, match=r"^fps must be a number > 0, got nan$"):
        InferenceSettings(num_frames=None, fps=float("nan"))


def test_a_device_this_machine_lacks_is_one_line_naming_it(monkeypatch, tiny_vlm_dir, h264_video, capsys):
    import torch

    from roboreward.models.inputs import as_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(
        ValueError, match=r"^device 'cuda:1': this machine has no CUDA GPU \(use --device cpu\)$"
    ):
        as_device("cuda:1")
    with pytest.raises(ValueError, match=r"^device 'tpu' is not a torch device"):
        as_device("tpu")
    assert as_device("cpu") == torch.device("cpu")
    argv = [
        "score",
        "--model",
        str(tiny_vlm_dir),
        "--video",
        str(h264_video),
        "--task",
        "t",
        "--device",
        "cuda",
    ]
    assert main(argv) == 1  # was a RuntimeError traceback from deep in the weight loading
    err = capsys.readouterr().err
    assert err.endswith(
        "roboreward score: error: device 'cuda': this machine has no CUDA GPU (use --device cpu)\n"
    )
    assert "Traceback" not in err
