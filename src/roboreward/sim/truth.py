"""The simulator's truth at work: the rewards sidecar its LeRobot datasets carry, and programmatic
counterfactuals (a relabel stage whose levels are exact).

Every simulated LeRobot dataset holds its truth twice: ``sim_truth.jsonl`` (everything the simulator
knows of each episode) and ``meta/episode_rewards.jsonl`` (`roboreward.sources.lerobot.layout.
REWARDS_PATH`: each episode's true score and progress), which `LeRobotSource` reads, so that
``roboreward build --lerobot`` labels a simulated failure with its true reward, not OXE's 5.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from roboreward.sources.lerobot.layout import write_episode_rewards

__all__ = ["TruthCounterfactuals", "write_truth_rewards"]


def write_truth_rewards(root: str | os.PathLike[str], truth: Sequence[dict[str, Any]]) -> Path:
    """Write the rewards sidecar of a simulated LeRobot dataset from its truth records.

    Args:
        root: the dataset folder.
        truth: one record per episode, with ``episode_id`` (the episode index), ``score`` (1..5)
            and ``progress`` (in [0, 1]), as the writers put in ``sim_truth.jsonl``.
    """
    rows = [(int(t["episode_id"]), int(t["score"]), float(t["progress"])) for t in truth]
    return write_episode_rewards(Path(root), sorted(rows))


class TruthCounterfactuals:
    """An ``augment`` hook that adds counterfactual rows whose levels are known exactly.

    For each episode found in the ``sim_truth.jsonl`` files (matched by source and episode id), it
    adds at most ``per_level`` rows per rubric level 1..4 from the episode's counterfactual tasks,
    evaluated on its simulated final state: the same video, another instruction, the true score.
    This is what a perfect relabeler would produce, and a yardstick for a model-based one.
    """

    def __init__(self, truth_files: Sequence[str | os.PathLike[str]], per_level: int = 1):
        self.truth: dict[tuple[str, str], dict[str, Any]] = {}
        for path in truth_files:
            for line in Path(path).read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                self.truth[(record["source"], record["episode_id"])] = record
        self.per_level = per_level

    def rows(self, episode: Any) -> list[Any]:
        """The counterfactual rows of one episode (none when its truth is unknown or it is derived).

        Args:
            episode: an `Episode` read from the simulated dataset.
        """
        record = self.truth.get((episode.source, episode.episode_id))
        if record is None or episode.augmentation not in ("original", "rewrite"):
            return []
        out, taken = [], dict.fromkeys(range(1, 5), 0)
        for cf in sorted(record["counterfactuals"], key=lambda c: c["task"]):
            if cf["score"] < 5 and taken[cf["score"]] < self.per_level:
                taken[cf["score"]] += 1
                provenance = {
                    **episode.provenance,
                    "counterfactual": {"level": cf["score"], "labeller": "sim-truth"},
                }
                out.append(
                    episode.replace(
                        task=cf["task"],
                        reward=cf["score"],
                        progress=cf["progress"],
                        augmentation="counterfactual",
                        provenance=provenance,
                    )
                )
        return out

    def __call__(self, episodes: Sequence[Any], work_dir: Any) -> tuple[list[Any], list[Any], dict[str, Any]]:
        added = [row for ep in episodes for row in self.rows(ep)]
        levels = {str(k): sum(1 for r in added if r.reward == k) for k in range(1, 5)}
        return (
            [*episodes, *added],
            [],
            {
                "sim_truth": {
                    "matched": sum(1 for e in episodes if (e.source, e.episode_id) in self.truth),
                    "added": len(added),
                    "by_level": levels,
                }
            },
        )
