# Copyright 2026 The RoboReward toolkit authors.
# Licensed under the Apache License, Version 2.0.
"""Mean win rate (HELM's aggregate) of reward models compared by MAE on subsets of a benchmark."""

import datasets
import evaluate
import numpy as np

_CITATION = """\
@article{liang2022helm,
  title   = {Holistic Evaluation of Language Models},
  author  = {Liang, Percy and Bommasani, Rishi and Lee, Tony and others},
  journal = {arXiv preprint arXiv:2211.09110},
  year    = {2022}
}
@article{roboreward2026,
  title   = {RoboReward: General-Purpose Vision-Language Reward Models for Robotics},
  journal = {arXiv preprint arXiv:2601.00675},
  year    = {2026}
}
"""

_DESCRIPTION = """\
How often a reward model beats the others, the way HELM aggregates (and RoboRewardBench reports):
in each subset (a source dataset), a model's win rate is the fraction of the OTHER models whose MAE
is strictly worse (higher), a tie counting one half; its mean win rate is the mean of its win rates
over subsets. With granularity="sample" the same comparison is made on each example's absolute error
and averaged over examples. Scores are integers 1..5; a prediction outside 1..5 (0 for "no parsable
answer") is invalid and, by default, costs the largest error possible for its example.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of list of int): for each example, one score per model, in `model_names` order.
    references (list of int): the true score of each example, 1..5 (else ValueError).
    subsets (list of str): the subset (source) of each example.
    model_names (list of str): the k models' names (k >= 1, unique).
    granularity (str): "subset" (default; HELM) or "sample".
    invalid (str): "worst" (default) or "drop" (an invalid prediction is left out; a model with no valid
        prediction in a subset takes no part in that subset's comparison).
Returns:
    mean_win_rate (dict): model name -> mean win rate in [0, 1] (NaN when it was never compared:
        a single model, or no valid prediction anywhere under "drop").
    subset_mae (dict): subset -> model name -> MAE (NaN for a model with no valid prediction there).
    subset_win_rate (dict): subset -> model name -> win rate in that subset (NaN when not compared).
Examples:
    >>> mwr = evaluate.load("metrics/mean_win_rate")
    >>> out = mwr.compute(
    ...     predictions=[[5, 4, 1], [3, 3, 5], [2, 1, 2]],
    ...     references=[5, 3, 2],
    ...     subsets=["oxe", "oxe", "roboarena"],
    ...     model_names=["ours", "base", "constant"],
    ... )
    >>> out["mean_win_rate"]
    {'ours': 0.875, 'base': 0.25, 'constant': 0.375}
    >>> out["subset_mae"]["oxe"]
    {'ours': 0.0, 'base': 0.5, 'constant': 3.0}
"""

LOW, HIGH = 1, 5
GRANULARITIES = ("subset", "sample")


def absolute_errors(predictions, references, invalid="worst"):
    """(n, k) absolute errors; invalid predictions cost the worst error, or NaN under "drop".

    (The same rule as the `mae` module; each module stands alone so it can be pushed to the Hub as is.)
    """
    if invalid not in ("worst", "drop"):
        raise ValueError(f'invalid must be "worst" or "drop", got {invalid!r}')
    refs = np.asarray(references, dtype=np.int64)
    bad = np.flatnonzero((refs < LOW) | (refs > HIGH))
    if bad.size:
        raise ValueError(f"references must be scores 1..5: reference {refs[bad[0]]} at position {bad[0]}")
    preds = np.asarray(predictions, dtype=np.int64)
    valid = (preds >= LOW) & (preds <= HIGH)
    worst = np.maximum(refs - LOW, HIGH - refs).astype(float)[:, None]
    return np.where(valid, np.abs(preds - refs[:, None]), worst if invalid == "worst" else np.nan).astype(
        float
    )


def win_rates(values):
    """For each entry, the fraction of the other non-NaN entries strictly larger, ties counting 1/2.

    NaN for NaN entries, and for every entry when fewer than two are compared.
    """
    values = np.asarray(values, dtype=float)
    present = ~np.isnan(values)
    out = np.full(values.shape, np.nan)
    others = present.sum() - 1
    if others < 1:
        return out
    for i in np.flatnonzero(present):
        rest = np.delete(values, i)
        rest = rest[~np.isnan(rest)]
        ties = np.isclose(rest, values[i], rtol=0.0, atol=1e-12)
        out[i] = ((rest > values[i]) & ~ties).sum() / others + 0.5 * ties.sum() / others
    return out


def _nanmean(values, axis=None):
    values = np.asarray(values, dtype=float)
    count = (~np.isnan(values)).sum(axis=axis)
    total = np.nansum(values, axis=axis)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MeanWinRate(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("int32")),
                    "references": datasets.Value("int32"),
                    "subsets": datasets.Value("string"),
                }
            ),
            reference_urls=["https://crfm.stanford.edu/helm/", "https://arxiv.org/abs/2601.00675"],
        )

    def _compute(self, predictions, references, subsets, model_names, granularity="subset", invalid="worst"):
        names = list(model_names)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"model_names must be unique and non-empty, got {names}")
        if granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
        widths = {len(row) for row in predictions}
        if widths != {len(names)}:
            raise ValueError(
                f"every example needs one prediction per model ({len(names)}), got widths {widths}"
            )
        errors = absolute_errors(predictions, references, invalid)
        subsets = np.asarray(subsets, dtype=object)
        subset_mae, subset_win = {}, {}
        per_subset = []
        for subset in sorted(set(subsets.tolist())):
            rows = errors[subsets == subset]
            mae = _nanmean(rows, axis=0)
            if granularity == "subset":
                wins = win_rates(mae)
            else:
                wins = _nanmean(np.stack([win_rates(row) for row in rows]), axis=0)
            subset_mae[subset] = dict(zip(names, map(float, mae), strict=True))
            subset_win[subset] = dict(zip(names, map(float, wins), strict=True))
            per_subset.append(wins)
        if granularity == "subset":
            mean = _nanmean(np.stack(per_subset), axis=0)
        else:
            mean = _nanmean(np.stack([win_rates(row) for row in errors]), axis=0)
        return {
            "mean_win_rate": dict(zip(names, map(float, mean), strict=True)),
            "subset_mae": subset_mae,
            "subset_win_rate": subset_win,
        }
