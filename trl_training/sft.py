# Copyright 2026 The RoboReward toolkit authors. Licensed under the Apache License, Version 2.0.
"""Fine-tune a Qwen2.5-VL / Qwen3-VL reward model on RoboReward, the paper's way.

The vision encoder is frozen, the merger and the language model are trained (lr 3e-6, weight decay
0.05, effective batch 64 by gradient accumulation), and the checkpoint with the lowest validation MAE
is kept in --output_dir with its processor and training_summary.json. All the logic lives in
`roboreward.training.trainer`; the training settings are `RewardSFTConfig` (TRL's SFTConfig with the
paper's defaults); every field of the YAML recipe can be overridden on the command line. This script
is `roboreward.training.script.main`; from any install (no checkout) the same is
``roboreward train --config qwen2_5_vl_3b`` (a shipped recipe by name), or
``accelerate launch -m roboreward.cli train --config qwen2_5_vl_3b``.

# One GPU, the paper's 3B recipe:
accelerate launch trl_training/sft.py --config trl_training/configs/qwen2_5_vl_3b.yaml

# Several GPUs (DDP), or DeepSpeed ZeRO-3 for the 7B/8B models (the accumulation follows the GPU count):
accelerate launch --config_file trl_training/accelerate_configs/multi_gpu.yaml --num_processes 8 \\
    trl_training/sft.py --config trl_training/configs/qwen2_5_vl_7b.yaml
accelerate launch --config_file trl_training/accelerate_configs/zero3.yaml --num_processes 8 \\
    trl_training/sft.py --config trl_training/configs/qwen3_vl_8b.yaml

# Any field from the command line (it wins over the YAML), e.g. LoRA on a built folder:
accelerate launch trl_training/sft.py --config trl_training/configs/qwen2_5_vl_3b.yaml \\
    --dataset_name ./roboreward --use_peft --lora_r 16 --output_dir runs/3b-lora

# Resume an interrupted run:
accelerate launch trl_training/sft.py --config trl_training/configs/qwen2_5_vl_3b.yaml \\
    --resume_from_checkpoint runs/roboreward-qwen2_5_vl_3b/checkpoint-300

# CPU smoke test on a tiny model (python -c "from roboreward.testing.tiny import make_tiny_vlm as m;
# m('/tmp/tiny-qwen2_5_vl')") and a folder built by `roboreward build`, two processes over gloo
# (accelerate 1.15 starts several CPU processes through its torchrun path, --multi_gpu; `use_cpu: true`
# in the recipe keeps them on the CPU; `--cpu --num_processes 2` would start one process without mpirun):
accelerate launch --multi_gpu --num_processes 2 trl_training/sft.py \\
    --config trl_training/configs/tiny_cpu.yaml \\
    --model_name_or_path /tmp/tiny-qwen2_5_vl --dataset_name ./roboreward
"""

import sys

from roboreward.training.script import main

if __name__ == "__main__":
    sys.exit(main())
