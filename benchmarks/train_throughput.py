"""Benchmark: training samples/s and peak memory, frozen vision tower vs everything trainable.

    python benchmarks/train_throughput.py                  # tiny-family model on CPU
    python benchmarks/train_throughput.py --device cuda    # Qwen2.5-VL-3B from its config, random weights

Both configurations train through the real collator (`roboreward.training.trainer.RewardCollator`: the rubric
prompt, 16 frames, the answer labels) with AdamW (lr 3e-6, weight decay 0.05), and time full optimizer
steps (forward, backward, step) after one warm-up step; the figure is the median.

- CPU: the "small" Qwen2.5-VL of `roboreward.testing.tiny` (a few million parameters) at batch 2 x 16
  frames of 112 x 112. Each configuration runs in its own process, so its peak resident memory
  (``ru_maxrss``) is its own.
- ``--device cuda``: Qwen2.5-VL-3B-Instruct built from its published configuration with random
  weights (speed and memory do not depend on the weights), bf16, gradient checkpointing, batch 1 x 16
  frames of 448 x 448; peak is ``torch.cuda.max_memory_allocated``, reset between configurations.
  Inputs come from the tiny model's processor with the same patch / merge sizes, so sequence shapes
  match Qwen's; its special-token ids are written into the config in place of Qwen's.

The ratio is frozen-tower throughput over all-trainable throughput, measured in the same run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from _report import write_report

# Qwen/Qwen2.5-VL-3B-Instruct's published config.json (text and vision towers).
QWEN2_5_VL_3B = {
    "text_config": {
        "hidden_size": 2048,
        "intermediate_size": 11008,
        "num_hidden_layers": 36,
        "num_attention_heads": 16,
        "num_key_value_heads": 2,
        "hidden_act": "silu",
        "max_position_embeddings": 128000,
        "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-6,
        "vocab_size": 151936,
        "tie_word_embeddings": True,
        "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
    },
    "vision_config": {
        "depth": 32,
        "hidden_size": 1280,
        "hidden_act": "silu",
        "intermediate_size": 3420,
        "num_heads": 16,
        "in_chans": 3,
        "out_hidden_size": 2048,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [7, 15, 23, 31],
        "tokens_per_second": 2,
    },
    "tie_word_embeddings": True,
    "image_token_id": 151655,
    "video_token_id": 151656,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
}
_TOKEN_IDS = {
    "image_token_id": "<|image_pad|>",
    "video_token_id": "<|video_pad|>",
    "vision_start_token_id": "<|vision_start|>",
    "vision_end_token_id": "<|vision_end|>",
}
FRAMES = 16


def qwen2_5_vl_3b(tokenizer=None, **text_overrides):
    """Qwen2.5-VL-3B's config; with ``tokenizer``, its special-token ids replace Qwen's."""
    from transformers import Qwen2_5_VLConfig

    values = {**QWEN2_5_VL_3B, "text_config": {**QWEN2_5_VL_3B["text_config"], **text_overrides}}
    if tokenizer is not None:
        values.update({key: tokenizer.convert_tokens_to_ids(token) for key, token in _TOKEN_IDS.items()})
    return Qwen2_5_VLConfig(**values)


def _rows(count: int, size: int) -> list[dict]:
    rng = np.random.default_rng(0)
    return [
        {
            "video": rng.integers(0, 255, (FRAMES, size, size, 3), dtype=np.uint8),
            "task": "put the red block in the blue bowl" if i % 2 else "open the drawer",
            "reward": 1 + i % 5,
        }
        for i in range(count)
    ]


def _batches(model_path: Path, device: str, batch_size: int, size: int) -> list[dict]:
    from transformers import AutoProcessor

    from roboreward.models.local import RewardPrompter
    from roboreward.training.trainer import RewardCollator

    processor = AutoProcessor.from_pretrained(model_path)
    if device == "cuda":  # Qwen2.5-VL's per-frame budget covers 448 x 448
        processor.video_processor.size = {"shortest_edge": 56 * 56, "longest_edge": 448 * 448}
    collate = RewardCollator(RewardPrompter(processor, num_frames=FRAMES, frames_fps=4.0))
    return [collate(_rows(batch_size, size)) for _ in range(2)]


def _time_steps(model, batches, steps: int, device: str) -> float:
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=3e-6, weight_decay=0.05
    )
    model.train()
    times = []
    for step in range(steps + 1):
        batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in batches[step % len(batches)].items()}
        if device == "cuda":
            batch["pixel_values_videos"] = batch["pixel_values_videos"].to(torch.bfloat16)
            torch.cuda.synchronize()
        start = time.perf_counter()
        model(**batch, use_cache=False).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        if step:  # the first step warms up (and allocates the optimizer state)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def _measure(model_path: Path, frozen: bool, device: str, steps: int, batch_size: int, size: int) -> dict:
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    from roboreward.training.trainer import freeze_vision_tower

    batches = _batches(model_path, device, batch_size, size)
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        config = qwen2_5_vl_3b(AutoTokenizer.from_pretrained(model_path))
        torch.manual_seed(0)
        with torch.device("cuda"):
            model = AutoModelForImageTextToText.from_config(config, dtype=torch.bfloat16)
        model.gradient_checkpointing_enable()
    else:
        model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=torch.float32)
    if frozen:
        freeze_vision_tower(model)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    seconds = _time_steps(model, batches, steps, device)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "step_s": round(seconds, 4),
        "samples_per_s": round(batch_size / seconds, 3),
        "peak_memory_mb": round(peak, 1),
        "trainable_parameters": trainable,
        "total_parameters": sum(p.numel() for p in model.parameters()),
        "sequence_length": int(batches[0]["input_ids"].shape[1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--steps", type=int, default=8, help="timed optimizer steps per configuration")
    parser.add_argument("--batch-size", type=int, default=2, help="CPU batch (CUDA uses 1)")
    parser.add_argument("--out", default="benchmarks/results/train_throughput.json")
    args = parser.parse_args()

    from roboreward.testing.tiny import make_tiny_vlm

    cuda = args.device == "cuda"
    size = 448 if cuda else 112
    batch_size = 1 if cuda else args.batch_size
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = make_tiny_vlm(Path(tmp) / "small", size="small")
        for frozen in (True, False):
            measure_args = (path, frozen, args.device, args.steps, batch_size, size)
            if cuda:
                result = _measure(*measure_args)
            else:  # a fresh process per configuration: its peak RSS is its own
                context = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                    result = pool.submit(_measure, *measure_args).result()
            key = "frozen_tower" if frozen else "all_trainable"
            results[key] = result
            print(
                f"{key:14s} {result['samples_per_s']:8.2f} samples/s  "
                f"step {result['step_s'] * 1000:8.1f} ms  "
                f"peak {result['peak_memory_mb']:9.1f} MB  trainable {result['trainable_parameters']:,}"
            )
    ratio = round(results["frozen_tower"]["samples_per_s"] / results["all_trainable"]["samples_per_s"], 2)
    memory = round(results["frozen_tower"]["peak_memory_mb"] / results["all_trainable"]["peak_memory_mb"], 2)
    print(f"frozen tower / all trainable: throughput {ratio}x, peak memory {memory}x")
    write_report(
        {
            "benchmark": "train_throughput",
            "device": torch.cuda.get_device_name() if cuda else "cpu",
            "model": "Qwen2.5-VL-3B (published config, random weights), bf16, gradient checkpointing"
            if cuda
            else "roboreward.testing.tiny 'small' Qwen2.5-VL, float32",
            "batch": f"{batch_size} x {FRAMES} frames of {size}x{size}",
            "results": results,
            "ratio_frozen_vs_all_trainable": ratio,
            "peak_memory_ratio_frozen_vs_all_trainable": memory,
            "argv": sys.argv[1:],
        },
        args.out,
    )


if __name__ == "__main__":
    main()
