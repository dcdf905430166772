# Copyright 2026 The RoboReward toolkit authors.
# Licensed under the Apache License, Version 2.0.
"""Calibration of a reward model's five-way distribution, and its pairwise preference accuracy."""

import datasets
import evaluate
import numpy as np

_CITATION = """\
@inproceedings{guo2017calibration,
  title     = {On Calibration of Modern Neural Networks},
  author    = {Chuan Guo and Geoff Pleiss and Yu Sun and Kilian Q. Weinberger},
  booktitle = {ICML},
  year      = {2017}
}
@article{brier1950verification,
  title   = {Verification of Forecasts Expressed in Terms of Probability},
  author  = {Glenn W. Brier},
  journal = {Monthly Weather Review},
  year    = {1950}
}
@misc{lee2026roboreward,
  title         = {RoboReward: General-Purpose Vision-Language Reward Models for Robotics},
  author        = {Tony Lee and Andrew Wagenmaker and Karl Pertsch and Percy Liang and Sergey Levine
                   and Chelsea Finn},
  year          = {2026},
  eprint        = {2601.00675},
  archivePrefix = {arXiv},
  url           = {https://arxiv.org/abs/2601.00675}
}
"""

_DESCRIPTION = """\
Two questions about a reward model that scores robot episodes 1..5 on the RoboReward rubric.
Calibration (models that give a distribution over the five scores): expected calibration error of the
most likely score (equal-width confidence bins, Guo et al. 2017), the multi-class Brier score of the
distribution, and the reliability table behind a reliability diagram. Preference: over every pair of
episodes that share a group (a task, or a RoboArena session) and differ in true score, how often the
model's scores order the pair the right way. A pair the model scores equal is a tie: as in HELM's
A/B/tie scenario, answering "tie" when one episode is better is not the right answer (``tie_credit``
0.0); ``tie_credit=0.5`` gives it half, as a coin flip would earn.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of float): the model's score per episode (whole 1..5 or expected score); None
        or NaN for no answer, which ties with anything in a pair.
    references (list of int): true scores, each in 1..5 (else ValueError naming the value and position).
    probabilities (list of list of float, optional): per episode the five probabilities of scores
        1..5 (None for an episode without them); ECE, Brier and the reliability table read the
        episodes that have them.
    groups (list of str, optional): the pairing key per episode (None: no preference numbers).
    num_bins (int): equal-width confidence bins of ECE, default 10; bin m holds ((m-1)/M, m/M].
    tie_credit (float): credit of a tied pair, default 0.0 (HELM's A/B/tie: a tie is wrong).
Returns:
    ece (float or None): sum over bins of (bin size / n) * |accuracy - mean confidence|; None without
        probabilities.
    brier (float or None): mean over episodes of sum_k (p_k - [k == reference])^2, 0 best, 2 worst.
    calibrated (int): episodes with probabilities.
    reliability (dict): per bin ``count``, ``confidence`` (mean) and ``accuracy`` (None when empty).
    preference_accuracy (float or None): (right + tie_credit * ties) / pairs; None with no pair.
    pairs, right, wrong, ties (int): the pairs and how the model ordered them.
Examples:
    >>> metric = evaluate.load("metrics/calibration_preference")
    >>> out = metric.compute(
    ...     predictions=[5, 3, 3, 1],
    ...     references=[5, 4, 2, 1],
    ...     probabilities=[[0, 0, 0, 0.2, 0.8], [0, 0, 0.6, 0.4, 0], [0, 0.5, 0.5, 0, 0], [1, 0, 0, 0, 0]],
    ...     groups=["a", "a", "b", "b"],
    ... )
    >>> out["pairs"], out["right"], out["ties"], out["preference_accuracy"]
    (2, 2, 0, 1.0)
"""

LOW, HIGH = 1, 5


def checked_references(references):
    refs = np.asarray(references, dtype=np.int64)
    bad = np.flatnonzero((refs < LOW) | (refs > HIGH))
    if bad.size:
        raise ValueError(f"references must be scores 1..5: reference {refs[bad[0]]} at position {bad[0]}")
    return refs


def calibration(probabilities, refs, num_bins):
    """ECE, Brier and the reliability table of the rows that have a distribution."""
    rows = [i for i, p in enumerate(probabilities) if p is not None]
    table = {"count": [0] * num_bins, "confidence": [None] * num_bins, "accuracy": [None] * num_bins}
    if not rows:
        return {"ece": None, "brier": None, "calibrated": 0, "reliability": table}
    probs = np.asarray([probabilities[i] for i in rows], dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != HIGH:
        raise ValueError(f"probabilities must hold five numbers per episode, got shape {probs.shape}")
    truth = refs[rows]
    onehot = np.eye(HIGH)[truth - LOW]
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) + LOW) == truth
    bins = np.clip(np.ceil(confidence * num_bins).astype(np.int64) - 1, 0, num_bins - 1)
    ece = 0.0
    for b in range(num_bins):
        members = bins == b
        count = int(members.sum())
        table["count"][b] = count
        if count:
            table["confidence"][b] = float(confidence[members].mean())
            table["accuracy"][b] = float(correct[members].mean())
            ece += count / len(rows) * abs(table["accuracy"][b] - table["confidence"][b])
    brier = float(((probs - onehot) ** 2).sum(axis=1).mean())
    return {"ece": float(ece), "brier": brier, "calibrated": len(rows), "reliability": table}


def preference(predictions, refs, groups, tie_credit):
    """Right / wrong / tied orderings over same-group pairs of different true score."""
    preds = np.asarray([np.nan if p is None else p for p in predictions], dtype=np.float64)
    right = wrong = ties = 0
    members = {}
    for i, group in enumerate(groups):
        members.setdefault(group, []).append(i)
    for indices in members.values():
        for a, i in enumerate(indices):
            for j in indices[a + 1 :]:
                if refs[i] == refs[j]:
                    continue
                if np.isnan(preds[i]) or np.isnan(preds[j]) or preds[i] == preds[j]:
                    ties += 1
                elif (preds[i] > preds[j]) == (refs[i] > refs[j]):
                    right += 1
                else:
                    wrong += 1
    pairs = right + wrong + ties
    accuracy = (right + tie_credit * ties) / pairs if pairs else None
    return {"preference_accuracy": accuracy, "pairs": pairs, "right": right, "wrong": wrong, "ties": ties}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class CalibrationPreference(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("int32")}
            ),
            reference_urls=["https://arxiv.org/abs/1706.04599", "https://arxiv.org/abs/2601.00675"],
        )

    def _compute(self, predictions, references, probabilities=None, groups=None, num_bins=10, tie_credit=0.0):
        refs = checked_references(references)
        n = len(refs)
        if num_bins < 1:
            raise ValueError(f"num_bins must be >= 1, got {num_bins}")
        if not 0.0 <= tie_credit <= 1.0:
            raise ValueError(f"tie_credit must be in [0, 1], got {tie_credit}")
        for name, values in (("probabilities", probabilities), ("groups", groups)):
            if values is not None and len(values) != n:
                raise ValueError(f"{name} has {len(values)} entries for {n} references")
        out = calibration(probabilities or [None] * n, refs, num_bins)
        if groups is None:
            out.update({"preference_accuracy": None, "pairs": 0, "right": 0, "wrong": 0, "ties": 0})
        else:
            out.update(preference(predictions, refs, groups, tie_credit))
        return out
