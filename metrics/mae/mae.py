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
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted scores; anything outside 1..5 is invalid (0 or None by
        convention for "no parsable answer").
    references (list of int): true scores, each in 1..5 (else ValueError naming the value and its
        position).
    invalid (str): "worst" (default) charges an invalid prediction the worst error for its example,
        max(r - 1, 5 - r); "drop" leaves it out of the mean.
Returns:
    mae (float): mean absolute error, from 0.0 (best) to 4.0. NaN when no prediction is left to average
        (no examples, or every prediction dropped).
    invalid (int): how many predictions were invalid (whatever `invalid` says to do with them).
Examples:
    >>> mae = evaluate.load("metrics/mae")
    >>> mae.compute(predictions=[5, 3, 0, 2], references=[5, 4, 2, 2])
    {'mae': 1.0, 'invalid': 1}
    >>> mae.compute(predictions=[5, 3, 0, 2], references=[5, 4, 2, 2], invalid="drop")
    {'mae': 0.3333333333333333, 'invalid': 1}
"""

LOW, HIGH = 1, 5
INVALID_RULES = ("worst", "drop")


def checked_references(references):
    refs = np.asarray(references, dtype=np.int64)
    bad = np.flatnonzero((refs < LOW) | (refs > HIGH))
    if bad.size:
        raise ValueError(f"references must be scores 1..5: reference {refs[bad[0]]} at position {bad[0]}")
    return refs


def absolute_errors(predictions, references, invalid="worst"):
    """Per-example absolute errors as floats, and the number of invalid predictions.

    An invalid prediction (outside 1..5, or None) costs max(r - 1, 5 - r), or is NaN under "drop".
    """
    if invalid not in INVALID_RULES:
        raise ValueError(f"invalid must be one of {INVALID_RULES}, got {invalid!r}")
    refs = checked_references(references)
    preds = np.asarray([0 if p is None else p for p in predictions], dtype=np.int64)
    valid = (preds >= LOW) & (preds <= HIGH)
    cost = np.maximum(refs - LOW, HIGH - refs) if invalid == "worst" else np.nan
    return np.where(valid, np.abs(preds - refs), cost).astype(float), int((~valid).sum())


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Mae(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            # int32 scores; 0 (or a missing value) marks an answer that could not be parsed
            features=datasets.Features(
                {"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}
            ),
            reference_urls=["https://arxiv.org/abs/2601.00675"],
        )

    def _compute(self, predictions, references, invalid="worst"):
        errors, count = absolute_errors(predictions, references, invalid)
        kept = errors[~np.isnan(errors)]
        return {"mae": float(kept.mean()) if kept.size else float("nan"), "invalid": count}
