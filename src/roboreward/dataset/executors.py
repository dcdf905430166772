"""Where a data job runs: in this process (the default), or as N tasks on datatrove's executors.

`roboreward build` and `roboreward annotate` split their work into a task step (run once per task
on its share) and a merge step (run once, after every task). `run_tasks` hands the two to datatrove
(``pip install "roboreward[datatrove]"``): its `LocalPipelineExecutor` runs the tasks ``workers`` at a
time on this machine, its `SlurmPipelineExecutor` submits them as a job array and the merge as a
job that depends on it. datatrove marks each finished task in ``LOGS/completions/``, so running the
same command again runs only the tasks that did not finish (and the merge).

    >>> config = ExecutorConfig(executor="local", tasks=4, workers=2)
    >>> config.distributed
    True
    >>> sbatch_lines(["constraint=h100", "account=robots", "exclusive"])
    {'constraint': 'h100', 'account': 'robots', 'exclusive': ''}
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from roboreward.config import check_fields, check_range
from roboreward.extras import require

__all__ = [
    "EXECUTORS",
    "ExecutorConfig",
    "Submitted",
    "require_datatrove",
    "run_tasks",
    "sbatch_lines",
    "share",
    "wait_for_job",
]

EXECUTORS = ("inprocess", "local", "slurm")


def sbatch_lines(lines: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` (or a bare ``KEY``) extra sbatch settings -> datatrove's ``sbatch_args``.

    Args:
        lines: e.g. ``["account=robots", "constraint=h100", "exclusive"]`` (a leading ``--`` or
            ``#SBATCH --`` is dropped).
    """
    out: dict[str, str] = {}
    for line in lines:
        text = line.strip().removeprefix("#SBATCH").strip().removeprefix("--")
        key, _, value = text.partition("=")
        if not key.strip() or " " in key.strip():
            raise ValueError(f"slurm_sbatch wants KEY=VALUE (an sbatch option), got {line!r}")
        out[key.strip()] = value.strip()
    return out


@dataclass
class ExecutorConfig:
    """How a build or an annotation runs: in this process, or as datatrove tasks (local or Slurm)."""

    executor: Literal["inprocess", "local", "slurm"] = field(
        default="inprocess",
        metadata={
            "help": "inprocess (the default, one process), local (datatrove's LocalPipelineExecutor: "
            "--tasks tasks, --workers at a time) or slurm (a datatrove job array and a dependent merge "
            "job); local and slurm need the datatrove extra"
        },
    )
    tasks: int = field(default=1, metadata={"help": "tasks the episodes are split into (local, slurm)"})
    workers: int = field(
        default=-1,
        metadata={"help": "tasks running at once (-1: all; slurm: the job array's %%throttle)"},
    )
    slurm_partition: str | None = field(default=None, metadata={"help": "Slurm partition (slurm)"})
    slurm_time: str = field(default="04:00:00", metadata={"help": "Slurm time limit per task (slurm)"})
    slurm_cpus_per_task: int = field(default=4, metadata={"help": "CPUs per Slurm task (slurm)"})
    slurm_mem_per_cpu_gb: int = field(default=4, metadata={"help": "memory per CPU in GiB (slurm)"})
    slurm_gpus_per_task: int = field(default=0, metadata={"help": "GPUs per Slurm task (slurm)"})
    slurm_job_name: str = field(
        default="roboreward",
        metadata={"help": "job-name prefix: PREFIX-build, PREFIX-build-merge, ... (slurm)"},
    )
    slurm_qos: str | None = field(default=None, metadata={"help": "Slurm QOS (None: the cluster's)"})
    slurm_sbatch: list[str] = field(
        default_factory=list,
        metadata={
            "help": "an extra sbatch setting KEY=VALUE, e.g. account=robots (repeatable)",
            "repeat": True,
            "metavar": "KEY=VALUE",
        },
    )
    slurm_env_command: str | None = field(
        default=None,
        metadata={"help": "a command each job runs first, e.g. 'source .venv/bin/activate' (slurm)"},
    )
    slurm_wait: bool = field(
        default=False,
        metadata={"help": "wait (polling squeue) until the merge job has left the queue (slurm)"},
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if self.executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {self.executor!r}")
        check_range(self, "tasks", low=1)
        if self.workers == 0 or self.workers < -1:
            raise ValueError(f"workers must be -1 (all at once) or at least 1, got {self.workers}")
        for name in ("slurm_cpus_per_task", "slurm_mem_per_cpu_gb"):
            check_range(self, name, low=1)
        check_range(self, "slurm_gpus_per_task", low=0)
        if not self.slurm_job_name.strip():
            raise ValueError("slurm_job_name is empty")
        sbatch_lines(self.slurm_sbatch)  # a malformed line fails now, not at submission
        if self.executor == "slurm" and not self.slurm_partition:
            raise ValueError("--executor slurm needs --slurm-partition (or slurm_partition in the recipe)")

    @property
    def distributed(self) -> bool:
        """True for the datatrove executors."""
        return self.executor != "inprocess"

    def describe(self) -> dict[str, Any]:
        """The settings a report records (the Slurm ones only for Slurm)."""
        shown = {"executor": self.executor, "tasks": self.tasks, "workers": self.workers}
        if self.executor == "slurm":
            shown.update({k: v for k, v in vars(self).items() if k.startswith("slurm_")})
        return shown


def share(count: int, rank: int, world_size: int) -> range:
    """The positions task ``rank`` of ``world_size`` takes of ``count`` items: a contiguous run, the
    runs in rank order covering ``range(count)`` (so concatenating the tasks' outputs in rank order
    keeps the items' order).

    >>> [list(share(10, r, 4)) for r in range(4)]
    [[0, 1], [2, 3, 4], [5, 6], [7, 8, 9]]

    Args:
        count: how many items there are.
        rank: the task, from 0.
        world_size: how many tasks there are.
    """
    return range(rank * count // world_size, (rank + 1) * count // world_size)


@dataclass(frozen=True)
class Submitted:
    """What a Slurm submission left running: the job ids and where the tasks log."""

    tasks_job: str
    merge_job: str
    logs: str

    def to_dict(self) -> dict[str, str]:
        return {"tasks_job": self.tasks_job, "merge_job": self.merge_job, "logs": self.logs}


def require_datatrove() -> None:
    """Raise `roboreward.extras.MissingExtraError` naming the ``[datatrove]`` extra when it is missing
    (called before any work, so a missing extra fails at once)."""
    require("datatrove", "datatrove")


def _datatrove() -> Any:
    require_datatrove()
    from datatrove.executor import LocalPipelineExecutor, SlurmPipelineExecutor

    return LocalPipelineExecutor, SlurmPipelineExecutor


def run_tasks(
    name: str,
    config: ExecutorConfig,
    logs: str | os.PathLike[str],
    task: Callable[[Any, int, int], Any],
    merge: Callable[[Any, int, int], Any],
) -> Submitted | None:
    """Run ``task`` as ``config.tasks`` datatrove tasks, then ``merge`` once after all of them.

    Locally this returns when the merge is done (a failed task raises, and the merge does not run);
    on Slurm it returns the submitted job ids at once (or, with ``slurm_wait``, once the merge job
    has left the queue). Tasks already completed under ``logs`` are not run again.

    Args:
        name: what runs (``build``, ``annotate``): the Slurm job names are ``PREFIX-NAME`` and
            ``PREFIX-NAME-merge``.
        config: the executor and its settings (``config.distributed`` must be true).
        logs: datatrove's logging folder for this job (completions, stats, logs, the sbatch script).
        task: a picklable ``step(data, rank, world_size)`` run once per task.
        merge: a picklable ``step(data, rank, world_size)`` run once after every task finished.
    """
    local, slurm = _datatrove()
    logs = Path(logs)
    if config.executor == "local":
        tasks = local([task], tasks=config.tasks, workers=config.workers, logging_dir=str(logs / "tasks"))
        local([merge], tasks=1, workers=1, logging_dir=str(logs / "merge"), depends=tasks).run()
        return None
    if config.executor != "slurm":
        raise ValueError(f"run_tasks runs the local or slurm executor, not {config.executor!r}")
    common: dict[str, Any] = {
        "time": config.slurm_time,
        "partition": config.slurm_partition,
        "mem_per_cpu_gb": config.slurm_mem_per_cpu_gb,
        "qos": config.slurm_qos or "",
        "env_command": config.slurm_env_command,
        "sbatch_args": sbatch_lines(config.slurm_sbatch),
    }
    tasks = slurm(
        [task],
        tasks=config.tasks,
        workers=config.workers,
        cpus_per_task=config.slurm_cpus_per_task,
        gpus_per_task=config.slurm_gpus_per_task,
        job_name=f"{config.slurm_job_name}-{name}",
        logging_dir=str(logs / "tasks"),
        slurm_logs_folder=str(logs / "slurm_logs"),
        **common,
    )
    merge_job = slurm(
        [merge],
        tasks=1,
        cpus_per_task=config.slurm_cpus_per_task,
        job_name=f"{config.slurm_job_name}-{name}-merge",
        logging_dir=str(logs / "merge"),
        slurm_logs_folder=str(logs / "slurm_logs"),
        depends=tasks,
        **common,
    )
    merge_job.run()
    submitted = Submitted(str(tasks.job_id), str(merge_job.job_id), str(logs))
    if config.slurm_wait:
        wait_for_job(submitted.merge_job)
    return submitted


def wait_for_job(job_id: str, poll_seconds: float = 10.0) -> None:
    """Return once Slurm's queue no longer holds ``job_id`` (``squeue -h -j ID`` prints nothing).

    Args:
        job_id: the job to wait for (``-1``: nothing was submitted, all done before).
        poll_seconds: how often to ask.
    """
    if job_id in ("-1", "None"):
        return
    while True:
        listed = subprocess.run(
            ["squeue", "-h", "-j", job_id, "-o", "%T %r"], capture_output=True, text=True, check=False
        )
        state = listed.stdout.strip()
        if not state:  # gone from the queue (finished; Slurm may also answer "Invalid job id")
            return
        if "DependencyNeverSatisfied" in state:
            raise RuntimeError(
                f"Slurm job {job_id} will never start: a task it depends on failed (see its logs); "
                "scancel it and run the same command again to rerun the unfinished tasks"
            )
        time.sleep(poll_seconds)
