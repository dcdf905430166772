"""Dataset and model cards, rendered from the reports the toolkit writes.

The templates live in the repository's ``model_cards/`` folder (Jinja, the format of
huggingface_hub's ``RepoCard.from_template``), shipped inside the wheel too (`roboreward.resources`);
the numbers come from the files next to what the card describes, so a card never says something its
reports do not:

- dataset card: ``build_report.json`` (rows per source, split and reward; skipped entries),
  ``relabel_report.json`` when relabeling ran, and the Parquet shards (features, split sizes);
- model card: ``training_summary.json`` next to the checkpoint and, with ``bench``, a
  ``roboreward bench`` folder's ``results.json`` (its MAE and mean win rate go into ``model-index``
  unrounded, so the Hub shows the benchmark's numbers to the digit).

    >>> from roboreward.dataset.cards import render_dataset_card, render_model_card
    >>> render_dataset_card("roboreward")  # doctest: +SKIP
    >>> render_model_card("runs/qwen2_5_vl_3b", bench="bench_out")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from roboreward import locate, rubric
from roboreward.dataset.folder import BUILD_REPORT, RELABEL_REPORT, SPLITS, DatasetFolder, read_json_object
from roboreward.resources import PACKAGE_DATA, resource_dir

__all__ = ["CITATION", "TEMPLATES", "render_dataset_card", "render_model_card"]

#: The card templates: the installed package's copy, else the repository's model_cards/ folder.
TEMPLATES = resource_dir("model_cards")
CITATION = """\
@article{roboreward2026,
  title   = {RoboReward: General-Purpose Vision-Language Reward Models for Robotics},
  journal = {arXiv preprint arXiv:2601.00675},
  year    = {2026}
}
@article{open_x_embodiment2023,
  title   = {Open X-Embodiment: Robotic Learning Datasets and RT-X Models},
  author  = {{Open X-Embodiment Collaboration}},
  journal = {arXiv preprint arXiv:2310.08864},
  year    = {2023}
}
@article{roboarena2025,
  title   = {RoboArena: Distributed Real-World Evaluation of Generalist Robot Policies},
  journal = {arXiv preprint arXiv:2506.18123},
  year    = {2025}
}"""

TAGS = ["robotics", "reward-model", "roboreward", "vision-language-model", "video"]


def _template(name: str) -> str:
    path = TEMPLATES / name
    if not path.is_file():
        raise FileNotFoundError(
            f"card template {path} is missing: a wheel carries the templates as "
            f"roboreward/{PACKAGE_DATA}/model_cards and an editable install reads the repository's "
            "model_cards/; reinstall the toolkit (`pip install .`, or `pip install -e .` from its repository)"
        )
    return str(path)


def _write(card: Any, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(str(card), encoding="utf-8")
    os.replace(tmp, out)
    return out


def _size_category(n: int) -> str:
    for limit, label in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
    ):
        if n < limit:
            return label
    return "1M<n<10M"


# ---------------------------------------------------------------------------------------------
# Dataset card


def _dataset_info(folder: DatasetFolder) -> Any:
    """Features and split sizes, read from the Parquet shards themselves."""
    import datasets

    features, splits = folder.split_info()
    if features is None:
        raise ValueError(
            f"{folder.root} holds no data/<split>-*.parquet: build it with `roboreward build` first"
        )
    return datasets.DatasetInfo(
        features=features, splits=splits, citation=CITATION, homepage="https://arxiv.org/abs/2601.00675"
    )


def _relabel_rows(report: dict[str, Any] | None) -> tuple[list[str], list[dict[str, Any]]]:
    """Stage x counter table from relabel_report.json (``{"stages": {stage: {counter: n}}}``)."""
    if not report:
        return [], []
    stages = report.get("stages", report)
    stages = {k: v for k, v in stages.items() if isinstance(v, dict)}
    columns: list[str] = []
    for counts in stages.values():
        columns += [k for k, v in counts.items() if isinstance(v, int) and k not in columns]
    rows = [{"name": name, "counts": [counts.get(c, 0) for c in columns]} for name, counts in stages.items()]
    return columns, rows


def render_dataset_card(
    folder: str | os.PathLike[str],
    repo_id: str | None = None,
    license: str | None = None,
    pretty_name: str = "RoboReward",
) -> Path:
    """Write ``folder/README.md`` for a built dataset from its reports and shards; returns its path.

    Args:
        folder: a folder written by `roboreward build` (`roboreward.dataset.folder` layout).
        repo_id: the Hub id the card's usage examples load (default a placeholder).
        license: the card's license (default the build's).
        pretty_name: the dataset's display name.
    """
    import datasets
    from huggingface_hub import DatasetCard, DatasetCardData

    dataset = DatasetFolder(folder)
    build = dataset.read_report(BUILD_REPORT)
    if build is None:
        raise ValueError(f"{dataset.root} has no {BUILD_REPORT}: build it with `roboreward build` first")
    relabel = dataset.read_report(RELABEL_REPORT) or build.get("relabel")
    info = _dataset_info(dataset)
    total = sum(s.num_examples for s in info.splits.values())
    config = build.get("config", {})
    card_data = DatasetCardData(
        license=license or config.get("license", "other"),
        task_categories=["video-classification", "robotics"],
        tags=TAGS,
        size_categories=[_size_category(total)],
        pretty_name=pretty_name,
        configs=[
            {
                "config_name": "default",
                # datasets hashes the config into its cache key: a rebuilt folder is read afresh
                "description": f"RoboReward data, content fingerprint {dataset.content_fingerprint()}",
                "data_files": dataset.data_files(),
            }
        ],
    )
    datasets.info.DatasetInfosDict({"default": info}).to_dataset_card_data(card_data)
    rows = build["rows"]
    names = sorted({name for s in SPLITS for name in rows.get(s, {}).get("by_source", {})})
    sources = [
        {
            "name": name,
            **{s: rows.get(s, {}).get("by_source", {}).get(name, 0) for s in SPLITS},
            "total": sum(rows.get(s, {}).get("by_source", {}).get(name, 0) for s in SPLITS),
        }
        for name in names
    ]
    histogram = [
        {
            "split": s,
            "total": rows.get(s, {}).get("rows", 0),
            "counts": [rows.get(s, {}).get("by_reward", {}).get(str(k), 0) for k in rubric.SCORES],
        }
        for s in SPLITS
    ]
    columns, stages = _relabel_rows(relabel)
    card = DatasetCard.from_template(
        card_data,
        template_path=_template("dataset_card.md.j2"),
        pretty_name=pretty_name,
        rubric=rubric.RUBRIC,
        sources=sources,
        skipped=build.get("totals", {}).get("skipped", 0),
        relabel=stages,
        relabel_columns=columns,
        histogram=histogram,
        scores=rubric.SCORES,
        seed=config.get("seed", 0),
        max_frames=config.get("max_frames"),
        max_side=config.get("max_side"),
        repo_id=repo_id or "PATH_OR_REPO_ID",
        citation=info.citation,
    )
    return _write(card, dataset.card_path)


# ---------------------------------------------------------------------------------------------
# Model card


def _quality(entry: dict[str, Any]) -> dict[str, Any]:
    """The card's calibration, preference and VOC numbers (None for those the bench did not report)."""
    calibration, preference, voc = entry.get("calibration"), entry.get("preference"), entry.get("voc")
    return {
        "ece": None if not calibration else round(calibration["ece"], 3),
        "brier": None if not calibration else round(calibration["brier"], 3),
        "preference_accuracy": None
        if not preference or preference.get("accuracy") is None
        else round(preference["accuracy"], 3),
        "preference_pairs": (preference or {}).get("pairs", 0),
        "voc": None if not voc or voc.get("mean") is None else round(voc["mean"], 3),
        "voc_points": (voc or {}).get("points"),
        **_detection(entry),
    }


def _detection(entry: dict[str, Any]) -> dict[str, Any]:
    """The card's success-detection and policy-ranking numbers (None where the bench has none)."""
    detection, ranking = entry.get("success_detection") or {}, entry.get("policy_ranking") or {}
    return {
        "roc_auc": _rounded(detection.get("roc_auc")),
        "pr_auc": _rounded(detection.get("pr_auc")),
        "success_score": detection.get("score"),
        "kendall_tau": _rounded(ranking.get("kendall_tau")),
        "spearman": _rounded(ranking.get("spearman")),
        "num_policies": ranking.get("num_policies", 0),
        "ab_tie_accuracy": _rounded((entry.get("preference_helm") or {}).get("accuracy")),
        "ab_tie_pairs": (entry.get("preference_helm") or {}).get("pairs", 0),
        "ab_tie_direct": _rounded(
            ((entry.get("preference_direct") or {}).get("direct") or {}).get("accuracy")
        ),
    }


def _bench_entry(results: dict[str, Any], checkpoint: Path, name: str | None) -> tuple[str, dict[str, Any]]:
    models = results.get("models", {})
    if not models:
        raise ValueError("bench results.json has no models")
    if name is not None:
        if name not in models:
            raise ValueError(f"model {name!r} is not in the bench results: {sorted(models)}")
        return name, models[name]
    for key, entry in models.items():
        spec = str(entry.get("spec", ""))
        if spec and Path(spec.split(":", 1)[-1]).resolve() == checkpoint.resolve():
            return key, entry
    candidates = [
        k for k, e in models.items() if not str(e.get("spec", k)).startswith(("baseline:", "predictions:"))
    ]
    if len(candidates) == 1:
        return candidates[0], models[candidates[0]]
    raise ValueError(
        f"cannot tell which bench model is {checkpoint}: pass --bench-model, one of {sorted(models)}"
    )


def _training_rows(summary: dict[str, Any] | None) -> list[tuple[str, Any]]:
    if not summary:
        return []
    flat = dict(summary.get("hyperparameters", {}))
    for key in ("best_step", "best_mae", "base_model", "frozen_parameters", "trainable_parameters"):
        if key in summary and not isinstance(summary[key], (dict, list)):
            flat.setdefault(key, summary[key])
    if not flat:
        flat = {k: v for k, v in summary.items() if not isinstance(v, (dict, list))}
    return sorted(flat.items())


def local_name(model: str) -> bool:
    """Whether ``model`` names a local folder (written as a path, or one that exists) rather than a Hub id."""
    return locate.looks_like_path(model) or Path(model).expanduser().exists()


def base_model_name(base_model: str | None) -> str | None:
    """How a card names the base model: a Hub id as it is, a local folder by its folder name.

    >>> base_model_name("Qwen/Qwen2.5-VL-3B-Instruct"), base_model_name("/tmp/models/tiny-qwen2_5_vl/")
    ('Qwen/Qwen2.5-VL-3B-Instruct', 'tiny-qwen2_5_vl')
    """
    if not base_model:
        return None
    text = str(base_model)
    return Path(text.rstrip("/\\")).name or text if local_name(text) else text


def _rounded(value: float | None) -> float | str:
    return "n/a" if value is None or value != value else round(value, 3)  # None or NaN: no opponent


def render_model_card(
    checkpoint: str | os.PathLike[str],
    bench: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    repo_id: str | None = None,
    model_name: str | None = None,
    base_model: str | None = None,
    datasets: list[str] | None = None,
    bench_model: str | None = None,
    license: str = "apache-2.0",
    summary: dict[str, Any] | None = None,
) -> Path:
    """Write a model card (default ``checkpoint/README.md``), bench results in its ``model-index``.

    Args:
        checkpoint: the saved model's folder.
        bench: a ``roboreward bench`` output folder whose results go into the ``model-index``.
        out: where to write (default ``checkpoint/README.md``).
        repo_id: the Hub id shown in the usage snippets.
        model_name: the card's title (default: the repo's or folder's name).
        base_model: the model it was fine-tuned from (default: the training summary's). A Hub id goes
            into the ``base_model:`` metadata; a local folder is named by its folder name.
        datasets: Hub dataset ids for the metadata (default: the summary's, when a Hub id).
        bench_model: the model's name in ``results.json`` when it cannot be told.
        license: the license id.
        summary: the training summary (default: ``checkpoint/training_summary.json``); given, the
            checkpoint need not be saved yet (the trainer writes the card while it trains).
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    checkpoint = Path(checkpoint)
    if summary is None:
        if not (checkpoint / "config.json").is_file():
            raise ValueError(f"{checkpoint} has no config.json: not a saved model")
        summary = read_json_object(checkpoint / "training_summary.json", "training summary")
    config = read_json_object(checkpoint / "config.json", "model config") or {}
    base_model = base_model or (summary or {}).get("base_model") or (summary or {}).get("model_name_or_path")
    base_name = base_model_name(base_model)
    if base_model and local_name(str(base_model)):
        base_model = None  # a local path is no Hub base model: the text names its folder
    model_name = model_name or (repo_id or checkpoint.name).split("/")[-1]
    datasets = datasets or [d for d in [(summary or {}).get("dataset")] if d and not local_name(str(d))]

    results = None
    eval_results = []
    benchmark_name = "RoboRewardBench"
    if bench is not None:
        data = read_json_object(Path(bench) / "results.json", "bench results")
        if data is None:
            raise ValueError(f"{bench} has no results.json: run `roboreward bench` first")
        _, entry = _bench_entry(data, checkpoint, bench_model)
        dataset_name = str(data.get("dataset", "RoboRewardBench"))
        benchmark_name = data.get("benchmark", benchmark_name)
        split = data.get("split", "test")
        common = dict(
            task_type="video-text-to-text",
            task_name="Episodic reward prediction",
            dataset_type=dataset_name
            if "/" in dataset_name and not local_name(dataset_name)
            else "roboreward",
            dataset_name=benchmark_name,
            dataset_split=split,
        )
        win = entry["mean_win_rate"]  # None (null in results.json) with no other model to win against
        eval_results = [EvalResult(metric_type="mae", metric_name="MAE", metric_value=entry["mae"], **common)]
        macro = entry.get("macro_mae")  # absent from a results.json written before it existed
        if macro is not None:
            eval_results.append(
                EvalResult(
                    metric_type="macro_mae",
                    metric_name="MAE (mean of per-subset MAEs, HELM's ranking)",
                    metric_value=macro,
                    **common,
                )
            )
        if win is not None:
            eval_results.append(
                EvalResult(
                    metric_type="mean_win_rate", metric_name="Mean win rate", metric_value=win, **common
                )
            )
        subset_win = entry.get("subset_win_rate", {})
        results = {
            "mae": round(entry["mae"], 3),
            "macro_mae": _rounded(entry.get("macro_mae")),
            "mean_win_rate": "n/a" if win is None else round(win, 3),
            "opponents": len(data.get("models", {})) - 1,
            "num_examples": entry.get("num_examples", data.get("num_examples")),
            "invalid": entry.get("invalid", 0),
            "conventions": data.get("conventions", "roboreward"),
            "subsets": [
                {"name": s, "mae": round(v, 3), "win_rate": _rounded(subset_win.get(s))}
                for s, v in sorted(entry.get("subset_mae", {}).items())
            ],
            **_quality(entry),
        }

    card_data = ModelCardData(
        model_name=model_name,
        base_model=base_model,
        datasets=datasets or None,
        library_name="transformers",
        pipeline_tag="video-text-to-text",
        license=license,
        tags=[*TAGS, "trl", config.get("model_type", "qwen2_5_vl")],
        eval_results=eval_results or None,
    )
    card = ModelCard.from_template(
        card_data,
        template_path=_template("model_card.md.j2"),
        model_name=model_name,
        base_model=base_name or "an unrecorded Qwen-VL checkpoint",
        repo_id=repo_id or str(checkpoint),
        results=results,
        training=_training_rows(summary),
        benchmark_name=benchmark_name,
        citation=CITATION,
    )
    return _write(card, Path(out) if out else checkpoint / "README.md")
