"""Counterfactual relabeling, temporal clipping and text augmentation (the paper's §4 cleaning and
augmentation), on local transformers models or OpenAI-compatible endpoints, cached and resumable.

Two ways in:

- ``roboreward build ... --relabel relabel.yaml``: the `Relabeler` runs as the builder's ``augment``
  hook, between reading the sources and splitting, so derived rows share their rollout's split.
- ``roboreward relabel IN_DIR --out OUT_DIR``: `relabel_dataset` relabels a folder built earlier and
  keeps each row's split.

    >>> from roboreward.relabel import RelabelConfig, relabel_dataset
    >>> config = RelabelConfig(vlm="openai:http://localhost:8000/v1#Qwen/Qwen2.5-VL-7B-Instruct",
    ...                        llm="openai:http://localhost:8001/v1#Qwen/Qwen3-4B-Instruct-2507")
    >>> relabel_dataset("roboreward", "roboreward_relabeled", config)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from roboreward.episode import Episode
from roboreward.relabel.backends import parse_backend
from roboreward.relabel.stages import STAGES, RelabelConfig, Relabeler, extract_json

__all__ = [
    "STAGES",
    "RelabelConfig",
    "Relabeler",
    "augment_from_config",
    "extract_json",
    "parse_backend",
    "relabel_dataset",
]

REPORT_NAME = "relabel_report.json"


def augment_from_config(settings: dict[str, Any] | RelabelConfig) -> Callable[..., Any]:
    """The builder's augment hook for a recipe's ``relabel:`` section."""
    config = settings if isinstance(settings, RelabelConfig) else RelabelConfig.from_dict(settings)
    return Relabeler(config)


def _episodes_from_split(folder: Path, split: str, videos_dir: Path) -> list[Episode]:
    import pyarrow.parquet as pq

    episodes = []
    for file in sorted((folder / "data").glob(f"{split}-*.parquet")):
        for index, row in enumerate(pq.read_table(file).to_pylist()):
            data = row["video"].get("bytes") if isinstance(row.get("video"), dict) else None
            if not data:
                raise ValueError(f"{file} row {index} has no embedded video bytes")
            path = videos_dir / f"{hashlib.sha256(data).hexdigest()[:24]}.mp4"
            if not path.exists():
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(data)
                os.replace(tmp, path)
            provenance = json.loads(row["provenance"]) if row.get("provenance") else {}
            episodes.append(
                Episode(
                    video=str(path),
                    task=row["task"],
                    reward=int(row["reward"]),
                    source=row.get("source") or "roboreward",
                    episode_id=row.get("episode_id") or f"{split}-{file.stem}-{index}",
                    progress=row.get("progress"),
                    camera=row.get("camera"),
                    original_task=row.get("original_task"),
                    augmentation=row.get("augmentation") or "original",
                    group=row.get("group"),
                    provenance=provenance,
                )
            )
    return episodes


def relabel_dataset(
    in_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: RelabelConfig,
    **build_settings: Any,
) -> dict[str, Any]:
    """Relabel a folder written by `roboreward build` into ``out_dir``, keeping every row's split.

    Writes the same layout (Parquet shards, card, ``build_report.json``) plus ``relabel_report.json``;
    returns the report. ``build_settings`` (max_side, max_frames, ...) go to the export.
    """
    from roboreward.builder import SPLITS, BuildConfig, export

    source, out = Path(in_dir), Path(out_dir)
    if not (source / "data").is_dir():
        raise ValueError(f"{source} has no data/ folder: give a folder written by `roboreward build`")
    if out.resolve() == source.resolve():
        raise ValueError("--out must be a new folder, not the input folder")
    work_dir = out / ".build"
    videos_dir = work_dir / "source_videos"
    videos_dir.mkdir(parents=True, exist_ok=True)
    by_split = {split: _episodes_from_split(source, split, videos_dir) for split in SPLITS}
    split_of_group = {ep.group: split for split, eps in by_split.items() for ep in eps}
    everything = [ep for split in SPLITS for ep in by_split[split]]
    if not everything:
        raise ValueError(f"{source} holds no rows")
    relabeled, skips, extra = Relabeler(config)(everything, work_dir)
    splits: dict[str, list[Episode]] = {split: [] for split in SPLITS}
    for ep in relabeled:
        splits[split_of_group[ep.group]].append(ep)
    report = extra["relabel"]
    tmp = out / f".{REPORT_NAME}.tmp"
    tmp.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, out / REPORT_NAME)
    settings = {"manifest": [str(source)], "out": str(out), **build_settings}
    return export(splits, BuildConfig(**settings), skips, extra_report=extra)
