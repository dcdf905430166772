"""The inference settings a reward model was trained with, saved beside its weights and read everywhere.

A checkpoint is only scored correctly when it sees what it saw in training: the same prompt preset,
the same frames and resolution, the video in the same place. `roboreward.training.trainer` writes
`SETTINGS_FILE` (``roboreward_settings.json``) into every checkpoint it saves, as transformers saves
``preprocessor_config.json`` and ``generation_config.json``; `RewardModel`, ``roboreward score``,
``serve``, the Space, ``bench`` and the RL wrappers read it through `resolve_settings`, so nobody
passes frames or prompts by hand. An explicit argument still wins, with a warning naming both values.

Checkpoints without the file: the published RoboReward models (`KNOWN_SETTINGS`) get their published
settings (the ``release`` prompt, Qwen3-VL's own video sampling through ``qwen_vl_utils``); any other
model gets the toolkit's defaults and a one-line notice saying so.

    >>> settings = resolve_settings("teetone/RoboReward-4B")  # a known release: no download
    >>> settings.prompt, settings.sampler, settings.source
    ('release', 'qwen_vl_utils', 'known release teetone/RoboReward-4B')
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from roboreward import rubric
from roboreward.environ import hub_offline
from roboreward.models.views import checked_cameras

__all__ = [
    "DEFAULT_SETTINGS",
    "HELM_SETTINGS",
    "KNOWN_SETTINGS",
    "MAX_NUM_FRAMES",
    "SAMPLERS",
    "SETTINGS_FILE",
    "InferenceSettings",
    "load_settings",
    "resolve_settings",
    "save_settings",
    "served_settings",
]

logger = logging.getLogger("roboreward")

#: The file beside the weights that holds a checkpoint's `InferenceSettings`.
SETTINGS_FILE = "roboreward_settings.json"

#: How frames are picked and sized: ``toolkit`` (`num_frames` evenly, or one every 1/`fps` s, longer
#: side shrunk to `max_side`), ``qwen_vl_utils`` (Qwen-VL's own policy: `fps` frames a second,
#: between 4 and 768, an even count, resized to its pixel budget), which the released models used, or
#: ``processor`` (what a Qwen3-VL video processor's defaults pick from a video file handed to
#: ``apply_chat_template``, as HELM's Qwen-VL client does: int(2 fps x duration) frames, between 4
#: and 768, spread from the first to the last; full size, the processor resizing them itself).
SAMPLERS = ("toolkit", "qwen_vl_utils", "processor")

Sampler = Literal["toolkit", "qwen_vl_utils", "processor"]

#: The most frames one video may be sampled to (``num_frames``): Qwen-VL's own sampler never takes
#: more (``qwen_vl_utils``' FPS_MAX_FRAMES), and 100,000 frames of one episode took 14 GB.
MAX_NUM_FRAMES = 768

_FORMAT_VERSION = 1


@dataclass(frozen=True)
class InferenceSettings:
    """Everything about a reward model's input that is not in its processor: what it was trained on.

    Args:
        prompt: the prompt preset's name (`roboreward.rubric.PROMPT_PRESETS`).
        prompt_version: that preset's version when the settings were written (filled in when None).
        num_frames: frames spread evenly over a video (None when ``fps`` decides).
        fps: frames a second instead of a fixed count (the ``qwen_vl_utils`` sampler's default: 2).
        max_side: longer side of decoded frames before the processor (``toolkit`` sampler); None keeps
            them full size.
        max_pixels: the video processor's pixel budget it was trained with (None: the processor's own).
        sampler: one of `SAMPLERS`.
        video_first: the video before the prompt text in the user turn.
        answer_format: what the model writes; the score is read after ``ANSWER: ``.
        cameras: the cameras the model takes, in the order it takes them. None: one video per row,
            whichever camera it shows (checkpoints trained before cameras were recorded, the published
            models). One name: a single-camera model trained on that camera; given a row of several
            cameras (`roboreward.models.views.Views`) it is shown that one, with a warning once. Several
            names: a multi-view model; each row's videos of these cameras go in one prompt, in this
            order, each after its label (``"Left camera:"``, `roboreward.rubric.camera_label`).
        source: where these settings came from (not saved: filled in by `resolve_settings`).
    """

    prompt: str = rubric.DEFAULT_PROMPT
    prompt_version: str | None = None
    num_frames: int | None = 16
    fps: float | None = None
    max_side: int | None = 448
    max_pixels: int | None = None
    sampler: Sampler = "toolkit"
    video_first: bool = True
    answer_format: str = f"{rubric.ANSWER_PREFIX}<score>"
    cameras: tuple[str, ...] | None = None
    source: str = field(default="the toolkit's defaults", compare=False)

    def __post_init__(self) -> None:
        if self.cameras is not None:  # a JSON list, or a tuple
            object.__setattr__(self, "cameras", checked_cameras(self.cameras, "cameras"))
        preset = rubric.get_preset(self.prompt)  # an unknown name fails here, naming the presets
        if self.prompt_version is None:
            object.__setattr__(self, "prompt_version", preset.version)
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if self.num_frames is not None and self.fps is not None:
            raise ValueError("give num_frames or fps, not both")
        if self.num_frames is None and self.fps is None and self.sampler == "toolkit":
            raise ValueError("give num_frames or fps")
        if self.num_frames is not None and not 1 <= self.num_frames <= MAX_NUM_FRAMES:
            raise ValueError(f"num_frames must be in 1..{MAX_NUM_FRAMES}, got {self.num_frames}")
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"fps must be a number > 0, got {self.fps}")
        if self.max_side is not None and self.max_side < 1:
            raise ValueError(f"max_side must be >= 1, got {self.max_side}")

    @property
    def multi_view(self) -> bool:
        """True when the model takes several cameras in one prompt."""
        return self.cameras is not None and len(self.cameras) > 1

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written to `SETTINGS_FILE` (without ``source``; ``cameras`` only when set, so
        the files of checkpoints that record none stay as they were)."""
        data = dataclasses.asdict(self)
        data.pop("source")
        if data["cameras"] is None:
            data.pop("cameras")
        else:
            data["cameras"] = list(data["cameras"])
        return {"format_version": _FORMAT_VERSION, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "a settings file") -> InferenceSettings:
        """Settings from `to_dict`'s form; an unknown key or a bad value is a ValueError naming ``source``."""
        data = dict(data)
        data.pop("format_version", None)
        names = {f.name for f in dataclasses.fields(cls)} - {"source"}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{source}: unknown inference setting(s) {unknown}; known: {sorted(names)}")
        try:
            return cls(**data, source=source)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: {exc}") from None

    def replace(self, **changes: Any) -> InferenceSettings:
        """A copy with ``changes``; a new ``num_frames`` drops ``fps`` and the other way round."""
        if changes.get("fps") is not None and "num_frames" not in changes:
            changes["num_frames"] = None
        if changes.get("num_frames") is not None and "fps" not in changes:
            changes["fps"] = None
        if "prompt" in changes and "prompt_version" not in changes:
            changes["prompt_version"] = None
        return dataclasses.replace(self, **changes)


#: Settings of models this toolkit trains unless a recipe says otherwise.
DEFAULT_SETTINGS = InferenceSettings()

_RELEASE = InferenceSettings(
    prompt="release", num_frames=None, fps=2.0, max_side=None, sampler="qwen_vl_utils", video_first=True
)

#: How HELM's RoboRewardBench asks a model (the ``helm`` prompt preset): the text before the video
#: (its scenario puts the prompt's MediaObject first and its Qwen3-VL client keeps that order) and
#: the frames its processor's defaults pick (the client passes the video file to
#: ``processor.apply_chat_template`` without a frame count, rate or pixel budget). Read from
#: stanford-crfm/helm: robo_reward_bench_scenario.py and qwen3_vlm_client.py.
HELM_SETTINGS = InferenceSettings(
    prompt="helm", num_frames=None, fps=None, max_side=None, sampler="processor", video_first=False
)

#: The published models, which carry no settings file: their model cards' prompt and Qwen3-VL's own
#: video sampling (``qwen_vl_utils.process_vision_info``, as the cards and LeRobot's integration do).
KNOWN_SETTINGS: dict[str, InferenceSettings] = {
    "teetone/RoboReward-4B": _RELEASE,
    "teetone/RoboReward-8B": _RELEASE,
}

_CACHE_SNAPSHOT = re.compile(r"models--([^/\\]+?)--([^/\\]+)[/\\]snapshots[/\\]")


def save_settings(settings: InferenceSettings, folder: str | os.PathLike[str]) -> Path:
    """Write ``settings`` to ``folder/roboreward_settings.json`` (atomically) and return the path."""
    path = Path(folder) / SETTINGS_FILE
    tmp = path.with_name(f".{SETTINGS_FILE}.tmp")
    tmp.write_text(json.dumps(settings.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_settings(path: str | os.PathLike[str]) -> InferenceSettings:
    """Read a settings file (or the one in a checkpoint folder). Raises ValueError naming the file."""
    path = Path(path)
    if path.is_dir():
        path = path / SETTINGS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the inference settings {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object of inference settings")
    settings = InferenceSettings.from_dict(data, source=str(path))
    current = rubric.get_preset(settings.prompt).version
    if settings.prompt_version != current:
        logger.warning(
            "%s was trained with prompt %r version %s, but this toolkit's %r preset is version %s",
            path,
            settings.prompt,
            settings.prompt_version,
            settings.prompt,
            current,
        )
    return settings


def _known_id(path_or_id: str) -> str | None:
    """The published model a path or id stands for: the id itself, a Hub cache snapshot of it, or a
    folder whose config.json names it."""
    if path_or_id in KNOWN_SETTINGS:
        return path_or_id
    snapshot = _CACHE_SNAPSHOT.search(str(Path(path_or_id).resolve()) + os.sep)
    if snapshot and f"{snapshot[1]}/{snapshot[2]}" in KNOWN_SETTINGS:
        return f"{snapshot[1]}/{snapshot[2]}"
    config = Path(path_or_id) / "config.json"
    if config.is_file():
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        for key in ("_name_or_path", "name_or_path"):
            if data.get(key) in KNOWN_SETTINGS:
                return data[key]
    return None


def _hub_settings_file(repo_id: str) -> str | None:
    """The settings file of a Hub model in the local cache, or None."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency of transformers
        return None
    try:
        found = try_to_load_from_cache(repo_id, SETTINGS_FILE)
    except ValueError:  # not a valid repo id
        return None
    return found if isinstance(found, str) else None


def _stored_settings(path_or_id: str, download: bool) -> InferenceSettings | None:
    local = Path(path_or_id)
    if local.is_dir():
        return load_settings(local) if (local / SETTINGS_FILE).is_file() else None
    cached = _hub_settings_file(path_or_id)
    if cached is None:
        if not download:
            return None
        try:
            from huggingface_hub import hf_hub_download
            from huggingface_hub.errors import EntryNotFoundError
        except ImportError:  # pragma: no cover
            return None
        if hub_offline():
            return None
        try:
            cached = hf_hub_download(path_or_id, SETTINGS_FILE, etag_timeout=5)
        except EntryNotFoundError:
            return None
        except Exception:  # no network, a private or missing repo: the model's own loading will say
            return None
    return load_settings(cached)


def served_settings(model: str, **overrides: Any) -> InferenceSettings:
    """The settings to prompt a model served by name with (no checkpoint files to read): a known
    release's published ones (`KNOWN_SETTINGS`), else the toolkit's defaults; ``overrides`` on top.

    Args:
        model: the model name the server knows (a Hub id, usually).
        overrides: as in `resolve_settings`.

    >>> served_settings("teetone/RoboReward-8B").prompt, served_settings("Qwen/Qwen2.5-VL-7B-Instruct").prompt
    ('release', 'toolkit')
    """
    known = _known_id(model)
    if known is not None:
        base = dataclasses.replace(KNOWN_SETTINGS[known], source=f"known release {known}")
    else:
        base = dataclasses.replace(DEFAULT_SETTINGS, source="the toolkit's defaults (a served model)")
    return resolve_settings(model, base=base, **overrides)


def resolve_settings(
    path_or_id: str | os.PathLike[str],
    base: InferenceSettings | None = None,
    download: bool = False,
    **overrides: Any,
) -> InferenceSettings:
    """The settings to score ``path_or_id`` with: its own, then explicit ``overrides`` on top.

    Args:
        path_or_id: a checkpoint folder or a Hub id.
        base: settings to use instead of looking them up (a caller that already resolved them).
        download: for a Hub id whose settings file is not in the local cache, fetch it (callers do
            this once the model's own files came through, so that a mistyped id or no network never
            stalls here; `RewardModel.from_pretrained` does).
        overrides: setting names with explicit values (``prompt``, ``num_frames``, ``fps``,
            ``max_side``, ``max_pixels``, ``sampler``, ``video_first``, ``cameras``); None means "not
            given".
            Each one that changes the checkpoint's value is applied with a warning naming both.

    Looked up in order: the checkpoint's `SETTINGS_FILE`; the published models of `KNOWN_SETTINGS`;
    else the toolkit's defaults, with a one-line notice.
    """
    name = str(path_or_id)
    settings = base
    if settings is None:
        settings = _stored_settings(name, download)
    if settings is None:
        known = _known_id(name)
        if known is not None:
            settings = dataclasses.replace(KNOWN_SETTINGS[known], source=f"known release {known}")
    if settings is None:
        settings = dataclasses.replace(DEFAULT_SETTINGS, source="the toolkit's defaults")
        logger.warning(
            "%s has no %s and is not a known release: scoring it with the toolkit's defaults "
            "(prompt %r, %s frames, max side %s)",
            name,
            SETTINGS_FILE,
            settings.prompt,
            settings.num_frames,
            settings.max_side,
        )
    given = {key: value for key, value in overrides.items() if value is not None}
    unknown = sorted(set(given) - {f.name for f in dataclasses.fields(InferenceSettings)})
    if unknown:
        raise ValueError(f"unknown inference setting(s) {unknown}")
    if "cameras" in given:
        given["cameras"] = checked_cameras(given["cameras"], "cameras")
    if given.get("prompt") == "helm":
        # HELM's way of asking is one whole: its text, text first, the processor's frames; a flag
        # given besides (--num-frames, --max-side) still wins.
        frames = ("num_frames", "fps", "max_side", "sampler", "video_first")
        given = {**{key: getattr(HELM_SETTINGS, key) for key in frames}, **given}
    changed = {key: value for key, value in given.items() if getattr(settings, key) != value}
    for key, value in changed.items():
        logger.warning(
            "%s=%r overrides %r from %s: the model is scored unlike it was trained",
            key,
            value,
            getattr(settings, key),
            settings.source,
        )
    return settings.replace(**changed) if changed else settings
