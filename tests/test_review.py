"""Human verification: durable decisions, two annotators, assignment, export, kappa, a real browser."""

import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import datasets
import pyarrow.parquet as pq
import pytest
from conftest import write_manifest

from roboreward.builder import BuildConfig, build
from roboreward.review import (
    ReviewStore,
    _needs_two,
    build_review_app,
    export_verified,
    next_example,
    quadratic_kappa,
    sanitize_annotator,
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("review")
    rows = [
        {
            "video": f"ep{i}.mp4",
            "task": f"open drawer {i}",
            "reward": 1 + i % 5,
            "source": "oxe/a" if i % 2 else "roboarena",
        }
        for i in range(8)
    ]
    write_manifest(root, rows, num_frames=6)
    out = root / "ds"
    build(
        BuildConfig(
            manifest=[str(root / "m.jsonl")],
            out=str(out),
            split_ratios={"train": 0.25, "test": 0.75},
            max_side=32,
            max_frames=4,
        )
    )
    return out


def _test_ids(dataset):
    return sorted(
        r["id"] for f in (dataset / "data").glob("test-*.parquet") for r in pq.read_table(f).to_pylist()
    )


def test_quadratic_kappa_by_hand():
    # a = 1 2 3 4 5, b = 1 2 3 5 5. Weights (i-j)^2/16. Observed disagreement: one (4,5) pair -> 1/16.
    # Expected: row totals all 1, column totals (1,1,1,0,2) over 5 items; sum_ij W_ij a_i b_j / 5 =
    # (30 + 15 + 10 + 0 + 2*30) / 16 / 5 = 115/80. kappa = 1 - (1/16) / (115/80) = 1 - 5/115 = 22/23.
    assert quadratic_kappa([1, 2, 3, 4, 5], [1, 2, 3, 5, 5]) == pytest.approx(22 / 23)
    assert quadratic_kappa([2, 4], [2, 4]) == 1.0
    assert quadratic_kappa([3, 3], [3, 3]) != quadratic_kappa([3, 3], [3, 3])  # undefined: NaN


def test_names_are_sanitised():
    assert sanitize_annotator(" alice_01 ") == "alice_01"
    for bad in ["", "a b", "../etc", "x" * 65, "<script>"]:
        with pytest.raises(ValueError, match="annotator name"):
            sanitize_annotator(bad)


def test_decisions_are_validated_and_upserted(tmp_path):
    store = ReviewStore(tmp_path / "r.sqlite")
    store.decide("ex1", "alice", "accept", proposed=4)
    store.decide("ex1", "alice", "correct", proposed=4, score=3)  # a change of mind replaces the row
    store.decide("ex2", "alice", "reject", proposed=5, reason="ambiguous")
    rows = {r["example_id"]: r for r in store.decisions()}
    assert (rows["ex1"]["decision"], rows["ex1"]["score"], rows["ex1"]["reason"]) == ("correct", 3, None)
    assert (rows["ex2"]["decision"], rows["ex2"]["score"], rows["ex2"]["reason"]) == (
        "reject",
        None,
        "ambiguous",
    )
    with pytest.raises(ValueError, match="reason"):
        store.decide("ex3", "alice", "reject", proposed=2)
    with pytest.raises(ValueError, match=r"score must be an integer 1\.\.5"):
        store.decide("ex3", "alice", "correct", proposed=2, score=7)
    assert len(store.decisions()) == 2


def _hammer(path, annotator, count):
    store = ReviewStore(path)
    for i in range(count):
        store.decide(f"ex{i}", annotator, "correct", proposed=3, score=1 + i % 5)


def test_two_annotators_writing_at_once_lose_nothing(tmp_path):
    path = tmp_path / "r.sqlite"
    ReviewStore(path)
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_hammer, args=(path, name, 150)) for name in ("alice", "bob")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0]
    rows = ReviewStore(path).decisions()
    assert len(rows) == 300 and {r["annotator"] for r in rows} == {"alice", "bob"}


def test_double_labelling_assignment():
    ids = [f"example-{i:03d}" for i in range(60)]
    doubles = {i for i in ids if _needs_two(i, 0.25)}
    assert 5 < len(doubles) < 25  # about a quarter, chosen by hash
    decisions = []
    seen = {"alice": [], "bob": []}
    for annotator in ("alice", "bob"):
        while (current := next_example(ids, decisions, annotator, 0.25, [])) is not None:
            seen[annotator].append(current)
            decisions.append({"example_id": current, "annotator": annotator})
    assert seen["alice"] == ids  # the first annotator takes everything in order
    assert seen["bob"] == sorted(doubles)  # the second gets exactly the double-labelled ones
    assert next_example(ids[:3], [], "carol", 0.0, [ids[0]]) == ids[1]  # skipped ones come back last
    assert next_example(ids[:1], [], "carol", 0.0, [ids[0]]) == ids[0]


def test_export_applies_corrections_drops_rejections_and_reports_agreement(dataset, tmp_path):
    ids = _test_ids(dataset)
    rows = {
        r["id"]: r for f in (dataset / "data").glob("test-*.parquet") for r in pq.read_table(f).to_pylist()
    }
    store = ReviewStore(tmp_path / "r.sqlite")
    a, b, c, d = ids[:4]
    store.decide(a, "alice", "accept", proposed=rows[a]["reward"])
    store.decide(a, "bob", "accept", proposed=rows[a]["reward"])
    store.decide(b, "alice", "correct", proposed=rows[b]["reward"], score=2)
    store.decide(b, "bob", "correct", proposed=rows[b]["reward"], score=2)
    store.decide(c, "alice", "reject", proposed=rows[c]["reward"], reason="unclear video")
    store.decide(d, "alice", "correct", proposed=rows[d]["reward"], score=5)
    out = tmp_path / "verified"
    report = export_verified(tmp_path / "r.sqlite", dataset, out, split="test")
    verified = {r["id"]: r for r in pq.read_table(out / "data" / "test-00000-of-00001.parquet").to_pylist()}
    assert set(verified) == {a, b, d}  # c rejected, the rest unreviewed
    assert (
        verified[a]["reward"] == rows[a]["reward"]
        and verified[b]["reward"] == 2
        and verified[d]["reward"] == 5
    )
    assert [verified[x]["reviewers"] for x in (a, b, d)] == [2, 2, 1] and all(
        v["verified"] for v in verified.values()
    )
    expected_outcomes = {"rejected": 1, "unreviewed": len(ids) - 4}
    expected_outcomes["corrected"] = (rows[b]["reward"] != 2) + (rows[d]["reward"] != 5)
    expected_outcomes["accepted"] = 3 - expected_outcomes["corrected"]
    assert report["outcomes"] == {k: v for k, v in sorted(expected_outcomes.items()) if v}
    pair = report["agreement"]["pairs"]["alice|bob"]
    assert pair["examples"] == 2 and pair["exact_agreement"] == 1.0
    loaded = datasets.load_dataset(str(out))
    assert len(loaded["test"]) == 3 and loaded["train"]["verified"] == [False] * len(loaded["train"])
    card = (out / "README.md").read_text()
    assert "## Human verification" in card and "| alice / bob | 2 | 1.000 |" in card
    assert json.loads((out / "verification_report.json").read_text())["verified_rows"] == 3
    unanimous = export_verified(
        tmp_path / "r.sqlite", dataset, tmp_path / "v2", split="test", min_annotators=2, policy="unanimous"
    )
    assert unanimous["verified_rows"] == 2  # a and b have two agreeing decisions; d has one


def _port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url, deadline=60):
    import httpx

    start = time.time()
    while time.time() - start < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise TimeoutError(url)


def test_decisions_survive_killing_the_app(dataset, tmp_path):
    from gradio_client import Client

    db = tmp_path / "r.sqlite"
    port = _port()
    command = [
        sys.executable,
        "-m",
        "roboreward.cli",
        "review",
        "--dataset",
        str(dataset),
        "--db",
        str(db),
        "--annotator",
        "alice",
        "--port",
        str(port),
        "--double-fraction",
        "0",
    ]
    app = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait(url)
        client = Client(url, verbose=False)
        first = client.predict(api_name="/current")
        client.predict("ambiguous", api_name="/accept")
        client.predict("ambiguous", api_name="/correct_2")
        client.predict("ambiguous", api_name="/reject")
    finally:
        os.kill(app.pid, signal.SIGKILL)
        app.wait()
    rows = ReviewStore(db).decisions()
    assert sorted(r["decision"] for r in rows) == ["accept", "correct", "reject"]
    ids = _test_ids(dataset)
    assert {r["example_id"] for r in rows} == set(ids[:3]) and first[1] == "### " + next(
        r["task"]
        for f in (dataset / "data").glob("test-*.parquet")
        for r in pq.read_table(f).to_pylist()
        if r["id"] == ids[0]
    )
    port = _port()
    command[-3] = str(port)
    restarted = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait(url)
        current = Client(url, verbose=False).predict(api_name="/current")
        assert "3 / 6 done" in current[4]  # the restarted app resumes at the first undecided example
    finally:
        restarted.terminate()
        restarted.wait(10)
    assert len(ReviewStore(db).decisions()) == 3


def test_non_loopback_needs_auth(dataset, tmp_path, capsys):
    from roboreward.cli import main

    code = main(
        ["review", "--dataset", str(dataset), "--db", str(tmp_path / "r.sqlite"), "--host", "0.0.0.0"]
    )
    assert code == 1 and "--auth" in capsys.readouterr().err


def test_real_browser_labels_with_the_keyboard(dataset, tmp_path):
    chromium = shutil.which("chromium")
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (CI installs it)")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    db = tmp_path / "r.sqlite"
    app = build_review_app(dataset, "test", db, "browser", double_fraction=0.0)
    port = _port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=chromium,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                ],
            )
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            for key, done in (("a", 1), ("3", 2), ("r", 3)):
                page.wait_for_selector(f"#progress :text('{done - 1} / 6 done')", timeout=30_000)
                page.locator("body").click(position={"x": 5, "y": 5})
                page.keyboard.press(key)
                page.wait_for_selector(f"#progress :text('{done} / 6 done')", timeout=30_000)
            page.screenshot(path=str(tmp_path / "review.png"))
            browser.close()
    finally:
        app.close()
    decisions = ReviewStore(db).decisions()
    by_kind = sorted((r["decision"], r["score"]) for r in decisions)
    assert len(decisions) == 3 and {d["annotator"] for d in decisions} == {"browser"}
    assert (
        ("correct", 3) in by_kind and ("reject", None) in by_kind and any(k == "accept" for k, _ in by_kind)
    )
    assert (tmp_path / "review.png").stat().st_size > 10_000
