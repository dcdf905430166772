"""Served reward models: the five-way distribution from log-probabilities, video parts, fallbacks,
pools and concurrency, against a scripted server speaking vLLM's request and response shapes."""

import base64
import json
import logging
import math
import re

import numpy as np
import pytest
import torch
from conftest import frame_index_of, named_checkpoint, write_manifest, write_video

from roboreward import rubric, video
from roboreward.apps.rl import EpisodicRewardWrapper
from roboreward.bench.run import BenchConfig, run_bench
from roboreward.dataset.builder import BuildConfig, build
from roboreward.models.endpoints import EndpointPool, ordered_map
from roboreward.models.local import RewardModel
from roboreward.models.openai_chat import BackendError, OpenAIChat
from roboreward.models.served import ServedRewardModel, ServedScoreError, distribution
from roboreward.sim import TabletopEnv
from roboreward.testing.chat_server import Reply, ScriptedChatServer, prompt_text

FIXED = {
    "4": math.log(0.5),
    "3": math.log(0.2),
    "the": math.log(0.15),
    "5": math.log(0.1),
    "2": math.log(0.05),
}


def _fixed(request):
    return Reply("ANSWER: 4", FIXED)


@pytest.fixture(scope="module")
def episode(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("served") / "ep.mp4", num_frames=20, fps=10)


def _parts(request, kind):
    return [p for p in request["messages"][0]["content"] if p["type"] == kind]


def test_the_distribution_is_the_renormalised_score_tokens():
    probs = distribution(FIXED)
    assert probs == pytest.approx((0.0, 0.05 / 0.85, 0.2 / 0.85, 0.5 / 0.85, 0.1 / 0.85), abs=1e-15)
    assert sum(probs) == pytest.approx(1.0, abs=1e-15)
    # a digit after a space counts only when the bare digit is not listed
    assert distribution({" 4": math.log(0.3), "4": math.log(0.6), "\u25815": math.log(0.2)}) == pytest.approx(
        (0.0, 0.0, 0.0, 0.75, 0.25)
    )
    assert distribution({"the": -0.1, "a": -2.0}) is None


def test_logprob_scoring_on_a_vllm_shaped_server(episode):
    with ScriptedChatServer(_fixed, model="judge") as server:
        model = ServedRewardModel.from_spec(f"openai+logprobs:{server.url}#judge", num_frames=6, max_side=32)
        result = model.score(episode, "open the drawer")
    expected = (0.0, 0.05 / 0.85, 0.2 / 0.85, 0.5 / 0.85, 0.1 / 0.85)
    assert result.probs == pytest.approx(expected, abs=1e-15) and result.score == 4
    mean = sum(k * p for k, p in zip(range(1, 6), expected, strict=True))
    assert result.expected == pytest.approx(mean, abs=1e-12)
    assert result.reward == pytest.approx((mean - 1) / 4, abs=1e-12)
    (request,) = server.requests
    assert request["messages"][-1] == {"role": "assistant", "content": "ANSWER: "}
    assert request["continue_final_message"] is True and request["add_generation_prompt"] is False
    assert (request["max_tokens"], request["logprobs"], request["top_logprobs"], request["temperature"]) == (
        1,
        True,
        20,
        0.0,
    )
    assert prompt_text(request) == rubric.build_prompt("open the drawer", "toolkit")
    # the frames went as one video part: an mp4 of exactly the six sampled frames, before the text
    (part,) = _parts(request, "video_url")
    assert request["messages"][0]["content"][0] is not None and request["messages"][0]["content"][0] == part
    header, data = part["video_url"]["url"].split(",", 1)
    assert header == "data:video/mp4;base64"
    sent = video.sample_frames(base64.b64decode(data))
    wanted = video.sample_frames(episode, num_frames=6, max_side=32)
    assert len(sent) == 6 and [frame_index_of(f) for f in sent] == [frame_index_of(f) for f in wanted]
    assert model.pool.members[0].accepts_video is True and model.pool.members[0].gives_logprobs is True


def test_a_server_that_rejects_logprobs_falls_back_to_text(episode, caplog):
    with (
        ScriptedChatServer(_fixed, logprobs="reject") as server,
        caplog.at_level(logging.WARNING, "roboreward"),
    ):
        model = ServedRewardModel.from_spec(f"openai+logprobs:{server.url}#judge", num_frames=4, max_side=32)
        first = model.answer(episode, "open the drawer")
        second = model.answer(episode, "close the drawer")
        certain = model.score(episode, "x")
    # first request: logprobs + video refused, logprobs + frames refused, then text + video taken
    assert len(server.refused) == 2 and all("Unsupported fields" in r for r in server.refused)
    assert [("logprobs" in r, len(_parts(r, "video_url"))) for r in server.requests] == [(False, 1)] * 3
    assert all("continue_final_message" not in r and r["max_tokens"] == 64 for r in server.requests)
    assert (first.scoring, first.video_input, first.text, first.probs) == ("text", "video", "ANSWER: 4", None)
    assert second.scoring == "text" and certain.probs == (0.0, 0.0, 0.0, 1.0, 0.0) and certain.expected == 4.0
    assert "does not return log-probabilities (a request with them was refused" in caplog.text
    assert "does not take a video part" not in caplog.text


def test_a_server_that_ignores_logprobs_falls_back_to_text(episode, caplog):
    with (
        ScriptedChatServer(_fixed, logprobs="ignore") as server,
        caplog.at_level(logging.WARNING, "roboreward"),
    ):
        model = ServedRewardModel.from_spec(f"openai+logprobs:{server.url}#judge", num_frames=4, max_side=32)
        answers = [model.answer(episode, "open the drawer") for _ in range(2)]
    # one prefilled request answered without log-probabilities, then text only
    assert [r.get("logprobs", False) for r in server.requests] == [True, False, False]
    assert [a.scoring for a in answers] == ["text", "text"] and answers[0].score == 4
    assert "does not return log-probabilities (it answered without them)" in caplog.text


def test_a_server_without_video_input_gets_frames(episode, caplog):
    with ScriptedChatServer(_fixed, video="refuse") as server, caplog.at_level(logging.WARNING, "roboreward"):
        model = ServedRewardModel.from_spec(f"openai+logprobs:{server.url}#judge", num_frames=5, max_side=32)
        answers = [model.answer(episode, "open the drawer") for _ in range(3)]
        # asked for video only, the refusal is an error naming the server's reason
        strict = OpenAIChat(server.url, "judge", video_input="video", retries=0)
        with pytest.raises(BackendError, match=r"HTTP 400.*does not support video input"):
            strict.complete("bench", "hi", video.sample_frames(episode, num_frames=2))
    assert len(server.refused) == 2 and all("video" in r for r in server.refused)
    assert [len(_parts(r, "image_url")) for r in server.requests] == [5, 5, 5]
    assert {a.video_input for a in answers} == {"frames"} and {a.scoring for a in answers} == {"logprobs"}
    assert "does not take a video part" in caplog.text


def test_a_server_failing_on_video_parts_gets_frames_without_retries(episode):
    with ScriptedChatServer(_fixed, video="fail") as server:
        chat = OpenAIChat(server.url, "judge", retries=3, backoff=30.0)  # a retried 500 would take 30 s
        frames = video.sample_frames(episode, num_frames=3)
        answers = [chat.ask("hi", frames, 8, 1.0) for _ in range(2)]
    assert server.refused == ["Internal Server Error"] and chat.accepts_video is False
    assert [a.video_input for a in answers] == ["frames", "frames"]
    assert [len(_parts(r, "image_url")) for r in server.requests] == [3, 3]


def test_no_score_token_is_no_score(episode):
    with ScriptedChatServer(lambda r: Reply("the", {"the": -0.1, "a": -3.0})) as server:
        model = ServedRewardModel.from_spec(f"openai+logprobs:{server.url}#judge", num_frames=2)
        answer = model.answer(episode, "open the drawer")
        assert answer.score is None and "no score among the top log-probabilities" in answer.text
        with pytest.raises(ServedScoreError, match="holds no score"):
            model.score(episode, "open the drawer")


def test_pool_and_concurrency(episode):
    def numbered(request):  # the answer depends on the task only: order must survive concurrency
        digit = prompt_text(request).split("stack block ")[1][0]
        return Reply(f"ANSWER: {digit}", {digit: -0.01, "1": -5.0})

    with ScriptedChatServer(numbered, latency=0.05) as a, ScriptedChatServer(numbered, latency=0.05) as b:
        spec = f"openai+logprobs:{a.url}#judge,{b.url}#judge"
        model = ServedRewardModel.from_spec(spec, concurrency=4, num_frames=2, max_side=32)
        tasks = [f"stack block {1 + i % 5}" for i in range(12)]
        results = model.score_batch([episode] * 12, tasks)
    assert [r.score for r in results] == [1 + i % 5 for i in range(12)]
    assert len(a.requests) + len(b.requests) == 12 and min(len(a.requests), len(b.requests)) >= 3
    assert model.pool.served == [len(a.requests), len(b.requests)]


def test_ordered_map_keeps_order_and_stops_at_the_first_error():
    assert list(ordered_map(lambda x: -x, range(50), concurrency=8)) == [-x for x in range(50)]
    started = []

    def fail_at_3(x):
        started.append(x)
        if x == 3:
            raise ValueError("three")
        return x

    with pytest.raises(ValueError, match="three"):
        list(ordered_map(fail_at_3, range(1000), concurrency=2))
    assert len(started) < 20  # the rest were never submitted or were cancelled
    with pytest.raises(ValueError, match="concurrency must be >= 1"):
        list(ordered_map(abs, [1], concurrency=0))
    with pytest.raises(ValueError, match="same model"):
        EndpointPool([OpenAIChat("http://a:1/v1", "x"), OpenAIChat("http://b:1/v1", "y")])


def test_rl_wrapper_scores_episodes_with_a_served_model():
    with ScriptedChatServer(_fixed) as server:
        model = ServedRewardModel.from_spec(f"openai+logprobs:{server.url}#judge")
        env = EpisodicRewardWrapper(TabletopEnv(max_steps=6), model, max_frames=4)
        env.reset(seed=0)
        rewards, info = [], {}
        for _ in range(6):
            _, reward, terminated, truncated, info = env.step(env.unwrapped.expert_action())
            rewards.append(reward)
            if terminated or truncated:
                break
    probs = distribution(FIXED)
    expected = sum(k * p for k, p in zip(range(1, 6), probs, strict=True))
    assert rewards[-1] == pytest.approx((expected - 1) / 4, abs=1e-12) and all(r == 0.0 for r in rewards[:-1])
    assert info["roboreward"]["probs"] == pytest.approx(list(probs), abs=1e-15)
    (request,) = server.requests
    assert len(_parts(request, "video_url")) == 1  # the episode's frames as one video


# ---------------------------------------------------------------------------------------------
# The bench: the same model local and served gives the same numbers; modes in results.json


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("served_bench")
    rows = [
        {
            "video": f"ep{i}.mp4",
            "task": f"push the cube {i}",
            "reward": 1 + i % 5,
            "source": ("a", "b")[i % 2],
        }
        for i in range(8)
    ]
    write_manifest(root, rows)
    out = root / "ds"
    build(
        BuildConfig(manifest=[str(root / "m.jsonl")], out=str(out), split_ratios={"test": 1.0}, max_side=32)
    )
    return out


def _own_logprobs(model, examples):
    """The local model's log-probabilities of the next token after ``ANSWER: ``, per prompt text: its
    five score tokens and its 15 likeliest other tokens, as a vLLM server running it would list them."""
    tokenizer = model.processor.tokenizer
    answers = {}
    for ex in examples:
        inputs = model.prepare([ex.video], [ex.task])
        with torch.inference_mode():
            logits = model.model(**inputs, logits_to_keep=1).logits[0, -1].double()
        logprobs = torch.log_softmax(logits, dim=-1)
        ids = list(model.score_token_ids)
        ids += [i for i in torch.argsort(logprobs, descending=True).tolist() if i not in ids][:15]
        top = {tokenizer.decode([i]): float(logprobs[i]) for i in ids}
        answers[rubric.build_prompt(ex.task, model.settings.prompt)] = top
    return answers


def test_local_and_logprob_served_give_the_same_numbers(dataset, tmp_path, tiny_vlm_dir):
    from roboreward.bench.run import load_examples

    checkpoint = named_checkpoint(tiny_vlm_dir, tmp_path / "tiny-a")
    local = RewardModel.from_pretrained(checkpoint, num_frames=4)
    assert local.settings.prompt == "toolkit"
    table = _own_logprobs(local, load_examples(str(dataset)))
    with ScriptedChatServer(lambda r: Reply("", table[prompt_text(r)])) as server:
        results = run_bench(
            BenchConfig(
                dataset=str(dataset),
                models=[str(checkpoint), f"openai+logprobs:{server.url}#tiny-served", "baseline:constant-3"],
                out=str(tmp_path / "out"),
                num_frames=4,
                concurrency=3,
            )
        )
    here, served = results["models"]["tiny-a"], results["models"]["tiny-served"]
    for key in ("mae", "invalid", "subset_mae", "success"):
        assert here[key] == served[key], key
    assert here["mean_win_rate"] == served["mean_win_rate"] == pytest.approx(here["mean_win_rate"])
    assert here["subset_win_rate"] == served["subset_win_rate"]
    rows = {
        name: {
            r["id"]: r for r in map(json.loads, (tmp_path / "out" / "predictions" / f"{name}.jsonl").open())
        }
        for name in ("tiny-a", "tiny-served")
    }
    assert rows["tiny-a"].keys() == rows["tiny-served"].keys() and len(rows["tiny-a"]) == 8
    for i, row in rows["tiny-a"].items():
        other = rows["tiny-served"][i]
        assert row["prediction"] == other["prediction"]
        # float32 logits of a padded batch (bench) vs one episode (the script): within 1e-6
        assert np.allclose(row["probabilities"], other["probabilities"], atol=1e-6, rtol=0)
    assert served["served"] == {
        "requested_scoring": "logprobs",
        "endpoints": 1,
        "scoring": {"logprobs": 8},
        "video_input": {"video": 8},
    }
    assert here["served"] is None


def test_bench_records_the_text_fallback_and_frames(dataset, tmp_path):
    with ScriptedChatServer(_fixed, logprobs="reject", video="refuse") as server:
        results = run_bench(
            BenchConfig(
                dataset=str(dataset),
                models=[f"openai+logprobs:{server.url}#judge"],
                out=str(tmp_path),
                num_frames=3,
            )
        )
    entry = results["models"]["judge"]
    assert entry["served"] == {
        "requested_scoring": "logprobs",
        "endpoints": 1,
        "scoring": {"text": 8},
        "video_input": {"frames": 8},
    }
    assert entry["invalid"] == 0 and entry["mae"] == pytest.approx(
        sum(abs(4 - (1 + i % 5)) for i in range(8)) / 8
    )
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["models"]["judge"]["served"]["scoring"] == {"text": 8}
    # every request after the first found out carried 3 images and no log-probability fields
    assert [len(_parts(r, "image_url")) for r in server.requests] == [3] * 8
    assert not any("logprobs" in r for r in server.requests)


def test_concurrency_gives_identical_results(dataset, tmp_path):
    def by_task(request):
        digit = str(1 + len(prompt_text(request)) % 5)
        return Reply(f"ANSWER: {digit}", {digit: -0.2, "3": -1.9})

    servers = [ScriptedChatServer(by_task, latency=0.02) for _ in range(4)]
    for s in servers:
        s.__enter__()
    try:
        spec = "openai+logprobs:" + ",".join(f"{s.url}#judge" for s in servers)
        outs = {}
        for n in (1, 8):
            run_bench(
                BenchConfig(
                    dataset=str(dataset),
                    models=[spec],
                    out=str(tmp_path / f"c{n}"),
                    concurrency=n,
                    num_frames=2,
                )
            )
            outs[n] = (tmp_path / f"c{n}" / "results.json").read_text()
    finally:
        for s in servers:
            s.__exit__(None, None, None)
    assert outs[1] == outs[8]
    assert sum(len(s.requests) for s in servers) == 16 and all(s.requests for s in servers)


def test_bad_served_settings_are_named_before_any_request(dataset, tmp_path):
    def bench(**kwargs):
        return run_bench(BenchConfig(dataset=str(dataset), out=str(tmp_path), **kwargs))

    with pytest.raises(ValueError, match="concurrency must be >= 1, got 0"):
        bench(models=["openai+logprobs:http://127.0.0.1:9/v1#judge"], concurrency=0)
    with pytest.raises(ValueError, match=r"video_input must be one of .*got 'mp4'"):
        bench(models=["openai+logprobs:http://127.0.0.1:9/v1#judge"], video_input="mp4")
    with pytest.raises(
        ValueError, match=re.escape("openai+logprobs:URL#model-name, got 'http://127.0.0.1:9/v1'")
    ):
        bench(models=["openai+logprobs:http://127.0.0.1:9/v1"])
    with pytest.raises(ValueError, match="scoring must be one of"):
        ServedRewardModel(OpenAIChat("http://127.0.0.1:9/v1", "judge"), scoring="argmax")
    assert not (tmp_path / "predictions").exists()  # nothing was started
