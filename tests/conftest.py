"""Shared fixtures. Every fixture file is generated here by code; nothing binary is committed."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

#: Fixture frame i is a flat grey of level 4 + 8 * (i % 32), so a decoded frame tells which frame it is.
LEVEL_STEP = 8
LEVELS = 32


def level_of(index: int) -> int:
    return 4 + LEVEL_STEP * (index % LEVELS)


def frame_index_of(frame: np.ndarray) -> int:
    """Invert `level_of` on a decoded (lossy) frame: the frame's index modulo 32."""
    return round((float(frame.mean()) - 4) / LEVEL_STEP)


def write_video(
    path: Path,
    num_frames: int = 30,
    fps: int = 10,
    codec: str = "libx264",
    size: tuple[int, int] = (64, 48),
    options: dict[str, str] | None = None,
) -> Path:
    """Encode `num_frames` flat frames (frame i at grey `level_of(i)`) with PyAV."""
    width, height = size
    options = options or ({"preset": "12"} if codec == "libsvtav1" else {})
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(num_frames):
            frame = np.full((height, width, 3), level_of(i), np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_manifest(root: Path, rows: list[dict], num_frames: int = 8, missing: tuple[str, ...] = ()) -> Path:
    """Write ``root/m.jsonl`` for ``rows`` and a fixture video for each row (but those in ``missing``)."""
    import json

    root.mkdir(parents=True, exist_ok=True)
    for row in rows:
        if row["video"] not in missing and not (root / row["video"]).exists():
            write_video(root / row["video"], num_frames=num_frames, fps=10)
    manifest = root / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


#: Modules of src/ whose docstring examples fail while others edit the module; their doctests are
#: skipped, with the failure as the reason, until the examples are fixed there. Empty it then.
DOCTESTS_SKIPPED: dict[str, str] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, pytest.DoctestItem) and item.path.is_relative_to(config.rootpath):
            failure = DOCTESTS_SKIPPED.get(item.path.relative_to(config.rootpath).as_posix())
            if failure is not None:
                item.add_marker(pytest.mark.skip(reason=f"DOCTESTS_SKIPPED in tests/conftest.py: {failure}"))


def split_entries(entries: list) -> tuple[list, list]:
    """A source's output split into (episodes, skips), checking nothing else was yielded."""
    from roboreward.episode import Episode, Skip

    episodes = [e for e in entries if isinstance(e, Episode)]
    skips = [e for e in entries if isinstance(e, Skip)]
    assert len(episodes) + len(skips) == len(entries)
    return episodes, skips


@pytest.fixture
def make_video(tmp_path: Path) -> Callable[..., Path]:
    def make(name: str = "video.mp4", **kwargs) -> Path:
        return write_video(tmp_path / name, **kwargs)

    return make


@pytest.fixture(scope="session")
def h264_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("videos") / "h264.mp4", num_frames=30, fps=10)


@pytest.fixture(scope="session")
def av1_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(
        tmp_path_factory.mktemp("videos") / "av1.mp4", num_frames=30, fps=10, codec="libsvtav1"
    )


@pytest.fixture(scope="session")
def tiny_vlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default tiny checkpoint folder (Qwen2.5-VL, size "tiny", seed 0), built once per session.

    Shared by every test that asks for it, so read it only: a test that writes into a checkpoint
    folder, or needs another family, size or seed, builds its own with `make_tiny_vlm`.
    """
    from roboreward.testing.tiny import make_tiny_vlm

    return make_tiny_vlm(tmp_path_factory.mktemp("tiny_vlm") / "tiny-qwen2.5-vl")


@pytest.fixture(scope="session")
def tiny_qwen3_vlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Qwen3-VL checkpoint folder (size "tiny", seed 0), built once per session; read it only."""
    from roboreward.testing.tiny import make_tiny_vlm

    return make_tiny_vlm(tmp_path_factory.mktemp("tiny_vlm") / "tiny-qwen3-vl", family="qwen3_vl")


#: The session fixture holding each family's default tiny checkpoint, for tests parametrized by family.
TINY_VLM_FIXTURES = {"qwen2_5_vl": "tiny_vlm_dir", "qwen3_vl": "tiny_qwen3_vlm_dir"}


def named_checkpoint(checkpoint: Path, path: Path) -> Path:
    """A link at ``path`` to a shared checkpoint folder: the bench names a local model after its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(checkpoint, target_is_directory=True)
    return path


#: Debian's chromium, headless, as Playwright drives it in the browser tests (never `playwright install`).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def playwright_or_skip():
    """Playwright's sync API, or a skip naming what is missing (playwright, or Debian's chromium)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (CI installs it)")
    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)")
    return sync_api


def launch_chromium(playwright):
    """A headless Debian chromium under a running ``sync_playwright()``."""
    return playwright.chromium.launch(
        executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_ARGS
    )


def build_wheel(tmp_path: Path) -> Path:
    """A real wheel of the toolkit (no network: this interpreter's setuptools), built from a copy of the
    checkout so the build leaves nothing in it."""
    import shutil
    import subprocess
    import sys

    from roboreward import resources

    root = Path(__file__).resolve().parents[1]
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("setup.py", "pyproject.toml", "MANIFEST.in", "README.md"):
        shutil.copy(root / name, tree / name)
    for name in ("src", *resources.SHIPPED):
        shutil.copytree(root / name, tree / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    wheels = tmp_path / "wheels"
    command = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        wheels,
        ".",
    ]
    subprocess.run(command, cwd=tree, check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("roboreward-*.whl")
    return wheel
