"""Multi-view rows: a two-camera RoboArena build trains a model that takes both cameras in one prompt
(settings, collator, scoring, bench), and a one-camera checkpoint given both uses its own, saying so once."""

import json
import logging

import datasets
import pytest
import torch
from conftest import write_video
from roboarena_fixtures import policy, session, write_roboarena_dump
from transformers import AutoModelForImageTextToText, AutoProcessor
from trl import ModelConfig, SFTConfig

from roboreward import rubric
from roboreward.bench.run import BenchConfig, load_examples, run_bench
from roboreward.dataset.builder import BuildConfig, build
from roboreward.models.inputs import RewardPrompter
from roboreward.models.local import RewardModel
from roboreward.models.settings import SETTINGS_FILE, InferenceSettings, load_settings
from roboreward.models.views import Views, group_views
from roboreward.training.data import select_views
from roboreward.training.trainer import RewardScriptArguments, build_trainer

# Six runs of three sessions, each filmed by the left and right cameras (one also by the wrist camera).
SESSIONS = [
    session("s1", "open the drawer", {"A": policy("pi0", 0), "B": policy("fast", 50)}),
    session(
        "s2",
        "put the cup on the plate",
        {"A": policy("pi0", 100, cameras=("left", "right", "wrist")), "B": policy("fast", 70)},
    ),
    session("s3", "wipe the table", {"A": policy("pi0", 30), "B": policy("fast", 100)}),
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("multiview")
    dump = write_roboarena_dump(root / "dump", SESSIONS)
    out = root / "ds"
    build(
        BuildConfig(
            roboarena=[str(dump)],
            roboarena_cameras=["left", "right"],
            out=str(out),
            split_ratios={"train": 1, "validation": 1, "test": 0},
            max_side=32,
        )
    )
    return out


@pytest.fixture
def loaded(monkeypatch):
    """The videos `RewardPrompter.load_frames` was asked for, in order, and the processor inputs made."""
    record = {"videos": [], "inputs": []}
    load_frames, encode = RewardPrompter.load_frames, RewardPrompter.encode

    def spy_load(self, video, *args, **kwargs):
        record["videos"].append(video)
        return load_frames(self, video, *args, **kwargs)

    def spy_encode(self, *args, **kwargs):
        out = encode(self, *args, **kwargs)
        record["inputs"].append(out)
        return out

    monkeypatch.setattr(RewardPrompter, "load_frames", spy_load)
    monkeypatch.setattr(RewardPrompter, "encode", spy_encode)
    return record


def _train_one_step(dataset, model, output_dir, cameras):
    script = RewardScriptArguments(
        dataset_name=str(dataset), effective_batch_size=2, num_frames=4, max_side=32, cameras=cameras
    )
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
    trainer = build_trainer(script, args, ModelConfig(model_name_or_path=str(model), dtype="float32"))
    assert trainer.train().global_step == 1
    trainer.save_model(str(output_dir))
    return trainer


@pytest.fixture(scope="module")
def two_camera(dataset, tiny_vlm_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("two") / "run"
    return run, _train_one_step(dataset, tiny_vlm_dir, run, ["left", "right"])


def test_the_group_of_a_rollout_is_its_rows_in_camera_order():
    keys = [("a", 1), ("a", 1), ("b", 2), ("a", 1), ("c", 3), ("c", 3)]
    cameras = ["right", "left", "left", "wrist", "left", "left"]
    # a: right then left rows, put in the order asked; b lacks right; c has two lefts and no right.
    assert group_views(keys, cameras, ["left", "right"]) == ([[1, 0]], 2)
    assert group_views(keys, cameras, ["wrist"]) == ([[3]], 2)
    with pytest.raises(ValueError, match="names \\['left'\\] more than once"):
        group_views(keys, cameras, ["left", "left"])
    with pytest.raises(ValueError, match="no video of camera\\(s\\) \\['wrist'\\]: this rollout has"):
        Views(("left", "right"), ("l.mp4", "r.mp4")).select(["wrist"])


def test_settings_record_the_cameras_and_old_files_stay_as_they_were(tmp_path):
    settings = InferenceSettings(cameras=["left", "right"])
    assert settings.cameras == ("left", "right") and settings.multi_view
    assert settings.to_dict()["cameras"] == ["left", "right"]
    assert InferenceSettings.from_dict(settings.to_dict()) == settings
    assert "cameras" not in InferenceSettings().to_dict()  # files of checkpoints without cameras unchanged
    assert not InferenceSettings(cameras=["left"]).multi_view
    with pytest.raises(ValueError, match="a settings file: cameras is empty"):
        InferenceSettings.from_dict({"cameras": []})


def test_the_prompt_labels_each_camera_before_its_video():
    messages = rubric.build_messages("open the drawer", None, cameras=["left", "right"])
    kinds = [(p["type"], p.get("text", "")[:13]) for p in messages[0]["content"]]
    assert kinds == [
        ("text", "Left camera:"),
        ("video", ""),
        ("text", "Right camera:"),
        ("video", ""),
        ("text", "You are a rew"),
    ]
    with pytest.raises(ValueError, match="got 1 videos for cameras"):
        rubric.build_messages("t", ["l.mp4"], cameras=["left", "right"])


def test_training_rows_are_one_per_run_with_both_cameras(dataset):
    ds = datasets.load_dataset(str(dataset), split="train").cast_column("video", datasets.Video(decode=False))
    grouped = select_views(ds, ["left", "right"], "train")
    assert len(ds) == 2 * len(grouped)  # every run has a left and a right row
    assert {"video_left", "video_right"} <= set(grouped.column_names)
    video_of = {(r["episode_id"], r["camera"]): r["video"] for r in ds}
    for row in grouped:
        assert row["camera"] == "left" and row["video"] == row["video_left"]
        assert row["video_left"] == video_of[row["episode_id"], "left"]
        assert row["video_right"] == video_of[row["episode_id"], "right"] != row["video_left"]
    assert len(select_views(ds, ["right"], "train")) == len(grouped)
    with pytest.raises(ValueError, match="train: no rollout has every camera of \\['left', 'top'\\]"):
        select_views(ds, ["left", "top"], "train")


def test_a_two_camera_build_trains_one_step_and_scores_with_both_cameras(two_camera, dataset, loaded):
    run, trainer = two_camera
    settings = load_settings(run)
    assert settings.cameras == ("left", "right")
    assert json.loads((run / SETTINGS_FILE).read_text())["cameras"] == ["left", "right"]
    assert trainer.train_dataset.num_rows == 3  # 6 camera rows of 3 runs

    # The collator hands the processor each row's two videos, left then right.
    row = trainer.train_dataset[0]
    loaded["videos"].clear()
    batch = trainer.data_collator([row])
    assert loaded["videos"] == [row["video_left"], row["video_right"]]
    assert batch["video_grid_thw"].shape[0] == 2

    # Scoring: the rollout given right first still goes to the model left then right, each labelled.
    model = RewardModel.from_pretrained(run)
    views = Views(("right", "left"), (row["video_right"], row["video_left"]))
    loaded["videos"].clear()
    result = model.score(views, row["task"])
    assert loaded["videos"] == [row["video_left"], row["video_right"]]
    sent = loaded["inputs"][-1]
    assert sent["video_grid_thw"].shape[0] == 2
    text = model.tokenizer.decode(sent["input_ids"][0])
    assert text.index("Left camera:") < text.index("Right camera:") < text.index("You are a reward model")
    # The same as the collator's prompt for that row, but for the answer: what training saw.
    assert torch.equal(sent["input_ids"], batch["input_ids"][:, :-2])
    assert torch.equal(sent["pixel_values_videos"], batch["pixel_values_videos"])
    assert sum(result.probs) == pytest.approx(1.0)

    with pytest.raises(ValueError, match="takes the cameras \\['left', 'right'\\] in one prompt"):
        model.score(row["video_left"], row["task"])
    with pytest.raises(ValueError, match="progress curves of several cameras are not made"):
        model.progress_curve(views, row["task"], points=2)


def test_the_bench_shows_a_multi_view_model_every_camera_of_each_row(two_camera, dataset, loaded, tmp_path):
    run, _ = two_camera
    examples = load_examples(str(dataset), "validation")
    assert len(examples) == 6 and all(e.views.cameras == ("left", "right") for e in examples)
    loaded["inputs"].clear()
    results = run_bench(
        BenchConfig(dataset=str(dataset), split="validation", models=[str(run)], out=str(tmp_path / "b"))
    )
    entry = results["models"]["run"]
    assert entry["inference_settings"]["cameras"] == ["left", "right"]
    # One question per run (its left and right rows), each with both cameras: 3 runs, 6 videos.
    assert sum(int(x["video_grid_thw"].shape[0]) for x in loaded["inputs"]) == len(examples)
    predictions = [json.loads(line) for line in (tmp_path / "b" / "predictions" / "run.jsonl").open()]
    assert len(predictions) == 6 and all(1 <= p["prediction"] <= 5 for p in predictions)
    # The left and right rows of one run are the same rollout: the same prediction.
    by_id = {p["id"]: p for p in predictions}
    for e in examples:
        twin = next(o for o in examples if o.views == e.views and o.id != e.id)
        assert by_id[e.id]["probabilities"] == by_id[twin.id]["probabilities"]


def test_a_one_camera_checkpoint_given_two_cameras_uses_its_own_and_says_so_once(
    dataset, tiny_vlm_dir, tmp_path, loaded, caplog
):
    run = tmp_path / "right-only"
    trainer = _train_one_step(dataset, tiny_vlm_dir, run, ["right"])
    assert trainer.train_dataset.num_rows == 3
    assert all(r["camera"] == "right" for r in trainer.train_dataset)
    assert load_settings(run).cameras == ("right",)

    model = RewardModel.from_pretrained(run)
    rows = [trainer.train_dataset[i] for i in range(3)]
    lefts = [write_video(tmp_path / f"left{i}.mp4", num_frames=6 + i, size=(32, 24)) for i in range(3)]
    rollouts = [Views(("left", "right"), (left, r["video"])) for left, r in zip(lefts, rows, strict=True)]
    loaded["videos"].clear()
    with caplog.at_level(logging.WARNING, logger="roboreward"):
        model.score_batch(rollouts, [r["task"] for r in rows])
        model.score(rollouts[0], rows[0]["task"])
        assert loaded["videos"] == [r["video"] for r in rows] + [rows[0]["video"]]  # the right camera only
        curve = model.progress_curve(rollouts[1], rows[1]["task"], points=2)  # its camera's curve
    assert len(curve.points) == 2 and curve.points[-1].result.probs == pytest.approx(
        model.score(rows[1]["video"], rows[1]["task"]).probs
    )
    said = [m for m in caplog.messages if "takes one camera" in m]
    assert said == [
        "right-only takes one camera (trained on 'right'): it is shown the 'right' camera of rollouts "
        "with cameras left, right, not all of them (said once)"
    ]
    assert all(
        x["video_grid_thw"].shape[0] == len(x["input_ids"]) for x in loaded["inputs"]
    )  # one video a row


def test_a_checkpoint_without_cameras_is_shown_the_first_camera_in_the_recorded_order(
    tiny_vlm_dir, tmp_path, loaded, caplog
):
    left, right = (write_video(tmp_path / f"{c}.mp4", num_frames=6, size=(32, 24)) for c in ("l", "r"))
    model = RewardModel(
        AutoModelForImageTextToText.from_pretrained(tiny_vlm_dir),
        AutoProcessor.from_pretrained(tiny_vlm_dir),
        name="plain",
        settings=InferenceSettings(num_frames=4, max_side=32),
    )
    loaded["videos"].clear()
    with caplog.at_level(logging.WARNING, logger="roboreward"):
        for _ in range(3):
            model.score(Views(("right", "left"), (right, left)), "open the drawer")
    assert loaded["videos"] == [right] * 3
    assert [m for m in caplog.messages if "takes one camera" in m] == [
        "plain takes one camera (none recorded: the first in the recorded order): it is shown the "
        "'right' camera of rollouts with cameras right, left, not all of them (said once)"
    ]


def test_a_served_model_asked_for_two_cameras_gets_both_labelled_in_one_message(dataset, tmp_path):
    """`bench --cameras left,right` with an ``openai+logprobs:`` model: one request per row, both cameras'
    videos as video parts of one user turn, each after its label, left then right, then the prompt."""
    import math

    from roboreward.testing.chat_server import Reply, ScriptedChatServer

    probs = {
        "1": math.log(0.1),
        "2": math.log(0.1),
        "3": math.log(0.6),
        "4": math.log(0.1),
        "5": math.log(0.1),
    }
    with ScriptedChatServer(lambda request: Reply("ANSWER: 3", probs), model="judge") as server:
        results = run_bench(
            BenchConfig(
                dataset=str(dataset),
                split="validation",
                models=[f"openai+logprobs:{server.url}#judge"],
                out=str(tmp_path / "out"),
                cameras=["left", "right"],
                num_frames=4,
            )
        )
    entry = results["models"]["judge"]
    assert entry["inference_settings"]["cameras"] == ["left", "right"]
    assert len(server.requests) == 3  # one request per run: its left and right rows are one question
    examples = {e.id: e for e in load_examples(str(dataset), "validation")}
    for request in server.requests:
        content = request["messages"][0]["content"]
        assert [p["type"] for p in content] == ["text", "video_url", "text", "video_url", "text"]
        assert (content[0]["text"], content[2]["text"]) == ("Left camera:", "Right camera:")
        assert content[4]["text"].startswith("You are a reward model")
        assert request["messages"][1] == {"role": "assistant", "content": "ANSWER: "}
    predictions = [json.loads(line) for line in (tmp_path / "out" / "predictions" / "judge.jsonl").open()]
    assert [p["prediction"] for p in predictions] == [3] * 6
    assert {p["id"] for p in predictions} == set(examples)


def test_a_served_one_camera_model_given_two_cameras_is_sent_its_own_once_said(dataset, caplog):
    import math

    from roboreward.models.served import ServedRewardModel
    from roboreward.testing.chat_server import Reply, ScriptedChatServer

    ds = datasets.load_dataset(str(dataset), split="validation").cast_column(
        "video", datasets.Video(decode=False)
    )
    grouped = select_views(ds, ["left", "right"], "validation")
    rows = [grouped[i] for i in range(3)]
    with ScriptedChatServer(
        lambda request: Reply("ANSWER: 2", {"2": math.log(0.9)}), model="judge"
    ) as server:
        model = ServedRewardModel.from_spec(f"openai+logprobs:{server.url}#judge", num_frames=4)
        with caplog.at_level(logging.WARNING, logger="roboreward"):
            for row in rows:
                model.score(Views(("left", "right"), (row["video_left"], row["video_right"])), row["task"])
    for request in server.requests:
        assert [p["type"] for p in request["messages"][0]["content"]] == ["video_url", "text"]
    assert [m for m in caplog.messages if "takes one camera" in m] == [
        "judge takes one camera (none recorded: the first in the recorded order): it is shown the 'left' "
        "camera of rollouts with cameras left, right, not all of them (said once)"
    ]
