# Copyright 2026 The RoboReward toolkit authors.
# Licensed under the Apache License, Version 2.0.
"""MAE of 1..5 reward-model scores, with a rule for answers that could not be parsed."""

import datasets
import evaluate
import numpy as np

_CITATION = """\
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
Mean absolute error between the scores a reward model gives robot episodes and their true scores, on
the RoboReward rubric's integer scale 1..5 (1 no goal-relevant change ... 5 every requirement met).
A prediction outside 1..5 is invalid (write 0, or None, for "the model gave no parsable answer"). By
default an invalid prediction costs the largest error possible for its example, max(r - 1, 5 - r), so
a model never gains by refusing to answer; invalid="drop" leaves it out instead.

With `subsets` (the source dataset of each example) it also reports the MAE of each subset and their
unweighted mean, `macro_mae`: the headline of HELM's RoboRewardBench leaderboard, which ranks models by
the mean of the per-subset MAEs (its schema_video.yaml: the run group's "accuracy" metric group
aggregated with the "mean" strategy over the 23 subsets), so that a small subset weighs as much as a
large one. `mae` stays the mean over all rows.

conventions="helm" reproduces HELM's RoboRewardBench metric instead: a prediction that could not be
parsed (None or NaN) costs 4.0, and a parsed number is kept as it is, in range or not, whole or not
(6 against a reference of 3 costs 3.0; 3.5 against 3 costs 0.5).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted scores; anything outside 1..5 is invalid (0 or None by
        convention for "no parsable answer").
    references (list of int): true scores, each in 1..5 (else ValueError naming the value and its
        position).
    invalid (str): "worst" (default) charges an invalid prediction the worst error for its example,
        max(r - 1, 5 - r); "drop" leaves it out of the mean. Not used with conventions="helm".
    conventions (str): "roboreward" (default: the rules above) or "helm" (HELM's RoboRewardBench
        metric: None or NaN, an unparsable answer, costs 4.0; any other number costs |p - r|).
Returns:
    mae (float): mean absolute error, from 0.0 (best) to 4.0 (more under "helm" for a number far out
        of range). NaN when no prediction is left to average (no examples, or every prediction dropped).
    invalid (int): how many predictions were invalid (whatever `invalid` says to do with them); under
        "helm", how many could not be parsed.
    subset_mae (dict, with `subsets`): subset -> MAE of its examples (NaN where all were dropped).
    macro_mae (float, with `subsets`): the mean of the subsets' MAEs, each subset weighing the same
        (HELM's headline), over the subsets that have one; NaN if none has.
Examples:
    >>> mae = evaluate.load("metrics/mae")
    >>> mae.compute(predictions=[5, 3, 0, 2], references=[5, 4, 2, 2])
    {'mae': 1.0, 'invalid': 1}
    >>> mae.compute(predictions=[5, 3, 0, 2], references=[5, 4, 2, 2], invalid="drop")
    {'mae': 0.3333333333333333, 'invalid': 1}
    >>> mae.compute(predictions=[5, 6, None, 2.5], references=[5, 3, 2, 2], conventions="helm")
    {'mae': 1.875, 'invalid': 1}
    >>> mae.compute(predictions=[5, 3, 1, 2], references=[5, 5, 5, 2], subsets=["a", "a", "a", "b"])
    {'mae': 1.5, 'invalid': 0, 'subset_mae': {'a': 2.0, 'b': 0.0}, 'macro_mae': 1.0}
"""

LOW, HIGH = 1, 5
INVALID_RULES = ("worst", "drop")
CONVENTIONS = ("roboreward", "helm")
HELM_UNPARSED_COST = 4.0  # HELM's RoboRewardBenchProgressPredictionMetric: no number read


def checked_references(references):
    refs = np.asarray(references, dtype=np.int64)
    bad = np.flatnonzero((refs < LOW) | (refs > HIGH))
    if bad.size:
        raise ValueError(f"references must be scores 1..5: reference {refs[bad[0]]} at position {bad[0]}")
    return refs


def absolute_errors(predictions, references, invalid="worst", conventions="roboreward"):
    """Per-example absolute errors as floats, and the number of invalid predictions.

    An invalid prediction (not a whole number in 1..5, or None) costs max(r - 1, 5 - r), or is NaN
    under "drop". With conventions="helm": None or NaN costs 4.0, any other number |p - r|.
    """
    if invalid not in INVALID_RULES:
        raise ValueError(f"invalid must be one of {INVALID_RULES}, got {invalid!r}")
    if conventions not in CONVENTIONS:
        raise ValueError(f"conventions must be one of {CONVENTIONS}, got {conventions!r}")
    refs = checked_references(references)
    preds = np.asarray([np.nan if p is None else p for p in predictions], dtype=float)
    if conventions == "helm":
        unparsed = np.isnan(preds)
        return np.where(unparsed, HELM_UNPARSED_COST, np.abs(preds - refs)), int(unparsed.sum())
    valid = (preds >= LOW) & (preds <= HIGH) & (preds == np.round(preds))
    cost = np.maximum(refs - LOW, HIGH - refs) if invalid == "worst" else np.nan
    return np.where(valid, np.abs(preds - refs), cost).astype(float), int((~valid).sum())


def mean_kept(errors):
    """The mean of the errors that are not NaN (dropped); NaN when none is left."""
    kept = errors[~np.isnan(errors)]
    return float(kept.mean()) if kept.size else float("nan")


def macro(errors, subsets):
    """Per-subset MAE and their unweighted mean over the subsets that have one (HELM's headline)."""
    if len(subsets) != len(errors):
        raise ValueError(f"subsets has {len(subsets)} entries for {len(errors)} references")
    labels = np.asarray([str(s) for s in subsets], dtype=object)
    per = {str(s): mean_kept(errors[labels == s]) for s in sorted(set(labels.tolist()))}
    present = [v for v in per.values() if not np.isnan(v)]
    return {"subset_mae": per, "macro_mae": float(np.mean(present)) if present else float("nan")}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Mae(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            # Numbers, so that HELM's conventions can keep 3.5 or -1; a missing value (None) marks an
            # answer that could not be parsed (0 does too under the default conventions).
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("int32")}
            ),
            reference_urls=["https://arxiv.org/abs/2601.00675"],
        )

    def _compute(self, predictions, references, invalid="worst", conventions="roboreward", subsets=None):
        errors, count = absolute_errors(predictions, references, invalid, conventions)
        out = {"mae": mean_kept(errors), "invalid": count}
        if subsets is not None:
            out.update(macro(errors, subsets))
        return out
