"""The evaluate modules: hand-computed tables, HELM's definition, properties, Space files."""

import importlib.util
import itertools
import math
from pathlib import Path

import evaluate
import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from roboreward import metrics

ROOT = Path(__file__).resolve().parents[1]
MAE = metrics.load("mae")
MWR = metrics.load("mean_win_rate")
SUCCESS = metrics.load("success_accuracy")


def test_mae_hand_table():
    assert MAE.compute(predictions=[5, 4, 1], references=[5, 2, 3]) == {"mae": (0 + 2 + 2) / 3, "invalid": 0}
    # 0 = no answer: worst error for reference 2 is max(1, 3) = 3; for reference 5 it is 4
    assert MAE.compute(predictions=[0, 7], references=[2, 5]) == {"mae": 3.5, "invalid": 2}
    assert MAE.compute(predictions=[0, 4], references=[2, 5], invalid="drop") == {"mae": 1.0, "invalid": 1}
    assert math.isnan(MAE.compute(predictions=[0], references=[3], invalid="drop")["mae"])


@pytest.mark.parametrize("bad", [0, 6, -1])
def test_references_outside_the_scale_are_refused(bad):
    with pytest.raises(ValueError, match=f"reference {bad} at position 1"):
        MAE.compute(predictions=[3, 3], references=[3, bad])
    with pytest.raises(ValueError, match=f"reference {bad} at position 1"):
        SUCCESS.compute(predictions=[3, 3], references=[3, bad])
    with pytest.raises(ValueError, match="must be"):
        MAE.compute(predictions=[3], references=[3], invalid="ignore")


def test_mean_win_rate_hand_table_with_ties():
    # subset a: MAE A 0.5, B 0.5, C 2.0 -> A and B tie (1/2 each), both beat C
    # subset b: MAE A 1, B 0, C 0 -> B and C tie, both beat A
    out = MWR.compute(
        predictions=[[4, 5, 2], [2, 3, 1], [1, 2, 2]],
        references=[5, 2, 2],
        subsets=["a", "a", "b"],
        model_names=["A", "B", "C"],
    )
    assert out["subset_mae"] == {"a": {"A": 0.5, "B": 0.5, "C": 2.0}, "b": {"A": 1.0, "B": 0.0, "C": 0.0}}
    assert out["subset_win_rate"] == {
        "a": {"A": 0.75, "B": 0.75, "C": 0.0},
        "b": {"A": 0.0, "B": 0.75, "C": 0.75},
    }
    assert out["mean_win_rate"] == {"A": 0.375, "B": 0.75, "C": 0.375}


def test_sample_granularity_hand_table():
    # example 1 (ref 5): errors A 1, B 0, C 3 -> A 0.5, B 1, C 0
    # example 2 (ref 2): errors A 0, B 1, C 1 -> A 1, B 0.25, C 0.25
    # example 3 (ref 2): errors A 1, B 0, C 0 -> A 0, B 0.75, C 0.75
    out = MWR.compute(
        predictions=[[4, 5, 2], [2, 3, 1], [1, 2, 2]],
        references=[5, 2, 2],
        subsets=["a", "a", "b"],
        model_names=["A", "B", "C"],
        granularity="sample",
    )
    assert out["subset_win_rate"]["a"] == {"A": 0.75, "B": 0.625, "C": 0.125}
    assert out["subset_win_rate"]["b"] == {"A": 0.0, "B": 0.75, "C": 0.75}
    assert out["mean_win_rate"] == pytest.approx({"A": 0.5, "B": 2 / 3, "C": 1 / 3})


def test_a_single_model_has_no_win_rate():
    out = MWR.compute(predictions=[[5], [3]], references=[5, 4], subsets=["a", "b"], model_names=["only"])
    assert math.isnan(out["mean_win_rate"]["only"])
    assert out["subset_mae"] == {"a": {"only": 0.0}, "b": {"only": 1.0}}


def test_a_subset_where_only_one_model_answers():
    # subset b: A never answers. worst: A pays 4 and loses; drop: A is out, B has no opponent there.
    kwargs = dict(predictions=[[5, 4], [0, 2], [0, 3]], references=[5, 1, 1], subsets=["a", "b", "b"])
    worst = MWR.compute(**kwargs, model_names=["A", "B"])
    assert worst["subset_mae"]["b"] == {"A": 4.0, "B": 1.5}
    assert worst["mean_win_rate"] == {"A": 0.5, "B": 0.5}  # A wins a, B wins b
    dropped = MWR.compute(**kwargs, model_names=["A", "B"], invalid="drop")
    assert math.isnan(dropped["subset_mae"]["b"]["A"]) and math.isnan(dropped["subset_win_rate"]["b"]["B"])
    assert dropped["mean_win_rate"] == {"A": 1.0, "B": 0.0}  # only subset a is compared


def test_bad_arguments():
    with pytest.raises(ValueError, match="unique"):
        MWR.compute(predictions=[[5, 5]], references=[5], subsets=["a"], model_names=["x", "x"])
    with pytest.raises(ValueError, match="one prediction per model"):
        MWR.compute(predictions=[[5, 5]], references=[5], subsets=["a"], model_names=["x", "y", "z"])
    with pytest.raises(ValueError, match="granularity"):
        MWR.compute(predictions=[[5]], references=[5], subsets=["a"], model_names=["x"], granularity="task")


def helm_mean_win_rate(table: np.ndarray, references: np.ndarray, subsets: list[str]) -> np.ndarray:
    """HELM's aggregate written directly: per subset, wins over the others (ties 1/2), then the mean."""
    k = table.shape[1]
    per_subset = []
    for subset in sorted(set(subsets)):
        rows = [i for i, s in enumerate(subsets) if s == subset]
        mae = [np.mean([abs(table[i, m] - references[i]) for i in rows]) for m in range(k)]
        per_subset.append(
            [
                sum(1.0 if mae[o] > mae[m] else 0.5 if mae[o] == mae[m] else 0.0 for o in range(k) if o != m)
                / (k - 1)
                for m in range(k)
            ]
        )
    return np.mean(per_subset, axis=0)


tables = st.integers(min_value=2, max_value=5).flatmap(
    lambda k: st.tuples(
        st.lists(
            st.tuples(
                st.lists(st.integers(1, 5), min_size=k, max_size=k), st.integers(1, 5), st.sampled_from("abc")
            ),
            min_size=1,
            max_size=25,
        ),
        st.just(k),
    )
)


def _compute(rows, names, **kwargs):
    return MWR.compute(
        predictions=[r[0] for r in rows],
        references=[r[1] for r in rows],
        subsets=[r[2] for r in rows],
        model_names=names,
        **kwargs,
    )


@settings(max_examples=40, deadline=None)
@given(tables)
def test_agrees_with_helm_and_win_rates_sum_to_k_over_2(data):
    rows, k = data
    names = [f"m{i}" for i in range(k)]
    out = _compute(rows, names)
    table = np.array([r[0] for r in rows])
    expected = helm_mean_win_rate(table, np.array([r[1] for r in rows]), [r[2] for r in rows])
    assert [out["mean_win_rate"][n] for n in names] == pytest.approx(list(expected))
    for wins in out["subset_win_rate"].values():
        assert sum(wins.values()) == pytest.approx(k / 2)


@settings(max_examples=30, deadline=None)
@given(tables, st.randoms(use_true_random=False))
def test_order_of_models_does_not_matter(data, rnd):
    rows, k = data
    names = [f"m{i}" for i in range(k)]
    order = list(range(k))
    rnd.shuffle(order)
    shuffled = [([r[0][j] for j in order], r[1], r[2]) for r in rows]
    a, b = _compute(rows, names), _compute(shuffled, [names[j] for j in order])
    assert a["mean_win_rate"] == pytest.approx(b["mean_win_rate"])


@settings(max_examples=30, deadline=None)
@given(tables)
def test_a_model_worse_everywhere_does_not_change_the_ranking(data):
    rows, k = data
    names = [f"m{i}" for i in range(k)]
    before = _compute(rows, names)["mean_win_rate"]
    # the newcomer answers 0 (no answer): the worst error on every example
    worse = [([*r[0], 0], r[1], r[2]) for r in rows]
    after = _compute(worse, [*names, "worst"])["mean_win_rate"]
    for x, y in itertools.permutations(names, 2):
        if before[x] > before[y] + 1e-9:
            assert after[x] >= after[y] - 1e-9


def test_success_accuracy_hand_table():
    out = SUCCESS.compute(predictions=[5, 5, 4, 0, 5, 2], references=[5, 3, 5, 5, 5, 1])
    # said success: 1, 2, 5 -> tp 2 (1, 5), fp 1 (2); true successes 1, 3, 4, 5 -> recall 2/4
    assert out == {
        "accuracy": 3 / 6,
        "precision": 2 / 3,
        "recall": 0.5,
        "f1": pytest.approx(4 / 7),
        "invalid": 1,
    }
    assert SUCCESS.compute(predictions=[1, 2], references=[1, 2]) == {
        "accuracy": 1.0,
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "invalid": 0,
    }


def test_loading_from_the_repo_root_and_from_anywhere(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    assert evaluate.load("metrics/mae").compute(predictions=[4], references=[5]) == {"mae": 1.0, "invalid": 0}
    monkeypatch.chdir(tmp_path)
    assert metrics.load("mean_win_rate").name == "mean_win_rate"
    assert metrics.available() == ["mae", "mean_win_rate", "success_accuracy"]
    with pytest.raises(ValueError, match="unknown metric 'rmse'"):
        metrics.load("rmse")


@pytest.mark.parametrize("name", ["mae", "mean_win_rate", "success_accuracy"])
def test_each_folder_is_a_space(name):
    folder = ROOT / "metrics" / name
    front = yaml.safe_load((folder / "README.md").read_text().split("---\n")[1])
    assert front["sdk"] == "gradio" and front["app_file"] == "app.py" and "evaluate" in front["tags"]
    assert "evaluate" in (folder / "requirements.txt").read_text()
    spec = importlib.util.spec_from_file_location(f"{name}_app", folder / "app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)  # builds the interface, launches nothing
    import gradio as gr

    assert isinstance(app.demo, gr.Interface)
    assert app.compute(__import__("json").dumps(app.EXAMPLE)) == app.MODULE.compute(**app.EXAMPLE)
    with pytest.raises(gr.Error, match="not JSON"):
        app.compute("{oops")


@pytest.mark.parametrize("name", ["mae", "mean_win_rate", "success_accuracy"])
def test_docstring_examples_are_right(name):
    import doctest
    import sys

    module = sys.modules[type(metrics.load(name)).__module__]
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    for test in finder.find(module._KWARGS_DESCRIPTION, name, globs={"evaluate": _RootEvaluate()}):
        runner.run(test)
    assert runner.failures == 0 and runner.tries > 0


class _RootEvaluate:
    """`evaluate` whose load resolves metrics/<name> from the repository root, as the docs assume."""

    def load(self, path):
        return evaluate.load(str(ROOT / path))
