"""Fine-tuning reward models with TRL: the trainer and its settings, and the data side.

- `roboreward.training.trainer`: `RewardScriptArguments`, `RewardSFTConfig` (TRL's SFTConfig with the
  paper's settings), `build_trainer`, `RewardSFTTrainer`, the answer-token metrics, freezing the
  vision tower;
- `roboreward.training.data`: row checks, split loading, `RewardCollator`.

``trl_training/sft.py`` is the thin TRL-style script over them.
"""

from roboreward._imports import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "IGNORE_INDEX": "data",
        "RewardCollator": "data",
        "SplitArguments": "data",
        "load_reward_splits": "data",
        "validate_rows": "data",
        "RewardSFTConfig": "trainer",
        "RewardSFTTrainer": "trainer",
        "RewardScriptArguments": "trainer",
        "TrainingSummaryCallback": "trainer",
        "accumulation_steps": "trainer",
        "answer_logits": "trainer",
        "answer_positions": "trainer",
        "build_trainer": "trainer",
        "compute_reward_metrics": "trainer",
        "freeze_vision_tower": "trainer",
        "inference_settings": "trainer",
        "parameter_counts": "trainer",
        "reward_training_args": "trainer",
    },
)
