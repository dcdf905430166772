"""RoboRewardBench: score models on a split and report MAE, mean win rate and the rest.

- `roboreward.bench.run`: `BenchConfig`, `run_bench` (the command's whole run), ``results.json``;
- `roboreward.bench.predictors`: one predictor per kind of model spec;
- `roboreward.bench.examples`: the examples of a built folder, the release layout, a stratified sample;
- `roboreward.bench.parallel`: data-parallel runs under ``accelerate launch``, the prediction cache;
- `roboreward.bench.quality`: calibration, preference accuracy, value-order correlation;
- `roboreward.bench.report`: the leaderboard and plots.
"""

from roboreward._imports import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "CONVENTIONS": "run",
        "BenchConfig": "run",
        "Example": "examples",
        "load_examples": "examples",
        "parse_spec": "run",
        "results_json": "run",
        "run_bench": "run",
        "select_examples": "examples",
    },
)
