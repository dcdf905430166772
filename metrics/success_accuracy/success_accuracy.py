# Copyright 2026 The RoboReward toolkit authors.
# Licensed under the Apache License, Version 2.0.
"""Success detection from 1..5 reward scores: score 5 is success, anything below is not."""

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
Reads 1..5 reward-model scores as binary success (score 5: every requirement met) versus failure
(1..4), the reward an RL loop with a success detector would see, and reports accuracy, precision,
recall and F1 of success. An invalid prediction (outside 1..5; 0 or None for "no parsable answer")
claims no success, the way an RL loop reads an answer it cannot parse: it counts as a failure
prediction (right on a failed episode, a false negative on a success), and how many there were is
reported.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted scores; outside 1..5 (0 or None by convention) is invalid and
        counts as a failure prediction.
    references (list of int): true scores, each in 1..5 (else ValueError naming the value and its
        position).
Returns:
    accuracy, precision, recall, f1 (float in [0, 1]): for the success class. Precision is 0.0 when no
        success is predicted, recall 0.0 when there is no true success, F1 0.0 when precision and
        recall are both 0. Accuracy is NaN for an empty input.
    invalid (int): how many predictions were invalid.
Examples:
    >>> success = evaluate.load("metrics/success_accuracy")
    >>> success.compute(predictions=[5, 5, 4, 0], references=[5, 3, 5, 1])
    {'accuracy': 0.5, 'precision': 0.5, 'recall': 0.5, 'f1': 0.5, 'invalid': 1}
"""

LOW, HIGH, SUCCESS = 1, 5, 5


def checked_references(references):
    refs = np.asarray(references, dtype=np.int64)
    bad = np.flatnonzero((refs < LOW) | (refs > HIGH))
    if bad.size:
        raise ValueError(f"references must be scores 1..5: reference {refs[bad[0]]} at position {bad[0]}")
    return refs


def share(part, whole):
    """part / whole, 0.0 when whole is 0 (the zero-division convention of the card)."""
    return float(part / whole) if whole else 0.0


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SuccessAccuracy(evaluate.Metric):
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

    def _compute(self, predictions, references):
        true = checked_references(references) == SUCCESS
        preds = np.asarray([0 if p is None else p for p in predictions], dtype=np.int64)
        invalid = int(((preds < LOW) | (preds > HIGH)).sum())
        said = preds == SUCCESS  # an invalid prediction is never 5: it claims no success
        tp = int((said & true).sum())
        precision, recall = share(tp, said.sum()), share(tp, true.sum())
        return {
            "accuracy": float((said == true).mean()) if true.size else float("nan"),
            "precision": precision,
            "recall": recall,
            "f1": share(2 * precision * recall, precision + recall),
            "invalid": invalid,
        }
