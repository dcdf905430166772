"""The model layer: how a reward model is prompted, what a checkpoint says about its inputs, model specs.

- `roboreward.models.settings`: the inference settings saved beside a checkpoint's weights (prompt
  preset, frames, resolution, message order) and how they are resolved for a path or Hub id.
- `roboreward.models.inputs`: the Qwen-VL input recipe, `RewardPrompter`, shared by scoring and
  training.
- `roboreward.models.specs`: one parser for the model specs that commands take (``hf:``,
  ``generate:``, ``openai:``, ``predictions:``, ``baseline:``, ``scripted:``).
- `roboreward.models.openai_chat`: the OpenAI-compatible chat client behind ``openai:`` specs.
"""

from roboreward.models.settings import (
    DEFAULT_SETTINGS,
    KNOWN_SETTINGS,
    SETTINGS_FILE,
    InferenceSettings,
    load_settings,
    resolve_settings,
    save_settings,
)

__all__ = [
    "DEFAULT_SETTINGS",
    "KNOWN_SETTINGS",
    "SETTINGS_FILE",
    "InferenceSettings",
    "load_settings",
    "resolve_settings",
    "save_settings",
]
