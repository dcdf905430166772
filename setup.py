"""Build step: ship the repository's top-level release folders inside the wheel.

``metrics/`` (evaluate modules), ``model_cards/`` (card templates), ``trl_training/`` (the training
script and recipes), ``spaces_demo/`` (the Space) and ``dataset_builder/`` (build and relabel recipes)
stay the single source of truth at the top level; a wheel carries a copy of each as
``roboreward/_data/NAME``, where `roboreward.resources` finds it. An editable install reads the
repository's folders instead. Everything else is declared in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# = roboreward.resources.SHIPPED
SHIPPED = ("metrics", "model_cards", "trl_training", "spaces_demo", "dataset_builder")


class BuildPyWithReleaseFolders(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # the package finds the repository's folders itself
            return
        target = Path(self.build_lib) / "roboreward" / "_data"
        for name in SHIPPED:
            if (ROOT / name).is_dir():
                shutil.copytree(
                    ROOT / name,
                    target / name,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"),
                    dirs_exist_ok=True,
                )


setup(cmdclass={"build_py": BuildPyWithReleaseFolders})
