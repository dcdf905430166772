"""`roboreward build` as datatrove tasks: the same folder, byte for byte, as the in-process build.

The build splits where its work is. This process reads the sources and samples them (cheap: the
sample never depends on the number of tasks) and writes the plan; each of N tasks then takes a
contiguous share of the sampled episodes (`roboreward.dataset.executors.share`), relabels it
with the recipe's stages (its model calls go through the per-call cache in ``OUT/.build/``, which
every task shares, so a rerun task asks nothing it asked before) and encodes its videos into the
encoded-video cache, then writes its shard file ``shards/task-NNNNN.json`` (its rows, the relabel
report of its share). The merge, once every task finished, reads the shards in task order (which
is the episodes' order), splits the rows as the in-process build does and exports them with
`roboreward.dataset.builder.export`: every video is a cache hit by then, and the Parquet shards,
the card and ``build_report.json`` (every skip, the sources' and the encoder's) are those of
the in-process build.

Work files, under ``OUT/.build/datatrove/build-<plan key>/``: ``plan.json`` and, per number of tasks
N, ``N-tasks/`` with ``shards/`` and datatrove's ``tasks/`` and ``merge/`` logging folders
(``completions/`` marks finished tasks). The plan key is a hash of the plan, so changed sources or
settings start afresh, while the same command run again runs only what did not finish.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roboreward import video
from roboreward.dataset import builder
from roboreward.dataset.builder import BuildConfig
from roboreward.dataset.executors import ExecutorConfig, Submitted, require_datatrove, run_tasks, share
from roboreward.dataset.folder import BUILD_REPORT, DatasetFolder, check_output_folder
from roboreward.dataset.lock import check_unlocked, output_lock
from roboreward.dataset.splits import assign_splits
from roboreward.episode import Episode, Skip
from roboreward.relabel import augment_from_config
from roboreward.relabel.relabeler import merge_reports

__all__ = ["BuildMerge", "BuildTask", "build_distributed", "plan_build", "run_dir"]

PLAN = "plan.json"


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def plan_build(config: BuildConfig) -> Path:
    """Read and sample the sources as `roboreward.dataset.builder.build` does and write the plan the
    tasks share; returns the job's work folder (``OUT/.build/datatrove/build-<key>``).

    Raises as the in-process build does for an unusable source, and writes the same report before
    refusing a build with no usable episode.

    Args:
        config: the build's sources and settings.
    """
    started = time.time()
    oxe, others = builder.open_sources(config)
    episodes, skips = builder.collect(config, oxe, others)
    units: dict[str, Any] = {}
    if config.lerobot:
        units["lerobot_rewards"] = builder.reward_sources(config, oxe)
    if config.roboarena:
        units["roboarena_progress_units"] = builder.progress_units(config, others)
    if not episodes:
        builder.refuse_empty_build(config, skips, started, units)
    plan = {
        "config": dataclasses.asdict(config),
        "episodes": [ep.to_dict() for ep in episodes],
        "skips": [s.as_dict() for s in skips],
        "units": units,
    }
    key = hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()[:16]
    work = DatasetFolder(config.out).build_dir / "datatrove" / f"build-{key}"
    if not (work / PLAN).is_file():
        _write_json(work / PLAN, {**plan, "started": started})
    return work


def _read_plan(work: Path) -> tuple[BuildConfig, dict[str, Any]]:
    plan = json.loads((Path(work) / PLAN).read_text(encoding="utf-8"))
    return BuildConfig(**plan["config"]), plan


def run_dir(work: str | Path, tasks: int) -> Path:
    """Where a run of ``tasks`` tasks keeps its shards and datatrove's logs (``WORK/N-tasks``): a share
    depends on the number of tasks, so a run with another number never takes these for its own."""
    return Path(work) / f"{tasks}-tasks"


def _shard_path(work: str | Path, rank: int, tasks: int) -> Path:
    return run_dir(work, tasks) / "shards" / f"task-{rank:05d}.json"


@dataclass
class BuildTask:
    """A task of a distributed build: relabel and encode its share; write ``shards/task-NNNNN.json``.

    Args:
        work: the job's work folder (`plan_build`).
    """

    work: str

    def __call__(self, data: Any, rank: int = 0, world_size: int = 1) -> None:
        self.run(rank, world_size)

    def run(self, rank: int, world_size: int) -> None:
        """Do task ``rank`` of ``world_size``."""
        config, plan = _read_plan(Path(self.work))
        mine = share(len(plan["episodes"]), rank, world_size)
        episodes = [Episode.from_dict(plan["episodes"][i]) for i in mine]
        folder = DatasetFolder(config.out)
        folder.build_dir.mkdir(parents=True, exist_ok=True)
        rows, skips, section = episodes, [], None
        if config.relabel:
            relabeler = augment_from_config(config.relabel, progress=False)
            rows, skips, extra = relabeler(episodes, folder.build_dir)
            section = extra["relabel"]
        encoding = config.encoding()
        for row in rows:  # the merge's export finds them in the cache; it reports the unreadable ones
            try:
                builder.encode_episode_video(row.to_dict(), str(folder.build_dir), encoding)
            except (video.VideoDecodeError, ValueError):
                continue
        shard = {
            "rank": rank,
            "rows": [row.to_dict() for row in rows],
            "skips": [s.as_dict() for s in skips],
            "relabel": section,
        }
        _write_json(_shard_path(self.work, rank, world_size), shard)


@dataclass
class BuildMerge:
    """The merge of a distributed build: the tasks' rows, split and exported into ``OUT``.

    Args:
        work: the job's work folder (`plan_build`).
        tasks: how many tasks wrote shards.
    """

    work: str
    tasks: int

    def __call__(self, data: Any, rank: int = 0, world_size: int = 1) -> None:
        self.run()

    def run(self) -> dict[str, Any]:
        """Merge and export; returns the build report."""
        config, plan = _read_plan(Path(self.work))
        shards = []
        for rank in range(self.tasks):
            path = _shard_path(self.work, rank, self.tasks)
            if not path.is_file():
                raise ValueError(f"task {rank} wrote no shard ({path}): rerun the build to finish it")
            shards.append(json.loads(path.read_text(encoding="utf-8")))
        rows: list[Episode] = []
        seen: set[str] = set()
        for shard in shards:
            for row in map(Episode.from_dict, shard["rows"]):
                if row.id not in seen:  # as one relabeler over every episode writes a derived row once
                    seen.add(row.id)
                    rows.append(row)
        skips = [Skip(**s) for s in plan["skips"]] + [Skip(**s) for sh in shards for s in sh["skips"]]
        extra = dict(plan["units"])
        sections = [sh["relabel"] for sh in shards if sh["relabel"] is not None]
        if sections:
            extra["relabel"] = merge_reports(sections, rows)
        splits = assign_splits(rows, config.split_ratios, config.seed)
        return builder.export(splits, config, skips, started=plan["started"], extra_report=extra)


def build_distributed(config: BuildConfig, executor: ExecutorConfig) -> dict[str, Any]:
    """Build ``config`` as ``executor.tasks`` datatrove tasks and a merge (see the module docstring).

    Returns the build report once the merge is done (local, or Slurm with ``slurm_wait``); for a
    Slurm submission that does not wait, ``{"submitted": {...}, "out": ...}`` with the job ids.

    Args:
        config: the build's sources and settings (``config.relabel`` runs in every task).
        executor: ``local`` or ``slurm`` and their settings.
    """
    require_datatrove()
    if config.relabel:
        augment_from_config(config.relabel)  # a bad relabel setting fails before any source is read
    check_output_folder(config.out)
    check_unlocked(config.out)
    with output_lock(config.out):  # held locally to the end; the Slurm merge job takes it itself
        work = plan_build(config)
        task, merge = BuildTask(str(work)), BuildMerge(str(work), executor.tasks)
        submitted: Submitted | None = None
        if executor.executor == "local":
            run_tasks("build", executor, run_dir(work, executor.tasks), task, merge)
    if executor.executor == "slurm":
        submitted = run_tasks("build", executor, run_dir(work, executor.tasks), task, merge)
    if submitted is not None and not executor.slurm_wait:
        return {"submitted": submitted.to_dict(), "out": str(config.out)}
    report = DatasetFolder(config.out).read_report(BUILD_REPORT)
    if report is None:
        raise RuntimeError(f"the merge wrote no {BUILD_REPORT} in {config.out}: see the logs in {work}")
    return report
