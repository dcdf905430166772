"""The released models, dataset layout and HELM's scoring, exactly as published (issue 15)."""

import json
import re
from pathlib import Path

import datasets
import pytest
import torch
from conftest import write_manifest, write_video
from fastapi.testclient import TestClient
from trl import ModelConfig, SFTConfig

from roboreward import metrics, rubric
from roboreward.bench.run import BenchConfig, Example, load_examples, run_bench, select_examples
from roboreward.cli import main
from roboreward.dataset.builder import BuildConfig, build
from roboreward.models.inputs import RewardPrompter
from roboreward.models.local import RewardModel
from roboreward.models.settings import SETTINGS_FILE, InferenceSettings, load_settings, resolve_settings
from roboreward.serving.server import create_app
from roboreward.testing.tiny import make_tiny_vlm
from roboreward.training.trainer import (
    RewardCollator,
    RewardScriptArguments,
    build_trainer,
    inference_settings,
)
from roboreward.video import VideoDecodeError

ROOT = Path(__file__).resolve().parents[1]

# The issue's text, with the {task} placeholder filled in: the published model cards' prompt.
RELEASE_TEXT = (
    "Given the task, assign a discrete progress score reward (1,2,3,4,5) for the robot in the video in the "
    "format: ANSWER: <score>\nRubric for end-of-episode progress (judge only the final state without time "
    "limits):\n1 - No Success: Final state shows no goal-relevant change for the command.\n2 - Minimal "
    "Progress: Final state shows a small but insufficient change toward the goal.\n3 - Partial Completion: "
    "The final state shows good progress toward the goal but violates more than one requirement or a major "
    "requirement.\n4 - Near Completion: Final state is correct in region and intent but misses a single "
    "minor requirement.\n5 - Perfect Completion: Final state satisfies all requirements.\n\nTask: "
    "open the  drawer\n"
)


# ---------------------------------------------------------------------------------------------
# Prompt presets


def test_release_preset_is_the_published_prompt_byte_for_byte():
    assert rubric.build_prompt("open the  drawer", "release") == RELEASE_TEXT  # the task goes in as given
    assert rubric.get_preset("release").version == "roboreward-release-v1"
    assert rubric.build_prompt("open the drawer") == rubric.build_prompt("open the drawer", "toolkit")
    messages = rubric.build_messages("open the drawer", "ep.mp4", "release")
    assert [p["type"] for p in messages[0]["content"]] == ["video", "text"]


def test_an_unknown_preset_is_an_error_listing_the_presets():
    listed = r"unknown prompt preset 'helms'; the presets are: toolkit, release, helm"
    with pytest.raises(ValueError, match=listed):
        rubric.build_prompt("open the drawer", "helms")
    with pytest.raises(ValueError, match="the presets are"):
        InferenceSettings(prompt="nope")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("clip") / "ep.mp4", num_frames=12, fps=10)


@pytest.fixture
def sent(monkeypatch):
    """Every processor input made by `RewardPrompter.encode`, with its tasks: what the model was sent."""
    records = []
    encode = RewardPrompter.encode

    def spy(self, videos, tasks, *args, **kwargs):
        out = encode(self, videos, tasks, *args, **kwargs)
        text = self.tokenizer.decode(out["input_ids"][0])
        records.append({"tasks": list(tasks), "inputs": out, "text": text, "settings": self.settings})
        return out

    monkeypatch.setattr(RewardPrompter, "encode", spy)
    return records


def test_asked_for_the_release_prompt_scoring_sends_it(tiny_vlm_dir, clip, sent):
    model = RewardModel.from_pretrained(tiny_vlm_dir, prompt="release", num_frames=4)
    model.score(clip, "open the drawer")
    assert RELEASE_TEXT.replace("open the  drawer", "open the drawer") in sent[-1]["text"]
    assert "<task>" not in sent[-1]["text"]
    assert sent[-1]["text"].endswith("<|im_start|>assistant\nANSWER: ")


def _as_known_release(tiny_vlm_dir, tmp_path, repo="teetone/RoboReward-4B"):
    """A tiny Qwen3-VL saved as a Hub cache snapshot of a published id (no network is used)."""
    snapshot = tmp_path / "hub" / f"models--{repo.replace('/', '--')}" / "snapshots" / ("0" * 40)
    make_tiny_vlm(snapshot, family="qwen3_vl")
    return snapshot


def test_a_known_release_is_scored_with_its_published_settings_without_flags(
    tiny_vlm_dir, tmp_path, clip, sent, caplog
):
    snapshot = _as_known_release(tiny_vlm_dir, tmp_path)
    model = RewardModel.from_pretrained(snapshot)
    settings = model.settings
    assert (settings.prompt, settings.sampler, settings.fps, settings.num_frames, settings.max_side) == (
        "release",
        "qwen_vl_utils",
        2.0,
        None,
        None,
    )
    assert settings.source == "known release teetone/RoboReward-4B"
    model.score(clip, "open the drawer")
    assert "Task: open the drawer\n" in sent[-1]["text"] and "Given the task, assign" in sent[-1]["text"]
    # qwen_vl_utils' own policy: 12 frames at 10 fps = 1.2 s at 2 fps -> its minimum of 4 frames,
    # resized into its pixel budget (128 * 28 * 28 at least: 64 x 48 grows to 392 x 280).
    frames, rate = model.load_frames(clip)
    assert frames.shape == (4, 280, 392, 3) and rate == pytest.approx(4 / 12 * 10)
    with pytest.raises(VideoDecodeError, match="too short for Qwen-VL's sampling"):  # one frame: no video
        model.load_frames(write_video(tmp_path / "one.mp4", num_frames=1, fps=10))
    # A config naming the id counts too, and an explicit flag wins with a warning naming both values.
    config = json.loads((tiny_vlm_dir / "config.json").read_text())
    named = tmp_path / "named"
    make_tiny_vlm(named)
    (named / "config.json").write_text(json.dumps({**config, "_name_or_path": "teetone/RoboReward-8B"}))
    caplog.clear()
    with caplog.at_level("WARNING", logger="roboreward"):
        overridden = resolve_settings(named, prompt="toolkit")
    assert overridden.prompt == "toolkit" and overridden.sampler == "qwen_vl_utils"
    assert "prompt='toolkit' overrides 'release' from known release teetone/RoboReward-8B" in caplog.text


def test_any_other_model_gets_the_defaults_and_a_one_line_notice(tiny_vlm_dir, caplog):
    with caplog.at_level("WARNING", logger="roboreward"):
        settings = resolve_settings(tiny_vlm_dir)
    assert (settings.prompt, settings.num_frames, settings.max_side) == ("toolkit", 16, 448)
    assert f"has no {SETTINGS_FILE} and is not a known release" in caplog.text


# ---------------------------------------------------------------------------------------------
# A checkpoint carries its settings to every consumer


def _one_step_trainer(script, output_dir, model):
    """`build_trainer` for one CPU step of batch 2, without evaluation or checkpoints."""
    args = SFTConfig(
        output_dir=str(output_dir),
        per_device_train_batch_size=2,
        max_steps=1,
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        seed=0,
    )
    return build_trainer(script, args, ModelConfig(model_name_or_path=str(model), dtype="float32"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_vlm_dir):
    root = tmp_path_factory.mktemp("trained")
    tasks = ("open the drawer", "put the red block in the blue bowl and close the lid", "wipe the table")
    write_manifest(
        root, [{"video": f"ep{i}.mp4", "task": tasks[i % 3], "reward": 1 + i % 5} for i in range(10)]
    )
    data = root / "ds"
    build(
        BuildConfig(
            manifest=[str(root / "m.jsonl")],
            out=str(data),
            split_ratios={"train": 6, "validation": 4, "test": 0},
            max_frames=8,
        )
    )
    script = RewardScriptArguments(
        dataset_name=str(data), effective_batch_size=2, num_frames=6, max_side=40, prompt="release"
    )
    trainer = _one_step_trainer(script, root / "run", tiny_vlm_dir)
    args = trainer.args
    trainer.train()
    trainer.save_model(args.output_dir)
    rows = datasets.load_dataset(str(data), split="validation").cast_column(
        "video", datasets.Video(decode=False)
    )
    collate = RewardCollator(RewardPrompter(trainer.processing_class, settings=inference_settings(script)))
    reference = []
    for i in range(len(rows)):
        batch = collate([rows[i]])
        reference.append({"input_ids": batch["input_ids"][:, :-2], "pixels": batch["pixel_values_videos"]})
    video_file = root / "row0.mp4"
    video_file.write_bytes(rows[0]["video"]["bytes"])
    return {
        "ckpt": Path(args.output_dir),
        "data": data,
        "rows": rows,
        "reference": reference,
        "file": video_file,
    }


def _same(record, reference):
    assert torch.equal(record["inputs"]["input_ids"], reference["input_ids"])
    assert torch.equal(record["inputs"]["pixel_values_videos"], reference["pixels"])


def test_training_writes_its_settings_beside_the_weights(trained):
    settings = load_settings(trained["ckpt"])
    assert (settings.prompt, settings.num_frames, settings.fps, settings.max_side) == ("release", 6, None, 40)
    saved = json.loads((trained["ckpt"] / SETTINGS_FILE).read_text())
    assert saved["prompt_version"] == "roboreward-release-v1" and saved["format_version"] == 1


def test_every_consumer_sends_what_the_training_collator_sent(trained, sent, tmp_path, capsys):
    ckpt, row, task = trained["ckpt"], trained["rows"][0], trained["rows"][0]["task"]
    reference = trained["reference"][0]

    model = RewardModel.from_pretrained(ckpt)  # the library, no flags
    model.score(row["video"], task)
    _same(sent[-1], reference)

    assert (
        main(["score", "--model", str(ckpt), "--video", str(trained["file"]), "--task", task, "--json"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["prompt"] == "release"
    _same(sent[-1], reference)

    with TestClient(create_app(model, max_wait_ms=1)) as client:  # the reward server
        response = client.post("/score", files={"video": trained["file"].read_bytes()}, data={"task": task})
    assert response.status_code == 200, response.text
    _same(sent[-1], reference)

    import importlib.util

    spec = importlib.util.spec_from_file_location("space_app", ROOT / "spaces_demo" / "app.py")
    space = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(space)
    space.load_model(str(ckpt)).score(str(trained["file"]), task)  # the Space's loading path
    _same(sent[-1], reference)

    sent.clear()
    run_bench(
        BenchConfig(
            dataset=str(trained["data"]),
            split="validation",
            models=[str(ckpt)],
            out=str(tmp_path / "b"),
            batch_size=1,
        )
    )
    assert len(sent) == len(trained["reference"])
    for record, expected in zip(sent, trained["reference"], strict=True):
        _same(record, expected)
    results = json.loads((tmp_path / "b" / "results.json").read_text())
    assert results["models"]["run"]["inference_settings"]["prompt"] == "release"


# ---------------------------------------------------------------------------------------------
# The public dataset layout


def _release_fixture(root: Path) -> Path:
    rows = {
        "test": [
            ("droid/a.mp4", "open the drawer", 5),
            ("droid/b.mp4", "close the drawer", 2),
            ("bridge/c.mp4", "put the mushroom on the cloth", 4),
            ("bridge/gone.mp4", "wipe the table", 3),  # listed, but no file
            ("fractal/d.mp4", "pick up the can", 7),  # a reward outside 1..5
            ("fractal/e.mp4", "pick up the can", 1),
        ],
        "val": [
            ("droid/f.mp4", "open the drawer", 3),
            ("bridge/g.mp4", "put the mushroom on the cloth", 5),
            ("fractal/h.mp4", "pick up the can", 1),
        ],
    }
    for split, items in rows.items():
        lines = []
        for name, task, reward in items:
            if "gone" not in name:
                (root / split / name).parent.mkdir(parents=True, exist_ok=True)
                write_video(root / split / name, num_frames=8, fps=10)
            lines.append(
                json.dumps({"file_name": name, "task": task, "reward": reward, "gpt5_mini_check": True})
            )
        (root / split / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_the_bench_reads_the_release_layout_with_subsets_from_source_folders(tmp_path):
    root = _release_fixture(tmp_path / "RoboReward")
    out = tmp_path / "bench"
    results = run_bench(
        BenchConfig(dataset=str(root), models=["baseline:constant-3", "baseline:constant-5"], out=str(out))
    )
    assert results["subsets"] == ["bridge", "droid", "fractal"]
    assert results["subset_sizes"] == {"bridge": 1, "droid": 2, "fractal": 1}
    assert [(s["where"], s["reason"]) for s in results["skipped"]] == [
        ("test/metadata.jsonl line 4", "video file bridge/gone.mp4 is missing"),
        ("test/metadata.jsonl line 5", "reward must be an integer 1..5, got 7"),
    ]
    assert "Skipped rows: 2" in (out / "leaderboard.md").read_text()
    # constant-3 vs references 5, 2, 4, 1: per subset droid (2+1)/2, bridge 1, fractal 2
    assert results["models"]["baseline:constant-3"]["subset_mae"] == {
        "bridge": 1.0,
        "droid": 1.5,
        "fractal": 2.0,
    }
    val = load_examples(str(root), split="validation")
    assert [e.id for e in val] == ["val/droid/f.mp4", "val/bridge/g.mp4", "val/fractal/h.mp4"]


def test_sft_trains_on_the_release_layout(tmp_path, tiny_vlm_dir):
    root = _release_fixture(tmp_path / "RoboReward")
    script = RewardScriptArguments(
        dataset_name=str(root),
        dataset_train_split="test",
        dataset_test_split="validation",
        effective_batch_size=2,
        num_frames=4,
        max_side=32,
    )
    trainer = _one_step_trainer(script, tmp_path / "run", tiny_vlm_dir)
    assert len(trainer.train_dataset) == 4 and len(trainer.eval_dataset) == 3
    assert trainer.train_dataset["gpt5_mini_check"] == [True] * 4
    assert trainer.train().global_step == 1


def test_max_examples_is_a_seeded_sample_stratified_by_subset():
    examples = [
        Example(f"{s}/{i}", {}, "t", 5, s) for s, n in (("a", 60), ("b", 30), ("c", 10)) for i in range(n)
    ]
    chosen = select_examples(examples, 10, seed=1)
    assert [sum(e.subset == s for e in chosen) for s in "abc"] == [6, 3, 1]
    assert chosen == select_examples(list(reversed(examples)), 10, seed=1)[::-1]  # order does not matter
    assert select_examples(examples, 10, seed=2) != chosen


# ---------------------------------------------------------------------------------------------
# HELM's conventions


def test_helm_conventions_equal_a_hand_computation(tmp_path):
    root = _release_fixture(tmp_path / "RoboReward")
    # references in order: droid/a 5, droid/b 2, bridge/c 4, fractal/e 1
    answers = {
        "x": ["ANSWER: 5", "ANSWER: 6", "no idea", "ANSWER: 3.5"],  # HELM: 0, 4, 4.0 (unparsable), 2.5
        "y": ["ANSWER: 4", "ANSWER: 2", "ANSWER: -1", "1. The can is still there"],  # 1, 0, 5, 0
    }
    ids = ["test/droid/a.mp4", "test/droid/b.mp4", "test/bridge/c.mp4", "test/fractal/e.mp4"]
    for name, outputs in answers.items():
        lines = [json.dumps({"id": i, "output": o}) for i, o in zip(ids, outputs, strict=True)]
        (tmp_path / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    specs = [f"predictions:{tmp_path / n}.jsonl" for n in answers]
    helm = run_bench(
        BenchConfig(dataset=str(root), models=specs, out=str(tmp_path / "h"), conventions="helm")
    )
    x, y = helm["models"]["x"], helm["models"]["y"]
    assert x["mae"] == pytest.approx((0 + 4 + 4.0 + 2.5) / 4) and y["mae"] == pytest.approx(
        (1 + 0 + 5 + 0) / 4
    )
    assert x["subset_mae"] == {"bridge": 4.0, "droid": 2.0, "fractal": 2.5}
    assert y["subset_mae"] == {"bridge": 5.0, "droid": 0.5, "fractal": 0.0}
    assert (x["mean_win_rate"], y["mean_win_rate"]) == (pytest.approx(1 / 3), pytest.approx(2 / 3))
    assert x["invalid"] == 1 and helm["conventions"] == "helm" and x["conventions"] == "helm"
    assert "Conventions: helm" in (tmp_path / "h" / "leaderboard.md").read_text()
    # The default convention: toolkit parser, an invalid answer costs max(r - 1, 5 - r).
    default = run_bench(BenchConfig(dataset=str(root), models=specs, out=str(tmp_path / "d")))
    # x: 0, worst(2)=3, worst(4)=3, worst(1)=4 ; y: 1, 0, worst(4)=3, 0
    assert default["models"]["x"]["mae"] == pytest.approx((0 + 3 + 3 + 4) / 4)
    assert default["models"]["y"]["mae"] == pytest.approx((1 + 0 + 3 + 0) / 4)
    assert default["conventions"] == "roboreward"


def test_the_metric_modules_take_helms_conventions():
    mae = metrics.load("mae")
    assert mae.compute(predictions=[5, 6, None, 2.5], references=[5, 3, 2, 2], conventions="helm") == {
        "mae": (0 + 3 + 4 + 0.5) / 4,
        "invalid": 1,
    }
    # the default is unchanged: 6 and None are invalid and cost the worst error; 2.5 is no score
    assert mae.compute(predictions=[5, 6, None, 2.5], references=[5, 3, 2, 2]) == {"mae": 2.0, "invalid": 3}
    win = metrics.load("mean_win_rate").compute(
        predictions=[[6, 3], [None, 2]],
        references=[3, 2],
        subsets=["a", "b"],
        model_names=["p", "q"],
        conventions="helm",
    )
    assert win["subset_mae"] == {"a": {"p": 3.0, "q": 0.0}, "b": {"p": 4.0, "q": 0.0}}
    assert win["mean_win_rate"] == {"p": 0.0, "q": 1.0}


# ---------------------------------------------------------------------------------------------
# The parser


PARSER_CASES = [
    # text, parse_answer, HELM's, LeRobot's
    ("ANSWER: 4", 4, 4.0, 4),
    ("**Answer:** 4", 4, None, 4),
    ("The score is 4/5.", 4, None, 4),
    ("ANSWER: -1", None, -1.0, 1),
    ("ANSWER: 3-4", None, 3.0, 3),
    ("ANSWER: 45", None, 45.0, 4),
    ("ANSWER: 3.5", None, 3.5, 3),
    ("ANSWER: 6", None, 6.0, 1),
    ("5. The drawer is open", 5, 5.0, 5),
    ("I'd say 2 or 3", None, None, 2),
    ("Qwen2 did it", None, None, 1),
    ("no answer", None, None, 1),
]


@pytest.mark.parametrize(("text", "ours", "helm", "lerobot"), PARSER_CASES)
def test_the_three_parsers(text, ours, helm, lerobot):
    assert rubric.parse_answer(text) == ours
    assert rubric.parse_answer_helm(text) == helm
    assert rubric.parse_answer_lerobot(text) == lerobot


def test_the_readme_parser_table_is_what_the_parsers_do():
    readme = (ROOT / "README.md").read_text()
    table = re.findall(r"^\| `([^`]*)` \| (\S+) \| (\S+) \| (\S+) \|$", readme, re.MULTILINE)
    assert len(table) == len(PARSER_CASES)

    def shown(value):
        return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)

    for text, ours, helm, lerobot in table:
        assert (ours, helm, lerobot) == (
            shown(rubric.parse_answer(text)),
            shown(rubric.parse_answer_helm(text)),
            shown(rubric.parse_answer_lerobot(text)),
        ), text
    assert {t for t, *_ in table} == {c[0] for c in PARSER_CASES}


def test_negative_numbers_ranges_and_longer_numbers_never_become_scores():
    for text in ("-1", "3-4", "3 to 4", "1e5", "v2", "12345", "ANSWER: 3 - 4", "score: -2"):
        assert rubric.parse_answer(text) is None, text


def test_the_qwen3_vl_recipes_train_with_the_published_settings():
    from trl import TrlParser

    from roboreward.models.settings import KNOWN_SETTINGS

    parser = TrlParser((RewardScriptArguments, SFTConfig, ModelConfig))
    for name, repo in (("qwen3_vl_4b", "teetone/RoboReward-4B"), ("qwen3_vl_8b", "teetone/RoboReward-8B")):
        recipe = ROOT / "trl_training" / "configs" / f"{name}.yaml"
        script, _, _ = parser.parse_args_and_config(
            ["--config", str(recipe), "--output_dir", "/tmp/unused", "--bf16", "false", "--use_cpu", "true"]
        )
        assert inference_settings(script) == KNOWN_SETTINGS[repo]  # source is not compared


def test_cached_predictions_are_scored_again_when_the_settings_change(trained, sent, tmp_path):
    config = dict(
        dataset=str(trained["data"]), split="validation", models=[str(trained["ckpt"])], out=str(tmp_path)
    )
    run_bench(BenchConfig(**config))
    assert sum(len(r["tasks"]) for r in sent) == 4 and {r["settings"].prompt for r in sent} == {"release"}
    sent.clear()
    run_bench(BenchConfig(**config))  # the same settings: everything comes from the cache
    assert sent == []
    results = run_bench(BenchConfig(**config, prompt="toolkit"))  # another prompt: scored again
    assert sum(len(r["tasks"]) for r in sent) == 4 and {r["settings"].prompt for r in sent} == {"toolkit"}
    assert results["models"]["run"]["inference_settings"]["prompt"] == "toolkit"


def test_review_labels_and_exports_the_release_layout(tmp_path):
    from roboreward import video
    from roboreward.review import SplitReview, export_verified

    root = _release_fixture(tmp_path / "RoboReward")
    review = SplitReview(root, "test", tmp_path / "r.sqlite", double_fraction=0.0, cache_dir=tmp_path / "v")
    assert sorted(review.examples) == [
        "test/bridge/c.mp4",
        "test/droid/a.mp4",
        "test/droid/b.mp4",
        "test/fractal/e.mp4",
    ]  # the missing file and the reward 7 are left out
    info = review.describe("test/droid/b.mp4")
    assert info["proposed"] == 2 and info["task"] == "close the drawer"
    assert video.probe(review.video_path("test/droid/b.mp4")).frames == 8
    review.decide("test/droid/a.mp4", "alice", "accept")
    review.decide("test/droid/b.mp4", "alice", "correct", score=3)
    review.decide("test/bridge/c.mp4", "alice", "reject", reason="unclear video")
    report = export_verified(tmp_path / "r.sqlite", root, tmp_path / "verified", split="test")
    assert report["outcomes"]["accepted"] == 1 and report["outcomes"]["corrected"] == 1
    assert report["outcomes"]["rejected"] == 1 and report["outcomes"]["unreviewed"] == 1
    rows = [
        json.loads(line)
        for line in (tmp_path / "verified" / "test" / "metadata.jsonl").read_text().splitlines()
    ]
    assert rows == [
        {"file_name": "droid/a.mp4", "task": "open the drawer", "reward": 5, "gpt5_mini_check": True}
        | {"verified": True, "reviewers": 1},
        {"file_name": "droid/b.mp4", "task": "close the drawer", "reward": 3, "gpt5_mini_check": True}
        | {"verified": True, "reviewers": 1},
    ]
    assert (tmp_path / "verified" / "test" / "droid" / "b.mp4").read_bytes() == (
        root / "test/droid/b.mp4"
    ).read_bytes()
    assert json.loads((tmp_path / "verified" / "verification_report.json").read_text())["verified_rows"] == 2
    # the verified folder is itself a release layout the bench reads
    assert [e.reward for e in load_examples(str(tmp_path / "verified"))] == [5, 3]


def test_a_model_card_from_a_bench_on_the_release_layout_names_its_subsets_and_conventions(trained, tmp_path):
    from roboreward.dataset.cards import render_model_card

    root = _release_fixture(tmp_path / "RoboReward")
    out = tmp_path / "bench"
    run_bench(
        BenchConfig(
            dataset=str(root),
            models=[str(trained["ckpt"]), "baseline:constant-3"],
            out=str(out),
            conventions="helm",
        )
    )
    card = render_model_card(trained["ckpt"], bench=out, out=tmp_path / "README.md").read_text()
    for subset in ("bridge", "droid", "fractal"):
        assert f"| {subset} |" in card
    assert "`helm` conventions" in card


def test_the_rl_wrappers_score_with_the_models_own_frame_count(trained):
    from roboreward.apps.rl import EpisodicRewardWrapper
    from roboreward.sim import TabletopEnv

    model = RewardModel.from_pretrained(trained["ckpt"])
    assert EpisodicRewardWrapper(TabletopEnv(seed=0, max_steps=4), model).max_frames == 6  # trained with 6
    assert EpisodicRewardWrapper(TabletopEnv(seed=0, max_steps=4), model, max_frames=4).max_frames == 4

    class Served:  # a RewardClient-like scorer carries no settings
        def score(self, video, task, fps=None): ...

    assert EpisodicRewardWrapper(TabletopEnv(seed=0, max_steps=4), Served()).max_frames == 16
