"""What a relabeling model must answer, checked before anything becomes a row.

Every stage asks for one JSON object (`roboreward.relabel.prompts`). A parser here takes the raw
answer and returns either the validated value or a `Rejected` saying why: ``unparseable`` (no JSON
object in it) or ``invalid`` (an object, but not the one asked for: a missing key, a wrong type, a
level outside 1..4, levels out of order or repeated, duplicate instructions, the true task again,
empty text). The reason is written by us, never copied from the model, so it can go back into a
retry prompt as feedback.

    >>> parse_verdict('Sure. ```json\\n{"plausible": "yes"}\\n```')
    True
    >>> parse_ladder('{"failure_modes": [{"level": 2, "failure": "f", "instruction": "a"}]}', [1])
    Rejected(kind='invalid', reason='entry 1 has level 2, but level 1 was asked for here')
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "COUNTERFACTUAL_LEVELS",
    "MAX_TEXT_CHARS",
    "Rejected",
    "extract_json",
    "normalise",
    "parse_ladder",
    "parse_paraphrases",
    "parse_rewrite",
    "parse_scene",
    "parse_verdict",
]

#: The rubric levels a counterfactual instruction can have: 5 is the true task.
COUNTERFACTUAL_LEVELS = (1, 2, 3, 4)
#: Longer instructions are not task text but a model that kept talking.
MAX_TEXT_CHARS = 400


@dataclass(frozen=True)
class Rejected:
    """A model answer that cannot be used: ``kind`` is ``unparseable`` or ``invalid``."""

    kind: str
    reason: str


_FENCE = re.compile(r"```(?:json)?", re.IGNORECASE)


def extract_json(text: Any) -> dict[str, Any] | None:
    """The first JSON object in a model's answer (code fences and prose around it allowed), or None.

    >>> extract_json('Here it is: {"task": "open the drawer"} Hope this helps!')
    {'task': 'open the drawer'}
    """
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


def normalise(text: str) -> str:
    """Task text as compared for equality: case, spacing and end punctuation do not count."""
    return " ".join(text.lower().split()).rstrip(".!;, ")


def _text(value: Any, what: str) -> str | Rejected:
    if not isinstance(value, str):
        return Rejected("invalid", f"{what} must be a string, got {type(value).__name__}")
    text = " ".join(value.split())
    if not text:
        return Rejected("invalid", f"{what} is empty")
    if len(text) > MAX_TEXT_CHARS:
        return Rejected("invalid", f"{what} is longer than {MAX_TEXT_CHARS} characters")
    return text


def _object(answer: Any) -> dict[str, Any] | Rejected:
    data = extract_json(answer)
    return Rejected("unparseable", "the answer holds no JSON object") if data is None else data


def parse_rewrite(answer: Any) -> str | Rejected:
    """``{"task": "..."}`` -> the rewritten task."""
    data = _object(answer)
    if isinstance(data, Rejected):
        return data
    if "task" not in data:
        return Rejected("invalid", 'the key "task" is missing')
    return _text(data["task"], '"task"')


def parse_scene(answer: Any) -> dict[str, Any] | Rejected:
    """``{"objects": ["..."], "final_state": "..."}`` -> the same, cleaned."""
    data = _object(answer)
    if isinstance(data, Rejected):
        return data
    objects = data.get("objects")
    if not isinstance(objects, list) or not objects:
        return Rejected("invalid", '"objects" must be a non-empty list of strings')
    names = [" ".join(o.split()) for o in objects if isinstance(o, str) and o.strip()]
    if len(names) != len(objects):
        return Rejected("invalid", '"objects" must hold only non-empty strings')
    final_state = _text(data.get("final_state"), '"final_state"')
    if isinstance(final_state, Rejected):
        return final_state
    return {"objects": names, "final_state": final_state}


def parse_ladder(answer: Any, levels: Sequence[int], forbidden: Iterable[str] = ()) -> list[dict] | Rejected:
    """``{"failure_modes": [{"level", "failure", "instruction"}, ...]}`` -> the entries, validated.

    There must be exactly one entry per level in ``levels``, in that (increasing) order, each with
    an integer level, a non-empty failure and a non-empty instruction; the instructions must differ
    from one another and from every text in ``forbidden`` (the true task, instructions accepted or
    rejected before).
    """
    data = _object(answer)
    if isinstance(data, Rejected):
        return data
    modes = data.get("failure_modes")
    if not isinstance(modes, list):
        return Rejected("invalid", '"failure_modes" must be a list')
    if len(modes) != len(levels):
        return Rejected("invalid", f'"failure_modes" must have {len(levels)} entries, got {len(modes)}')
    banned = {normalise(t) for t in forbidden}
    seen: dict[str, int] = {}
    out = []
    for index, (wanted, mode) in enumerate(zip(levels, modes, strict=True), start=1):
        if not isinstance(mode, dict):
            return Rejected("invalid", f"entry {index} must be an object")
        level = mode.get("level")
        if isinstance(level, bool) or not isinstance(level, int):
            return Rejected("invalid", f"entry {index} must have an integer level")
        if level not in COUNTERFACTUAL_LEVELS:
            return Rejected("invalid", f"entry {index} has level {level}, outside 1..4")
        if level != wanted:
            return Rejected(
                "invalid", f"entry {index} has level {level}, but level {wanted} was asked for here"
            )
        failure = _text(mode.get("failure"), f"the failure of level {level}")
        instruction = _text(mode.get("instruction"), f"the instruction of level {level}")
        for value in (failure, instruction):
            if isinstance(value, Rejected):
                return value
        key = normalise(instruction)
        if key in seen:
            return Rejected("invalid", f"levels {seen[key]} and {level} have the same instruction")
        if key in banned:
            return Rejected(
                "invalid", f"the instruction of level {level} repeats the true task or an earlier instruction"
            )
        seen[key] = level
        out.append({"level": level, "failure": failure, "instruction": instruction})
    return out


def parse_verdict(answer: Any) -> bool | Rejected:
    """``{"plausible": "yes" | "no"}`` -> True / False (JSON booleans are read too)."""
    data = _object(answer)
    if isinstance(data, Rejected):
        return data
    verdict = data.get("plausible")
    if isinstance(verdict, bool):
        return verdict
    if isinstance(verdict, str) and verdict.strip().lower() in ("yes", "no"):
        return verdict.strip().lower() == "yes"
    return Rejected("invalid", '"plausible" must be "yes" or "no"')


def parse_paraphrases(answer: Any, task: str, count: int) -> tuple[list[str], int] | Rejected:
    """``{"paraphrases": ["...", ...]}`` -> (up to ``count`` usable paraphrases, how many were bad).

    A paraphrase is bad when it is not a non-empty string, repeats the task or an earlier
    paraphrase. An answer with no usable paraphrase at all is rejected.
    """
    data = _object(answer)
    if isinstance(data, Rejected):
        return data
    items = data.get("paraphrases")
    if not isinstance(items, list) or not items:
        return Rejected("invalid", '"paraphrases" must be a non-empty list of strings')
    seen, out, bad = {normalise(task)}, [], 0
    for item in items:
        if len(out) == count:
            break
        text = _text(item, "a paraphrase")
        if isinstance(text, Rejected) or normalise(text) in seen:
            bad += 1
            continue
        seen.add(normalise(text))
        out.append(text)
    if not out:
        return Rejected("invalid", "no paraphrase differs from the instruction and from the others")
    return out, bad
