"""The episodic reward wrapper (single and vector envs) and the tabletop env."""

import gymnasium as gym
import numpy as np
import pytest

from roboreward.rl import (
    EpisodicRewardWrapper,
    TabletopEnv,
    VectorEpisodicRewardWrapper,
    episode_reward,
    keep_frames,
)
from roboreward.scoring import RewardModel
from roboreward.testing import make_tiny_vlm


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return RewardModel.from_pretrained(make_tiny_vlm(tmp_path_factory.mktemp("rl") / "tiny"), num_frames=8)


def _run(env, policy=None):
    rewards, infos = [], []
    env.reset(seed=3)
    while True:
        action = policy(env) if policy else env.unwrapped.expert_action()
        _, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
        infos.append(info)
        if terminated or truncated:
            return rewards, infos, terminated, truncated


def test_the_expert_succeeds_and_the_truth_says_so():
    env = TabletopEnv()
    rewards, infos, terminated, _ = _run(env)
    assert terminated and infos[-1]["truth"] == {"score": 5, "progress": 1.0, "success": True}
    assert rewards[-1] == 1.0 and rewards[:-1] == [0.0] * (len(rewards) - 1)
    assert env.render().shape == (120, 160, 3)


@pytest.mark.parametrize("reward_type", ["progress", "discrete", "binary"])
def test_reward_only_at_the_end_and_equal_to_scoring_the_recorded_frames(model, reward_type):
    env = EpisodicRewardWrapper(
        TabletopEnv(), model, reward_type=reward_type, max_frames=8, binary_threshold=4
    )
    rewards, infos, _, _ = _run(env)
    assert rewards[:-1] == [0.0] * (len(rewards) - 1)
    recorded = env.frames
    assert len(recorded) == len(rewards) + 1  # the reset frame and one per step
    kept = keep_frames(recorded, 8)
    assert np.array_equal(kept[0], recorded[0]) and np.array_equal(kept[-1], recorded[-1])
    direct = model.score(kept, env.unwrapped.task, fps=len(kept) / (len(recorded) / 10))
    shown = infos[-1]["roboreward"]
    assert shown["score"] == direct.score and shown["probs"] == pytest.approx(direct.probs, abs=1e-6)
    assert rewards[-1] == pytest.approx(episode_reward(direct, reward_type, binary_threshold=4), abs=1e-6)
    expected = {
        "progress": direct.reward,
        "discrete": float(direct.score),
        "binary": float(direct.score >= 4),
    }
    assert rewards[-1] == pytest.approx(expected[reward_type], abs=1e-6)
    assert "env_reward" in infos[-1]


def test_truncation_also_scores_and_reset_clears_frames(model):
    env = EpisodicRewardWrapper(TabletopEnv(max_steps=5), model, max_frames=4)
    rewards, infos, terminated, truncated = _run(env, policy=lambda e: np.array([0.1, 0.0, -1.0]))
    assert truncated and not terminated and len(rewards) == 5 and "roboreward" in infos[-1]
    env.reset(seed=0)
    assert len(env.frames) == 1


def test_bad_settings():
    with pytest.raises(ValueError, match="reward_type"):
        EpisodicRewardWrapper(TabletopEnv(), None, reward_type="dense")
    with pytest.raises(ValueError, match="max_frames"):
        EpisodicRewardWrapper(TabletopEnv(), None, max_frames=1)


def test_vector_envs_score_finished_episodes_in_one_batch(model, monkeypatch):
    envs = gym.vector.SyncVectorEnv([lambda: TabletopEnv(max_steps=6) for _ in range(3)])
    wrapped = VectorEpisodicRewardWrapper(envs, model, max_frames=4, reward_type="discrete")
    calls = []
    original = model.score_batch
    monkeypatch.setattr(model, "score_batch", lambda *a, **k: calls.append(len(a[0])) or original(*a, **k))
    wrapped.reset(seed=0)
    still = np.array([[0.0, 0.0, -1.0]] * 3, dtype=np.float32)
    for step in range(6):
        _, rewards, _, truncated, infos = wrapped.step(still)
        if step < 5:
            assert not rewards.any()
    assert truncated.all() and calls == [3]  # all three truncated together: one batch
    for i in range(3):
        frames = wrapped.frames[i]
        kept = keep_frames(frames, 4)
        direct = model.score(kept, envs.envs[i].task, fps=len(kept) / (len(frames) / 10))
        assert infos["roboreward"][i]["probs"] == pytest.approx(direct.probs, abs=1e-6)
        assert rewards[i] == direct.score
    # the next step resets the finished sub-envs: their recordings start again
    wrapped.step(still)
    assert [len(f) for f in wrapped.frames] == [1, 1, 1]
