"""One reward model for every consumer: each consumer, with each kind of reward model, gives the same
five-way distribution for the same video and task.

The three kinds (`roboreward.models.load_reward_model`): a local checkpoint (the tiny Qwen2.5-VL), a
scripted OpenAI-compatible server (``openai+logprobs:``) that returns that checkpoint's
log-probabilities, and a ``roboreward serve`` server of that checkpoint (its URL). The consumers:
bench, annotate, curve, score, serve, the RL wrapper, relabeling's clip judge, the Space.
"""

from __future__ import annotations

import importlib.util
import json
import math
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import uvicorn
from lerobot_fixtures import write_lerobot_v21

from roboreward import rubric, video
from roboreward.apps.annotate import ANNOTATIONS, AnnotateConfig, annotate_lerobot
from roboreward.apps.curves import CurveConfig, run_curve
from roboreward.apps.rl import EpisodicRewardWrapper
from roboreward.bench.examples import Example
from roboreward.bench.run import BenchConfig, parse_spec
from roboreward.cli import main
from roboreward.episode import Episode
from roboreward.models import RewardScorer, load_reward_model
from roboreward.models.local import RewardModel
from roboreward.models.remote import RewardClient
from roboreward.models.served import ServedRewardModel
from roboreward.relabel import RelabelConfig
from roboreward.relabel.clipping import ScorerJudge
from roboreward.serving.server import create_app
from roboreward.sim import TabletopEnv
from roboreward.sources.lerobot.reader import LeRobotSource
from roboreward.testing.chat_server import Reply, ScriptedChatServer, prompt_text
from roboreward.testing.tiny import make_tiny_vlm

TASK = "put the red block in the blue bowl"
KINDS = ("local", "served", "serve")
TESTS = Path(__file__).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(app):
    port = _free_port()
    instance = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not instance.started and time.time() < deadline:
        time.sleep(0.02)
    assert instance.started, "the test server did not start within 30 s"
    return instance, thread, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The checkpoint, a one-episode LeRobot dataset, and the three specs naming the same model."""
    root = tmp_path_factory.mktemp("scorers")
    tiny = make_tiny_vlm(root / "tiny-qwen2.5-vl", family="qwen2_5_vl")
    local = RewardModel.from_pretrained(tiny, num_frames=4)
    dataset = write_lerobot_v21(root / "lerobot", [(TASK, 12)], codec="libx264")
    episode = next(e for e in LeRobotSource(dataset).episodes() if isinstance(e, Episode))
    # What the scripted server answers: the local checkpoint's distribution for the task it is asked
    # about (filled in by each test for the input it gives; the server reads the table per request).
    table: dict[str, tuple[float, ...]] = {TASK: local.score(episode.video, TASK).probs}

    def answer(request):
        text = prompt_text(request)
        task = max((t for t in table if f"Task: {t}" in text or t in text), key=len)
        logprobs = {str(k): math.log(p) for k, p in zip(rubric.SCORES, table[task], strict=True) if p > 0}
        return Reply(rubric.format_answer(int(np.argmax(table[task])) + 1), logprobs)

    with ScriptedChatServer(answer) as chat:
        instance, thread, url = _start(create_app(local, max_wait_ms=1, model_name=tiny.name))
        specs = {
            "local": str(tiny),
            "served": f"openai+logprobs:{chat.url}#{tiny.name}",
            "serve": url,
        }
        yield {
            "root": root,
            "tiny": tiny,
            "local": local,
            "dataset": dataset,
            "episode": episode,
            "table": table,
            "specs": specs,
            "chat": chat,
        }
        instance.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def scorers(world):
    return {
        kind: load_reward_model(spec, num_frames=4) if kind != "serve" else load_reward_model(spec)
        for kind, spec in world["specs"].items()
    }


def _expected(world):
    return np.array(world["local"].score(world["episode"].video, TASK).probs)


def test_the_factory_makes_each_kind_and_each_is_a_reward_scorer(world, scorers):
    assert isinstance(scorers["local"], RewardModel)
    assert isinstance(scorers["served"], ServedRewardModel) and scorers["served"].scoring == "logprobs"
    assert isinstance(scorers["serve"], RewardClient)
    for kind, scorer in scorers.items():
        assert isinstance(scorer, RewardScorer), kind
        assert scorer.name == world["tiny"].name, kind
    # the client reads the served model's settings from the server: the checkpoint's own
    assert scorers["serve"].settings == world["local"].settings
    with pytest.raises(ValueError, match="scores with its own model's settings: num_frames"):
        load_reward_model(world["specs"]["serve"], num_frames=8)


@pytest.mark.parametrize("kind", KINDS)
def test_score_score_batch_and_a_one_point_curve_agree(world, scorers, kind):
    scorer, ep = scorers[kind], world["episode"]
    expected = _expected(world)
    np.testing.assert_allclose(scorer.score(ep.video, TASK).probs, expected, atol=1e-6)
    batch = scorer.score_batch([ep.video, ep.video], TASK)
    for result in batch:
        np.testing.assert_allclose(result.probs, expected, atol=1e-6)
    curve = scorer.progress_curve(ep.video, TASK, points=1)
    np.testing.assert_allclose(curve.points[-1].result.probs, expected, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_bench_predictions_carry_the_same_distribution(world, kind):
    predictor = parse_spec(world["specs"][kind], BenchConfig(dataset="", models=[], num_frames=None))
    if kind == "local":
        predictor.overrides["num_frames"] = 4
    example = Example("ep0", {"path": world["episode"].video, "bytes": None}, TASK, 5, "lerobot")
    (prediction,) = list(predictor.predict([example]))
    np.testing.assert_allclose(prediction.probs, _expected(world), atol=1e-6)
    assert prediction.prediction == int(np.argmax(_expected(world))) + 1


@pytest.mark.parametrize("kind", KINDS)
def test_annotate_rows_carry_the_same_distribution(world, kind, tmp_path):
    config = AnnotateConfig(
        lerobot=str(world["dataset"]), model=world["specs"][kind], out=str(tmp_path / "ann"), concurrency=8
    )
    model = None if kind == "serve" else load_reward_model(world["specs"][kind], num_frames=4)
    report = annotate_lerobot(config, model=model, progress=False)
    (row,) = pq.read_table(tmp_path / "ann" / ANNOTATIONS).to_pylist()
    np.testing.assert_allclose(row["probs"], _expected(world), atol=1e-6)
    assert report["scored"] == 1 and row["model"] == world["tiny"].name


@pytest.mark.parametrize("kind", KINDS)
def test_curve_and_score_commands_print_the_same_distribution(world, kind, tmp_path, capsys):
    ep, spec = world["episode"], world["specs"][kind]
    frames = [] if kind == "serve" else ["--num-frames", "4"]
    assert main(["score", "--model", spec, "--video", ep.video, "--task", TASK, "--json", *frames]) == 0
    out = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(out["probs"], _expected(world), atol=1e-6)
    model = None if kind == "serve" else load_reward_model(spec, num_frames=4)
    curve = run_curve(ep.video, CurveConfig(task=TASK, model=spec, points=1, out=str(tmp_path / "c")), model)
    record = json.loads((tmp_path / "c" / "curve.json").read_text())
    np.testing.assert_allclose(record["points"][-1]["probs"], _expected(world), atol=1e-6)
    assert record["model"] == world["tiny"].name and curve.points[-1].result.score == out["score"]


@pytest.mark.parametrize("kind", KINDS)
def test_our_server_in_front_of_each_kind_answers_the_same_distribution(world, scorers, kind):
    instance, thread, url = _start(create_app(scorers[kind], max_wait_ms=1))
    try:
        with RewardClient(url) as client:
            result = client.score(world["episode"].video, TASK)
            assert client.name == world["tiny"].name
    finally:
        instance.should_exit = True
        thread.join(timeout=10)
    np.testing.assert_allclose(result.probs, _expected(world), atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_the_space_scores_with_each_kind(world, scorers, kind):
    spec = importlib.util.spec_from_file_location("space_app", TESTS.parent / "spaces_demo" / "app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    demo = app.build_demo(scorers[kind], examples=None)
    score = next(f.fn for f in demo.fns.values() if f.api_name == "score")
    result = score(world["episode"].video, TASK)
    np.testing.assert_allclose(result["probs"], _expected(world), atol=1e-6)
    assert len(app.shown_frames(scorers[kind], world["episode"].video)) == 4


def _rl_episode(scorer):
    env = EpisodicRewardWrapper(TabletopEnv(max_steps=4, seed=0), scorer, max_frames=4)
    env.reset(seed=3)
    while True:
        _, _, terminated, truncated, info = env.step(env.unwrapped.expert_action())
        if terminated or truncated:
            return env, info


def _within(actual, expected, kind):
    # The client sends frames as an H.264 file (a lossy encoding, crf 18) that the server decodes;
    # the other two see the frames themselves.
    np.testing.assert_allclose(actual, expected, atol=2e-2 if kind == "serve" else 1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_the_rl_wrapper_and_the_clip_judge_score_frames_alike(world, scorers, kind):
    env, info = _rl_episode(world["local"])
    task, expected = env.task, np.array(info["roboreward"]["probs"])
    world["table"][task] = tuple(expected)
    _, info = _rl_episode(scorers[kind])
    _within(info["roboreward"]["probs"], expected, kind)
    assert info["roboreward"]["score"] == int(np.argmax(expected)) + 1

    frames = video.sample_frames(world["episode"].video, num_frames=4)
    judge_task = "stack the green cube on the red one"
    world["table"][judge_task] = world["local"].score(frames, judge_task, fps=2.0).probs
    spec = world["specs"][kind] if kind != "local" else f"hf:{world['specs']['local']}"
    judge = ScorerJudge(spec, RelabelConfig(judge=spec, num_frames=4, stages=["temporal_clip"]))
    answer = judge.answer("", judge_task, frames, 2.0)
    assert answer == rubric.format_answer(int(np.argmax(world["table"][judge_task])) + 1)


def test_annotate_under_accelerate_launch_equals_one_process(world, tmp_path):
    """Two processes (accelerate launch on CPU) write the annotations one process writes, byte for byte."""
    dataset = write_lerobot_v21(
        tmp_path / "lerobot", [(TASK, 6), ("open the drawer", 7), (TASK, 5), ("close the lid", 8)]
    )
    argv = ["--lerobot", str(dataset), "--model", str(world["tiny"]), "--batch-size", "1", "--device", "cpu"]
    assert main(["annotate", *argv, "--out", str(tmp_path / "one")]) == 0
    launch = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(_free_port()),
        "-m",
        "roboreward.cli",
        "annotate",
        *argv,
        "--out",
        str(tmp_path / "two"),
    ]
    done = subprocess.run(launch, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    for name in (ANNOTATIONS, "report.json"):
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), name
    assert not list((tmp_path / "two").glob("annotations.partial*"))
