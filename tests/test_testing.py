"""Tests of roboreward.testing.tiny: the offline tokenizer and the tiny random Qwen models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TINY_VLM_FIXTURES
from transformers import (
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoProcessor,
    AutoTokenizer,
)

from roboreward.testing.tiny import (
    EXTRA_TOKENS,
    SPECIAL_TOKENS,
    build_tokenizer,
    make_tiny_lm,
    make_tiny_vlm,
)

NUM_FRAMES = 8
FPS = 2.0
PROMPT = "Task: <task>put the red block in the blue bowl</task> Reply in the form 'ANSWER: <score>'."


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


@pytest.fixture(scope="module", params=["qwen2_5_vl", "qwen3_vl"])
def vlm(request):
    """(family, path, processor, model) of each family's session-wide tiny VLM, loaded once per module."""
    family = request.param
    path = request.getfixturevalue(TINY_VLM_FIXTURES[family])
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    return family, path, processor, model


def _frames(num_frames: int = NUM_FRAMES, size: int = 56, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (num_frames, size, size, 3), dtype=np.uint8)


def _video_inputs(processor, frames: np.ndarray, fps: float = FPS):
    """The recipe of the module docstring: template text, then the processor with sampled frames."""
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": PROMPT}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    metadata = {"total_num_frames": len(frames), "fps": fps, "frames_indices": list(range(len(frames)))}
    return processor(
        text=[text],
        videos=[frames],
        video_metadata=[metadata],
        do_sample_frames=False,
        return_tensors="pt",
    )


def _n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------------------------
# Tokenizer


def test_digits_are_single_tokens(tokenizer):
    ids = [tokenizer(str(d), add_special_tokens=False).input_ids for d in range(10)]
    assert all(len(i) == 1 for i in ids)
    assert len({i[0] for i in ids}) == 10
    # Numbers are split digit by digit, like Qwen's tokenizer.
    assert tokenizer("2025").input_ids == [ids[2][0], ids[0][0], ids[2][0], ids[5][0]]


def test_answer_tokenizes_like_qwen(tokenizer):
    ids = tokenizer("ANSWER: 4").input_ids
    assert tokenizer.convert_ids_to_tokens(ids) == ["ANSWER", ":", "Ġ", "4"]
    assert ids[-1] == tokenizer.convert_tokens_to_ids("4")
    for score in range(1, 6):
        prefix_ids = tokenizer("ANSWER: ").input_ids
        full = tokenizer(f"ANSWER: {score}").input_ids
        assert full[: len(prefix_ids)] == prefix_ids
        assert full[len(prefix_ids) :] == [tokenizer.convert_tokens_to_ids(str(score))]
    assert tokenizer.decode(ids) == "ANSWER: 4"


def test_special_tokens_are_single_ids(tokenizer):
    base = len(tokenizer) - len(SPECIAL_TOKENS) - len(EXTRA_TOKENS)
    for offset, token in enumerate(SPECIAL_TOKENS + EXTRA_TOKENS):
        ids = tokenizer(token, add_special_tokens=False).input_ids
        assert ids == [base + offset], token
        assert tokenizer.decode(ids) == token
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer.bos_token is None
    text = "<|im_start|>assistant\nANSWER: 3<|im_end|>"
    ids = tokenizer(text).input_ids
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids) == text
    assert tokenizer.decode(ids, skip_special_tokens=True) == "assistant\nANSWER: 3"
    # <think> is added but not special: it survives skip_special_tokens, like Qwen's.
    assert tokenizer.decode(tokenizer("<think>ok</think>").input_ids, skip_special_tokens=True) == (
        "<think>ok</think>"
    )


def test_tokenizer_is_deterministic_and_small(tokenizer):
    again = build_tokenizer()
    assert again.get_vocab() == tokenizer.get_vocab()
    assert again.backend_tokenizer.to_str() == tokenizer.backend_tokenizer.to_str()
    assert 1000 <= len(tokenizer) <= 2000
    text = "pick up the green cup and place it on the plate, then open the drawer"
    assert again(text).input_ids == tokenizer(text).input_ids
    assert tokenizer.decode(tokenizer(text).input_ids) == text


def test_tokenizer_round_trip_through_save(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert type(loaded).__name__ == "Qwen2Tokenizer"
    assert loaded.get_vocab() == tokenizer.get_vocab()
    text = "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>Fold the towel.<|im_end|>\n"
    assert loaded(text).input_ids == tokenizer(text).input_ids


# ------------------------------------------------------------------------------------------------
# Vision-language models


def test_vlm_is_tiny_and_configured(vlm, tokenizer):
    family, path, processor, model = vlm
    assert _n_params(model) < 1_000_000
    config = model.config
    assert config.model_type == family
    tok = processor.tokenizer
    assert config.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>")
    assert config.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert config.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    assert config.vision_end_token_id == tok.convert_tokens_to_ids("<|vision_end|>")
    assert len(tok) <= config.text_config.vocab_size < len(tok) + 64
    assert model.generation_config.pad_token_id == tok.pad_token_id
    assert tok.eos_token_id in model.generation_config.eos_token_id
    assert tok.get_vocab() == tokenizer.get_vocab()
    text_config = config.text_config
    head_dim = text_config.hidden_size // text_config.num_attention_heads
    assert sum(text_config.rope_parameters["mrope_section"]) == head_dim // 2
    assert "random" in (path / "README.md").read_text()


def test_vlm_forward_on_video(vlm):
    family, _, processor, model = vlm
    inputs = _video_inputs(processor, _frames())
    merge = processor.video_processor.merge_size
    grid = inputs["video_grid_thw"]
    assert grid.tolist() == [[NUM_FRAMES // 2, 4, 4]]  # 56 x 56 frames: 4 x 4 patches, 2 frames a group
    ids = inputs["input_ids"][0]
    n_video = int((ids == model.config.video_token_id).sum())
    assert n_video == int(grid.prod()) // merge**2 == 16
    assert int((inputs["mm_token_type_ids"][0] == 2).sum()) == n_video
    n_start = int((ids == model.config.vision_start_token_id).sum())
    if family == "qwen3_vl":
        # One "<t seconds><|vision_start|>...<|vision_end|>" per 2-frame group.
        assert n_start == NUM_FRAMES // 2
        decoded = processor.tokenizer.decode(ids)
        assert "<0.2 seconds><|vision_start|>" in decoded and "<3.2 seconds>" in decoded
    else:
        assert n_start == 1
        assert inputs["second_per_grid_ts"].tolist() == [2 / FPS]
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape == (1, ids.shape[0], model.config.text_config.vocab_size)
    assert torch.isfinite(logits).all()
    # mm_token_type_ids carries the 3-D rope positions: dropping it changes (or breaks) the model.
    without = {k: v for k, v in inputs.items() if k != "mm_token_type_ids"}
    if family == "qwen3_vl":
        with pytest.raises(ValueError, match="mm_token_type_ids"):
            model(**without)
    else:
        with torch.no_grad():
            assert not torch.allclose(model(**without).logits, logits)


def test_vlm_generate_on_video(vlm):
    _, _, processor, model = vlm
    inputs = _video_inputs(processor, _frames(seed=1))
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    n_prompt = inputs["input_ids"].shape[1]
    assert out.shape == (1, n_prompt + 4)
    assert torch.equal(out[0, :n_prompt], inputs["input_ids"][0])
    # Greedy decoding agrees with the forward pass on the first new token.
    with torch.no_grad():
        first = model(**inputs).logits[0, -1].argmax()
    assert out[0, n_prompt] == first


def test_vlm_save_load_round_trip(vlm, tmp_path):
    _, _, processor, model = vlm
    inputs = _video_inputs(processor, _frames(seed=2))
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    reloaded = AutoModelForImageTextToText.from_pretrained(tmp_path).eval()
    inputs_again = _video_inputs(AutoProcessor.from_pretrained(tmp_path), _frames(seed=2))
    for key in ("input_ids", "pixel_values_videos", "video_grid_thw", "mm_token_type_ids"):
        assert torch.equal(inputs[key], inputs_again[key]), key
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, reloaded(**inputs_again).logits)


def test_vlm_chat_template(vlm):
    family, _, processor, _ = vlm
    messages = [
        {"role": "user", "content": [{"type": "video", "video": _frames()}, {"type": "text", "text": "Go."}]},
        {"role": "assistant", "content": "ANSWER: 5"},
    ]
    text = processor.apply_chat_template(messages, tokenize=False)
    if family == "qwen2_5_vl":
        assert text == (
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>Go.<|im_end|>\n"
            "<|im_start|>assistant\nANSWER: 5<|im_end|>\n"
        )
    else:
        assert text == (
            "<|im_start|>user\n<|video_pad|>Go.<|im_end|>\n<|im_start|>assistant\nANSWER: 5<|im_end|>\n"
        )
    prompt = processor.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("Go.<|im_end|>\n<|im_start|>assistant\n")
    # The tokenizer alone carries the same template.
    assert AutoTokenizer.from_pretrained(vlm[1]).chat_template == processor.chat_template


def test_vlm_processor_keeps_frames_small(vlm):
    _, _, processor, _ = vlm
    # Large frames are shrunk to at most 128 patches per frame (8 frames).
    inputs = _video_inputs(processor, _frames(size=448))
    t, h, w = inputs["video_grid_thw"][0].tolist()
    assert t == NUM_FRAMES // 2
    assert 16 <= h * w <= 128


def test_same_seed_same_weights_other_seed_differs(tmp_path):
    def weights(seed, name):
        path = make_tiny_vlm(tmp_path / name, family="qwen2_5_vl", seed=seed)
        return AutoModelForImageTextToText.from_pretrained(path).state_dict()

    a, b, c = weights(0, "a"), weights(0, "b"), weights(1, "c")
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    # Building a model leaves the caller's RNG alone.
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    make_tiny_vlm(tmp_path / "d", family="qwen3_vl", seed=7)
    assert torch.equal(torch.rand(3), expected)


def test_small_size_is_a_few_million(tmp_path):
    for family in ("qwen2_5_vl", "qwen3_vl"):
        path = make_tiny_vlm(tmp_path / family, family=family, size="small")
        n = _n_params(AutoModelForImageTextToText.from_pretrained(path))
        assert 2_000_000 < n < 10_000_000, (family, n)


def test_bad_arguments_raise(tmp_path):
    with pytest.raises(ValueError, match="family"):
        make_tiny_vlm(tmp_path, family="llava")
    with pytest.raises(ValueError, match="size"):
        make_tiny_vlm(tmp_path, size="huge")
    with pytest.raises(ValueError, match="family"):
        make_tiny_lm(tmp_path, family="qwen2_5_vl")


# ------------------------------------------------------------------------------------------------
# Text-only models


@pytest.mark.parametrize("family", ["qwen2", "qwen3"])
def test_tiny_lm(family, tmp_path):
    path = make_tiny_lm(tmp_path / family, family=family)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    assert model.config.model_type == family
    assert _n_params(model) < 1_000_000
    messages = [{"role": "user", "content": "Score the episode."}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    system = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" if family == "qwen2" else ""
    assert text == system + "<|im_start|>user\nScore the episode.<|im_end|>\n<|im_start|>assistant\n"
    inputs = tokenizer([text], return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
        out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert logits.shape == (1, inputs["input_ids"].shape[1], model.config.vocab_size)
    assert out.shape == (1, inputs["input_ids"].shape[1] + 4)
    assert out[0, inputs["input_ids"].shape[1]] == logits[0, -1].argmax()
    reloaded = AutoModelForCausalLM.from_pretrained(path).eval()
    with torch.no_grad():
        assert torch.equal(reloaded(**inputs).logits, logits)
