"""Task rewrite: an LLM normalises an instruction's grammar and vocabulary and keeps its meaning.

The paper cleans every task, so the rewritten task replaces the row's task (no second row for the
same rollout and label): the row's ``augmentation`` becomes ``rewrite``, ``original_task`` keeps the
source's text and ``provenance["rewrite"]`` names the model and prompt version. A rewrite that gives
the same text back leaves the row an ``original``; a rewrite that is never valid leaves it as it was.
The rows of the later stages are derived from the rewritten task.
"""

from __future__ import annotations

from roboreward.episode import Episode
from roboreward.relabel import prompts, schema
from roboreward.relabel.backends import published_name
from roboreward.relabel.calls import ModelCalls

__all__ = ["rewrite"]

STAGE = "rewrite"


def rewrite(ep: Episode, calls: ModelCalls) -> Episode:
    """``ep`` with its task rewritten; raises StageError when the model gives no answer."""
    llm = calls.backend("llm")
    task = calls.ask_valid(STAGE, STAGE, llm, prompts.rewrite(ep.task), schema.parse_rewrite)
    if task is None:
        calls.counters.add(STAGE, "dropped")
        return ep
    calls.counters.add(STAGE, "proposed")
    if task == ep.task:  # already clean: the row stays what it was
        return ep
    calls.counters.add(STAGE, "accepted")
    provenance = {
        **ep.provenance,
        "rewrite": {"model": published_name(llm), "version": prompts.VERSIONS[STAGE]},
    }
    return ep.replace(task=task, augmentation="rewrite", provenance=provenance)
