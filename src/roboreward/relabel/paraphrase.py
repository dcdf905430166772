"""Paraphrases: meaning-preserving variants of a task (synonyms, syntax), with the same reward.

One row per usable paraphrase (at most ``paraphrases`` per episode), ``augmentation`` ``paraphrase``,
``provenance["paraphrase"]`` with its index, the model and the prompt version. Items that repeat
the task or each other, or are not text, are counted as invalid and skipped.
"""

from __future__ import annotations

from roboreward.episode import Episode
from roboreward.relabel import prompts, schema
from roboreward.relabel.backends import published_name
from roboreward.relabel.calls import ModelCalls

__all__ = ["paraphrases"]

STAGE = "paraphrase"


def paraphrases(ep: Episode, calls: ModelCalls, count: int) -> list[Episode]:
    """Up to ``count`` paraphrase rows of ``ep``; raises StageError when the model gives no answer."""
    llm = calls.backend("llm")
    result = calls.ask_valid(
        STAGE,
        STAGE,
        llm,
        prompts.paraphrase(ep.task, count),
        lambda answer: schema.parse_paraphrases(answer, ep.task, count),
    )
    if result is None:
        calls.counters.add(STAGE, "dropped", count)
        return []
    texts, bad = result
    calls.counters.add(STAGE, "proposed", len(texts) + bad)
    calls.counters.add(STAGE, "invalid", bad)
    rows = []
    for index, text in enumerate(texts):
        info = {"index": index, "model": published_name(llm), "version": prompts.VERSIONS[STAGE]}
        rows.append(
            ep.replace(task=text, augmentation="paraphrase", provenance={**ep.provenance, STAGE: info})
        )
    calls.counters.add(STAGE, "accepted", len(rows))
    calls.counters.add(STAGE, "dropped", count - len(rows))
    return rows
