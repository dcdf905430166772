"""Tiny random-weight Qwen models, built offline, for tests and the CPU demo.

Nothing here downloads anything: the tokenizer is a byte-level BPE trained on the spot with
`tokenizers` on a small built-in English corpus (robot tasks, the rubric's words), and the models
are Qwen2.5-VL / Qwen3-VL / Qwen2 / Qwen3 architectures built from small configs with random
weights. They are saved with ``save_pretrained``, so every code path that loads a real checkpoint
(``AutoProcessor``, ``AutoModelForImageTextToText``, ``AutoTokenizer``, ``AutoModelForCausalLM``)
loads them from the folder unchanged.

The tokenizer behaves like Qwen's where the project relies on it: the same pre-tokenizer (Qwen2's
split regex, so digits are split one by one and ``1``..``5`` are single tokens; ``"ANSWER: 4"`` is
``ANSWER``, ``:``, `` ``, ``4``), the same special tokens (``<|im_start|>``, ``<|im_end|>``,
``<|vision_start|>``, ``<|video_pad|>``, ...; eos ``<|im_end|>``, pad ``<|endoftext|>``) and the
same chat template. Ids differ from the real ones (the vocabulary has about a thousand entries).

Feeding already-sampled frames to a Qwen-VL processor
-----------------------------------------------------
This is the one recipe the project uses (training collator, scoring), for Qwen2.5-VL and Qwen3-VL
alike, with ``frames`` a ``uint8`` numpy array of shape ``(T, H, W, 3)`` that we sampled ourselves
and ``fps`` the rate of the *sampled* frames (``T / clip_seconds``)::

    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": prompt}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    n = len(frames)
    inputs = processor(
        text=[text],
        videos=[frames],
        video_metadata=[{"total_num_frames": n, "fps": fps, "frames_indices": list(range(n))}],
        do_sample_frames=False,  # we sampled already; Qwen3-VL's video processor samples by default
        return_tensors="pt",
    )
    outputs = model(**inputs)  # or model.generate(**inputs, max_new_tokens=...)

(``roboreward.rubric.build_messages(task, frames)`` gives the same ``messages``: the template only
looks at the part's ``type``, the frames themselves go through ``videos=``.) Why each piece:

* ``do_sample_frames=False``: Qwen3-VL's video processor defaults to re-sampling at 2 fps and,
  without metadata, assumes 24 fps, which would turn 8 frames into 4. Qwen2-VL's defaults to False.
* ``video_metadata``: Qwen2.5-VL turns ``fps`` into ``second_per_grid_ts`` (temporal rope
  positions); Qwen3-VL writes ``<{t:.1f} seconds>`` before each 2-frame group from
  ``frames_indices / fps``. Without it both fall back to 24 fps (Qwen3-VL logs a warning).
* Pass the model everything the processor returns, ``mm_token_type_ids`` included: in
  transformers 5 the model builds its 3-D (m-rope) positions from ``mm_token_type_ids``. Without
  it Qwen2.5-VL silently falls back to plain 1-D positions (different logits) and Qwen3-VL raises
  ValueError. A collator that pads must pad ``mm_token_type_ids`` with 0. Keep Qwen2.5-VL's
  ``second_per_grid_ts`` too (one value per video; without it every 2-frame group counts as 1 s).
* The number of ``<|video_pad|>`` tokens in ``input_ids`` is ``video_grid_thw.prod() // merge**2``
  (``merge = processor.video_processor.merge_size``), which the model checks against its features.
* The processor call (not ``apply_chat_template(..., tokenize=True)``) is used so that one code
  path handles batches: ``text`` and ``videos`` are lists with one entry per example.

Example:
    >>> import tempfile
    >>> from transformers import AutoModelForImageTextToText, AutoProcessor
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = make_tiny_vlm(Path(folder) / "tiny-qwen2.5-vl")
    ...     processor = AutoProcessor.from_pretrained(path)
    ...     model = AutoModelForImageTextToText.from_pretrained(path)
    >>> model.config.model_type, model.num_parameters() < 1_000_000
    ('qwen2_5_vl', True)
    >>> processor.tokenizer.tokenize("ANSWER: 4")
    ['ANSWER', ':', 'Ġ', '4']
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from roboreward.testing.tokenizer import (
    EXTRA_TOKENS,
    QWEN2_LM_CHAT_TEMPLATE,
    QWEN2_VL_CHAT_TEMPLATE,
    QWEN3_LM_CHAT_TEMPLATE,
    QWEN3_VL_CHAT_TEMPLATE,
    SPECIAL_TOKENS,
    build_tokenizer,
    padded_vocab_size,
    tokenizer_corpus,
)

__all__ = [
    "EXTRA_TOKENS",
    "LM_FAMILIES",
    "QWEN2_LM_CHAT_TEMPLATE",
    "QWEN2_VL_CHAT_TEMPLATE",
    "QWEN3_LM_CHAT_TEMPLATE",
    "QWEN3_VL_CHAT_TEMPLATE",
    "SIZES",
    "SPECIAL_TOKENS",
    "VLM_FAMILIES",
    "build_tokenizer",
    "make_tiny_lm",
    "make_tiny_vlm",
    "tokenizer_corpus",
]

VLM_FAMILIES = ("qwen2_5_vl", "qwen3_vl")
LM_FAMILIES = ("qwen2", "qwen3")
SIZES = ("tiny", "small")

# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------

# Text towers. head_dim = hidden / heads; mrope_section sums to head_dim / 2.
_TEXT_SIZES = {
    "tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "heads": 4, "kv": 2},
    "small": {"hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 4, "heads": 4, "kv": 2},
}
_VISION_SIZES = {
    "tiny": {"hidden_size": 32, "intermediate_size": 64, "depth": 2, "num_heads": 2},
    "small": {"hidden_size": 128, "intermediate_size": 256, "depth": 4, "num_heads": 4},
}


def _mrope_section(head_dim: int, interleaved: bool) -> list[int]:
    half = head_dim // 2
    if interleaved:  # Qwen3-VL: [24, 20, 20] for head_dim 128, i.e. (t, h, w) = (3/8, 5/16, 5/16)
        hw = (half * 5) // 16
        return [half - 2 * hw, hw, hw]
    # Qwen2.5-VL: [16, 24, 24] for head_dim 128, i.e. (t, h, w) = (1/4, 3/8, 3/8)
    t = half // 4
    return [t, (half - t) // 2, half - t - (half - t) // 2]


def _special_ids(tokenizer) -> dict[str, int]:
    return dict(zip(SPECIAL_TOKENS, tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS)), strict=True))


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def _vlm_config(family: str, size: str, tokenizer):
    ids = _special_ids(tokenizer)
    vocab_size = padded_vocab_size(tokenizer)
    text, vision = _TEXT_SIZES[size], _VISION_SIZES[size]
    head_dim = text["hidden_size"] // text["heads"]
    token_ids = {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
    }
    text_common = {
        "vocab_size": vocab_size,
        "hidden_size": text["hidden_size"],
        "intermediate_size": text["intermediate_size"],
        "num_hidden_layers": text["num_hidden_layers"],
        "num_attention_heads": text["heads"],
        "num_key_value_heads": text["kv"],
        "max_position_embeddings": 8192,
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }
    if family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig

        text_config = {
            **text_common,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1000000.0,
                "mrope_section": _mrope_section(head_dim, interleaved=False),
            },
        }
        vision_config = {
            **vision,
            "out_hidden_size": text["hidden_size"],
            "patch_size": 14,
            "temporal_patch_size": 2,
            "spatial_merge_size": 2,
            "tokens_per_second": 2,
            "window_size": 112,
            # Qwen2.5-VL: windowed attention except every 8th block; here the last block is full.
            "fullatt_block_indexes": [vision["depth"] - 1],
        }
        return Qwen2_5_VLConfig(
            text_config=text_config, vision_config=vision_config, tie_word_embeddings=False, **token_ids
        )
    from transformers import Qwen3VLConfig

    text_config = {
        **text_common,
        "head_dim": head_dim,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 5000000.0,
            "mrope_section": _mrope_section(head_dim, interleaved=True),
            "mrope_interleaved": True,
        },
    }
    vision_config = {
        **vision,
        "hidden_act": "gelu_pytorch_tanh",
        "out_hidden_size": text["hidden_size"],
        "patch_size": 16,
        "temporal_patch_size": 2,
        "spatial_merge_size": 2,
        "num_position_embeddings": 256,  # a 16 x 16 grid, interpolated to the frame's patch grid
        # DeepStack: features of these vision blocks are added to the first LLM layers.
        "deepstack_visual_indexes": list(range(vision["depth"] // 2)),
    }
    return Qwen3VLConfig(
        text_config=text_config, vision_config=vision_config, tie_word_embeddings=False, **token_ids
    )


def _vlm_processor(family: str, tokenizer):
    """Processor with the real preprocessing but few pixels per frame (cheap on CPU)."""
    from transformers import Qwen2VLImageProcessor

    if family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLProcessor, Qwen2VLVideoProcessor

        # factor 28 = patch 14 x merge 2; 28 * 28 pixels = 4 patches = 1 merged token.
        image_processor = Qwen2VLImageProcessor(
            size={"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 32},  # <= 128 patches
            patch_size=14,
            temporal_patch_size=2,
            merge_size=2,
        )
        video_processor = Qwen2VLVideoProcessor(
            size={"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 16},  # <= 64 patches per frame
            patch_size=14,
            temporal_patch_size=2,
            merge_size=2,
            cap_pixels_per_frame=True,
        )
        return Qwen2_5_VLProcessor(
            image_processor=image_processor,
            tokenizer=tokenizer,
            video_processor=video_processor,
            chat_template=QWEN2_VL_CHAT_TEMPLATE,
        )
    from transformers import Qwen3VLProcessor, Qwen3VLVideoProcessor

    half = [0.5, 0.5, 0.5]
    image_processor = Qwen2VLImageProcessor(
        size={"shortest_edge": 64 * 64, "longest_edge": 32 * 32 * 32},  # <= 128 patches
        patch_size=16,
        temporal_patch_size=2,
        merge_size=2,
        image_mean=half,
        image_std=half,
    )
    # Qwen3-VL's video budget counts the pixels of all frames: 32*32*256 pixels are <= 128 patches per
    # frame for 8 frames, <= 64 for 16.
    video_processor = Qwen3VLVideoProcessor(
        size={"shortest_edge": 64 * 64, "longest_edge": 32 * 32 * 256},
        patch_size=16,
        temporal_patch_size=2,
        merge_size=2,
        image_mean=half,
        image_std=half,
        cap_pixels_per_frame=True,
    )
    return Qwen3VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=QWEN3_VL_CHAT_TEMPLATE,
    )


def _generation_config(tokenizer):
    from transformers import GenerationConfig

    ids = _special_ids(tokenizer)
    return GenerationConfig(
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"],
        do_sample=False,
    )


def _build_seeded(model_class, config, seed: int):
    """Instantiate with random weights from ``seed``, leaving the caller's RNG state untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_class(config)
    return model.eval()


def _write_card(
    path: Path, title: str, family: str, size: str, seed: int, n_params: int, loader: str
) -> None:
    text = f"""---
library_name: transformers
tags:
- test
- random-weights
---

# {title}

**This is a random-weight test model. It has learned nothing and its outputs are meaningless.**

Built offline by `roboreward.testing.tiny` for unit tests and the CPU demo: architecture `{family}`,
size `{size}`, seed {seed}, {n_params:,} parameters. Its tokenizer is a ~1000-entry byte-level BPE
trained on a small built-in English corpus, with Qwen's pre-tokenizer, special tokens and chat
template (ids differ from the real Qwen tokenizer).

```python
{loader}
```
"""
    (path / "README.md").write_text(text, encoding="utf-8")


def make_tiny_vlm(
    path: str | os.PathLike, family: str = "qwen2_5_vl", size: str = "tiny", seed: int = 0
) -> Path:
    """Build, save and return a random-weight Qwen2.5-VL or Qwen3-VL with its processor.

    ``family`` is ``"qwen2_5_vl"`` or ``"qwen3_vl"``; ``size`` is ``"tiny"`` (under 1 M parameters,
    for unit tests) or ``"small"`` (a few million, for a CPU demo that trains in minutes). The same
    ``seed`` gives identical weights. Frames are resized to a few patches each (a 56 x 56 frame is
    4 x 4 patches), see the module docstring for how to feed sampled frames.

    >>> import tempfile
    >>> from transformers import AutoModelForImageTextToText, AutoProcessor
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = make_tiny_vlm(Path(folder) / "vlm", family="qwen3_vl")
    ...     model = AutoModelForImageTextToText.from_pretrained(path)
    ...     processor = AutoProcessor.from_pretrained(path)
    >>> model.config.model_type, processor.video_processor.merge_size
    ('qwen3_vl', 2)
    """
    _check_choice("family", family, VLM_FAMILIES)
    _check_choice("size", size, SIZES)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    chat_template = QWEN2_VL_CHAT_TEMPLATE if family == "qwen2_5_vl" else QWEN3_VL_CHAT_TEMPLATE
    tokenizer = build_tokenizer(chat_template=chat_template)
    config = _vlm_config(family, size, tokenizer)
    if family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLForConditionalGeneration as model_class
    else:
        from transformers import Qwen3VLForConditionalGeneration as model_class
    model = _build_seeded(model_class, config, seed)
    model.generation_config = _generation_config(tokenizer)
    model.save_pretrained(path)
    _vlm_processor(family, tokenizer).save_pretrained(path)
    n_params = sum(p.numel() for p in model.parameters())
    _write_card(
        path,
        f"Tiny random {family} ({size})",
        family,
        size,
        seed,
        n_params,
        "from transformers import AutoModelForImageTextToText, AutoProcessor\n"
        "processor = AutoProcessor.from_pretrained(path)\n"
        "model = AutoModelForImageTextToText.from_pretrained(path)",
    )
    return path


def _lm_config(family: str, size: str, tokenizer):
    ids = _special_ids(tokenizer)
    text = _TEXT_SIZES[size]
    common = {
        "vocab_size": padded_vocab_size(tokenizer),
        "hidden_size": text["hidden_size"],
        "intermediate_size": text["intermediate_size"],
        "num_hidden_layers": text["num_hidden_layers"],
        "num_attention_heads": text["heads"],
        "num_key_value_heads": text["kv"],
        "max_position_embeddings": 8192,
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "tie_word_embeddings": False,
    }
    if family == "qwen2":
        from transformers import Qwen2Config

        return Qwen2Config(**common, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})
    from transformers import Qwen3Config

    return Qwen3Config(
        **common,
        head_dim=text["hidden_size"] // text["heads"],
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
    )


def make_tiny_lm(path: str | os.PathLike, family: str = "qwen2", size: str = "tiny", seed: int = 0) -> Path:
    """Build, save and return a random-weight Qwen2 or Qwen3 causal LM with the same tokenizer.

    The tokenizer carries a text ChatML template (``<|im_start|>role\\ncontent<|im_end|>\\n``; Qwen2
    adds the default system prompt, Qwen3 does not). Loads with ``AutoTokenizer`` and
    ``AutoModelForCausalLM``.

    >>> import tempfile
    >>> from transformers import AutoModelForCausalLM, AutoTokenizer
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = make_tiny_lm(Path(folder) / "lm", family="qwen3")
    ...     model = AutoModelForCausalLM.from_pretrained(path)
    ...     tokenizer = AutoTokenizer.from_pretrained(path)
    >>> model.config.model_type, tokenizer.eos_token
    ('qwen3', '<|im_end|>')
    """
    _check_choice("family", family, LM_FAMILIES)
    _check_choice("size", size, SIZES)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    chat_template = QWEN2_LM_CHAT_TEMPLATE if family == "qwen2" else QWEN3_LM_CHAT_TEMPLATE
    tokenizer = build_tokenizer(chat_template=chat_template)
    if family == "qwen2":
        from transformers import Qwen2ForCausalLM as model_class
    else:
        from transformers import Qwen3ForCausalLM as model_class
    model = _build_seeded(model_class, _lm_config(family, size, tokenizer), seed)
    model.generation_config = _generation_config(tokenizer)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    n_params = sum(p.numel() for p in model.parameters())
    _write_card(
        path,
        f"Tiny random {family} ({size})",
        family,
        size,
        seed,
        n_params,
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        "tokenizer = AutoTokenizer.from_pretrained(path)\n"
        "model = AutoModelForCausalLM.from_pretrained(path)",
    )
    return path
