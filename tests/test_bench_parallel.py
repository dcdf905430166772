"""roboreward bench under accelerate launch: shares, part files, merging, and two processes on CPU
giving the results one process gives, each example scored once."""

import json
import os
import re
import subprocess
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import named_checkpoint, write_manifest

import roboreward
from roboreward.bench import parallel as bench_parallel
from roboreward.bench.parallel import DataParallel, merge_parts, part_files, part_path, shard
from roboreward.bench.run import BenchConfig, load_examples, run_bench
from roboreward.dataset.builder import BuildConfig, build

pytest.importorskip("accelerate", reason="accelerate (a roboreward dependency) is not installed")

NUM_EXAMPLES = 7  # with batches of 2: the two processes get 2 + 2 and 2 + 1 examples


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench_dp")
    rows = [
        {
            "video": f"ep{i}.mp4",
            "task": f"open the drawer {i}",
            "reward": 1 + i % 5,
            "source": "oxe/toto" if i < 4 else "roboarena",
        }
        for i in range(NUM_EXAMPLES)
    ]
    write_manifest(root, rows)
    out = root / "ds"
    build(
        BuildConfig(manifest=[str(root / "m.jsonl")], out=str(out), split_ratios={"test": 1.0}, max_side=32)
    )
    return out


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_vlm_dir):
    return named_checkpoint(tiny_vlm_dir, tmp_path_factory.mktemp("models") / "tiny")


class _TaskServer(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint whose answer depends only on the task (not on the order of the
    requests), counting the requests per task."""

    lock: ClassVar[threading.Lock] = threading.Lock()
    requests: ClassVar[Counter] = Counter()

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = "".join(p.get("text", "") for p in body["messages"][0]["content"])
        number = int(re.search(r"open the drawer (\d+)", text)[1])
        with _TaskServer.lock:
            _TaskServer.requests[number] += 1
        answer = "no idea" if number == 4 else f"ANSWER: {1 + (number * 2) % 5}"
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": answer}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def served():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TaskServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _TaskServer.requests.clear()
    yield f"openai:http://127.0.0.1:{server.server_address[1]}/v1#served-vlm"
    server.shutdown()
    server.server_close()


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _task_number(dataset: Path) -> dict[str, int]:
    return {e.id: int(e.task.rsplit(" ", 1)[1]) for e in load_examples(str(dataset))}


def _write(path: Path, rows: list[dict], tail: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + tail)


# ---------------------------------------------------------------------------------------------
# The pieces


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
def test_shares_cover_each_example_exactly_once_in_whole_batches(world_size):
    for n in range(12):
        for block in (1, 2, 3):
            shares = [shard(list(range(n)), rank, world_size, block) for rank in range(world_size)]
            assert sorted(i for share in shares for i in share) == list(range(n))
            batches = [list(range(n))[s : s + block] for s in range(0, n, block)]  # one process's
            for rank, share in enumerate(shares):
                assert share == [i for b in batches[rank::world_size] for i in b]
    assert DataParallel().share([1, 2, 3], block=2) == [1, 2, 3]


def test_a_bad_rank_or_block_is_named():
    with pytest.raises(ValueError, match="rank 2 is not one of world size 2"):
        shard([1], 2, 2)
    with pytest.raises(ValueError, match="block must be at least 1"):
        shard([1], 0, 1, block=0)


def test_part_files_are_the_models_own_from_any_world_size(tmp_path):
    cache = tmp_path / "tiny.jsonl"
    for name in ["tiny.part-1-of-2.jsonl", "tiny.part-0-of-3.jsonl", "tiny.part-0-of-2.jsonl"]:
        (tmp_path / name).write_text("")
    (tmp_path / "tiny-b.part-0-of-2.jsonl").write_text("")  # another model's
    (tmp_path / "tiny.part-x-of-2.jsonl").write_text("")
    assert [p.name for p in part_files(cache)] == [
        "tiny.part-0-of-2.jsonl",
        "tiny.part-1-of-2.jsonl",
        "tiny.part-0-of-3.jsonl",
    ]
    assert part_path(cache, 1, 2) == tmp_path / "tiny.part-1-of-2.jsonl"
    assert DataParallel().writes_to(cache) == cache
    assert DataParallel(1, 2).writes_to(cache) == tmp_path / "tiny.part-1-of-2.jsonl"


def test_merge_keeps_the_cache_drops_torn_lines_orders_and_deletes_parts(tmp_path):
    cache = tmp_path / "m.jsonl"
    _write(cache, [{"id": "a", "prediction": 1}, {"id": "b", "prediction": 1}])
    _write(part_path(cache, 0, 2), [{"id": "d", "prediction": 4}, {"id": "b", "prediction": 2}])
    _write(part_path(cache, 1, 2), [{"id": "c", "prediction": 3}], tail='{"id": "e", "predic')
    new = merge_parts(cache, order=["b", "c", "d"])
    assert new == {
        "b": {"id": "b", "prediction": 2},
        "c": {"id": "c", "prediction": 3},
        "d": {"id": "d", "prediction": 4},
    }
    assert [(r["id"], r["prediction"]) for r in _rows(cache)] == [("a", 1), ("b", 2), ("c", 3), ("d", 4)]
    assert part_files(cache) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["m.jsonl"]
    assert merge_parts(cache) == {}  # nothing left: nothing to do


def test_merge_without_parts_cleans_only_a_torn_cache(tmp_path):
    cache = tmp_path / "m.jsonl"
    _write(cache, [{"id": "a", "prediction": 1}])
    before = cache.stat().st_mtime_ns
    assert merge_parts(cache) == {} and cache.stat().st_mtime_ns == before
    _write(cache, [{"id": "a", "prediction": 1}], tail='{"id": "b"')
    assert merge_parts(cache) == {} and _rows(cache) == [{"id": "a", "prediction": 1}]
    assert merge_parts(tmp_path / "none.jsonl") == {} and not (tmp_path / "none.jsonl").exists()


def test_one_process_picks_up_the_parts_a_killed_parallel_run_left(dataset, served, tmp_path):
    config = BenchConfig(dataset=str(dataset), models=[served], out=str(tmp_path), num_frames=4)
    run_bench(config)
    first = (tmp_path / "results.json").read_text()
    assert set(_TaskServer.requests.values()) == {1} and len(_TaskServer.requests) == NUM_EXAMPLES
    cache = tmp_path / "predictions" / "served-vlm.jsonl"
    rows = _rows(cache)
    # as a killed run of 3 processes leaves it: two rows merged, three in parts (one torn), two lost
    _write(cache, rows[:2])
    _write(part_path(cache, 0, 3), rows[2:4])
    _write(part_path(cache, 2, 3), rows[4:5], tail=json.dumps(rows[5])[:20])
    _TaskServer.requests.clear()
    run_bench(config)
    lost = {_task_number(dataset)[r["id"]] for r in rows[5:]}
    assert dict(_TaskServer.requests) == {number: 1 for number in lost}
    assert (tmp_path / "results.json").read_text() == first and part_files(cache) == []
    assert sorted(r["id"] for r in _rows(cache)) == sorted(r["id"] for r in rows)


# ---------------------------------------------------------------------------------------------
# Two processes under accelerate launch


def _launch(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``accelerate launch`` on CPU: --multi_gpu is what starts several processes (torchrun's); with
    no accelerator they meet over gloo. The child imports the roboreward tree under test."""
    env = {**os.environ, "PYTHONPATH": str(Path(roboreward.__file__).parents[1]), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    command += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    command += ["--main_process_port", "0", "-m", "roboreward.cli", "bench", *args]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


@pytest.mark.slow
def test_two_processes_give_one_process_results_scoring_each_example_once(
    dataset, checkpoint, served, tmp_path
):
    models = [str(checkpoint), served, "baseline:constant-3"]
    one, two = tmp_path / "one", tmp_path / "two"
    run_bench(BenchConfig(dataset=str(dataset), models=models, out=str(one), batch_size=2, num_frames=4))
    _TaskServer.requests.clear()

    flags = ["--dataset", str(dataset), "--batch-size", "2", "--num-frames", "4", "--out", str(two)]
    for spec in models:
        flags += ["--model", spec]
    done = _launch(flags, tmp_path)

    assert done.stdout.count("# RoboRewardBench") == 1  # the main process prints, the other not
    assert "served-vlm (share 1 of 2): 100%|██████████| 4/4" in done.stderr  # its bar: 4 of the 7
    assert dict(_TaskServer.requests) == {number: 1 for number in range(NUM_EXAMPLES)}
    # byte for byte: the metrics and every prediction file (batches as one process makes them)
    assert (two / "results.json").read_text() == (one / "results.json").read_text()
    names = sorted(p.name for p in (one / "predictions").iterdir())
    assert names == ["baseline_constant-3.jsonl", "served-vlm.jsonl", "tiny.jsonl"]
    assert sorted(p.name for p in (two / "predictions").iterdir()) == names  # no part file is left
    ids = sorted(e.id for e in load_examples(str(dataset)))
    for name in names:
        assert sorted(r["id"] for r in _rows(two / "predictions" / name)) == ids
        assert (two / "predictions" / name).read_bytes() == (one / "predictions" / name).read_bytes()
    results = json.loads((two / "results.json").read_text())
    assert results["num_examples"] == NUM_EXAMPLES and results["models"]["served-vlm"]["invalid"] == 1

    # killed mid-run: rows in the parts of both processes (one torn), one lost; the resumed run
    # merges the parts and asks only for the lost one
    cache = two / "predictions" / "served-vlm.jsonl"
    rows = _rows(cache)
    _write(cache, rows[:3])
    _write(part_path(cache, 0, 2), rows[3:5])
    _write(part_path(cache, 1, 2), rows[5:6], tail='{"id": "torn')
    before = (two / "results.json").read_text()
    (two / "results.json").unlink()
    _TaskServer.requests.clear()
    _launch([*flags, "--json"], tmp_path)
    assert dict(_TaskServer.requests) == {_task_number(dataset)[rows[6]["id"]]: 1}
    assert (two / "results.json").read_text() == before
    assert sorted(p.name for p in (two / "predictions").iterdir()) == names
    assert sorted(r["id"] for r in _rows(cache)) == ids


def test_the_cpu_command_is_the_documented_one():
    command = "accelerate launch --multi_gpu --num_processes 2 --main_process_port 0 -m roboreward.cli bench"
    assert command in (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert command in bench_parallel.__doc__
