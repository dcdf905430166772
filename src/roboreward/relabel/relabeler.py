"""`Relabeler`: the builder's ``augment`` hook that runs the configured relabeling stages.

``Relabeler(config)(episodes, work_dir) -> (rows, skips, {"relabel": report})``: every input episode
(rewritten where the rewrite succeeded) followed by the rows derived from it, each keeping its
source rollout's ``group`` so it lands in the same split. Episodes are relabeled ``workers`` at a
time; the output order is the input order whatever finishes first, and every model call is cached
(`CallCache`), so a re-run, or a run killed part way and started again, ends with exactly the rows
of an uninterrupted run.

Only source rows (``augmentation`` ``original`` or ``rewrite``) are relabeled; rows derived earlier
(a folder relabeled before) pass through, and a derived row equal to one already there (same id)
is written once.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from roboreward import rubric, video
from roboreward.episode import Episode, Skip
from roboreward.relabel import prompts
from roboreward.relabel.cache import CallCache
from roboreward.relabel.calls import COUNTERS, MAX_ERRORS_KEPT, Counters, ModelCalls, StageError
from roboreward.relabel.clipping import make_judge, temporal_clips
from roboreward.relabel.counterfactual import counterfactuals
from roboreward.relabel.paraphrase import paraphrases
from roboreward.relabel.recipe import RelabelConfig
from roboreward.relabel.rewrite import rewrite

__all__ = ["SOURCE_AUGMENTATIONS", "Relabeler", "merge_reports"]

#: Rows that stages derive from; every other row passes through.
SOURCE_AUGMENTATIONS = ("original", "rewrite")
CACHE_DIR = "relabel_cache"


class Relabeler:
    """Runs ``config.stages`` on episodes; see the module docstring.

    >>> relabeler = Relabeler(RelabelConfig(vlm=my_vlm, llm=my_llm))  # doctest: +SKIP
    >>> rows, skips, extra = relabeler(episodes, Path("work"))  # doctest: +SKIP
    >>> extra["relabel"]["stages"]["counterfactual"]["accepted"]  # doctest: +SKIP
    """

    def __init__(self, config: RelabelConfig, cache_dir: str | Path | None = None, progress: bool = True):
        self.config = config
        self.cache_dir = cache_dir
        self.progress = progress

    def _prepare(self, work_dir: Path) -> None:
        """Cache, counters and every model the stages need: a bad spec fails before any work."""
        config = self.config
        root = self.cache_dir or config.cache_dir or Path(work_dir) / CACHE_DIR
        self.calls = ModelCalls(config, CallCache(root), Counters(config.stages))
        stages = set(config.stages)
        if stages & {"rewrite", "counterfactual", "paraphrase"}:
            self.calls.backend("llm")
        if "counterfactual" in stages:
            self.calls.backend("vlm")
        self.judge = None
        if "temporal_clip" in stages and config.clip_labeller == "judge":
            self.judge = make_judge(config, self.calls)

    def _frames(self, ep: Episode) -> tuple[np.ndarray, float]:
        start = ep.video_start or 0.0
        end = ep.video_end if ep.video_end is not None else video.probe(ep.video).duration
        frames = video.sample_frames(
            ep.video,
            num_frames=self.config.num_frames,
            start=ep.video_start,
            end=ep.video_end,
            max_side=self.config.max_side,
        )
        return frames, len(frames) / max(end - start, 1e-6)

    def _stage(self, stage: str, make: Callable[[], list[Episode]]) -> list[Episode]:
        try:
            return make()
        except StageError:  # counted where it happened; a re-run asks again
            return []
        except video.VideoDecodeError as exc:  # the builder skips (and reports) the video itself
            self.calls.counters.error(stage, str(exc))
            return []

    def relabel_episode(self, ep: Episode) -> list[Episode]:
        """``ep`` (rewritten where the rewrite succeeded) and the rows derived from it."""
        config, counters = self.config, self.calls.counters
        if ep.augmentation not in SOURCE_AUGMENTATIONS:
            return [ep]
        for stage in config.stages:
            counters.add(stage, "episodes")
        if "rewrite" in config.stages:
            try:
                ep = rewrite(ep, self.calls)
            except StageError:
                # Rows derived now would quote the unrewritten task and differ from a complete run's.
                return [ep]
        out = [ep]
        success = ep.reward == rubric.MAX_SCORE  # counterfactuals and clips need a finished task
        if "counterfactual" in config.stages and success:

            def make_counterfactuals() -> list[Episode]:
                frames, fps = self._frames(ep)
                return counterfactuals(ep, self.calls, frames, fps, config.max_retries)

            out += self._stage("counterfactual", make_counterfactuals)
        if "paraphrase" in config.stages:
            out += self._stage("paraphrase", lambda: paraphrases(ep, self.calls, config.paraphrases))
        if "temporal_clip" in config.stages and success:
            out += self._stage("temporal_clip", lambda: temporal_clips(ep, self.calls, config, self.judge))
        return out

    def __call__(
        self, episodes: Sequence[Episode], work_dir: str | Path
    ) -> tuple[list[Episode], list[Skip], dict[str, Any]]:
        self._prepare(Path(work_dir))
        episodes = list(episodes)
        with ThreadPoolExecutor(max_workers=self.config.workers) as pool:
            results = list(
                tqdm(
                    pool.map(self.relabel_episode, episodes),
                    total=len(episodes),
                    desc="relabeling",
                    unit="ep",
                    leave=False,
                    disable=not self.progress,
                )
            )
        out: list[Episode] = []
        seen: set[str] = set()
        for row in (row for rows in results for row in rows):
            if row.id not in seen:
                seen.add(row.id)
                out.append(row)
        return out, [], {"relabel": self.report(episodes, out)}

    def report(self, episodes: Sequence[Episode], out: Sequence[Episode]) -> dict[str, Any]:
        """The ``relabel`` report section (also ``relabel_report.json``)."""
        models = {"vlm": self._name("vlm"), "llm": self._name("llm")}
        if self.judge is not None:
            models["judge"] = self.judge.name
        passed = sum(1 for ep in episodes if ep.augmentation not in SOURCE_AUGMENTATIONS)
        return {
            "stages": self.calls.counters.stages(),
            "models": models,
            "prompt_versions": dict(prompts.VERSIONS),
            "config": self.config.describe(),
            "cache_dir": str(self.calls.cache.root),
            **_rows_sections(len(episodes), passed, out),
            "errors": self.calls.counters.errors(),
        }

    def _name(self, role: str) -> str:
        loaded = self.calls.loaded()
        if role in loaded:
            return loaded[role]
        spec = self.config.vlm if role == "vlm" else self.config.llm
        if isinstance(spec, (list, tuple)):
            return ",".join(str(s) for s in spec)
        return spec if isinstance(spec, str) else getattr(spec, "name", repr(spec))


def _rows_sections(inputs: int, passed: int, out: Sequence[Episode]) -> dict[str, Any]:
    """The report's ``rows``, ``by_augmentation`` and ``reward_histogram`` for the rows written."""
    histogram: dict[str, Counter[str]] = defaultdict(Counter)
    for row in out:
        histogram[row.source][str(row.reward)] += 1
    return {
        "rows": {"input": inputs, "output": len(out), "added": len(out) - inputs, "passed_through": passed},
        "by_augmentation": dict(sorted(Counter(r.augmentation for r in out).items())),
        "reward_histogram": {s: dict(sorted(c.items())) for s, c in sorted(histogram.items())},
    }


def merge_reports(parts: Sequence[dict[str, Any]], out: Sequence[Episode]) -> dict[str, Any]:
    """One ``relabel`` report section from the sections of runs over disjoint shares of the episodes
    (the tasks of a distributed build), ``out`` being every row they wrote, in order.

    Counters add up; the models, prompt versions, settings and cache are the first part's (every
    task runs the same recipe); the kept error messages are the first ones, in task order.

    Args:
        parts: each task's ``relabel`` section (`Relabeler.report`), in task order.
        out: the rows of all tasks, in order.
    """
    if not parts:
        raise ValueError("no relabel report to merge")
    stages: dict[str, Counter[str]] = defaultdict(Counter)
    errors: list[str] = []
    for part in parts:
        for stage, counts in part["stages"].items():
            stages[stage].update(counts)
        errors += [e for e in part["errors"] if e not in errors]
    first = parts[0]
    return {
        "stages": {s: {k: c.get(k, 0) for k in COUNTERS} for s, c in stages.items()},
        "models": first["models"],
        "prompt_versions": first["prompt_versions"],
        "config": first["config"],
        "cache_dir": first["cache_dir"],
        **_rows_sections(
            sum(p["rows"]["input"] for p in parts), sum(p["rows"]["passed_through"] for p in parts), out
        ),
        "errors": errors[:MAX_ERRORS_KEPT],
    }
