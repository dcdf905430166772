"""Cards load back with huggingface_hub, and their numbers are the reports' numbers."""

import json

import pytest
from conftest import write_manifest
from huggingface_hub import DatasetCard, ModelCard

from roboreward.cli import main as cli_main
from roboreward.dataset.builder import BuildConfig, build
from roboreward.dataset.cards import render_dataset_card, render_model_card


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("cards")
    rows = [
        {"video": f"ep{i}.mp4", "task": f"open drawer {i}", "reward": 1 + i % 5, "episode_id": str(i)}
        for i in range(6)
    ]
    rows.append({"video": "missing.mp4", "task": "x", "reward": 5, "episode_id": "gone"})
    write_manifest(root, rows, num_frames=6, missing=("missing.mp4",))
    out = root / "ds"
    report = build(
        BuildConfig(
            manifest=[str(root / "m.jsonl")],
            out=str(out),
            split_ratios={"train": 4, "validation": 1, "test": 1},
        )
    )
    return out, report


def test_dataset_card_counts_equal_the_build_report(dataset):
    out, report = dataset
    (out / "README.md").unlink()
    render_dataset_card(out, repo_id="org/roboreward-mini")
    card = DatasetCard.load(out / "README.md")
    meta = card.data.to_dict()
    splits = {s["name"]: s["num_examples"] for s in meta["dataset_info"]["splits"]}
    assert (
        splits
        == {s: report["rows"][s]["rows"] for s in ("train", "validation", "test")}
        == {
            "train": 4,
            "validation": 1,
            "test": 1,
        }
    )
    assert meta["configs"][0]["data_files"][0] == {"split": "train", "path": "data/train-*.parquet"}
    assert {f["name"] for f in meta["dataset_info"]["features"]} >= {"video", "task", "reward", "source"}
    assert meta["license"] == "other" and "robotics" in meta["tags"] and meta["size_categories"] == ["n<1K"]
    text = card.text
    assert "| manifest/m | 6 | 4 | 1 | 1 |" in text
    train_hist = report["rows"]["train"]["by_reward"]
    assert "| train | 4 | " + " | ".join(str(train_hist.get(str(k), 0)) for k in range(1, 6)) + " |" in text
    assert "1 source entries were left out" in text
    assert "No relabeling was run" in text
    assert 'load_dataset("org/roboreward-mini", split="test")' in text
    assert "5 – Perfect completion" in text


def test_dataset_card_shows_relabel_counts(dataset):
    out, _ = dataset
    report = {
        "stages": {
            "counterfactual": {"proposed": 12, "accepted": 7, "rejected_by_check": 3, "unparseable": 2}
        }
    }
    (out / "relabel_report.json").write_text(json.dumps(report))
    try:
        render_dataset_card(out)
        text = (out / "README.md").read_text()
        assert "| stage | proposed | accepted | rejected_by_check | unparseable |" in text
        assert "| counterfactual | 12 | 7 | 3 | 2 |" in text
    finally:
        (out / "relabel_report.json").unlink()


@pytest.fixture
def checkpoint(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    summary = {
        "base_model": "Qwen/Qwen2.5-VL-3B-Instruct",
        "dataset": "org/roboreward",
        "best_step": 300,
        "best_mae": 0.61,
        "hyperparameters": {"learning_rate": 3e-6, "weight_decay": 0.05, "effective_batch_size": 64},
    }
    (ckpt / "training_summary.json").write_text(json.dumps(summary))
    bench = tmp_path / "bench"
    bench.mkdir()
    results = {
        "benchmark": "RoboRewardBench",
        "dataset": "org/roboreward",
        "split": "test",
        "num_examples": 40,
        "models": {
            "ckpt": {
                "spec": str(ckpt),
                "mae": 0.6123456789,
                "mean_win_rate": 0.8333333333333334,
                "invalid": 0,
                "num_examples": 40,
                "subset_mae": {"oxe/toto": 0.25, "roboarena": 0.975},
                "subset_win_rate": {"oxe/toto": 1.0, "roboarena": 0.6666666666666666},
                "macro_mae": 0.6125,
                "success_detection": {"roc_auc": 0.8125, "pr_auc": 0.71428, "score": "P(score = 5)"},
                "policy_ranking": {"kendall_tau": 0.6666666, "spearman": 0.8, "num_policies": 4},
                "preference_helm": {"accuracy": 0.5833333, "pairs": 12},
            },
            "baseline:constant-5": {"spec": "baseline:constant-5", "mae": 1.9, "mean_win_rate": 0.25},
            "baseline:random": {"spec": "baseline:random", "mae": 1.6, "mean_win_rate": 0.5},
        },
    }
    (bench / "results.json").write_text(json.dumps(results))
    return ckpt, bench, results


def test_model_card_model_index_equals_results_to_the_digit(checkpoint):
    ckpt, bench, results = checkpoint
    path = render_model_card(ckpt, bench=bench, repo_id="org/RoboReward-3B")
    card = ModelCard.load(path)
    data = card.data
    assert data.base_model == "Qwen/Qwen2.5-VL-3B-Instruct" and data.datasets == ["org/roboreward"]
    assert data.library_name == "transformers" and data.pipeline_tag == "video-text-to-text"
    metrics = {r.metric_type: r.metric_value for r in data.eval_results}
    entry = results["models"]["ckpt"]
    assert metrics == {
        "mae": entry["mae"],
        "macro_mae": entry["macro_mae"],
        "mean_win_rate": entry["mean_win_rate"],
    }
    assert f"{round(entry['macro_mae'], 3)} as the mean of the per-subset MAEs (HELM's headline" in card.text
    assert (
        "Success detection (P(score = 5) against a true score of 5): ROC-AUC 0.812, PR-AUC 0.714."
        in card.text
    )
    assert (
        "preference scenario on 12 pairs" in card.text and ": 0.583 from the two single scores." in card.text
    )
    assert "Policy ranking over 4 policies" in card.text and "Kendall tau 0.667, Spearman 0.8." in card.text
    assert {r.dataset_split for r in data.eval_results} == {"test"}
    assert "| roboarena | 0.975 | 0.667 |" in card.text
    assert "| learning_rate | 3e-06 |" in card.text and "| best_step | 300 |" in card.text
    assert 'RewardModel.from_pretrained("org/RoboReward-3B")' in card.text
    assert "against\n2 other model(s) on 40 examples" in card.text


def test_model_card_without_bench_and_bad_inputs(checkpoint, tmp_path):
    ckpt, bench, _ = checkpoint
    card = ModelCard.load(render_model_card(ckpt, out=tmp_path / "card.md"))
    assert card.data.eval_results is None and "Not benchmarked yet" in card.text
    with pytest.raises(ValueError, match="not in the bench results"):
        render_model_card(ckpt, bench=bench, bench_model="nope")
    with pytest.raises(ValueError, match=r"no results\.json"):
        render_model_card(ckpt, bench=tmp_path)
    with pytest.raises(ValueError, match=r"no config\.json"):
        render_model_card(tmp_path)


def test_cli_card(checkpoint, dataset, capsys):
    ckpt, bench, _ = checkpoint
    assert cli_main(["card", "model", "--checkpoint", str(ckpt), "--bench", str(bench)]) == 0
    assert f"wrote {ckpt / 'README.md'}" in capsys.readouterr().out
    out, _ = dataset
    assert cli_main(["card", "dataset", str(out)]) == 0
    assert cli_main(["card", "dataset", str(ckpt)]) == 1
    assert "no build_report.json" in capsys.readouterr().err
