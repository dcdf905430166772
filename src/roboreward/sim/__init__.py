"""The simulated tabletop: procedural episodes with ground-truth rewards, their writers, their truth
counterfactuals and the same table as a gymnasium env.

- `roboreward.sim.tabletop`: scenes, scripted rollouts, `evaluate` (the truth), rendering.
- `roboreward.sim.writers`: `write_sim_dataset` in the LeRobot v2.1 or RoboArena layout.
- `roboreward.sim.truth`: `TruthCounterfactuals`, a relabel stage whose levels are exact.
- `roboreward.sim.env`: `TabletopEnv` (``gymnasium.make("roboreward/Tabletop-v0")``), imported on
  first use: gymnasium is the ``[rl]`` extra, and writing datasets does not need it.

    >>> from roboreward import sim
    >>> sim.write_sim_dataset("sim_oxe", episodes=20, layout="lerobot", seed=0)  # doctest: +SKIP
"""

from typing import Any

from roboreward.sim.tabletop import (
    COLOURS,
    FPS,
    LEROBOT_CAMERA,
    OUTCOME_SCORE,
    OUTCOMES,
    WRIST_CAMERA,
    Block,
    Bowl,
    Scene,
    SimEpisode,
    evaluate,
    make_episode,
    move_block,
    place_apart,
    render,
    render_episode,
    render_wrist,
    task_text,
)
from roboreward.sim.truth import TruthCounterfactuals
from roboreward.sim.writers import POLICIES, Layout, write_sim_dataset

__all__ = [
    "COLOURS",
    "FPS",
    "GRASP_RADIUS",
    "LEROBOT_CAMERA",
    "OUTCOMES",
    "OUTCOME_SCORE",
    "POLICIES",
    "WRIST_CAMERA",
    "Block",
    "Bowl",
    "Layout",
    "Scene",
    "SimEpisode",
    "TabletopEnv",
    "TruthCounterfactuals",
    "evaluate",
    "make_episode",
    "move_block",
    "place_apart",
    "render",
    "render_episode",
    "render_wrist",
    "scripted_action",
    "task_text",
    "write_sim_dataset",
]


_ENV_NAMES = ("GRASP_RADIUS", "TabletopEnv", "scripted_action")


def __getattr__(name: str) -> Any:
    if name in _ENV_NAMES:  # the gymnasium env: only now is gymnasium (the [rl] extra) needed
        from roboreward.extras import require

        require("gymnasium", "rl")
        from roboreward.sim import env

        return getattr(env, name)
    raise AttributeError(f"module 'roboreward.sim' has no attribute {name!r}")
