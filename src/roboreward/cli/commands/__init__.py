"""The ``roboreward`` sub-commands, one module each; each has ``add_parser(commands)`` and ``run(args)``."""

from roboreward.cli.commands import bench, build, card, demo, probe, push, relabel, review, score, serve, sim

#: In the order ``roboreward --help`` lists them.
COMMANDS = (probe, build, sim, relabel, review, score, serve, bench, card, push, demo)

__all__ = ["COMMANDS"]
