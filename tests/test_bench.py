"""roboreward bench on a tiny built dataset: files, numbers equal to the metric modules, caching."""

import csv
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from conftest import named_checkpoint, write_manifest

from roboreward import metrics
from roboreward.bench.run import BenchConfig, load_examples, parse_spec, run_bench
from roboreward.cli import main as cli_main
from roboreward.dataset.builder import BuildConfig, build
from roboreward.testing.tiny import make_tiny_vlm


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    rows = [
        {
            "video": f"ep{i}.mp4",
            "task": f"open the drawer {i}",
            "reward": 1 + i % 5,
            "source": "oxe/toto" if i < 5 else "roboarena",
        }
        for i in range(10)
    ]
    write_manifest(root, rows)
    out = root / "ds"
    build(
        BuildConfig(manifest=[str(root / "m.jsonl")], out=str(out), split_ratios={"test": 1.0}, max_side=32)
    )
    return out


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, tiny_vlm_dir):
    root = tmp_path_factory.mktemp("models")
    return named_checkpoint(tiny_vlm_dir, root / "tiny-a"), make_tiny_vlm(root / "tiny-b", seed=1)


def test_examples_come_keyed_by_id_with_subsets(dataset):
    examples = load_examples(str(dataset))
    assert len(examples) == 10 and len({e.id for e in examples}) == 10
    assert {e.subset for e in examples} == {"oxe/toto", "roboarena"}
    arena = load_examples(str(dataset), subsets=["roboarena"])
    assert len(arena) == 5 and {e.subset for e in arena} == {"roboarena"}
    assert len(load_examples(str(dataset), max_examples=3)) == 3
    with pytest.raises(ValueError, match="unknown subsets"):
        load_examples(str(dataset), subsets=["bridge"])


def test_specs():
    assert parse_spec("baseline:constant-3").value == 3
    assert (
        parse_spec("generate:org/vlm").mode == "generate"
        and parse_spec("generate:org/vlm").name == "org/vlm (generate)"
    )
    for bad in [
        "baseline:constant-9",
        "baseline:median",
        "openai:localhost#m",
        "nope:x",
        "not/a/path/x",
        "generate:x",
    ]:
        with pytest.raises(ValueError):
            parse_spec(bad)


def test_bench_run_files_and_numbers(dataset, checkpoints, tmp_path, monkeypatch):
    examples = load_examples(str(dataset))
    preds_file = tmp_path / "theirs.jsonl"
    lines = [{"id": e.id, "prediction": e.reward} for e in examples[:6]]  # perfect on 6, missing 4
    lines += [{"id": examples[6].id, "output": "I think ANSWER: 2"}]
    preds_file.write_text("".join(json.dumps(r) + "\n" for r in lines))
    out = tmp_path / "bench"
    specs = [
        str(checkpoints[0]),
        str(checkpoints[1]),
        f"predictions:{preds_file}",
        "baseline:constant-5",
        "baseline:random",
    ]
    results = run_bench(
        BenchConfig(dataset=str(dataset), models=specs, out=str(out), batch_size=4, num_frames=4)
    )
    names = ["tiny-a", "tiny-b", "theirs", "baseline:constant-5", "baseline:random"]
    assert sorted(results["models"]) == sorted(names)
    assert sorted(p.name for p in (out / "predictions").iterdir()) == sorted(
        ["tiny-a.jsonl", "tiny-b.jsonl", "theirs.jsonl", "baseline_constant-5.jsonl", "baseline_random.jsonl"]
    )
    for name in (
        "leaderboard.md",
        "leaderboard.csv",
        "subset_mae_heatmap.png",
        "mean_win_rate.png",
        "results.json",
    ):
        assert (out / name).stat().st_size > 100
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results))

    # the numbers are the metric modules' numbers on the cached predictions
    refs = [e.reward for e in examples]
    table = {}
    for name in names:
        file = out / "predictions" / (name.replace(":", "_") + ".jsonl")
        rows = {r["id"]: r for r in map(json.loads, file.read_text().splitlines())}
        table[name] = [rows[e.id]["prediction"] for e in examples]
        assert [rows[e.id]["reference"] for e in examples] == refs
    expected = metrics.load("mean_win_rate").compute(
        predictions=[[table[n][i] for n in names] for i in range(10)],
        references=refs,
        subsets=[e.subset for e in examples],
        model_names=names,
    )
    for name in names:
        m = results["models"][name]
        assert m["mae"] == metrics.load("mae").compute(predictions=table[name], references=refs)["mae"]
        assert m["mean_win_rate"] == expected["mean_win_rate"][name]
        assert m["success"] == metrics.load("success_accuracy").compute(
            predictions=table[name], references=refs
        )
    theirs = results["models"]["theirs"]
    assert theirs["invalid"] == 3 and theirs["invalid_rate"] == 0.3
    assert table["theirs"][6] == 2 and table["baseline:constant-5"] == [5] * 10
    tiny = [json.loads(line) for line in (out / "predictions" / "tiny-a.jsonl").read_text().splitlines()]
    assert all(len(r["probabilities"]) == 5 and abs(sum(r["probabilities"]) - 1) < 1e-6 for r in tiny)
    board = list(csv.reader((out / "leaderboard.csv").open()))
    assert [row[1] for row in board[1:]] == results["leaderboard"]
    wins = [results["models"][n]["mean_win_rate"] for n in results["leaderboard"]]
    assert wins == sorted(wins, reverse=True)

    # a re-run scores nothing again; a torn cache line (a killed run) is re-scored
    cache = out / "predictions" / "tiny-b.jsonl"
    cache.write_text("\n".join(cache.read_text().splitlines()[:7]) + '\n{"id": "torn')
    calls = []
    from roboreward.models import local as scoring

    original = scoring.RewardModel.score_batch
    monkeypatch.setattr(
        scoring.RewardModel,
        "score_batch",
        lambda self, videos, tasks, *a, **k: (
            calls.append(len(videos)) or original(self, videos, tasks, *a, **k)
        ),
    )
    again = run_bench(
        BenchConfig(dataset=str(dataset), models=specs, out=str(out), batch_size=4, num_frames=4)
    )
    assert calls == [3]  # only tiny-b's three lost examples
    assert again["models"] == results["models"]


class _ChatServer(BaseHTTPRequestHandler):
    answers: ClassVar[tuple[str, ...]] = ("ANSWER: 3", "garbage", "ANSWER: 5")
    seen: ClassVar[list[int]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        parts = body["messages"][0]["content"]
        _ChatServer.seen.append(sum(p["type"] == "image_url" for p in parts))
        text = self.answers[(len(_ChatServer.seen) - 1) % 3]
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_openai_compatible_endpoint(dataset, tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        results = run_bench(
            BenchConfig(
                dataset=str(dataset),
                models=[f"openai:{url}#served-vlm"],
                out=str(tmp_path),
                max_examples=3,
                num_frames=4,
                video_input="frames",
                concurrency=1,
            )
        )
    finally:
        server.shutdown()
    assert _ChatServer.seen == [4, 4, 4]  # four frames went as images with every request
    rows = [
        json.loads(line) for line in (tmp_path / "predictions" / "served-vlm.jsonl").read_text().splitlines()
    ]
    assert [r["prediction"] for r in rows] == [3, 0, 5] and rows[1]["output"] == "garbage"
    assert results["models"]["served-vlm"]["invalid"] == 1


def test_generate_mode_parses_free_text(dataset, checkpoints, tmp_path):
    results = run_bench(
        BenchConfig(
            dataset=str(dataset),
            models=[f"generate:{checkpoints[0]}"],
            out=str(tmp_path),
            max_examples=4,
            num_frames=4,
        )
    )
    rows = [
        json.loads(line)
        for line in (tmp_path / "predictions" / "tiny-a_generate.jsonl").read_text().splitlines()
    ]
    from roboreward import rubric

    assert len(rows) == 4 and all(r["probabilities"] is None for r in rows)
    assert [r["prediction"] for r in rows] == [rubric.parse_answer(r["output"]) or 0 for r in rows]
    assert results["models"]["tiny-a (generate)"]["invalid"] == sum(r["prediction"] == 0 for r in rows)


def test_cli_bench(dataset, tmp_path, capsys):
    code = cli_main(
        [
            "bench",
            "--dataset",
            str(dataset),
            "--model",
            "baseline:constant-3",
            "--model",
            "baseline:random",
            "--out",
            str(tmp_path / "b"),
            "--subsets",
            "roboarena",
            "--json",
        ]
    )
    assert code == 0
    results = json.loads(capsys.readouterr().out)
    assert results["subsets"] == ["roboarena"] and results["num_examples"] == 5
    assert (
        cli_main(
            ["bench", "--dataset", str(dataset), "--model", "baseline:nope", "--out", str(tmp_path / "c")]
        )
        == 1
    )
    assert "unknown baseline" in capsys.readouterr().err


def test_a_second_dataset_with_the_same_ids_is_scored_afresh_not_read_from_the_cache(tmp_path):
    """The prediction cache is keyed by what an example is (its video's bytes, task, reference), not by
    its id: dataset B benched into dataset A's --out gives B's own numbers."""
    from conftest import write_manifest

    from roboreward.bench.run import BenchConfig, run_bench
    from roboreward.dataset.builder import BuildConfig, build
    from roboreward.testing.tiny import make_tiny_vlm

    tiny = make_tiny_vlm(tmp_path / "tiny", family="qwen2_5_vl")
    rows = [{"video": f"ep{i}.mp4", "task": f"push the cube {i}", "reward": 1 + i % 5} for i in range(4)]
    built = {}
    for name, frames in (("a", 6), ("b", 12)):  # the same rows and ids, other videos
        write_manifest(tmp_path / name, rows, num_frames=frames)
        built[name] = tmp_path / name / "ds"
        build(
            BuildConfig(
                manifest=[str(tmp_path / name / "m.jsonl")],
                out=str(built[name]),
                split_ratios={"test": 1.0},
                max_side=32,
                name="same",
            )
        )

    def bench(dataset, out):
        run_bench(BenchConfig(dataset=str(dataset), models=[str(tiny)], out=str(out), num_frames=2))
        lines = (out / "predictions" / "tiny.jsonl").read_text().splitlines()
        return {r["id"]: r["probabilities"] for r in map(json.loads, lines)}

    first = bench(built["a"], tmp_path / "shared")
    fresh = bench(built["b"], tmp_path / "fresh")
    reused = bench(built["b"], tmp_path / "shared")
    assert sorted(first) == sorted(fresh)  # the same ids ...
    assert any(first[i] != fresh[i] for i in first)  # ... for other videos
    assert reused == fresh


def test_an_override_is_warned_once_per_model(dataset, checkpoints, tmp_path, caplog):
    """The untrained baseline of the demo: no settings file, --num-frames given. Its notice and its
    override warning are each said once, not once when resolved and again when loaded."""
    import logging

    caplog.set_level(logging.WARNING, logger="roboreward")
    run_bench(
        BenchConfig(dataset=str(dataset), models=[str(checkpoints[1])], out=str(tmp_path / "b"), num_frames=4)
    )
    said = [r.getMessage() for r in caplog.records if r.name == "roboreward"]
    overrides = [m for m in said if m.startswith("num_frames=4 overrides 16")]
    notices = [m for m in said if "is not a known release" in m]
    assert len(overrides) == 1 and len(notices) == 1, said
    assert json.loads((tmp_path / "b" / "results.json").read_text())["num_examples"] == 10


def test_a_dataset_row_whose_task_is_over_the_limit_is_skipped_never_sent(dataset, tmp_path):
    """A dataset not built here (a Hub id, a hand-made folder) can hold a book in a task: 10.3 GB."""
    import pyarrow.parquet as pq

    from roboreward import rubric

    folder = tmp_path / "foreign"
    (folder / "data").mkdir(parents=True)
    table = pq.read_table(sorted((dataset / "data").glob("test-*.parquet"))[0])
    rows = table.to_pylist()
    rows[1]["task"] = "open it " * 12_500
    rows[2]["task"] = "   "
    pq.write_table(
        table.from_pylist(rows, schema=table.schema), folder / "data" / "test-00000-of-00001.parquet"
    )
    skipped: list[dict[str, str]] = []
    examples = load_examples(str(folder), skipped=skipped)
    assert [e.id for e in examples] == [r["id"] for i, r in enumerate(rows) if i not in (1, 2)]
    assert skipped == [
        {
            "where": f"test row 1 (id {rows[1]['id']})",
            "reason": f"task is 100000 characters long; the limit is {rubric.MAX_TASK_CHARS}",
        },
        {"where": f"test row 2 (id {rows[2]['id']})", "reason": "task is empty or not text ('   ')"},
    ]
