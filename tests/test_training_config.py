"""`RewardSFTConfig`: TRL's SFTConfig with the paper's training settings, parsed the TRL way."""

from __future__ import annotations

import pytest
from trl import ModelConfig, SFTConfig, TrlParser

from roboreward.training import RewardScriptArguments, RewardSFTConfig

#: Settings every parse needs on a machine without a GPU.
CPU = ["--output_dir", "/tmp/unused", "--use_cpu", "true", "--bf16", "false", "--report_to", "none"]


def _parse(*flags: str) -> RewardSFTConfig:
    parser = TrlParser((RewardScriptArguments, RewardSFTConfig, ModelConfig))
    return parser.parse_args_and_config([*CPU, *flags])[1]


def test_it_is_an_sft_config_with_the_papers_defaults():
    config = _parse()
    assert isinstance(config, SFTConfig)
    assert (config.learning_rate, config.weight_decay) == (3e-6, 0.05)
    assert (config.metric_for_best_model, config.greater_is_better) == ("mae", False)  # lower MAE is better
    assert (config.remove_unused_columns, config.label_names) == (False, ["labels"])
    assert config.dataset_kwargs == {"skip_prepare_dataset": True}


def test_a_recipe_or_a_flag_changes_a_default(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("learning_rate: 1.0e-5\nmetric_for_best_model: loss\n")
    config = _parse("--config", str(recipe), "--weight_decay", "0.1")
    assert (config.learning_rate, config.weight_decay) == (1e-5, 0.1)
    assert (config.metric_for_best_model, config.greater_is_better) == ("loss", False)
    config = _parse("--dataset_kwargs", '{"skip_prepare_dataset": true, "extra": 1}')
    assert config.dataset_kwargs == {"skip_prepare_dataset": True, "extra": 1}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--remove_unused_columns", "true"],
            "remove_unused_columns must be false: RewardCollator reads the rows' video, task and reward",
        ),
        (
            ["--dataset_kwargs", '{"skip_prepare_dataset": false}'],
            "dataset_kwargs skip_prepare_dataset must be true: RewardCollator builds each row's prompt",
        ),
    ],
)
def test_settings_the_reward_trainer_cannot_work_with_are_refused(flags, message):
    with pytest.raises(ValueError) as error:
        _parse(*flags)
    assert str(error.value) == message
