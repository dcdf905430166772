"""The dataset folder module: the one place that knows a built folder's file names, reads its rows
and episodes, writes its shards and reports, and counts its splits."""

import json

import datasets
import pyarrow as pa
import pytest

from roboreward.dataset.folder import (
    BUILD_REPORT,
    RELABEL_REPORT,
    DatasetFolder,
    episode_from_row,
    episode_row,
    features,
    shard_glob,
    shard_name,
    split_statistics,
)
from roboreward.episode import Episode


def _table(n, start=0, source="oxe/a"):
    episodes = [
        Episode(video="v.mp4", task=f"task {i}", reward=1 + i % 5, source=source, episode_id=f"e{i}")
        for i in range(start, start + n)
    ]
    rows = [episode_row(ep, {"bytes": f"video {ep.episode_id}".encode(), "path": "x.mp4"}) for ep in episodes]
    return pa.Table.from_pylist(rows, schema=features().arrow_schema)


def test_names_follow_the_layout():
    assert shard_name("validation", 2, 10) == "validation-00002-of-00010.parquet"
    assert shard_glob("test") == "data/test-*.parquet"
    folder = DatasetFolder("ds")
    assert (folder.data_dir.as_posix(), folder.build_dir.as_posix(), folder.card_path.as_posix()) == (
        "ds/data",
        "ds/.build",
        "ds/README.md",
    )


def test_split_statistics_count_rows_per_source_and_reward():
    stats = split_statistics([("b", 5), ("a", 2), ("a", 5), ("a", 5)])
    assert stats == {
        "rows": 4,
        "by_source": {"a": 3, "b": 1},
        "by_reward": {"2": 1, "5": 3},
        "by_source_and_reward": {"a": {"2": 1, "5": 2}, "b": {"5": 1}},
    }
    assert split_statistics([]) == {"rows": 0, "by_source": {}, "by_reward": {}, "by_source_and_reward": {}}


def test_shards_are_written_in_order_and_replace_the_old_ones(tmp_path):
    folder = DatasetFolder(tmp_path / "ds")
    assert folder.write_shards("train", [_table(3), _table(0), _table(2, start=3)]) == [
        "data/train-00000-of-00002.parquet",
        "data/train-00001-of-00002.parquet",
    ]
    assert folder.write_shards("test", [_table(0)]) == []  # an empty split gets no file
    assert folder.splits() == ["train"]
    assert [r["episode_id"] for _, r in folder.iter_rows("train", columns=["episode_id"])] == [
        f"e{i}" for i in range(5)
    ]
    assert folder.write_shards("train", [_table(1)]) == ["data/train-00000-of-00001.parquet"]
    assert [p.name for p in folder.shard_files("train")] == ["train-00000-of-00001.parquet"]
    assert not [p for p in folder.data_dir.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_a_dataset_split_is_cut_into_shards_by_size(tmp_path):
    folder = DatasetFolder(tmp_path)
    dataset = datasets.Dataset(_table(6))
    names = folder.write_split("validation", dataset, max_shard_bytes=dataset.data.nbytes // 3 + 1)
    assert len(names) == 3
    rows = [where for where, _ in folder.iter_rows("validation")]
    assert rows[:3] == [
        "validation-00000-of-00003.parquet row 0",
        "validation-00000-of-00003.parquet row 1",
        "validation-00001-of-00003.parquet row 0",
    ]
    features_read, splits = folder.split_info()
    assert features_read == features() and splits["validation"].num_examples == 6
    assert folder.data_files() == [{"split": "validation", "path": "data/validation-*.parquet"}]


def test_row_groups_say_where_each_row_is(tmp_path):
    folder = DatasetFolder(tmp_path)
    folder.write_shards("test", [_table(2), _table(1, start=2)])
    groups = list(folder.iter_row_groups("test", columns=["id", "reward"]))
    assert [(g.path.name, g.index, g.table.num_rows) for g in groups] == [
        ("test-00000-of-00002.parquet", 0, 2),
        ("test-00001-of-00002.parquet", 0, 1),
    ]
    assert groups[0].table.column_names == ["id", "reward"]


def test_episodes_come_back_with_their_videos_written_once(tmp_path):
    folder = DatasetFolder(tmp_path / "ds")
    table = _table(2)
    shared = table.column("video").to_pylist()[0]
    table = table.set_column(
        table.column_names.index("video"),
        "video",
        pa.array([shared, shared], table.schema.field("video").type),
    )
    folder.write_shards("train", [table])
    episodes = folder.read_episodes(tmp_path / "videos")
    assert [ep.episode_id for ep in episodes["train"]] == ["e0", "e1"] and episodes["test"] == []
    assert episodes["train"][0].video == episodes["train"][1].video  # one file for one video
    assert len(list((tmp_path / "videos").iterdir())) == 1
    assert (tmp_path / "videos" / episodes["train"][0].video.split("/")[-1]).read_bytes() == b"video e0"


def test_a_row_round_trips_through_episode_row():
    ep = Episode(video="a.mp4", task="open it", reward=4, source="s", episode_id="7", provenance={"k": 1})
    row = episode_row(ep, {"bytes": b"x", "path": "a.mp4"})
    assert row["id"] == ep.id and json.loads(row["provenance"]) == {"k": 1}
    assert episode_from_row(row, "here", "b.mp4") == ep.replace(video="b.mp4")
    with pytest.raises(ValueError, match=r"^here: provenance is not JSON"):
        episode_from_row({**row, "provenance": "{"}, "here", "b.mp4")


def test_reports_are_written_and_read_and_a_broken_one_says_so(tmp_path):
    folder = DatasetFolder(tmp_path)
    assert folder.read_report(BUILD_REPORT) is None and folder.build_settings() == {}
    folder.write_report(BUILD_REPORT, {"config": {"max_side": 32}})
    assert folder.build_settings() == {"max_side": 32}
    (tmp_path / RELABEL_REPORT).write_text("{")
    with pytest.raises(ValueError, match=r"relabel report .* is not readable JSON"):
        folder.read_report(RELABEL_REPORT)


def test_a_folder_without_data_or_split_says_what_is_missing(tmp_path):
    folder = DatasetFolder(tmp_path)
    with pytest.raises(ValueError, match="has no data/ folder: give a folder written by `roboreward build`"):
        folder.require_data()
    with pytest.raises(ValueError, match=r"has no test split: no data/test-\*\.parquet"):
        folder.shard_files("test", required=True)
