# Copyright 2026 The RoboReward toolkit authors.
# Licensed under the Apache License, Version 2.0.
"""Accuracy of A / B / tie answers on pairs of robot rollouts, counted as HELM's preference scenario does."""

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
Two rollouts of one task (policy A and policy B): which did better? Each answer is "A", "B" or "tie"
(HELM also takes "tied"), compared with the reference as HELM's RoboRewardBench preference metric
does: case-insensitive exact match, "tie" and "tied" the same, an answer that could not be read
(None) wrong. So a tie is right only where the reference is a tie, and answering "tie" where one
rollout is better is wrong. The answers may come from a model asked about both videos at once, or
from two single-video scores (the higher one wins, equal scores are a tie).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str or None): "A", "B", "tie" or "tied" per pair (any case); None, "" or
        any other text for an answer that could not be read (write "" when no answer was read at
        all: evaluate refuses a column of None alone).
    references (list of str): "A", "B" or "tie" (or "tied") per pair (else ValueError naming it).
Returns:
    accuracy (float): right / pairs; NaN with no pair.
    pairs, right (int): the pairs and how many were answered right.
    unparsed (int): answers that could not be read (wrong).
    tie_answers, tie_references (int): how often "tie" was answered, and was the reference.
Examples:
    >>> preference = evaluate.load("metrics/preference_accuracy")
    >>> answers, truth = ["A", "tie", "b", None, "Tied"], ["A", "B", "B", "A", "tie"]
    >>> preference.compute(predictions=answers, references=truth)
    {'accuracy': 0.6, 'pairs': 5, 'right': 3, 'unparsed': 1, 'tie_answers': 2, 'tie_references': 1}
"""

ANSWERS = {"a": "a", "b": "b", "tie": "tie", "tied": "tie"}


def normalised(answer):
    """ "a", "b" or "tie" for an answer HELM reads, else None."""
    return ANSWERS.get(answer.strip().lower()) if isinstance(answer, str) else None


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class PreferenceAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            reference_urls=["https://crfm.stanford.edu/helm/", "https://arxiv.org/abs/2601.00675"],
        )

    def _compute(self, predictions, references):
        refs = [normalised(r) for r in references]
        for position, (raw, ref) in enumerate(zip(references, refs, strict=True)):
            if ref is None:
                raise ValueError(f"references must be A, B or tie: reference {raw} at position {position}")
        answers = [normalised(p) for p in predictions]
        right = int(sum(a == r for a, r in zip(answers, refs, strict=True)))
        pairs = len(refs)
        return {
            "accuracy": float(np.float64(right) / pairs) if pairs else float("nan"),
            "pairs": pairs,
            "right": right,
            "unparsed": sum(a is None for a in answers),
            "tie_answers": sum(a == "tie" for a in answers),
            "tie_references": sum(r == "tie" for r in refs),
        }
