# Copyright 2026 The RoboReward toolkit authors.
# Licensed under the Apache License, Version 2.0.
"""Mean win rate (HELM's aggregate) of reward models compared by MAE on the subsets of a benchmark."""

import datasets
import evaluate
import numpy as np

_CITATION = """\
@article{liang2022helm,
  title   = {Holistic Evaluation of Language Models},
  author  = {Percy Liang and Rishi Bommasani and Tony Lee and Dimitris Tsipras and Dilara Soylu and others},
  journal = {arXiv preprint arXiv:2211.09110},
  year    = {2022}
}
@misc{lee2026roboreward,
  title         = {RoboReward: General-Purpose Vision-Language Reward Models for Robotics},
  author        = {Tony Lee and Andrew Wagenmaker and Karl Pertsch and Percy Liang and Sergey Levine
                   and Chelsea Finn},
  year          = {2026},
  eprint        = {2601.00675},
  archivePrefix = {arXiv},
  primaryClass  = {cs.RO},
  url           = {https://arxiv.org/abs/2601.00675}
}
"""

_DESCRIPTION = """\
How often a reward model beats the other models, aggregated the way HELM does and RoboRewardBench
reports it: in each subset (a source dataset), a model's win rate is the fraction of the OTHER models
whose MAE there is strictly worse (higher), a tie counting one half; its mean win rate is the mean of
its win rates over the subsets. With granularity="sample" the same comparison is made on each
example's absolute error instead and averaged over examples. Scores are integers 1..5; a prediction
outside 1..5 (0 or None for "no parsable answer") is invalid and, by default, costs the largest error
possible for its example. A win rate needs an opponent: where fewer than two models are compared it
is NaN and left out of the means (HELM skips such columns too).

conventions="helm" scores each prediction as HELM's RoboRewardBench metric does: a prediction that
could not be parsed (None or NaN) costs 4.0, any parsed number |p - r|, in range or not.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of list of int): for each example, one score per model, in `model_names` order.
    references (list of int): the true score of each example, 1..5 (else ValueError).
    subsets (list of str): the subset (source) of each example.
    model_names (list of str): the k models' names (k >= 1, unique).
    granularity (str): "subset" (default, HELM's) compares the models' MAEs in each subset.
        "sample" compares the models' absolute errors on each example (same rule: strictly larger
        error of another model = 1, equal = 1/2, divided by the number of other models compared);
        subset_win_rate averages those per-example win rates over the subset's examples, and
        mean_win_rate over all examples (so, unlike "subset", large subsets weigh more).
    invalid (str): "worst" (default) charges an invalid prediction the worst error for its example,
        max(r - 1, 5 - r), and every model takes part everywhere. "drop" leaves invalid predictions
        out: a model's subset MAE is over its valid predictions only, a model with no valid
        prediction in a subset (granularity="subset") or on an example ("sample") takes no part in
        that comparison, and its win rate there is NaN. Not used with conventions="helm".
    conventions (str): "roboreward" (default) or "helm": None or NaN (an unparsable answer) costs 4.0,
        any other number |p - r|, in range or not (HELM's RoboRewardBench metric).
Returns:
    mean_win_rate (dict): model name -> mean win rate in [0, 1], the mean over the comparisons it took
        part in; NaN if it took part in none (a single model; or, under "drop", no valid prediction
        in any comparison with another model).
    subset_mae (dict): subset -> model name -> MAE in [0, 4] (NaN under "drop" for a model with no
        valid prediction there). The same whatever the granularity.
    subset_win_rate (dict): subset -> model name -> win rate in [0, 1] (NaN where not compared).
        In each subset the win rates of the m models compared sum to m / 2 (granularity="subset").
Examples:
    >>> mwr = evaluate.load("metrics/mean_win_rate")
    >>> out = mwr.compute(
    ...     predictions=[[5, 4, 1], [3, 3, 5], [2, 1, 2]],
    ...     references=[5, 3, 2],
    ...     subsets=["oxe", "oxe", "roboarena"],
    ...     model_names=["ours", "base", "constant"],
    ... )
    >>> out["subset_mae"]["oxe"], out["subset_mae"]["roboarena"]
    ({'ours': 0.0, 'base': 0.5, 'constant': 3.0}, {'ours': 0.0, 'base': 1.0, 'constant': 0.0})
    >>> out["subset_win_rate"]["oxe"], out["subset_win_rate"]["roboarena"]
    ({'ours': 1.0, 'base': 0.5, 'constant': 0.0}, {'ours': 0.75, 'base': 0.0, 'constant': 0.75})
    >>> out["mean_win_rate"]
    {'ours': 0.875, 'base': 0.25, 'constant': 0.375}
"""

LOW, HIGH = 1, 5
INVALID_RULES = ("worst", "drop")
GRANULARITIES = ("subset", "sample")
CONVENTIONS = ("roboreward", "helm")
HELM_UNPARSED_COST = 4.0  # HELM's RoboRewardBenchProgressPredictionMetric: no number read


def absolute_errors(predictions, references, k, invalid="worst", conventions="roboreward"):
    """(n, k) absolute errors of k models; an invalid prediction costs max(r - 1, 5 - r), NaN under "drop".

    With conventions="helm": None or NaN costs 4.0, any other number |p - r|. The same rules as the
    `mae` module, repeated so that each module stands alone on the Hub.
    """
    if invalid not in INVALID_RULES:
        raise ValueError(f"invalid must be one of {INVALID_RULES}, got {invalid!r}")
    if conventions not in CONVENTIONS:
        raise ValueError(f"conventions must be one of {CONVENTIONS}, got {conventions!r}")
    refs = np.asarray(references, dtype=np.int64)
    bad = np.flatnonzero((refs < LOW) | (refs > HIGH))
    if bad.size:
        raise ValueError(f"references must be scores 1..5: reference {refs[bad[0]]} at position {bad[0]}")
    preds = np.asarray([[np.nan if p is None else p for p in row] for row in predictions], dtype=float)
    preds = preds.reshape(len(refs), k)  # reshape: an empty input is (0, k) too
    if conventions == "helm":
        # Rounded so that means of the same fractional errors summed in another order still tie.
        return np.round(np.where(np.isnan(preds), HELM_UNPARSED_COST, np.abs(preds - refs[:, None])), 9)
    valid = (preds >= LOW) & (preds <= HIGH) & (preds == np.round(preds))
    cost = np.maximum(refs - LOW, HIGH - refs)[:, None] if invalid == "worst" else np.nan
    return np.where(valid, np.abs(preds - refs[:, None]), cost).astype(float)


def win_rates(values):
    """Win rates along the last axis: the share of the other non-NaN entries strictly larger (worse).

    A tie counts one half. NaN for a NaN entry, and for every entry of a row with fewer than two
    non-NaN entries (no opponent). Values are means of integer errors computed as sum / count, so
    equal means are equal floats and ties need no tolerance.
    """
    values = np.asarray(values, dtype=float)
    present = ~np.isnan(values)
    wins = -0.5 * present  # each entry ties with itself below
    for j in range(values.shape[-1]):
        other = values[..., j : j + 1]  # comparisons with NaN are False: absent models count nothing
        wins = wins + (other > values) + 0.5 * (other == values)
    others = present.sum(axis=-1, keepdims=True) - 1
    return np.where(present & (others > 0), wins / np.maximum(others, 1), np.nan)


def nanmean(values, axis=0):
    """Mean over the non-NaN entries; NaN (without numpy's warning) where there are none."""
    values = np.asarray(values, dtype=float)
    count = (~np.isnan(values)).sum(axis=axis)
    return np.where(count > 0, np.nansum(values, axis=axis) / np.maximum(count, 1), np.nan)


def by_subset(values, groups, count):
    """(count, k): the nanmean of the rows of `values` in each subset group."""
    return np.array([nanmean(values[groups == g]) for g in range(count)]).reshape(count, values.shape[1])


def named(names, values):
    return dict(zip(names, map(float, values), strict=True))


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MeanWinRate(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("float64")),
                    "references": datasets.Value("int32"),
                    "subsets": datasets.Value("string"),
                }
            ),
            reference_urls=["https://crfm.stanford.edu/helm/", "https://arxiv.org/abs/2601.00675"],
        )

    def _compute(
        self,
        predictions,
        references,
        subsets,
        model_names,
        granularity="subset",
        invalid="worst",
        conventions="roboreward",
    ):
        names = list(model_names)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"model_names must be unique and non-empty, got {names}")
        if granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
        for i, row in enumerate(predictions):
            if len(row) != len(names):
                raise ValueError(
                    f"example {i} has {len(row)} predictions, expected one per model ({len(names)})"
                )
        errors = absolute_errors(predictions, references, len(names), invalid, conventions)
        labels, groups = np.unique(np.asarray(subsets, dtype=str), return_inverse=True)
        subset_mae = by_subset(errors, groups, len(labels))
        if granularity == "subset":
            # HELM's fractional errors: means compared at 1e-9, so that equal means always tie.
            subset_wins = win_rates(np.round(subset_mae, 9) if conventions == "helm" else subset_mae)
            mean = nanmean(subset_wins)
        else:
            sample_wins = win_rates(errors)
            subset_wins = by_subset(sample_wins, groups, len(labels))
            mean = nanmean(sample_wins)
        return {
            "mean_win_rate": named(names, mean),
            "subset_mae": {str(s): named(names, row) for s, row in zip(labels, subset_mae, strict=True)},
            "subset_win_rate": {
                str(s): named(names, row) for s, row in zip(labels, subset_wins, strict=True)
            },
        }
