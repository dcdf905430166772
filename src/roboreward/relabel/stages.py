"""The relabeling stages: task rewrite, counterfactual negatives, paraphrases and temporal clips.

`Relabeler` is the builder's ``augment`` hook (``(episodes, work_dir) -> (episodes, skips, report)``):
it returns every input episode (rewritten where the rewrite succeeded) followed by the rows it
derived, each keeping its source rollout's ``group`` so it lands in the same split.

Counterfactual relabeling ("inverse HER"), per successful episode:

1. the VLM describes the scene and the final state from sampled frames (JSON);
2. the LLM proposes failure modes forming a strict ladder of rubric levels 1 < 2 < 3 < 4 and writes
   one instruction per level (JSON, validated: exactly the levels asked for, in order, distinct,
   none equal to the true task);
3. the VLM checks each (video, instruction, level): "yes" keeps it; "no" sends the level back to
   the LLM, with the rejected instructions, up to ``max_retries`` times; then it is dropped.

Every model call is cached on disk (`CallCache`), so a re-run, or a run killed part way, ends with
exactly the rows an uninterrupted run gives. Model output that is not the JSON asked for is counted
and never becomes a row.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from roboreward import rubric, video
from roboreward.episode import Episode, Skip
from roboreward.relabel import prompts
from roboreward.relabel.backends import DEFAULT_LLM, DEFAULT_VLM, parse_backend
from roboreward.relabel.cache import CallCache, call_key

__all__ = ["STAGES", "RelabelConfig", "Relabeler", "extract_json"]

STAGES = ("rewrite", "counterfactual", "paraphrase", "temporal_clip")
COUNTERS = (
    "episodes",
    "calls",
    "cache_hits",
    "proposed",
    "accepted",
    "rejected_by_check",
    "unparseable",
    "invalid",
    "dropped",
    "errors",
)


@dataclass
class RelabelConfig:
    """Which stages run, on which models, with which settings (a YAML recipe sets the same fields)."""

    vlm: Any = DEFAULT_VLM
    llm: Any = DEFAULT_LLM
    stages: list[str] = field(default_factory=lambda: list(STAGES))
    paraphrases: int = 2
    clip_fractions: list[float] = field(default_factory=lambda: [0.25, 0.5, 0.75])
    #: "map": the score of a clip is ``clip_scores[fraction]``; "judge": a reward model scores it.
    clip_labeller: str = "map"
    clip_scores: dict[float, int] = field(default_factory=lambda: {0.25: 2, 0.5: 3, 0.75: 4})
    judge: str | None = None
    max_retries: int = 2
    num_frames: int = 8
    max_side: int | None = 336
    workers: int = 4
    max_new_tokens: int = 512

    def __post_init__(self) -> None:
        if isinstance(self.stages, str):
            self.stages = [s.strip() for s in self.stages.split(",") if s.strip()]
        unknown = sorted(set(self.stages) - set(STAGES))
        if unknown or not self.stages:
            raise ValueError(f"stages must be among {STAGES}, got {self.stages}")
        self.clip_scores = {float(k): int(v) for k, v in self.clip_scores.items()}
        self.clip_fractions = [float(f) for f in self.clip_fractions]
        if any(not 0 < f < 1 for f in self.clip_fractions):
            raise ValueError(f"clip_fractions must lie in (0, 1), got {self.clip_fractions}")
        if self.clip_labeller not in ("map", "judge"):
            raise ValueError(f"clip_labeller must be 'map' or 'judge', got {self.clip_labeller!r}")
        if "temporal_clip" in self.stages and self.clip_labeller == "map":
            missing = [f for f in self.clip_fractions if f not in self.clip_scores]
            if missing or any(not 1 <= s <= 4 for s in self.clip_scores.values()):
                raise ValueError(
                    f"clip_scores must give a score 1..4 to every clip fraction, missing {missing}"
                )
        if self.clip_labeller == "judge" and not self.judge:
            raise ValueError("clip_labeller 'judge' needs a reward model path or id in `judge`")
        if self.max_retries < 0 or self.paraphrases < 1 or self.workers < 1 or self.num_frames < 1:
            raise ValueError(
                "max_retries >= 0, paraphrases >= 1, workers >= 1 and num_frames >= 1 are required"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RelabelConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown relabel settings {unknown}; known: {sorted(known)}")
        return cls(**data)

    def describe(self) -> dict[str, Any]:
        """The settings as JSON-ready values (a model object shows as its name)."""
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for key in ("vlm", "llm"):
            if not isinstance(out[key], str):
                out[key] = getattr(out[key], "name", repr(out[key]))
        out["clip_scores"] = {str(k): v for k, v in self.clip_scores.items()}
        return out


_FENCE = re.compile(r"```(?:json)?", re.IGNORECASE)


def extract_json(text: Any) -> dict[str, Any] | None:
    """The first JSON object in a model's answer (code fences and prose around it allowed), or None."""
    if not isinstance(text, str):
        return None
    text = _FENCE.sub("", text)
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _norm(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(".")


def _frames_digest(frames: np.ndarray | None) -> str:
    return "" if frames is None else hashlib.sha256(np.ascontiguousarray(frames).tobytes()).hexdigest()


class Relabeler:
    """The builder's augment hook running the configured stages; see the module docstring."""

    def __init__(self, config: RelabelConfig, cache_dir: str | Path | None = None):
        self.config = config
        self.cache_dir = cache_dir
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.counters: dict[str, Counter[str]] = {s: Counter() for s in config.stages}

    # -- models and calls ---------------------------------------------------------------------

    def _model(self, role: str) -> Any:
        with self._lock:
            if role not in self._models:
                spec = self.config.vlm if role == "vlm" else self.config.llm
                self._models[role] = parse_backend(spec)
            return self._models[role]

    def _count(self, stage: str, key: str, n: int = 1) -> None:
        with self._lock:
            self.counters[stage][key] += n

    def _call(
        self, stage: str, counter: str, role: str, prompt: str, frames: np.ndarray | None
    ) -> str | None:
        """A cached model call; None when the model could not be reached (counted, not cached)."""
        model = self._model(role)
        key = call_key(stage, model.name, prompts.VERSIONS[stage], prompt, _frames_digest(frames))
        cached = self.cache.get(key)
        if cached is not None:
            self._count(counter, "cache_hits")
            return cached
        self._count(counter, "calls")
        try:
            answer = model.complete(stage, prompt, frames, self.config.max_new_tokens)
        except Exception:  # a failed request is no answer: counted, and asked again on a re-run
            self._count(counter, "errors")
            return None
        self.cache.put(key, answer, {"stage": stage, "model": model.name, "version": prompts.VERSIONS[stage]})
        return answer

    def _frames(self, ep: Episode) -> np.ndarray:
        return video.sample_frames(
            ep.video,
            num_frames=self.config.num_frames,
            start=ep.video_start,
            end=ep.video_end,
            max_side=self.config.max_side,
        )

    # -- stages ---------------------------------------------------------------------------------

    def rewrite(self, ep: Episode) -> Episode:
        answer = self._call("rewrite", "rewrite", "llm", prompts.rewrite(ep.task), None)
        if answer is None:
            return ep
        data = extract_json(answer)
        if data is None:
            self._count("rewrite", "unparseable")
            return ep
        task = data.get("task")
        if not isinstance(task, str) or not task.strip():
            self._count("rewrite", "invalid")
            return ep
        self._count("rewrite", "accepted")
        if " ".join(task.split()) == ep.task:  # already clean: the row stays an original
            return ep
        provenance = {
            **ep.provenance,
            "rewrite": {"model": self._model("llm").name, "version": prompts.VERSIONS["rewrite"]},
        }
        return ep.replace(task=task, augmentation="rewrite", provenance=provenance)

    def _ladder(self, answer: str | None, needed: list[int], task: str) -> list[dict[str, Any]] | str | None:
        """Validated proposals, or "unparseable" / "invalid" / None (no answer)."""
        if answer is None:
            return None
        data = extract_json(answer)
        if data is None:
            return "unparseable"
        modes = data.get("failure_modes")
        if not isinstance(modes, list) or len(modes) != len(needed):
            return "invalid"
        seen: set[str] = set()
        out = []
        for wanted, mode in zip(needed, modes, strict=True):
            if not isinstance(mode, dict):
                return "invalid"
            level, instruction, failure = mode.get("level"), mode.get("instruction"), mode.get("failure")
            if isinstance(level, bool) or level != wanted:  # exactly the levels asked for, in order
                return "invalid"
            if not isinstance(instruction, str) or not instruction.strip() or not isinstance(failure, str):
                return "invalid"
            key = _norm(instruction)
            if key in seen or key == _norm(task):
                return "invalid"
            seen.add(key)
            out.append(
                {"level": wanted, "instruction": " ".join(instruction.split()), "failure": failure.strip()}
            )
        return out

    def _check(self, frames: np.ndarray, instruction: str, level: int) -> bool | None:
        answer = self._call("check", "counterfactual", "vlm", prompts.check(instruction, level), frames)
        if answer is None:
            return None
        data = extract_json(answer)
        verdict = data.get("plausible") if data else None
        if isinstance(verdict, str) and verdict.strip().lower() in ("yes", "no"):
            return verdict.strip().lower() == "yes"
        self._count("counterfactual", "unparseable")
        return None

    def counterfactual(self, ep: Episode, frames: np.ndarray) -> list[Episode]:
        stage = "counterfactual"
        answer = self._call("scene", stage, "vlm", prompts.scene(ep.task), frames)
        if answer is None:
            return []
        scene = extract_json(answer)
        if scene is None:
            self._count(stage, "unparseable")
            return []
        if not isinstance(scene.get("objects"), list) or not isinstance(scene.get("final_state"), str):
            self._count(stage, "invalid")
            return []
        needed, accepted, rejected = [1, 2, 3, 4], {}, []
        for attempt in range(self.config.max_retries + 1):
            prompt = prompts.ladder(ep.task, scene, needed)
            if rejected:  # a retry must differ from the cached attempt: name what was rejected
                prompt += "\nThese were rejected as implausible for this video; write different ones: "
                prompt += json.dumps(rejected)
            proposals = self._ladder(self._call("ladder", stage, "llm", prompt, None), needed, ep.task)
            if proposals is None:
                return self._rows(ep, accepted)
            if isinstance(proposals, str):
                self._count(stage, proposals)
                continue
            self._count(stage, "proposed", len(proposals))
            for proposal in proposals:
                if any(_norm(proposal["instruction"]) == _norm(a["instruction"]) for a in accepted.values()):
                    self._count(stage, "invalid")
                    continue
                verdict = self._check(frames, proposal["instruction"], proposal["level"])
                if verdict:
                    accepted[proposal["level"]] = {**proposal, "attempt": attempt}
                    self._count(stage, "accepted")
                else:
                    rejected.append(proposal["instruction"])
                    if verdict is False:
                        self._count(stage, "rejected_by_check")
            needed = [level for level in needed if level not in accepted]
            if not needed:
                break
        self._count(stage, "dropped", len(needed))
        return self._rows(ep, accepted)

    def _rows(self, ep: Episode, accepted: dict[int, dict[str, Any]]) -> list[Episode]:
        rows = []
        for level in sorted(accepted):
            proposal = accepted[level]
            provenance = {
                **ep.provenance,
                "counterfactual": {
                    "level": level,
                    "failure": proposal["failure"],
                    "check": "yes",
                    "attempt": proposal["attempt"],
                    "true_task": ep.task,
                    "vlm": self._model("vlm").name,
                    "llm": self._model("llm").name,
                    "versions": {k: prompts.VERSIONS[k] for k in ("scene", "ladder", "check")},
                },
            }
            rows.append(
                ep.replace(
                    task=proposal["instruction"],
                    reward=level,
                    progress=None,
                    augmentation="counterfactual",
                    provenance=provenance,
                )
            )
        return rows

    def paraphrase(self, ep: Episode) -> list[Episode]:
        answer = self._call(
            "paraphrase", "paraphrase", "llm", prompts.paraphrase(ep.task, self.config.paraphrases), None
        )
        if answer is None:
            return []
        data = extract_json(answer)
        if data is None:
            self._count("paraphrase", "unparseable")
            return []
        texts = data.get("paraphrases")
        if not isinstance(texts, list):
            self._count("paraphrase", "invalid")
            return []
        self._count("paraphrase", "proposed", len(texts))
        rows, seen = [], {_norm(ep.task)}
        for index, text in enumerate(texts[: self.config.paraphrases]):
            if not isinstance(text, str) or not text.strip() or _norm(text) in seen:
                self._count("paraphrase", "invalid")
                continue
            seen.add(_norm(text))
            provenance = {**ep.provenance, "paraphrase": {"index": index, "model": self._model("llm").name}}
            rows.append(ep.replace(task=text, augmentation="paraphrase", provenance=provenance))
        self._count("paraphrase", "accepted", len(rows))
        return rows

    def temporal_clips(self, ep: Episode) -> list[Episode]:
        start = ep.video_start or 0.0
        end = ep.video_end if ep.video_end is not None else video.probe(ep.video).duration
        rows = []
        for fraction in self.config.clip_fractions:
            clip_end = start + (end - start) * fraction
            if self.config.clip_labeller == "map":
                score, labeller = self.config.clip_scores[fraction], "fraction-map"
            else:
                score, labeller = self._judge(ep, start, clip_end), f"judge:{self.config.judge}"
            provenance = {**ep.provenance, "temporal_clip": {"fraction": fraction, "labeller": labeller}}
            rows.append(
                ep.replace(
                    video_start=start,
                    video_end=clip_end,
                    reward=score,
                    progress=None,
                    augmentation="temporal_clip",
                    provenance=provenance,
                )
            )
        self._count("temporal_clip", "accepted", len(rows))
        return rows

    def _judge(self, ep: Episode, start: float, end: float) -> int:
        with self._lock:
            if "judge" not in self._models:
                from roboreward.scoring import RewardModel

                self._models["judge"] = RewardModel.from_pretrained(
                    self.config.judge, num_frames=self.config.num_frames
                )
            judge = self._models["judge"]
        frames = video.sample_frames(ep.video, num_frames=self.config.num_frames, start=start, end=end)
        with self._lock:
            return judge.score(frames, ep.task, fps=len(frames) / max(end - start, 1e-6)).score

    # -- the hook -------------------------------------------------------------------------------

    def _one(self, ep: Episode) -> list[Episode]:
        stages = self.config.stages
        for stage in stages:
            self._count(stage, "episodes")
        if "rewrite" in stages:
            ep = self.rewrite(ep)
        out = [ep]
        success = ep.reward == rubric.MAX_SCORE
        try:
            if "counterfactual" in stages and success:
                out += self.counterfactual(ep, self._frames(ep))
            if "paraphrase" in stages:
                out += self.paraphrase(ep)
            if "temporal_clip" in stages and success:
                out += self.temporal_clips(ep)
        except video.VideoDecodeError:
            self._count(stages[0], "errors")  # the builder reports the video itself when it encodes it
        return out

    def __call__(
        self, episodes: Sequence[Episode], work_dir: str | Path
    ) -> tuple[list[Episode], list[Skip], dict]:
        self.cache = CallCache(self.cache_dir or Path(work_dir) / "relabel_cache")
        with ThreadPoolExecutor(max_workers=self.config.workers) as pool:
            results = list(pool.map(self._one, episodes))
        out = [row for rows in results for row in rows]
        histogram: dict[str, Counter[str]] = defaultdict(Counter)
        for row in out:
            histogram[row.source][str(row.reward)] += 1
        report = {
            "stages": {s: {k: self.counters[s].get(k, 0) for k in COUNTERS} for s in self.config.stages},
            "models": {"vlm": self._name("vlm"), "llm": self._name("llm")},
            "prompt_versions": dict(prompts.VERSIONS),
            "config": self.config.describe(),
            "rows": {"input": len(episodes), "output": len(out), "added": len(out) - len(episodes)},
            "by_augmentation": dict(sorted(Counter(r.augmentation for r in out).items())),
            "reward_histogram": {s: dict(sorted(c.items())) for s, c in sorted(histogram.items())},
        }
        return out, [], {"relabel": report}

    def _name(self, role: str) -> str:
        model = self._models.get(role)
        if model is not None:
            return model.name
        spec = self.config.vlm if role == "vlm" else self.config.llm
        return spec if isinstance(spec, str) else getattr(spec, "name", repr(spec))
