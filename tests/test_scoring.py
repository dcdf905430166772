"""Tests of roboreward.models.local (RewardModel) and the `roboreward score` command, on tiny models."""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np
import pytest
import torch
from conftest import write_video
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from roboreward import rubric, video
from roboreward.cli.commands.score import add_parser as add_score_parser
from roboreward.config import RecipeParser
from roboreward.models.local import GenerateResult, RewardModel, ScoreResult
from roboreward.testing.tiny import QWEN3_VL_CHAT_TEMPLATE
from roboreward.video import VideoDecodeError

NUM_FRAMES = 8
TASK = "put the red block in the blue bowl"


@pytest.fixture(scope="session")
def reward_model(tiny_vlm_dir):
    return RewardModel.from_pretrained(tiny_vlm_dir, num_frames=NUM_FRAMES)


@pytest.fixture(scope="session")
def videos(tmp_path_factory):
    """Two different episodes: 30 frames at 10 fps (64x48) and 17 frames at 5 fps (80x64)."""
    folder = tmp_path_factory.mktemp("scoring-videos")
    return (
        write_video(folder / "a.mp4", num_frames=30, fps=10),
        write_video(folder / "b.mp4", num_frames=17, fps=5, size=(80, 64)),
    )


def _random_frames(num_frames: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (num_frames, 56, 72, 3), dtype=np.uint8)


def _raw_model(path):
    """The checkpoint's own processor and model, loaded without RewardModel."""
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    return processor, model


def _expected_probs(processor, model, source, task: str) -> np.ndarray:
    """The documented recipe, done by hand: sampled frames, the rubric prompt + 'ANSWER: ', logits."""
    frames = video.sample_frames(source, num_frames=NUM_FRAMES)
    fps = len(frames) / video.probe(source).duration
    messages = rubric.build_messages(task, frames)
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    inputs = processor(
        text=[text + "ANSWER: "],
        videos=[frames],
        video_metadata=[
            {"total_num_frames": len(frames), "fps": fps, "frames_indices": list(range(len(frames)))}
        ],
        do_sample_frames=False,
        return_tensors="pt",
    )
    ids = processor.tokenizer.convert_tokens_to_ids(["1", "2", "3", "4", "5"])
    with torch.no_grad():
        logits = model(**inputs).logits[0, -1, ids].double()
    return torch.softmax(logits, dim=-1).numpy()


def _assert_consistent(result: ScoreResult) -> None:
    probs = np.array(result.probs)
    assert len(probs) == 5 and (probs >= 0).all()
    assert probs.sum() == pytest.approx(1.0, abs=1e-9)
    assert result.score == int(np.argmax(probs)) + 1
    assert result.expected == pytest.approx(float(np.dot([1, 2, 3, 4, 5], probs)), abs=1e-9)
    assert result.reward == pytest.approx((result.expected - 1) / 4, abs=1e-12)
    assert 0.0 <= result.reward <= 1.0


def _assert_same(a: ScoreResult, b: ScoreResult, atol: float = 1e-4) -> None:
    np.testing.assert_allclose(a.probs, b.probs, atol=atol)
    assert a.score == b.score


# ------------------------------------------------------------------------------------------------
# One forward pass -> distribution over the five scores


def test_probs_are_the_softmax_of_the_five_answer_token_logits(reward_model, tiny_vlm_dir, videos):
    processor, model = _raw_model(tiny_vlm_dir)
    for source in videos:
        result = reward_model.score(source, TASK)
        np.testing.assert_allclose(result.probs, _expected_probs(processor, model, source, TASK), atol=1e-6)
        _assert_consistent(result)


def test_score_tokens_are_the_digits_after_the_answer_prefix(reward_model):
    tok = reward_model.tokenizer
    assert reward_model.score_token_ids == tuple(tok.convert_tokens_to_ids(["1", "2", "3", "4", "5"]))
    prompt = reward_model.render_prompt(TASK)
    assert prompt.endswith("<|im_start|>assistant\nANSWER: ")
    assert rubric.build_prompt(TASK) in prompt


def test_result_is_frozen_and_json_ready(reward_model, videos):
    result = reward_model.score(videos[0], TASK)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.score = 5  # type: ignore[misc]
    data = json.loads(json.dumps(result.to_dict()))
    assert data == {
        "score": result.score,
        "expected": result.expected,
        "reward": result.reward,
        "probs": list(result.probs),
    }


def test_scoring_is_deterministic(reward_model, videos):
    assert reward_model.score(videos[1], TASK) == reward_model.score(videos[1], TASK)


# ------------------------------------------------------------------------------------------------
# Batches


@pytest.mark.parametrize("batch_size", [2, 3])
def test_batch_equals_one_by_one(reward_model, videos, batch_size):
    items = [videos[0], videos[1], _random_frames(6, seed=3)]
    tasks = [
        "open the drawer",
        "pick up the green cup and place it on the plate, then close the drawer",
        TASK,
    ]
    single = [reward_model.score(v, t) for v, t in zip(items, tasks, strict=True)]
    batch = reward_model.score_batch(items, tasks, batch_size=batch_size)
    assert len(batch) == 3
    for one, many in zip(single, batch, strict=True):
        _assert_same(one, many)


def test_batch_takes_one_task_for_all_and_checks_lengths(reward_model, videos):
    batch = reward_model.score_batch(list(videos), TASK)
    _assert_same(batch[1], reward_model.score(videos[1], TASK))
    with pytest.raises(ValueError, match="2 videos but 1 tasks"):
        reward_model.score_batch(list(videos), [TASK])


# ------------------------------------------------------------------------------------------------
# Inputs


def test_path_bytes_row_and_frames_agree(reward_model, videos):
    path = videos[0]
    data = path.read_bytes()
    frames = video.sample_frames(path, num_frames=NUM_FRAMES)
    fps = NUM_FRAMES / video.probe(path).duration
    reference = reward_model.score(path, TASK)
    others = [
        reward_model.score(str(path), TASK),
        reward_model.score(data, TASK),
        reward_model.score({"bytes": data, "path": "a.mp4"}, TASK),
        reward_model.score({"bytes": None, "path": str(path)}, TASK),
        reward_model.score(frames, TASK, fps=fps),
        reward_model.score([Image.fromarray(f) for f in frames], TASK, fps=fps),
        reward_model.score(list(frames), TASK, fps=fps),
    ]
    for other in others:
        _assert_same(reference, other, atol=1e-6)


def test_odd_frame_count_repeats_the_last_frame(reward_model):
    frames = _random_frames(7, seed=5)
    _assert_same(
        reward_model.score(frames, TASK),
        reward_model.score(np.concatenate([frames, frames[-1:]]), TASK),
        atol=1e-6,
    )


def test_corrupt_video_names_the_file(reward_model, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(VideoDecodeError, match=r"broken\.mp4"):
        reward_model.score(bad, TASK)


def test_empty_task_is_refused(reward_model, videos):
    with pytest.raises(ValueError, match="task is empty"):
        reward_model.score(videos[0], "   ")
    with pytest.raises(ValueError, match="task is empty"):
        reward_model.generate(videos[0], "")


def test_bad_frames_are_refused(reward_model):
    with pytest.raises(ValueError, match="uint8"):
        reward_model.score(np.zeros((4, 8, 8, 3), np.float32), TASK)
    with pytest.raises(ValueError, match="empty"):
        reward_model.score([], TASK)


# ------------------------------------------------------------------------------------------------
# Loading


def test_tokenizer_without_single_digit_answers_is_refused(tiny_vlm_dir, reward_model):
    processor = AutoProcessor.from_pretrained(tiny_vlm_dir)
    processor.tokenizer.add_tokens(["ANSWER: 3"])  # a tokenizer that merges the answer into one token
    with pytest.raises(ValueError, match="score 3 as one token"):
        RewardModel(reward_model.model, processor)


def test_dtype_and_device(tiny_vlm_dir, reward_model, videos):
    assert reward_model.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    if reward_model.device.type == "cpu":
        assert reward_model.model.dtype == torch.float32
    half = RewardModel.from_pretrained(tiny_vlm_dir, device="cpu", dtype="bfloat16", num_frames=NUM_FRAMES)
    assert half.model.dtype == torch.bfloat16
    _assert_consistent(half.score(videos[0], TASK))
    with pytest.raises(ValueError, match="dtype"):
        RewardModel.from_pretrained(tiny_vlm_dir, dtype="float33")


def test_frame_rate_sampling_and_pixel_budget(tiny_vlm_dir, reward_model, videos):
    # 64x48 frames are 4x4 patches of 14 px by default; a budget of 28x28 pixels leaves 2x2.
    assert reward_model.prepare([videos[0]], [TASK])["video_grid_thw"][0, 1:].tolist() == [4, 4]
    model = RewardModel.from_pretrained(tiny_vlm_dir, fps=5.0, max_pixels=28 * 28, min_pixels=28 * 28)
    inputs = model.prepare([videos[0]], [TASK])  # 30 frames at 10 fps, 3 s: 15 frames, made 16
    assert inputs["video_grid_thw"][0].tolist() == [8, 2, 2]
    assert inputs["second_per_grid_ts"].tolist() == pytest.approx([2 / 5.0])
    _assert_consistent(model.score(videos[0], TASK))


# ------------------------------------------------------------------------------------------------
# Free-text answers


def test_generate_returns_text_and_its_parsed_score(reward_model, videos):
    result = reward_model.generate(videos[0], TASK, max_new_tokens=8)
    assert isinstance(result, GenerateResult) and isinstance(result.text, str) and result.text
    assert result.score == rubric.parse_answer(result.text)
    assert reward_model.generate(videos[0], TASK, max_new_tokens=8) == result  # greedy: deterministic
    batch = reward_model.generate_batch(
        [videos[0], _random_frames(4)], [TASK, "open the drawer"], max_new_tokens=8
    )
    assert len(batch) == 2
    assert all(r.score == rubric.parse_answer(r.text) for r in batch)


# ------------------------------------------------------------------------------------------------
# Qwen3-VL


def test_qwen3_vl_scores_and_its_hub_template_is_not_doubled(tiny_qwen3_vlm_dir, videos):
    path = tiny_qwen3_vlm_dir
    model = RewardModel.from_pretrained(path, num_frames=NUM_FRAMES)
    processor, raw = _raw_model(path)
    result = model.score(videos[0], TASK)
    np.testing.assert_allclose(result.probs, _expected_probs(processor, raw, videos[0], TASK), atol=1e-6)
    _assert_consistent(result)
    batch = model.score_batch([videos[0], videos[1]], [TASK, "open the drawer"], batch_size=2)
    _assert_same(batch[0], result)
    _assert_same(batch[1], model.score(videos[1], "open the drawer"))
    # The Hub's Qwen3-VL template wraps the video in vision markers; the processor adds its own.
    bare = model.render_prompt(TASK)
    wrapped = QWEN3_VL_CHAT_TEMPLATE.replace(
        "{% endif %}<|video_pad|>{% elif", "{% endif %}<|vision_start|><|video_pad|><|vision_end|>{% elif"
    )
    assert wrapped != QWEN3_VL_CHAT_TEMPLATE
    model.processor.chat_template = wrapped
    assert model.render_prompt(TASK) == bare
    _assert_same(model.score(videos[0], TASK), result, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# CLI


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="roboreward")
    add_score_parser(parser.add_subparsers(dest="command", required=True, parser_class=RecipeParser))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_score_json_matches_the_library(tiny_vlm_dir, reward_model, videos, capsys):
    argv = ["score", "--model", str(tiny_vlm_dir), "--video", str(videos[1]), "--task", TASK]
    assert _run_cli([*argv, "--json", "--num-frames", str(NUM_FRAMES)]) == 0
    out = json.loads(capsys.readouterr().out)
    expected = reward_model.score(videos[1], TASK)
    assert out["score"] == expected.score
    np.testing.assert_allclose(out["probs"], expected.probs, atol=1e-6)
    assert out["expected"] == pytest.approx(expected.expected, abs=1e-6)
    assert out["reward"] == pytest.approx(expected.reward, abs=1e-6)
    assert (out["video"], out["task"], out["mode"]) == (str(videos[1]), TASK, "prob")
    assert out["model"] == tiny_vlm_dir.name  # a local folder's name, never a path of this machine

    assert _run_cli([*argv, "--num-frames", str(NUM_FRAMES)]) == 0
    table = capsys.readouterr().out
    assert f"score     {expected.score} ({rubric.level(expected.score).name})" in table
    assert f"expected  {expected.expected:.3f}" in table and f"reward    {expected.reward:.3f}" in table
    assert all(f"{p:11.4f}" in table for p in expected.probs)


def test_cli_generate_mode_and_bad_video(tiny_vlm_dir, videos, tmp_path, capsys):
    argv = ["score", "--model", str(tiny_vlm_dir), "--task", TASK, "--num-frames", "4", "--json"]
    assert _run_cli([*argv, "--video", str(videos[0]), "--mode", "generate", "--max-new-tokens", "4"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "generate" and out["score"] == rubric.parse_answer(out["text"])
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(VideoDecodeError, match=r"broken\.mp4"):
        _run_cli([*argv, "--video", str(bad)])
