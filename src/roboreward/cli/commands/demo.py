"""`roboreward demo`: the offline end-to-end demo (what `make demo` runs).

Every `roboreward.apps.demo.DemoConfig` field is a flag (``--help`` lists them with their defaults).

Examples:
    roboreward demo
    roboreward demo --out demo_output --steps 200 --serve
    roboreward demo --env pusht --out demo_pusht
    roboreward demo --env pusht --model teetone/RoboReward-4B --out demo_pusht_4b   # on a GPU
"""

from __future__ import annotations

import argparse
from typing import Any

from roboreward.apps.demo import DemoConfig, run_demo
from roboreward.cli.commands import COMMANDS
from roboreward.config import from_namespace, with_metadata

#: `DemoConfig` with the help of each field; its defaults stay `DemoConfig`'s.
DemoArguments = with_metadata(
    DemoConfig,
    out={"help": "output folder, replaced if it exists", "metavar": "DIR"},
    arena_episodes={
        "help": "simulated RoboArena policy runs (sessions of 3: every rubric level)",
        "metavar": "N",
    },
    oxe_episodes={"help": "simulated LeRobot (OXE-like) successes", "metavar": "N"},
    train_steps={"help": "training steps", "aliases": ["--steps"], "metavar": "N"},
    learning_rate={"help": "a model trained from random weights needs more than the paper's 3e-6"},
    num_frames={"help": "frames per video in training and bench", "metavar": "N"},
    max_side={"help": "longer side of those frames", "metavar": "PX"},
    batch_size={"help": "training batch size", "metavar": "N"},
    seed={"help": "the simulator's, the build's and training's seed"},
    model_size={"help": "the tiny offline reward model's size"},
    serve={"help": "then open the Space on the trained model"},
    env={
        "help": "tabletop: the tour (sim, build, train, bench, card); pusht: does the reward model "
        "help? reward-filtered and reward-weighted behaviour cloning on PushT, against the env's truth "
        "(needs the [pusht] extra)"
    },
    pusht_episodes={
        "help": "--env pusht: rollouts the reward model trains on, and as many to annotate and imitate",
        "metavar": "N",
    },
    eval_episodes={"help": "--env pusht: seeded env episodes per behaviour-cloned policy", "metavar": "N"},
    keep_min_score={
        "help": "--env pusht: the reward model's (and the oracle's) threshold for keeping a demonstration",
        "metavar": "N",
    },
    model={
        "help": "--env pusht: annotate with this reward model (a checkpoint, Hub id or served pool) "
        "instead of training one",
        "metavar": "SPEC",
    },
)


def run(args: argparse.Namespace) -> int:
    """Run the demo: sim -> build -> train -> bench -> card (optionally open the Space); with
    ``--env pusht``, the imitation experiment (sim -> train -> annotate -> BC five ways -> evaluate).

    Args:
        args: the parsed command line.
    """
    run_demo(from_namespace(DemoArguments, args))
    return 0


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``demo`` on ``commands`` (what ``add_subparsers(parser_class=RecipeParser)`` returns).

    Args:
        commands: the sub-command registry of the ``roboreward`` parser.
    """
    parser = commands.add_parser(
        "demo",
        dataclass_types=DemoArguments,
        help=COMMANDS["demo"],
        description="The offline end-to-end run, no downloads: simulated LeRobot and RoboArena episodes "
        "-> roboreward build with relabeling -> a tiny reward model trained with TRL (progress bar) -> "
        "RoboRewardBench against baselines -> a model card, all in --out. Each step prints what it wrote. "
        "--env pusht: PushT rollouts of scripted policies -> a tiny reward model (or --model) -> annotate "
        "--keep-min-score -> behaviour cloning on all, kept, weighted, oracle-kept and random demonstrations "
        "-> each run in the env: a table (imitation.md) and a plot in --out.",
    )
    parser.set_defaults(func=run)
    return parser
