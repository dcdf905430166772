"""The evaluate modules: hand-computed tables, HELM's definition, properties, loading, Space files."""

import ast
import doctest
import importlib.util
import json
import math
import shutil
import sys
from pathlib import Path

import evaluate
import gradio as gr
import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from roboreward import metrics

ROOT = Path(__file__).resolve().parents[1]
NAMES = [
    "calibration_preference",
    "mae",
    "mean_win_rate",
    "policy_ranking",
    "preference_accuracy",
    "success_accuracy",
    "success_detection",
]
MAE = metrics.load("mae")
MWR = metrics.load("mean_win_rate")
SUCCESS = metrics.load("success_accuracy")
DETECTION = metrics.load("success_detection")
RANKING = metrics.load("policy_ranking")
PREFERENCE = metrics.load("preference_accuracy")
NAN = float("nan")


def same(a, b):
    """Equal floats, NaN equal to NaN, through nested dicts."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[key], b[key]) for key in a)
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, abs=1e-12)


# --- mae ----------------------------------------------------------------------------------------


def test_mae_of_valid_scores():
    assert MAE.compute(predictions=[5, 4, 1], references=[5, 2, 3]) == {"mae": 4 / 3, "invalid": 0}


def test_an_invalid_prediction_costs_the_worst_error_for_its_reference():
    # worst error max(r - 1, 5 - r): r=1 -> 4, r=2 -> 3, r=3 -> 2, r=4 -> 3, r=5 -> 4
    out = MAE.compute(predictions=[0, None, 7, -1, 0], references=[1, 2, 3, 4, 5])
    assert out == {"mae": (4 + 3 + 2 + 3 + 4) / 5, "invalid": 5}
    assert MAE.compute(predictions=[0, 5], references=[3, 5]) == {"mae": 1.0, "invalid": 1}


def test_dropping_invalid_predictions():
    assert MAE.compute(predictions=[0, 4, 3], references=[2, 5, 3], invalid="drop") == {
        "mae": 0.5,
        "invalid": 1,
    }
    everything_dropped = MAE.compute(predictions=[0, None], references=[3, 1], invalid="drop")
    assert math.isnan(everything_dropped["mae"]) and everything_dropped["invalid"] == 2
    assert math.isnan(MAE.compute(predictions=[], references=[])["mae"])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [0, 6, -1])
def test_references_outside_the_scale_are_refused_by_value_and_position(name, bad):
    kwargs = {"predictions": [3, 3, 3], "references": [3, 4, bad]}
    if name == "mean_win_rate":
        kwargs = {"predictions": [[3], [3], [3]], "references": [3, 4, bad], "subsets": ["a"] * 3}
        kwargs["model_names"] = ["m"]
    if name == "policy_ranking":
        kwargs["policies"] = ["a", "b", "c"]
    if name == "preference_accuracy":
        kwargs = {"predictions": ["A", "B", "tie"], "references": ["A", "B", bad]}
    with pytest.raises(ValueError, match=f"reference {bad} at position 2"):
        metrics.load(name).compute(**kwargs)


def test_an_unknown_invalid_rule_is_refused():
    with pytest.raises(ValueError, match="invalid must be one of"):
        MAE.compute(predictions=[3], references=[3], invalid="ignore")
    with pytest.raises(ValueError, match="invalid must be one of"):
        MWR.compute(predictions=[[3]], references=[3], subsets=["a"], model_names=["m"], invalid="zero")


def test_lists_of_different_lengths_raise_evaluates_usual_error():
    with pytest.raises(ValueError, match=r"Mismatch in the number of predictions \(1\) and references \(2\)"):
        MAE.compute(predictions=[5], references=[5, 3])
    with pytest.raises(ValueError, match=r"Mismatch in the number of predictions \(1\) and subsets \(2\)"):
        MWR.compute(predictions=[[5]], references=[5], subsets=["a", "b"], model_names=["m"])


# --- mean win rate: hand tables -------------------------------------------------------------------

# three models A, B, C on three examples in two subsets
TABLE = {
    "predictions": [[4, 5, 2], [2, 3, 1], [1, 2, 2]],
    "references": [5, 2, 2],
    "subsets": ["a", "a", "b"],
    "model_names": ["A", "B", "C"],
}


def test_subset_granularity_hand_table_with_ties():
    # subset a: MAE A (1+0)/2, B (0+1)/2, C (3+1)/2 -> A and B tie (1/2 each), both beat C
    # subset b: MAE A 1, B 0, C 0 -> B and C tie, both beat A
    out = MWR.compute(**TABLE)
    assert out["subset_mae"] == {"a": {"A": 0.5, "B": 0.5, "C": 2.0}, "b": {"A": 1.0, "B": 0.0, "C": 0.0}}
    assert out["subset_win_rate"] == {
        "a": {"A": 0.75, "B": 0.75, "C": 0.0},
        "b": {"A": 0.0, "B": 0.75, "C": 0.75},
    }
    assert out["mean_win_rate"] == {"A": 0.375, "B": 0.75, "C": 0.375}


def test_sample_granularity_hand_table():
    # example 1 (ref 5): errors A 1, B 0, C 3 -> A 1/2, B 1, C 0
    # example 2 (ref 2): errors A 0, B 1, C 1 -> A 1, B 1/4, C 1/4
    # example 3 (ref 2): errors A 1, B 0, C 0 -> A 0, B 3/4, C 3/4
    out = MWR.compute(**TABLE, granularity="sample")
    assert out["subset_win_rate"] == {
        "a": {"A": 0.75, "B": 0.625, "C": 0.125},
        "b": {"A": 0.0, "B": 0.75, "C": 0.75},
    }
    # mean over the three examples, not over the two subsets
    assert out["mean_win_rate"] == pytest.approx({"A": 1.5 / 3, "B": 2 / 3, "C": 1 / 3})
    assert out["subset_mae"] == MWR.compute(**TABLE)["subset_mae"]


@pytest.mark.parametrize("granularity", ["subset", "sample"])
def test_a_single_model_has_no_win_rate(granularity):
    out = MWR.compute(
        predictions=[[5], [3]],
        references=[5, 4],
        subsets=["a", "b"],
        model_names=["only"],
        granularity=granularity,
    )
    assert same(out["mean_win_rate"], {"only": NAN})
    assert same(out["subset_win_rate"], {"a": {"only": NAN}, "b": {"only": NAN}})
    assert out["subset_mae"] == {"a": {"only": 0.0}, "b": {"only": 1.0}}


# subset b: A never gives a valid answer
ONE_ANSWERS = {
    "predictions": [[5, 4], [0, 2], [None, 3]],
    "references": [5, 1, 1],
    "subsets": ["a", "b", "b"],
    "model_names": ["A", "B"],
}


@pytest.mark.parametrize("granularity", ["subset", "sample"])
def test_where_only_one_model_answers_all_still_compete_under_worst(granularity):
    out = MWR.compute(**ONE_ANSWERS, granularity=granularity)
    assert out["subset_mae"]["b"] == {"A": 4.0, "B": 1.5}  # A pays the worst error, 4, twice
    assert out["subset_win_rate"] == {"a": {"A": 1.0, "B": 0.0}, "b": {"A": 0.0, "B": 1.0}}
    expected = {"A": 0.5, "B": 0.5} if granularity == "subset" else {"A": 1 / 3, "B": 2 / 3}
    assert out["mean_win_rate"] == pytest.approx(expected)


@pytest.mark.parametrize("granularity", ["subset", "sample"])
def test_where_only_one_model_answers_it_has_no_opponent_under_drop(granularity):
    out = MWR.compute(**ONE_ANSWERS, granularity=granularity, invalid="drop")
    assert same(out["subset_mae"], {"a": {"A": 0.0, "B": 1.0}, "b": {"A": NAN, "B": 1.5}})
    assert same(out["subset_win_rate"], {"a": {"A": 1.0, "B": 0.0}, "b": {"A": NAN, "B": NAN}})
    assert out["mean_win_rate"] == {"A": 1.0, "B": 0.0}  # only subset a (example 1) was a contest


def test_invalid_predictions_under_worst_and_drop():
    # one subset, references 3, 3, 1; C answers 0 on the last example, B on the first
    kwargs = {
        "predictions": [[3, 0, 4], [2, 4, 5], [2, 1, 0]],
        "references": [3, 3, 1],
        "subsets": ["s"] * 3,
        "model_names": ["A", "B", "C"],
    }
    worst = MWR.compute(**kwargs)  # errors A 0,1,1  B 2,1,0  C 1,2,4
    assert worst["subset_mae"]["s"] == {"A": 2 / 3, "B": 1.0, "C": 7 / 3}
    assert worst["subset_win_rate"]["s"] == {"A": 1.0, "B": 0.5, "C": 0.0}
    drop = MWR.compute(**kwargs, invalid="drop")  # errors A 0,1,1  B -,1,0  C 1,2,-
    assert drop["subset_mae"]["s"] == {"A": 2 / 3, "B": 0.5, "C": 1.5}
    assert drop["subset_win_rate"]["s"] == {"A": 0.5, "B": 1.0, "C": 0.0}
    # per example under drop: 1: A 1, C 0 (B out)  2: A 3/4, B 3/4, C 0  3: A 0, B 1 (C out)
    sample = MWR.compute(**kwargs, invalid="drop", granularity="sample")
    assert sample["subset_win_rate"]["s"] == pytest.approx({"A": 1.75 / 3, "B": 1.75 / 2, "C": 0.0})


def test_no_examples_means_no_comparison():
    out = MWR.compute(predictions=[], references=[], subsets=[], model_names=["A", "B"])
    assert same(out, {"mean_win_rate": {"A": NAN, "B": NAN}, "subset_mae": {}, "subset_win_rate": {}})


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unique"):
        MWR.compute(predictions=[[5, 5]], references=[5], subsets=["a"], model_names=["x", "x"])
    with pytest.raises(ValueError, match="unique and non-empty"):
        MWR.compute(predictions=[[]], references=[5], subsets=["a"], model_names=[])
    with pytest.raises(ValueError, match=r"example 1 has 2 predictions, expected one per model \(3\)"):
        MWR.compute(predictions=[[5, 5, 5], [5, 5]], references=[5, 5], subsets=["a"] * 2, model_names="xyz")
    with pytest.raises(ValueError, match="granularity"):
        MWR.compute(predictions=[[5]], references=[5], subsets=["a"], model_names=["x"], granularity="task")


# --- mean win rate: HELM's formula, written independently ------------------------------------------


def helm_column(values: list) -> list:
    """HELM's win rates for one lower-is-better column (summarize.compute_aggregate_row_win_rates).

    Walk the distinct values from worst to best; a value's wins are the rows seen before it plus half
    of the other rows sharing it. None cells take no part; a column with fewer than two values is skipped.
    """
    present = np.array([v for v in values if v is not None], dtype=float)
    if present.size < 2:
        return [None] * len(values)
    wins, seen = {}, 0
    for value, count in list(zip(*np.unique(present, return_counts=True), strict=True))[::-1]:
        wins[value] = seen + (count - 1) / 2
        seen += count
    return [None if v is None else wins[v] / (present.size - 1) for v in values]


def mean_or_none(values: list) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def helm_reference(rows: list, k: int, granularity: str, invalid: str) -> dict:
    """mean_win_rate / subset_mae / subset_win_rate as lists per model, None where undefined."""
    errors = []
    for predictions, reference, _ in rows:
        worst = max(reference - 1, 5 - reference)
        errors.append(
            [
                abs(p - reference)
                if p is not None and 1 <= p <= 5
                else (worst if invalid == "worst" else None)
                for p in predictions
            ]
        )
    subset_mae, subset_win, sample_win = {}, {}, []
    for subset in sorted({s for _, _, s in rows}):
        mine = [e for e, (_, _, s) in zip(errors, rows, strict=True) if s == subset]
        subset_mae[subset] = [mean_or_none([e[m] for e in mine]) for m in range(k)]
        if granularity == "subset":
            subset_win[subset] = helm_column(subset_mae[subset])
        else:
            columns = [helm_column(e) for e in mine]  # every example is a column
            sample_win += columns
            subset_win[subset] = [mean_or_none([c[m] for c in columns]) for m in range(k)]
    per_column = list(subset_win.values()) if granularity == "subset" else sample_win
    return {
        "mean_win_rate": [mean_or_none([c[m] for c in per_column]) for m in range(k)],
        "subset_mae": subset_mae,
        "subset_win_rate": subset_win,
    }


def as_lists(out: dict, names: list) -> dict:
    """The module's output with lists in model order and None for NaN, like `helm_reference`."""

    def row(named):
        return [None if math.isnan(named[n]) else pytest.approx(named[n], abs=1e-12) for n in names]

    return {
        "mean_win_rate": row(out["mean_win_rate"]),
        "subset_mae": {s: row(v) for s, v in out["subset_mae"].items()},
        "subset_win_rate": {s: row(v) for s, v in out["subset_win_rate"].items()},
    }


ANY_SCORE = st.integers(0, 5) | st.none()  # 0 and None: no parsable answer


def tables(min_models=1, max_models=5, scores=ANY_SCORE):
    """(rows, k): rows of (k predictions, reference, subset)."""
    return st.integers(min_models, max_models).flatmap(
        lambda k: st.tuples(
            st.lists(
                st.tuples(
                    st.lists(scores, min_size=k, max_size=k), st.integers(1, 5), st.sampled_from("abc")
                ),
                min_size=1,
                max_size=25,
            ),
            st.just(k),
        )
    )


def compute(rows, names, **kwargs):
    return MWR.compute(
        predictions=[r[0] for r in rows],
        references=[r[1] for r in rows],
        subsets=[r[2] for r in rows],
        model_names=names,
        **kwargs,
    )


GRANULARITY = st.sampled_from(["subset", "sample"])
INVALID = st.sampled_from(["worst", "drop"])


@settings(max_examples=80, deadline=None)
@given(tables(), GRANULARITY, INVALID)
def test_agrees_with_helms_formula_written_independently(data, granularity, invalid):
    rows, k = data
    names = [f"m{i}" for i in range(k)]
    out = compute(rows, names, granularity=granularity, invalid=invalid)
    assert as_lists(out, names) == helm_reference(rows, k, granularity, invalid)


@settings(max_examples=40, deadline=None)
@given(tables(min_models=2), GRANULARITY, INVALID)
def test_in_each_subset_the_win_rates_of_m_compared_models_sum_to_m_over_2(data, granularity, invalid):
    rows, k = data
    out = compute(rows, [f"m{i}" for i in range(k)], granularity=granularity, invalid=invalid)
    for wins in out["subset_win_rate"].values():
        compared = [w for w in wins.values() if not math.isnan(w)]
        if invalid == "worst":
            assert len(compared) == k
        if granularity == "subset" or invalid == "worst":  # "sample" + "drop": m varies by example
            assert sum(compared) == pytest.approx(len(compared) / 2)


@settings(max_examples=40, deadline=None)
@given(tables(), GRANULARITY, INVALID, st.randoms(use_true_random=False))
def test_the_order_of_the_models_does_not_matter(data, granularity, invalid, rnd):
    rows, k = data
    names = [f"m{i}" for i in range(k)]
    order = list(range(k))
    rnd.shuffle(order)
    shuffled = [([r[0][j] for j in order], r[1], r[2]) for r in rows]
    kwargs = {"granularity": granularity, "invalid": invalid}
    # the same numbers under the same names; dict order follows model_names
    before, after = compute(rows, names, **kwargs), compute(shuffled, [names[j] for j in order], **kwargs)
    assert same(before, after)
    assert list(after["mean_win_rate"]) == [names[j] for j in order]


def _worst_to_reference(rows):
    """Valid predictions that never hit the worst error, so that a newcomer can be worse everywhere."""
    return [([r if abs(p - r) == max(r - 1, 5 - r) else p for p in preds], r, s) for preds, r, s in rows]


@settings(max_examples=40, deadline=None)
@given(tables(min_models=2, scores=st.integers(1, 5)), GRANULARITY)
def test_a_model_worse_everywhere_does_not_change_the_others_ranking(data, granularity):
    rows, k = data
    rows = _worst_to_reference(rows)
    names = [f"m{i}" for i in range(k)]
    before = compute(rows, names, granularity=granularity)["mean_win_rate"]
    # the newcomer never answers: the worst error on every example, strictly worse than everyone
    with_newcomer = [([*preds, 0], r, s) for preds, r, s in rows]
    after = compute(with_newcomer, [*names, "newcomer"], granularity=granularity)["mean_win_rate"]
    assert after["newcomer"] == 0.0
    for x in names:
        assert after[x] >= before[x] - 1e-12  # nobody loses ground...
        for y in names:  # ...and the order among the others (ties included) stays
            assert np.sign(round(after[x] - after[y], 9)) == np.sign(round(before[x] - before[y], 9))


# --- one scoring rule: mae and mean_win_rate keep their own copies, which must agree ----------------


def module_absolute_errors(module):
    """The `absolute_errors` of a loaded evaluate module (each Hub module keeps its own copy)."""
    return sys.modules[type(module).__module__].absolute_errors


MAE_ERRORS = module_absolute_errors(MAE)
MWR_ERRORS = module_absolute_errors(MWR)

# Whole and in range; 0, None and NaN ("no parsable answer"); parsed but out of range (7, -1, 6);
# parsed but not whole (3.5, 2.25).
RULE_PREDICTIONS = [5, 3, 1, 0, None, NAN, 7, -1, 6, 3.5, 2.25]
RULE_REFERENCES = [5, 4, 3, 2, 1, 5, 3, 4, 1, 3, 2]
# (conventions, invalid) -> (errors, invalid count). The toolkit's rule charges every prediction outside
# 1..5 (or not whole) the worst error max(r - 1, 5 - r); HELM's charges None/NaN 4.0 and anything parsed,
# 0 included, |p - r|, and has no `invalid` rule.
RULE_ERRORS = {
    ("roboreward", "worst"): ([0, 1, 2, 3, 4, 4, 2, 3, 4, 2, 3], 8),
    ("roboreward", "drop"): ([0, 1, 2, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN], 8),
    ("helm", "worst"): ([0, 1, 2, 2, 4, 4, 4, 5, 5, 0.5, 0.25], 2),
    ("helm", "drop"): ([0, 1, 2, 2, 4, 4, 4, 5, 5, 0.5, 0.25], 2),
}


@pytest.mark.parametrize(("conventions", "invalid"), list(RULE_ERRORS))
def test_mae_and_mean_win_rate_charge_the_same_absolute_errors(conventions, invalid):
    expected, count = RULE_ERRORS[(conventions, invalid)]
    mae_errors, mae_count = MAE_ERRORS(RULE_PREDICTIONS, RULE_REFERENCES, invalid, conventions)
    one_model = MWR_ERRORS([[p] for p in RULE_PREDICTIONS], RULE_REFERENCES, 1, invalid, conventions)
    np.testing.assert_array_equal(mae_errors, expected)
    assert mae_count == count
    np.testing.assert_array_equal(one_model[:, 0], expected)
    # with several models, each column is scored as mae scores that model alone
    reversed_predictions = RULE_PREDICTIONS[::-1]
    two_models = MWR_ERRORS(
        [list(pair) for pair in zip(RULE_PREDICTIONS, reversed_predictions, strict=True)],
        RULE_REFERENCES,
        2,
        invalid,
        conventions,
    )
    np.testing.assert_array_equal(two_models[:, 0], expected)
    np.testing.assert_array_equal(
        two_models[:, 1], MAE_ERRORS(reversed_predictions, RULE_REFERENCES, invalid, conventions)[0]
    )


# Any answer a parser could return: no answer (None, NaN), a whole number near the scale, or any float.
PARSED_ANSWER = st.none() | st.just(NAN) | st.integers(-3, 9) | st.floats(-10, 10)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(PARSED_ANSWER, st.integers(1, 5)), max_size=20),
    st.sampled_from(["roboreward", "helm"]),
    st.sampled_from(["worst", "drop"]),
)
def test_mae_and_mean_win_rate_agree_on_any_answers(rows, conventions, invalid):
    predictions, references = [p for p, _ in rows], [r for _, r in rows]
    mae_errors, _ = MAE_ERRORS(predictions, references, invalid, conventions)
    mwr_errors = MWR_ERRORS([[p] for p in predictions], references, 1, invalid, conventions)[:, 0]
    # mean_win_rate rounds HELM's fractional errors to 1e-9 so that equal means tie; nothing else differs
    np.testing.assert_allclose(mwr_errors, mae_errors, rtol=0, atol=1e-9, equal_nan=True)
    assert np.array_equal(np.isnan(mwr_errors), np.isnan(mae_errors))


# --- success accuracy ---------------------------------------------------------------------------------


def test_success_accuracy_hand_table():
    # said success (5): examples 1, 2, 5; true success: 1, 3, 4, 5 -> tp 2 (1, 5), fp 1 (2), fn 2 (3, 4)
    # example 4 (no answer) is a failure prediction: a false negative; example 6 (2 vs 1) a true negative
    out = SUCCESS.compute(predictions=[5, 5, 4, 0, 5, 2], references=[5, 3, 5, 5, 5, 1])
    assert out == {
        "accuracy": 3 / 6,
        "precision": 2 / 3,
        "recall": 2 / 4,
        "f1": pytest.approx(4 / 7),
        "invalid": 1,
    }


def test_an_invalid_prediction_is_a_failure_prediction():
    # no answer on a failed episode is right, on a success it is a false negative
    out = SUCCESS.compute(predictions=[0, None, 5], references=[1, 5, 5])
    assert out == {
        "accuracy": 2 / 3,
        "precision": 1.0,
        "recall": 0.5,
        "f1": pytest.approx(2 / 3),
        "invalid": 2,
    }


def test_success_accuracy_zero_divisions_are_zero():
    nothing_to_find = SUCCESS.compute(predictions=[1, 2], references=[1, 2])
    assert nothing_to_find == {"accuracy": 1.0, "precision": 0.0, "recall": 0.0, "f1": 0.0, "invalid": 0}
    never_says_success = SUCCESS.compute(predictions=[4, 0], references=[5, 5])
    assert never_says_success == {"accuracy": 0.0, "precision": 0.0, "recall": 0.0, "f1": 0.0, "invalid": 1}
    assert math.isnan(SUCCESS.compute(predictions=[], references=[])["accuracy"])


# --- macro MAE: HELM's headline ----------------------------------------------------------------------


def test_macro_mae_hand_table():
    # subset a: errors 0, 2, 4 -> 2.0; subset b: error 0 -> 0.0; all rows: 6 / 4 = 1.5; macro: 1.0
    out = MAE.compute(predictions=[5, 3, 1, 2], references=[5, 5, 5, 2], subsets=["a", "a", "a", "b"])
    assert out == {"mae": 1.5, "invalid": 0, "subset_mae": {"a": 2.0, "b": 0.0}, "macro_mae": 1.0}


def test_macro_mae_under_helm_and_drop_rules():
    # helm: None costs 4.0, 6 against 3 costs 3.0: subset x (4.0 + 3.0) / 2, subset y 0.5
    helm = MAE.compute(
        predictions=[None, 6, 2.5], references=[2, 3, 2], subsets=["x", "x", "y"], conventions="helm"
    )
    assert helm["subset_mae"] == {"x": 3.5, "y": 0.5} and helm["macro_mae"] == 2.0 and helm["mae"] == 7.5 / 3
    # drop: a subset whose every prediction was dropped has no MAE and is left out of the mean
    drop = MAE.compute(predictions=[0, 4, 5], references=[2, 3, 5], subsets=["x", "y", "y"], invalid="drop")
    assert math.isnan(drop["subset_mae"]["x"]) and drop["subset_mae"]["y"] == 0.5 and drop["macro_mae"] == 0.5
    with pytest.raises(ValueError, match="subsets has 1 entries for 2 references"):
        MAE.compute(predictions=[1, 2], references=[1, 2], subsets=["x"])


#: HELM's RoboRewardBench run group "core_scenarios" (schema_video.yaml on stanford-crfm/helm's `rob`
#: branch, after commit ce0116b0b "average MAE"): robo_arena and 22 OXE subsets, aggregated with the
#: "mean" strategy, which summarize.py's compute_aggregate_row_means computes as the mean of the row's
#: non-null cells and heads "Mean Abs. Error". The per-subset MAEs below are a fixed table in
#: quarters (HELM's published per-model numbers live in its results bucket, not in its repository),
#: with one subset not run (None), as a HELM table can have.
HELM_SUBSETS = [
    "robo_arena", "austin_sirius_dataset_converted_externally_to_rlds", "berkeley_autolab_ur5",
    "berkeley_fanuc_manipulation", "berkeley_mvp_converted_externally_to_rlds",
    "berkeley_rpt_converted_externally_to_rlds", "bridge", "cmu_play_fusion",
    "dlr_edan_shared_control_converted_externally_to_rlds", "droid", "fractal20220817_data",
    "iamlab_cmu_pickup_insert_converted_externally_to_rlds", "jaco_play",
    "kaist_nonprehensile_converted_externally_to_rlds", "roboturk",
    "stanford_hydra_dataset_converted_externally_to_rlds", "taco_play",
    "tokyo_u_lsmo_converted_externally_to_rlds", "ucsd_kitchen_dataset_converted_externally_to_rlds",
    "ucsd_pick_and_place_dataset_converted_externally_to_rlds",
    "utokyo_pr2_tabletop_manipulation_converted_externally_to_rlds",
    "utokyo_xarm_bimanual_converted_externally_to_rlds", "viola",
]  # fmt: skip
HELM_TABLE = {
    "model-x": [1.25, 0.5, 0.75, 0.25, 1.0, 0.5, 0.75, 1.5, 0.25, 1.0, 0.5, 0.75, 0.0, 1.25, 0.5, 0.75,
                1.0, 0.25, 0.5, 0.75, 2.0, 0.5, None],
    "model-y": [0.75, 1.0, 1.25, 0.5, 0.25, 1.75, 0.5, 1.0, 0.75, 0.5, 1.25, 0.25, 1.0, 0.75, 0.5, 1.5,
                0.25, 0.75, 1.0, 0.5, 0.25, 1.0, 0.75],
}  # fmt: skip


def _helm_row_mean(cells):
    """HELM's summarize.compute_aggregate_row_means for one row, as written there."""
    total, count = 0.0, 0
    for cell in cells:
        if cell is not None:
            total += float(cell)
            count += 1
    return None if count == 0 else total / count


def test_macro_mae_reproduces_helms_headline_from_its_per_subset_numbers():
    for cells in HELM_TABLE.values():
        # four examples per subset run with reference 1 whose errors sum to 4 * MAE: the subset's MAE
        predictions, subsets = [], []
        for subset, value in zip(HELM_SUBSETS, cells, strict=True):
            if value is not None:
                errors, left = [], round(value * 4)  # e.g. 1.25: errors 4, 1, 0, 0
                for _ in range(4):
                    errors.append(min(left, 4))
                    left -= errors[-1]
                predictions += [1 + e for e in errors]
                subsets += [subset] * 4
        out = MAE.compute(predictions=predictions, references=[1] * len(predictions), subsets=subsets)
        assert out["subset_mae"] == {s: v for s, v in zip(HELM_SUBSETS, cells, strict=True) if v is not None}
        assert out["macro_mae"] == pytest.approx(_helm_row_mean(cells), abs=1e-12)
    assert _helm_row_mean(HELM_TABLE["model-x"]) == 16.5 / 22 == 0.75
    assert _helm_row_mean(HELM_TABLE["model-y"]) == pytest.approx(18.0 / 23, abs=1e-12)


# --- success detection ----------------------------------------------------------------------------------


def test_success_detection_hand_table():
    # successes score 0.9 and 0.3; failures 0.8, 0.8 and no answer (below everything):
    # ROC: 0.9 beats all 3 failures, 0.3 beats only the missing one -> 4 / 6
    # PR: thresholds 0.9 (P 1/1, R 1/2), 0.8 (P 1/3, R 1/2), 0.3 (P 2/4, R 2/2) -> 1/2 * 1 + 1/2 * 1/2
    out = DETECTION.compute(predictions=[0.9, 0.8, 0.3, 0.8, None], references=[5, 3, 5, 1, 2])
    assert out == {"roc_auc": 4 / 6, "pr_auc": 0.75, "positives": 2, "negatives": 3, "missing": 1}


def test_success_detection_ties_count_one_half():
    # one success and one failure at the same score: ROC 1/2; PR: one threshold, P 1/2, R 1 -> 1/2
    out = DETECTION.compute(predictions=[4, 4], references=[5, 2])
    assert out["roc_auc"] == 0.5 and out["pr_auc"] == 0.5
    perfect = DETECTION.compute(predictions=[5, 4, 1], references=[5, 4, 1])
    assert perfect["roc_auc"] == 1.0 and perfect["pr_auc"] == 1.0


def test_success_detection_without_both_classes_is_nan():
    only_failures = DETECTION.compute(predictions=[0.1, 0.2], references=[1, 4])
    assert math.isnan(only_failures["roc_auc"]) and math.isnan(only_failures["pr_auc"])
    only_successes = DETECTION.compute(predictions=[0.1, 0.2], references=[5, 5])
    assert math.isnan(only_successes["roc_auc"]) and only_successes["pr_auc"] == 1.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.sampled_from([None, 0.0, 0.2, 0.5, 0.7, 1.0])), min_size=2))
def test_success_detection_agrees_with_scikit_learn(rows):
    skm = pytest.importorskip("sklearn.metrics")
    refs, preds = [r for r, _ in rows], [p for _, p in rows]
    truth = [r == 5 for r in refs]
    out = DETECTION.compute(predictions=preds, references=refs)
    scores = [-1.0 if p is None else p for p in preds]  # no answer: below every score
    if any(truth) and not all(truth):
        assert out["roc_auc"] == pytest.approx(skm.roc_auc_score(truth, scores), abs=1e-12)
    if any(truth):
        assert out["pr_auc"] == pytest.approx(skm.average_precision_score(truth, scores), abs=1e-12)


# --- policy ranking ---------------------------------------------------------------------------------


def test_policy_ranking_hand_table():
    # per policy (model mean, true mean): fast (2.25, 2.5), pi0 (3.75, 4.5), vq (1.0, 1.0; None left out)
    out = RANKING.compute(
        predictions=[4.5, 3.0, 2.0, 2.5, 1.0, None],
        references=[5, 4, 2, 3, 1, 1],
        policies=["pi0", "pi0", "fast", "fast", "vq", "vq"],
    )
    assert out == {
        "kendall_tau": 1.0,
        "spearman": 1.0,
        "num_policies": 3,
        "policy_prediction": {"fast": 2.25, "pi0": 3.75, "vq": 1.0},
        "policy_reference": {"fast": 2.5, "pi0": 4.5, "vq": 1.0},
        "missing": 1,
    }


def test_policy_ranking_with_a_swap_and_a_tie():
    # model means a 3, b 2, c 2, d 1; true means a 4, b 3, c 5, d 1
    # pairs (model sign, true sign): ab ++, ac +-, ad ++, bc 0+, bd ++, cd ++ -> concordant 4, discordant 1
    # tau-b = 3 / sqrt(5 * 6); ranks model (4, 2.5, 2.5, 1), truth (3, 2, 4, 1), centred (1.5, 0, 0, -1.5)
    # and (0.5, -0.5, 1.5, -1.5): spearman = (0.75 + 2.25) / sqrt(4.5 * 5)
    out = RANKING.compute(predictions=[3, 2, 2, 1], references=[4, 3, 5, 1], policies=["a", "b", "c", "d"])
    assert out["kendall_tau"] == pytest.approx(3 / math.sqrt(30), abs=1e-12)
    assert out["spearman"] == pytest.approx(3 / math.sqrt(22.5), abs=1e-12)
    assert out["num_policies"] == 4


def test_policy_ranking_needs_two_policies_and_a_spread():
    one = RANKING.compute(predictions=[3, 4], references=[3, 4], policies=["a", "a"])
    assert math.isnan(one["kendall_tau"]) and math.isnan(one["spearman"]) and one["num_policies"] == 1
    flat = RANKING.compute(predictions=[3, 3], references=[2, 4], policies=["a", "b"])
    assert math.isnan(flat["kendall_tau"]) and math.isnan(flat["spearman"])
    with pytest.raises(ValueError, match="policies has 1 entries for 2 references"):
        RANKING.compute(predictions=[3, 3], references=[2, 4], policies=["a"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 5), st.sampled_from("abcde")), min_size=2))
def test_policy_ranking_agrees_with_scipy(rows):
    stats = pytest.importorskip("scipy.stats")
    out = RANKING.compute(
        predictions=[p for p, _, _ in rows],
        references=[r for _, r, _ in rows],
        policies=[k for _, _, k in rows],
    )
    x, y = list(out["policy_prediction"].values()), list(out["policy_reference"].values())
    if len(x) < 2 or len(set(x)) < 2 or len(set(y)) < 2:
        assert math.isnan(out["kendall_tau"]) and math.isnan(out["spearman"])
        return
    assert out["kendall_tau"] == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
    assert out["spearman"] == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)


# --- preference accuracy (HELM's A / B / tie) -----------------------------------------------------------


def test_preference_accuracy_hand_table_ties_as_helm_counts_them():
    # right: A=A, b=B (any case), Tied=tie; wrong: tie where B is better, no answer where A is
    out = PREFERENCE.compute(
        predictions=["A", "tie", "b", None, "Tied"], references=["A", "B", "B", "A", "tie"]
    )
    assert out == {
        "accuracy": 0.6,
        "pairs": 5,
        "right": 3,
        "unparsed": 1,
        "tie_answers": 2,
        "tie_references": 1,
    }
    # "ANSWER: A" is not an answer here: the caller parses it first (rubric.parse_preference_helm)
    assert PREFERENCE.compute(predictions=["ANSWER: A", "tie"], references=["A", "tied"])["right"] == 1
    assert math.isnan(PREFERENCE.compute(predictions=[], references=[])["accuracy"])


def test_preference_both_modes_on_one_table():
    from roboreward.bench.quality import PreferencePair, direct_preference_entry, helm_preference_entry

    # rows' scores 5, 3, 3, 0 (no answer); pairs (0, 1) A better, (1, 2) tie, (2, 0) B better, (3, 1) tie
    pairs = [
        PreferencePair(0, 1, "A"),
        PreferencePair(1, 2, "tie"),
        PreferencePair(2, 0, "B"),
        PreferencePair(3, 1, "tie"),
    ]
    scores = [5, 3, 3, 0]
    # from scores: A (right), tie (right: equal scores on a tie), B (right), None (no score: wrong)
    from_scores = helm_preference_entry(pairs, scores, metric=PREFERENCE)
    assert from_scores == {
        "accuracy": 0.75,
        "pairs": 4,
        "right": 3,
        "unparsed": 1,
        "tie_answers": 1,
        "tie_references": 2,
    }
    # asked: HELM's parser reads "B", "tie", nothing ("B." is no answer), "A" -> right on pair 1 only
    said = {0: "Policy A looks worse.\nANSWER: B", 1: "ANSWER: tie", 2: "B.", 3: "ANSWER: A"}
    entry = direct_preference_entry(pairs, lambda pair: said[pairs.index(pair)], scores, metric=PREFERENCE)
    assert entry["direct"] == {
        "accuracy": 0.25,
        "pairs": 4,
        "right": 1,
        "unparsed": 1,
        "tie_answers": 1,
        "tie_references": 2,
    }
    assert entry["from_scores"] == from_scores
    assert [a["output"] for a in entry["answers"]] == list(said.values())


# --- loading --------------------------------------------------------------------------------------------


def test_evaluate_loads_the_modules_by_relative_and_absolute_path(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert evaluate.load("metrics/mae").compute(predictions=[4], references=[5]) == {"mae": 1.0, "invalid": 0}
    absolute = evaluate.load(str(ROOT / "metrics" / "mean_win_rate"))
    assert absolute.compute(**TABLE)["mean_win_rate"] == {"A": 0.375, "B": 0.75, "C": 0.375}


def test_roboreward_loads_a_module_from_any_working_directory(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    module = metrics.load("mean_win_rate")
    assert module.name == "mean_win_rate"
    assert module.compute(**TABLE)["mean_win_rate"] == {"A": 0.375, "B": 0.75, "C": 0.375}
    assert metrics.available() == NAMES


def test_an_unknown_metric_lists_the_available_ones():
    listed = (
        "calibration_preference, mae, mean_win_rate, policy_ranking, preference_accuracy, success_accuracy, "
        "success_detection"
    )
    with pytest.raises(ValueError, match=rf"unknown metric 'rmse'.*: {listed}"):
        metrics.load("rmse")


def test_a_missing_metrics_folder_says_why(monkeypatch, tmp_path):
    monkeypatch.setattr(metrics, "METRICS_DIR", tmp_path / "site-packages" / "metrics")
    with pytest.raises(FileNotFoundError, match=r"roboreward/_data/metrics.*pip install -e \."):
        metrics.load("mae")


@pytest.mark.parametrize("name", NAMES)
def test_docstring_examples_run_and_are_right(name, monkeypatch):
    monkeypatch.chdir(ROOT)  # the examples load "metrics/<name>" from the repository root
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    parser = doctest.DocTestParser()
    test = parser.get_doctest(metrics.load(name).inputs_description, {"evaluate": evaluate}, name, None, 0)
    runner.run(test)
    assert runner.tries > 0 and runner.failures == 0


def test_the_loaders_own_examples_are_right():
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner()
    for test in finder.find(metrics):
        runner.run(test)
    assert runner.tries >= 2 and runner.failures == 0


# --- Space-ready folders --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_each_module_is_self_contained(name):
    """numpy, datasets and evaluate only, one import per line (evaluate's import check reads them)."""
    tree = ast.parse((ROOT / "metrics" / name / f"{name}.py").read_text())
    imports = [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]
    assert all(isinstance(node, ast.Import) and len(node.names) == 1 for node in imports)
    assert {node.names[0].name for node in imports} == {"datasets", "evaluate", "numpy"}


@pytest.mark.parametrize("name", NAMES)
def test_each_readme_is_a_space_card(name):
    folder = ROOT / "metrics" / name
    text = (folder / "README.md").read_text()
    _, front, card = text.split("---\n", 2)
    meta = yaml.safe_load(front)
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and meta["sdk_version"] == "6.31.0"
    assert {"evaluate", "metric"} <= set(meta["tags"]) and meta["title"] and meta["description"]
    for section in (
        "## What it measures",
        "### Inputs",
        "### Output",
        "## Limitations and bias",
        "## Citation",
    ):
        assert section in card
    assert "2601.00675" in card
    assert ("2211.09110" in card) == (name == "mean_win_rate")
    assert {"evaluate", "numpy", "gradio"} <= {
        line.split(">")[0].split("=")[0].strip()
        for line in (folder / "requirements.txt").read_text().splitlines()
    }


def _import_app(path: Path, module_name: str):
    spec = importlib.util.spec_from_file_location(module_name, path)
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)  # loads the metric and builds the interface; launches nothing
    return app


@pytest.mark.parametrize("name", NAMES)
def test_each_app_builds_its_interface_without_launching(name):
    app = _import_app(ROOT / "metrics" / name / "app.py", f"{name}_app")
    assert isinstance(app.demo, gr.Blocks) and isinstance(app.demo, gr.Interface)
    assert app.MODULE.name == name
    assert app.compute(json.dumps(app.EXAMPLE)) == app.MODULE.compute(**app.EXAMPLE)
    with pytest.raises(gr.Error, match="not JSON"):
        app.compute("{oops")
    with pytest.raises(gr.Error, match="JSON object"):
        app.compute("[1, 2]")
    bad = "9" if name == "preference_accuracy" else 9  # its references are text
    with pytest.raises(gr.Error, match="reference 9 at position 0"):
        app.compute(json.dumps({**app.EXAMPLE, "references": [bad, *app.EXAMPLE["references"][1:]]}))


def test_a_space_app_works_whatever_its_folder_is_called(tmp_path):
    # a Space checks the repository out as /home/user/app: the folder is not named after the metric
    shutil.copytree(ROOT / "metrics" / "mae", tmp_path / "app")
    app = _import_app(tmp_path / "app" / "app.py", "renamed_mae_app")
    assert app.MODULE.name == "mae"
    assert app.compute(json.dumps(app.EXAMPLE)) == {"mae": 1.0, "invalid": 1}
