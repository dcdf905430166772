# Copyright 2026 The RoboReward toolkit authors.
# Licensed under the Apache License, Version 2.0.
"""MAE of 1..5 reward-model scores, with a rule for answers that could not be parsed."""

import datasets
import evaluate
import numpy as np

_CITATION = """\
@article{roboreward2026,
  title   = {RoboReward: General-Purpose Vision-Language Reward Models for Robotics},
  journal = {arXiv preprint arXiv:2601.00675},
  year    = {2026}
}
"""

_DESCRIPTION = """\
Mean absolute error between the scores a reward model gives robot episodes and their true scores, on
the RoboReward rubric's integer scale 1..5 (1 no goal-relevant change ... 5 the task is done). A
prediction outside 1..5 (use 0 for "no parsable answer") is invalid: by default it costs the largest
error possible for its example, max(r - 1, 5 - r), so a model cannot gain by refusing to answer.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted scores; anything outside 1..5 (0 by convention) is invalid.
    references (list of int): true scores, each in 1..5 (else ValueError).
    invalid (str): "worst" (default) charges an invalid prediction the worst error for its example;
        "drop" leaves it out of the mean.
Returns:
    mae (float): mean absolute error, 0.0 (best) to 4.0. NaN when "drop" leaves no prediction.
    invalid (int): how many predictions were invalid.
Examples:
    >>> mae = evaluate.load("metrics/mae")
    >>> mae.compute(predictions=[5, 3, 0, 2], references=[5, 4, 2, 2])
    {'mae': 1.0, 'invalid': 1}
    >>> mae.compute(predictions=[5, 3, 0, 2], references=[5, 4, 2, 2], invalid="drop")
    {'mae': 0.3333333333333333, 'invalid': 1}
"""

LOW, HIGH = 1, 5


def _checked_references(references):
    refs = np.asarray(references, dtype=np.int64)
    bad = np.flatnonzero((refs < LOW) | (refs > HIGH))
    if bad.size:
        raise ValueError(f"references must be scores 1..5: reference {refs[bad[0]]} at position {bad[0]}")
    return refs


def absolute_errors(predictions, references, invalid="worst"):
    """Per-example absolute errors as floats; NaN for invalid predictions under invalid="drop"."""
    if invalid not in ("worst", "drop"):
        raise ValueError(f'invalid must be "worst" or "drop", got {invalid!r}')
    refs = _checked_references(references)
    preds = np.asarray(predictions, dtype=np.int64)
    valid = (preds >= LOW) & (preds <= HIGH)
    worst = np.maximum(refs - LOW, HIGH - refs).astype(float)
    errors = np.where(valid, np.abs(preds - refs), worst if invalid == "worst" else np.nan).astype(float)
    return errors, int((~valid).sum())


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Mae(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}
            ),
            reference_urls=["https://arxiv.org/abs/2601.00675"],
        )

    def _compute(self, predictions, references, invalid="worst"):
        errors, count = absolute_errors(predictions, references, invalid)
        kept = errors[~np.isnan(errors)]
        return {"mae": float(kept.mean()) if kept.size else float("nan"), "invalid": count}
