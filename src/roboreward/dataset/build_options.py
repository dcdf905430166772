"""The settings of `roboreward build`: `ExportConfig` (where and how a build writes) and `BuildConfig`
(everything the command takes; a YAML recipe sets the same fields).

They live apart from `roboreward.dataset.builder`, which imports `datasets`, so that ``roboreward build
--help`` and a recipe's checks never load it.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from roboreward import rubric
from roboreward.config import (
    check_fields,
    check_range,
    comma_floats,
    comma_list,
    read_recipe,
    relabel_recipe,
    weights,
)
from roboreward.dataset.folder import SPLITS
from roboreward.sources.lerobot.reader import parse_rewards
from roboreward.sources.roboarena import CAMERAS, ProgressUnit

__all__ = ["DEFAULT_SPLIT_RATIOS", "H264_PRESETS", "BuildConfig", "ExportConfig"]

#: The seed paper's split sizes: 64,850 / 2,442 / 3,105.
DEFAULT_SPLIT_RATIOS = {"train": 64850 / 70397, "validation": 2442 / 70397, "test": 3105 / 70397}

#: libx264's presets, fastest first (``preset``).
H264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)


@dataclass
class ExportConfig:
    """Where and how `export` writes split episodes: the output folder and the encoding settings.

    Attributes:
        out: the output folder.
        name: the `datasets` config name.
        seed: the seed the splits were made with (the card shows it).
        num_proc: processes that encode videos.
        max_side, max_frames, crf, preset: the H.264 encoding of each video (see `encoding`).
        max_shard_size_mb: the Parquet shard size aimed at.
        license: the card's license.
    """

    out: str = field(default="roboreward", metadata={"help": "output folder"})
    name: str = field(default="default", metadata={"help": "the build's name (the dataset config name)"})
    seed: int = field(default=0, metadata={"help": "sampling and split seed"})
    num_proc: int = field(default=1, metadata={"help": "processes that encode videos"})
    max_side: int | None = field(default=448, metadata={"help": "longer video side after re-encoding"})
    max_frames: int | None = field(default=64, metadata={"help": "frame budget per video"})
    crf: int = field(default=23, metadata={"help": "H.264 quality, 0..51 (lower: better, larger)"})
    preset: str = field(
        default="veryfast", metadata={"help": "H.264 encoder preset", "choices": list(H264_PRESETS)}
    )
    max_shard_size_mb: int = field(default=500, metadata={"help": "largest Parquet shard, in MiB"})
    license: str = field(default="other", metadata={"help": "license id in the dataset card"})

    def __post_init__(self) -> None:
        if isinstance(self.out, os.PathLike):
            self.out = os.fspath(self.out)
        # A recipe's values arrive unconverted: every field is checked here, whatever made the config.
        check_fields(self, skip=("relabel",))
        for name in ("out", "name", "preset", "license"):
            if not getattr(self, name).strip():
                raise ValueError(f"{name} is empty")
        check_range(self, "num_proc", low=1)
        check_range(self, "max_side", low=16)
        check_range(self, "max_frames", low=2)
        check_range(self, "crf", 0, 51)
        check_range(self, "max_shard_size_mb", low=1)

    def encoding(self) -> dict[str, Any]:
        """The settings that decide an encoded video's bytes (its cache key)."""
        return {
            "max_side": self.max_side,
            "max_frames": self.max_frames,
            "crf": self.crf,
            "preset": self.preset,
        }


@dataclass
class BuildConfig(ExportConfig):
    """Everything `roboreward build` takes; a YAML recipe sets the same fields (CLI flags win)."""

    lerobot: list[str] = field(
        default_factory=list,
        metadata={
            "help": "LeRobot dataset, a folder or Hub id (repeatable)",
            "repeat": True,
            "metavar": "PATH_OR_ID",
        },
    )
    lerobot_video_key: str | None = field(
        default=None,
        metadata={
            "help": "LeRobot camera feature (None: the first non-wrist camera)",
            "aliases": ["--video-key"],
        },
    )
    lerobot_rewards: str = field(
        default="auto",
        metadata={
            "help": "per-episode rewards of the LeRobot sources: auto (the sidecar "
            "meta/episode_rewards.jsonl where a dataset has one, as `roboreward sim` writes, else 5 as "
            "for OXE), success (5 for every episode), column:NAME (a field of the episode metadata), "
            "or a sidecar file (JSONL or Parquet: episode_index, reward 1..5, optional progress; "
            "relative to each dataset's folder)",
            "metavar": "auto|success|column:NAME|FILE",
        },
    )
    roboarena: list[str] = field(
        default_factory=list,
        metadata={"help": "RoboArena data dump (repeatable)", "repeat": True, "metavar": "PATH"},
    )
    roboarena_cameras: list[str] = field(
        default_factory=lambda: ["left"],
        metadata={"help": "RoboArena cameras, comma-separated: left,right,wrist", "parse": comma_list},
    )
    roboarena_progress_unit: ProgressUnit = field(
        default="auto",
        metadata={
            "help": "unit of RoboArena's partial_success, decided once per dump: auto (percent for all "
            "when any value is above 1, else fraction), percent, or fraction (a dump with a value "
            "above 1 is refused); build_report.json records the decision"
        },
    )
    manifest: list[str] = field(
        default_factory=list,
        metadata={"help": "JSONL/CSV manifest (repeatable)", "repeat": True, "metavar": "FILE"},
    )
    oxe_episodes: int = field(default=1350, metadata={"help": "OXE episodes in total, uniform per dataset"})
    split_ratios: dict[str, float] = field(
        default_factory=lambda: {"train": 64850, "validation": 2442, "test": 3105},  # the paper's rows
        metadata={"help": "split weights, e.g. train=0.9,validation=0.05,test=0.05", "parse": weights},
    )
    progress_thresholds: list[float] = field(
        default_factory=lambda: list(rubric.DEFAULT_PROGRESS_THRESHOLDS),
        metadata={"help": "progress -> score bin edges, comma-separated", "parse": comma_floats},
    )
    #: Relabeling settings (`roboreward.relabel.RelabelConfig` fields); None runs no relabeling.
    #: `roboreward.dataset.pipeline.build_with_relabel` runs them (the builder itself takes the stage
    #: as ``augment``).
    relabel: dict[str, Any] | None = field(
        default=None,
        metadata={
            "help": "relabel recipe (dataset_builder/configs/relabel_*.yaml); None: no relabeling",
            "parse": relabel_recipe,
            "metavar": "YAML",
        },
    )

    def __post_init__(self) -> None:
        for name in ("lerobot", "roboarena", "manifest", "roboarena_cameras"):
            value = getattr(self, name)
            if isinstance(value, str | os.PathLike):
                value = [value]
            if isinstance(value, list | tuple):
                setattr(self, name, [os.fspath(v) if isinstance(v, os.PathLike) else v for v in value])
        super().__post_init__()  # the types of every field, the encoding settings
        if not (self.lerobot or self.roboarena or self.manifest):
            raise ValueError(
                "no source given: pass --lerobot, --roboarena or --manifest (or a --config recipe)"
            )
        for name in ("lerobot", "roboarena", "manifest"):
            if any(not entry.strip() for entry in getattr(self, name)):
                raise ValueError(f"{name} holds an empty entry: {getattr(self, name)}")
        unknown = [c for c in self.roboarena_cameras if c not in CAMERAS]
        if unknown or not self.roboarena_cameras:
            raise ValueError(
                f"roboarena_cameras must be among {', '.join(CAMERAS)}, got {self.roboarena_cameras}"
            )
        check_range(self, "oxe_episodes", low=1)
        if (
            self.relabel is not None
            and not isinstance(self.relabel, dict)
            and not dataclasses.is_dataclass(self.relabel)
        ):
            raise ValueError(
                f"relabel must be a mapping of relabel settings (a recipe's relabel: section) or a "
                f"RelabelConfig, got {self.relabel!r}"
            )
        unknown = set(self.split_ratios) - set(SPLITS)
        if unknown or any(r < 0 for r in self.split_ratios.values()) or sum(self.split_ratios.values()) <= 0:
            raise ValueError(
                f"split_ratios must give non-negative weights to {SPLITS}, got {self.split_ratios}"
            )
        rubric.progress_to_score(0.5, self.progress_thresholds)  # validates the thresholds
        parse_rewards(self.lerobot_rewards)  # raises ValueError naming a malformed value, now

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str], **overrides: Any) -> BuildConfig:
        """Read a recipe; keyword arguments (the CLI's flags) that are not None override its fields.

        Args:
            path: the YAML recipe (e.g. ``dataset_builder/configs/roboreward.yaml``).
            **overrides: field values that win over the recipe's.
        """
        data = read_recipe(path, "build")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fields in build recipe {path}: {unknown}")
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**data)
