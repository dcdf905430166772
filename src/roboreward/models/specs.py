"""One parser for the model specs that commands take (`roboreward bench --model`, relabel recipes, ...).

A spec names a model and how to reach it:

- ``hf:PATH_OR_ID`` (or, where a command allows it, a bare folder or Hub id): a local transformers
  model, scored with `roboreward.RewardModel` or run by relabeling's local backend;
- ``generate:PATH_OR_ID``: the same, but it answers in free text, which is parsed;
- ``openai:URL#model-name``: an OpenAI-compatible chat endpoint, answering in text; several endpoints
  serving the same model, comma-separated (each may repeat ``openai:``), form a pool;
- ``openai+logprobs:URL#model-name``: the same endpoints scored like a local checkpoint: the
  distribution over the five scores from the top log-probabilities of the token after a prefilled
  ``ANSWER: `` (vLLM, SGLang; `roboreward.models.served`), text when the server gives none;
- ``http://HOST:PORT`` (or ``https://``): a ``roboreward serve`` server (`roboreward.models.remote`);
- ``predictions:FILE.jsonl``: someone else's outputs;
- ``baseline:constant-N`` (N in 1..5) or ``baseline:random``: reference rows;
- ``scripted:package.module:callable``: a Python function, for tests and rule-based relabelers.

Each command says which kinds it takes; `parse_model_spec` checks the form (nothing is loaded) and
raises ValueError naming the spec.

    >>> parse_model_spec("openai:http://127.0.0.1:8000/v1#Qwen/Qwen2.5-VL-7B-Instruct").endpoints
    (('http://127.0.0.1:8000/v1', 'Qwen/Qwen2.5-VL-7B-Instruct'),)
    >>> parse_model_spec("baseline:constant-5").target
    'constant-5'
    >>> parse_model_spec("http://127.0.0.1:8000/").kind
    'serve'
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

__all__ = ["KINDS", "SCORER_KINDS", "SERVED_KINDS", "SPEC_FORMS", "ModelSpec", "parse_model_spec"]

Kind = Literal["hf", "generate", "openai", "openai+logprobs", "serve", "predictions", "baseline", "scripted"]

#: The form of each kind, for error messages and help texts.
SPEC_FORMS: dict[str, str] = {
    "hf": "hf:PATH_OR_ID",
    "generate": "generate:PATH_OR_ID",
    "openai": "openai:URL#model-name",
    "openai+logprobs": "openai+logprobs:URL#model-name",
    "serve": "http://HOST:PORT (a roboreward serve URL)",
    "predictions": "predictions:FILE.jsonl",
    "baseline": "baseline:constant-N or baseline:random",
    "scripted": "scripted:package.module:callable",
}
KINDS: tuple[str, ...] = tuple(SPEC_FORMS)
#: The kinds that name OpenAI-compatible endpoints.
SERVED_KINDS = ("openai", "openai+logprobs")
#: The kinds that are reward models (`roboreward.models.load_reward_model` makes them).
SCORER_KINDS = ("hf", "openai", "openai+logprobs", "serve")

_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")
_BASELINE = re.compile(r"constant-[1-5]|random")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec.

    Args:
        spec: the spec as written.
        kind: one of `KINDS`.
        target: the path or Hub id (``hf``, ``generate``), the server URL (``serve``), file
            (``predictions``), ``constant-N`` or ``random`` (``baseline``), ``module:callable``
            (``scripted``); for ``openai`` and ``openai+logprobs`` the first endpoint's model name.
        endpoints: ``(url, model)`` of each endpoint of an ``openai`` or ``openai+logprobs`` spec.
    """

    spec: str
    kind: Kind
    target: str
    endpoints: tuple[tuple[str, str], ...] = ()


def _forms(kinds: Collection[str], bare: bool) -> str:
    forms = (["a checkpoint folder", "a Hub id"] if bare else []) + [
        SPEC_FORMS[k] for k in KINDS if k in kinds
    ]
    return forms[0] if len(forms) == 1 else ", ".join(forms[:-1]) + " or " + forms[-1]


def _endpoints(rest: str, spec: str, kind: str) -> tuple[tuple[str, str], ...]:
    endpoints = []
    for member in rest.split(","):
        url, sep, model = member.strip().removeprefix(kind + ":").partition("#")
        if not sep or not model.strip():
            raise ValueError(
                f"an OpenAI-compatible endpoint is {kind}:URL#model-name, got {member.strip()!r}"
            )
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"endpoint URL must be http(s)://host[:port]/v1, got {url!r} in {spec!r}")
        endpoints.append((url, model.strip()))
    return tuple(endpoints)


def parse_model_spec(spec: str, kinds: Collection[str] = KINDS, bare: bool = False) -> ModelSpec:
    """Check and split a model spec.

    Args:
        spec: the spec string.
        kinds: the kinds the caller takes (a spec of another kind is an error listing these).
        bare: whether a string with no kind prefix is a checkpoint (``hf``): it must then be an
            existing folder or look like a Hub id (``org/name``).

    Raises ValueError naming the spec when its form is wrong.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a model spec is a non-empty string ({_forms(kinds, bare)}), got {spec!r}")
    spec = spec.strip()
    if spec.startswith(("http://", "https://")):  # a roboreward serve URL
        if "serve" not in kinds:
            raise ValueError(
                f"a roboreward serve URL cannot be used here ({spec!r}); use {_forms(kinds, bare)}"
            )
        if not re.fullmatch(r"https?://[^\s/#,]+(/[^\s#,]*)?", spec):
            raise ValueError(f"a roboreward serve URL is http(s)://HOST:PORT, got {spec!r}")
        return ModelSpec(spec, "serve", spec.rstrip("/"))
    kind, sep, rest = spec.partition(":")
    if not sep or kind not in KINDS:
        if bare and (os.path.isdir(spec) or _HUB_ID.fullmatch(spec)):
            return ModelSpec(spec, "hf", spec)
        if sep and re.fullmatch(r"[a-z][\w+-]*", kind) and not rest.startswith(("/", "\\")):
            raise ValueError(f"unknown model kind {kind!r} in {spec!r}: use {_forms(kinds, bare)}")
        raise ValueError(f"model spec must be {_forms(kinds, bare)}, got {spec!r}")
    if kind not in kinds:
        raise ValueError(f"a {kind}: model cannot be used here ({spec!r}); use {_forms(kinds, bare)}")
    rest = rest.strip()
    if not rest:
        raise ValueError(f"model spec must be {_forms(kinds, bare)}, got {spec!r} (nothing after {kind}:)")
    if kind in SERVED_KINDS:
        endpoints = _endpoints(rest, spec, kind)
        return ModelSpec(spec, kind, endpoints[0][1], endpoints)  # type: ignore[arg-type]
    if kind == "baseline" and not _BASELINE.fullmatch(rest):
        raise ValueError(f"unknown baseline {spec!r}: use baseline:constant-N (N in 1..5) or baseline:random")
    if kind == "scripted":
        module_name, colon, attr = rest.rpartition(":")
        if not colon or not module_name or not attr:
            raise ValueError(f"a scripted model is scripted:package.module:callable, got {spec!r}")
    return ModelSpec(spec, kind, rest)  # type: ignore[arg-type]
