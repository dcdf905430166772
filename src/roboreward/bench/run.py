"""RoboRewardBench: score reward models on a RoboReward split, per subset, with a leaderboard.

    roboreward bench --dataset ./roboreward --split test \\
        --model runs/qwen2_5_vl_3b --model openai:http://localhost:8000/v1#Qwen2.5-VL-7B-Instruct \\
        --model predictions:their_model.jsonl --model baseline:constant-5 --model baseline:random \\
        --out bench_out

A model SPEC is one of:

- a local checkpoint or a Hub id (or ``hf:PATH_OR_ID``): scored with `roboreward.RewardModel` (one
  forward pass; the five probabilities are kept), with the checkpoint's own inference settings
  (prompt preset, frames, resolution; the published settings for ``teetone/RoboReward-4B``/``-8B``);
- ``generate:PATH_OR_ID``: an off-the-shelf VLM not trained on the answer format: it answers in
  free text (`RewardModel.generate`, up to 16 new tokens), read with `rubric.parse_answer`;
- ``openai:URL#name``: an OpenAI-compatible chat endpoint (vLLM, SGLang, TGI, ``transformers serve``)
  given the rubric prompt and the sampled frames; its text answer is read with `rubric.parse_answer`;
- ``openai+logprobs:URL#name``: the same, scored like a local checkpoint: the five probabilities from
  the top log-probabilities of the token after a prefilled ``ANSWER: `` (vLLM, SGLang); a server
  that gives none is scored from text, with a notice (`roboreward.models.served`). For both, several
  endpoints of one model are comma-separated into a pool, ``--concurrency`` requests go out at once,
  the frames go as one video part when the server takes one (else as images), and each model's
  entry in ``results.json`` says under ``served`` how its rows were made;
- ``http://HOST:PORT``: a ``roboreward serve`` server (`roboreward.models.remote.RewardClient`), with
  the settings of the model it serves;
- ``predictions:FILE.jsonl``: someone else's outputs, ``{"id", "prediction"}`` or ``{"id", "output"}``
  (raw text, parsed);
- ``baseline:constant-N`` or ``baseline:random`` (seeded by the example id): reference rows.

The dataset is a folder built by ``roboreward build`` (or a Hub id loading the same way), or the
public release's layout (``teetone/RoboReward``: ``test/metadata.jsonl`` and one folder of MP4s per
source, `roboreward.sources.release`), local or on the Hub. Examples are keyed by ``id`` and grouped
into subsets by ``source`` (the release: its source folders, as on HELM's leaderboard). Rows that
cannot be benchmarked (a missing file, a reward outside 1..5) are skipped with their reasons in
``results.json``. ``--max-examples N`` draws a seeded sample stratified by subset.

Metrics come from the `evaluate` modules in ``metrics/`` (loaded with `roboreward.metrics.load`),
never from a copy of their formulas, under one of two conventions, recorded in ``results.json``, the
leaderboard and the model card: ``roboreward`` (default: an invalid answer costs the worst error for
its example) or ``helm`` (HELM's RoboRewardBench metric: each answer read with HELM's parser, an
unparsable one costs 4.0, an out-of-range number its distance). Predictions are cached per (model,
id) in ``OUT/predictions/<model>.jsonl`` with the settings that made them, so a re-run, or a run that
was interrupted, only scores what is missing or was scored differently.

On several GPUs, one process per GPU, each with its own copy of every local checkpoint and its share
of the examples (`roboreward.bench.parallel`; the results are those of one process):

    accelerate launch --num_processes 8 -m roboreward.cli bench --dataset ./roboreward --model runs/3b \
        --out bench_out

(on CPU only: ``accelerate launch --multi_gpu --num_processes 2 --main_process_port 0 -m
roboreward.cli bench ...``). The main process merges the predictions and writes the results; ``--voc``
curves are computed there alone.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from roboreward import locate, rubric, video
from roboreward.bench.examples import Example, load_examples, select_examples
from roboreward.bench.parallel import DataParallel, data_parallel, read_rows
from roboreward.bench.predictors import (
    BENCH_KINDS,
    INVALID,
    CheckpointPredictor,
    ConstantBaseline,
    FilePredictions,
    Predictor,
    RandomBaseline,
    ServedPredictor,
    safe_name,
    unique_names,
)
from roboreward.bench.quality import (
    PreferencePair,
    detection_entry,
    direct_preference_entry,
    helm_preference_entry,
    pair_group,
    plot_reliability,
    policy_entry,
    preference_pairs,
    quality_entry,
    voc_entry,
)
from roboreward.bench.report import plot_results, write_leaderboard
from roboreward.config import check_fields, check_range
from roboreward.models.factory import load_reward_model
from roboreward.models.frames import MAX_CURVE_POINTS
from roboreward.models.openai_chat import VIDEO_INPUTS
from roboreward.models.settings import MAX_NUM_FRAMES, resolve_settings
from roboreward.models.specs import SERVED_KINDS, parse_model_spec
from roboreward.models.views import checked_cameras

__all__ = [
    "CONVENTIONS",
    "BenchConfig",
    "Example",
    "load_examples",
    "parse_spec",
    "rank_models",
    "results_json",
    "run_bench",
    "select_examples",
]

#: How answers become errors: the toolkit's rules, or HELM's RoboRewardBench metric.
CONVENTIONS = ("roboreward", "helm")


@dataclass
class BenchConfig:
    """What `run_bench` does.

    Args:
        dataset: a built RoboReward folder, the release layout (local or Hub id), or a Hub dataset id.
        models: the model specs (see the module docstring).
        out: output folder.
        split: the split to score.
        max_examples: a seeded sample of this many examples, stratified by subset (None: all).
        subsets: keep only these subsets.
        batch_size: episodes per forward pass of a local model.
        num_frames, max_side, prompt: override the checkpoints' own settings (None: each
            checkpoint's; for served models the published settings of a known release's name, else
            the toolkit's defaults: 16 frames, 448 px, ``toolkit``).
        cameras: show every model these cameras of each row's rollout in one prompt, in this order
            (overrides the checkpoints' own ``cameras``, with a warning; a served model is sent them
            as labelled video parts of one message). None: each checkpoint's; one video for served
            models.
        request_timeout: seconds per request to an ``openai:`` endpoint.
        concurrency: requests in flight at once to a served model (over all its endpoints).
        video_input: how frames reach a served model: ``auto`` (a video part when the server takes
            one, else images), ``video`` or ``frames``.
        seed: seed of ``baseline:random`` and of the ``max_examples`` sample.
        conventions: ``roboreward`` or ``helm`` (see the module docstring).
        voc: points K of a progress curve per successful (reward 5) episode, for OpenGVL's
            value-order correlation of local checkpoints (None: not computed).
        preference_pairs: N seeded pairs of rows of one group (a RoboArena session, or one task) to ask
            ``generate:`` and served models directly, both videos in one prompt in HELM's A / B / tie
            wording (None: not asked). Every model also answers every pair from its two single scores.
    """

    dataset: str
    models: list[str]
    out: str = "bench_out"
    split: str = "test"
    max_examples: int | None = None
    subsets: list[str] | None = None
    batch_size: int = 8
    num_frames: int | None = None
    max_side: int | None = None
    prompt: str | None = None
    cameras: list[str] | None = None
    request_timeout: float = 120.0
    concurrency: int = 8
    video_input: str = "auto"
    seed: int = 0
    conventions: str = "roboreward"
    voc: int | None = None
    preference_pairs: int | None = None

    def __post_init__(self) -> None:
        check_fields(self)
        if self.conventions not in CONVENTIONS:
            raise ValueError(f"conventions must be one of {CONVENTIONS}, got {self.conventions!r}")
        if self.video_input not in VIDEO_INPUTS:
            raise ValueError(f"video_input must be one of {VIDEO_INPUTS}, got {self.video_input!r}")
        if self.prompt is not None:
            rubric.get_preset(self.prompt)
        if self.cameras is not None:
            self.cameras = list(checked_cameras(self.cameras, "cameras"))
        for name in ("max_examples", "batch_size", "concurrency"):
            check_range(self, name, 1)
        check_range(self, "num_frames", 1, MAX_NUM_FRAMES)
        check_range(self, "max_side", 16)
        check_range(self, "voc", 2, MAX_CURVE_POINTS)
        check_range(self, "preference_pairs", 1)
        if not (self.request_timeout > 0 and math.isfinite(self.request_timeout)):
            raise ValueError(f"request_timeout must be a number of seconds > 0, got {self.request_timeout!r}")
        if any(not isinstance(m, str) or not m.strip() for m in self.models):
            raise ValueError(f"models must be non-empty model specs, got {self.models!r}")


def parse_spec(spec: str, config: BenchConfig | None = None) -> Predictor:
    """The predictor for a model SPEC (see the module docstring); raises ValueError for bad specs.

    A checkpoint's inference settings are resolved here (its settings file, a known release, or the
    toolkit's defaults), with the config's ``prompt``, ``num_frames``, ``max_side`` and ``cameras`` on top; a
    served model gets `roboreward.models.settings.served_settings` (a known release's, else the
    toolkit's defaults) with the same overrides.

    Args:
        spec: the model spec (`roboreward.bench.run`'s module docstring lists the kinds).
        config: the run's settings (overrides, concurrency, timeouts); None: `BenchConfig`'s defaults.
    """
    config = config or BenchConfig(dataset="", models=[])
    if config.prompt is not None:
        rubric.get_preset(config.prompt)
    overrides = {
        "prompt": config.prompt,
        "num_frames": config.num_frames,
        "max_side": config.max_side,
        "cameras": tuple(config.cameras) if config.cameras else None,
    }
    parsed = parse_model_spec(spec, kinds=BENCH_KINDS, bare=True)
    if parsed.kind == "baseline":
        if parsed.target == "random":
            return RandomBaseline(spec, seed=config.seed, name=spec)
        return ConstantBaseline(spec, int(parsed.target.rsplit("-", 1)[1]), name=spec)
    if parsed.kind == "predictions":
        path = Path(parsed.target)
        return FilePredictions(spec, path, name=path.stem)
    if parsed.kind in SERVED_KINDS:
        served = load_reward_model(
            spec,
            concurrency=config.concurrency,
            timeout=config.request_timeout,
            video_input=config.video_input,
            **overrides,
        )
        return ServedPredictor(spec, served, name=served.name)
    if parsed.kind == "serve":
        if any(v is not None for v in overrides.values()):
            raise ValueError(
                f"{spec} is a roboreward serve server, which scores with its own settings: "
                "--prompt, --num-frames, --max-side and --cameras cannot change them"
            )
        return CheckpointPredictor(spec, spec, config.batch_size, name=spec, inference=None)
    path = parsed.target
    if parsed.kind == "generate" and not (os.path.isdir(path) or re.fullmatch(r"[\w.-]+/[\w.-]+", path)):
        raise ValueError(f"generate:{path} is neither a checkpoint folder nor a Hub id ({spec!r})")
    name = Path(path).name if os.path.isdir(path) else path
    return CheckpointPredictor(
        spec,
        path,
        config.batch_size,
        name=f"{name} (generate)" if parsed.kind == "generate" else name,
        mode="generate" if parsed.kind == "generate" else "score",
        inference=resolve_settings(path, **overrides),
        overrides={**overrides, "concurrency": config.concurrency, "timeout": config.request_timeout},
    )


# ---------------------------------------------------------------------------------------------
# Cache


def _settings_key(predictor: Predictor) -> str | None:
    settings = predictor.settings
    if settings is None:
        return None
    made = {**settings.to_dict(), **({"how": predictor.key} if predictor.key else {})}
    return hashlib.sha256(json.dumps(made, sort_keys=True).encode()).hexdigest()[:16]


def _content_key(example: Example) -> str:
    """What an example is, not what it is called: its video's bytes, task, reference and subset."""
    video = example.video
    digest = hashlib.sha256()
    data = video.get("bytes") if isinstance(video, dict) else None
    path = video.get("path") if isinstance(video, dict) else video
    if data:
        digest.update(bytes(data))
    elif path:
        try:
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
        except OSError:  # unreadable: scoring says so; the key still names the file
            digest.update(f"unreadable:{path}".encode())
    record = [digest.hexdigest(), example.task, example.reward, example.subset]
    return hashlib.sha256(json.dumps(record).encode()).hexdigest()[:16]


def _predict_all(
    predictor: Predictor, examples: list[Example], cache_path: Path, dp: DataParallel
) -> dict[str, dict[str, Any]] | None:
    """The rows of every example, from the cache or scored now; under ``accelerate launch`` each
    process scores its share into a part file (`roboreward.bench.parallel`) and only the main
    process gets the rows (the others: None)."""
    dp.merge_leftovers(cache_path)  # the part files of a killed data-parallel run
    # A cached row made with other inference settings (another prompt, other frames), or for another
    # example under the same id (another video, task or reference), is scored again.
    key = _settings_key(predictor)
    content = {ex.id: _content_key(ex) for ex in examples}
    cached = {
        i: r
        for i, r in read_rows(cache_path)[0].items()
        if r.get("settings_key") == key and r.get("content_key") == content.get(i)
    }
    todo = [ex for ex in examples if ex.id not in cached]
    mine = dp.share(todo, block=getattr(predictor, "batch_size", 1))  # all of todo in one process
    by_id = {ex.id: ex for ex in examples}
    if mine:
        with open(dp.writes_to(cache_path), "a", encoding="utf-8") as f:
            bar = {"total": len(mine), "desc": dp.label(predictor.name), "disable": not dp.is_main}
            for pred in tqdm(predictor.predict(mine), unit="ex", **bar):
                ex = by_id[pred.id]
                row = {
                    "id": pred.id,
                    "reference": ex.reward,
                    "prediction": pred.prediction,
                    "output": pred.output,
                    "probabilities": pred.probs,
                    "subset": ex.subset,
                    "settings_key": _settings_key(predictor),  # as the loaded model has them
                    "content_key": content[pred.id],
                    **pred.extra,
                }
                f.write(json.dumps(row) + "\n")
                f.flush()
                cached[pred.id] = row
    return dp.collect(cache_path, cached, [ex.id for ex in todo])


def _helm_prediction(row: dict[str, Any]) -> float | None:
    """What HELM's metric reads from a cached row: its parser on the answer text."""
    return rubric.parse_answer_helm(row.get("output"))


# ---------------------------------------------------------------------------------------------
# Results


def run_bench(config: BenchConfig) -> dict[str, Any] | None:
    """Score every model on the examples, compute the metrics, write results, leaderboard and plots.

    Under ``accelerate launch`` the examples are shared out over the processes
    (`roboreward.bench.parallel`); the main process writes and returns the results, the others
    return None.

    Args:
        config: the models, the dataset and what to write (`BenchConfig`).
    """
    from roboreward import metrics

    if not config.models:
        raise ValueError("give at least one --model")
    predictors = [parse_spec(spec, config) for spec in config.models]  # bad specs fail before any work
    unique_names(predictors)
    for predictor in predictors:
        path = getattr(predictor, "path", None)
        if isinstance(path, str) and not path.startswith(("http://", "https://")):
            locate.resolve(path, "model")  # a checkpoint: a folder or a Hub id that answers
    skipped: list[dict[str, str]] = []
    examples = load_examples(
        config.dataset, config.split, config.subsets, config.max_examples, config.seed, skipped=skipped
    )
    out = Path(config.out)
    (out / "predictions").mkdir(parents=True, exist_ok=True)
    dp = data_parallel()
    for predictor in predictors:  # under accelerate, each process holds a copy of a local model
        if isinstance(predictor, CheckpointPredictor) and dp.device is not None:
            predictor.overrides["device"] = dp.device
    table: dict[str, list[Any]] = {}
    cached: dict[str, dict[str, dict[str, Any]]] = {}
    for predictor in predictors:
        rows = _predict_all(
            predictor, examples, out / "predictions" / f"{safe_name(predictor.name)}.jsonl", dp
        )
        if rows is None:  # another process of a data-parallel run: the main one writes the results
            continue
        cached[predictor.name] = rows
        if config.conventions == "helm":
            table[predictor.name] = [_helm_prediction(rows[ex.id]) for ex in examples]
        else:
            table[predictor.name] = [int(rows[ex.id]["prediction"]) for ex in examples]
    if not dp.is_main:
        return None

    references = [ex.reward for ex in examples]
    subsets = [ex.subset for ex in examples]
    names = [p.name for p in predictors]
    mae = metrics.load("mae")
    success = metrics.load("success_accuracy")
    quality = metrics.load("calibration_preference")
    detection = metrics.load("success_detection")
    ranking = metrics.load("policy_ranking")
    policies = [ex.policy for ex in examples]
    groups = [ex.group or pair_group(ex.task, ex.subset) for ex in examples]
    ids = [ex.id for ex in examples]
    preference = metrics.load("preference_accuracy")
    pairs = preference_pairs(references, groups, ids, config.seed)
    asked = preference_pairs(references, groups, ids, config.seed, config.preference_pairs)
    win = metrics.load("mean_win_rate").compute(
        predictions=[[table[n][i] for n in names] for i in range(len(examples))],
        references=references,
        subsets=subsets,
        model_names=names,
        conventions=config.conventions,
    )
    models = {}
    for predictor in predictors:
        preds = table[predictor.name]
        overall = mae.compute(
            predictions=preds, references=references, conventions=config.conventions, subsets=subsets
        )
        # Success is read from whole 1..5 scores; HELM's other numbers count as "no answer" there.
        whole = [p if isinstance(p, int) else _whole_score(p) for p in preds]
        probabilities = [cached[predictor.name][ex.id].get("probabilities") for ex in examples]
        models[predictor.name] = {
            "spec": predictor.spec,
            "mae": overall["mae"],
            "macro_mae": overall["macro_mae"],
            "invalid": overall["invalid"],
            "invalid_rate": overall["invalid"] / len(preds),
            "mean_win_rate": win["mean_win_rate"][predictor.name],
            "subset_mae": {s: win["subset_mae"][s][predictor.name] for s in sorted(win["subset_mae"])},
            "subset_win_rate": {
                s: win["subset_win_rate"][s][predictor.name] for s in sorted(win["subset_win_rate"])
            },
            "success": success.compute(predictions=whole, references=references),
            "success_detection": detection_entry(preds, references, probabilities, metric=detection),
            "policy_ranking": policy_entry(preds, references, probabilities, policies, metric=ranking),
            "num_examples": len(preds),
            "conventions": config.conventions,
            "inference_settings": _settings_record(predictor),
            "served": _served_record(predictor, [cached[predictor.name][ex.id] for ex in examples]),
            **quality_entry(
                preds,
                references,
                probabilities,
                groups,
                metric=quality,
            ),
            "preference_helm": helm_preference_entry(pairs, preds, metric=preference),
            "preference_direct": _direct_preference(predictor, examples, asked, preds, config, preference),
            "voc": _voc(predictor, examples, config),
        }
    leaderboard = rank_models(models, config.conventions)
    results = {
        "benchmark": "RoboRewardBench",
        "dataset": config.dataset,
        "split": config.split,
        "num_examples": len(examples),
        "subsets": sorted(set(subsets)),
        "subset_sizes": {s: subsets.count(s) for s in sorted(set(subsets))},
        "num_policies": len({p for p in policies if p}),
        "conventions": config.conventions,
        "skipped": skipped,
        "models": models,
        "leaderboard": leaderboard,
    }
    _write_json(out / "results.json", results)
    write_leaderboard(out, results)
    plot_results(out, results)
    plot_reliability(out, models)
    return results


def rank_models(models: dict[str, dict[str, Any]], conventions: str) -> list[str]:
    """The leaderboard's order of the models in ``results.json``'s ``models``.

    Under ``helm``, as HELM's RoboRewardBench leaderboard ranks: by ``macro_mae``, the mean of the
    per-subset MAEs (lower first), then the all-rows MAE, then the name. Under ``roboreward``: by mean
    win rate (higher first; none, with a single model, counts as lowest), then the all-rows MAE, then
    the name.

    Args:
        models: model name -> its entry (``macro_mae``, ``mae``, ``mean_win_rate``).
        conventions: ``roboreward`` or ``helm``.

    >>> entries = {"a": {"macro_mae": 0.9, "mae": 0.5, "mean_win_rate": 1.0},
    ...            "b": {"macro_mae": 0.7, "mae": 0.6, "mean_win_rate": 0.0}}
    >>> rank_models(entries, "helm"), rank_models(entries, "roboreward")
    (['b', 'a'], ['a', 'b'])
    """
    if conventions == "helm":
        return sorted(models, key=lambda n: (_or_inf(models[n]["macro_mae"]), _or_inf(models[n]["mae"]), n))
    return sorted(
        models, key=lambda n: (-_or_minus_inf(models[n]["mean_win_rate"]), _or_inf(models[n]["mae"]), n)
    )


def _or_inf(value: float) -> float:
    return math.inf if value is None or math.isnan(value) else value


def _or_minus_inf(value: float) -> float:
    return -math.inf if value is None or math.isnan(value) else value


def _direct_preference(
    predictor: Predictor,
    examples: Sequence[Example],
    pairs: list[PreferencePair],
    predictions: Sequence[float | None],
    config: BenchConfig,
    metric: Any,
) -> dict[str, Any] | None:
    """HELM's A / B / tie scenario asked of a ``generate:`` or served model (``--preference-pairs``)."""
    if not config.preference_pairs:
        return None
    if isinstance(predictor, ServedPredictor):
        answer = predictor.model.ask_parts
    elif isinstance(predictor, CheckpointPredictor) and predictor.mode == "generate":
        answer = predictor.load().generate_parts
    else:
        return None

    def ask(pair: PreferencePair) -> str | None:
        a, b = examples[pair.a], examples[pair.b]
        parts = rubric.preference_parts(a.task, [a.camera or "main"], [b.camera or "main"])
        videos = {("A", 0): a.video, ("B", 0): b.video}
        try:
            return answer([p if isinstance(p, str) else videos[p] for p in parts])
        except video.VideoDecodeError:
            return None

    entry = direct_preference_entry(pairs, ask, predictions, metric=metric)
    for row in entry["answers"]:  # results.json names the rows by id
        row["a"], row["b"] = examples[row["a"]].id, examples[row["b"]].id
    return entry


def _voc(predictor: Predictor, examples: Sequence[Example], config: BenchConfig) -> dict[str, Any] | None:
    """Value-order correlation of a local checkpoint's curves on the successful episodes (``--voc K``)."""
    if not config.voc or not isinstance(predictor, CheckpointPredictor) or predictor.mode != "score":
        return None
    items = [(ex.video, ex.task) for ex in examples if ex.reward == rubric.MAX_SCORE]
    return voc_entry(predictor.load(), items, config.voc)


def _whole_score(value: float | None) -> int:
    if value is None or not float(value).is_integer() or not 1 <= value <= 5:
        return INVALID
    return int(value)


def _served_record(predictor: Predictor, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """How a served model's predictions were made: the scoring asked for, and the rows per scoring
    actually used (``logprobs`` / ``text``) and per video input (``video`` / ``frames``)."""
    if not isinstance(predictor, ServedPredictor):
        return None
    record: dict[str, Any] = {
        "requested_scoring": predictor.model.scoring,
        "endpoints": len(predictor.model.pool.members),
    }
    for column in ("scoring", "video_input"):
        counts: dict[str, int] = {}
        for row in rows:
            value = str(row.get(column) or "no request")  # a video that could not be decoded
            counts[value] = counts.get(value, 0) + 1
        record[column] = dict(sorted(counts.items()))
    return record


def _settings_record(predictor: Predictor) -> dict[str, Any] | None:
    settings = predictor.settings
    return None if settings is None else {**settings.to_dict(), "source": settings.source}


def results_json(results: dict[str, Any]) -> str:
    """``results.json``'s text: strict JSON, a win rate that does not exist (one model: no opponent) as
    ``null`` rather than ``NaN``.

    Args:
        results: what `run_bench` returns.

    >>> json.loads(results_json({"mean_win_rate": float("nan"), "mae": 0.5}))
    {'mae': 0.5, 'mean_win_rate': None}
    """
    return json.dumps(_finite(results), indent=2, sort_keys=True, allow_nan=False) + "\n"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(results_json(data), encoding="utf-8")
    os.replace(tmp, path)
