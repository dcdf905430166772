# Copyright 2026 The RoboReward toolkit authors.
# Licensed under the Apache License, Version 2.0.
"""Success detection without a threshold: ROC-AUC and PR-AUC of a reward model's success score."""

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
How well a reward model's score separates successful robot episodes (true score 5 on the RoboReward
rubric: every requirement met) from the rest (1..4), over every threshold at once: the area under the
ROC curve and the area under the precision-recall curve (average precision). The score is whatever
ranks episodes by how likely they succeeded: P(score = 5) for a model that gives a distribution over
the five scores, else its expected or its whole 1..5 score. A missing score (None or NaN: no parsable
answer) ranks below every other score, as an answer that claims no success.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of float): the success score per episode, higher = more likely a success
        (P(score = 5), or the expected or whole 1..5 score); None or NaN for no answer.
    references (list of int): true scores, each in 1..5 (else ValueError naming the value and its
        position); 5 is a success.
Returns:
    roc_auc (float): area under the ROC curve, the chance that a random success scores above a random
        failure (a tie counting one half); 0.5 is chance, 1.0 perfect. NaN without both a success and a
        failure.
    pr_auc (float): average precision, sum over thresholds of (R_k - R_(k-1)) * P_k (scikit-learn's
        average_precision_score); the share of successes is chance, 1.0 perfect. NaN without a success.
    positives, negatives (int): successes and failures among the references.
    missing (int): predictions that were None or NaN.
Examples:
    >>> detection = evaluate.load("metrics/success_detection")
    >>> detection.compute(predictions=[0.9, 0.8, 0.3, 0.8, None], references=[5, 3, 5, 1, 2])
    {'roc_auc': 0.6666666666666666, 'pr_auc': 0.75, 'positives': 2, 'negatives': 3, 'missing': 1}
"""

LOW, HIGH, SUCCESS = 1, 5, 5


def checked_references(references):
    refs = np.asarray(references, dtype=np.int64)
    bad = np.flatnonzero((refs < LOW) | (refs > HIGH))
    if bad.size:
        raise ValueError(f"references must be scores 1..5: reference {refs[bad[0]]} at position {bad[0]}")
    return refs


def roc_auc(scores, truth):
    """Mann-Whitney's U over positives x negatives, a tie counting one half (the trapezoid ROC area)."""
    pos, neg = scores[truth], scores[~truth]
    if not pos.size or not neg.size:
        return float("nan")
    above = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(above / (pos.size * neg.size))


def average_precision(scores, truth):
    """Sum over distinct thresholds, high to low, of the recall gained times the precision there."""
    if not truth.any():
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    ranked, hits = scores[order], truth[order]
    last = np.r_[np.flatnonzero(ranked[1:] != ranked[:-1]), ranked.size - 1]  # ends of runs of equal scores
    tp = np.cumsum(hits)[last]
    precision = tp / (last + 1)
    recall_gain = np.diff(np.r_[0, tp]) / truth.sum()
    return float((recall_gain * precision).sum())


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SuccessDetection(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("int32")}
            ),
            reference_urls=["https://arxiv.org/abs/2601.00675"],
        )

    def _compute(self, predictions, references):
        truth = checked_references(references) == SUCCESS
        scores = np.asarray([np.nan if p is None else p for p in predictions], dtype=np.float64)
        missing = np.isnan(scores)
        scores = np.where(missing, -np.inf, scores)  # no answer ranks below every answer
        return {
            "roc_auc": roc_auc(scores, truth),
            "pr_auc": average_precision(scores, truth),
            "positives": int(truth.sum()),
            "negatives": int((~truth).sum()),
            "missing": int(missing.sum()),
        }
