"""LeRobot's own loader reads `filter_lerobot`'s copies (what ``annotate --filtered-out`` writes).

LeRobot cannot be a dependency of the toolkit, so this test installs LeRobot's dataset code alone
(the ``lerobot-dataset`` package, module ``ledataset``) into a separate virtual environment, kept in
a cache folder (``$ROBOREWARD_TEST_CACHE``, default ``~/.cache/roboreward/test-envs``) and built once;
torch and torchvision, which that package leaves to its user, come from this interpreter's
environment (appended to the script's ``sys.path``, after the venv's own packages, so LeRobot's
pinned versions win). It skips, saying why, when the package index cannot be reached.

There, a script loads the copies with ``LeRobotDataset`` (each) and ``MultiLeRobotDataset`` (both),
and reads every item through LeRobot's ``__getitem__``. LeRobot's PyAV backend decodes through
``torchvision.io.VideoReader``, which torchvision 0.29 removed, so the script hands LeRobot a
decoder of its own that decodes with PyAV and keeps LeRobot's tolerance check on timestamps. The
script also computes each kept episode's stats with LeRobot's ``compute_episode_stats`` (camera
frames through PNG files, as LeRobot records them) and aggregates our per-episode stats with its
``aggregate_stats``; a v2.1 copy goes through LeRobot's own v2.1 -> v3.0 converter first, which
reads its ``episodes_stats.jsonl``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import filelock
import numpy as np
import pytest
from conftest import level_of
from lerobot_fixtures import CAMERAS, v30_layout, write_lerobot_v21, write_lerobot_v30

from roboreward.sources.lerobot import stats as lerobot_stats
from roboreward.sources.lerobot.filter import filter_lerobot

pytestmark = pytest.mark.slow

#: LeRobot's dataset code alone, pinned: what the copies must load in.
LEROBOT_DATASET = "lerobot-dataset==0.4.4"
EPISODES = (
    ("pick up the red block", 8),
    ("open the top drawer", 10),
    ("put the sponge in the sink", 7),
    ("pick up the red block", 9),
    ("", 6),
    ("close the lid", 5),
)
FPS = 10
KEPT = {"a": [1, 3, 5], "b": [0, 2]}

SCRIPT = r'''
import json, sys
from pathlib import Path

job = json.loads(Path(sys.argv[1]).read_text())
sys.path.extend(job["torch_paths"])  # after the venv's own packages: LeRobot's pins win

import av
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from PIL import Image

import ledataset.datasets.lerobot_dataset as lerobot_dataset
from ledataset.datasets.compute_stats import aggregate_stats, compute_episode_stats
from ledataset.datasets.lerobot_dataset import LeRobotDataset, MultiLeRobotDataset
from ledataset.datasets.v30.convert_dataset_v21_to_v30 import convert_dataset

decoded = {}


def decode_with_pyav(video_path, timestamps, tolerance_s, backend=None):
    """LeRobot's decode_video_frames, with PyAV itself in place of torchvision's removed reader."""
    key = str(video_path)
    if key not in decoded:
        with av.open(key) as container:
            stream = container.streams.video[0]
            decoded[key] = [
                (float(f.pts * stream.time_base), f.to_ndarray(format="rgb24"))
                for f in container.decode(stream)
            ]
    frames = []
    for ts in timestamps:
        shown, image = min(decoded[key], key=lambda f: abs(f[0] - ts))
        if abs(shown - ts) >= tolerance_s:  # LeRobot's check: the frame asked for is the frame found
            raise AssertionError(f"no frame within {tolerance_s} s of {ts} in {key} (closest {shown})")
        frames.append(torch.from_numpy(image).permute(2, 0, 1).float() / 255)
    return torch.stack(frames)


lerobot_dataset.decode_video_frames = decode_with_pyav


def as_lists(stats):
    return {f: {k: np.asarray(v).tolist() for k, v in s.items()} for f, s in stats.items()}


def segment_frames(ds, episode, key):
    """Every frame of an episode's segment of a camera's file, decoded with PyAV."""
    row = ds.meta.episodes[episode]
    start, end = row[f"videos/{key}/from_timestamp"], row[f"videos/{key}/to_timestamp"]
    path = ds.root / ds.meta.get_video_file_path(episode, key)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [
            f.to_ndarray(format="rgb24")
            for f in container.decode(stream)
            if start - 1e-4 <= float(f.pts * stream.time_base) < end - 1e-4
        ]


def lerobot_episode_stats(ds, work):
    """LeRobot's compute_episode_stats of every episode: numbers from the data rows, cameras from
    their frames written as PNG files (what LeRobot records before it encodes a video)."""
    files = sorted((ds.root / "data").rglob("*.parquet"))
    table = pa.concat_tables([pq.read_table(f) for f in files])
    features = ds.meta.features
    result = []
    for episode in range(ds.num_episodes):
        rows = table.filter(pc.equal(table["episode_index"], episode))
        data = {}
        for key, ft in features.items():
            if ft["dtype"] in ("string", "language"):
                continue
            if ft["dtype"] == "video":
                paths = []
                for i, frame in enumerate(segment_frames(ds, episode, key)):
                    path = work / f"{ds.repo_id.replace('/', '_')}_{episode}_{key}_{i:04d}.png"
                    Image.fromarray(frame).save(path)
                    paths.append(str(path))
                data[key] = paths
            elif key in rows.column_names:
                values = np.array(rows[key].to_pylist(), dtype=ft["dtype"])
                data[key] = values.reshape(len(values), -1) if values.ndim > 1 else values
        result.append(as_lists(compute_episode_stats(data, features)))
    return result


def our_episode_stats(ds):
    """The per-episode stats the copy holds (stats/<feature>/<stat> columns of meta/episodes)."""
    files = sorted((ds.root / "meta" / "episodes").rglob("*.parquet"))
    rows = pa.concat_tables([pq.read_table(f) for f in files]).to_pylist()
    out = []
    for row in rows:
        stats = {}
        for column, value in row.items():
            if column.startswith("stats/"):
                feature, stat = column[len("stats/"):].rsplit("/", 1)
                stats.setdefault(feature, {})[stat] = np.asarray(value)
        out.append(stats)
    return out


work = Path(sys.argv[2])
result = {}
for spec in job["convert"]:  # v2.1 copies: LeRobot's own converter to v3.0, in place
    convert_dataset(spec["repo_id"], root=spec["root"], push_to_hub=False)
for spec in job["single"]:
    ds = LeRobotDataset(spec["repo_id"], root=spec["path"])
    items = []
    for i in range(len(ds)):
        item = ds[i]
        items.append(
            {
                "episode_index": int(item["episode_index"]),
                "frame_index": int(item["frame_index"]),
                "index": int(item["index"]),
                "task": item["task"],
                "levels": {key: float(item[key].mean()) * 255 for key in ds.meta.video_keys},
            }
        )
    result[spec["repo_id"]] = {
        "version": ds.meta.info["codebase_version"],
        "num_episodes": ds.num_episodes,
        "num_frames": ds.num_frames,
        "len": len(ds),
        "stats": None if ds.meta.stats is None else as_lists(ds.meta.stats),
        "items": items,
        "lerobot_episode_stats": lerobot_episode_stats(ds, work),
        "lerobot_aggregate_of_ours": as_lists(aggregate_stats(our_episode_stats(ds))),
    }
multi = MultiLeRobotDataset(job["multi"]["repo_ids"], root=job["multi"]["root"])
result["multi"] = {
    "len": len(multi),
    "num_episodes": multi.num_episodes,
    "num_frames": multi.num_frames,
    "stats": as_lists(multi.stats),
    "last_item_dataset": int(multi[len(multi) - 1]["dataset_index"]),
}
Path(sys.argv[3]).write_text(json.dumps(result))
'''


def _cache_root() -> Path:
    return Path(os.environ.get("ROBOREWARD_TEST_CACHE", Path.home() / ".cache" / "roboreward" / "test-envs"))


def _run(command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def _tail(process: subprocess.CompletedProcess[str], lines: int = 5) -> str:
    return "\n".join((process.stdout + process.stderr).strip().splitlines()[-lines:])


@pytest.fixture(scope="session")
def lerobot_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a venv holding LeRobot's dataset code (built once, in the cache folder)."""
    torch_spec = importlib.util.find_spec("torch")
    vision_spec = importlib.util.find_spec("torchvision")
    if torch_spec is None or vision_spec is None or torch_spec.origin is None or vision_spec.origin is None:
        pytest.skip("LeRobot's loader needs torch and torchvision in this environment")
    tag = f"{LEROBOT_DATASET.replace('==', '-')}-py{sys.version_info.major}{sys.version_info.minor}"
    venv = _cache_root() / tag
    python = venv / "bin" / "python"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(venv) + ".lock", timeout=1200):
        if (venv / "ready").is_file():
            return python
        probe = tmp_path_factory.mktemp("pypi")
        try:
            pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q"]
            pip += ["--retries", "2", "--timeout", "30", "-d", str(probe)]
            found = _run([*pip, LEROBOT_DATASET], timeout=180)
        except subprocess.TimeoutExpired:
            pytest.skip(f"the package index did not answer within 180 s (pip download {LEROBOT_DATASET})")
        if found.returncode != 0:
            pytest.skip(f"cannot download {LEROBOT_DATASET} from the package index: {_tail(found, 2)}")
        building = venv.with_name(venv.name + ".partial")
        subprocess.run(["rm", "-rf", str(building), str(venv)], check=True)
        made = _run([sys.executable, "-m", "venv", str(building)], timeout=300)
        assert made.returncode == 0, _tail(made)
        pip = [str(building / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        installed = _run([*pip, LEROBOT_DATASET], timeout=1200)
        assert installed.returncode == 0, f"pip install {LEROBOT_DATASET} failed:\n{_tail(installed, 20)}"
        os.replace(building, venv)
        (venv / "ready").write_text(LEROBOT_DATASET + "\n")
    return python


def _torch_paths() -> list[str]:
    """Where this environment's torch and torchvision live (lerobot-dataset leaves them to its user)."""
    specs = [importlib.util.find_spec(name) for name in ("torch", "torchvision")]
    return sorted({str(Path(s.origin).parent.parent) for s in specs if s is not None and s.origin})


def _close(ours, theirs, atol: float, where: str) -> None:
    assert set(ours) == set(theirs), where
    for stat in ours:
        a, b = np.asarray(ours[stat], float), np.asarray(theirs[stat], float)
        assert a.shape == b.shape, f"{where} {stat}: {a.shape} != {b.shape}"
        assert np.allclose(a, b, rtol=1e-5, atol=atol), f"{where} {stat}: {a.ravel()} != {b.ravel()}"


def test_lerobot_loads_the_filtered_copies_single_and_multi(lerobot_python, tmp_path):
    v30 = write_lerobot_v30(tmp_path / "src" / "toto_v30", EPISODES, codec="libx264", episodes_per_file=2)
    v21 = write_lerobot_v21(tmp_path / "src" / "toto_v21", EPISODES, codec="libx264")
    hub = tmp_path / "hub"
    filter_lerobot(v30, KEPT["a"], hub / "local" / "a")
    filter_lerobot(v30, KEPT["b"], hub / "local" / "b")
    filter_lerobot(v21, KEPT["a"], hub / "local" / "c")  # v2.1: converted by LeRobot, then loaded
    ours = {
        name: lerobot_stats.stats_from_json(
            json.loads((hub / "local" / name / "meta" / "stats.json").read_text())
        )
        for name in ("a", "b", "c")
    }
    job = {
        "torch_paths": _torch_paths(),
        "convert": [{"repo_id": "local/c", "root": str(hub)}],
        "single": [{"repo_id": f"local/{n}", "path": str(hub / "local" / n)} for n in ("a", "b", "c")],
        "multi": {"repo_ids": ["local/a", "local/b"], "root": str(hub)},
    }
    (tmp_path / "job.json").write_text(json.dumps(job))
    (tmp_path / "script.py").write_text(SCRIPT)
    (tmp_path / "png").mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONNOUSERSITE": "1"}
    env.pop("PYTHONPATH", None)
    argv = [
        str(lerobot_python),
        str(tmp_path / "script.py"),
        str(tmp_path / "job.json"),
        str(tmp_path / "png"),
    ]
    ran = subprocess.run(
        [*argv, str(tmp_path / "result.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    assert ran.returncode == 0, _tail(ran, 40)
    result = json.loads((tmp_path / "result.json").read_text())

    layout = v30_layout(EPISODES, FPS, episodes_per_file=2)
    for name, kept in (("a", KEPT["a"]), ("b", KEPT["b"]), ("c", KEPT["a"])):
        got = result[f"local/{name}"]
        frames = sum(EPISODES[i][1] for i in kept)
        assert (got["num_episodes"], got["num_frames"], got["len"]) == (len(kept), frames, frames), name
        assert got["version"] == "v3.0"
        assert got["stats"] is not None, name
        # What LeRobot read as meta.stats: our stats.json (for the converted v2.1 copy, LeRobot's own
        # aggregate of our episodes_stats.jsonl; its quantiles are aggregated as that version does).
        for feature, by_stat in ours[name].items():
            theirs = got["stats"][feature]
            if name == "c":
                theirs = {k: v for k, v in theirs.items() if k in lerobot_stats.BASIC_STATS}
                by_stat = {k: v for k, v in by_stat.items() if k in lerobot_stats.BASIC_STATS}
            _close(by_stat, theirs, 1e-6, f"{name} stats.json {feature}")
        # Our stats.json is LeRobot's aggregate of our per-episode stats (mean, std, min, max, count;
        # quantiles: LeRobot now keeps an envelope, 0.4.4 averaged them).
        for feature, theirs in got["lerobot_aggregate_of_ours"].items():
            basic = {k: v for k, v in ours[name][feature].items() if k in lerobot_stats.BASIC_STATS}
            _close(basic, {k: theirs[k] for k in basic}, 1e-6, f"{name} aggregate {feature}")
        # Each kept episode's stats are what LeRobot computes from its rows and frames.
        copy = hub / "local" / name
        mine = _our_episode_stats(copy) if name != "c" else None
        for episode, theirs in enumerate(got["lerobot_episode_stats"]):
            if mine is None:
                break  # the converted copy's per-episode stats are our episodes_stats.jsonl's, checked above
            for feature, stats in theirs.items():
                if feature not in CAMERAS:
                    _close(mine[episode][feature], stats, 1e-5, f"{name} episode {episode} {feature}")
                    continue
                # LeRobot 0.4.4 squares uint8 pixels without promoting them, so its camera std wraps
                # round (fixed later: lerobot#3697); every other stat must agree, and the std must be
                # the frames' own (flat greys of known levels, all sampled in episodes this short).
                camera = {k: v for k, v in mine[episode][feature].items() if k != "std"}
                _close(camera, {k: v for k, v in stats.items() if k != "std"}, 2.5 / 255, f"{name} {feature}")
                old = kept[episode]
                levels = [level_of(layout[old]["first_frame"] + i) for i in range(EPISODES[old][1])]
                std = mine[episode][feature]["std"].ravel()
                assert std == pytest.approx([np.std(levels) / 255] * 3, abs=1 / 255), (name, episode, feature)
        # Every item, through LeRobot's __getitem__: the kept episode's rows and its frames.
        for position, item in enumerate(got["items"]):
            old = kept[item["episode_index"]]
            assert item["index"] == position and item["task"] == EPISODES[old][0]
            first = layout[old]["first_frame"] if name != "c" else 0  # v3.0 files concatenate episodes
            for key in CAMERAS:
                expected = level_of(first + item["frame_index"])
                assert abs(item["levels"][key] - expected) <= 3, (name, position, key)

    multi = result["multi"]
    assert multi["num_episodes"] == 5 and multi["len"] == multi["num_frames"] == 24 + 15
    assert multi["last_item_dataset"] == 1
    assert multi["stats"]["index"]["count"] == [39]
    assert multi["stats"]["action"]["mean"] == pytest.approx(
        ((ours["a"]["action"]["mean"] * 24 + ours["b"]["action"]["mean"] * 15) / 39).tolist()
    )


def _our_episode_stats(copy: Path) -> list[dict[str, dict[str, np.ndarray]]]:
    import pyarrow.parquet as pq

    out = []
    for row in pq.read_table(copy / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist():
        stats: dict[str, dict[str, np.ndarray]] = {}
        for column, value in row.items():
            if column.startswith("stats/"):
                feature, stat = column[len("stats/") :].rsplit("/", 1)
                stats.setdefault(feature, {})[stat] = np.asarray(value)
        out.append(stats)
    return out
