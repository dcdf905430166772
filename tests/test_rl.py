"""The episodic reward wrapper (single and vector envs) and the tabletop env."""

from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from roboreward.apps.rl import (
    EpisodicRewardWrapper,
    VectorEpisodicRewardWrapper,
    episode_reward,
    subsample,
)
from roboreward.models.local import RewardModel, ScoreResult
from roboreward.sim import TabletopEnv

STILL = np.array([0.0, 0.0, -1.0], dtype=np.float32)  # an open gripper that does not move: never ends early


@pytest.fixture(scope="module")
def model(tiny_vlm_dir):
    return RewardModel.from_pretrained(tiny_vlm_dir, num_frames=8)


class CountingModel:
    """The model, counting its score_batch calls and their sizes."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def score(self, *args, **kwargs):
        return self.model.score(*args, **kwargs)

    def score_batch(self, videos, tasks, **kwargs):
        self.calls.append(len(videos))
        return self.model.score_batch(videos, tasks, **kwargs)


def _run(env, policy=None, seed=3):
    """One episode; the rewards and infos of its steps, and how it ended."""
    rewards, infos = [], []
    env.reset(seed=seed)
    while True:
        action = policy(env) if policy else env.unwrapped.expert_action()
        _, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
        infos.append(info)
        if terminated or truncated:
            return rewards, infos, terminated, truncated


def _expected_clip(frames, max_frames, fps):
    """The frames the wrapper should score, computed here independently of `subsample`."""
    n = len(frames)
    index = np.rint(np.linspace(0, n - 1, max_frames)).astype(int) if n > max_frames else np.arange(n)
    return np.stack([frames[i] for i in index]), len(index) / (n / fps)


def _same_result(shown, direct):
    """A ScoreResult dict equals a direct ScoreResult (floats to 1e-6)."""
    assert set(shown) == {"score", "expected", "reward", "probs"} and shown["score"] == direct.score
    assert shown["probs"] == pytest.approx(direct.probs, abs=1e-6)
    assert (shown["expected"], shown["reward"]) == pytest.approx((direct.expected, direct.reward), abs=1e-6)
    return True


# --- the env ---------------------------------------------------------------------------------


@pytest.mark.parametrize("observation", ["image", "state", "dict"])
def test_tabletop_env_passes_gymnasiums_checker(observation):
    check_env(TabletopEnv(seed=0, observation=observation), skip_render_check=True)


def test_the_expert_places_the_block_and_the_truth_says_so():
    env = TabletopEnv(seed=0)
    for episode in range(5):
        rewards, infos, terminated, _ = _run(env, seed=episode)
        assert terminated and infos[-1]["truth"] == {"score": 5, "progress": 1.0, "success": True}
        assert rewards == [0.0] * (len(rewards) - 1) + [1.0]
    assert env.render().shape == (120, 160, 3) and env.render().dtype == np.uint8


def test_a_given_task_sets_the_target_and_a_seed_makes_episodes_repeat():
    env = TabletopEnv(task="put the red block in the blue bowl", seed=7)
    first, info = env.reset()
    assert info["task"] == env.task == "put the red block in the blue bowl"
    assert env.scene.blocks[0].colour == "red" and env.scene.bowls[0].colour == "blue"
    again, _ = TabletopEnv(task="put the red block in the blue bowl", seed=7).reset()
    assert np.array_equal(first, again)
    with pytest.raises(ValueError, match="put the <colour> block"):
        TabletopEnv(task="open the drawer")
    with pytest.raises(ValueError, match="one object per colour"):
        TabletopEnv(task="put the red block in the red bowl")


def test_dropping_a_block_halfway_ends_the_episode_with_a_partial_truth():
    env = TabletopEnv(seed=1, observation="state")
    env.reset()
    while not env.state()[3]:  # reach and grasp
        env.step(env.expert_action())
    _, _, terminated, _, _ = env.step(env.expert_action())  # one full step (0.06) toward the bowl
    assert not terminated
    _, reward, terminated, truncated, info = env.step(np.array([0.0, 0.0, -1.0]))  # open: a placement
    assert terminated and not truncated and reward == 0.0
    assert info["truth"] == {"score": 2, "progress": pytest.approx(0.06 / 0.33, abs=0.2), "success": False}


# --- the single-env wrapper ------------------------------------------------------------------


@pytest.mark.parametrize("reward_type", ["progress", "discrete", "binary"])
def test_reward_is_zero_until_the_last_step_which_scores_the_recorded_frames(model, reward_type):
    env = EpisodicRewardWrapper(
        TabletopEnv(), model, reward_type=reward_type, max_frames=8, binary_threshold=3
    )
    rewards, infos, _, _ = _run(env)
    assert rewards[:-1] == [0.0] * (len(rewards) - 1) and "roboreward" not in infos[-2]
    assert len(env.frames) == len(rewards) + 1 > 8  # the reset frame and one per step
    frames, fps = _expected_clip(env.frames, 8, fps=10)
    assert np.array_equal(frames[-1], env.unwrapped.render())  # the final state is scored
    direct = model.score(frames, env.unwrapped.task, fps=fps)
    assert _same_result(infos[-1]["roboreward"], direct)
    expected = {
        "progress": direct.reward,
        "discrete": float(direct.score),
        "binary": float(direct.score >= 3),
    }
    assert rewards[-1] == pytest.approx(expected[reward_type], abs=1e-6)
    assert infos[-1]["env_reward"] == 1.0  # the env's own reward (the expert succeeds) is kept aside


def test_reward_types_follow_the_papers_definitions():
    result = ScoreResult(score=4, probs=(0.0, 0.1, 0.1, 0.5, 0.3), expected=4.0, reward=0.75)
    assert episode_reward(result, "progress") == 0.75
    assert episode_reward(result, "discrete") == 4.0
    assert episode_reward(result, "binary") == 0.0  # default threshold 5: only a success counts
    assert episode_reward(result, "binary", binary_threshold=4) == 1.0
    with pytest.raises(ValueError, match="reward_type"):
        episode_reward(result, "dense")


def test_subsampling_keeps_first_and_last_and_reports_the_kept_rate():
    frames = [np.full((2, 2, 3), i, np.uint8) for i in range(41)]
    kept, fps = subsample(frames, 5, fps=10)
    assert kept[:, 0, 0, 0].tolist() == [0, 10, 20, 30, 40] and fps == pytest.approx(5 / 4.1)
    kept, fps = subsample(frames[:3], 5, fps=10)
    assert len(kept) == 3 and fps == pytest.approx(10.0)


def test_truncation_also_scores(model):
    env = EpisodicRewardWrapper(TabletopEnv(max_steps=5), model, max_frames=4)
    rewards, infos, terminated, truncated = _run(env, policy=lambda e: STILL)
    assert truncated and not terminated and len(rewards) == 5
    frames, fps = _expected_clip(env.frames, 4, fps=10)
    assert rewards[-1] == pytest.approx(model.score(frames, env.unwrapped.task, fps=fps).reward, abs=1e-6)
    assert set(infos[-1]["roboreward"]) == {"score", "expected", "reward", "probs"}
    assert infos[-1]["truth"]["score"] == 1  # the sim's ground truth rides along


def test_reset_clears_the_frames_of_the_last_episode(model):
    env = EpisodicRewardWrapper(TabletopEnv(max_steps=5), model, max_frames=4)
    _run(env, policy=lambda e: STILL)
    assert len(env.frames) == 6
    observation, _ = env.reset(seed=11)
    assert len(env.frames) == 1 and np.array_equal(env.frames[0], observation)


def test_frames_from_an_observation_key_and_a_task_of_ones_own(model):
    by_render = EpisodicRewardWrapper(TabletopEnv(), model, max_frames=6)
    by_camera = EpisodicRewardWrapper(
        TabletopEnv(observation="dict"), model, camera="image", max_frames=6, task="tidy the table"
    )
    reward_render = _run(by_render)[0][-1]
    reward_camera = _run(by_camera)[0][-1]
    assert by_camera.task == "tidy the table" and by_render.task == by_render.unwrapped.task
    assert all(np.array_equal(a, b) for a, b in zip(by_render.frames, by_camera.frames, strict=True))
    frames, fps = _expected_clip(by_camera.frames, 6, fps=10)
    assert reward_camera == pytest.approx(model.score(frames, "tidy the table", fps=fps).reward, abs=1e-6)
    assert reward_render == pytest.approx(
        model.score(frames, by_render.unwrapped.task, fps=fps).reward, abs=1e-6
    )
    with pytest.raises(ValueError, match="camera='wrist'"):
        EpisodicRewardWrapper(TabletopEnv(observation="dict"), model, camera="wrist").reset(seed=0)


def test_bad_settings_are_refused():
    stub = SimpleNamespace(score=lambda *a, **k: None, score_batch=lambda *a, **k: [])
    with pytest.raises(ValueError, match="reward_type"):
        EpisodicRewardWrapper(TabletopEnv(), stub, reward_type="dense")
    with pytest.raises(ValueError, match="max_frames"):
        EpisodicRewardWrapper(TabletopEnv(), stub, max_frames=1)
    with pytest.raises(ValueError, match="binary_threshold"):
        VectorEpisodicRewardWrapper(_vector([3, 3]), stub, binary_threshold=6)
    with pytest.raises(ValueError, match="one per sub-env"):
        VectorEpisodicRewardWrapper(_vector([3, 3]), stub, task=["a", "b", "c"])
    with pytest.raises(ValueError, match="render_mode='rgb_array'"):
        EpisodicRewardWrapper(TabletopEnv(render_mode=None), stub).reset(seed=0)
    with pytest.raises(TypeError, match=r"a reward model or its spec .* got NoneType"):
        EpisodicRewardWrapper(TabletopEnv(), None)
    with pytest.raises(ValueError, match="a baseline: model cannot be used here"):
        EpisodicRewardWrapper(TabletopEnv(), "baseline:random")


# --- the vector wrapper ----------------------------------------------------------------------


def _vector(max_steps, mode="NextStep", observation="image"):
    fns = [lambda m=m: TabletopEnv(max_steps=m, observation=observation) for m in max_steps]
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode(mode))


def _single_env_rewards(model, max_steps, reward_type="discrete"):
    """Each sub-env's first episode scored on its own: same seed (0 + index), same actions."""
    out = []
    for i, m in enumerate(max_steps):
        env = EpisodicRewardWrapper(TabletopEnv(max_steps=m), model, max_frames=4, reward_type=reward_type)
        rewards, infos, _, _ = _run(env, policy=lambda e: STILL, seed=i)
        out.append((rewards[-1], infos[-1]["roboreward"]))
    return out


def test_vector_envs_score_the_sub_envs_that_finish_together_in_one_batch(model):
    counting = CountingModel(model)
    envs = VectorEpisodicRewardWrapper(_vector([4, 4, 6]), counting, max_frames=4, reward_type="discrete")
    envs.reset(seed=0)
    single = _single_env_rewards(model, [4, 4, 6])
    for step in range(1, 7):
        _, rewards, terminated, truncated, infos = envs.step(np.stack([STILL] * 3))
        ended = np.logical_or(terminated, truncated)
        assert rewards[~ended].tolist() == [0.0] * int((~ended).sum())
        assert infos["env_reward"].tolist() == [0.0, 0.0, 0.0]
        if step == 4:  # sub-envs 0 and 1 end together
            assert counting.calls == [2] and infos["_roboreward"].tolist() == [True, True, False]
            for i in (0, 1):
                assert rewards[i] == single[i][0]
                assert infos["roboreward"]["probs"][i] == pytest.approx(single[i][1]["probs"], abs=1e-6)
        if step == 5:  # NEXT_STEP: this step reset sub-envs 0 and 1, and their recordings restarted
            assert "roboreward" not in infos and [len(f) for f in envs.frames] == [1, 1, 6]
        if step == 6:
            assert counting.calls == [2, 1] and infos["_roboreward"].tolist() == [False, False, True]
            assert rewards[2] == single[2][0]


def test_same_step_autoreset_scores_the_final_observation_and_restarts_from_the_reset_one(model):
    counting = CountingModel(model)
    envs = VectorEpisodicRewardWrapper(
        _vector([4, 4], "SameStep", observation="dict"),
        counting,
        camera="image",
        max_frames=4,
        reward_type="discrete",
    )
    envs.reset(seed=0)
    for _ in range(4):
        observations, rewards, _, truncated, infos = envs.step(np.stack([STILL] * 2))
    assert truncated.all() and counting.calls == [2]
    for i, (reward, shown) in enumerate(_single_env_rewards(model, [4, 4])):  # the finished episode's task
        assert rewards[i] == reward and infos["roboreward"]["probs"][i] == pytest.approx(
            shown["probs"], abs=1e-6
        )
    assert all(
        len(f) == 1 and np.array_equal(f[0], observations["image"][i]) for i, f in enumerate(envs.frames)
    )
    with pytest.raises(ValueError, match="SAME_STEP"):
        VectorEpisodicRewardWrapper(_vector([4, 4], "SameStep"), model)


def test_disabled_autoreset_restarts_the_recordings_that_reset_mask_names(model):
    envs = VectorEpisodicRewardWrapper(_vector([3, 5], "Disabled"), model, max_frames=4)
    envs.reset(seed=0)
    for _ in range(3):
        _, rewards, _, truncated, infos = envs.step(np.stack([STILL] * 2))
    assert truncated.tolist() == [True, False] and infos["_roboreward"].tolist() == [True, False]
    envs.reset(options={"reset_mask": np.array([True, False])})
    assert [len(f) for f in envs.frames] == [1, 4]
    for _ in range(2):
        _, rewards, _, truncated, infos = envs.step(np.stack([STILL] * 2))
    assert truncated.tolist() == [False, True] and len(envs.frames[1]) == 6
    frames, fps = _expected_clip(envs.frames[1], 4, fps=10)
    assert rewards[1] == pytest.approx(model.score(frames, envs.env.envs[1].task, fps=fps).reward, abs=1e-6)
