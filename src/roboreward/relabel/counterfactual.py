"""Counterfactual relabeling ("inverse HER"): the same successful video, new instructions it fails.

For an episode with reward 5:

1. the VLM describes the scene, the visible objects and their final state from sampled frames;
2. the LLM proposes failure modes forming a strict ladder of rubric levels 1 < 2 < 3 < 4 (5 is the
   true task), about object identity, relations and placement, and writes one instruction per level;
   the answer must be exactly those levels, in order, with distinct instructions that are not the
   true task (`schema.parse_ladder`), or it is rejected whole;
3. the VLM answers yes/no: is the video a plausible outcome at that level for that instruction?
   "yes" keeps the rung; "no" sends the level back to step 2.

Step 2 is asked at most ``1 + max_retries`` times per episode; each retry names what was rejected
(and keeps the accepted rungs), so it is a new request. Levels still missing then are dropped and
counted. Each row: ``augmentation`` ``counterfactual``, ``reward`` = its level, the source's video,
group and ``original_task``, and ``provenance["counterfactual"]`` with the level, the failure mode,
the checker's verdict, the attempt, the true task, the model ids and prompt versions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from roboreward.episode import Episode
from roboreward.relabel import prompts, schema
from roboreward.relabel.backends import published_name
from roboreward.relabel.calls import ModelCalls

__all__ = ["counterfactuals"]

STAGE = "counterfactual"


def _check(calls: ModelCalls, proposal: dict[str, Any], frames: np.ndarray, fps: float) -> bool | None:
    prompt = prompts.check(proposal["instruction"], proposal["level"], proposal["failure"])
    return calls.ask_valid("check", STAGE, calls.backend("vlm"), prompt, schema.parse_verdict, frames, fps)


def counterfactuals(
    ep: Episode, calls: ModelCalls, frames: np.ndarray, fps: float, max_retries: int
) -> list[Episode]:
    """The accepted counterfactual rows of a successful episode, lowest level first.

    Raises StageError when a model gives no answer (then no row is made for this episode).
    """
    vlm, llm = calls.backend("vlm"), calls.backend("llm")
    needed = list(schema.COUNTERFACTUAL_LEVELS)
    scene = calls.ask_valid("scene", STAGE, vlm, prompts.scene(ep.task), schema.parse_scene, frames, fps)
    if scene is None:
        calls.counters.add(STAGE, "dropped", len(needed))
        return []
    accepted: dict[int, dict[str, Any]] = {}
    rejected: list[dict[str, Any]] = []
    feedback = ""
    for attempt in range(max_retries + 1):
        if attempt:
            calls.counters.add(STAGE, "retries")
        prompt = prompts.ladder(
            ep.task, scene, needed, {lv: a["instruction"] for lv, a in accepted.items()}, rejected
        )
        if feedback:
            prompt = prompts.retry(prompt, feedback, attempt)
        forbidden = [ep.task, ep.original_task or ep.task]
        forbidden += [a["instruction"] for a in accepted.values()] + [r["instruction"] for r in rejected]
        proposals = schema.parse_ladder(calls.ask("ladder", STAGE, llm, prompt), needed, forbidden)
        if isinstance(proposals, schema.Rejected):
            calls.counters.add(STAGE, proposals.kind)
            feedback = proposals.reason
            continue
        feedback = ""
        calls.counters.add(STAGE, "proposed", len(proposals))
        for proposal in proposals:
            verdict = _check(calls, proposal, frames, fps)
            if verdict:
                accepted[proposal["level"]] = {**proposal, "attempt": attempt}
                calls.counters.add(STAGE, "accepted")
                continue
            if verdict is False:
                calls.counters.add(STAGE, "rejected_by_check")
            rejected.append({"level": proposal["level"], "instruction": proposal["instruction"]})
        needed = [level for level in needed if level not in accepted]
        if not needed:
            break
    calls.counters.add(STAGE, "dropped", len(needed))
    versions = {k: prompts.VERSIONS[k] for k in ("scene", "ladder", "check")}
    rows = []
    for level in sorted(accepted):
        proposal = accepted[level]
        info = {
            "level": level,
            "failure": proposal["failure"],
            "check": "yes",
            "attempt": proposal["attempt"],
            "true_task": ep.task,
            "final_state": scene["final_state"],
            "vlm": published_name(vlm),
            "llm": published_name(llm),
            "versions": versions,
        }
        rows.append(
            ep.replace(
                task=proposal["instruction"],
                reward=level,
                progress=None,
                augmentation="counterfactual",
                provenance={**ep.provenance, STAGE: info},
            )
        )
    return rows
