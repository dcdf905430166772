"""The one owner of a built RoboReward folder's layout: names, rows, episodes, shards, split statistics
and reports (in the spirit of LeRobot's dataset metadata classes).

A folder written by `roboreward build` (or `roboreward relabel`, or `roboreward review export`) holds::

    README.md                             the dataset card (`roboreward.dataset.cards`)
    data/{split}-XXXXX-of-NNNNN.parquet   the rows of each split, videos embedded as bytes
    build_report.json                     settings, rows per split/source/reward, skipped entries
    relabel_report.json                   what the relabeling stages did (when they ran)
    verification_report.json              the human review's outcome (a verified folder)
    .build/                               work files (encoded-video cache, ...): never released

Every other module reaches these files through this one, so the layout is written down once.

    >>> folder = DatasetFolder("roboreward")
    >>> folder.shard_files("test")  # doctest: +SKIP
    [PosixPath('roboreward/data/test-00000-of-00001.parquet')]
    >>> shard_name("train", 0, 2)
    'train-00000-of-00002.parquet'
    >>> split_statistics([("oxe/a", 5), ("oxe/a", 2), ("roboarena", 5)])["by_source_and_reward"]
    {'oxe/a': {'2': 1, '5': 1}, 'roboarena': {'5': 1}}
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roboreward.dataset.fingerprint import content_fingerprint
from roboreward.episode import Episode

if TYPE_CHECKING:  # imported where used: the layout's names are wanted by light modules (hub, cli)
    import datasets
    import pyarrow as pa

__all__ = [
    "BUILD_DIR",
    "BUILD_REPORT",
    "CARD",
    "DATA_DIR",
    "PUBLISHED",
    "RELABEL_REPORT",
    "RELEASE_FILES",
    "SPLITS",
    "VERIFICATION_REPORT",
    "DatasetFolder",
    "RowGroup",
    "check_output_folder",
    "episode_from_row",
    "episode_row",
    "features",
    "read_json_object",
    "shard_glob",
    "shard_name",
    "split_statistics",
]

SPLITS = ("train", "validation", "test")
DATA_DIR = "data"
BUILD_DIR = ".build"
CARD = "README.md"
BUILD_REPORT = "build_report.json"
RELABEL_REPORT = "relabel_report.json"
VERIFICATION_REPORT = "verification_report.json"
#: What a build writes for readers (everything else lives in the work folder, ``.build/``): a rebuild
#: writes these beside, in ``.build/next/``, and swaps them in when complete (`DatasetFolder.publish`).
PUBLISHED = (DATA_DIR, CARD, BUILD_REPORT, RELABEL_REPORT)
#: The journal of a swap in progress: a run killed during it is completed by the next one.
_SWAP_JOURNAL = f"{BUILD_DIR}/publish.json"

#: What a dataset release uploads (patterns relative to the folder; `roboreward.apps.hub` applies them).
RELEASE_FILES = (
    CARD,
    f"{DATA_DIR}/*.parquet",
    f"{DATA_DIR}/*/*.parquet",
    BUILD_REPORT,
    RELABEL_REPORT,
    VERIFICATION_REPORT,
    ".gitattributes",
)


@functools.cache
def features() -> datasets.Features:
    """The exported schema (`roboreward.dataset.builder.FEATURES`). `video`, `task` and `reward` are the
    public RoboReward release's columns.

    ``video`` is declared ``Video(decode=False)``: a row read the plain way
    (``load_dataset(folder)["test"][0]["video"]``) is ``{"bytes", "path"}``, which `roboreward.video`
    reads, with no torchcodec (datasets' own video decoder) installed. ``cast_column("video",
    datasets.Video())`` gives datasets' decoder where one is installed.
    """
    import datasets

    return datasets.Features(
        {
            "id": datasets.Value("string"),
            "video": datasets.Video(decode=False),
            "task": datasets.Value("string"),
            "reward": datasets.Value("int8"),
            "progress": datasets.Value("float32"),
            "source": datasets.Value("string"),
            "episode_id": datasets.Value("string"),
            "camera": datasets.Value("string"),
            "original_task": datasets.Value("string"),
            "augmentation": datasets.Value("string"),
            "group": datasets.Value("string"),
            "provenance": datasets.Value("string"),
        }
    )


def shard_glob(split: str) -> str:
    """The pattern of a split's shards, relative to the folder (what the card's ``data_files`` say).

    Args:
        split: the split's name.
    """
    return f"{DATA_DIR}/{split}-*.parquet"


def shard_name(split: str, index: int, count: int) -> str:
    """The file name of shard ``index`` of ``count`` of a split.

    Args:
        split: the split's name.
        index: the shard's position, from 0.
        count: how many shards the split has.
    """
    return f"{split}-{index:05d}-of-{count:05d}.parquet"


def split_statistics(rows: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """A split's section of ``build_report.json``: rows in total, per source, per reward, per both.

    Args:
        rows: ``(source, reward)`` of each row.
    """
    sources: Counter[str] = Counter()
    rewards: Counter[Any] = Counter()
    by_source_reward: dict[str, Counter[str]] = defaultdict(Counter)
    total = 0
    for source, reward in rows:
        total += 1
        sources[source] += 1
        rewards[reward] += 1
        by_source_reward[source][str(reward)] += 1
    return {
        "rows": total,
        "by_source": dict(sorted(sources.items())),
        "by_reward": {str(k): v for k, v in sorted(rewards.items())},
        "by_source_and_reward": {s: dict(sorted(c.items())) for s, c in sorted(by_source_reward.items())},
    }


def episode_row(ep: Episode, video: dict[str, Any]) -> dict[str, Any]:
    """The exported row of an episode (the `features` columns).

    Args:
        ep: the episode.
        video: the row's ``video`` value: ``{"bytes": ..., "path": name}``.
    """
    return {
        "id": ep.id,
        "video": video,
        "task": ep.task,
        "reward": ep.reward,
        "progress": ep.progress,
        "source": ep.source,
        "episode_id": ep.episode_id,
        "camera": ep.camera,
        "original_task": ep.original_task,
        "augmentation": ep.augmentation,
        "group": ep.group,
        "provenance": json.dumps(ep.provenance, sort_keys=True),
    }


def episode_from_row(row: dict[str, Any], where: str, video_path: str | os.PathLike[str]) -> Episode:
    """The Episode an exported row came from, its video now at ``video_path`` (the inverse of
    `episode_row`, up to the video's time range, which an exported video no longer has).

    Args:
        row: the row, as a dict of its columns.
        where: where the row is, for error messages (``train-00000-of-00001.parquet row 3``).
        video_path: the file the row's video bytes were written to.
    """
    provenance = row.get("provenance")
    try:
        provenance = json.loads(provenance) if provenance else {}
    except ValueError:
        raise ValueError(f"{where}: provenance is not JSON") from None
    try:
        return Episode(
            video=str(video_path),
            task=row.get("task"),
            reward=int(row["reward"]) if row.get("reward") is not None else None,
            source=row.get("source") or "roboreward",
            episode_id=row.get("episode_id") or where,
            progress=row.get("progress"),
            camera=row.get("camera"),
            original_task=row.get("original_task"),
            augmentation=row.get("augmentation") or "original",
            group=row.get("group"),
            provenance=provenance if isinstance(provenance, dict) else {},
        )
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def read_json_object(path: str | os.PathLike[str], what: str) -> dict[str, Any] | None:
    """A JSON file holding an object (a report, a summary); None when the file is missing.

    Args:
        path: the file.
        what: what the file is, for error messages (``build report``).

    Raises:
        ValueError: the file is not readable JSON, or not a JSON object.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{what} {path} is not readable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{what} {path} must hold a JSON object")
    return data


def check_output_folder(out: str | os.PathLike[str]) -> None:
    """Refuse to build into a folder that holds something else: it must not exist, be empty, or be a
    dataset folder this toolkit wrote (it has a ``.build/`` work folder or a build report).

    Args:
        out: the output folder asked for.

    Raises ValueError naming the folder and what is in it.
    """
    root = Path(out)
    if not root.exists():
        return
    if not root.is_dir():
        raise ValueError(f"--out {root} is a file, not a folder")
    if (root / BUILD_DIR).is_dir() or (root / BUILD_REPORT).is_file():
        return
    entries = sorted(p.name for p in root.iterdir())
    if entries:
        shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
        raise ValueError(
            f"--out {root} is not empty ({shown}) and is not a dataset folder written by roboreward: "
            "give a new or empty folder, so that nothing in it is overwritten"
        )


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where the system cannot."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    done = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return done == 0


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@dataclass(frozen=True)
class RowGroup:
    """One Parquet row group of a split: where it is and its rows (the columns asked for)."""

    path: Path
    index: int
    table: pa.Table


class DatasetFolder:
    """A built dataset folder: its files by name, its rows and episodes, its reports, its shards.

    Args:
        root: the folder (it need not exist yet when writing one).
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"DatasetFolder({str(self.root)!r})"

    @property
    def data_dir(self) -> Path:
        return self.root / DATA_DIR

    @property
    def build_dir(self) -> Path:
        """The work folder (encoded-video cache, relabel cache, ...), never released."""
        return self.root / BUILD_DIR

    @property
    def card_path(self) -> Path:
        return self.root / CARD

    @property
    def staging(self) -> DatasetFolder:
        """Where a rebuild writes the published files before `publish` swaps them in."""
        return DatasetFolder(self.build_dir / "next")

    def publish(self, staging: DatasetFolder) -> None:
        """Swap the published files (`PUBLISHED`) of ``staging`` in, replacing this folder's.

        ``data/`` is exchanged with the staged one in one step (renameat2 on Linux; elsewhere two
        renames), each file replaced in one step; a journal records the swap first, so a run killed
        during it is completed by the next one (`complete_publish`), and a reader never sees a
        half-written split. What a name was before goes to ``.build/prev/`` and is removed after.

        Args:
            staging: the folder the new files were written to (`staging`).
        """
        new = [name for name in PUBLISHED if (staging.root / name).exists()]
        retire = [name for name in PUBLISHED if name not in new and (self.root / name).exists()]
        self.build_dir.mkdir(parents=True, exist_ok=True)
        plan = {"staging": staging.root.relative_to(self.root).as_posix(), "new": new, "retire": retire}
        _write_atomically(self.root / _SWAP_JOURNAL, json.dumps(plan).encode())
        self.complete_publish()

    def complete_publish(self) -> None:
        """Finish a swap a killed run started (see `publish`); nothing when there is none."""
        journal = self.root / _SWAP_JOURNAL
        if not journal.is_file():
            return
        plan = json.loads(journal.read_text(encoding="utf-8"))
        staging, prev = self.root / plan["staging"], self.build_dir / "prev"
        prev.mkdir(parents=True, exist_ok=True)
        for name in plan["new"]:
            new, target = staging / name, self.root / name
            if not new.exists():  # moved in already, by the run that was killed
                continue
            if target.is_dir() and new.is_dir() and _exchange(new, target):
                os.replace(new, prev / name)  # the old data/, now at the staged path
                continue
            if target.exists():
                _remove(prev / name)
                os.replace(target, prev / name)
            os.replace(new, target)
        for name in plan["retire"]:  # published before, not by this build (a relabel report)
            if (self.root / name).exists():
                _remove(prev / name)
                os.replace(self.root / name, prev / name)
        journal.unlink()
        shutil.rmtree(prev, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)

    # -----------------------------------------------------------------------------------------
    # Reading

    def require_data(self) -> None:
        """Raise ValueError (one line) unless the folder has a ``data/`` folder."""
        if not self.data_dir.is_dir():
            raise ValueError(f"{self.root} has no data/ folder: give a folder written by `roboreward build`")

    def shard_files(self, split: str, required: bool = False) -> list[Path]:
        """A split's shards, in order.

        Args:
            split: the split's name.
            required: raise ValueError when the split has no shard (else return ``[]``).
        """
        files = sorted(self.data_dir.glob(f"{split}-*.parquet"))
        if required and not files:
            raise ValueError(f"{self.root} has no {split} split: no {shard_glob(split)} (build it first)")
        return files

    def content_fingerprint(self) -> str:
        """The fingerprint of every shard's name and bytes
        (`roboreward.dataset.fingerprint.content_fingerprint`):
        the card's config carries it, so `datasets` reads a folder rebuilt in place afresh."""
        return content_fingerprint(self.root, self.data_dir.glob("*-*.parquet"))

    def splits(self) -> list[str]:
        """The splits that have shards: `SPLITS` in their order, then any other, sorted."""
        names = {p.name.split("-", 1)[0] for p in self.data_dir.glob("*-*.parquet")}
        return [s for s in SPLITS if s in names] + sorted(names - set(SPLITS))

    def schema(self, split: str) -> pa.Schema:
        """The Arrow schema of a split's first shard (`datasets` features in its metadata).

        Args:
            split: the split's name (it must have a shard).
        """
        import pyarrow.parquet as pq

        return pq.read_schema(self.shard_files(split, required=True)[0])

    def iter_tables(
        self, split: str, columns: Sequence[str] | None = None
    ) -> Iterator[tuple[Path, pa.Table]]:
        """Each shard of a split as one table.

        Args:
            split: the split's name.
            columns: the columns to read (default all).
        """
        import pyarrow.parquet as pq

        for path in self.shard_files(split):
            yield path, pq.read_table(path, columns=list(columns) if columns is not None else None)

    def iter_row_groups(self, split: str, columns: Sequence[str] | None = None) -> Iterator[RowGroup]:
        """Each Parquet row group of a split, in order (a row group is the unit a reader seeks to).

        Args:
            split: the split's name.
            columns: the columns to read (default all).
        """
        import pyarrow.parquet as pq

        for path in self.shard_files(split):
            parquet = pq.ParquetFile(path)
            for index in range(parquet.num_row_groups):
                yield RowGroup(path, index, parquet.read_row_group(index, columns=columns))

    def iter_rows(
        self, split: str, columns: Sequence[str] | None = None, batch_size: int = 64
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(where, row)`` for each row of a split, ``where`` naming it (``FILE row N``).

        Args:
            split: the split's name.
            columns: the columns to read (default all).
            batch_size: rows read at once (rows carry video bytes: keep it small).
        """
        import pyarrow.parquet as pq

        for path in self.shard_files(split):
            index = 0
            for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=columns):
                for row in batch.to_pylist():
                    yield f"{path.name} row {index}", row
                    index += 1

    def read_episodes(self, videos_dir: str | os.PathLike[str]) -> dict[str, list[Episode]]:
        """Split -> the Episodes of the folder's rows, each row's video bytes written once to
        ``videos_dir/<sha256>.mp4`` (rows sharing a video share the file).

        Args:
            videos_dir: where the videos are written (created if needed).
        """
        self.require_data()
        videos = Path(videos_dir)
        videos.mkdir(parents=True, exist_ok=True)
        out: dict[str, list[Episode]] = {}
        for split in SPLITS:
            episodes = []
            for where, row in self.iter_rows(split):
                data = row["video"].get("bytes") if isinstance(row.get("video"), dict) else None
                if not data:
                    raise ValueError(f"{where} has no embedded video bytes")
                path = videos / f"{hashlib.sha256(data).hexdigest()[:32]}.mp4"
                if not path.exists():
                    _write_atomically(path, data)
                episodes.append(episode_from_row(row, where, path))
            out[split] = episodes
        return out

    def split_info(self) -> tuple[datasets.Features | None, datasets.SplitDict]:
        """Features (from the first shard's schema) and each split's rows and bytes, read from the
        Parquet metadata alone (no row is read)."""
        import datasets
        import pyarrow.parquet as pq

        splits = datasets.SplitDict()
        features = None
        for split in self.splits():
            files = self.shard_files(split)
            rows = sum(pq.read_metadata(f).num_rows for f in files)
            size = sum(f.stat().st_size for f in files)
            splits.add(datasets.SplitInfo(name=split, num_examples=rows, num_bytes=size))
            features = features or datasets.Features.from_arrow_schema(pq.read_schema(files[0]))
        return features, splits

    def data_files(self) -> list[dict[str, str]]:
        """The card's ``data_files`` entries (split -> shard pattern) for the splits with shards."""
        return [{"split": s, "path": shard_glob(s)} for s in self.splits()]

    def read_report(self, name: str) -> dict[str, Any] | None:
        """A JSON report of the folder (``build_report.json``, ...); None when it is missing.

        Args:
            name: the report's file name (`BUILD_REPORT`, `RELABEL_REPORT`, `VERIFICATION_REPORT`).

        Raises:
            ValueError: the file is not readable JSON, or not a JSON object.
        """
        return read_json_object(self.root / name, name.removesuffix(".json").replace("_", " "))

    def build_settings(self) -> dict[str, Any]:
        """The settings the folder was built with (``build_report.json``'s ``config``); ``{}`` when the
        report is missing or unreadable."""
        try:
            config = (self.read_report(BUILD_REPORT) or {}).get("config", {})
        except ValueError:
            return {}
        return config if isinstance(config, dict) else {}

    # -----------------------------------------------------------------------------------------
    # Writing

    def write_report(self, name: str, report: dict[str, Any]) -> Path:
        """Write a JSON report atomically (sorted keys, indented); returns its path.

        Args:
            name: the report's file name (`BUILD_REPORT`, `RELABEL_REPORT`, `VERIFICATION_REPORT`).
            report: the report.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / name
        _write_atomically(path, (json.dumps(report, indent=2, sort_keys=True) + "\n").encode())
        return path

    def write_shards(self, split: str, parts: Sequence[pa.Table | datasets.Dataset]) -> list[str]:
        """Replace a split's shards by ``parts``, one shard per non-empty part; returns their paths
        relative to the folder (``data/train-00000-of-00002.parquet``, ...).

        Each shard appears whole (written beside and renamed). An empty split gets no file:
        `datasets.load_dataset` refuses empty ones.

        Args:
            split: the split's name.
            parts: Arrow tables (written as they are) or `datasets.Dataset` objects (written by
                ``Dataset.to_parquet``, which keeps `datasets`' row-group sizes for video rows).
        """
        import pyarrow.parquet as pq

        self.data_dir.mkdir(parents=True, exist_ok=True)
        for old in self.shard_files(split):
            old.unlink()
        pending = []
        for k, part in enumerate(p for p in parts if p.num_rows):  # Tables and Datasets both count them
            tmp = self.data_dir / f".{split}-{k}.parquet.{os.getpid()}.tmp"
            if hasattr(part, "to_parquet"):  # a datasets.Dataset
                part.to_parquet(str(tmp))
            else:
                pq.write_table(part, tmp)
            pending.append(tmp)
        names = []
        for k, tmp in enumerate(pending):
            name = shard_name(split, k, len(pending))
            os.replace(tmp, self.data_dir / name)
            names.append(f"{DATA_DIR}/{name}")
        return names

    def write_split(self, split: str, dataset: datasets.Dataset, max_shard_bytes: int) -> list[str]:
        """Write a split's rows as shards of at most about ``max_shard_bytes`` each (contiguous rows);
        returns their paths relative to the folder.

        Args:
            split: the split's name.
            dataset: the split's rows.
            max_shard_bytes: the shard size aimed at (the in-memory size of the rows).
        """
        count = min(max(1, math.ceil(dataset.data.nbytes / max_shard_bytes)), max(1, len(dataset)))
        return self.write_shards(split, [dataset.shard(count, k, contiguous=True) for k in range(count)])
