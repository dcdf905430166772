"""`roboreward demo` at reduced size: every step runs through the real code, and training helps."""

import json
from collections import Counter

import datasets

from roboreward.apps.demo import DemoConfig, run_demo


def test_demo_end_to_end_trained_model_beats_the_untrained_one(tmp_path, capsys):
    out = tmp_path / "demo_output"
    results = run_demo(DemoConfig(out=str(out), arena_episodes=36, oxe_episodes=12, train_steps=200))
    models = results["models"]
    trained, untrained = models["reward-model"]["mae"], models["base-qwen2_5_vl"]["mae"]
    assert trained < untrained, (trained, untrained)
    assert {"baseline:random"} < set(models) and any(m.startswith("baseline:constant-") for m in models)
    for name in (
        "leaderboard.md",
        "leaderboard.csv",
        "results.json",
        "model_card.md",
        "subset_mae_heatmap.png",
        "mean_win_rate.png",
    ):
        assert (out / name).stat().st_size > 100, name
    assert json.loads((out / "results.json").read_text())["models"]["reward-model"]["mae"] == trained
    # the sources went through the real readers and layouts
    assert (out / "sources" / "sim_tabletop" / "meta" / "info.json").exists()
    assert (out / "sources" / "roboarena_sim" / "evaluation_sessions").is_dir()
    relabel = json.loads((out / "roboreward" / "relabel_report.json").read_text())
    # the tiny random LM never answers in JSON: 48 successes x (1 ask + 1 retry)
    assert relabel["stages"]["rewrite"]["unparseable"] == 96
    assert relabel["stages"]["sim_truth_counterfactual"]["accepted"] > 0
    # its counts describe the rows the dataset holds, the sim-truth counterfactuals included
    built = datasets.load_dataset(str(out / "roboreward")).remove_columns("video")
    rows = [r for split in built.values() for r in split]
    assert relabel["rows"]["output"] == len(rows)
    assert relabel["by_augmentation"] == dict(sorted(Counter(r["augmentation"] for r in rows).items()))
    assert (
        relabel["by_augmentation"]["counterfactual"]
        == relabel["stages"]["sim_truth_counterfactual"]["accepted"]
    )
    histogram = Counter((r["source"], str(r["reward"])) for r in rows)
    assert {(s, k): v for s, h in relabel["reward_histogram"].items() for k, v in h.items()} == histogram
    summary = json.loads((out / "reward-model" / "training_summary.json").read_text())
    assert len(summary["evals"]) == 5 and summary["best_mae"] == min(e["mae"] for e in summary["evals"])
    printed = capsys.readouterr().out
    assert "[5/5] model card and leaderboard" in printed and "| 1 | " in printed
