"""`load_reward_model`: the one place a model spec becomes a reward model (`RewardScorer`).

    >>> load_reward_model("baseline:random")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: a baseline: model cannot be used here ('baseline:random'); use a checkpoint folder, ...

Every consumer of a reward model (bench, annotate, curve, score, serve, the RL wrappers, relabeling's
clip judge, the Space) calls it, so each takes every kind:

- a checkpoint folder or Hub id (or ``hf:PATH_OR_ID``): `roboreward.models.local.RewardModel`;
- ``openai+logprobs:URL#model`` (endpoints comma-separated for a pool) or ``openai:URL#model``:
  `roboreward.models.served.ServedRewardModel`;
- ``http://HOST:PORT``: a ``roboreward serve`` server, `roboreward.models.remote.RewardClient`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from roboreward import rubric
from roboreward.models.protocol import RewardScorer
from roboreward.models.settings import InferenceSettings
from roboreward.models.specs import SCORER_KINDS, SERVED_KINDS, parse_model_spec

__all__ = ["load_configured", "load_reward_model"]


def load_reward_model(
    spec: str | os.PathLike[str] | RewardScorer,
    *,
    device: str | None = None,
    dtype: str | None = None,
    prompt: str | None = None,
    num_frames: int | None = None,
    fps: float | None = None,
    max_side: int | None = None,
    cameras: Sequence[str] | None = None,
    settings: InferenceSettings | None = None,
    batch_size: int = 8,
    concurrency: int = 8,
    timeout: float = 120.0,
    retries: int = 3,
    video_input: str = "auto",
    token: str | None = None,
) -> RewardScorer:
    """The reward model a spec names, ready to score (a local checkpoint is loaded here).

    Args:
        spec: a checkpoint folder or Hub id (``hf:`` optional), ``openai+logprobs:URL#model`` /
            ``openai:URL#model`` (a pool: comma-separated), ``http://HOST:PORT`` (``roboreward
            serve``), or an already made reward model (a `RewardScorer`, or any object with its
            ``score``: returned as it is).
        device, dtype: where and in what precision a local checkpoint runs (None: cuda with
            bfloat16 when available, else cpu with float32). Not used by the other kinds.
        prompt, num_frames, fps, max_side: override the model's own inference settings (a local
            checkpoint's settings file, a known release's published settings, else the toolkit's
            defaults), with a warning. A ``roboreward serve`` server scores with its own settings:
            giving one of these with its URL is an error.
        cameras: override the cameras the model takes in one prompt (`InferenceSettings.cameras`;
            several: each episode is a `roboreward.models.views.Views`).
        settings: use these settings instead of looking the model's up (local and served kinds).
        batch_size: episodes per forward pass of a local checkpoint.
        concurrency: requests in flight at once to served endpoints or a ``roboreward serve`` server.
        timeout: seconds per request (served kinds).
        retries: retries of a failed request per endpoint (``openai`` / ``openai+logprobs`` pools).
        video_input: how frames reach an OpenAI-compatible server: ``auto``, ``video`` or ``frames``.
        token: the bearer token of a ``roboreward serve`` server (None: ``$ROBOREWARD_SERVE_TOKEN``).

    Raises ValueError naming the spec for a spec of another kind (a baseline, a predictions file) or
    a bad form, FileNotFoundError for a checkpoint path that is not a folder.
    """
    if isinstance(spec, RewardScorer):
        return spec
    if not isinstance(spec, (str, os.PathLike)):
        if callable(getattr(spec, "score", None)):
            return spec  # a reward model by its methods (a wrapper, a test double)
        raise TypeError(f"a reward model or its spec (a string) is needed, got {type(spec).__name__}")
    if prompt is not None:
        rubric.get_preset(prompt)  # an unknown preset fails before anything loads
    parsed = parse_model_spec(os.fspath(spec), kinds=SCORER_KINDS, bare=True)
    overrides = {
        "prompt": prompt,
        "num_frames": num_frames,
        "fps": fps,
        "max_side": max_side,
        "cameras": tuple(cameras) if cameras else None,
    }
    if parsed.kind in SERVED_KINDS:
        from roboreward.models.served import ServedRewardModel

        return ServedRewardModel.from_spec(
            parsed.spec,
            settings=settings,
            concurrency=concurrency,
            timeout=timeout,
            retries=retries,
            video_input=video_input,
            **{k: v for k, v in overrides.items() if v is not None},
        )
    if parsed.kind == "serve":
        given = [k for k, v in overrides.items() if v is not None] + (["settings"] if settings else [])
        if given:
            raise ValueError(
                f"{parsed.spec} is a roboreward serve server, which scores with its own model's settings: "
                f"{', '.join(given)} cannot be changed from here (restart the server with them)"
            )
        from roboreward.models.remote import RewardClient

        return RewardClient(parsed.target, timeout=timeout, concurrency=concurrency, token=token)
    from roboreward.models.local import RewardModel

    return RewardModel.from_pretrained(
        parsed.target, device=device, dtype=dtype, settings=settings, batch_size=batch_size, **overrides
    )


#: The `load_reward_model` settings a command's config may carry, under its field name.
_OPTION_FIELDS = {
    "device": "device",
    "dtype": "dtype",
    "prompt": "prompt",
    "num_frames": "num_frames",
    "fps": "fps",
    "max_side": "max_side",
    "batch_size": "batch_size",
    "concurrency": "concurrency",
    "request_timeout": "timeout",
    "video_input": "video_input",
}


def load_configured(config: Any, spec: str | None = None) -> RewardScorer:
    """`load_reward_model` for a command's config: its ``model`` (or ``spec``) with the settings among
    its fields (``device``, ``dtype``, ``prompt``, ``num_frames``, ``fps``, ``max_side``,
    ``batch_size``, ``concurrency``, ``request_timeout``, ``video_input``) that are not None.

    Args:
        config: a command's config dataclass (``AnnotateConfig``, ``CurveConfig``, ``ServeConfig``, ...).
        spec: the model spec (None: ``config.model``).
    """
    options = {
        name: getattr(config, field)
        for field, name in _OPTION_FIELDS.items()
        if getattr(config, field, None) is not None
    }
    return load_reward_model(config.model if spec is None else spec, **options)
