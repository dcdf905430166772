"""Does the reward model help? The PushT imitation experiment (`roboreward.apps.imitation`) at reduced size:
the score -> weight map, the intervals, behaviour cloning, and the pipeline's shape end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

pytest.importorskip("gym_pusht")

from roboreward.apps.demo import DemoConfig
from roboreward.apps.imitation import (
    SELECTIONS,
    ImitationConfig,
    bootstrap_mean_ci,
    evaluate_policy,
    read_lerobot_steps,
    run_imitation,
    train_bc,
    wilson_interval,
)
from roboreward.cli import main
from roboreward.sim.pusht import write_pusht_dataset


def test_the_weights_are_annotates_exponential_on_the_rubric_scale():
    from roboreward.apps.frame_signals import episode_weights

    raw = [1.0, math.exp(-1), math.exp(-4)]  # a sure 5, a sure 4, a sure 1 at temperature 1
    assert episode_weights([5.0, 4.0, 1.0], 1.0) == pytest.approx([3 * w / sum(raw) for w in raw])
    low = math.exp(-4)  # a sure 3 at temperature 0.5
    assert episode_weights([3.0, 5.0], 0.5) == pytest.approx([2 * low / (1 + low), 2 / (1 + low)])
    with pytest.raises(ValueError, match="temperature must be above 0"):
        episode_weights([5.0], 0.0)


def test_intervals():
    # Wilson 95%: 0 of 10 -> (0, 0.27754); 5 of 10 -> (0.2366, 0.7634)
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.277540, abs=1e-6))
    low, high = wilson_interval(5, 10)
    assert (low, high) == (pytest.approx(0.23659, abs=1e-5), pytest.approx(0.76341, abs=1e-5))
    with pytest.raises(ValueError, match="need 0 <= successes <= n and n > 0, got 3 of 2"):
        wilson_interval(3, 2)
    assert bootstrap_mean_ci([0.5] * 4) == (0.5, 0.5)
    low, high = bootstrap_mean_ci([0.0, 1.0] * 10, seed=3)
    assert low < 0.5 < high and bootstrap_mean_ci([0.0, 1.0] * 10, seed=3) == (low, high)


def test_config_refuses_bad_values_naming_them():
    with pytest.raises(ValueError, match="keep_min_score"):
        ImitationConfig(keep_min_score=6)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        ImitationConfig(temperature=0.0)
    with pytest.raises(ValueError, match="applies to --env pusht only"):
        DemoConfig(model="teetone/RoboReward-4B")


def test_bc_reads_the_lerobot_steps_and_is_deterministic(tmp_path):
    root = write_pusht_dataset(tmp_path / "pool", episodes=2, seed=0, max_steps=20)
    steps = read_lerobot_steps(root)
    assert sorted(steps) == [0, 1]
    info = [json.loads(line) for line in (root / "meta" / "episodes.jsonl").read_text().splitlines()]
    for episode in info:  # one state-action pair per step: the frames less the last
        states, actions = steps[episode["episode_index"]]
        assert states.shape == (episode["length"] - 1, 5) and actions.shape == (episode["length"] - 1, 2)
    policy = train_bc(list(steps.values()), weights=[1.0, 0.5], epochs=2, seed=0)
    again = train_bc(list(steps.values()), weights=[1.0, 0.5], epochs=2, seed=0)
    state = steps[0][0][3]
    action = policy(state)
    assert action.dtype == np.float32 and action.shape == (2,) and np.array_equal(action, again(state))
    assert np.hypot(*(action - state[:2])) <= 40.0 + 1e-3  # at most MAX_REACH from the agent
    result = evaluate_policy(policy, episodes=2, max_steps=5, seed=0)
    assert len(result["coverage"]) == 2 and result["success_ci"][0] == 0.0
    assert result["coverage_ci"][0] <= result["mean_coverage"] <= result["coverage_ci"][1]
    with pytest.raises(ValueError, match="2 weights for 1 demonstrations"):
        train_bc([steps[0]], weights=[1.0, 1.0])


def _reduced(out, model) -> ImitationConfig:
    # An untrained tiny model annotates (no training: the slow CLI test trains one); five short
    # episodes (one per skill), the threshold at 2 so that the truth keeps some of them.
    return ImitationConfig(
        out=str(out),
        pool_episodes=5,
        eval_episodes=3,
        max_steps=80,
        model=str(model),
        keep_min_score=2,
        bc_epochs=10,
        bc_seeds=2,
        device="cpu",
    )


@pytest.fixture(scope="module")
def reduced_run(tmp_path_factory, tiny_vlm_dir):
    out = tmp_path_factory.mktemp("imitation") / "pusht_demo"
    return out, run_imitation(_reduced(out, tiny_vlm_dir))


@pytest.mark.slow  # about 10 s of CPU (40 s on the shared machine)
def test_the_pipeline_at_reduced_size_oracle_at_least_as_good_as_no_filter(reduced_run):
    out, results = reduced_run
    assert list(results["policies"]) == list(SELECTIONS)
    truth = [json.loads(line) for line in (out / "sources" / "pusht_pool" / "sim_truth.jsonl").open()]
    oracle = sorted(int(t["episode_id"]) for t in truth if t["score"] >= 2)
    assert 0 < len(oracle) < 5 and results["kept"]["oracle"] == len(oracle)
    assert results["policies"]["oracle keeps"]["episodes"] == oracle
    assert results["policies"]["all"]["episodes"] == list(range(5))
    weights = results["policies"]["reward model weights"]["weights"]
    # annotate's weights: exp(E[score] - 5), normalised to mean 1 over the pool
    assert len(weights) == 5 and sum(weights) == pytest.approx(5, abs=1e-5)
    assert max(weights) / min(weights) <= math.exp(4) + 1e-6
    kept = results["kept"]["reward_model"]
    annotate_report = json.loads((out / "annotate" / "report.json").read_text())
    assert sum(annotate_report["score_counts"][str(k)] for k in range(2, 6)) == kept
    if kept:  # read from annotate's filtered copy; the random subset has its size
        assert results["policies"]["reward model keeps"]["demos"] == kept
        assert results["policies"]["random subset"]["demos"] == kept
    else:  # the random subset is the oracle's control instead
        assert results["policies"]["reward model keeps"]["skipped"] == "no demonstrations selected"
        assert results["policies"]["random subset"]["demos"] == len(oracle)
    for name, row in results["policies"].items():
        if row.get("skipped"):
            continue
        assert len(row["coverage"]) == 6 and len(row["success"]) == 6, name  # 2 policies x 3 episodes
        assert row["coverage_ci"][0] <= row["mean_coverage"] <= row["coverage_ci"][1], name
        assert 0.0 <= row["success_ci"][0] <= row["success_rate"] <= row["success_ci"][1] <= 1.0, name
    rm = results["reward_model"]
    assert rm["episodes"] == 5 and rm["mae"] >= 0 and sum(rm["true_counts"].values()) == 5
    assert set(rm["by_skill"]) == {"1.0", "0.9", "0.75", "0.5", "0.0"}
    # The claim the experiment rests on, on this fixed seed: the truth's filter does not hurt.
    assert results["policies"]["oracle keeps"]["mean_coverage"] >= results["policies"]["all"]["mean_coverage"]
    table = (out / "imitation.md").read_text()
    assert all(f"| {name} |" in table for name in SELECTIONS)
    assert json.loads((out / "imitation.json").read_text()) == json.loads(json.dumps(results))
    assert (out / "coverage_by_selection.png").stat().st_size > 1000


@pytest.mark.slow
def test_the_pipeline_is_deterministic(reduced_run, tiny_vlm_dir, tmp_path):
    out, results = reduced_run
    results = json.loads(json.dumps(results))
    again = json.loads(json.dumps(run_imitation(_reduced(out, tiny_vlm_dir))))
    # The same config, the same numbers: every policy, the reward model's weights included (the
    # H.264 bytes of the same frames no longer vary between runs: x264's mbtree is off, see video.py).
    for name in ("all", "reward model keeps", "reward model weights", "oracle keeps", "random subset"):
        assert again["policies"][name] == results["policies"][name], name
    assert again["kept"] == results["kept"]


@pytest.mark.slow
def test_demo_env_pusht_trains_a_reward_model_and_reports(tmp_path, capsys):
    out = tmp_path / "demo_pusht"
    argv = ["demo", "--env", "pusht", "--out", str(out), "--pusht-episodes", "10", "--eval-episodes", "2"]
    argv += ["--train-steps", "3", "--model-size", "tiny", "--keep-min-score", "2"]
    assert main(argv) == 0
    results = json.loads((out / "imitation.json").read_text())
    assert results["model"] == "reward-model (trained here)" and results["config"]["train_steps"] == 3
    assert (out / "reward-model" / "training_summary.json").is_file()
    assert "[5/5]" in capsys.readouterr().out
