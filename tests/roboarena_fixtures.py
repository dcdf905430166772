"""Generate a small RoboArena data dump on disk: good sessions and broken ones, videos from PyAV.

The layout follows the public dumps (``RoboArena/DataDump_08-05-2025`` and ``DataDump_02-03-2026``)::

    <root>/global_metadata.yaml
    <root>/evaluation_sessions/<session>/metadata.yaml
    <root>/evaluation_sessions/<session>/<id>_<policy_name>/<stem>_left.mp4   (2025 names)
    <root>/evaluation_sessions/<session>/<id>_<policy_name>/left_shoulder.mp4 (2026 names)

In a test (``tmp_path`` is pytest's)::

    write_roboarena_dump(tmp_path / "dump")  # GOOD_SESSIONS + BROKEN_SESSIONS
    write_roboarena_dump(tmp_path / "dump", [session("s1", "open the drawer", {"A": policy("pi0", 0.5)})])
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from conftest import write_video

#: Leave a key out of metadata.yaml.
MISSING: Any = object()

_VIDEO_NAMES = {
    "2025": {c: "{name}_2025_04_29_10_46_23_video_" + c + ".mp4" for c in ("left", "right", "wrist")},
    "2026": {"left": "left_shoulder.mp4", "right": "right_shoulder.mp4", "wrist": "wrist.mp4"},
}


@dataclass
class Policy:
    name: str
    partial_success: Any = MISSING
    cameras: tuple[str, ...] = ("left", "right")
    layout: str = "2025"
    folder: bool = True
    extra_videos: tuple[str, ...] = ()  # more file names to drop in the policy folder
    entry: Any = None  # the raw metadata entry, when it is not the usual mapping


def policy(name: str, partial_success: Any = MISSING, **kwargs: Any) -> Policy:
    return Policy(name, partial_success, **kwargs)


@dataclass
class Session:
    name: str
    instruction: Any = MISSING
    policies: dict[str, Policy] = field(default_factory=dict)
    #: None: a well-formed metadata.yaml; "missing", "malformed", "non_utf8", "list": a broken one.
    metadata: str | None = None


def session(name: str, instruction: Any, policies: dict[str, Policy], metadata: str | None = None) -> Session:
    return Session(name, instruction, policies, metadata)


#: Well-formed sessions: partial_success in percent, as the paper's protocol states it (a dump holds
#: one unit, decided once for all its values), both file-name layouts, a three-policy session and a
#: wrist camera. Dumps in fractions, and dumps mixing the two, are written by the tests themselves.
GOOD_SESSIONS = [
    session(
        "s01_marker",
        "put the marker in the cup",
        {
            "A": policy("pi0_droid", 0),
            "B": policy("paligemma_fast_droid", 20, cameras=("left", "right", "wrist")),
        },
    ),
    session(
        "s02_drawer",
        "open the top drawer",
        {"A": policy("pi0_fast_droid", 50), "B": policy("paligemma_vq_droid", 80)},
    ),
    session(
        "s03_towel",
        "  fold the towel\n in half ",
        {
            "A": policy("paligemma_diffusion_droid", 100),
            "B": policy("pi0_droid", 100.0),
            "C": policy("paligemma_binning_droid", 70),
        },
    ),
    session(
        "s04_cups",
        "stack the blue cup on the red cup",
        {
            "A": policy("pi0_droid", 34, layout="2026", cameras=("left", "right", "wrist")),
            "B": policy("pi0_fast_droid", 33, layout="2026"),
            "C": policy("paligemma_fast_droid", 67, layout="2026"),
        },
    ),
]

#: One fault per entry; the name says which.
BROKEN_SESSIONS = [
    session("x01_no_yaml", "wipe the table", {"A": policy("pi0_droid", 50)}, metadata="missing"),
    session("x02_bad_yaml", "wipe the table", {"A": policy("pi0_droid", 50)}, metadata="malformed"),
    session("x03_latin1_yaml", "wipe the table", {"A": policy("pi0_droid", 50)}, metadata="non_utf8"),
    session("x04_list_yaml", "wipe the table", {"A": policy("pi0_droid", 50)}, metadata="list"),
    session("x05_empty_task", "   ", {"A": policy("pi0_droid", 50)}),
    session("x06_no_task", MISSING, {"A": policy("pi0_droid", 50)}),
    session(
        "x07_bad_scores",
        "pour the beans into the bowl",
        {
            "A": policy("pi0_droid"),  # partial_success missing
            "B": policy("pi0_fast_droid", -3),
            "C": policy("paligemma_fast_droid", 140),
            "D": policy("paligemma_vq_droid", "n/a"),
            "E": policy("paligemma_binning_droid", float("nan")),
            "F": policy("paligemma_diffusion_droid", 90),  # the one good entry of this session
        },
    ),
    session(
        "x08_bad_files",
        "close the laptop",
        {
            "A": policy("pi0_droid", 50, cameras=("right",)),  # no left video
            "B": policy("pi0_fast_droid", 50, folder=False),  # no policy folder
            "C": policy("paligemma_fast_droid", 50, extra_videos=("retake_video_left.mp4",)),  # two lefts
            "D": policy("paligemma_vq_droid", 50, extra_videos=("._pi0_video_left.mp4",)),  # hidden: ignored
        },
    ),
]


def write_roboarena_dump(root: Path, sessions: Sequence[Session] | None = None) -> Path:
    """Write ``sessions`` (default: GOOD_SESSIONS + BROKEN_SESSIONS) as a RoboArena dump under ``root``."""
    sessions = list(GOOD_SESSIONS) + list(BROKEN_SESSIONS) if sessions is None else list(sessions)
    sessions_dir = root / "evaluation_sessions"
    sessions_dir.mkdir(parents=True, exist_ok=True)
    (root / "global_metadata.yaml").write_text(yaml.safe_dump({"num_sessions": len(sessions)}))
    template = root / ".template.mp4"  # encode once, copy everywhere: every rollout is a real mp4
    write_video(template, num_frames=6, fps=10, size=(32, 24))
    for sess in sessions:
        folder = sessions_dir / sess.name
        folder.mkdir(exist_ok=True)
        _write_metadata(folder / "metadata.yaml", sess)
        for pid, pol in sess.policies.items():
            if not pol.folder:
                continue
            run = folder / f"{pid}_{pol.name}"
            run.mkdir(exist_ok=True)
            for camera in pol.cameras:
                shutil.copyfile(template, run / _VIDEO_NAMES[pol.layout][camera].format(name=pol.name))
            for extra in pol.extra_videos:
                shutil.copyfile(template, run / extra)
            (run / f"{pol.name}_npz_file.npz").write_bytes(b"not read by the source")
    template.unlink()
    return root


def _write_metadata(path: Path, sess: Session) -> None:
    if sess.metadata == "missing":
        return
    if sess.metadata == "malformed":
        path.write_text("language_instruction: [unclosed\npolicies: {A: {policy_name: pi0_droid\n")
        return
    if sess.metadata == "non_utf8":
        path.write_bytes("language_instruction: wipe the café table\n".encode("latin-1"))
        return
    if sess.metadata == "list":
        path.write_text("- language_instruction: wipe the table\n- policies: {}\n")
        return
    meta: dict[str, Any] = {"evaluator_institution": "Berkeley"}
    if sess.instruction is not MISSING:
        meta["language_instruction"] = sess.instruction
    policies: dict[str, Any] = {}
    for pid, pol in sess.policies.items():
        if pol.entry is not None:
            policies[pid] = pol.entry
            continue
        entry: dict[str, Any] = {"policy_name": pol.name}
        if pol.partial_success is not MISSING:
            entry["partial_success"] = pol.partial_success
        entry["binary_success"] = int(pol.partial_success in (1, 1.0, 100))
        policies[pid] = entry
    meta["policies"] = policies
    meta["preference"] = "A"
    path.write_text(yaml.safe_dump(meta, sort_keys=False))
