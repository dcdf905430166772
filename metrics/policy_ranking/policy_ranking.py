# Copyright 2026 The RoboReward toolkit authors.
# Licensed under the Apache License, Version 2.0.
"""Policy ranking: does a reward model order robot policies as their true outcomes do?"""

import datasets
import evaluate
import numpy as np

_CITATION = """\
@article{atreya2025roboarena,
  title   = {RoboArena: Distributed Real-World Evaluation of Generalist Robot Policies},
  author  = {Pranav Atreya and Karl Pertsch and Tony Lee and Moo Jin Kim and Arhan Jain and others},
  journal = {arXiv preprint arXiv:2506.18123},
  year    = {2025}
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
A reward model earns its keep if it ranks robot policies the way their real outcomes do (RoboArena
ranks policies from head-to-head real-robot evaluations). Each example is one rollout of a named
policy with the model's score and the true 1..5 reward; per policy, the mean of the model's scores
and the mean of the true rewards; then Kendall's tau-b and Spearman's rho between the two columns of
per-policy means (ties handled as scipy.stats.kendalltau and spearmanr do: tau-b, average ranks).
A missing score (None or NaN) is left out of its policy's model mean (counted in `missing`); a policy
without any score is left out of the ranking.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of float): the model's score per rollout (its expected 1..5 score, or its whole
        score); None or NaN for no answer.
    references (list of int): true scores, each in 1..5 (else ValueError naming the value and position).
    policies (list of str): the policy that made each rollout.
Returns:
    kendall_tau (float): Kendall's tau-b of the per-policy means, in [-1, 1]; NaN with fewer than two
        policies or when either column is constant.
    spearman (float): Spearman's rho (Pearson correlation of the average ranks), NaN likewise.
    num_policies (int): the policies ranked.
    policy_prediction, policy_reference (dict): policy -> mean model score, mean true score.
    missing (int): predictions that were None or NaN.
Examples:
    >>> ranking = evaluate.load("metrics/policy_ranking")
    >>> out = ranking.compute(
    ...     predictions=[4.5, 3.0, 2.0, 2.5, 1.0, None],
    ...     references=[5, 4, 2, 3, 1, 1],
    ...     policies=["pi0", "pi0", "fast", "fast", "vq", "vq"],
    ... )
    >>> out["kendall_tau"], out["spearman"], out["num_policies"], out["missing"]
    (1.0, 1.0, 3, 1)
    >>> out["policy_prediction"]
    {'fast': 2.25, 'pi0': 3.75, 'vq': 1.0}
"""

LOW, HIGH = 1, 5


def checked_references(references):
    refs = np.asarray(references, dtype=np.int64)
    bad = np.flatnonzero((refs < LOW) | (refs > HIGH))
    if bad.size:
        raise ValueError(f"references must be scores 1..5: reference {refs[bad[0]]} at position {bad[0]}")
    return refs


def kendall_tau_b(x, y):
    """(concordant - discordant) / sqrt((n0 - ties in x) * (n0 - ties in y)) over all pairs."""
    dx = np.sign(x[:, None] - x[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    upper = np.triu_indices(len(x), k=1)
    s = (dx * dy)[upper].sum()
    untied_x, untied_y = np.count_nonzero(dx[upper]), np.count_nonzero(dy[upper])
    if not untied_x or not untied_y:
        return float("nan")
    return float(s / np.sqrt(untied_x * untied_y))


def average_ranks(values):
    """Ranks 1..n, tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(x, y):
    """Pearson's correlation of the average ranks; NaN when either is constant."""
    rx, ry = average_ranks(x), average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    norm = np.sqrt((rx**2).sum() * (ry**2).sum())
    return float((rx * ry).sum() / norm) if norm > 0 else float("nan")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class PolicyRanking(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("int32")}
            ),
            reference_urls=["https://arxiv.org/abs/2506.18123", "https://arxiv.org/abs/2601.00675"],
        )

    def _compute(self, predictions, references, policies):
        refs = checked_references(references).astype(np.float64)
        if len(policies) != len(refs):
            raise ValueError(f"policies has {len(policies)} entries for {len(refs)} references")
        preds = np.asarray([np.nan if p is None else p for p in predictions], dtype=np.float64)
        names = np.asarray([str(p) for p in policies], dtype=object)
        model, truth = {}, {}
        for policy in sorted(set(names.tolist())):
            rows = names == policy
            scored = rows & ~np.isnan(preds)
            if scored.any():
                model[policy] = float(preds[scored].mean())
                truth[policy] = float(refs[rows].mean())
        x, y = np.asarray(list(model.values())), np.asarray(list(truth.values()))
        enough = len(model) >= 2
        return {
            "kendall_tau": kendall_tau_b(x, y) if enough else float("nan"),
            "spearman": spearman(x, y) if enough else float("nan"),
            "num_policies": len(model),
            "policy_prediction": model,
            "policy_reference": truth,
            "missing": int(np.isnan(preds).sum()),
        }
