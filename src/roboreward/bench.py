"""RoboRewardBench: score reward models on a RoboReward split, per subset, with a leaderboard.

    roboreward bench --dataset ./roboreward --split test \\
        --model runs/qwen2_5_vl_3b --model openai:http://localhost:8000/v1#Qwen2.5-VL-7B-Instruct \\
        --model predictions:their_model.jsonl --model baseline:constant-5 --model baseline:random \\
        --out bench_out

A model SPEC is one of:

- a local checkpoint or a Hub id: scored with `roboreward.RewardModel` (one forward pass; the five
  probabilities are kept);
- ``generate:PATH_OR_ID``: an off-the-shelf VLM not trained on the answer format: it answers in
  free text (`RewardModel.generate`, up to 16 new tokens), read with `rubric.parse_answer`;
- ``openai:URL#name``: an OpenAI-compatible chat endpoint (vLLM, TGI, ``transformers serve``) given
  the rubric prompt and sampled frames as images; its answer is read with `rubric.parse_answer`;
- ``predictions:FILE.jsonl``: someone else's outputs, ``{"id", "prediction"}`` or ``{"id", "output"}``
  (raw text, parsed);
- ``baseline:constant-N`` or ``baseline:random`` (seeded by the example id): reference rows.

Examples are keyed by the dataset's ``id`` column and grouped into subsets by ``source``. Metrics
come from the `evaluate` modules in ``metrics/`` (loaded with `roboreward.metrics.load`), never from a
copy of their formulas. Predictions are cached per (model, id) in ``OUT/predictions/<model>.jsonl``,
so a re-run, or a run that was interrupted, only scores what is missing.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from roboreward import fingerprint, rubric, video

__all__ = ["BenchConfig", "Example", "load_examples", "parse_spec", "run_bench"]

INVALID = 0  # the metrics' code for "no parsable answer"


@dataclass(frozen=True)
class Example:
    id: str
    video: dict[str, Any]
    task: str
    reward: int
    subset: str


@dataclass
class BenchConfig:
    dataset: str
    models: list[str]
    out: str = "bench_out"
    split: str = "test"
    max_examples: int | None = None
    subsets: list[str] | None = None
    batch_size: int = 8
    num_frames: int = 16
    max_side: int | None = 448
    request_timeout: float = 120.0
    seed: int = 0


# ---------------------------------------------------------------------------------------------
# Data


def load_examples(
    dataset: str, split: str = "test", subsets: Sequence[str] | None = None, max_examples: int | None = None
) -> list[Example]:
    """The benchmark's examples: a built folder or a Hub id with ``video``, ``task``, ``reward``."""
    import datasets

    try:
        ds = fingerprint.load_dataset(dataset, split=split)  # never a stale cache of a rebuilt folder
    except (FileNotFoundError, ValueError) as exc:
        raise ValueError(f"cannot load split {split!r} of {dataset}: {str(exc).splitlines()[0]}") from None
    missing = {"video", "task", "reward"} - set(ds.column_names)
    if missing:
        raise ValueError(f"{dataset} has no column(s) {sorted(missing)}: not a RoboReward dataset")
    ds = ds.cast_column("video", datasets.Video(decode=False))
    columns = [c for c in ("id", "task", "reward", "source") if c in ds.column_names]
    meta = ds.select_columns(columns).to_dict()
    ids = meta.get("id") or [f"{split}/{i:06d}" for i in range(len(ds))]
    sources = meta.get("source") or ["all"] * len(ds)
    if len(set(ids)) != len(ids):
        raise ValueError(f"{dataset} split {split} has repeated ids: they must key the examples")
    wanted = set(subsets) if subsets else None
    if wanted:
        unknown = wanted - set(sources)
        if unknown:
            raise ValueError(f"unknown subsets {sorted(unknown)}; the split has {sorted(set(sources))}")
    examples = []
    for index, (id_, task, reward, source) in enumerate(
        zip(ids, meta["task"], meta["reward"], sources, strict=True)
    ):
        if wanted and source not in wanted:
            continue
        if not isinstance(reward, int) or not rubric.MIN_SCORE <= reward <= rubric.MAX_SCORE:
            raise ValueError(f"row {index} (id {id_}) of {dataset} has reward {reward!r}, not 1..5")
        examples.append(Example(id_, ds[index]["video"], task, reward, source))
        if max_examples is not None and len(examples) >= max_examples:
            break
    if not examples:
        raise ValueError(f"no examples selected from {dataset} split {split}")
    return examples


# ---------------------------------------------------------------------------------------------
# Models


@dataclass
class Prediction:
    id: str
    prediction: int  # 1..5, or INVALID
    output: str | None = None
    probs: list[float] | None = None


class Predictor:
    """Predicts a 1..5 score (or INVALID) for examples; subclasses per kind of SPEC."""

    name: str
    spec: str

    def predict(self, examples: Sequence[Example]) -> Iterator[Prediction]:
        raise NotImplementedError


@dataclass
class ConstantBaseline(Predictor):
    spec: str
    value: int
    name: str = ""

    def predict(self, examples: Sequence[Example]) -> Iterator[Prediction]:
        for ex in examples:
            yield Prediction(ex.id, self.value, output=str(self.value))


@dataclass
class RandomBaseline(Predictor):
    spec: str
    seed: int = 0
    name: str = ""

    def predict(self, examples: Sequence[Example]) -> Iterator[Prediction]:
        for ex in examples:  # per-id seed: the same answer for an example whatever else is scored
            rng = random.Random(hashlib.sha256(f"{self.seed}/{ex.id}".encode()).digest())
            value = rng.randint(rubric.MIN_SCORE, rubric.MAX_SCORE)
            yield Prediction(ex.id, value, output=str(value))


@dataclass
class FilePredictions(Predictor):
    spec: str
    path: Path
    name: str = ""
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.path.is_file():
            raise ValueError(f"predictions file {self.path} does not exist")
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise ValueError(f"{self.path} line {number} is not JSON") from None
            if not isinstance(row, dict) or "id" not in row or not ({"prediction", "output"} & set(row)):
                raise ValueError(f"{self.path} line {number} needs 'id' and 'prediction' or 'output'")
            self.rows[str(row["id"])] = row

    def predict(self, examples: Sequence[Example]) -> Iterator[Prediction]:
        for ex in examples:
            row = self.rows.get(ex.id)
            if row is None:
                yield Prediction(ex.id, INVALID, output=None)
            elif "prediction" in row:
                value = row["prediction"]
                ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5
                yield Prediction(ex.id, value if ok else INVALID, output=row.get("output"))
            else:
                score = rubric.parse_answer(row["output"])
                yield Prediction(ex.id, INVALID if score is None else score, output=row["output"])


@dataclass
class CheckpointPredictor(Predictor):
    spec: str
    path: str
    batch_size: int = 8
    num_frames: int = 16
    max_side: int | None = 448
    name: str = ""
    mode: str = "score"  # or "generate": free text, parsed
    _model: Any = None

    def _generate(self, chunk: Sequence[Example]) -> Iterator[Prediction]:
        try:
            answers = self._model.generate_batch(
                [e.video for e in chunk], [e.task for e in chunk], batch_size=len(chunk)
            )
        except video.VideoDecodeError:
            answers = [None] * len(chunk)
            for i, e in enumerate(chunk):
                with contextlib.suppress(video.VideoDecodeError):
                    answers[i] = self._model.generate(e.video, e.task)
        for ex, answer in zip(chunk, answers, strict=True):
            if answer is None:
                yield Prediction(ex.id, INVALID, output="video could not be decoded")
            else:
                yield Prediction(ex.id, INVALID if answer.score is None else answer.score, output=answer.text)

    def _score_one(self, example: Example) -> Any:
        try:
            return self._model.score(example.video, example.task)
        except video.VideoDecodeError:
            return None

    def predict(self, examples: Sequence[Example]) -> Iterator[Prediction]:
        from roboreward.scoring import RewardModel

        if self._model is None:
            self._model = RewardModel.from_pretrained(
                self.path, num_frames=self.num_frames, max_side=self.max_side
            )
        for start in range(0, len(examples), self.batch_size):
            chunk = examples[start : start + self.batch_size]
            if self.mode == "generate":
                yield from self._generate(chunk)
                continue
            try:
                results = self._model.score_batch(
                    [e.video for e in chunk], [e.task for e in chunk], len(chunk)
                )
            except video.VideoDecodeError:  # one bad video: score the rest one by one
                results = [self._score_one(e) for e in chunk]
            for ex, result in zip(chunk, results, strict=True):
                if result is None:
                    yield Prediction(ex.id, INVALID, output="video could not be decoded")
                else:
                    yield Prediction(
                        ex.id,
                        result.score,
                        output=f"{rubric.ANSWER_PREFIX}{result.score}",
                        probs=list(result.probs),
                    )


@dataclass
class OpenAIPredictor(Predictor):
    """An OpenAI-compatible chat endpoint: the rubric prompt with the sampled frames as images.

    The HTTP side (images as JPEG parts, temperature 0, retries with backoff) is the relabeling
    stages' `OpenAIChat`; here it is asked the reward prompt and its answer parsed.
    """

    spec: str
    url: str
    model: str
    num_frames: int = 16
    max_side: int | None = 448
    timeout: float = 120.0
    retries: int = 3
    name: str = ""

    def predict(self, examples: Sequence[Example]) -> Iterator[Prediction]:
        from roboreward.relabel.backends import OpenAIChat

        chat = OpenAIChat(self.url, self.model, timeout=self.timeout, retries=self.retries, backoff=0.5)
        for ex in examples:
            try:
                frames = video.sample_frames(ex.video, num_frames=self.num_frames, max_side=self.max_side)
            except video.VideoDecodeError:
                yield Prediction(ex.id, INVALID, output="video could not be decoded")
                continue
            try:
                text = chat.complete("bench", rubric.build_prompt(ex.task), frames, max_new_tokens=64)
            except Exception as exc:  # the endpoint failed after retries: not a model answer
                raise RuntimeError(f"{self.spec}: request for {ex.id} failed: {exc}") from None
            score = rubric.parse_answer(text)
            yield Prediction(ex.id, INVALID if score is None else score, output=text)


_CONSTANT = re.compile(r"baseline:constant-([1-5])$")


def parse_spec(spec: str, config: BenchConfig | None = None) -> Predictor:
    """The predictor for a model SPEC (see the module docstring); raises ValueError for bad specs."""
    config = config or BenchConfig(dataset="", models=[])
    if spec.startswith("baseline:"):
        if spec == "baseline:random":
            return RandomBaseline(spec, seed=config.seed, name=spec)
        match = _CONSTANT.match(spec)
        if not match:
            raise ValueError(
                f"unknown baseline {spec!r}: use baseline:constant-N (N in 1..5) or baseline:random"
            )
        return ConstantBaseline(spec, int(match.group(1)), name=spec)
    if spec.startswith("predictions:"):
        path = Path(spec.split(":", 1)[1])
        return FilePredictions(spec, path, name=path.stem)
    if spec.startswith("openai:"):
        rest = spec.split(":", 1)[1]
        url, sep, model = rest.partition("#")
        if not sep or not model or not url.startswith(("http://", "https://")):
            raise ValueError(f"an OpenAI-compatible model is openai:URL#model-name, got {spec!r}")
        return OpenAIPredictor(
            spec, url, model, config.num_frames, config.max_side, timeout=config.request_timeout, name=model
        )
    mode, path = ("generate", spec.split(":", 1)[1]) if spec.startswith("generate:") else ("score", spec)
    if os.path.isdir(path) or re.fullmatch(r"[\w.-]+/[\w.-]+", path):
        name = Path(path).name if os.path.isdir(path) else path
        return CheckpointPredictor(
            spec,
            path,
            config.batch_size,
            config.num_frames,
            config.max_side,
            name=f"{name} (generate)" if mode == "generate" else name,
            mode=mode,
        )
    raise ValueError(
        f"unknown model spec {spec!r}: a checkpoint folder, a Hub id, generate:PATH, openai:URL#name, "
        "predictions:FILE.jsonl, baseline:constant-N or baseline:random"
    )


def _unique_names(predictors: list[Predictor]) -> None:
    seen: dict[str, int] = {}
    for p in predictors:
        base = p.name or p.spec
        seen[base] = seen.get(base, 0) + 1
        p.name = base if seen[base] == 1 else f"{base}-{seen[base]}"


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("_") or "model"


# ---------------------------------------------------------------------------------------------
# Cache


def _read_cache(path: Path) -> dict[str, dict[str, Any]]:
    """Cached rows by id; a torn last line (a killed run) is dropped and the file rewritten clean."""
    if not path.exists():
        return {}
    rows, clean = {}, True
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
            rows[row["id"]] = row
        except (ValueError, KeyError, TypeError):
            clean = False
    if not clean:
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows.values()), encoding="utf-8")
        os.replace(tmp, path)
    return rows


def _predict_all(
    predictor: Predictor, examples: list[Example], cache_path: Path
) -> dict[str, dict[str, Any]]:
    cached = _read_cache(cache_path)
    todo = [ex for ex in examples if ex.id not in cached]
    by_id = {ex.id: ex for ex in examples}
    if todo:
        with open(cache_path, "a", encoding="utf-8") as f:
            for pred in tqdm(predictor.predict(todo), total=len(todo), desc=predictor.name, unit="ex"):
                ex = by_id[pred.id]
                row = {
                    "id": pred.id,
                    "reference": ex.reward,
                    "prediction": pred.prediction,
                    "output": pred.output,
                    "probabilities": pred.probs,
                    "subset": ex.subset,
                }
                f.write(json.dumps(row) + "\n")
                f.flush()
                cached[pred.id] = row
    return cached


# ---------------------------------------------------------------------------------------------
# Results


def run_bench(config: BenchConfig) -> dict[str, Any]:
    """Score every model on the examples, compute the metrics, write results, leaderboard and plots."""
    from roboreward import metrics

    if not config.models:
        raise ValueError("give at least one --model")
    predictors = [parse_spec(spec, config) for spec in config.models]  # bad specs fail before any work
    _unique_names(predictors)
    examples = load_examples(config.dataset, config.split, config.subsets, config.max_examples)
    out = Path(config.out)
    (out / "predictions").mkdir(parents=True, exist_ok=True)
    table: dict[str, list[int]] = {}
    for predictor in predictors:
        rows = _predict_all(predictor, examples, out / "predictions" / f"{_safe(predictor.name)}.jsonl")
        table[predictor.name] = [int(rows[ex.id]["prediction"]) for ex in examples]

    references = [ex.reward for ex in examples]
    subsets = [ex.subset for ex in examples]
    names = [p.name for p in predictors]
    mae = metrics.load("mae")
    success = metrics.load("success_accuracy")
    win = metrics.load("mean_win_rate").compute(
        predictions=[[table[n][i] for n in names] for i in range(len(examples))],
        references=references,
        subsets=subsets,
        model_names=names,
    )
    models = {}
    for predictor in predictors:
        preds = table[predictor.name]
        overall = mae.compute(predictions=preds, references=references)
        models[predictor.name] = {
            "spec": predictor.spec,
            "mae": overall["mae"],
            "invalid": overall["invalid"],
            "invalid_rate": overall["invalid"] / len(preds),
            "mean_win_rate": win["mean_win_rate"][predictor.name],
            "subset_mae": {s: win["subset_mae"][s][predictor.name] for s in sorted(win["subset_mae"])},
            "subset_win_rate": {
                s: win["subset_win_rate"][s][predictor.name] for s in sorted(win["subset_win_rate"])
            },
            "success": success.compute(predictions=preds, references=references),
            "num_examples": len(preds),
        }
    leaderboard = sorted(names, key=lambda n: (-models[n]["mean_win_rate"], models[n]["mae"], n))
    results = {
        "benchmark": "RoboRewardBench",
        "dataset": config.dataset,
        "split": config.split,
        "num_examples": len(examples),
        "subsets": sorted(set(subsets)),
        "subset_sizes": {s: subsets.count(s) for s in sorted(set(subsets))},
        "models": models,
        "leaderboard": leaderboard,
    }
    _write_json(out / "results.json", results)
    _write_leaderboard(out, results)
    _plot(out, results)
    return results


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _write_leaderboard(out: Path, results: dict[str, Any]) -> None:
    subsets = results["subsets"]
    header = [
        "rank",
        "model",
        "mean win rate",
        "MAE",
        "invalid rate",
        "success F1",
        *[f"MAE {s}" for s in subsets],
    ]
    rows = []
    for rank, name in enumerate(results["leaderboard"], start=1):
        m = results["models"][name]
        rows.append(
            [
                rank,
                name,
                f"{m['mean_win_rate']:.3f}",
                f"{m['mae']:.3f}",
                f"{m['invalid_rate']:.3f}",
                f"{m['success']['f1']:.3f}",
                *[f"{m['subset_mae'][s]:.3f}" for s in subsets],
            ]
        )
    with open(out / "leaderboard.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    lines = [
        f"# {results['benchmark']}: {results['dataset']} "
        f"({results['split']}, {results['num_examples']} examples)",
        "",
        "| " + " | ".join(header) + " |",
        "|" + " --- |" * len(header),
        *["| " + " | ".join(str(c) for c in row) + " |" for row in rows],
        "",
        "Mean win rate: per subset, the fraction of the other models with a strictly higher MAE (ties",
        "count one half), averaged over subsets (HELM). MAE against the 1..5 labels; an unparsable answer",
        "costs the largest error possible for its example.",
        "",
    ]
    (out / "leaderboard.md").write_text("\n".join(lines), encoding="utf-8")


def _plot(out: Path, results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, subsets = results["leaderboard"], results["subsets"]
    grid = np.array([[results["models"][n]["subset_mae"][s] for s in subsets] for n in names])
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(subsets), 1.2 + 0.5 * len(names)))
    image = ax.imshow(grid, cmap="viridis_r", vmin=0, vmax=4, aspect="auto")
    ax.set_xticks(range(len(subsets)), subsets, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), names)
    for i in range(len(names)):
        for j in range(len(subsets)):
            ax.text(
                j,
                i,
                f"{grid[i, j]:.2f}",
                ha="center",
                va="center",
                color="white" if grid[i, j] > 2 else "black",
            )
    fig.colorbar(image, ax=ax, label="MAE (lower is better)")
    ax.set_title("MAE per subset")
    fig.tight_layout()
    fig.savefig(out / "subset_mae_heatmap.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 1.2 + 0.4 * len(names)))
    values = [results["models"][n]["mean_win_rate"] for n in names]
    ax.barh(range(len(names)), values, color="#4C72B0")
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("mean win rate (higher is better)")
    for i, v in enumerate(values):
        ax.text(min(v + 0.01, 0.9), i, f"{v:.3f}", va="center")
    fig.tight_layout()
    fig.savefig(out / "mean_win_rate.png", dpi=120)
    plt.close(fig)
