"""`relabel_dataset`: relabel a folder written by `roboreward build` into a new one, keeping splits.

The rows are read back from the Parquet shards (videos embedded as bytes are written once each to
``OUT/.build/source_videos/<sha256>.mp4``), become Episodes again, go through the `Relabeler`, and
the result is written by `roboreward.builder.export`: the same Parquet / card / report layout, every
derived row in its source row's split (found through its ``group``). The input's encoding settings
(``max_side``, ``max_frames``, ``crf``, ...) are read from its ``build_report.json`` and kept.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from roboreward.episode import Episode
from roboreward.relabel.config import RelabelConfig
from roboreward.relabel.relabeler import Relabeler

__all__ = ["REPORT_NAME", "read_built_dataset", "relabel_dataset"]

REPORT_NAME = "relabel_report.json"
#: Settings of the input's build that the output keeps unless told otherwise.
_KEPT_SETTINGS = ("name", "seed", "max_side", "max_frames", "crf", "preset", "max_shard_size_mb", "license")


def _video_file(data: bytes, videos_dir: Path) -> Path:
    path = videos_dir / f"{hashlib.sha256(data).hexdigest()[:32]}.mp4"
    if not path.exists():
        tmp = videos_dir / f".{path.name}.{os.getpid()}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return path


def _episode(row: dict[str, Any], where: str, video_path: Path) -> Episode:
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


def read_built_dataset(folder: str | os.PathLike[str], videos_dir: str | os.PathLike[str]) -> dict[str, list]:
    """Split -> Episodes of a built folder's Parquet shards (``data/{split}-*.parquet``)."""
    import pyarrow.parquet as pq

    from roboreward.builder import SPLITS

    folder, videos_dir = Path(folder), Path(videos_dir)
    if not (folder / "data").is_dir():
        raise ValueError(f"{folder} has no data/ folder: give a folder written by `roboreward build`")
    videos_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, list[Episode]] = {}
    for split in SPLITS:
        episodes = []
        for file in sorted((folder / "data").glob(f"{split}-*.parquet")):
            index = 0
            for batch in pq.ParquetFile(file).iter_batches(batch_size=64):  # rows carry video bytes
                for row in batch.to_pylist():
                    where = f"{file.name} row {index}"
                    index += 1
                    data = row["video"].get("bytes") if isinstance(row.get("video"), dict) else None
                    if not data:
                        raise ValueError(f"{where} has no embedded video bytes")
                    episodes.append(_episode(row, where, _video_file(data, videos_dir)))
        out[split] = episodes
    return out


def relabel_dataset(
    in_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: RelabelConfig,
    progress: bool = True,
    **build_settings: Any,
) -> dict[str, Any]:
    """Relabel a folder written by `roboreward build` into ``out_dir``, keeping every row's split.

    Writes the same layout (Parquet shards, card, ``build_report.json`` with a ``relabel`` section)
    plus ``relabel_report.json``; returns the build report. ``build_settings`` (``max_side``,
    ``num_proc``, ...) override the input's.

    >>> config = RelabelConfig(vlm="openai:http://localhost:8000/v1#Qwen/Qwen2.5-VL-7B-Instruct")
    >>> relabel_dataset("roboreward", "roboreward_relabeled", config)  # doctest: +SKIP
    """
    from roboreward.builder import BUILD_DIR, SPLITS, BuildConfig, export
    from roboreward.builder import REPORT_NAME as BUILD_REPORT

    source, out = Path(in_dir), Path(out_dir)
    if not (source / "data").is_dir():
        raise ValueError(f"{source} has no data/ folder: give a folder written by `roboreward build`")
    if out.resolve() == source.resolve():
        raise ValueError(f"the output folder must differ from the input folder {source}")
    settings: dict[str, Any] = {}
    try:
        built = json.loads((source / BUILD_REPORT).read_text(encoding="utf-8")).get("config", {})
        settings = {k: built[k] for k in _KEPT_SETTINGS if k in built}
    except (OSError, ValueError, AttributeError):
        pass  # a folder without a readable build report: the builder's defaults
    work_dir = out / BUILD_DIR
    by_split = read_built_dataset(source, work_dir / "source_videos")
    split_of_group = {ep.group: split for split, eps in by_split.items() for ep in eps}
    everything = [ep for split in SPLITS for ep in by_split[split]]
    if not everything:
        raise ValueError(f"{source} holds no rows")
    rows, skips, extra = Relabeler(config, progress=progress)(everything, work_dir)
    splits: dict[str, list[Episode]] = {split: [] for split in SPLITS}
    for ep in rows:
        splits[split_of_group[ep.group]].append(ep)
    tmp = out / f".{REPORT_NAME}.tmp"
    tmp.write_text(json.dumps(extra["relabel"], indent=2, sort_keys=True) + "\n")
    os.replace(tmp, out / REPORT_NAME)
    config_settings = {**settings, **build_settings, "manifest": [str(source)], "out": str(out)}
    return export(splits, BuildConfig(**config_settings), skips, extra_report=extra)
