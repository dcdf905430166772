"""RoboArenaSource: one row per policy run and camera, partial_success -> reward, faults -> Skips."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import split_entries as split
from roboarena_fixtures import BROKEN_SESSIONS, GOOD_SESSIONS, policy, session, write_roboarena_dump

from roboreward.episode import Episode
from roboreward.sources import EpisodeSource, SourceError
from roboreward.sources.roboarena import RoboArenaSource

# Hand-computed with the default bins: 0 -> 1; (0, 1/3] -> 2; (1/3, 2/3] -> 3; (2/3, 1) -> 4; 1 -> 5.
# The fixture dump is in percent (values above 1).  episode_id: (progress, reward)
EXPECTED = {
    "s01_marker/A": (0.0, 1),  # 0 %
    "s01_marker/B": (0.2, 2),  # 20 %
    "s02_drawer/A": (0.5, 3),  # 50 %
    "s02_drawer/B": (0.8, 4),  # 80 %
    "s03_towel/A": (1.0, 5),  # 100 %
    "s03_towel/B": (1.0, 5),  # 100.0 %
    "s03_towel/C": (0.7, 4),  # 70 %
    "s04_cups/A": (0.34, 3),  # 34 % > 1/3
    "s04_cups/B": (0.33, 2),  # 33 % <= 1/3
    "s04_cups/C": (0.67, 4),  # 67 % > 2/3
    "x07_bad_scores/F": (0.9, 4),  # 90 %: the good entry next to broken ones
    "x08_bad_files/D": (0.5, 3),  # 50 %: a hidden ._ file next to the video is not a second video
}

TASKS = {
    "s01_marker": "put the marker in the cup",
    "s02_drawer": "open the top drawer",
    "s03_towel": "fold the towel in half",
    "s04_cups": "stack the blue cup on the red cup",
    "x07_bad_scores": "pour the beans into the bowl",
    "x08_bad_files": "close the laptop",
}

# episode_id -> a piece of the Skip reason, for the default camera (left), in source order.
EXPECTED_SKIPS = [
    ("x01_no_yaml", "evaluation_sessions/x01_no_yaml/metadata.yaml is missing"),
    ("x02_bad_yaml", "evaluation_sessions/x02_bad_yaml/metadata.yaml is not valid YAML"),
    ("x03_latin1_yaml", "evaluation_sessions/x03_latin1_yaml/metadata.yaml is not UTF-8"),
    ("x04_list_yaml", "evaluation_sessions/x04_list_yaml/metadata.yaml is not a YAML mapping (got list)"),
    ("x05_empty_task", "language_instruction is empty in "),
    ("x06_no_task", "language_instruction is missing in "),
    ("x07_bad_scores/A", "policy A: partial_success is missing in "),
    ("x07_bad_scores/B", "policy B: partial_success -3 is out of range"),
    ("x07_bad_scores/C", "policy C: partial_success 140 is out of range"),
    ("x07_bad_scores/D", "policy D: partial_success is not a number: 'n/a'"),
    ("x07_bad_scores/E", "policy E: partial_success is NaN"),
    ("x08_bad_files/A", "no left video"),
    ("x08_bad_files/B", "policy folder "),
    ("x08_bad_files/C", "2 videos match camera left"),
]


@pytest.fixture(scope="module")
def dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_roboarena_dump(tmp_path_factory.mktemp("roboarena") / "DataDump_08-05-2025")


def test_is_an_episode_source(dump: Path) -> None:
    source = RoboArenaSource(dump)
    assert isinstance(source, EpisodeSource)
    assert source.name == "roboarena"


def test_one_left_row_per_labelled_policy_run(dump: Path) -> None:
    episodes, skips = split(list(RoboArenaSource(dump).episodes()))
    assert len(episodes) == 12
    assert len(skips) == 14
    assert [e.episode_id for e in episodes] == list(EXPECTED)  # sessions, then policies, sorted
    assert {e.camera for e in episodes} == {"left"}


def test_partial_success_maps_to_progress_and_reward(dump: Path) -> None:
    episodes, _ = split(list(RoboArenaSource(dump).episodes()))
    got = {e.episode_id: (e.progress, e.reward) for e in episodes}
    assert got.keys() == EXPECTED.keys()
    for episode_id, (progress, reward) in EXPECTED.items():
        assert got[episode_id][0] == pytest.approx(progress), episode_id
        assert got[episode_id][1] == reward, episode_id


def test_episode_fields(dump: Path) -> None:
    episodes, _ = split(list(RoboArenaSource(dump).episodes()))
    by_id = {e.episode_id: e for e in episodes}
    ep = by_id["s02_drawer/B"]
    assert ep.source == "roboarena"
    assert ep.task == ep.original_task == "open the top drawer"
    assert ep.augmentation == "original"
    assert ep.group == "roboarena/s02_drawer/B"
    assert Path(ep.video).is_absolute()
    assert (
        Path(ep.video)
        == (
            dump
            / "evaluation_sessions/s02_drawer/B_paligemma_vq_droid"
            / "paligemma_vq_droid_2025_04_29_10_46_23_video_left.mp4"
        ).absolute()
    )
    assert ep.provenance == {
        "session": "s02_drawer",
        "policy_id": "B",
        "policy_name": "paligemma_vq_droid",
        "partial_success": 80,
    }
    assert by_id["s03_towel/B"].provenance["partial_success"] == 100.0  # as the file wrote it
    for e in episodes:
        assert e.task == TASKS[e.episode_id.split("/")[0]]
        assert Path(e.video).is_file()


def test_instruction_whitespace_is_normalised(dump: Path) -> None:
    episodes, _ = split(list(RoboArenaSource(dump).episodes()))
    towel = [e for e in episodes if e.episode_id.startswith("s03_towel/")]
    assert [e.task for e in towel] == ["fold the towel in half"] * 3


def test_2026_file_names(dump: Path) -> None:
    episodes, _ = split(list(RoboArenaSource(dump, cameras=("left", "right", "wrist")).episodes()))
    cups = {(e.episode_id, e.camera): Path(e.video).name for e in episodes if e.episode_id.startswith("s04")}
    assert cups[("s04_cups/A", "left")] == "left_shoulder.mp4"
    assert cups[("s04_cups/A", "right")] == "right_shoulder.mp4"
    assert cups[("s04_cups/A", "wrist")] == "wrist.mp4"
    assert ("s04_cups/B", "wrist") not in cups


def test_two_cameras_share_one_group(dump: Path) -> None:
    episodes, skips = split(list(RoboArenaSource(dump, cameras=("left", "right")).episodes()))
    # 12 runs x 2 cameras, plus the right view of x08 A (no left video) and x08 C (two left videos).
    assert len(episodes) == 26
    assert len(skips) == 14
    rows = {(e.episode_id, e.camera): e for e in episodes}
    left, right = rows[("s02_drawer/A", "left")], rows[("s02_drawer/A", "right")]
    assert left.group == right.group == "roboarena/s02_drawer/A"
    assert (left.reward, left.progress) == (right.reward, right.progress) == (3, 0.5)
    assert left.video.endswith("_left.mp4") and right.video.endswith("_right.mp4")
    assert left.id != right.id
    assert [e.camera for e in episodes[:2]] == ["left", "right"]  # cameras in the order given
    assert ("x08_bad_files/A", "right") in rows and ("x08_bad_files/A", "left") not in rows
    assert ("x08_bad_files/C", "right") in rows and ("x08_bad_files/C", "left") not in rows
    groups = {}
    for e in episodes:
        groups.setdefault(e.group, set()).add(e.episode_id)
    assert all(len(ids) == 1 for ids in groups.values())


def test_wrist_camera_only_where_recorded(dump: Path) -> None:
    episodes, skips = split(list(RoboArenaSource(dump, cameras=["wrist"]).episodes()))
    assert [(e.episode_id, e.camera, e.reward) for e in episodes] == [
        ("s01_marker/B", "wrist", 2),
        ("s04_cups/A", "wrist", 3),
    ]
    assert any(s.episode_id == "s02_drawer/A" and "no wrist video" in s.reason for s in skips)


def test_skip_reasons_name_the_fault_and_the_file(dump: Path) -> None:
    _, skips = split(list(RoboArenaSource(dump).episodes()))
    assert [s.episode_id for s in skips] == [episode_id for episode_id, _ in EXPECTED_SKIPS]
    for skip, (episode_id, fragment) in zip(skips, EXPECTED_SKIPS, strict=True):
        assert skip.source == "roboarena"
        assert fragment in skip.reason, (episode_id, skip.reason)
    by_id = {s.episode_id: s.reason for s in skips}
    for episode_id in ("x05_empty_task", "x06_no_task", "x07_bad_scores/A", "x07_bad_scores/E"):
        assert by_id[episode_id].endswith(f"evaluation_sessions/{episode_id.split('/')[0]}/metadata.yaml")
    assert "byte 0xe9" in by_id["x03_latin1_yaml"]
    assert by_id["x08_bad_files/B"].endswith("x08_bad_files/B_pi0_fast_droid is missing")
    assert "x08_bad_files/A_pi0_droid" in by_id["x08_bad_files/A"]
    assert "retake_video_left.mp4" in by_id["x08_bad_files/C"]
    assert "paligemma_fast_droid_2025_04_29_10_46_23_video_left.mp4" in by_id["x08_bad_files/C"]


def test_broken_sessions_give_no_episode(dump: Path) -> None:
    episodes, _ = split(list(RoboArenaSource(dump, cameras=("left", "right", "wrist")).episodes()))
    broken = {s.name for s in BROKEN_SESSIONS[:6]}
    assert not [e for e in episodes if e.episode_id.split("/")[0] in broken]


def test_deterministic(dump: Path) -> None:
    first = [
        i.id if isinstance(i, Episode) else i
        for i in RoboArenaSource(dump, cameras=("left", "right")).episodes()
    ]
    second = [
        i.id if isinstance(i, Episode) else i
        for i in RoboArenaSource(dump, cameras=("left", "right")).episodes()
    ]
    assert first == second
    again = list(RoboArenaSource(dump, cameras=("left", "right")).episodes())
    assert [e.to_dict() for e in again if isinstance(e, Episode)] == [
        e.to_dict()
        for e in RoboArenaSource(dump, cameras=("left", "right")).episodes()
        if isinstance(e, Episode)
    ]


def test_order_does_not_follow_creation_order(tmp_path: Path) -> None:
    sessions = [
        session("zz", "open the drawer", {"B": policy("pi0", 0.5), "A": policy("pi0", 1.0)}),
        session("aa", "close the drawer", {"A": policy("pi0", 0.0)}),
    ]
    root = write_roboarena_dump(tmp_path / "dump", sessions)
    episodes, _ = split(list(RoboArenaSource(root).episodes()))
    assert [(e.episode_id, e.reward) for e in episodes] == [("aa/A", 1), ("zz/A", 5), ("zz/B", 3)]


def test_custom_thresholds_and_name(tmp_path: Path) -> None:
    root = write_roboarena_dump(
        tmp_path / "dump",
        [session("s", "open the drawer", {"A": policy("pi0", 50), "B": policy("pi0_fast", 95)})],
    )
    source = RoboArenaSource(root, thresholds=(0.1, 0.2, 0.6, 0.9), name="roboarena/berkeley")
    episodes, _ = split(list(source.episodes()))
    assert [(e.source, e.episode_id, e.reward, e.progress) for e in episodes] == [
        ("roboarena/berkeley", "s/A", 3, 0.5),
        ("roboarena/berkeley", "s/B", 5, 0.95),
    ]
    assert episodes[0].group == "roboarena/berkeley/s/A"


def test_policies_not_a_mapping_and_odd_entries(tmp_path: Path) -> None:
    root = write_roboarena_dump(
        tmp_path / "dump",
        [session("s", "open the drawer", {"A": policy("pi0", True), "B": policy("pi0", "0.5")})],
    )
    meta = root / "evaluation_sessions/t/metadata.yaml"
    meta.parent.mkdir()
    meta.write_text("language_instruction: open the drawer\npolicies: [A, B]\n")
    items = list(RoboArenaSource(root).episodes())
    assert [(type(i).__name__, i.episode_id) for i in items] == [
        ("Skip", "s/A"),
        ("Episode", "s/B"),
        ("Skip", "t"),
    ]
    assert "partial_success is not a number: True" in items[0].reason
    assert (items[1].reward, items[1].progress, items[1].provenance["partial_success"]) == (3, 0.5, "0.5")
    assert "policies is not a mapping in " in items[2].reason


def test_empty_dump_has_no_entries(tmp_path: Path) -> None:
    (tmp_path / "dump/evaluation_sessions").mkdir(parents=True)
    (tmp_path / "dump/evaluation_sessions/.cache").mkdir()
    (tmp_path / "dump/evaluation_sessions/README.txt").write_text("a file, not a session")
    assert list(RoboArenaSource(tmp_path / "dump").episodes()) == []


def test_source_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="is not a folder"):
        RoboArenaSource(tmp_path / "nowhere")
    (tmp_path / "not_a_dump").mkdir()
    with pytest.raises(SourceError, match="has no evaluation_sessions folder"):
        RoboArenaSource(tmp_path / "not_a_dump")
    (tmp_path / "file.yaml").write_text("x: 1")
    with pytest.raises(SourceError, match="is not a folder"):
        RoboArenaSource(tmp_path / "file.yaml")


@pytest.mark.parametrize("cameras", [("front",), ("left", "top"), ()])
def test_unknown_cameras_are_refused(dump: Path, cameras) -> None:
    with pytest.raises(ValueError, match="camera"):
        RoboArenaSource(dump, cameras=cameras)


def test_camera_string_and_duplicates(dump: Path) -> None:
    assert RoboArenaSource(dump, cameras="right").cameras == ("right",)
    assert RoboArenaSource(dump, cameras=("left", "left", "wrist")).cameras == ("left", "wrist")


def test_bad_thresholds_are_refused(dump: Path) -> None:
    with pytest.raises(ValueError, match="thresholds"):
        RoboArenaSource(dump, thresholds=(0.5, 0.2, 0.6, 1.0))


def test_fixture_sessions_are_what_the_tables_say() -> None:
    # Keeps EXPECTED honest: every good policy of the fixture is in the table, nothing else is.
    good = {f"{s.name}/{pid}" for s in GOOD_SESSIONS for pid in s.policies}
    assert good == {k for k in EXPECTED if not k.startswith("x")}


# -- the unit of partial_success, decided once per dump ------------------------------------------


def _runs(tmp_path: Path, values: dict[str, list]) -> Path:
    """A dump with one session per key, its policies A, B, ... scored ``values`` in that order."""
    sessions = [
        session(name, "open the drawer", {chr(65 + i): policy(f"pi0_{i}", v) for i, v in enumerate(scores)})
        for name, scores in values.items()
    ]
    return write_roboarena_dump(tmp_path / "dump", sessions)


def _labels(source: RoboArenaSource) -> dict[str, tuple[float, int]]:
    episodes, _ = split(list(source.episodes()))
    return {e.episode_id: (round(e.progress, 6), e.reward) for e in episodes}


def test_a_percent_dump_reads_its_small_values_as_percent(tmp_path: Path) -> None:
    # Read per value, 1 was a full success (100 %) and 0.5 a 3 (50 %): in a dump whose other values
    # are percents they are 1 % and 0.5 %, both score 2.
    root = _runs(tmp_path, {"s1": [1, 0.5, 50], "s2": [100, 0, 80]})
    expected = {
        "s1/A": (0.01, 2),
        "s1/B": (0.005, 2),
        "s1/C": (0.5, 3),
        "s2/A": (1.0, 5),
        "s2/B": (0.0, 1),
        "s2/C": (0.8, 4),
    }
    auto = RoboArenaSource(root)
    assert _labels(auto) == expected
    assert auto.progress_unit == {"unit": "percent", "asked": "auto", "values": 6, "above_1": 3, "max": 100.0}
    percent = RoboArenaSource(root, progress_unit="percent")
    assert _labels(percent) == expected
    assert percent.progress_unit["unit"] == percent.progress_unit["asked"] == "percent"


def test_a_fraction_dump_reads_every_value_as_a_fraction(tmp_path: Path) -> None:
    root = _runs(tmp_path, {"s1": [1, 0.5, 0.2], "s2": [0, 0.9, "0.4"]})
    expected = {
        "s1/A": (1.0, 5),
        "s1/B": (0.5, 3),
        "s1/C": (0.2, 2),
        "s2/A": (0.0, 1),
        "s2/B": (0.9, 4),
        "s2/C": (0.4, 3),
    }
    for unit in ("auto", "fraction"):
        source = RoboArenaSource(root, progress_unit=unit)
        assert _labels(source) == expected, unit
        decision = {"unit": "fraction", "asked": unit, "values": 6, "above_1": 0, "max": 1.0}
        assert source.progress_unit == decision
    # The same values said to be percents: 1 % ... 0.9 %.
    assert _labels(RoboArenaSource(root, progress_unit="percent")) == {
        "s1/A": (0.01, 2),
        "s1/B": (0.005, 2),
        "s1/C": (0.002, 2),
        "s2/A": (0.0, 1),
        "s2/B": (0.009, 2),
        "s2/C": (0.004, 2),
    }


def test_a_fraction_dump_with_percent_values_is_refused_naming_the_file(tmp_path: Path) -> None:
    root = _runs(tmp_path, {"s1": [0.5, 1.0], "s2": [0.2, 80, 95]})
    source = RoboArenaSource(root, progress_unit="fraction")
    meta = root / "evaluation_sessions" / "s2" / "metadata.yaml"
    with pytest.raises(SourceError) as caught:
        _ = source.progress_unit
    message = str(caught.value)
    assert str(meta) in message and "policy B's partial_success 80" in message
    assert "mixes progress units" in message and "fraction" in message
    assert "2 of 5 values above 1, in 1 file(s)" in message
    assert "--roboarena-progress-unit percent" in message
    with pytest.raises(SourceError, match="mixes progress units"):
        list(source.episodes())  # before any entry
    assert _labels(RoboArenaSource(root))["s1/A"] == (0.005, 2)  # auto: percent for all


def test_values_that_are_not_usable_take_no_part_in_the_decision(tmp_path: Path) -> None:
    # 140, -3, NaN and text are Skips whatever the unit; they must not turn a fraction dump into percent.
    root = _runs(tmp_path, {"s1": [0.5, 140, -3, float("nan"), "n/a", 1]})
    source = RoboArenaSource(root)
    assert source.progress_unit == {
        "unit": "fraction",
        "asked": "auto",
        "values": 2,
        "above_1": 0,
        "max": 1.0,
    }
    items = list(source.episodes())
    assert [(i.episode_id, i.reward) for i in items if isinstance(i, Episode)] == [("s1/A", 3), ("s1/F", 5)]
    reasons = {i.episode_id: i.reason for i in items if not isinstance(i, Episode)}
    assert "140 is out of range (the dump's unit: a fraction in [0, 1])" in reasons["s1/B"]
    # Said to be percent, 140 is out of range still, and 0.5 is 0.5 %.
    percent = {
        e.episode_id: e.reward
        for e in RoboArenaSource(root, progress_unit="percent").episodes()
        if isinstance(e, Episode)
    }
    assert percent == {"s1/A": 2, "s1/F": 2}


def test_an_unknown_progress_unit_is_refused(dump: Path) -> None:
    with pytest.raises(ValueError, match="must be one of auto, percent, fraction, got 'percentage'"):
        RoboArenaSource(dump, progress_unit="percentage")  # type: ignore[arg-type]
