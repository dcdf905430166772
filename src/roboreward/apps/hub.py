"""Release to the Hugging Face Hub: datasets, reward models, the Space and the metric modules.

Each kind has a rule for which files belong in its repo; `release_files` applies it, `push` uploads
exactly those files (``upload_large_folder`` for datasets, ``upload_folder`` otherwise), and
``dry_run=True`` with ``export=DIR`` writes the very tree that would be uploaded, so a release can
be reviewed offline before it is made.

    >>> from roboreward.apps.hub import push
    >>> push("model", "runs/3b", "my-org/RoboReward-3B", dry_run=True, export="review/")  # doctest: +SKIP
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from roboreward.dataset.folder import BUILD_DIR, RELEASE_FILES
from roboreward.resources import PACKAGE_DATA

__all__ = ["KINDS", "HubError", "PushResult", "bundled_toolkit", "push", "release_files"]

#: Kind -> the Hub repo type it goes to (evaluate metric modules are Spaces).
KINDS = {"dataset": "dataset", "model": "model", "space": "space", "metric": "space"}

# Never uploaded, whatever the kind.
_ALWAYS_EXCLUDED = (
    ".git/*",
    "*/.git/*",
    "__pycache__/*",
    "*/__pycache__/*",
    "*.pyc",
    ".DS_Store",
    "*/.DS_Store",
    ".ipynb_checkpoints/*",
    "*/.ipynb_checkpoints/*",
    ".cache/*",
    ".huggingface/*",
    f"{BUILD_DIR}/*",  # the builder's work folder (encoded-video cache)
    ".*.tmp",
)
# Trainer state that a released model does not need: checkpoints and optimizer/scheduler/RNG states.
_TRAINING_STATE = (
    "checkpoint-*/*",
    "optimizer.pt",
    "optimizer.bin",
    "scheduler.pt",
    "scaler.pt",
    "rng_state*.pth",
    "trainer_state.json",
    "training_args.bin",
    "runs/*",
    "global_step*/*",
)
_DATASET_FILES = RELEASE_FILES  # the dataset folder's layout says what a dataset release holds


class HubError(RuntimeError):
    """A push that cannot be made; the message is one line that says why."""


def check_model_card(folder: str | os.PathLike[str]) -> None:
    """Raise HubError unless ``folder/README.md`` is a card with results in its ``model-index``.

    Args:
        folder: a saved reward model.
    """
    from huggingface_hub import metadata_load

    card = Path(folder) / "README.md"
    metadata = metadata_load(card) if card.is_file() else None
    if not (metadata or {}).get("model-index"):
        raise HubError(
            f"{card} has no model-index (no RoboRewardBench results): run `roboreward bench` and "
            f"`roboreward card model --checkpoint {folder} --bench BENCH_OUT` first, or push it as it is "
            "with --allow-card-without-results"
        )


@dataclass
class PushResult:
    kind: str
    repo_id: str
    repo_type: str
    files: list[str]
    total_bytes: int
    dry_run: bool
    export: str | None = None
    url: str | None = None
    excluded: list[str] = field(default_factory=list)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]


def _matches(path: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(path, p) for p in patterns)


def release_files(
    kind: str, folder: str | os.PathLike[str], include_training_state: bool = False
) -> list[str]:
    """The files (POSIX paths relative to ``folder``, sorted) that a release of ``kind`` uploads.

    dataset: the card, the Parquet shards and the build / relabel / verification reports.
    model: everything but trainer state (checkpoints, optimizer, scheduler, RNG) unless
    ``include_training_state``. space and metric: the folder's files (`push` adds the toolkit's
    source to a Space that imports it: see `bundled_toolkit`). Caches, ``__pycache__``, the
    builder's ``.build`` folder and temporary files never go.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    root = Path(folder)
    if not root.is_dir():
        raise HubError(f"{root} is not a folder")
    files = sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and not p.is_symlink()
    )
    keep = [f for f in files if not _matches(f, _ALWAYS_EXCLUDED)]
    if kind == "dataset":
        keep = [f for f in keep if _matches(f, _DATASET_FILES)]
        if not any(f.endswith(".parquet") for f in keep):
            raise HubError(f"{root} holds no data/*.parquet: build it with `roboreward build` first")
    elif kind == "model":
        if not include_training_state:
            keep = [f for f in keep if not _matches(f, _TRAINING_STATE)]
        if "config.json" not in keep:
            raise HubError(f"{root} has no config.json: not a saved model")
    elif kind in ("space", "metric") and "README.md" not in keep:
        raise HubError(f"{root} has no README.md with the Space's front matter")
    if "README.md" not in keep:
        raise HubError(f"{root} has no README.md card: render one with `roboreward card` first")
    return keep


def bundled_toolkit(kind: str, folder: str | os.PathLike[str]) -> dict[str, Path]:
    """The toolkit's own source files a Space release carries, as ``{"roboreward/...": source}``.

    The toolkit is not on PyPI yet, so a Space whose ``app.py`` imports ``roboreward`` gets the
    installed package's ``.py`` files (and ``py.typed``; not the release folders a wheel carries in
    ``roboreward/_data``) next to it, where its import finds them. A
    Space that already holds a ``roboreward/`` folder, one that does not import the toolkit, and the
    other kinds get nothing.
    """
    root = Path(folder)
    app = root / "app.py"
    if kind != "space" or (root / "roboreward").exists() or not app.is_file():
        return {}
    text = app.read_text(encoding="utf-8", errors="replace")
    if "import roboreward" not in text and "from roboreward" not in text:
        return {}
    package = Path(__file__).resolve().parents[1]  # roboreward/ (this module is roboreward/apps/hub.py)
    sources = sorted(
        p for p in package.rglob("*") if p.is_file() and (p.suffix == ".py" or p.name == "py.typed")
    )
    files = {f"roboreward/{p.relative_to(package).as_posix()}": p for p in sources}
    files = {rel: src for rel, src in files.items() if not rel.startswith(f"roboreward/{PACKAGE_DATA}/")}
    return {rel: src for rel, src in files.items() if not _matches(rel, _ALWAYS_EXCLUDED)}


def _stage(sources: dict[str, Path], target: Path) -> None:
    """Lay out ``sources`` (release path -> file) under ``target`` (hard links where possible)."""
    for rel, src in sources.items():
        dst = target / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)


def push(
    kind: str,
    folder: str | os.PathLike[str],
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    dry_run: bool = False,
    export: str | os.PathLike[str] | None = None,
    include_training_state: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
    allow_card_without_results: bool = False,
) -> PushResult:
    """Upload a release to ``repo_id``; with ``dry_run`` only write the tree to ``export`` (if given).

    A model is uploaded only with the toolkit's card, its RoboRewardBench results in the card's
    ``model-index`` (``roboreward card model --checkpoint DIR --bench BENCH_OUT``), unless
    ``allow_card_without_results``: a card without results (the one training writes, or a generic
    one) is refused before anything is uploaded.

    Raises HubError, with a one-line message, for a folder that is not a release of ``kind``, a
    model card without results, a missing token, or a Hub that cannot be reached.
    """
    root = Path(folder)
    files = release_files(kind, root, include_training_state)
    if "/" not in repo_id or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise HubError(f"repo id must look like ORG/NAME, got {repo_id!r}")
    repo_type = KINDS[kind]
    all_files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    sources = {f: root / f for f in files} | bundled_toolkit(kind, root)
    result = PushResult(
        kind=kind,
        repo_id=repo_id,
        repo_type=repo_type,
        files=sorted(sources),
        total_bytes=sum(src.stat().st_size for src in sources.values()),
        dry_run=dry_run,
        excluded=sorted(all_files - set(files)),
    )
    if export is not None:
        target = Path(export)
        if target.exists() and any(target.iterdir()):
            raise HubError(f"export folder {target} is not empty")
        _stage(sources, target)
        result.export = str(target)
    if dry_run:
        return result

    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError

    token = token or get_token()
    if not token:
        raise HubError("no Hugging Face token: run `hf auth login` or set HF_TOKEN")
    if kind == "model" and not allow_card_without_results:
        check_model_card(root)
    api = HfApi(token=token)
    try:
        url = api.create_repo(
            repo_id,
            repo_type=repo_type,
            private=private,
            exist_ok=True,
            space_sdk="gradio" if repo_type == "space" else None,
        )
        with tempfile.TemporaryDirectory(prefix="roboreward-push-") as staging:
            _stage(sources, Path(staging))
            if kind == "dataset":
                api.upload_large_folder(
                    repo_id=repo_id, folder_path=staging, repo_type=repo_type, revision=revision
                )
            else:
                api.upload_folder(
                    repo_id=repo_id,
                    folder_path=staging,
                    repo_type=repo_type,
                    revision=revision,
                    commit_message=commit_message or f"Upload {kind} with roboreward",
                )
    except HfHubHTTPError as exc:
        raise HubError(f"the Hub refused the push to {repo_id}: {_first_line(exc)}") from None
    except Exception as exc:  # the HTTP client's connection errors and timeouts, whichever client it is
        raise HubError(
            f"cannot reach the Hub to push {repo_id}: {type(exc).__name__}: {_first_line(exc)}"
        ) from None
    result.url = str(url)
    return result
