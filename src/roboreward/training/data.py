"""The training data of `roboreward.training.trainer`: rows checked before training, and rows
made into inputs.

- `load_reward_splits`: the train and validation splits of a built folder, a Hub id or the public
  release's layout, every row checked first (`validate_rows`, no video decoded).
- `RewardCollator`: each row becomes the reward prompt of `roboreward.models.inputs.RewardPrompter`
  (the very tokens and frames `RewardModel.score` sees, ``ANSWER: `` prefilled) followed by the answer
  ``<reward><|im_end|>``; the loss is on those answer tokens only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any, Protocol

import torch

from roboreward import locate, rubric
from roboreward.dataset import fingerprint
from roboreward.models.inputs import RewardPrompter
from roboreward.models.views import Views, checked_cameras, group_views
from roboreward.sources.release import load_release_dataset, locate_release

__all__ = [
    "IGNORE_INDEX",
    "VIEW_KEY_COLUMNS",
    "RewardCollator",
    "SplitArguments",
    "load_reward_splits",
    "select_views",
    "validate_rows",
    "view_column",
]

logger = logging.getLogger("roboreward")

#: The columns whose values make rows of one rollout (they differ only in ``camera`` and ``video``).
VIEW_KEY_COLUMNS = ("source", "episode_id", "task", "reward", "augmentation", "original_task")

#: Label of a position that carries no loss (prompt, vision tokens, padding).
IGNORE_INDEX = -100


class SplitArguments(Protocol):
    """What `load_reward_splits` reads from a recipe (`roboreward.training.trainer.RewardScriptArguments`)."""

    dataset_name: str
    dataset_config: str | None
    dataset_train_split: str
    dataset_test_split: str
    max_train_samples: int | None
    max_eval_samples: int | None
    cameras: list[str] | None  # optional: an object without it trains on every row as built


def _reward_problem(reward: Any) -> str | None:
    ok = (
        isinstance(reward, (int, float))
        and not isinstance(reward, bool)
        and float(reward).is_integer()
        and rubric.MIN_SCORE <= reward <= rubric.MAX_SCORE
    )
    return None if ok else f"reward must be an integer 1..5, got {reward!r}"


def _video_problem(nbytes: int | None, path: str | None) -> str | None:
    if nbytes:
        return None
    if not path:
        return "video is missing (no bytes and no path)"
    if not os.path.isfile(path):
        return f"video is missing (no bytes and no file at {path!r})"
    if os.path.getsize(path) == 0:
        return f"video is empty (file {path!r} has 0 bytes)"
    return None


def view_column(camera: str) -> str:
    """The column of a multi-view dataset (`select_views`) holding ``camera``'s video: ``video_<camera>``."""
    return f"video_{camera}"


def select_views(dataset: Any, cameras: Sequence[str], where: str) -> Any:
    """The rows a model taking ``cameras`` trains on: one per rollout, with each camera's video.

    Rows of one rollout share the values of `VIEW_KEY_COLUMNS` (those the dataset has) and differ in
    ``camera`` (a RoboArena build with ``roboarena_cameras: [left, right]`` gives each run one row per
    camera). One camera: that camera's rows. Several: one row per rollout having all of them, with
    ``video`` the first camera's and a `view_column` per camera, in order; rollouts lacking a camera
    are left out, with a warning counting them.

    Args:
        dataset: a `datasets.Dataset` with a ``camera`` column.
        cameras: the cameras, in the order the model takes them.
        where: the dataset and split, for messages.

    Raises ValueError naming ``where`` when the dataset has no ``camera`` column or no rollout has
    every camera.
    """
    import datasets

    cameras = checked_cameras(cameras, "cameras")
    if "camera" not in dataset.column_names:
        raise ValueError(
            f"{where} has no camera column, so cameras {list(cameras)} cannot be chosen: build it from "
            "a source that names its cameras (roboarena_cameras: [left, right])"
        )
    key_columns = [c for c in VIEW_KEY_COLUMNS if c in dataset.column_names]
    meta = dataset.select_columns([*key_columns, "camera"]).to_dict()
    keys = list(zip(*(meta[c] for c in key_columns), strict=True)) if key_columns else [()] * len(dataset)
    groups, incomplete = group_views(keys, meta["camera"], cameras)
    if not groups:
        found = sorted({c for c in meta["camera"] if c is not None})
        raise ValueError(f"{where}: no rollout has every camera of {list(cameras)} (its cameras: {found})")
    if incomplete:
        logger.warning(
            "%s: %d rollout(s) lack one of the cameras %s and are left out", where, incomplete, list(cameras)
        )
    first = dataset.select([group[0] for group in groups])
    if len(cameras) == 1:
        return first
    views = [
        dataset.select([group[i] for group in groups])
        .select_columns(["video"])
        .rename_column("video", view_column(camera))
        for i, camera in enumerate(cameras)
    ]
    return datasets.concatenate_datasets([first, *views], axis=1)


def validate_rows(dataset: Any, split: str, batch_size: int = 256) -> None:
    """Fail before training on a row that cannot be trained on, naming its split, index and id.

    Checks without decoding or reading any video: a task that is empty or not text, a reward that
    is not an integer 1..5, a video with neither bytes nor a non-empty file. Videos are looked at
    through Arrow (lengths of the bytes, the paths), so a dataset of many GB is checked in seconds.
    ``dataset`` is a `datasets.Dataset` whose ``video`` column is ``Video(decode=False)``.

    Raises ValueError such as ``train row 14 (id bridge/ep_3): reward must be an integer 1..5, got 7``.
    """
    import pyarrow.compute as pc

    id_column = next((c for c in ("id", "episode_id") if c in dataset.column_names), None)
    # A multi-view dataset (`select_views`) has a video column per camera besides ``video``.
    videos = ["video", *sorted(c for c in dataset.column_names if c.startswith("video_"))]
    columns = ["task", "reward", *videos, *([id_column] if id_column else [])]
    table = dataset.select_columns(columns).with_format("arrow")
    start = 0
    for batch in table.iter(batch_size=batch_size):
        files = []
        for name in videos:
            video = batch.column(name).combine_chunks()
            nbytes = pc.binary_length(video.field("bytes")).to_pylist()
            files.append(list(zip(nbytes, video.field("path").to_pylist(), strict=True)))
        ids = batch.column(id_column).to_pylist() if id_column else [None] * batch.num_rows
        tasks, rewards = batch.column("task").to_pylist(), batch.column("reward").to_pylist()
        rows = zip(tasks, rewards, zip(*files, strict=True), ids, strict=True)
        for offset, (task, reward, row_files, id_) in enumerate(rows):
            if not isinstance(task, str) or not task.strip():
                problem: str | None = f"task is empty ({task!r})"
            else:
                problem = _reward_problem(reward) or next(
                    (
                        (f"{name}: {found}" if name != "video" else found)
                        for name, (size, path) in zip(videos, row_files, strict=True)
                        if (found := _video_problem(size, path))
                    ),
                    None,
                )
            if problem:
                where = f"{split} row {start + offset}" + (f" ({id_column} {id_})" if id_ else "")
                raise ValueError(f"{where}: {problem}")
        start += batch.num_rows


def load_reward_splits(args: SplitArguments) -> tuple[Any, Any]:
    """(train, validation) datasets with videos as ``{"bytes", "path"}``, every row checked.

    ``args.dataset_name`` is a folder built by ``roboreward build``, a Hub id with the same columns
    (``video``, ``task``, ``reward``), or the public release's layout, local or on the Hub
    (``teetone/RoboReward``: ``train|val|test/metadata.jsonl`` + one folder of MP4s per source;
    `roboreward.sources.release`, where ``validation`` is ``val`` and rows that cannot be trained on
    are skipped with a logged reason). With ``args.cameras`` (a model taking those cameras), rows are
    one per rollout, with each camera's video (`select_views`).
    """
    import datasets

    locate.resolve(args.dataset_name, "dataset")  # a folder, or a Hub id that answers: never a stale cache
    release = locate_release(args.dataset_name, args.dataset_train_split)
    # Never a stale cache of a folder rebuilt in place.
    loaded = None if release is not None else fingerprint.load_dataset(args.dataset_name, args.dataset_config)
    out = []
    for split, limit in (
        (args.dataset_train_split, args.max_train_samples),
        (args.dataset_test_split, args.max_eval_samples),
    ):
        if release is not None:
            try:
                ds = load_release_dataset(locate_release(args.dataset_name, split) or release, split)
            except FileNotFoundError as exc:
                raise ValueError(f"dataset {args.dataset_name}: {exc}") from None
        elif split not in loaded:
            raise ValueError(f"dataset {args.dataset_name} has no split {split!r} (it has {sorted(loaded)})")
        else:
            ds = loaded[split]
        missing = {"video", "task", "reward"} - set(ds.column_names)
        if missing:
            raise ValueError(f"dataset {args.dataset_name} split {split} lacks column(s) {sorted(missing)}")
        if len(ds) == 0:
            raise ValueError(f"dataset {args.dataset_name} split {split} is empty")
        ds = ds.cast_column("video", datasets.Video(decode=False))
        cameras = getattr(args, "cameras", None)
        if cameras:
            ds = select_views(ds, cameras, f"dataset {args.dataset_name} split {split}")
        if limit is not None:
            ds = ds.select(range(min(limit, len(ds))))
        validate_rows(ds, split)
        out.append(ds)
    return out[0], out[1]


def _turn_end(tokenizer: Any) -> str:
    """The token closing a chat turn: ``<|im_end|>`` for Qwen (also for base models, whose eos is
    ``<|endoftext|>``), else the tokenizer's eos."""
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(im_end, int) and im_end != tokenizer.unk_token_id:
        return "<|im_end|>"
    return tokenizer.convert_ids_to_tokens(tokenizer.eos_token_id)


class RewardCollator:
    """Rows -> model inputs: the scoring prompt (``ANSWER: `` prefilled) plus the answer, as labels.

    The prompt, frames and processor call are `RewardPrompter.encode`'s, the code `RewardModel.score`
    runs, so the logits learnt at the position after ``ANSWER: `` are the ones scoring reads. Rows are
    padded on the left (as for scoring): every row ends with its answer, ``<score>`` and, with
    ``train_eos``, ``<|im_end|>``; those are the only labels, everything else (prompt, vision tokens,
    padding) is `IGNORE_INDEX`. ``mm_token_type_ids`` come padded with 0 by the processor.

    >>> collate = RewardCollator(RewardPrompter(processor, num_frames=16, max_side=448))  # doctest: +SKIP
    >>> row = {"video": {"bytes": None, "path": "ep.mp4"}, "task": "open the drawer", "reward": 4}
    >>> batch = collate([row])  # doctest: +SKIP
    """

    def __init__(self, prompter: RewardPrompter, train_eos: bool = True):
        self.prompter = prompter
        self.train_eos = train_eos
        self.eos = _turn_end(prompter.tokenizer)
        # The answer must be exactly these tokens, so that the labels are the last `width` positions.
        self.width = 2 if train_eos else 1

    def answer(self, reward: int) -> str:
        """The text after the prefilled ``ANSWER: ``: ``"4<|im_end|>"`` (or ``"4"``)."""
        return str(rubric.level(int(reward)).score) + (self.eos if self.train_eos else "")

    def video(self, row: dict[str, Any]) -> Any:
        """What the model is shown of a row: its video, or for a multi-view model `Views` of its
        cameras' videos (the `view_column` of each, as `select_views` made them)."""
        settings = self.prompter.settings
        if not settings.multi_view:
            return row["video"]
        missing = [view_column(c) for c in settings.cameras if view_column(c) not in row]
        if missing:
            raise ValueError(
                f"a row has no column(s) {missing}: a model taking cameras {list(settings.cameras)} "
                "trains on rows made by select_views (the recipe's cameras)"
            )
        return Views(settings.cameras, tuple(row[view_column(c)] for c in settings.cameras))

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.prompter.encode(
            [self.video(row) for row in rows],
            [row["task"] for row in rows],
            answers=[self.answer(row["reward"]) for row in rows],
        )
        ids = batch["input_ids"]
        score_ids = torch.tensor(self.prompter.score_token_ids)
        if not torch.isin(ids[:, -self.width], score_ids).all():  # pragma: no cover - tokenizer guard
            raise RuntimeError("the answer was not tokenized as the score token(s) at the end of each row")
        labels = torch.full_like(ids, IGNORE_INDEX)
        labels[:, -self.width :] = ids[:, -self.width :]
        batch["labels"] = labels
        return dict(batch)
