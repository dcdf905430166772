"""The model layer: THE reward model, whichever way it is reached, and how it is prompted.

- `roboreward.models.protocol`: `RewardScorer`, what every reward model offers (``score``,
  ``score_batch``, ``progress_curve``; one argument order);
- `roboreward.models.factory`: `load_reward_model`, the one place a model spec becomes a scorer;
- `roboreward.models.local`: `RewardModel`, a Qwen2.5-VL / Qwen3-VL checkpoint loaded here;
- `roboreward.models.served`: `ServedRewardModel`, a pool of OpenAI-compatible endpoints;
- `roboreward.models.remote`: `RewardClient`, a ``roboreward serve`` server;
- `roboreward.models.results`: `ScoreResult`, `ProgressCurve` (numpy only);
- `roboreward.models.frames`: the frames a model is shown (its settings applied to a video);
- `roboreward.models.inputs`: the Qwen-VL input recipe, `RewardPrompter`, shared by scoring and
  training;
- `roboreward.models.settings`: the inference settings saved beside a checkpoint's weights;
- `roboreward.models.views`: `Views`, one rollout's cameras as separate videos of one prompt;
- `roboreward.models.specs`: the one parser of model specs;
- `roboreward.models.openai_chat`, `roboreward.models.endpoints`: the OpenAI-compatible client and
  pools.
"""

from roboreward._imports import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "RewardScorer": "protocol",
        "load_reward_model": "factory",
        "RewardModel": "local",
        "ServedRewardModel": "served",
        "RewardClient": "remote",
        "ScoreResult": "results",
        "ProgressCurve": "results",
        "CurvePoint": "results",
        "DEFAULT_SETTINGS": "settings",
        "KNOWN_SETTINGS": "settings",
        "SETTINGS_FILE": "settings",
        "InferenceSettings": "settings",
        "load_settings": "settings",
        "resolve_settings": "settings",
        "save_settings": "settings",
        "parse_model_spec": "specs",
        "Views": "views",
    },
)
