# Copyright 2026 The RoboReward toolkit authors.
# Licensed under the Apache License, Version 2.0.
"""Success detection from 1..5 reward scores: score 5 is success, anything below is not."""

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
Reads 1..5 reward-model scores as binary success (score 5: every requirement met) versus failure
(1..4), the reward an RL loop with a success detector would see, and reports accuracy, precision,
recall and F1 of success. An invalid prediction (outside 1..5; 0 for "no parsable answer") claims no
success: it counts as a failure prediction, and how many there were is reported.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted scores; outside 1..5 is invalid (a failure prediction).
    references (list of int): true scores, each in 1..5 (else ValueError).
Returns:
    accuracy, precision, recall, f1 (float in [0, 1]): for the success class. Precision is 0.0 when no
        success is predicted, recall 0.0 when there is no true success, F1 0.0 when both are 0.
    invalid (int): how many predictions were invalid.
Examples:
    >>> success = evaluate.load("metrics/success_accuracy")
    >>> success.compute(predictions=[5, 5, 4, 0], references=[5, 3, 5, 1])
    {'accuracy': 0.5, 'precision': 0.5, 'recall': 0.5, 'f1': 0.5, 'invalid': 1}
"""

LOW, HIGH, SUCCESS = 1, 5, 5


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
        refs = np.asarray(references, dtype=np.int64)
        bad = np.flatnonzero((refs < LOW) | (refs > HIGH))
        if bad.size:
            raise ValueError(f"references must be scores 1..5: reference {refs[bad[0]]} at position {bad[0]}")
        preds = np.asarray(predictions, dtype=np.int64)
        invalid = int(((preds < LOW) | (preds > HIGH)).sum())
        said, true = preds == SUCCESS, refs == SUCCESS
        tp = int((said & true).sum())
        precision = tp / said.sum() if said.any() else 0.0
        recall = tp / true.sum() if true.any() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {
            "accuracy": float((said == true).mean()),
            "precision": float(precision),
            "recall": float(recall),
            "f1": float(f1),
            "invalid": invalid,
        }
