"""PushT (the [pusht] extra): rollouts' truth is the env's own, the LeRobot layout reads back, the
episodic reward wrapper pays once per episode. Skipped cleanly without gym-pusht."""

from __future__ import annotations

import json

import datasets
import numpy as np
import pytest

pytest.importorskip("gym_pusht")

from roboreward.apps.rl import EpisodicRewardWrapper
from roboreward.cli import main
from roboreward.episode import Episode
from roboreward.models.local import ScoreResult
from roboreward.sim.pusht import (
    PUSHT_ENV_ID,
    PUSHT_TASK,
    make_pusht_env,
    pusht_truth,
    rollout_pusht,
    scripted_push,
)
from roboreward.sources.lerobot.reader import LeRobotSource


class _Recorder:
    """Wraps the env's step to keep its last info: the truth must equal what the env said."""

    def __init__(self, env):
        self.env, self.last = env, None
        original = env.step

        def step(action):
            result = original(action)
            self.last = result[4]
            return result

        env.step = step


def test_rollout_truth_is_the_envs_coverage_and_success_at_the_final_step():
    env = make_pusht_env(max_steps=12)
    recorder = _Recorder(env)
    for index, skill in enumerate((1.0, 0.0)):
        rollout = rollout_pusht(env, index, skill, seed=1)
        assert rollout.truth["coverage"] == round(float(recorder.last["coverage"]), 12)
        assert rollout.truth["success"] == bool(recorder.last["is_success"])
        assert rollout.truth == pusht_truth(recorder.last["coverage"], recorder.last["is_success"])
        assert rollout.frames.shape == (13, 96, 96, 3) and len(rollout.actions) == 12
    again = rollout_pusht(env, 1, 0.0, seed=1)
    # Deterministic (the reset frame aside: gym-pusht draws the previous episode's last action on it)
    assert again.truth == rollout.truth and np.array_equal(again.frames[1:], rollout.frames[1:])


def test_truth_bins_follow_the_rubric_and_the_success_flag():
    assert pusht_truth(0.0, False) == {"coverage": 0.0, "progress": 0.0, "score": 1, "success": False}
    assert pusht_truth(0.475, False)["score"] == 3 and pusht_truth(0.475, False)["progress"] == 0.5
    assert pusht_truth(0.94, False)["score"] == 4
    assert pusht_truth(0.95, False)["score"] == 4  # not above the threshold: no success, no 5
    assert pusht_truth(0.97, True) == {"coverage": 0.97, "progress": 1.0, "score": 5, "success": True}


def test_scripted_policy_skill_grades_random_actions():
    state = np.array([100.0, 100.0, 300.0, 300.0, 0.0])
    expert = [scripted_push(state, np.random.default_rng(i), 1.0) for i in range(5)]
    assert all(np.allclose(a, expert[0]) for a in expert)  # skill 1: always the pusher
    random = [scripted_push(state, np.random.default_rng(i), 0.0) for i in range(5)]
    assert len({tuple(a) for a in random}) == 5


def test_cli_sim_pusht_writes_a_lerobot_dataset_with_truth(tmp_path, capsys):
    out = tmp_path / "pusht"
    assert main(["sim", "--env", "pusht", "--out", str(out), "--episodes", "2", "--seed", "0"]) == 0
    truth = [json.loads(line) for line in (out / "sim_truth.jsonl").read_text().splitlines()]
    assert [t["skill"] for t in truth] == [1.0, 0.9]
    env = make_pusht_env(max_steps=300)
    for t in truth:
        expected = rollout_pusht(env, int(t["episode_id"]), t["skill"], seed=0).truth
        assert {k: t[k] for k in expected} == expected
    episodes = [e for e in LeRobotSource(out).episodes() if isinstance(e, Episode)]
    assert [e.task for e in episodes] == [PUSHT_TASK] * 2
    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["total_frames"] == sum(
        json.loads(line)["length"] for line in (out / "meta" / "episodes.jsonl").read_text().splitlines()
    )


class _StubReward:
    def __init__(self):
        self.calls = 0

    def score(self, frames, task, fps=None):
        self.calls += 1
        assert task == PUSHT_TASK and frames.ndim == 4
        return ScoreResult(score=4, probs=(0.0, 0.0, 0.2, 0.6, 0.2), expected=4.0, reward=0.75)


def test_wrapper_pays_the_reward_once_per_episode_on_pusht():
    import gymnasium as gym

    env = gym.make(PUSHT_ENV_ID, obs_type="state", render_mode="rgb_array", max_episode_steps=6)
    stub = _StubReward()
    wrapped = EpisodicRewardWrapper(env, stub, task=PUSHT_TASK, max_frames=4)
    for episode in range(2):
        wrapped.reset(seed=episode)
        rewards, done = [], False
        while not done:
            _, reward, terminated, truncated, info = wrapped.step(wrapped.action_space.sample())
            rewards.append(reward)
            done = terminated or truncated
        assert stub.calls == episode + 1
        assert rewards[:-1] == [0.0] * (len(rewards) - 1) and rewards[-1] == 0.75
        assert info["roboreward"]["score"] == 4 and "coverage" in info


def test_dsrl_example_runs_on_pusht(monkeypatch, capsys):
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "dsrl_style.py"
    spec = importlib.util.spec_from_file_location("dsrl_style_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    monkeypatch.setattr(sys, "argv", [str(path), "--env", "pusht", "--episodes", "2", "--max-frames", "4"])
    example.main()
    out = capsys.readouterr().out
    assert len([line for line in out.splitlines() if PUSHT_TASK in line]) == 2 and "2 episodes in" in out


def test_skill_grades_the_outcome_an_expert_brings_the_t_onto_the_target_random_does_not():
    env = make_pusht_env(max_steps=150)
    expert = [rollout_pusht(env, i, skill=1.0, seed=0).truth for i in range(2)]
    random_ = [rollout_pusht(env, i, skill=0.0, seed=0).truth for i in range(2)]
    assert [t["coverage"] for t in random_] == [0.0, 0.0]
    # 150 steps are half an expert's usual episode: partway (it turns first, then closes in)
    assert [t["score"] for t in expert] == [3, 2] and [t["score"] for t in random_] == [1, 1]


def _final_info(seed: int, skill: float, max_steps: int = 300) -> dict:
    """One scripted episode, state only (no frames): the env's info at its last step."""
    env = make_pusht_env(max_steps=max_steps)
    rng = np.random.default_rng(seed)
    state, info = env.reset(seed=seed)
    done = False
    while not done:
        state, _, terminated, truncated, info = env.step(scripted_push(state, rng, skill))
        done = terminated or truncated
    env.close()
    return info


def test_the_expert_turns_the_t_and_reaches_the_envs_success_on_at_least_a_third_of_seeds():
    seeds = range(6)
    infos = [_final_info(seed, 1.0) for seed in seeds]
    successes = sum(bool(i["is_success"]) for i in infos)
    assert successes >= len(seeds) / 3  # the bar; measured: 6 of 6 (and 20 of 20 on seeds 0..19)
    assert successes == 6 and min(float(i["coverage"]) for i in infos) > 0.95


def test_the_expert_reaches_the_goal_from_a_pose_that_needs_a_half_turn():
    # The T placed upside down from the goal (angle pi/4 + pi), centred near it: only turning helps.
    env = make_pusht_env(max_steps=300)
    state, _ = env.reset(options={"reset_to_state": [100.0, 100.0, 256.0, 256.0, np.pi / 4 + np.pi]})
    start = env.unwrapped._get_coverage()
    rng, done, info = np.random.default_rng(0), False, {}
    while not done:
        state, _, terminated, truncated, info = env.step(scripted_push(state, rng, 1.0))
        done = terminated or truncated
    assert start < 0.3 and info["is_success"] and info["coverage"] > 0.95


def test_build_of_a_pusht_sim_dataset_keeps_each_rollouts_true_reward(tmp_path, capsys):
    # The truth lives in sim_truth.jsonl; the sim also writes it where the LeRobot reader looks
    # (meta/episode_rewards.jsonl), so a failed rollout is built as the failure it is, not OXE's 5.
    sim, built = tmp_path / "pusht_sim", tmp_path / "built"
    assert main(["sim", "--env", "pusht", "--out", str(sim), "--episodes", "4", "--seed", "0"]) == 0
    truth = {t["episode_id"]: t for t in map(json.loads, (sim / "sim_truth.jsonl").read_text().splitlines())}
    # The expert's success is a 5, skill 0.9 and 0.75 get partway, 0.5 does not move the T onto it
    assert [t["score"] for t in truth.values()] == [5, 3, 2, 1]
    argv = ["build", "--lerobot", str(sim), "--out", str(built), "--max-frames", "4", "--max-side", "32"]
    assert main(argv) == 0
    assert f"LeRobot {sim}: rewards from meta/episode_rewards.jsonl" in capsys.readouterr().out
    rows = [r for split in datasets.load_dataset(str(built)).values() for r in split]
    assert sorted(r["episode_id"] for r in rows) == sorted(truth)
    for row in rows:
        t = truth[row["episode_id"]]
        assert (row["reward"], row["progress"]) == (t["score"], pytest.approx(t["progress"]))
        assert json.loads(row["provenance"])["reward_from"] == "meta/episode_rewards.jsonl"
    report = json.loads((built / "build_report.json").read_text())
    assert report["lerobot_rewards"] == [
        {"dataset": str(sim), "source": "oxe/pusht_sim", "rewards_from": "meta/episode_rewards.jsonl"}
    ]
    # Said to be OXE successes, the same rollouts are all 5 again.
    again = tmp_path / "as_oxe"
    assert main(["build", "--lerobot", str(sim), "--out", str(again), "--lerobot-rewards", "success"]) == 0
    assert {r["reward"] for split in datasets.load_dataset(str(again)).values() for r in split} == {5}
