"""ManifestSource: your own rollouts from JSONL or CSV; bad rows are Skips naming the line."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from conftest import split_entries as split
from conftest import write_video

from roboreward.episode import Episode, Skip
from roboreward.sources import EpisodeSource, SourceError
from roboreward.sources.manifest import ManifestSource

COLUMNS = ["video", "task", "reward", "progress", "source", "episode_id", "camera"]

# Rows that become episodes, with the (reward, progress) hand-computed from the default bins:
# 0 -> 1; (0, 1/3] -> 2; (1/3, 2/3] -> 3; (2/3, 1) -> 4; exactly 1 or 100 -> 5. Above 1 is percent.
GOOD = [
    ({"video": "clips/ep0.mp4", "task": "open the drawer", "reward": 5, "episode_id": "ep0"}, (5, None)),
    ({"video": "clips/ep1.mp4", "task": "open the drawer", "progress": 0.5, "episode_id": "ep1"}, (3, 0.5)),
    (
        {
            "video": "clips/ep2.mp4",
            "task": "close the drawer",
            "reward": 4,
            "progress": 80,
            "episode_id": "ep2",
            "camera": "front",
        },
        (4, 0.8),
    ),
    ({"video": "clips/ep3.mp4", "task": "pick up the cup", "progress": 0, "episode_id": "ep3"}, (1, 0.0)),
    ({"video": "clips/ep4.mp4", "task": "pick up the cup", "progress": 0.2, "episode_id": "ep4"}, (2, 0.2)),
    (
        {
            "video": "./clips/../clips/ep5.mp4",
            "task": "pick up the cup",
            "progress": 100,
            "episode_id": "ep5",
        },
        (5, 1.0),
    ),
    (
        {
            "video": "clips/ep6.mp4",
            "task": "stack the  blocks\n",
            "reward": 5,
            "progress": 1.0,
            "episode_id": "ep6",
            "source": "lab/franka",
        },
        (5, 1.0),
    ),
    ({"video": "clips/ep7.mp4", "task": "stack the blocks", "progress": 0.9, "episode_id": "ep7"}, (4, 0.9)),
    ({"video": "clips/ep8.mp4", "task": "stack the blocks", "progress": 34, "episode_id": "ep8"}, (3, 0.34)),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """rollouts/clips/ep0..ep9.mp4; rollouts/inside_link.mp4 -> clips/ep9.mp4 (stays inside);
    rollouts/clips/link.mp4 -> ../../outside.mp4 (points out)."""
    base = tmp_path_factory.mktemp("manifest")
    root = base / "rollouts"
    (root / "clips").mkdir(parents=True)
    write_video(root / "clips/ep0.mp4", num_frames=6, size=(32, 24))
    for i in range(1, 10):
        shutil.copyfile(root / "clips/ep0.mp4", root / f"clips/ep{i}.mp4")
    shutil.copyfile(root / "clips/ep0.mp4", base / "outside.mp4")
    (root / "clips/link.mp4").symlink_to(Path("../../outside.mp4"))
    (root / "inside_link.mp4").symlink_to(Path("clips/ep9.mp4"))
    return root


def write_jsonl(path: Path, lines: list) -> Path:
    """Each item: a dict (one JSON object), bytes (written as they are) or a str (one raw line)."""
    with path.open("wb") as f:
        for item in lines:
            raw = json.dumps(item).encode() if isinstance(item, dict) else item
            f.write((raw.encode() if isinstance(raw, str) else raw) + b"\n")
    return path


def write_csv(path: Path, rows: list[dict], columns: list[str] = COLUMNS) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


# -- good rows ------------------------------------------------------------------------------------


def test_is_an_episode_source(folder: Path) -> None:
    source = ManifestSource(write_jsonl(folder / "manifest.jsonl", [row for row, _ in GOOD]))
    assert isinstance(source, EpisodeSource)
    assert source.name == "manifest/manifest"


def test_good_rows_become_episodes(folder: Path) -> None:
    episodes, skips = split(
        list(ManifestSource(write_jsonl(folder / "good.jsonl", [r for r, _ in GOOD])).episodes())
    )
    assert skips == []
    assert len(episodes) == len(GOOD) == 9
    assert [e.episode_id for e in episodes] == [f"ep{i}" for i in range(9)]
    for episode, (row, (reward, progress)) in zip(episodes, GOOD, strict=True):
        assert episode.reward == reward, row
        assert episode.progress == (None if progress is None else pytest.approx(progress)), row


def test_episode_fields(folder: Path) -> None:
    episodes, _ = split(
        list(ManifestSource(write_jsonl(folder / "good.jsonl", [r for r, _ in GOOD])).episodes())
    )
    ep0, ep2, ep5, ep6 = episodes[0], episodes[2], episodes[5], episodes[6]
    assert ep0.video == str((folder / "clips/ep0.mp4").resolve())
    assert ep0.task == ep0.original_task == "open the drawer"
    assert (ep0.source, ep0.camera, ep0.augmentation) == ("manifest/good", None, "original")
    assert ep0.group == "manifest/good/ep0"
    assert ep0.provenance == {"manifest": "good.jsonl", "line": 1}
    assert ep2.camera == "front"
    assert ep5.video == str((folder / "clips/ep5.mp4").resolve())  # ./clips/../clips/ is normalised
    assert (ep6.source, ep6.task, ep6.group) == ("lab/franka", "stack the blocks", "lab/franka/ep6")


def test_csv_and_jsonl_give_the_same_episodes(folder: Path) -> None:
    jsonl = ManifestSource(write_jsonl(folder / "manifest.jsonl", [r for r, _ in GOOD]))
    csv_source = ManifestSource(write_csv(folder / "manifest.csv", [r for r, _ in GOOD]))
    from_jsonl, from_csv = list(jsonl.episodes()), list(csv_source.episodes())
    assert all(isinstance(e, Episode) for e in from_jsonl + from_csv)
    assert from_csv == from_jsonl  # every field but provenance (which names file and line)
    assert [e.id for e in from_csv] == [e.id for e in from_jsonl]
    # The header is line 1, and ep6's task holds a newline, so its quoted cell spans lines 8-9.
    assert [e.provenance["line"] for e in from_csv] == [2, 3, 4, 5, 6, 7, 8, 10, 11]


def test_absolute_path_and_symlink_inside_the_folder_are_fine(folder: Path) -> None:
    rows = [
        {"video": str(folder / "clips/ep3.mp4"), "task": "pick up the cup", "reward": 1},
        {"video": "inside_link.mp4", "task": "pick up the cup", "reward": 2},
    ]
    episodes, skips = split(list(ManifestSource(write_jsonl(folder / "inside.jsonl", rows)).episodes()))
    assert skips == []
    assert [e.video for e in episodes] == [
        str((folder / "clips/ep3.mp4").resolve()),
        str((folder / "clips/ep9.mp4").resolve()),
    ]


def test_default_episode_id_is_the_line_number(folder: Path) -> None:
    lines = [
        {"video": "clips/ep0.mp4", "task": "open the drawer", "reward": 5},
        "",
        {"video": "clips/ep1.mp4", "task": "open the drawer", "reward": 1},
    ]
    episodes, skips = split(list(ManifestSource(write_jsonl(folder / "ids.jsonl", lines)).episodes()))
    assert skips == []
    assert [e.episode_id for e in episodes] == ["1", "3"]
    csv_episodes, _ = split(
        list(ManifestSource(write_csv(folder / "ids.csv", [lines[0], lines[2]])).episodes())
    )
    assert [e.episode_id for e in csv_episodes] == ["2", "3"]


def test_name_and_numbers_as_text(folder: Path) -> None:
    rows = [
        {"video": "clips/ep0.mp4", "task": "open the drawer", "reward": "4", "episode_id": 7},
        {"video": "clips/ep1.mp4", "task": "open the drawer", "reward": 2.0, "progress": "0.25"},
    ]
    source = ManifestSource(write_jsonl(folder / "named.jsonl", rows), name="my_lab")
    episodes, skips = split(list(source.episodes()))
    assert skips == []
    assert [(e.source, e.episode_id, e.reward, e.progress) for e in episodes] == [
        ("my_lab", "7", 4, None),
        ("my_lab", "2", 2, 0.25),
    ]


# -- bad rows -------------------------------------------------------------------------------------

OK = {"task": "open the drawer", "reward": 3}
BAD = [  # (line content, reason fragment); line N of bad.jsonl is BAD[N - 1]
    ({"video": "clips/ep0.mp4", **OK, "episode_id": "a"}, None),
    ('{"video": "clips/ep1.mp4", "task": ', "invalid JSON in bad.jsonl line 2"),
    ("[1, 2]", "not a JSON object in bad.jsonl line 3"),
    ({"task": "open the drawer", "reward": 3}, "video is missing in bad.jsonl line 4"),
    ({"video": "clips/nope.mp4", **OK}, "video file not found in bad.jsonl line 5"),
    ({"video": "clips/ep1.mp4", "task": "   ", "reward": 3}, "task is empty in bad.jsonl line 6"),
    ({"video": "clips/ep1.mp4", "reward": 3}, "task is missing in bad.jsonl line 7"),
    (
        {"video": "clips/ep1.mp4", "task": "open the drawer", "reward": 0},
        "reward must be an integer 1..5 in bad.jsonl line 8",
    ),
    (
        {"video": "clips/ep1.mp4", "task": "open the drawer", "reward": 6},
        "reward must be an integer 1..5 in bad.jsonl line 9",
    ),
    (
        {"video": "clips/ep1.mp4", "task": "open the drawer", "reward": "high"},
        "reward must be an integer 1..5 in bad.jsonl line 10, got 'high'",
    ),
    (
        {"video": "clips/ep1.mp4", "task": "open the drawer", "reward": 3.5},
        "reward must be an integer 1..5 in bad.jsonl line 11",
    ),
    (
        {"video": "clips/ep1.mp4", "task": "open the drawer", "reward": True},
        "reward must be an integer 1..5 in bad.jsonl line 12",
    ),
    (
        {"video": "clips/ep1.mp4", "task": "open the drawer", "reward": 5, "progress": 0.2},
        "reward 5 disagrees with progress 0.2 (score 2) in bad.jsonl line 13",
    ),
    (
        {"video": "clips/ep1.mp4", "task": "open the drawer"},
        "reward and progress are both missing in bad.jsonl line 14",
    ),
    ({"video": "clips/ep1.mp4", "task": "open the drawer", "progress": -0.1}, "progress must be >= 0"),
    ({"video": "clips/ep1.mp4", "task": "open the drawer", "progress": 140}, "bad.jsonl line 16"),
    ('{"video": "clips/ep1.mp4", "task": "open the drawer", "progress": NaN}', "finite number"),
    (
        {"video": "clips/ep1.mp4", "task": "open the drawer", "progress": "lots"},
        "progress must be a number in bad.jsonl line 18",
    ),
    (
        '{"video": "clips/ep1.mp4", "task": "ouvrir le tiroir \xe9"}'.encode("latin-1"),
        "not UTF-8 in bad.jsonl line 19",
    ),
    ({"video": "../outside.mp4", **OK}, "path escapes the manifest folder in bad.jsonl line 20"),
    ({"video": "/etc/passwd", **OK}, "path escapes the manifest folder in bad.jsonl line 21"),
    ({"video": "clips/link.mp4", **OK}, "path escapes the manifest folder in bad.jsonl line 22"),
    ({"video": "clips/../../outside.mp4", **OK}, "path escapes the manifest folder in bad.jsonl line 23"),
    (
        {"video": "clips/ep2.mp4", **OK, "episode_id": "a"},
        "duplicate episode_id 'a' of source 'manifest/bad' in bad.jsonl line 24 (first at line 1)",
    ),
    ({"video": "clips/ep2.mp4", **OK, "episode_id": "a", "source": "other"}, None),  # same id, other source
    ({"video": "clips", **OK}, "video file not found in bad.jsonl line 26"),  # a folder
    ({"video": 12, **OK}, "video must be a non-empty path in bad.jsonl line 27"),
    ({"video": "clips/ep3.mp4", **OK, "episode_id": False}, "episode_id must be a string or an integer"),
    (
        {"video": "clips/ep3.mp4", **OK, "camera": ""},
        "camera must be a non-empty string in bad.jsonl line 29",
    ),
]


@pytest.fixture(scope="module")
def bad_items(folder: Path) -> list:
    return list(ManifestSource(write_jsonl(folder / "bad.jsonl", [line for line, _ in BAD])).episodes())


def test_one_item_per_row(bad_items: list) -> None:
    episodes, skips = split(bad_items)
    assert len(bad_items) == len(BAD) == 29
    assert len(episodes) == 2 and len(skips) == 27
    assert [(e.source, e.episode_id, e.reward) for e in episodes] == [
        ("manifest/bad", "a", 3),
        ("other", "a", 3),
    ]


@pytest.mark.parametrize("line", range(1, len(BAD) + 1))
def test_each_bad_row_is_a_skip_naming_the_line(bad_items: list, line: int) -> None:
    item, fragment = bad_items[line - 1], BAD[line - 1][1]
    if fragment is None:
        assert isinstance(item, Episode)
        return
    assert isinstance(item, Skip)
    assert fragment in item.reason
    assert f"bad.jsonl line {line}" in item.reason
    assert item.source == "manifest/bad"
    assert item.episode_id == ("a" if line == 24 else str(line))


def test_escape_reasons_quote_the_path(bad_items: list) -> None:
    assert bad_items[19].reason.endswith("'../outside.mp4'")
    assert bad_items[20].reason.endswith("'/etc/passwd'")
    assert bad_items[21].reason.endswith("'clips/link.mp4'")


def test_deterministic(folder: Path) -> None:
    source = ManifestSource(folder / "bad.jsonl")
    assert list(source.episodes()) == list(source.episodes())
    episodes = [i for i in ManifestSource(folder / "bad.jsonl").episodes() if isinstance(i, Episode)]
    assert [e.id for e in episodes] == [e.id for e in split(list(source.episodes()))[0]]


# -- CSV specifics --------------------------------------------------------------------------------


def test_csv_rows_and_line_numbers(folder: Path) -> None:
    path = folder / "rows.csv"
    path.write_bytes(
        b"\xef\xbb\xbfvideo,task,reward,progress,extra\n"
        b"clips/ep0.mp4,open the drawer,5,,ignored\n"
        b'clips/ep1.mp4,"open the\ndrawer",,0.5,\n'
        b"\n"
        b"clips/ep2.mp4,open the drawer,3.5,,\n"
        b"clips/ep3.mp4,open the drawer,2\n"
        b"clips/ep4.mp4,ouvrir le tiroir \xe9,2,,\n"
        b"../outside.mp4,open the drawer,2,,\n"
        b"clips/ep5.mp4,open the drawer,4.0,,\n"
    )
    items = list(ManifestSource(path).episodes())
    assert [(type(i).__name__, i.episode_id) for i in items] == [
        ("Episode", "2"),
        ("Episode", "3"),
        ("Skip", "6"),
        ("Skip", "7"),
        ("Skip", "8"),
        ("Skip", "9"),
        ("Episode", "10"),
    ]
    assert (items[0].reward, items[0].progress) == (5, None)
    assert (items[1].task, items[1].reward, items[1].progress) == ("open the drawer", 3, 0.5)
    assert "reward must be an integer 1..5 in rows.csv line 6, got '3.5'" in items[2].reason
    assert "rows.csv line 7 has 3 fields, the header has 5" in items[3].reason
    assert "not UTF-8 in rows.csv line 8" in items[4].reason
    assert "path escapes the manifest folder in rows.csv line 9" in items[5].reason
    assert items[6].reward == 4


def test_csv_header_problems_are_source_errors(folder: Path) -> None:
    (folder / "empty.csv").write_text("")
    with pytest.raises(SourceError, match="is empty"):
        ManifestSource(folder / "empty.csv")
    (folder / "novideo.csv").write_text("path,task,reward\nclips/ep0.mp4,open the drawer,5\n")
    with pytest.raises(SourceError, match="no video column"):
        ManifestSource(folder / "novideo.csv")
    (folder / "nolabel.csv").write_text("video,task\nclips/ep0.mp4,open the drawer\n")
    with pytest.raises(SourceError, match="reward or a progress column"):
        ManifestSource(folder / "nolabel.csv")


# -- whole-source problems ------------------------------------------------------------------------


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        ManifestSource(tmp_path / "manifest.jsonl")


@pytest.mark.parametrize("name", ["manifest.txt", "manifest.parquet", "manifest"])
def test_unknown_extension(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text('{"video": "a.mp4"}\n')
    with pytest.raises(SourceError, match="unknown extension"):
        ManifestSource(tmp_path / name)


def test_folder_is_not_a_manifest(tmp_path: Path) -> None:
    (tmp_path / "data.jsonl").mkdir()
    with pytest.raises(SourceError, match="is not a file"):
        ManifestSource(tmp_path / "data.jsonl")


def test_json_and_ndjson_are_json_lines(folder: Path) -> None:
    rows = [{"video": "clips/ep0.mp4", "task": "open the drawer", "progress": 0.3}]
    for suffix in (".json", ".ndjson", ".JSONL"):
        episodes = list(ManifestSource(write_jsonl(folder / f"lines{suffix}", rows)).episodes())
        assert [(e.reward, e.progress) for e in episodes] == [(2, 0.3)]


def test_custom_thresholds(folder: Path) -> None:
    rows = [{"video": "clips/ep0.mp4", "task": "open the drawer", "progress": 0.5}]
    source = ManifestSource(write_jsonl(folder / "thr.jsonl", rows), thresholds=(0.1, 0.2, 0.4, 0.9))
    assert [e.reward for e in source.episodes()] == [4]
    with pytest.raises(ValueError, match="thresholds"):
        ManifestSource(folder / "thr.jsonl", thresholds=(0.1, 0.2))


# -- hostile lines: each is one Skip naming its line; the rows around it are kept ---------------


def test_hostile_json_lines_are_skips_and_the_good_rows_are_kept(tmp_path: Path, folder: Path) -> None:
    root = tmp_path / "hostile"
    root.mkdir()
    shutil.copyfile(folder / "clips/ep0.mp4", root / "ok.mp4")
    (root / "loop_a.mp4").symlink_to("loop_b.mp4")
    (root / "loop_b.mp4").symlink_to("loop_a.mp4")
    good = {"video": "ok.mp4", "task": "open the drawer", "reward": 5}
    lines = [
        good,  # 1
        "[" * 100_000 + "]" * 100_000,  # 2: nested far past the parser's recursion limit
        {**good, "reward": "9" * 5000},  # 3: a 5,000-digit reward
        {**good, "episode_id": "7" * 5000},  # 4: a 5,000-character id
        '{"video": "ok.mp4", "task": "open \\ud800the drawer", "reward": 4}',  # 5: a lone surrogate
        {**good, "video": "ok\x00.mp4"},  # 6: a NUL in the path
        {**good, "video": "a" * 5000 + ".mp4"},  # 7: a name longer than any file system allows
        {**good, "video": "loop_a.mp4"},  # 8: a symlink loop
        '{"video": "ok.mp4", "task": "x", "reward": ' + "1" * 5000 + "}",  # 9: int over Python's limit
        good,  # 10
    ]
    items = list(ManifestSource(write_jsonl(root / "manifest.jsonl", lines)).episodes())
    kinds = [(type(i).__name__, i.episode_id) for i in items]
    assert kinds == [
        ("Episode", "1"),
        ("Skip", "2"),
        ("Skip", "3"),
        ("Skip", "4"),
        ("Episode", "5"),
        ("Skip", "6"),
        ("Skip", "7"),
        ("Skip", "8"),
        ("Skip", "9"),
        ("Episode", "10"),
    ]
    assert items[4].task == "open the drawer" and items[4].reward == 4
    reasons = {i.episode_id: i.reason for i in items if isinstance(i, Skip)}
    assert "unreadable JSON in manifest.jsonl line 2" in reasons["2"]
    assert "reward must be an integer 1..5 in manifest.jsonl line 3" in reasons["3"]
    assert "episode_id is 5000 characters long in manifest.jsonl line 4; the limit is 200" in reasons["4"]
    assert "video path is unusable in manifest.jsonl line 6" in reasons["6"]
    assert "video path is unusable in manifest.jsonl line 7" in reasons["7"]
    assert "..." in reasons["7"] and len(reasons["7"]) < 400  # the path is shortened in the reason
    assert "video path is unusable in manifest.jsonl line 8" in reasons["8"]
    assert "unreadable JSON in manifest.jsonl line 9" in reasons["9"]
    assert all(len(r) < 600 for r in reasons.values())


def test_a_csv_cell_over_the_field_limit_is_a_skip(tmp_path: Path, folder: Path) -> None:
    root = tmp_path / "bigcell"
    root.mkdir()
    shutil.copyfile(folder / "clips/ep0.mp4", root / "ok.mp4")
    path = root / "rows.csv"
    path.write_text(
        "video,task,reward\n"
        "ok.mp4,open the drawer,5\n"
        f'ok.mp4,"{"x" * 1_000_000}",5\n'
        "ok.mp4,close the drawer,4\n",
        encoding="utf-8",
    )
    items = list(ManifestSource(path).episodes())
    assert isinstance(items[0], Episode)
    assert items[0].task == "open the drawer"
    skips = [i for i in items if isinstance(i, Skip)]
    assert skips and "unreadable CSV in rows.csv line 3" in skips[0].reason
    assert items[-1].task == "close the drawer" and items[-1].reward == 4
