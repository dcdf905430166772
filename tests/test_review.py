"""Human verification: durable decisions, concurrent annotators, assignment, export, kappa, a real browser."""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import launch_chromium, playwright_or_skip, write_manifest

from roboreward import video
from roboreward.cli import main
from roboreward.cli.access import is_loopback
from roboreward.cli.commands.review import check_access, parse_auth
from roboreward.dataset.builder import BuildConfig, build
from roboreward.review import (
    ReviewStore,
    SplitReview,
    agreement,
    assignment_order,
    build_review_app,
    export_verified,
    final_label,
    is_double_labelled,
    next_example,
    quadratic_kappa,
    sanitize_annotator,
)


def _counterfactuals(episodes, work_dir):
    """A stand-in relabeler: one counterfactual (level 3) per successful episode."""
    derived = [
        ep.replace(
            task=f"{ep.task} into the left bin",
            reward=3,
            progress=None,
            augmentation="counterfactual",
            provenance={**ep.provenance, "counterfactual": {"level": 3, "failure": "wrong bin"}},
        )
        for ep in episodes
        if ep.reward == 5
    ]
    return [*episodes, *derived], [], {}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("review")
    rewards = [5, 2, 5, 4, 1, 5, 3, 5]
    rows = [
        {
            "video": f"ep{i}.mp4",
            "task": f"open drawer {i}",
            "reward": reward,
            "source": "oxe/a" if i % 2 else "roboarena",
        }
        for i, reward in enumerate(rewards)
    ]
    write_manifest(root, rows, num_frames=6)
    out = root / "ds"
    config = BuildConfig(
        manifest=[str(root / "m.jsonl")],
        out=str(out),
        split_ratios={"train": 0.25, "test": 0.75},
        max_side=32,
        max_frames=4,
    )
    build(config, augment=_counterfactuals)
    return out


def _rows(folder, split):
    files = sorted((folder / "data").glob(f"{split}-*.parquet"))
    return {r["id"]: r for f in files for r in pq.read_table(f).to_pylist()}


# ---------------------------------------------------------------------------------------------
# Agreement and labels


def test_quadratic_kappa_equals_the_hand_computed_value():
    # a = 1 2 3 4 5, b = 1 2 3 5 5 (k = 5 levels, weights W_ij = (i - j)^2 / 16).
    # Observed: one item off by one (4 vs 5): sum W*O = 1/16.
    # Expected E_ij = row_i * col_j / n with rows (1,1,1,1,1), columns (1,1,1,0,2), n = 5. For column j,
    # sum_i (i - j)^2 = 30, 15, 10, 15, 30, so sum W*E = (30 + 15 + 10 + 0 + 2 * 30) / 16 / 5 = 115 / 80.
    # kappa = 1 - (1/16) / (115/80) = 1 - 5/115 = 22/23 = 0.9565...
    assert quadratic_kappa([1, 2, 3, 4, 5], [1, 2, 3, 5, 5]) == pytest.approx(22 / 23)
    assert quadratic_kappa([1, 5], [5, 1]) == pytest.approx(-1.0)  # complete reversal
    assert quadratic_kappa([2, 4], [2, 4]) == 1.0
    nan = quadratic_kappa([3, 3], [3, 3])  # no disagreement possible by chance: undefined
    assert nan != nan


def test_agreement_report_uses_kappa_on_scored_items_and_counts_rejections_in_exact_agreement():
    examples = {
        f"e{i}": {"source": "oxe/a" if i < 3 else "roboarena", "augmentation": "original"} for i in range(6)
    }
    alice = [1, 2, 3, 4, 5, "reject"]
    bob = [1, 2, 3, 5, 5, 4]
    decisions = []
    for name, outcomes in (("alice", alice), ("bob", bob)):
        for i, outcome in enumerate(outcomes):
            rejected = outcome == "reject"
            decisions.append(
                {
                    "example_id": f"e{i}",
                    "annotator": name,
                    "decision": "reject" if rejected else ("accept" if outcome == 3 else "correct"),
                    "score": None if rejected else outcome,
                }
            )
    report = agreement(decisions, examples)
    pair = report["pairs"]["alice|bob"]
    # Five items both scored: the table above, kappa 22/23; exact: e0 e1 e2 e4 agree of 6 shared.
    assert pair == pytest.approx(
        {"examples": 6, "scored": 5, "exact_agreement": 4 / 6, "quadratic_kappa": 22 / 23}
    )
    assert report["overall"] == pair
    # oxe/a: e0..e2, 6 decisions, 4 corrections (1, 2 twice each), no rejection.
    assert report["by_source"]["oxe/a"]["corrected"] == pytest.approx(4 / 6)
    assert report["by_source"]["roboarena"]["rejected"] == pytest.approx(1 / 6)
    assert report["by_source"]["roboarena"]["pairs_exact_agreement"] == pytest.approx(1 / 3)  # e4 of e3..e5


def test_final_label_majority_and_unanimous_rules():
    assert final_label([4, 4, 3]) == 4
    assert final_label([3, 4]) == 3  # a tie between scores: the lower median
    assert final_label([2, 3, 5]) == 3
    assert final_label([2, 5]) == 2
    assert final_label([4, "reject"]) == "reject"  # a tie with a rejection drops the example
    assert final_label(["reject", "reject", 5]) == "reject"
    assert final_label([5, 5, "reject"]) == 5
    assert final_label([3, 3], "unanimous") == 3
    assert final_label(["reject"], "unanimous") == "reject"
    assert final_label([3, 4], "unanimous") is None


# ---------------------------------------------------------------------------------------------
# Names, decisions, concurrency


def test_annotator_names_are_sanitised(tmp_path, dataset, capsys):
    assert sanitize_annotator(" alice_01 ") == "alice_01"
    assert sanitize_annotator("A.b-c") == "A.b-c"
    for bad in ["", "   ", "a b", "../etc", "x" * 65, "<script>", "émile", None]:
        with pytest.raises(ValueError, match="annotator name must be 1-64 characters"):
            sanitize_annotator(bad)
    with pytest.raises(ValueError, match="annotator name"):
        ReviewStore(tmp_path / "r.sqlite").decide("ex1", "bob smith", "accept", proposed=3)
    args = ["review", "--dataset", str(dataset), "--db", str(tmp_path / "r.sqlite"), "--annotator", "a/b"]
    assert main(args) == 1
    assert "annotator name must be" in capsys.readouterr().err


def test_decisions_are_validated_upserted_and_logged(tmp_path):
    store = ReviewStore(tmp_path / "r.sqlite")
    store.decide("ex1", "alice", "accept", proposed=4)
    store.decide("ex1", "alice", "correct", proposed=4, score=3)  # a change of mind replaces the row
    store.decide("ex2", "alice", "reject", proposed=5, reason="ambiguous")
    store.decide("ex3", "alice", "correct", proposed=2, score=2)  # the proposed score: an accept
    rows = {r["example_id"]: r for r in store.decisions()}
    got = {i: (r["decision"], r["score"], r["proposed"], r["reason"]) for i, r in rows.items()}
    assert got == {
        "ex1": ("correct", 3, 4, None),
        "ex2": ("reject", None, 5, "ambiguous"),
        "ex3": ("accept", 2, 2, None),
    }
    assert [(e["example_id"], e["decision"]) for e in store.history()] == [
        ("ex1", "accept"),
        ("ex1", "correct"),
        ("ex2", "reject"),
        ("ex3", "accept"),
    ]
    with pytest.raises(ValueError, match="reason"):
        store.decide("ex4", "alice", "reject", proposed=2)
    with pytest.raises(ValueError, match=r"score must be an integer 1\.\.5"):
        store.decide("ex4", "alice", "correct", proposed=2, score=7)
    with pytest.raises(ValueError, match="decision must be one of"):
        store.decide("ex4", "alice", "maybe", proposed=2)
    assert len(store.decisions()) == 3 and len(store.decisions("bob")) == 0
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(ValueError, match="cannot open the review database"):
        ReviewStore(tmp_path / "junk.sqlite")


_HAMMER = """
import sys
from roboreward.review import ReviewStore
store = ReviewStore(sys.argv[1])
for round in range(2):
    for i in range(int(sys.argv[3])):
        store.decide(f"ex{i:04d}", sys.argv[2], "correct", proposed=3, score=1 + (i + round) % 5)
"""


def test_annotators_writing_at_once_lose_nothing(tmp_path):
    """Two processes and four threads upsert into one database at the same time."""
    path = tmp_path / "r.sqlite"
    store = ReviewStore(path)
    count = 120
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _HAMMER, str(path), name, str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("alice", "bob")
    ]
    errors = []

    def hammer(name):
        try:
            for i in range(count):
                store.decide(f"ex{i:04d}", name, "reject", proposed=3, reason="ambiguous")
        except Exception as exc:  # a 'database is locked' would land here
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(f"t{k}",)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    outputs = [p.communicate(timeout=120) for p in processes]
    assert errors == []
    assert [p.returncode for p in processes] == [0, 0] and all(err == "" for _, err in outputs)
    rows = store.decisions()
    assert len(rows) == 6 * count
    last = {(r["example_id"], r["annotator"]): r["score"] for r in rows}
    assert all(last[(f"ex{i:04d}", "alice")] == 1 + (i + 1) % 5 for i in range(count))  # the later round
    assert all(last[(f"ex{i:04d}", "t3")] is None for i in range(count))
    assert len(store.history()) == 2 * 2 * count + 4 * count


# ---------------------------------------------------------------------------------------------
# Assignment


def test_double_labelled_examples_go_to_exactly_two_annotators():
    ids = [f"oxe/a/ep{i:03d}/{i * 7919 % 1000:03x}" for i in range(80)]
    doubles = sorted(i for i in ids if is_double_labelled(i, 0.25))
    assert 10 < len(doubles) < 30  # about a quarter, chosen by hash
    assert not any(is_double_labelled(i, 0.0) for i in ids) and all(is_double_labelled(i, 1.0) for i in ids)
    # Alice and Bob take turns, as if working at the same time.
    decisions, shown, active = [], {"alice": [], "bob": []}, ["alice", "bob"]
    while active:
        for name in list(active):
            current = next_example(assignment_order(ids, name, 0.25), decisions, name, 0.25)
            if current is None:
                active.remove(name)
                continue
            shown[name].append(current)
            decisions.append({"example_id": current, "annotator": name})
    assert sorted(set(shown["alice"]) & set(shown["bob"])) == doubles
    assert set(shown["alice"]) | set(shown["bob"]) == set(ids)
    assert shown["alice"][: len(doubles)] == doubles == shown["bob"][: len(doubles)]  # pairs complete early
    assert abs(len(shown["alice"]) - len(shown["bob"])) <= 1  # the rest is split between them
    assert next_example(assignment_order(ids, "carol", 0.25), decisions, "carol", 0.25) is None
    # One annotator after the other: the second gets exactly the double-labelled examples.
    decisions = [{"example_id": i, "annotator": "alice"} for i in ids]
    order = assignment_order(ids, "bob", 0.25)
    seen = []
    while (current := next_example(order, decisions, "bob", 0.25)) is not None:
        seen.append(current)
        decisions.append({"example_id": current, "annotator": "bob"})
    assert seen == doubles


def test_skipped_examples_come_back_last():
    ids = ["a", "b", "c"]
    order = assignment_order(ids, "carol", 0.0)
    assert order == assignment_order(ids, "carol", 0.0) != assignment_order(ids, "dave", 0.0)
    assert next_example(order, [], "carol", 0.0, skipped=[order[0]]) == order[1]
    decided = [{"example_id": order[1], "annotator": "x"}, {"example_id": order[2], "annotator": "x"}]
    assert next_example(order, decided, "carol", 0.0, skipped=[order[0]]) == order[0]


def test_the_review_shows_provenance_and_a_playable_video(dataset, tmp_path):
    review = SplitReview(
        dataset, "test", tmp_path / "r.sqlite", double_fraction=0.0, cache_dir=tmp_path / "v"
    )
    counterfactual = next(i for i, r in review.examples.items() if r["augmentation"] == "counterfactual")
    info = review.describe(counterfactual)
    facts = dict(info["facts"])
    assert info["proposed"] == 3 and info["rubric_line"].startswith("3 - Partial completion: ")
    assert facts["relabel level"] == 3 and facts["failure mode"] == "wrong bin"
    assert facts["original task"] == info["task"].removesuffix(" into the left bin")
    path = review.video_path(counterfactual)
    assert path.parent == tmp_path / "v" and video.probe(path).frames >= 2
    assert len(list((tmp_path / "v").glob("*.mp4"))) == len(review.examples)  # the row group, cached
    with pytest.raises(ValueError, match="is not an example of the test split"):
        review.decide("nope", "alice", "accept")
    p = review.progress("alice")
    assert (p["mine"], p["done"], p["total"]) == (0, 0, len(review.examples))


# ---------------------------------------------------------------------------------------------
# Export


def test_export_applies_corrections_and_drops_rejections_exactly(dataset, tmp_path):
    rows = _rows(dataset, "test")
    a, b, c, d, e = sorted(rows)[:5]

    def proposed(i):
        return rows[i]["reward"]

    new_b = 1 if proposed(b) != 1 else 2
    new_d = 5 if proposed(d) != 5 else 4
    db = tmp_path / "r.sqlite"
    store = ReviewStore(db)
    store.decide(a, "alice", "accept", proposed(a))
    store.decide(a, "bob", "accept", proposed(a))
    store.decide(b, "alice", "correct", proposed(b), score=new_b)
    store.decide(b, "bob", "correct", proposed(b), score=new_b)
    store.decide(c, "alice", "reject", proposed(c), reason="unclear video")
    store.decide(d, "alice", "correct", proposed(d), score=new_d)
    store.decide(e, "alice", "accept", proposed(e))
    store.decide(e, "bob", "reject", proposed(e), reason="wrong task text")  # a tie with a rejection
    store.decide("another/split/row", "alice", "accept", 3)

    out = tmp_path / "verified"
    report = export_verified(db, dataset, out, split="test")

    verified = _rows(out, "test")
    got = {i: (r["reward"], r["verified"], r["reviewers"]) for i, r in verified.items()}
    assert got == {a: (proposed(a), True, 2), b: (new_b, True, 2), d: (new_d, True, 1)}
    for i, row in verified.items():  # everything else is the source row, video bytes included
        assert {k: v for k, v in row.items() if k not in ("reward", "verified", "reviewers")} == {
            k: v for k, v in rows[i].items() if k != "reward"
        }
    assert report["outcomes"] == {
        "accepted": 1,
        "corrected": 2,
        "rejected": 2,
        "disagreement": 0,
        "unreviewed": len(rows) - 5,
        "too_few_decisions": 0,
    }
    assert (report["verified_rows"], report["reviewed"], report["decisions"]) == (3, 5, 8)
    assert report["decisions_on_other_examples"] == 1
    assert report["agreement"]["pairs"]["alice|bob"]["examples"] == 3
    assert report["agreement"]["pairs"]["alice|bob"]["exact_agreement"] == pytest.approx(2 / 3)
    assert json.loads((out / "verification_report.json").read_text()) == report

    train = _rows(out, "train")
    assert train.keys() == _rows(dataset, "train").keys()
    assert {(r["verified"], r["reviewers"]) for r in train.values()} == {(False, 0)}

    loaded = datasets.load_dataset(str(out))
    assert sorted(loaded["test"]["id"]) == sorted(got) and loaded["test"].features["verified"].dtype == "bool"
    assert isinstance(loaded["test"].features["video"], datasets.Video)

    card = (out / "README.md").read_text()
    front = yaml.safe_load(card.split("---\n")[1])
    sizes = {s["name"]: s["num_examples"] for s in front["dataset_info"]["splits"]}
    assert sizes == {"train": len(train), "test": 3}
    assert {"verified", "reviewers"} <= {f["name"] for f in front["dataset_info"]["features"]}
    section = card.index("## Human verification")
    assert section < card.index("## Usage") and "| alice / bob | 3 | 0.667 |" in card
    assert f"| 5 | 1 | 2 | 2 | 0 | {len(rows) - 5} | 3 |" in card  # reviewed, accepted, ..., verified rows
    build_report = json.loads((out / "build_report.json").read_text())
    assert build_report["rows"]["test"]["rows"] == 3 and build_report["files"]["test"] == [
        "data/test-00000-of-00001.parquet"
    ]

    strict = export_verified(db, dataset, tmp_path / "strict", min_annotators=2, policy="unanimous")
    assert set(_rows(tmp_path / "strict", "test")) == {a, b}
    assert strict["outcomes"] == {
        "accepted": 1,
        "corrected": 1,
        "rejected": 0,
        "disagreement": 1,
        "unreviewed": len(rows) - 5,
        "too_few_decisions": 2,
    }
    with pytest.raises(ValueError, match="not empty"):
        export_verified(db, dataset, out)
    with pytest.raises(ValueError, match="does not exist"):
        export_verified(tmp_path / "missing.sqlite", dataset, tmp_path / "v3")
    assert not list(tmp_path.glob(".*partial*"))


def test_export_cli_prints_agreement(dataset, tmp_path, capsys):
    rows = _rows(dataset, "test")
    first = sorted(rows)[0]
    store = ReviewStore(tmp_path / "r.sqlite")
    store.decide(first, "alice", "accept", rows[first]["reward"])
    args = ["review", "export", "--db", str(tmp_path / "r.sqlite"), "--dataset", str(dataset)]
    assert main([*args, "--out", str(tmp_path / "v")]) == 0
    printed = capsys.readouterr().out
    assert f"1 verified rows of {len(rows)}" in printed and "proposed labels changed, by source" in printed
    assert main([*args, "--out", str(tmp_path / "v2"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verified_rows"] == 1


# ---------------------------------------------------------------------------------------------
# The app


def test_access_rules():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert is_loopback("127.0.0.2") and not is_loopback("0.0.0.0") and not is_loopback("example.org")
    check_access("127.0.0.1", [], insecure=False)
    check_access("0.0.0.0", [("alice", "pw")], insecure=False)
    check_access("0.0.0.0", [], insecure=True)
    with pytest.raises(ValueError, match="--auth USER:PASSWORD"):
        check_access("0.0.0.0", [], insecure=False)
    assert parse_auth(["alice:s3:cret", "bob:pw"]) == [("alice", "s3:cret"), ("bob", "pw")]
    for bad in (["alice"], [":pw"], ["alice:"], ["a b:pw"]):
        with pytest.raises(ValueError):
            parse_auth(bad)


def test_non_loopback_host_needs_auth(dataset, tmp_path, capsys):
    args = ["review", "--dataset", str(dataset), "--db", str(tmp_path / "r.sqlite"), "--host", "0.0.0.0"]
    assert main(args) == 1
    assert "--auth USER:PASSWORD" in capsys.readouterr().err
    assert not (tmp_path / "r.sqlite").exists()  # refused before anything was opened


def _port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(dataset, db, log):
    port = _port()
    command = [sys.executable, "-m", "roboreward.cli", "review", "--dataset", str(dataset), "--db", str(db)]
    command += ["--annotator", "alice", "--port", str(port)]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    import httpx

    deadline = time.time() + 90
    while time.time() < deadline:
        assert process.poll() is None, Path(log.name).read_text()
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise TimeoutError(url)


@pytest.mark.slow
def test_decisions_survive_killing_the_app(dataset, tmp_path):
    from gradio_client import Client

    db = tmp_path / "r.sqlite"
    rows = _rows(dataset, "test")
    with open(tmp_path / "app.log", "w") as log:
        app, url = _serve(dataset, db, log)
        try:
            client = Client(url, verbose=False)
            first = client.predict(api_name="/current")[0]
            assert first == SplitReview(dataset, "test", db).next_example("alice")
            second = client.predict(first, None, api_name="/accept")[0]
            third = client.predict(second, None, api_name="/correct_2")[0]
            fourth = client.predict(third, "ambiguous", api_name="/reject")[0]
            fifth = client.predict(fourth, None, api_name="/skip")  # a skip is no decision
            assert fifth[0] not in (first, second, third, fourth) and "3 decided" in fifth[5]
        finally:
            os.kill(app.pid, signal.SIGKILL)
            app.wait()
    decisions = {
        (r["example_id"], r["decision"], r["score"], r["reason"]) for r in ReviewStore(db).decisions()
    }
    assert decisions == {
        (first, "accept", rows[first]["reward"], None),
        (second, "correct" if rows[second]["reward"] != 2 else "accept", 2, None),
        (third, "reject", None, "ambiguous"),
    }
    with open(tmp_path / "app2.log", "w") as log:
        app, url = _serve(dataset, db, log)
        try:
            resumed = Client(url, verbose=False).predict(api_name="/current")
        finally:
            app.terminate()
            app.wait(10)
    assert resumed[0] == fourth  # the restarted app resumes at the next undecided example
    done = sum(not is_double_labelled(i, 0.1) for i in (first, second, third))  # doubles need two
    assert f"**alice**: 3 decided · {done} / {len(rows)} done" in resumed[5]
    assert len(ReviewStore(db).decisions()) == 3


def test_the_login_name_is_the_annotator(dataset, tmp_path):
    from gradio_client import Client

    db = tmp_path / "r.sqlite"
    app = build_review_app(dataset, "test", db, annotator=None, double_fraction=0.0)
    port = _port()
    app.launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, auth=[("bob", "pw")]
    )
    try:
        client = Client(f"http://127.0.0.1:{port}/", auth=("bob", "pw"), verbose=False)
        shown = client.predict(api_name="/current")
        after = client.predict(shown[0], None, api_name="/accept")
    finally:
        app.close()
    assert "**bob**: 0 decided" in shown[5] and "**bob**: 1 decided" in after[5]
    assert [(r["example_id"], r["annotator"]) for r in ReviewStore(db).decisions()] == [(shown[0], "bob")]


def test_real_browser_labels_with_the_keyboard(dataset, tmp_path):
    playwright = playwright_or_skip()
    db = tmp_path / "r.sqlite"
    app = build_review_app(dataset, "test", db, annotator=None, double_fraction=0.0)
    port = _port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with playwright.sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            progress = page.locator("#review-progress")
            name = page.locator("#review-name").locator("input, textarea").first
            name.click()
            name.press_sequentially("sara")  # s, a, r, a typed into a text field are no shortcuts
            page.locator("#review-start").click()
            progress.get_by_text("sara: 0 decided").wait_for(timeout=30_000)
            page.wait_for_function(  # the browser decodes the row's mp4
                "() => (document.querySelector('#review-video video') || {}).videoWidth > 0", timeout=30_000
            )

            page.keyboard.press("a")
            progress.get_by_text("sara: 1 decided").wait_for(timeout=30_000)
            name.click()
            name.press_sequentially("rs")
            page.wait_for_timeout(800)
            assert len(ReviewStore(db).decisions()) == 1  # still: keys typed into the name were text
            page.locator("#review-task").click()
            page.keyboard.press("3")
            progress.get_by_text("sara: 2 decided").wait_for(timeout=30_000)
            page.keyboard.press("r")  # no reason chosen yet: an error, no decision
            page.get_by_text("Choose why to reject it first").first.wait_for(timeout=30_000)
            assert len(ReviewStore(db).decisions()) == 2
            page.locator("#review-reason").get_by_text("unclear video").click()
            page.keyboard.press("r")
            progress.get_by_text("sara: 3 decided").wait_for(timeout=30_000)
            page.screenshot(path=str(tmp_path / "review.png"))
            browser.close()
    finally:
        app.close()
    review = SplitReview(dataset, "test", tmp_path / "fresh.sqlite", double_fraction=0.0)
    first, second, third = review.order("sara")[:3]
    score = {i: r["reward"] for i, r in review.examples.items()}
    with sqlite3.connect(db) as connection:  # read the file itself, not through the app's code
        decisions = set(
            connection.execute("SELECT example_id, annotator, decision, score, reason FROM decisions")
        )
    assert decisions == {
        (first, "sara", "accept", score[first], None),
        (second, "sara", "correct" if score[second] != 3 else "accept", 3, None),
        (third, "sara", "reject", None, "unclear video"),
    }
    assert (tmp_path / "review.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    ("api", "data", "message"),
    [
        ("reject", ["nope", 5], "Value: 5 (type: <class 'int'>) is not in the list of choices"),
        ("accept", [], "This request's inputs are not what the app takes: An event handler (handler) didn't"),
    ],
    ids=["reason-not-a-choice", "no-inputs"],
)
def test_a_bad_api_request_is_a_refusal_that_says_so_and_logs_no_traceback(
    dataset, tmp_path, capfd, api, data, message
):
    import httpx

    app = build_review_app(dataset, "test", tmp_path / "r.sqlite", annotator="alice")
    port = _port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        capfd.readouterr()
        url = f"http://127.0.0.1:{port}/gradio_api/call/{api}"
        call = httpx.post(url, json={"data": data})
        events = httpx.get(f"{url}/{call.json()['event_id']}", timeout=60).text
    finally:
        app.close()
    error = json.loads(events.split("event: error\ndata: ", 1)[1].split("\n", 1)[0])["error"]
    assert error.startswith(message)  # was {"error": null} for too few inputs
    assert "Traceback" not in capfd.readouterr().err
    assert ReviewStore(tmp_path / "r.sqlite").decisions() == []
