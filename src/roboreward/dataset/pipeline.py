"""Build and relabel composed: every recipe is checked before any source or video is read.

The layer between the command line and the parts it composes. The builder knows nothing of
relabeling (it takes a stage as ``augment``) and the relabeling stages know nothing of folders; here
a build recipe's ``relabel:`` section becomes a `Relabeler`, and a built folder becomes Episodes
again (`roboreward.dataset.folder`), goes through the stages and is exported in its splits.

    >>> from roboreward.dataset.builder import BuildConfig
    >>> from roboreward.dataset.pipeline import build_with_relabel, relabel_dataset
    >>> from roboreward.relabel import RelabelConfig
    >>> config = BuildConfig(manifest=["rollouts.jsonl"], relabel={"stages": ["paraphrase"]})
    >>> build_with_relabel(config)  # doctest: +SKIP
    >>> config = RelabelConfig(vlm="openai:http://localhost:8000/v1#Qwen/Qwen2.5-VL-7B-Instruct")
    >>> relabel_dataset("roboreward", "roboreward_relabeled", config)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any

from roboreward.dataset import builder
from roboreward.dataset.builder import Augment, BuildConfig, ExportConfig
from roboreward.dataset.executors import ExecutorConfig
from roboreward.dataset.folder import SPLITS, DatasetFolder
from roboreward.episode import Episode
from roboreward.relabel import RelabelConfig, augment_from_config

__all__ = ["KEPT_SETTINGS", "build_with_relabel", "relabel_dataset"]

#: Settings of the input's build that a relabeled folder keeps unless told otherwise.
KEPT_SETTINGS = ("name", "seed", "max_side", "max_frames", "crf", "preset", "max_shard_size_mb", "license")


def build_with_relabel(
    config: BuildConfig, augment: Augment | None = None, executor: ExecutorConfig | None = None
) -> dict[str, Any]:
    """`roboreward.dataset.builder.build` with the recipe's relabeling: returns the build report.

    The ``relabel:`` settings are checked before any source is opened, so a typo in them fails at
    once instead of after every source was read.

    Args:
        config: the build's sources and settings; ``config.relabel`` (when set and no ``augment`` is
            given) becomes the relabel stage.
        augment: a stage of one's own instead (see `roboreward.dataset.builder.Augment`).
        executor: where the build runs (None or ``inprocess``: here; ``local`` or ``slurm``: as
            datatrove tasks, `roboreward.dataset.distributed`, the same folder byte for byte).
    """
    if executor is not None and executor.distributed:
        if augment is not None:
            raise ValueError("a stage of one's own (augment=) runs in process only: use executor=None")
        from roboreward.dataset.distributed import build_distributed

        return build_distributed(config, executor)
    if augment is None and config.relabel:
        augment = augment_from_config(config.relabel)
    return builder.build(config, augment=augment)


def _encoding_of(settings: dict[str, Any], export: ExportConfig) -> dict[str, Any] | None:
    """The encoding the input was built with, when its report says all of it."""
    wanted = export.encoding()
    if not all(key in settings for key in wanted):
        return None
    return {key: settings[key] for key in wanted}


def relabel_dataset(
    in_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: RelabelConfig,
    progress: bool = True,
    **build_settings: Any,
) -> dict[str, Any]:
    """Relabel a folder written by `roboreward build` into ``out_dir``, keeping every row's split.

    The rows become Episodes again (their videos written once each to
    ``OUT/.build/source_videos/``), go through the `Relabeler`, and are exported with the input's
    encoding settings (read from its ``build_report.json``), every derived row in its source row's
    split (found through its ``group``). Videos already encoded with the output's settings are
    copied through byte for byte; only new clips (and every video, when ``build_settings`` change
    the encoding) are encoded. Writes the same layout plus ``relabel_report.json``; returns the
    build report (with a ``relabel`` section).

    Args:
        in_dir: a folder written by `roboreward build` (or relabeled before).
        out_dir: the new folder; it must differ from ``in_dir``.
        config: the relabeling settings.
        progress: show progress bars.
        **build_settings: `ExportConfig` fields (``max_side``, ``num_proc``, ...) overriding the input's.

    >>> config = RelabelConfig(vlm="openai:http://localhost:8000/v1#Qwen/Qwen2.5-VL-7B-Instruct")
    >>> relabel_dataset("roboreward", "roboreward_relabeled", config)  # doctest: +SKIP
    """
    source, out = DatasetFolder(in_dir), DatasetFolder(out_dir)
    source.require_data()
    if out.root.resolve() == source.root.resolve():
        raise ValueError(f"the output folder must differ from the input folder {source.root}")
    built = source.build_settings()  # {} without a readable build report: the builder's defaults
    kept = {k: built[k] for k in KEPT_SETTINGS if k in built}
    export = ExportConfig(**{**kept, **build_settings, "out": str(out.root)})  # checked before any work
    relabeler = augment_from_config(config, progress=progress)

    by_split = source.read_episodes(out.build_dir / "source_videos")
    split_of_group = {ep.group: split for split, eps in by_split.items() for ep in eps}
    everything = [ep for split in SPLITS for ep in by_split[split]]
    if not everything:
        raise ValueError(f"{source.root} holds no rows")
    rows, skips, extra = relabeler(everything, out.build_dir)
    splits: dict[str, list[Episode]] = {split: [] for split in SPLITS}
    for ep in rows:
        splits[split_of_group[ep.group]].append(ep)
    same_encoding = _encoding_of(built, export) == export.encoding()
    encoded = sorted({ep.video for ep in everything}) if same_encoding else []
    return builder.export(splits, export, skips, extra_report=extra, encoded_videos=encoded)
