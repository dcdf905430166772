import fnmatch
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import frame_index_of
from conftest import split_entries as split
from lerobot_fixtures import (
    DEFAULT_EPISODES,
    SCENE_CAMERA,
    SCENE_SIZE,
    WRIST_CAMERA,
    WRIST_SIZE,
    v30_layout,
    write_lerobot_v21,
    write_lerobot_v30,
)

from roboreward import video
from roboreward.episode import Episode, Skip
from roboreward.sources import EpisodeSource, SourceError
from roboreward.sources.lerobot import reader as lerobot_module
from roboreward.sources.lerobot.layout import REWARDS_PATH, write_episode_rewards
from roboreward.sources.lerobot.reader import LeRobotSource, default_video_key, parse_rewards

V30_EPISODES = [
    ("stack the cups", 6),
    ("wipe the table", 8),
    ("close the microwave", 5),
    ("push the button", 7),
]
V30_PER_FILE = 3  # episodes 0-2 share file-000 of each camera, episode 3 is alone in file-001


@pytest.fixture(scope="module")
def v21_h264(tmp_path_factory) -> Path:
    return write_lerobot_v21(tmp_path_factory.mktemp("v21") / "toto_lerobot", codec="libx264")


@pytest.fixture(scope="module")
def v30_av1(tmp_path_factory) -> Path:
    return write_lerobot_v30(
        tmp_path_factory.mktemp("v30") / "berkeley_autolab_ur5_lerobot",
        episodes=V30_EPISODES,
        codec="libsvtav1",
        episodes_per_file=V30_PER_FILE,
    )


def copy_of(dataset: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(dataset, tmp_path / dataset.name))


def edit_info(root: Path, **changes) -> Path:
    path = root / "meta" / "info.json"
    info = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            info.pop(key)
        else:
            info[key] = value
    path.write_text(json.dumps(info))
    return path


# -- v2.1 ------------------------------------------------------------------------------------------


def test_v21_every_episode_is_a_success_with_its_task(v21_h264):
    source = LeRobotSource(v21_h264)
    entries = list(source.episodes())
    assert isinstance(source, EpisodeSource)
    assert source.name == "oxe/toto" and source.codebase_version == "v2.1" and source.fps == 10
    assert all(isinstance(e, Episode) for e in entries)
    assert [e.episode_id for e in entries] == ["0", "1", "2"]
    assert [e.task for e in entries] == [task for task, _ in DEFAULT_EPISODES]
    assert {(e.reward, e.progress, e.source, e.augmentation) for e in entries} == {
        (5, 1.0, "oxe/toto", "original")
    }
    assert [e.group for e in entries] == ["oxe/toto/0", "oxe/toto/1", "oxe/toto/2"]
    assert entries[0].provenance == {"dataset": v21_h264.name, "codebase_version": "v2.1", "fps": 10}


def test_v21_videos_are_whole_per_episode_files_of_the_scene_camera(v21_h264):
    entries = list(LeRobotSource(v21_h264).episodes())
    for ep, (_, num_frames) in zip(entries, DEFAULT_EPISODES, strict=True):
        expected = v21_h264 / f"videos/chunk-000/{SCENE_CAMERA}/episode_{int(ep.episode_id):06d}.mp4"
        assert ep.video == str(expected) and Path(ep.video).is_absolute() and Path(ep.video).is_file()
        assert ep.camera == SCENE_CAMERA
        assert (ep.video_start, ep.video_end) == (None, None)
        info = video.probe(ep.video)
        assert (info.frames, (info.width, info.height), info.codec) == (num_frames, SCENE_SIZE, "h264")


def test_v20_uses_the_v2_layout(tmp_path):
    root = write_lerobot_v21(
        tmp_path / "toto", episodes=[("lift the lid", 4)], cameras=[SCENE_CAMERA], version="v2.0"
    )
    (ep,) = LeRobotSource(root).episodes()
    assert (ep.task, ep.provenance["codebase_version"]) == ("lift the lid", "v2.0")


def test_v21_follows_the_path_templates_of_info_json(tmp_path):
    root = write_lerobot_v21(
        tmp_path / "toto", episodes=[("a", 3), ("b", 3), ("c", 3)], cameras=[SCENE_CAMERA], chunks_size=2
    )
    # Move the videos to a layout of our own and say so in info.json: the reader must follow it.
    template = "clips/{video_key}/c{episode_chunk}/ep{episode_index}.mp4"
    for index in range(3):
        old = root / f"videos/chunk-{index // 2:03d}/{SCENE_CAMERA}/episode_{index:06d}.mp4"
        new = root / template.format(video_key=SCENE_CAMERA, episode_chunk=index // 2, episode_index=index)
        new.parent.mkdir(parents=True, exist_ok=True)
        old.rename(new)
    edit_info(root, video_path=template)
    videos = [e.video for e in LeRobotSource(root).episodes()]
    assert videos == [str(root / f"clips/{SCENE_CAMERA}/c{i // 2}/ep{i}.mp4") for i in range(3)]


# -- v3.0 ------------------------------------------------------------------------------------------


def test_v30_episodes_get_their_file_and_time_range(v30_av1):
    source = LeRobotSource(v30_av1)
    entries = list(source.episodes())
    assert source.name == "oxe/berkeley_autolab_ur5" and source.codebase_version == "v3.0"
    assert all(isinstance(e, Episode) for e in entries)
    assert [(e.episode_id, e.task) for e in entries] == [(str(i), t) for i, (t, _) in enumerate(V30_EPISODES)]
    assert {(e.reward, e.progress, e.camera) for e in entries} == {(5, 1.0, SCENE_CAMERA)}
    file0 = str(v30_av1 / f"videos/{SCENE_CAMERA}/chunk-000/file-000.mp4")
    file1 = str(v30_av1 / f"videos/{SCENE_CAMERA}/chunk-000/file-001.mp4")
    assert [e.video for e in entries] == [file0, file0, file0, file1]
    assert [(e.video_start, e.video_end) for e in entries] == [
        (0.0, 0.6),
        (0.6, 1.4),
        (1.4, 1.9),
        (0.0, 0.7),
    ]
    assert video.probe(file0).codec == "av1" and video.probe(file0).frames == 6 + 8 + 5


def test_v30_time_range_samples_frames_of_that_episode_only(v30_av1):
    layout = v30_layout(V30_EPISODES, episodes_per_file=V30_PER_FILE)
    for ep, place, (_, num_frames) in zip(
        LeRobotSource(v30_av1).episodes(), layout, V30_EPISODES, strict=True
    ):
        frames = video.sample_frames(ep.video, num_frames=num_frames, start=ep.video_start, end=ep.video_end)
        first = place["first_frame"]
        assert [frame_index_of(f) for f in frames] == list(range(first, first + num_frames)), ep.episode_id


# -- cameras ---------------------------------------------------------------------------------------


def test_default_camera_is_the_scene_camera_even_when_the_wrist_comes_first(tmp_path):
    root = write_lerobot_v21(tmp_path / "toto", episodes=[("a", 3)], cameras=(WRIST_CAMERA, SCENE_CAMERA))
    source = LeRobotSource(root)
    assert source.video_keys == [WRIST_CAMERA, SCENE_CAMERA]
    assert source.video_key == SCENE_CAMERA
    (ep,) = source.episodes()
    assert (video.probe(ep.video).width, video.probe(ep.video).height) == SCENE_SIZE


def test_default_video_key_falls_back_to_the_first_camera():
    assert default_video_key(["obs.images.wrist_left", "obs.images.hand"]) == "obs.images.wrist_left"
    assert (
        default_video_key(["obs.images.left_wrist", "obs.images.top", "obs.images.side"]) == "obs.images.top"
    )


@pytest.mark.parametrize("asked", [WRIST_CAMERA, "wrist_image"])
def test_explicit_video_key_selects_that_camera(v21_h264, asked):
    source = LeRobotSource(v21_h264, video_key=asked)
    entries = list(source.episodes())
    assert source.video_key == WRIST_CAMERA and {e.camera for e in entries} == {WRIST_CAMERA}
    assert all(f"/{WRIST_CAMERA}/" in e.video for e in entries)
    info = video.probe(entries[0].video)
    assert (info.width, info.height) == WRIST_SIZE


def test_explicit_video_key_on_v30_uses_that_cameras_files(v30_av1):
    entries = list(LeRobotSource(v30_av1, video_key=WRIST_CAMERA).episodes())
    assert entries[3].video == str(v30_av1 / f"videos/{WRIST_CAMERA}/chunk-000/file-001.mp4")
    assert (entries[1].video_start, entries[1].video_end) == (0.6, 1.4)


def test_unknown_video_key_is_a_source_error_listing_the_keys(v21_h264):
    with pytest.raises(
        SourceError, match=re.escape("video_key 'observation.images.top' is not a video feature")
    ) as err:
        LeRobotSource(v21_h264, video_key="observation.images.top")
    assert SCENE_CAMERA in str(err.value) and WRIST_CAMERA in str(err.value)
    assert "meta/info.json" in str(err.value)


# -- datasets unusable as a whole -------------------------------------------------------------------


def test_missing_folder_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match=re.escape(f"folder not found: {tmp_path / 'nope'}")):
        LeRobotSource(tmp_path / "nope")


def test_missing_info_json_is_a_source_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match=r"empty/meta/info\.json: file not found"):
        LeRobotSource(tmp_path / "empty")


def test_info_json_that_is_not_json_is_a_source_error(v21_h264, tmp_path):
    root = copy_of(v21_h264, tmp_path)
    (root / "meta" / "info.json").write_text('{"codebase_version": "v2.1", ')
    with pytest.raises(SourceError, match=r"meta/info\.json: not valid JSON"):
        LeRobotSource(root)


@pytest.mark.parametrize("key", ["codebase_version", "fps", "features", "video_path"])
def test_info_json_missing_a_key_is_a_source_error_naming_it(v21_h264, tmp_path, key):
    root = copy_of(v21_h264, tmp_path)
    info_path = edit_info(root, **{key: None})
    with pytest.raises(SourceError, match=re.escape(f"{info_path}: missing key(s) {key}")):
        LeRobotSource(root)


@pytest.mark.parametrize("version", ["v1.6", "v4.0", "2.1"])
def test_unknown_version_is_a_source_error(v21_h264, tmp_path, version):
    root = copy_of(v21_h264, tmp_path)
    info_path = edit_info(root, codebase_version=version)
    with pytest.raises(SourceError, match=re.escape(f"{info_path}: unknown LeRobot version '{version}'")):
        LeRobotSource(root)


def test_no_video_features_is_a_source_error(v21_h264, tmp_path):
    root = copy_of(v21_h264, tmp_path)
    features = json.loads((root / "meta" / "info.json").read_text())["features"]
    for key in (SCENE_CAMERA, WRIST_CAMERA):
        features[key]["dtype"] = "image"
    edit_info(root, features=features)
    with pytest.raises(SourceError, match="no video features"):
        LeRobotSource(root)


def test_bad_fps_or_template_is_a_source_error(v21_h264, tmp_path):
    root = copy_of(v21_h264, tmp_path)
    edit_info(root, fps=0)
    with pytest.raises(SourceError, match="fps must be a positive number"):
        LeRobotSource(root)
    edit_info(root, fps=10, video_path="videos/{camera}/{episode_index}.mp4")
    with pytest.raises(SourceError, match=r"video_path template .* cannot be filled"):
        LeRobotSource(root)


def test_missing_episode_metadata_is_a_source_error(v21_h264, v30_av1, tmp_path):
    v21 = copy_of(v21_h264, tmp_path)
    (v21 / "meta" / "episodes.jsonl").unlink()
    with pytest.raises(SourceError, match=r"meta/episodes\.jsonl: episode metadata not found"):
        LeRobotSource(v21)
    v30 = copy_of(v30_av1, tmp_path)
    episodes_file = v30 / "meta/episodes/chunk-000/file-000.parquet"
    table = pq.read_table(episodes_file)
    pq.write_table(table.drop_columns([f"videos/{SCENE_CAMERA}/from_timestamp"]), episodes_file)
    with pytest.raises(
        SourceError,
        match=re.escape(f"file-000.parquet: missing column(s) videos/{SCENE_CAMERA}/from_timestamp"),
    ):
        LeRobotSource(v30)
    LeRobotSource(v30, video_key=WRIST_CAMERA)  # the other camera's columns are all there


# -- faults in single episodes ------------------------------------------------------------------------


def test_v21_faults_become_skips_with_reasons(tmp_path):
    episodes = [
        ("pick up the cup", 3),
        ("   ", 3),
        ("open the lid", 3),
        ("fold the towel", 3),
        ("wipe it", 3),
    ]
    root = write_lerobot_v21(
        tmp_path / "faulty", episodes=episodes, missing_videos=[2], duplicate=[3], non_utf8=[4]
    )
    entries = list(LeRobotSource(root).episodes())
    assert [e.episode_id for e in entries] == ["0", "1", "2", "3", "3", "4"]
    good, skips = split(entries)
    assert [(e.episode_id, e.task) for e in good] == [("0", "pick up the cup"), ("3", "fold the towel")]
    reasons = {(s.episode_id, s.reason) for s in skips}
    missing = root / f"videos/chunk-000/{SCENE_CAMERA}/episode_000002.mp4"
    assert reasons == {
        ("1", "task is empty in meta/episodes.jsonl line 2; task_index 1 names an empty task"),
        ("2", f"video file missing: {missing}"),
        (
            "3",
            "duplicate episode_index 3 in meta/episodes.jsonl line 5 "
            "(first listed in meta/episodes.jsonl line 4)",
        ),
        ("4", "non-UTF-8 bytes in meta/episodes.jsonl line 6"),
    }
    assert {s.source for s in skips} == {"oxe/faulty"}


def test_v21_unparseable_line_is_a_skip_and_listed_last(v21_h264, tmp_path):
    root = copy_of(v21_h264, tmp_path)
    with (root / "meta" / "episodes.jsonl").open("a") as f:
        f.write("{not json\n")
    source = LeRobotSource(root)
    entries = list(source.episodes())
    assert source.episode_indices() == [0, 1, 2]
    assert entries[-1] == Skip("oxe/toto", "meta/episodes.jsonl line 4", entries[-1].reason)
    assert entries[-1].reason.startswith("not valid JSON in meta/episodes.jsonl line 4")
    assert [type(e) for e in entries[:3]] == [Episode] * 3


def test_unreadable_entries_are_skips_even_when_episodes_are_picked_by_index(v21_h264, tmp_path):
    root = copy_of(v21_h264, tmp_path)
    with (root / "meta" / "episodes.jsonl").open("a") as f:
        f.write('{"tasks": ["open the drawer"], "length": 5}\n{"episode_ind\n')
    picked = list(LeRobotSource(root).episodes(indices=[1]))
    assert [(type(e).__name__, e.episode_id) for e in picked] == [
        ("Episode", "1"),
        ("Skip", "meta/episodes.jsonl line 4"),
        ("Skip", "meta/episodes.jsonl line 5"),
    ]
    assert picked[1].reason == "no integer episode_index in meta/episodes.jsonl line 4"
    assert picked[2].reason.startswith("not valid JSON in meta/episodes.jsonl line 5")


def test_a_template_escaping_the_dataset_folder_is_refused(v21_h264, tmp_path):
    root = copy_of(v21_h264, tmp_path)
    elsewhere = Path(shutil.copytree(root, tmp_path / "elsewhere"))  # another dataset's videos
    template = json.loads((root / "meta" / "info.json").read_text())["video_path"]
    edit_info(root, video_path="../elsewhere/" + template)
    assert (elsewhere / template.format(episode_chunk=0, episode_index=0, video_key=SCENE_CAMERA)).is_file()
    good, skips = split(list(LeRobotSource(root).episodes()))
    assert good == [] and len(skips) == 3
    assert skips[0].reason == (
        "video path ../elsewhere/videos/chunk-000/observation.images.image/episode_000000.mp4 escapes the "
        "dataset folder (video_path template, meta/episodes.jsonl line 1)"
    )
    edit_info(root, video_path=str(elsewhere) + "/" + template)  # an absolute template
    assert all("escapes the dataset folder" in s.reason for s in LeRobotSource(root).episodes())


def test_symlinks_into_a_blob_store_stay_allowed(v21_h264, tmp_path):
    """A Hub cache snapshot: every file is a symlink into ../../blobs, outside the snapshot folder."""
    root = copy_of(v21_h264, tmp_path)
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    for index, path in enumerate(sorted((root / "videos").rglob("*.mp4"))):
        blob = blobs / f"blob{index}"
        path.rename(blob)
        path.symlink_to(blob)
    entries = list(LeRobotSource(root).episodes())
    assert [type(e) for e in entries] == [Episode] * 3
    assert Path(entries[0].video).is_symlink() and Path(entries[0].video).parent.is_relative_to(root)


def test_control_characters_are_removed_from_task_text(v21_h264, tmp_path):
    root = copy_of(v21_h264, tmp_path)
    path = root / "meta" / "episodes.jsonl"
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    first["tasks"] = ["pick\u0000 up the \u001b[31mred\u001b[0m cup\u0007"]
    lines[0] = json.dumps(first)
    first["tasks"], first["episode_index"] = ["\u001b[2J\u0000"], 1
    lines[1] = json.dumps(first)
    path.write_text("\n".join(lines) + "\n")
    entries = list(LeRobotSource(root).episodes())
    assert entries[0].task == entries[0].original_task == "pick up the red cup"
    assert isinstance(entries[1], Skip) and entries[1].reason.startswith("task is empty")


def test_v30_faults_become_skips_with_reasons(tmp_path):
    episodes = [("stack the cups", 4), ("", 4), ("close the microwave", 4), ("push the button", 4)]
    root = write_lerobot_v30(
        tmp_path / "faulty_lerobot",
        episodes=episodes,
        codec="libx264",
        cameras=[SCENE_CAMERA],
        episodes_per_file=3,
        missing_videos=[1],  # file-001 holds episode 3 only
        duplicate=[2],
    )
    entries = list(LeRobotSource(root).episodes())
    assert [e.episode_id for e in entries] == ["0", "1", "2", "2", "3"]
    good, skips = split(entries)
    assert [(e.episode_id, e.video_start, e.video_end) for e in good] == [("0", 0.0, 0.4), ("2", 0.8, 1.2)]
    missing = root / f"videos/{SCENE_CAMERA}/chunk-000/file-001.mp4"
    episodes_file = "meta/episodes/chunk-000/file-000.parquet"
    assert {(s.episode_id, s.reason) for s in skips} == {
        ("1", f"task is empty in {episodes_file} row 1; task_index 1 names an empty task"),
        ("2", f"duplicate episode_index 2 in {episodes_file} row 3 (first listed in {episodes_file} row 2)"),
        ("3", f"video file missing: {missing}"),
    }


def test_v30_missing_time_range_is_a_skip(v30_av1, tmp_path):
    root = copy_of(v30_av1, tmp_path)
    episodes_file = root / "meta/episodes/chunk-000/file-000.parquet"
    rows = pq.read_table(episodes_file).to_pylist()
    rows[2][f"videos/{SCENE_CAMERA}/to_timestamp"] = None
    rows[1][f"videos/{SCENE_CAMERA}/to_timestamp"] = rows[1][f"videos/{SCENE_CAMERA}/from_timestamp"]
    pq.write_table(pq.read_table(episodes_file).from_pylist(rows), episodes_file)
    _, skips = split(list(LeRobotSource(root).episodes()))
    assert [s.episode_id for s in skips] == ["1", "2"]
    assert "video time range is empty" in skips[0].reason
    assert "file-000.parquet row 1" in skips[0].reason
    assert skips[1].reason == (
        f"no {SCENE_CAMERA} video file or time range in meta/episodes/chunk-000/file-000.parquet row 2"
    )


# -- where the task text comes from ---------------------------------------------------------------------


@pytest.mark.parametrize("storage", ["task_index", "language_instruction"])
@pytest.mark.parametrize("writer", [write_lerobot_v21, write_lerobot_v30])
def test_task_falls_back_to_the_data_parquet(tmp_path, writer, storage):
    episodes = [("pour the water", 3), ("   ", 3), ("pour the water", 4), ("open the oven", 3)]
    root = writer(
        tmp_path / "fallback",
        episodes=episodes,
        codec="libx264",
        cameras=[SCENE_CAMERA],
        task_storage=storage,
    )
    good, skips = split(list(LeRobotSource(root).episodes()))
    assert [(e.episode_id, e.task) for e in good] == [
        ("0", "pour the water"),
        ("2", "pour the water"),
        ("3", "open the oven"),
    ]
    assert [s.episode_id for s in skips] == ["1"]
    assert skips[0].reason.startswith("no task listed in ")


def test_non_utf8_task_table_line_is_a_skip(tmp_path):
    root = write_lerobot_v21(
        tmp_path / "toto", episodes=[("a", 3), ("b", 3)], cameras=[SCENE_CAMERA], task_storage="task_index"
    )
    (root / "meta" / "tasks.jsonl").write_bytes(
        b'{"task_index": 0, "task": "a"}\n{"task_index": 1, "task": "b\xe9"}\n'
    )
    good, skips = split(list(LeRobotSource(root).episodes()))
    assert [(e.episode_id, e.task) for e in good] == [("0", "a")]
    assert skips == [
        Skip(
            "oxe/toto",
            "1",
            "no task listed in meta/episodes.jsonl line 2; non-UTF-8 bytes in meta/tasks.jsonl line 2",
        )
    ]


# -- selection, order, names ---------------------------------------------------------------------------


def test_episode_indices_and_selection_read_metadata_only(v30_av1):
    source = LeRobotSource(v30_av1)
    assert source.episode_indices() == [0, 1, 2, 3] and source.count() == 4
    picked = list(source.episodes(indices=[3, 1]))
    assert [(e.episode_id, e.task) for e in picked] == [("1", "wipe the table"), ("3", "push the button")]
    assert list(source.episodes(indices=[])) == []
    with pytest.raises(ValueError, match=r"episode indices not in the metadata .*: 7, 9"):
        source.episodes(indices=[0, 9, 7])


def test_order_is_ascending_episode_index_whatever_the_file_order(v21_h264, tmp_path):
    root = copy_of(v21_h264, tmp_path)
    path = root / "meta" / "episodes.jsonl"
    path.write_text("\n".join(reversed(path.read_text().splitlines())) + "\n")
    first = list(LeRobotSource(root).episodes())
    assert [e.episode_id for e in first] == ["0", "1", "2"]
    assert first == list(LeRobotSource(root).episodes())
    assert [e.id for e in first] == [e.id for e in LeRobotSource(v21_h264).episodes()]


def test_name_defaults_to_the_folder_without_lerobot_suffix_and_can_be_overridden(v21_h264):
    assert LeRobotSource(v21_h264).name == "oxe/toto"
    source = LeRobotSource(v21_h264, name="toto_sim")
    assert source.name == "oxe/toto_sim"
    assert {e.source for e in source.episodes()} == {"oxe/toto_sim"}


# -- Hub ----------------------------------------------------------------------------------------------


class FakeHub:
    """Stands in for snapshot_download: copies the files of `dataset` the patterns allow."""

    def __init__(self, dataset: Path, cache: Path):
        self.dataset, self.cache, self.calls = dataset, cache, []

    def __call__(self, repo_id, *, repo_type, revision, cache_dir, allow_patterns):
        self.calls.append(
            {"repo_id": repo_id, "repo_type": repo_type, "revision": revision, "patterns": allow_patterns}
        )
        snapshot = self.cache / repo_id.replace("/", "--") / "snapshots" / "abc123"
        for file in self.dataset.rglob("*"):
            rel = file.relative_to(self.dataset).as_posix()
            if file.is_file() and any(fnmatch.fnmatch(rel, p) for p in allow_patterns):
                (snapshot / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(file, snapshot / rel)
        return str(snapshot)


@pytest.mark.parametrize("layout", ["v21", "v30"])
def test_hub_id_downloads_the_metadata_then_only_the_sampled_episodes_files(
    v21_h264, v30_av1, tmp_path, monkeypatch, layout
):
    dataset = v21_h264 if layout == "v21" else v30_av1
    hub = FakeHub(dataset, tmp_path / "cache")
    monkeypatch.setattr(lerobot_module, "snapshot_download", hub)
    source = LeRobotSource("lerobot/toto_lerobot", revision="v2.1")
    assert [c["repo_id"] for c in hub.calls] == ["lerobot/toto_lerobot"] * 2
    assert {(c["repo_type"], c["revision"]) for c in hub.calls} == {("dataset", "v2.1")}
    assert hub.calls[0]["patterns"] == ["meta/info.json"]
    rewards = "meta/episode_rewards.jsonl"  # the rewards sidecar, fetched with the metadata when there is one
    if layout == "v21":
        assert hub.calls[1]["patterns"] == [
            "meta/info.json",
            "meta/episodes.jsonl",
            "meta/tasks.jsonl",
            rewards,
        ]
    else:
        assert hub.calls[1]["patterns"] == [
            "meta/info.json",
            "meta/episodes/*",
            "meta/tasks.parquet",
            rewards,
        ]
    snapshot = Path(source.root)
    assert not list(snapshot.glob("videos/**/*.mp4")) and not list(snapshot.glob("data/**/*.parquet"))
    indices = source.episode_indices()
    picked = [indices[0], indices[-1]]
    entries = list(source.episodes(indices=picked))
    if layout == "v21":
        assert hub.calls[2]["patterns"] == [f"data/chunk-000/episode_{i:06d}.parquet" for i in picked] + [
            f"videos/chunk-000/{SCENE_CAMERA}/episode_{i:06d}.mp4" for i in picked
        ]
    else:  # v3.0: episodes share files; each file is asked for once
        files = hub.calls[2]["patterns"]
        assert files == sorted(set(files)) and all(not any(c in f for c in "*?[") for f in files)
        assert any(f.startswith(f"videos/{SCENE_CAMERA}/") for f in files)
    assert not any(WRIST_CAMERA in f for f in hub.calls[2]["patterns"])
    fetched = {p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file()}
    assert fetched - {"meta/info.json", "meta/episodes.jsonl", "meta/tasks.jsonl", "meta/tasks.parquet"} - {
        f for f in fetched if f.startswith("meta/episodes/")
    } == set(hub.calls[2]["patterns"])
    assert [e.episode_id for e in entries] == [str(i) for i in picked]
    assert all(isinstance(e, Episode) for e in entries)
    assert source.name == "oxe/toto" and {e.source for e in entries} == {"oxe/toto"}
    assert all(Path(e.video).is_file() and e.video.startswith(str(snapshot)) for e in entries)
    assert entries[0].provenance["dataset"] == "lerobot/toto_lerobot"
    assert entries[0].provenance["revision"] == "v2.1"


def test_hub_download_asks_for_the_explicit_camera(v21_h264, tmp_path, monkeypatch):
    hub = FakeHub(v21_h264, tmp_path / "cache")
    monkeypatch.setattr(lerobot_module, "snapshot_download", hub)
    source = LeRobotSource("lerobot/toto", video_key="wrist_image")
    assert {e.camera for e in source.episodes()} == {WRIST_CAMERA}
    videos = [f for f in hub.calls[2]["patterns"] if f.startswith("videos/")]
    assert videos and all(f"/{WRIST_CAMERA}/" in f for f in videos)


def test_hub_errors_are_source_errors(v21_h264, tmp_path, monkeypatch):
    def offline(repo_id, **kwargs):
        raise OSError("no internet")

    monkeypatch.setattr(lerobot_module, "snapshot_download", offline)
    with pytest.raises(SourceError, match=r"cannot download LeRobot dataset 'lerobot/nope' .*no internet"):
        LeRobotSource("lerobot/nope")
    hub = FakeHub(copy_of(v21_h264, tmp_path), tmp_path / "cache")
    edit_info(hub.dataset, codebase_version="v9.9")
    monkeypatch.setattr(lerobot_module, "snapshot_download", hub)
    with pytest.raises(
        SourceError, match=re.escape("meta/info.json of Hub dataset 'lerobot/toto': unknown LeRobot version")
    ):
        LeRobotSource("lerobot/toto")
    assert len(hub.calls) == 1  # nothing but info.json was fetched for an unusable dataset


def test_v30_tasks_table_with_an_unnamed_index_is_read(tmp_path):
    # LeRobot's recorder writes tasks.parquet with the task strings as an unnamed pandas index.
    root = write_lerobot_v30(
        tmp_path / "toto",
        episodes=[("a", 3), ("b", 3)],
        codec="libx264",
        cameras=[SCENE_CAMERA],
        task_storage="task_index",
    )
    pd.DataFrame({"task_index": [1, 0]}, index=["b", "a"]).to_parquet(root / "meta" / "tasks.parquet")
    assert [e.task for e in LeRobotSource(root).episodes()] == ["a", "b"]


# -- per-episode rewards: a sidecar or a column --------------------------------------------------------


def _labels(source: LeRobotSource) -> dict[str, tuple[int, float | None]]:
    return {e.episode_id: (e.reward, e.progress) for e in source.episodes() if isinstance(e, Episode)}


def _reasons(source: LeRobotSource) -> dict[str, str]:
    return {s.episode_id: s.reason for s in source.episodes() if isinstance(s, Skip)}


def test_a_rewards_sidecar_labels_the_episodes(v21_h264, v30_av1, tmp_path):
    for dataset, count in ((v21_h264, 3), (v30_av1, 4)):
        root = copy_of(dataset, tmp_path / dataset.name)
        assert set(_labels(LeRobotSource(root)).values()) == {(5, 1.0)}  # no sidecar: OXE's successes
        write_episode_rewards(root, [(i, i + 1, i / 4) for i in range(count)])
        source = LeRobotSource(root)
        assert source.rewards_from == REWARDS_PATH
        assert _labels(source) == {str(i): (i + 1, i / 4) for i in range(count)}
        episode = next(e for e in source.episodes() if isinstance(e, Episode))
        assert episode.provenance["reward_from"] == "meta/episode_rewards.jsonl"
        # "success" ignores the sidecar: every episode is OXE's 5 again.
        assert set(_labels(LeRobotSource(root, rewards="success")).values()) == {(5, 1.0)}


def test_sidecar_faults_are_skips_or_source_errors_naming_the_file(v21_h264, tmp_path):
    root = copy_of(v21_h264, tmp_path)
    sidecar = root / REWARDS_PATH
    sidecar.write_text(
        json.dumps({"episode_index": 0, "reward": 3.5})
        + "\n"
        + json.dumps({"episode_index": 1, "reward": 4, "progress": 1.5})
        + "\n"
    )
    reasons = _reasons(LeRobotSource(root))
    assert reasons == {
        "0": "reward 3.5 is not an integer 1..5 in meta/episode_rewards.jsonl line 1",
        "1": "progress 1.5 is not a fraction in [0, 1] in meta/episode_rewards.jsonl line 2",
        "2": "no reward for episode 2 in meta/episode_rewards.jsonl",
    }
    sidecar.write_text('{"episode_index": 0, "reward": 2}\n{"reward": 4}\n')
    with pytest.raises(SourceError, match=r"episode_rewards.jsonl line 2: no integer episode_index"):
        LeRobotSource(root)
    sidecar.write_text('{"episode_index": 0, "reward": 2}\nnot json\n')
    with pytest.raises(SourceError, match=r"not valid JSON in .*episode_rewards.jsonl line 2"):
        LeRobotSource(root)
    sidecar.write_text('{"episode_index": 1, "reward": 2}\n{"episode_index": 1, "reward": 3}\n')
    with pytest.raises(SourceError, match=r"episode 1 has two rewards \(line 1 and line 2\)"):
        LeRobotSource(root)


def test_a_named_sidecar_file_jsonl_or_parquet(v21_h264, tmp_path):
    root = copy_of(v21_h264, tmp_path)
    table = pd.DataFrame({"episode_index": [2, 0, 1], "reward": [1, 5, 3], "progress": [0.0, 1.0, 0.5]})
    table.to_parquet(root / "truth.parquet")
    source = LeRobotSource(root, rewards="truth.parquet")
    assert source.rewards_from == "truth.parquet"
    assert _labels(source) == {"0": (5, 1.0), "1": (3, 0.5), "2": (1, 0.0)}
    outside = tmp_path / "elsewhere.jsonl"
    outside.write_text("".join(json.dumps({"episode_index": i, "reward": 2}) + "\n" for i in range(3)))
    assert set(_labels(LeRobotSource(root, rewards=str(outside))).values()) == {(2, None)}
    with pytest.raises(SourceError, match=r"rewards sidecar .*missing.jsonl not found"):
        LeRobotSource(root, rewards="missing.jsonl")
    table.drop(columns=["reward"]).to_parquet(root / "bad.parquet")
    with pytest.raises(SourceError, match=r"bad.parquet: missing column\(s\) reward"):
        LeRobotSource(root, rewards="bad.parquet")


def test_a_reward_column_of_the_episode_metadata(v21_h264, v30_av1, tmp_path):
    root = copy_of(v21_h264, tmp_path / "v21")
    path = root / "meta" / "episodes.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    lines[0]["success_score"], lines[1]["success_score"] = 2, 6
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    source = LeRobotSource(root, rewards="column:success_score")
    assert source.rewards_from == "column:success_score"
    assert _labels(source) == {"0": (2, None)}
    assert _reasons(source) == {
        "1": "reward 6 is not an integer 1..5 in success_score of meta/episodes.jsonl line 2",
        "2": "no success_score (the reward column) in meta/episodes.jsonl line 3",
    }
    with pytest.raises(SourceError, match=r"no episode has the reward column 'score'"):
        LeRobotSource(root, rewards="column:score").episode_indices()

    root = copy_of(v30_av1, tmp_path / "v30")
    meta = next((root / "meta" / "episodes").rglob("*.parquet"))
    table = pq.read_table(meta).to_pandas()
    table["outcome"] = [1, 2, 3, 4]
    table.to_parquet(meta)
    assert _labels(LeRobotSource(root, rewards="column:outcome")) == {str(i): (i + 1, None) for i in range(4)}


def test_rewards_option_is_checked(v21_h264):
    assert parse_rewards(" column: score ") == ("column", "score")
    for bad, message in (
        ("", "must be auto, success, column:NAME or a file"),
        ("column:", "names no column"),
        ("truth", r"a sidecar file ends in \.jsonl or \.parquet"),
    ):
        with pytest.raises(ValueError, match=message):
            LeRobotSource(v21_h264, rewards=bad)


# -- hostile metadata: a whole-source problem is a SourceError naming the file, an entry's a Skip ------

DEEP = "[" * 100_000 + "]" * 100_000
DIGITS_5000 = "9" * 5000


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"codebase_version": ["v2.1"]}, "unknown LeRobot version ['v2.1']"),
        ({"video_path": "videos/{video_key}/{episode_index.nope}.mp4"}, "unknown field 'episode_index.nope'"),
        ({"video_path": "videos/{video_key}/{episode_index[0]}.mp4"}, "unknown field 'episode_index[0]'"),
        ({"video_path": "videos/{video_key}/{episode_index!r}.mp4"}, "conversion !r in field episode_index"),
        ({"video_path": "videos/{video_key}/{episode_index:{episode_chunk}}.mp4"}, "nested field"),
        ({"video_path": "videos/{video_key}/{episode_index:01000000000d}.mp4"}, "width 1000000000 is over"),
        ({"data_path": "data/{episode_chunk:>1000000000}.parquet"}, "width 1000000000 is over 32"),
    ],
    ids=["version-list", "attribute", "item", "conversion", "nested-spec", "width-1e9", "data-width-1e9"],
)
def test_hostile_info_json_values_are_source_errors_naming_the_file(v21_h264, tmp_path, edit, message):
    root = copy_of(v21_h264, tmp_path)
    info_path = edit_info(root, **edit)
    with pytest.raises(SourceError) as caught:
        LeRobotSource(root)  # a width of 1e9 allocated 9.3 GB here before the template was checked
    assert str(caught.value).startswith(f"{info_path}: ") and message in str(caught.value)
    assert len(str(caught.value)) < 400


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (DEEP, "not readable JSON (nested too deep)"),
        ('{"codebase_version": "v2.1", "x": ' + DEEP + "}", "not readable JSON (nested too deep)"),
        ('{"codebase_version": "v2.1", "fps": ' + DIGITS_5000 + "}", "not readable JSON (a number over"),
    ],
    ids=["deep", "deep-inside", "fps-5000-digits"],
)
def test_unreadable_info_json_is_a_source_error_naming_the_file(v21_h264, tmp_path, text, message):
    root = copy_of(v21_h264, tmp_path)
    (root / "meta" / "info.json").write_text(text)
    with pytest.raises(SourceError, match=re.escape(f"{root / 'meta' / 'info.json'}: {message}")):
        LeRobotSource(root)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (
            '{"episode_index": ' + "9" * 300 + ', "tasks": ["open it"], "length": 3}',
            "episode_index 999999999999999999999999999999999999999999999999999999999... is not an integer "
            "0..9223372036854775807 in meta/episodes.jsonl line 4",
        ),
        (
            '{"episode_index": -2, "tasks": ["open it"], "length": 3}',
            "episode_index -2 is not an integer 0..9223372036854775807 in meta/episodes.jsonl line 4",
        ),
        (DEEP, "not readable JSON in meta/episodes.jsonl line 4 (nested too deep)"),
        (
            '{"episode_index": ' + DIGITS_5000 + "}",
            "not readable JSON in meta/episodes.jsonl line 4 (a number over 4300 digits)",
        ),
    ],
    ids=["index-300-digits", "index-negative", "deep", "index-5000-digits"],
)
def test_hostile_episodes_jsonl_line_is_a_skip_the_others_kept(v21_h264, tmp_path, line, reason):
    root = copy_of(v21_h264, tmp_path)
    with (root / "meta" / "episodes.jsonl").open("a") as f:
        f.write(line + "\n")
    entries = list(LeRobotSource(root).episodes())
    assert [(type(e).__name__, e.episode_id) for e in entries] == [
        ("Episode", "0"),
        ("Episode", "1"),
        ("Episode", "2"),
        ("Skip", "meta/episodes.jsonl line 4"),
    ]
    assert entries[3].reason == reason


def test_hostile_tasks_jsonl_index_is_not_read(tmp_path):
    root = write_lerobot_v21(tmp_path / "toto_lerobot", codec="libx264", task_storage="task_index")
    with (root / "meta" / "tasks.jsonl").open("a") as f:
        f.write('{"task_index": ' + DIGITS_5000 + ', "task": "x"\n')
    entries = list(LeRobotSource(root).episodes())
    assert [e.task for e in entries] == [task for task, _ in DEFAULT_EPISODES]


@pytest.mark.parametrize(
    ("start", "end", "reason"),
    [
        (-5.0, -1.0, "video time range [-5, -1) s starts before the video in {where}"),
        (None, 1e308, "video time range [0.6, 1e+308) s is over the limit of 3600 s in {where}"),
    ],
    ids=["before-the-video", "to-1e308"],
)
def test_v30_time_range_outside_the_video_is_a_skip(tmp_path, start, end, reason):
    root = write_lerobot_v30(
        tmp_path / "ranges_lerobot", episodes=V30_EPISODES[:3], codec="libx264", cameras=[SCENE_CAMERA]
    )
    episodes_file = root / "meta/episodes/chunk-000/file-000.parquet"
    table = pq.read_table(episodes_file)
    rows = table.to_pylist()
    if start is not None:
        rows[1][f"videos/{SCENE_CAMERA}/from_timestamp"] = start
    rows[1][f"videos/{SCENE_CAMERA}/to_timestamp"] = end
    pq.write_table(table.from_pylist(rows, schema=table.schema), episodes_file)
    entries = list(LeRobotSource(root).episodes())
    assert [(type(e).__name__, e.episode_id) for e in entries] == [
        ("Episode", "0"),
        ("Skip", "1"),
        ("Episode", "2"),
    ]
    assert entries[1].reason == reason.format(where="meta/episodes/chunk-000/file-000.parquet row 1")
    assert (entries[0].video_start, entries[0].video_end) == (0.0, 0.6)


def test_frame_indices_refuse_a_range_before_the_video_and_clamp_a_huge_end():
    info = video.VideoInfo(frames=20, fps=10.0, width=8, height=8, duration=2.0, codec="h264")
    with pytest.raises(ValueError, match=r"end=-1.0s is at or before the start of the video"):
        video.frame_indices(info, num_frames=4, start=-5.0, end=-1.0)  # was one frame: a one-frame row
    assert video.frame_indices(info, num_frames=3, start=1.0, end=1e308).tolist() == [10, 14, 19]
