"""Build RoboReward: sources -> episodes -> grouped splits -> re-encoded videos -> a Hub-ready folder.

    >>> from roboreward.dataset.builder import BuildConfig, build
    >>> report = build(BuildConfig(lerobot=["./berkeley_autolab_ur5"], roboarena=["./DataDump"],
    ...                            out="./roboreward"))  # doctest: +SKIP
    >>> import datasets
    >>> datasets.load_dataset("./roboreward")  # doctest: +SKIP
    DatasetDict({train: ..., validation: ..., test: ...})

The steps, each deterministic for the same inputs and seed:

1. Open every source; a source that is unusable as a whole fails here, before any work.
2. Sample OXE episodes uniformly across sub-datasets to a total (the paper's ~1,350); RoboArena and
   manifests are used whole. Entries a source cannot use become `Skip`s with their reason.
3. Assign splits by group (every row derived from one rollout shares a group), stratified by
   source, with seeded, configurable ratios.
4. `RoboRewardBuilder`, a `datasets.GeneratorBasedBuilder`, re-encodes each video to H.264 (max side,
   frame budget) inside `_generate_examples`, in `num_proc` processes. Encoded videos are cached
   under ``OUT/.build/videos`` (written atomically), so a killed build resumes where it stopped.
5. Export Parquet shards per split (videos embedded, so the folder is self-contained), a dataset card
   whose YAML declares configs, splits and features, and ``build_report.json`` (the folder's layout
   is `roboreward.dataset.folder`'s).

`export` is step 5 on its own, for episodes already split (`roboreward relabel` keeps a folder's
splits): its `ExportConfig` holds only the encoding and output settings, and videos already encoded
with those settings (``encoded_videos``) are copied through unchanged. The builder knows nothing of
relabeling: `roboreward.dataset.pipeline.build_with_relabel` turns a recipe's ``relabel:`` section
into the ``augment`` stage, checked before any source is read.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import re
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import datasets
from tqdm.auto import tqdm

from roboreward import video
from roboreward.dataset.build_options import DEFAULT_SPLIT_RATIOS, BuildConfig, ExportConfig
from roboreward.dataset.cards import CITATION, render_dataset_card
from roboreward.dataset.folder import (
    BUILD_REPORT,
    RELABEL_REPORT,
    SPLITS,
    DatasetFolder,
    check_output_folder,
    episode_row,
    features,
    split_statistics,
)
from roboreward.dataset.lock import check_unlocked, output_lock
from roboreward.dataset.splits import assign_splits, sample_uniform, seeded_rng
from roboreward.episode import Episode, Skip
from roboreward.sources import EpisodeSource, SourceError
from roboreward.sources.lerobot.reader import LeRobotSource
from roboreward.sources.manifest import ManifestSource
from roboreward.sources.roboarena import RoboArenaSource

__all__ = [
    "DEFAULT_SPLIT_RATIOS",
    "FEATURES",
    "SPLITS",
    "BuildConfig",
    "ExportConfig",
    "RoboRewardBuilder",
    "RoboRewardConfig",
    "assign_splits",
    "build",
    "export",
    "open_sources",
    "sample_uniform",
]

#: The exported schema (`roboreward.dataset.folder.features`).
FEATURES = features()
#: The build report's file name (`roboreward.dataset.folder.BUILD_REPORT`).
REPORT_NAME = BUILD_REPORT


# ---------------------------------------------------------------------------------------------
# Sources and sampling


def open_sources(config: BuildConfig) -> tuple[list[EpisodeSource], list[EpisodeSource]]:
    """(OXE sources, other sources); raises SourceError naming the source that is unusable.

    A RoboArena dump's progress unit is decided here, so a dump whose values contradict the unit
    given fails before any work.
    """
    oxe = [
        LeRobotSource(path, video_key=config.lerobot_video_key, rewards=config.lerobot_rewards)
        for path in config.lerobot
    ]
    arenas = [
        RoboArenaSource(
            path,
            cameras=tuple(config.roboarena_cameras),
            thresholds=tuple(config.progress_thresholds),
            progress_unit=config.roboarena_progress_unit,
        )
        for path in config.roboarena
    ]
    for arena in arenas:
        arena.progress_unit  # noqa: B018  (reads every metadata.yaml once; raises SourceError)
    others: list[EpisodeSource] = [*arenas]
    others += [ManifestSource(path) for path in config.manifest]
    names = [s.name for s in [*oxe, *others]]
    repeated = sorted({n for n in names if names.count(n) > 1} - {"roboarena"})
    if repeated:
        raise SourceError(f"two sources share the subset name(s) {repeated}: give each its own name")
    return oxe, others


def reward_sources(config: BuildConfig, sources: Sequence[Any]) -> list[dict[str, Any]]:
    """The build report's ``lerobot_rewards``: per LeRobot source (as given in the config), where its
    episodes' rewards came from (``success``: 5 for all, as OXE; a sidecar file; ``column:NAME``)."""
    return [
        {"dataset": path, "source": source.name, "rewards_from": source.rewards_from}
        for path, source in zip(config.lerobot, sources, strict=True)
    ]


def progress_units(config: BuildConfig, sources: Sequence[Any]) -> list[dict[str, Any]]:
    """The build report's ``roboarena_progress_units``: per RoboArena dump (as given in the config),
    the unit its partial_success values were read in and what decided it."""
    arenas = [s for s in sources if isinstance(s, RoboArenaSource)]
    return [
        {"dump": path, **source.progress_unit} for path, source in zip(config.roboarena, arenas, strict=True)
    ]


def collect(
    config: BuildConfig, oxe: Sequence[Any], others: Sequence[EpisodeSource]
) -> tuple[list[Episode], list[Skip]]:
    """Read the sources: the sampled OXE episodes and every other entry, duplicates dropped."""
    episodes: list[Episode] = []
    skips: list[Skip] = []
    indices = {source.name: source.episode_indices() for source in oxe}
    quota = sample_uniform({name: len(idx) for name, idx in indices.items()}, config.oxe_episodes)
    streams: list[Iterable[Episode | Skip]] = []
    for source in oxe:
        chosen = sorted(seeded_rng(config.seed, source.name).sample(indices[source.name], quota[source.name]))
        streams.append(source.episodes(indices=chosen))
    streams += [source.episodes() for source in others]
    seen: dict[str, Episode] = {}
    for stream in streams:
        for item in tqdm(stream, desc="reading sources", unit="ep", leave=False):
            if isinstance(item, Skip):
                skips.append(item)
            elif item.id in seen:
                skips.append(Skip(item.source, item.episode_id, f"duplicate of {seen[item.id].episode_id}"))
            else:
                seen[item.id] = item
                episodes.append(item)
    return episodes, skips


# ---------------------------------------------------------------------------------------------
# Encoding (runs inside datasets' worker processes)


def _video_key(ep: dict[str, Any], encoding: dict[str, Any]) -> str:
    """The encoded-video cache's key: what the source file holds (its bytes), the range and the
    encoding (with the x264 settings `video.encode` fixes); never its name alone, so a video changed
    in place is encoded afresh."""
    digest = _file_digest(os.path.abspath(ep["video"]))
    what = [digest, ep["video_start"], ep["video_end"], encoding, video.X264_OPTIONS]
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:24]


def _file_digest(path: str) -> str:
    """SHA-256 of a file's bytes (remembered in this process while its size and mtime stay the same:
    the episodes of one LeRobot v3 file share it)."""
    try:
        stat = os.stat(path)
    except OSError:  # unreadable: the decoder names it; the key still differs from a readable file's
        return f"missing:{path}"
    return _digest_of(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _digest_of(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def encode_episode_video(ep: dict[str, Any], work_dir: str, encoding: dict[str, Any]) -> Path:
    """Re-encode an episode's video (its time range) to a cached H.264 mp4; returns its path.

    At most ``max_frames`` frames, spread evenly over the episode (the frame rate drops so the
    duration is kept), the longer side at most ``max_side``. Raises VideoDecodeError for a video
    that cannot be read. The cache file appears only once complete.
    """
    out = Path(work_dir) / "videos" / f"{_video_key(ep, encoding)}.mp4"
    if out.exists():
        return out
    info = video.probe(ep["video"])
    count = len(video.frame_indices(info, start=ep["video_start"], end=ep["video_end"]))
    budget = encoding["max_frames"]
    keep = count if budget is None else min(count, budget)
    frames = video.sample_frames(
        ep["video"],
        num_frames=keep if keep < count else None,
        start=ep["video_start"],
        end=ep["video_end"],
        max_side=encoding["max_side"],
    )
    fps = info.fps * keep / count
    return video.encode(frames, out, fps=fps, crf=encoding["crf"], preset=encoding["preset"])


def _skip_record(work_dir: str, ep: Episode, reason: str) -> None:
    folder = Path(work_dir) / "skips"
    folder.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(ep.id.encode()).hexdigest()[:24]
    record = {"source": ep.source, "episode_id": ep.episode_id, "reason": reason, "id": ep.id}
    tmp = folder / f".{name}.tmp"
    tmp.write_text(json.dumps(record))
    os.replace(tmp, folder / f"{name}.json")


@dataclass
class RoboRewardConfig(datasets.BuilderConfig):
    """A source mix, already read and split: the episodes of each split plus encoding settings.

    ``encoded_videos`` are video files already encoded with ``encoding`` (a built folder's videos,
    relabeled): a row showing one of them whole gets its bytes unchanged instead of a re-encoding.
    """

    episodes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    work_dir: str = ""
    encoding: dict[str, Any] = field(default_factory=dict)
    encoded_videos: list[str] = field(default_factory=list)


class RoboRewardBuilder(datasets.GeneratorBasedBuilder):
    """The RoboReward dataset as a `datasets` builder (no loading script: construct it directly)."""

    BUILDER_CONFIG_CLASS = RoboRewardConfig
    DEFAULT_WRITER_BATCH_SIZE = 64  # rows carry video bytes: keep writer batches small

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description="Robot rollout videos with task instructions and 1..5 end-of-episode rewards.",
            features=FEATURES,
            citation=CITATION,
            homepage="https://arxiv.org/abs/2601.00675",
        )

    def _split_generators(self, dl_manager: Any) -> list[datasets.SplitGenerator]:
        return [
            datasets.SplitGenerator(name=split, gen_kwargs={"episodes": self.config.episodes.get(split, [])})
            for split in SPLITS
        ]

    def _generate_examples(self, episodes: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
        encoded = frozenset(self.config.encoded_videos)
        for ep in episodes:
            episode = Episode.from_dict(ep)
            if episode.video in encoded and episode.video_start is None and episode.video_end is None:
                path = Path(episode.video)  # encoded with these very settings already: kept as it is
            else:
                try:
                    path = encode_episode_video(ep, self.config.work_dir, self.config.encoding)
                except (video.VideoDecodeError, ValueError) as exc:
                    _skip_record(self.config.work_dir, episode, str(exc))
                    continue
            name = episode.id.replace("/", "__") + ".mp4"
            yield episode.id, episode_row(episode, {"bytes": path.read_bytes(), "path": name})


def split_dataset(builder: RoboRewardBuilder, split: str) -> datasets.Dataset:
    """A prepared split; an empty one (datasets writes no file for it) as an empty table."""
    if builder.info.splits is None or builder.info.splits[split].num_examples == 0:
        return datasets.Dataset.from_dict({name: [] for name in FEATURES}, features=FEATURES)
    return builder.as_dataset(split=split)


# ---------------------------------------------------------------------------------------------
# The whole build


#: A stage that derives rows from the source episodes (relabeling): given the episodes and a work
#: folder it may write into, it returns every episode to export (originals included), the entries
#: it dropped, and a section for the build report.
Augment = Callable[[list[Episode], Path], tuple[list[Episode], list[Skip], dict[str, Any]]]


def build(config: BuildConfig, augment: Augment | None = None) -> dict[str, Any]:
    """Run every step and return the build report (also written to ``OUT/build_report.json``).

    Args:
        config: the sources and settings.
        augment: a stage run after the sources are read and before the split, so every row it
            derives from a rollout shares the rollout's group and lands in the same split. A
            recipe's ``relabel:`` section becomes one in
            `roboreward.dataset.pipeline.build_with_relabel`, which checks it before any source is
            read; this function refuses a config whose ``relabel`` it would otherwise silently skip.
    """
    if config.relabel and augment is None:
        raise ValueError(
            "BuildConfig.relabel is run by roboreward.dataset.pipeline.build_with_relabel "
            "(or pass the stage as augment=)"
        )
    started = time.time()
    check_output_folder(config.out)  # never into a folder holding something else
    check_unlocked(config.out)  # a second build fails at once, before reading (or downloading) sources
    oxe, others = open_sources(config)  # fails before any work for an unusable source
    with output_lock(config.out):
        return _build_locked(config, oxe, others, augment, started)


def _build_locked(
    config: BuildConfig,
    oxe: Sequence[Any],
    others: Sequence[EpisodeSource],
    augment: Augment | None,
    started: float,
) -> dict[str, Any]:
    episodes, skips = collect(config, oxe, others)
    units: dict[str, Any] = {}
    if config.lerobot:
        units["lerobot_rewards"] = reward_sources(config, oxe)
    if config.roboarena:
        units["roboarena_progress_units"] = progress_units(config, others)
    if not episodes:
        refuse_empty_build(config, skips, started, units)
    extra: dict[str, Any] = dict(units)
    if augment is not None:
        folder = DatasetFolder(config.out)
        folder.build_dir.mkdir(parents=True, exist_ok=True)
        episodes, more_skips, stage_report = augment(episodes, folder.build_dir)
        extra.update(stage_report)
        skips = skips + list(more_skips)
    splits = assign_splits(episodes, config.split_ratios, config.seed)
    return export(splits, config, skips, started=started, extra_report=extra)


def export(
    splits: dict[str, list[Episode]],
    config: ExportConfig,
    skips: Sequence[Skip] = (),
    started: float | None = None,
    extra_report: dict[str, Any] | None = None,
    encoded_videos: Iterable[str] = (),
) -> dict[str, Any]:
    """Encode and export episodes already assigned to splits into ``config.out``; returns the report.

    `build` ends here; `roboreward.dataset.pipeline.relabel_dataset` calls it directly to keep an existing
    dataset's splits.

    Args:
        splits: split -> its episodes.
        config: the output folder and encoding settings (a `BuildConfig` is one).
        skips: entries dropped before, for the report.
        started: when the work began (``time.time()``), for the report's ``seconds``.
        extra_report: sections added to the report (``relabel``, ...).
        encoded_videos: video files already encoded with ``config.encoding()``: a row showing one
            of them whole keeps its bytes (no re-encoding, so no quality lost); only other videos
            and time ranges are encoded.
    Raises ValueError listing the reasons (after writing the report) when no row could be encoded.
    """
    check_output_folder(config.out)
    with output_lock(config.out):
        return _export_locked(splits, config, skips, started, extra_report, encoded_videos)


def _export_locked(
    splits: dict[str, list[Episode]],
    config: ExportConfig,
    skips: Sequence[Skip],
    started: float | None,
    extra_report: dict[str, Any] | None,
    encoded_videos: Iterable[str],
) -> dict[str, Any]:
    started = time.time() if started is None else started
    skips = list(skips)
    folder = DatasetFolder(config.out)
    folder.complete_publish()  # a swap a killed run began is finished first
    # Everything readers see is written beside, in .build/next/, and swapped in when complete: a
    # failed or killed rebuild leaves the folder's earlier dataset as it was.
    staging = folder.staging
    shutil.rmtree(staging.root, ignore_errors=True)
    work_dir = folder.build_dir
    (work_dir / "videos").mkdir(parents=True, exist_ok=True)
    for partial in (work_dir / "videos").glob(".*.mp4"):  # in flight when an earlier run was killed
        partial.unlink()
    shutil.rmtree(work_dir / "skips", ignore_errors=True)  # re-derived on every run

    builder = RoboRewardBuilder(
        cache_dir=str(work_dir / "hf"),
        config_name=config.name,
        dataset_name="roboreward",
        episodes={s: [ep.to_dict() for ep in splits[s]] for s in SPLITS},
        work_dir=str(work_dir),
        encoding=config.encoding(),
        encoded_videos=sorted(set(encoded_videos)),
    )
    builder.download_and_prepare(
        num_proc=config.num_proc if config.num_proc > 1 else None,
        download_mode=datasets.DownloadMode.FORCE_REDOWNLOAD,
    )
    skips += [Skip(r["source"], r["episode_id"], r["reason"]) for r in _read_skip_records(work_dir)]

    report = _report(config, builder, skips, started)
    report.update(extra_report or {})
    if report["totals"]["rows"] == 0:  # every episode failed to encode: the report says why
        shutil.rmtree(work_dir / "hf", ignore_errors=True)
        report["files"] = {split: [] for split in SPLITS}
        raise ValueError(_no_usable_message(_write_failed_report(folder, report), skips))
    report["files"] = {
        split: staging.write_split(split, split_dataset(builder, split), config.max_shard_size_mb * 2**20)
        for split in SPLITS
    }
    staging.write_report(BUILD_REPORT, report)
    if "relabel" in report:  # next to the data, where the dataset card reads it
        staging.write_report(RELABEL_REPORT, report["relabel"])
    render_dataset_card(staging.root, license=config.license)  # from the report and shards just written
    folder.publish(staging)
    # The Arrow cache repeats every video; the Parquet files and the encoded-video cache suffice.
    shutil.rmtree(work_dir / "hf", ignore_errors=True)
    return report


def _write_failed_report(folder: DatasetFolder, report: dict[str, Any]) -> Path:
    """Write the report of a build with nothing usable; returns its path. Into a fresh folder it is
    ``build_report.json``; over an earlier dataset it goes to ``.build/failed_build_report.json``, so
    the earlier dataset keeps its own report."""
    if folder.data_dir.is_dir():
        return DatasetFolder(folder.build_dir).write_report(f"failed_{BUILD_REPORT}", report)
    return folder.write_report(BUILD_REPORT, report)


def refuse_empty_build(
    config: BuildConfig, skips: Sequence[Skip], started: float, extra_report: dict[str, Any] | None = None
) -> NoReturn:
    """Nothing usable: write ``OUT/build_report.json`` listing every skip (and ``extra_report``'s
    sections; over an earlier dataset ``.build/failed_build_report.json``), then raise ValueError
    with the reasons grouped (counts and a few examples), which `roboreward build` prints."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    empty = {"rows": 0, "by_source": {}, "by_reward": {}, "by_source_and_reward": {}}
    report = {
        "config": dataclasses.asdict(config),
        "rows": {split: dict(empty) for split in SPLITS},
        "totals": {"rows": 0, "skipped": len(skips)},
        **_skip_summary(skips),
        "files": {split: [] for split in SPLITS},
        "seconds": round(time.time() - started, 2),
        **(extra_report or {}),
    }
    raise ValueError(_no_usable_message(_write_failed_report(DatasetFolder(out), report), skips))


def _no_usable_message(report_path: Path, skips: Sequence[Skip]) -> str:
    return (
        f"no usable episode in the sources ({len(skips)} skipped), for these reasons:\n"
        f"{format_skip_reasons(skips)}\nevery skip is listed in {report_path}"
    )


def format_skip_reasons(skips: Sequence[Skip], examples: int = 3) -> str:
    """Skips grouped by kind of reason, most common first: the count, then a few examples.

    >>> print(format_skip_reasons([Skip("m", "1", "task is empty in m.jsonl line 1"),
    ...                            Skip("m", "2", "task is empty in m.jsonl line 2")]))
           2  task is empty in m.jsonl line N
              m 1: task is empty in m.jsonl line 1
              m 2: task is empty in m.jsonl line 2
    """
    groups: dict[str, list[Skip]] = defaultdict(list)
    for skip in sorted(skips, key=lambda s: (s.source, s.episode_id, s.reason)):
        groups[_reason_kind(skip.reason)].append(skip)
    lines = []
    for kind, members in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        lines.append(f"  {len(members):6d}  {kind}")
        lines += [f"{'':10s}{s.source} {s.episode_id}: {s.reason}" for s in members[:examples]]
        if len(members) > examples:
            lines.append(f"{'':10s}... and {len(members) - examples} more")
    return "\n".join(lines)


def _read_skip_records(work_dir: Path) -> list[dict[str, str]]:
    folder = work_dir / "skips"
    if not folder.exists():
        return []
    records = [json.loads(p.read_text()) for p in folder.glob("*.json")]
    return sorted(records, key=lambda r: (r["source"], r["episode_id"], r["id"]))


def _report(
    config: ExportConfig, builder: RoboRewardBuilder, skips: list[Skip], started: float
) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for split in SPLITS:
        table = split_dataset(builder, split).select_columns(["source", "reward"])
        rows[split] = split_statistics(zip(table["source"], table["reward"], strict=True))
    return {
        "config": dataclasses.asdict(config),
        "rows": rows,
        "totals": {"rows": sum(r["rows"] for r in rows.values()), "skipped": len(skips)},
        **_skip_summary(skips),
        "seconds": round(time.time() - started, 2),
    }


def _skip_summary(skips: Sequence[Skip]) -> dict[str, Any]:
    reasons = Counter(_reason_kind(s.reason) for s in skips)
    return {
        "skipped": [s.as_dict() for s in sorted(skips, key=lambda s: (s.source, s.episode_id, s.reason))],
        "skipped_by_reason": dict(sorted(reasons.items())),
    }


def _reason_kind(reason: str) -> str:
    """A short kind of skip reason for the summary ("cannot decode video '...'", "task is empty in
    m.jsonl line N", ...): the text before the first colon, quoted names and line numbers masked."""
    head = re.sub(r"\b(line|row) \d+", r"\1 N", re.sub(r"'[^']*'", "'...'", reason.split(":", 1)[0]))
    return head if len(head) <= 60 else head[:57] + "..."


def format_summary(report: dict[str, Any]) -> str:
    """The build report as the short table `roboreward build` prints."""
    lines = ["rows per split and source:"]
    for split in SPLITS:
        info = report["rows"][split]
        by_source = ", ".join(f"{s}: {n}" for s, n in info["by_source"].items()) or "-"
        by_reward = " ".join(f"{k}:{v}" for k, v in info["by_reward"].items()) or "-"
        lines.append(f"  {split:10s} {info['rows']:6d} rows  ({by_source})  rewards {by_reward}")
    for rewards in report.get("lerobot_rewards", []):
        if rewards["rewards_from"] != "success":
            lines.append(f"LeRobot {rewards['dataset']}: rewards from {rewards['rewards_from']}")
    for unit in report.get("roboarena_progress_units", []):
        how = "as asked"
        if unit["asked"] == "auto":
            above = unit["above_1"] or "none"
            how = f"auto: {above} of {unit['values']} values above 1"
        lines.append(f"RoboArena {unit['dump']}: partial_success read as {unit['unit']} ({how})")
    lines.append(f"skipped {report['totals']['skipped']} source entries")
    for reason, count in report["skipped_by_reason"].items():
        lines.append(f"  {count:6d}  {reason}")
    lines.append(f"wrote {report['config']['out']} in {report['seconds']:.1f} s (see {REPORT_NAME})")
    return "\n".join(lines)
