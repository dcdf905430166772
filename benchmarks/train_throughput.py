"""Benchmark: training samples/s and peak memory, frozen vision tower vs everything trainable.

    python benchmarks/train_throughput.py                  # tiny model on CPU
    python benchmarks/train_throughput.py --device cuda    # Qwen2.5-VL-3B from its config, random weights

On CPU it trains the "small" model of `roboreward.testing` on generated 16-frame rollouts through the
real collator (`roboreward.training.RewardCollator`). With ``--device cuda`` it builds Qwen2.5-VL-3B
from its published configuration with random weights (speed does not depend on the weights) and times
optimizer steps at batch 1 x 16 frames. The ratio is frozen-tower throughput over all-trainable
throughput, measured in the same run. On CPU the peak is the process's resident high-water mark
(it only grows, so the second configuration's figure includes the first's); on CUDA it is
``torch.cuda.max_memory_allocated`` reset between the two. The batches come from the tiny model's
processor (its token ids stand in for Qwen's: same sequence shapes, same cost).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _report import write_report

from roboreward.scoring import RewardPrompter
from roboreward.testing import make_tiny_vlm
from roboreward.training import RewardCollator, freeze_vision_tower

# Qwen/Qwen2.5-VL-3B-Instruct's published config.json (text and vision towers).
QWEN2_5_VL_3B = {
    "text_config": {
        "hidden_size": 2048,
        "intermediate_size": 11008,
        "num_hidden_layers": 36,
        "num_attention_heads": 16,
        "num_key_value_heads": 2,
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
        "intermediate_size": 3420,
        "num_heads": 16,
        "out_hidden_size": 2048,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [7, 15, 23, 31],
        "in_chans": 3,
    },
    "image_token_id": 151655,
    "video_token_id": 151656,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
}


def _rows(count: int, frames: int, size: int) -> list[dict]:
    rng = np.random.default_rng(0)
    return [
        {
            "video": rng.integers(0, 255, (frames, size, size, 3), dtype=np.uint8),
            "task": f"put the red block in the blue bowl {i}",
            "reward": 1 + i % 5,
        }
        for i in range(count)
    ]


def _peak_mb(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _time_steps(model, batches, steps: int, device: str) -> tuple[float, float]:
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=3e-6, weight_decay=0.05
    )
    model.train()
    times = []
    for step in range(steps + 1):
        batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in batches[step % len(batches)].items()}
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        if step:  # the first step warms up
            times.append(time.perf_counter() - start)
    return statistics.median(times), _peak_mb(device)


def _cuda_model(frozen: bool):
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**QWEN2_5_VL_3B)).to("cuda", torch.bfloat16)
    model.gradient_checkpointing_enable()
    if frozen:
        freeze_vision_tower(model)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/train_throughput.json")
    args = parser.parse_args()

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        path = make_tiny_vlm(Path(tmp) / "small", size="small")
        processor = AutoProcessor.from_pretrained(path)
        if args.device == "cuda":
            processor.video_processor.size = {"shortest_edge": 3136, "longest_edge": 448 * 448}
        collate = RewardCollator(RewardPrompter(processor, num_frames=16, frames_fps=4.0))
        size = 448 if args.device == "cuda" else 112
        batch_size = 1 if args.device == "cuda" else args.batch_size
        batches = [collate(_rows(batch_size, 16, size)) for _ in range(2)]
        for frozen in (True, False):
            if args.device == "cuda":
                torch.cuda.reset_peak_memory_stats()
                model = _cuda_model(frozen)
            else:
                model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32)
                if frozen:
                    freeze_vision_tower(model)
            trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
            seconds, peak = _time_steps(model, batches, args.steps, args.device)
            key = "frozen_tower" if frozen else "all_trainable"
            results[key] = {
                "step_s": round(seconds, 4),
                "samples_per_s": round(batch_size / seconds, 3),
                "peak_memory_mb": round(peak, 1),
                "trainable_parameters": trainable,
            }
            rate = batch_size / seconds
            print(f"{key:14s} {rate:8.2f} samples/s  step {seconds * 1000:8.1f} ms  peak {peak:8.1f} MB")
            del model
    ratio = round(results["frozen_tower"]["samples_per_s"] / results["all_trainable"]["samples_per_s"], 2)
    print(f"frozen tower / all trainable throughput: {ratio}x")
    write_report(
        {
            "benchmark": "train_throughput",
            "device": args.device,
            "model": "Qwen2.5-VL-3B (config, random weights), bf16"
            if args.device == "cuda"
            else "tiny 'small' Qwen2.5-VL",
            "batch": f"{batch_size} x 16 frames of {size}x{size}",
            "results": results,
            "ratio_frozen_vs_all_trainable": ratio,
            "argv": sys.argv[1:],
        },
        args.out,
    )


if __name__ == "__main__":
    main()
