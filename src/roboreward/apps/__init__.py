"""The reward model at work: annotating datasets, progress curves, RL wrappers, the Hub, the demo.

- `roboreward.apps.annotate`: score (and filter) every episode of a LeRobot dataset;
- `roboreward.apps.curves`: progress curves, written and plotted;
- `roboreward.apps.rl`: gymnasium wrappers paying an episodic reward;
- `roboreward.apps.hub`: pushing datasets and models with their cards;
- `roboreward.apps.demo`: the offline end-to-end demo;
- `roboreward.apps.imitation`: does the reward model help? Reward-filtered and reward-weighted
  behaviour cloning on PushT against the env's truth (``roboreward demo --env pusht``).

Each takes any reward model through `roboreward.models.load_reward_model`.
"""

from roboreward._imports import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "AnnotateConfig": "annotate",
        "annotate_lerobot": "annotate",
        "CurveConfig": "curves",
        "run_curve": "curves",
        "ImitationConfig": "imitation",
        "run_imitation": "imitation",
        "EpisodicRewardWrapper": "rl",
        "VectorEpisodicRewardWrapper": "rl",
    },
)
