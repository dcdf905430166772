"""`roboreward sim`: procedural tabletop episodes with ground-truth rewards, in a real on-disk layout.

Every `SimConfig` field is a flag (``--help`` lists them with their defaults) and a key of the
``--config`` recipe; the flags given win over the recipe.

Examples:
    roboreward sim --out sim_oxe --episodes 24
    roboreward sim --out sim_arena --episodes 36 --layout roboarena
    roboreward sim --env pusht --out pusht_sim --episodes 10      # needs the [pusht] extra
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any, Literal

from roboreward import sim
from roboreward.cli.commands import COMMANDS
from roboreward.config import check_fields, check_range, from_namespace

#: The ``--codec`` names and the FFmpeg encoders they stand for.
CODECS = {"h264": "libx264", "av1": "libsvtav1"}


@dataclass
class SimConfig:
    """What `roboreward.sim.write_sim_dataset` renders."""

    out: str = field(metadata={"help": "a new folder to write", "metavar": "DIR"})
    episodes: int = field(default=24, metadata={"help": "how many rollouts", "metavar": "N"})
    layout: Literal["lerobot", "roboarena"] = field(
        default="lerobot", metadata={"help": "LeRobot v2.1 (successes, like OXE) or a RoboArena dump"}
    )
    codec: Literal["h264", "av1"] = field(default="h264", metadata={"help": "the LeRobot layout's videos"})
    seed: int = field(default=0, metadata={"help": "scenes and outcomes are deterministic in it"})
    env: Literal["tabletop", "pusht"] = field(
        default="tabletop",
        metadata={
            "help": "tabletop: the procedural tabletop; pusht: gym_pusht/PushT-v0 rollouts of scripted "
            "policies of graded skill (LeRobot layout; needs the [pusht] extra)"
        },
    )

    def __post_init__(self) -> None:
        check_fields(self)  # layout, codec and env among their names, also from a recipe
        if not self.out.strip():
            raise ValueError("out is empty")
        check_range(self, "episodes", low=1)
        if self.env == "pusht" and (self.layout, self.codec) != ("lerobot", "h264"):
            raise ValueError(
                f"--env pusht writes the LeRobot layout in H.264: --layout {self.layout} --codec "
                f"{self.codec} do not apply to it"
            )


def run(args: argparse.Namespace) -> int:
    """Write the simulated dataset and say where its ground truth is.

    Args:
        args: the parsed command line.
    """
    config = from_namespace(SimConfig, args)
    if config.env == "pusht":
        from roboreward.sim.pusht import write_pusht_dataset

        out = write_pusht_dataset(config.out, episodes=config.episodes, seed=config.seed)
        print(f"wrote {config.episodes} PushT episodes to {out} (ground truth in {out / 'sim_truth.jsonl'})")
        return 0
    out = sim.write_sim_dataset(
        config.out,
        episodes=config.episodes,
        layout=config.layout,
        seed=config.seed,
        codec=CODECS[config.codec],
    )
    print(
        f"wrote {config.episodes} {config.layout} episodes to {out} "
        f"(ground truth in {out / 'sim_truth.jsonl'})"
    )
    return 0


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``sim`` on ``commands`` (what ``add_subparsers(parser_class=RecipeParser)`` returns).

    Args:
        commands: the sub-command registry of the ``roboreward`` parser.
    """
    parser = commands.add_parser(
        "sim",
        dataclass_types=SimConfig,
        recipe="sim",
        help=COMMANDS["sim"],
        description="Render procedural tabletop episodes (scripted policies, every outcome of the rubric) "
        "into --out, in the LeRobot v2.1 layout (successes, like OXE) or a RoboArena dump, with the ground "
        "truth of each episode in sim_truth.jsonl. `roboreward build --lerobot/--roboarena OUT` reads it.",
    )
    parser.set_defaults(func=run)
    return parser
