"""The simulator moved to `roboreward.sim`; this module keeps the old import working for the Space
(``spaces_demo/app.py``) until it imports `roboreward.sim`."""

from roboreward.sim import FPS, TruthCounterfactuals, make_episode, render, write_sim_dataset

__all__ = ["FPS", "TruthCounterfactuals", "make_episode", "render", "write_sim_dataset"]
