"""Data-parallel RoboRewardBench: one process per device under ``accelerate launch``.

    # 8 GPUs: each process holds a copy of every local checkpoint and scores 1/8 of the examples
    accelerate launch --num_processes 8 -m roboreward.cli bench --dataset ./roboreward \\
        --model runs/qwen2_5_vl_3b --model baseline:constant-3 --out bench_out

    # CPU only (tests, a laptop): --multi_gpu is what makes accelerate start torchrun's processes;
    # with no accelerator they meet over gloo
    accelerate launch --multi_gpu --num_processes 2 --main_process_port 0 -m roboreward.cli bench ...

For each model, every process reads the same prediction cache and so computes the same list of
examples still to score; that list is dealt out in blocks of the model's batch size (block k to
process k mod N), so each example is scored exactly once and each batch holds the examples it
would hold in one process (the same numbers, not only the same scores). A process appends its
rows to its own part file, ``OUT/predictions/<model>.part-<rank>-of-<N>.jsonl``, as it goes; once
all are done, the main process merges the parts into ``<model>.jsonl`` and deletes them. Part files
a killed run left behind are merged before anything is scored (by a data-parallel run or a single
process alike), so the work they hold is not done again. Only the main process computes metrics
and writes ``results.json``, the leaderboard and the plots (``--voc`` curves too, on its device);
`roboreward.bench.run.run_bench` returns None in the other processes.

Every process must see the same ``OUT`` (one machine, or a shared file system).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from roboreward.environ import launcher_world_size

__all__ = [
    "DataParallel",
    "data_parallel",
    "merge_parts",
    "part_files",
    "part_path",
    "read_rows",
    "shard",
]

T = TypeVar("T")

#: How long a process waits for the others at a barrier: they may still be scoring their share.
BARRIER_TIMEOUT = timedelta(hours=2)


def shard(items: Sequence[T], rank: int, world_size: int, block: int = 1) -> list[T]:
    """Process ``rank``'s share of ``items``: blocks of ``block`` consecutive items dealt round robin.

    Over ranks ``0 .. world_size - 1`` the shares cover every item exactly once, and a share's
    blocks are the batches one process would make of ``items`` (when ``block`` is its batch size).

    Args:
        items: what is to be done, in the same order in every process.
        rank: this process's index, ``0 <= rank < world_size``.
        world_size: the number of processes.
        block: items per block (a local model's batch size; 1 for one request per item).

    >>> shard(list(range(7)), 1, 2, block=2)
    [2, 3, 6]
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not one of world size {world_size}'s processes")
    if block < 1:
        raise ValueError(f"block must be at least 1, got {block}")
    starts = range(rank * block, len(items), world_size * block)
    return [item for start in starts for item in items[start : start + block]]


def part_path(cache_path: Path, rank: int, world_size: int) -> Path:
    """The part file of ``cache_path`` (``<model>.jsonl``) that process ``rank`` of ``world_size`` writes.

    Args:
        cache_path: a model's prediction cache, ``OUT/predictions/<model>.jsonl``.
        rank: the writing process's index.
        world_size: the number of processes.

    >>> part_path(Path("predictions/tiny.jsonl"), 1, 4).name
    'tiny.part-1-of-4.jsonl'
    """
    return cache_path.with_name(f"{cache_path.stem}.part-{rank}-of-{world_size}.jsonl")


def part_files(cache_path: Path) -> list[Path]:
    """The part files of ``cache_path`` there are, from any number of processes, in a fixed order.

    Args:
        cache_path: a model's prediction cache, ``OUT/predictions/<model>.jsonl``.
    """
    pattern = re.compile(re.escape(cache_path.stem) + r"\.part-(\d+)-of-(\d+)\.jsonl")
    found = []
    if cache_path.parent.is_dir():
        for path in cache_path.parent.iterdir():
            match = pattern.fullmatch(path.name)
            if match:
                found.append(((int(match[2]), int(match[1])), path))
    return [path for _, path in sorted(found)]


def read_rows(path: Path) -> tuple[dict[str, dict[str, Any]], bool]:
    """The rows of a prediction file by id (a later row for an id wins), and whether every line was
    whole: a torn line (a process killed while writing it) is dropped. A missing file has no rows.

    Args:
        path: a ``.jsonl`` prediction cache or part file.
    """
    rows: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return rows, True
    clean = True
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
            rows[row["id"]] = row
        except (ValueError, KeyError, TypeError):
            clean = False
    return rows, clean


def merge_parts(cache_path: Path, order: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """Merge the part files of ``cache_path`` into it (one row per id) and delete them.

    The cache keeps its rows but those a part scored again (a part's row wins); the parts' rows
    follow, those whose id is in ``order`` first and in that order, so that a data-parallel run
    writes the file one process would. Torn lines are dropped; with no part files the cache is left
    as it is unless it has one, then it is written again without it. The cache is replaced in one
    step and the parts deleted only then: a merge that is killed is done again, to the same result.

    Args:
        cache_path: a model's prediction cache, ``OUT/predictions/<model>.jsonl``.
        order: ids in the order their rows should be written (the examples scored, in their order).

    Returns the rows the parts brought, by id (empty when there were no parts).
    """
    parts = part_files(cache_path)
    cached, clean = read_rows(cache_path)
    if not parts and clean:
        return {}
    new: dict[str, dict[str, Any]] = {}
    for part in parts:
        new.update(read_rows(part)[0])
    position = {row_id: i for i, row_id in enumerate(order)}
    ranked = sorted(new, key=lambda row_id: position.get(row_id, len(position)))  # stable: others last
    kept = [row for row_id, row in cached.items() if row_id not in new]
    rows = kept + [new[row_id] for row_id in ranked]
    tmp = cache_path.with_name(f".{cache_path.name}.tmp")
    tmp.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    os.replace(tmp, cache_path)
    for part in parts:
        part.unlink()
    return {row_id: new[row_id] for row_id in ranked}


@dataclass(frozen=True)
class DataParallel:
    """This process's place in a benchmark run: one process (``world_size`` 1), or one of several
    started by ``accelerate launch``.

    Args:
        rank: this process's index (0: the main process, which writes the results).
        world_size: the number of processes.
        state: accelerate's ``PartialState`` when there are several processes (barriers, device).
    """

    rank: int = 0
    world_size: int = 1
    state: Any = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def device(self) -> Any:
        """The device this process's local models go on: its accelerator under ``accelerate launch``;
        None (the default device) in one process and on CPU."""
        if self.state is None or self.state.device.type == "cpu":
            # accelerate's "cpu:0" is the default CPU, but a model loaded with device_map="cpu:0"
            # gives probabilities that differ in the 9th digit from one loaded on "cpu"
            return None
        return self.state.device

    def wait(self) -> None:
        """Wait until every process gets here."""
        if self.state is not None:
            self.state.wait_for_everyone()

    def share(self, todo: Sequence[T], block: int = 1) -> list[T]:
        """This process's share of ``todo`` (all of it in one process); see `shard`.

        Args:
            todo: the examples still to score, the same list in every process.
            block: the model's batch size.
        """
        return shard(todo, self.rank, self.world_size, block)

    def label(self, name: str) -> str:
        """A progress bar's label for ``name``: under ``accelerate launch`` it says the bar counts
        this process's share (only the main process shows one).

        Args:
            name: the model's name.

        >>> DataParallel(0, 2).label("tiny")
        'tiny (share 1 of 2)'
        """
        return name if self.world_size == 1 else f"{name} (share {self.rank + 1} of {self.world_size})"

    def writes_to(self, cache_path: Path) -> Path:
        """The file this process appends its predictions to: the cache itself in one process, its
        part file in several.

        Args:
            cache_path: a model's prediction cache, ``OUT/predictions/<model>.jsonl``.
        """
        return cache_path if self.world_size == 1 else part_path(cache_path, self.rank, self.world_size)

    def merge_leftovers(self, cache_path: Path) -> None:
        """Before a model is scored: the main process merges the part files a killed run left and
        drops a torn line from the cache, so that every process then reads the same clean cache
        (and none writes it).

        Args:
            cache_path: a model's prediction cache, ``OUT/predictions/<model>.jsonl``.
        """
        if self.is_main:
            merge_parts(cache_path)
        self.wait()

    def collect(
        self, cache_path: Path, rows: dict[str, dict[str, Any]], order: Sequence[str]
    ) -> dict[str, dict[str, Any]] | None:
        """After a model is scored: every process's rows, in the main process; None in the others.

        Args:
            cache_path: a model's prediction cache, ``OUT/predictions/<model>.jsonl``.
            rows: this process's rows (the cached ones and its own new ones).
            order: the ids that were to be scored, in order (the merged file's order).
        """
        if self.world_size == 1:
            return rows
        self.wait()
        if not self.is_main:
            return None
        return {**rows, **merge_parts(cache_path, order)}


def data_parallel() -> DataParallel:
    """Where this process stands: several processes when a launcher (``accelerate launch``,
    torchrun, MPI) says so, else one.

    With several, accelerate's ``PartialState`` is set up (the process group, the device); with no
    accelerator the processes meet over gloo on CPU.
    """
    if launcher_world_size() <= 1:
        return DataParallel()
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=not torch.accelerator.is_available(), timeout=BARRIER_TIMEOUT)
    return DataParallel(state.process_index, state.num_processes, state)
