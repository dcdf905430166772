"""Calibration, preference and value-order correlation on the bench, against hand computations."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from conftest import named_checkpoint, write_manifest

from roboreward import metrics
from roboreward.apps.curves import value_order_correlation
from roboreward.bench.quality import pair_group, quality_entry
from roboreward.bench.run import BenchConfig, load_examples, run_bench
from roboreward.dataset.builder import BuildConfig, build
from roboreward.dataset.cards import render_model_card
from roboreward.models.local import RewardModel

METRIC = metrics.load("calibration_preference")

#: Five rows with a distribution, three without; groups a, b, c.
PROBS = [
    [0, 0, 0, 0.1, 0.9],  # ref 5: confidence .9, right  -> bin 9 (0.8, 0.9]
    [0, 0, 0.6, 0.4, 0],  # ref 4: confidence .6, wrong  -> bin 6
    [0, 0.5, 0.5, 0, 0],  # ref 2: confidence .5, right (first maximum: 2) -> bin 5
    [1, 0, 0, 0, 0],  # ref 1: confidence 1, right -> bin 10
    [0, 0, 0.05, 0.9, 0.05],  # ref 3: confidence .9, wrong -> bin 9 with the first row
    None,
    None,
    None,
]
REFS = [5, 4, 2, 1, 3, 3, 5, 1]
PREDS = [5, 3, 3, 1, 4, 3, None, 2]
GROUPS = ["a", "a", "b", "b", "a", "b", "c", "c"]


def test_ece_and_brier_equal_hand_values():
    out = METRIC.compute(predictions=PREDS, references=REFS, probabilities=PROBS, groups=GROUPS)
    # bins: (.9 right, .9 wrong) -> |.5 - .9| * 2/5; .6 wrong -> .6/5; .5 right -> .5/5; 1.0 right -> 0
    assert out["ece"] == pytest.approx(0.4 * 2 / 5 + 0.6 / 5 + 0.5 / 5)
    # per row sum_k (p_k - onehot_k)^2: .02, .72, .5, 0, (.95^2 + .9^2 + .05^2)
    assert out["brier"] == pytest.approx((0.02 + 0.72 + 0.5 + 0 + (0.9025 + 0.81 + 0.0025)) / 5)
    assert out["calibrated"] == 5
    table = out["reliability"]
    assert table["count"] == [0, 0, 0, 0, 1, 1, 0, 0, 2, 1]
    assert table["accuracy"][8] == 0.5 and table["confidence"][8] == pytest.approx(0.9)
    assert table["accuracy"][0] is None


def test_preference_accuracy_counts_ties_as_helm_does():
    out = METRIC.compute(predictions=PREDS, references=REFS, groups=GROUPS)
    # a: (0,1) right, (0,4) right, (1,4) wrong; b: (2,3) right, (2,5) tie (3 = 3), (3,5) right;
    # c: (6,7) tie (no answer); pairs with equal references are no pairs.
    assert (out["pairs"], out["right"], out["wrong"], out["ties"]) == (7, 4, 1, 2)
    assert out["preference_accuracy"] == pytest.approx(4 / 7)
    assert out["ece"] is None and out["brier"] is None
    half = METRIC.compute(predictions=PREDS, references=REFS, groups=GROUPS, tie_credit=0.5)
    assert half["preference_accuracy"] == pytest.approx(5 / 7)
    assert (
        METRIC.compute(predictions=[3, 3], references=[2, 2], groups=["a", "a"])["preference_accuracy"]
        is None
    )


def test_metric_refuses_bad_input():
    with pytest.raises(ValueError, match="reference 6 at position 1"):
        METRIC.compute(predictions=[1, 2], references=[1, 6])
    with pytest.raises(ValueError, match="groups has 1 entries"):
        METRIC.compute(predictions=[1, 2], references=[1, 2], groups=["a"])
    with pytest.raises(ValueError, match="five numbers"):
        METRIC.compute(predictions=[1], references=[1], probabilities=[[0.5, 0.5]])


def test_pair_groups_are_tasks_or_roboarena_sessions():
    assert pair_group("Open the drawer ", "oxe/toto") == pair_group("open the drawer", "bridge")
    assert pair_group("open the drawer", "roboarena", "s17/A") == pair_group("close it", "roboarena", "s17/B")
    assert pair_group("open the drawer", "roboarena", "s17/A") != pair_group(
        "open the drawer", "roboarena", "s18/A"
    )
    # zero (no answer) ties, like None
    entry = quality_entry([0, 3], [1, 4], [None, None], ["g", "g"])
    assert entry["calibration"] is None and entry["preference"]["ties"] == 1


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("quality")
    tasks = ["open the drawer"] * 4 + ["close the lid"] * 4
    rewards = [1, 2, 5, 5, 3, 4, 5, 1]
    rows = [
        {"video": f"ep{i}.mp4", "task": t, "reward": r, "source": "oxe/toto"}
        for i, (t, r) in enumerate(zip(tasks, rewards, strict=True))
    ]
    write_manifest(root, rows)
    out = root / "ds"
    build(
        BuildConfig(manifest=[str(root / "m.jsonl")], out=str(out), split_ratios={"test": 1.0}, max_side=32)
    )
    return out


def test_bench_reports_calibration_preference_and_voc(dataset, tmp_path, tiny_vlm_dir):
    examples = load_examples(str(dataset))
    checkpoint = named_checkpoint(tiny_vlm_dir, tmp_path / "tiny-q")
    preds_file = tmp_path / "theirs.jsonl"
    guesses = {1: 2, 2: 2, 3: 4, 4: 5, 5: 3}  # reward -> their prediction
    preds_file.write_text(
        "".join(json.dumps({"id": e.id, "prediction": guesses[e.reward]}) + "\n" for e in examples)
    )
    out = tmp_path / "bench"
    specs = [str(checkpoint), f"predictions:{preds_file}"]
    results = run_bench(
        BenchConfig(dataset=str(dataset), models=specs, out=str(out), batch_size=4, num_frames=4, voc=3)
    )
    refs = [e.reward for e in examples]
    groups = [pair_group(e.task, e.subset) for e in examples]
    theirs = results["models"]["theirs"]
    hand = METRIC.compute(predictions=[guesses[r] for r in refs], references=refs, groups=groups)
    assert theirs["preference"]["accuracy"] == hand["preference_accuracy"]
    # by hand: per task 6 pairs minus equal rewards; drawer (1,2,5,5): 5 pairs, (1,2) ties 2=2 -> 4/5
    # lid (3,4,5,1): 6 pairs, predictions 4,5,3,2 ... (3 vs 5 -> 4 vs 3 wrong; 4 vs 5 -> 5 vs 3 wrong) -> 4/6
    assert theirs["preference"]["pairs"] == 11 and theirs["preference"]["ties"] == 1
    assert theirs["preference"]["right"] == 8
    assert theirs["calibration"] is None and theirs["voc"] is None

    tiny = results["models"]["tiny-q"]
    rows = {
        r["id"]: r for r in map(json.loads, (out / "predictions" / "tiny-q.jsonl").read_text().splitlines())
    }
    expected = METRIC.compute(
        predictions=[rows[e.id]["prediction"] for e in examples],
        references=refs,
        probabilities=[rows[e.id]["probabilities"] for e in examples],
        groups=groups,
    )
    assert tiny["calibration"]["ece"] == pytest.approx(expected["ece"], abs=1e-6)
    assert tiny["calibration"]["brier"] == pytest.approx(expected["brier"], abs=1e-6)
    assert tiny["preference"]["accuracy"] == expected["preference_accuracy"]
    # VOC over the three reward-5 episodes, each a 3-point curve of the same model and settings
    model = RewardModel.from_pretrained(checkpoint, num_frames=4)
    vocs = [
        value_order_correlation(model.progress_curve(e.video, e.task, points=3).expected)
        for e in examples
        if e.reward == 5
    ]
    defined = [v for v in vocs if not math.isnan(v)]
    assert tiny["voc"]["episodes"] == 3 and tiny["voc"]["defined"] == len(defined)
    assert tiny["voc"]["mean"] == (pytest.approx(sum(defined) / len(defined)) if defined else None)
    assert (out / "reliability.png").read_bytes()[:4] == b"\x89PNG"
    header, *board = list(csv.reader((out / "leaderboard.csv").open()))
    assert header[7:11] == ["preference acc.", "ECE", "Brier", "VOC"]
    row = dict(zip(header, next(r for r in board if r[1] == "theirs"), strict=True))
    assert row["preference acc."] == f"{8 / 11:.3f}" and row["ECE"] == "-" and row["VOC"] == "-"

    # ... and in the model card
    text = Path(render_model_card(checkpoint, bench=out, out=tmp_path / "card.md")).read_text()
    accuracy = round(tiny["preference"]["accuracy"], 3)
    assert f"Pairwise preference accuracy {accuracy} on {tiny['preference']['pairs']} pairs" in text
    assert f"expected calibration error {round(tiny['calibration']['ece'], 3)}" in text
    assert f"Brier score {round(tiny['calibration']['brier'], 3)}" in text
