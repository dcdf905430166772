"""The public-release reader (`roboreward.sources.release`) against hostile metadata lines.

Each hostile line is a skip with its reason; the rows around it are kept, and what is kept loads
as a `datasets.Dataset`. The corpus is made by code.
"""

import json
from pathlib import Path

import pytest
from conftest import write_video

from roboreward import rubric
from roboreward.sources.release import load_release_dataset, read_release_split

GOOD = [("droid/a.mp4", "open the drawer", 5), ("bridge/b.mp4", "close the drawer", 2)]


def _release(root: Path, hostile: bytes) -> Path:
    """A test split: a good row, the hostile line, a good row."""
    for name, _, _ in GOOD:
        (root / "test" / name).parent.mkdir(parents=True, exist_ok=True)
        write_video(root / "test" / name, num_frames=4, fps=10)
    first, second = (json.dumps({"file_name": n, "task": t, "reward": r}).encode() for n, t, r in GOOD)
    (root / "test" / "metadata.jsonl").write_bytes(first + b"\n" + hostile + b"\n" + second + b"\n")
    return root


HOSTILE = {
    "non-utf8": (
        b'{"file_name": "droid/a.mp4", "task": "open \xff\xfe it", "reward": 3}',
        "not UTF-8 (byte 0xff at 43)",
    ),
    "deep": (b"[" * 100_000 + b"]" * 100_000, "not JSON (nested too deep)"),
    "digits": (b'{"file_name": "droid/a.mp4", "task": "x", "reward": ' + b"9" * 5000 + b"}", "not JSON"),
    "long-file-name": (
        json.dumps({"file_name": "droid/" + "a" * 5000 + ".mp4", "task": "open it", "reward": 3}).encode(),
        "file_name 'droid/" + "a" * 111 + "...' is unusable (File name too long)",
    ),
    "nul-in-file-name": (
        json.dumps({"file_name": "droid/a\u0000.mp4", "task": "open it", "reward": 3}).encode(),
        "file_name 'droid/a\\x00.mp4' holds a NUL byte",
    ),
    "lone-surrogate": (
        b'{"file_name": "droid/a.mp4", "task": "open \\ud800 it", "reward": 3}',
        "a lone surrogate (\\ud800-\\udfff) in the line: no file can store it as UTF-8",
    ),
    "long-task": (
        json.dumps({"file_name": "droid/a.mp4", "task": "open it " * 12_500, "reward": 3}).encode(),
        f"task is 100000 characters long; the limit is {rubric.MAX_TASK_CHARS}",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_metadata_line_is_a_skip_and_the_rows_around_it_are_kept(tmp_path, case):
    line, reason = HOSTILE[case]
    root = _release(tmp_path / "RoboReward", line)
    split = read_release_split(root, "test")
    assert [(r["id"], r["task"], r["reward"], r["source"]) for r in split.rows] == [
        ("test/droid/a.mp4", "open the drawer", 5, "droid"),
        ("test/bridge/b.mp4", "close the drawer", 2, "bridge"),
    ]
    assert [(s["where"], s["reason"]) for s in split.skipped] == [("test/metadata.jsonl line 2", reason)]
    assert all(len(v) <= 200 for s in split.skipped for v in s.values())
    dataset = load_release_dataset(root, "test")  # what is kept loads (a surrogate would fail here)
    assert dataset["task"] == ["open the drawer", "close the drawer"]
