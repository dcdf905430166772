"""DSRL-style RL with a RoboReward model as the reward, on the simulated tabletop (paper §5.2).

    python examples/dsrl_style.py                       # tiny offline model, 8 episodes, < 1 min on CPU
    python examples/dsrl_style.py --model my-org/RoboReward-3B --episodes 50
    python examples/dsrl_style.py --server http://127.0.0.1:8000   # rewards from `roboreward serve`
    python examples/dsrl_style.py --env pusht           # gym_pusht/PushT-v0 (pip install "roboreward[pusht]")

DSRL (diffusion steering with RL) keeps a pretrained diffusion policy frozen and learns, with RL,
the latent noise the policy denoises from: the RL actor acts in the policy's noise space. In the
paper the reward is the reward VLM's end-of-episode score of the rollout video for the task,
instead of a human's success label. The pieces here:

    env     TabletopEnv(observation="state"), or PushT (--env pusht): a gymnasium env; frames for the
            reward come from render()
    policy  BasePolicy: frozen, action = policy(observation, noise); NoiseSpaceEnv makes the noise
            the action the RL actor chooses
    actor   NoiseActor: proposes the noise and learns from the episodes' rewards
    reward  EpisodicRewardWrapper(env, RewardModel): 0 on every step, the VLM's reward on the last

The stand-ins (a scripted expert as the "diffusion policy", a Gaussian with a reward-weighted mean
as the "actor") only show where things plug in. With the tiny random-weight model the VLM reward
carries no information; with a trained RoboReward checkpoint it should track the simulator's
ground truth, which is printed next to it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from roboreward.apps.rl import EpisodicRewardWrapper
from roboreward.sim import TabletopEnv, scripted_action


class BasePolicy:
    """Stands in for the frozen, pretrained diffusion policy: action = policy(observation, noise)."""

    def __call__(self, observation: np.ndarray, noise: np.ndarray) -> np.ndarray:
        # plug your diffusion policy here: denoise from `noise` (its initial latent) given `observation`
        action = scripted_action(observation)
        action[:2] += 0.7 * noise[:2]  # the latent steers where the gripper goes
        return np.clip(action, -1.0, 1.0)


class PushTBasePolicy:
    """The same stand-in on PushT: a heuristic pusher whose target the latent noise moves."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def __call__(self, observation: np.ndarray, noise: np.ndarray) -> np.ndarray:
        from roboreward.sim.pusht import scripted_push

        target = scripted_push(observation, self.rng, skill=1.0) + 40.0 * noise[:2]
        return np.clip(target, 0, 512).astype(np.float32)


class NoiseSpaceEnv(gym.Wrapper):
    """The env as DSRL's actor sees it: its action is the noise the base policy denoises from."""

    def __init__(self, env: gym.Env, policy: BasePolicy):
        super().__init__(env)
        self.policy = policy
        self.action_space = gym.spaces.Box(-3.0, 3.0, env.action_space.shape, dtype=np.float32)
        self.observation_now: Any = None

    def reset(self, **kwargs: Any):
        self.observation_now, info = self.env.reset(**kwargs)
        return self.observation_now, info

    def step(self, noise: np.ndarray):
        result = self.env.step(self.policy(self.observation_now, noise))
        self.observation_now = result[0]
        return result


class NoiseActor:
    """Stands in for DSRL's actor in noise space (SAC in the paper), learning from episodic rewards."""

    def __init__(self, dim: int, seed: int, bias: float = 0.4):
        self.rng = np.random.default_rng(seed)
        self.mean = np.full(dim, bias)  # starts off steering the policy the wrong way
        self.episode_offset = np.zeros(dim)
        self.baseline: float | None = None

    def begin_episode(self) -> None:
        self.episode_offset = self.rng.normal(0.0, 0.4, self.mean.shape)  # explore around the mean

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        # plug your DSRL actor here: noise = actor(observation), trained with SAC on (obs, noise, reward)
        return self.mean + self.episode_offset + self.rng.normal(0.0, 0.1, self.mean.shape)

    def update(self, episode_reward: float) -> None:
        # plug the RL update here; this stand-in moves the mean toward offsets that beat the baseline
        if self.baseline is not None:
            self.mean += 0.5 * (episode_reward - self.baseline) * self.episode_offset
        self.baseline = (
            episode_reward if self.baseline is None else 0.8 * self.baseline + 0.2 * episode_reward
        )


def _pusht_truth(info: dict[str, Any]) -> dict[str, Any]:
    from roboreward.sim.pusht import pusht_truth

    return pusht_truth(info["coverage"], info["is_success"])


def load_reward_model(args: argparse.Namespace) -> Any:
    if args.server:
        from roboreward.models.remote import RewardClient

        return RewardClient(args.server)
    from roboreward.models.local import RewardModel

    if args.model:
        return RewardModel.from_pretrained(args.model)  # scored with its own settings (frames, prompt)
    from roboreward.testing.tiny import make_tiny_vlm

    with tempfile.TemporaryDirectory(prefix="roboreward-dsrl-") as tmp:  # loaded, then removed
        return RewardModel.from_pretrained(make_tiny_vlm(Path(tmp) / "tiny"), num_frames=args.max_frames or 8)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", help="a RoboReward checkpoint folder or Hub id (default: a tiny offline model)"
    )
    parser.add_argument("--server", help="score with a reward server (roboreward serve) at this URL instead")
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--reward-type", default="progress", choices=["progress", "discrete", "binary"])
    parser.add_argument(
        "--max-frames",
        type=int,
        help="frames of each episode the reward model sees (default: the model's own setting; 8 for the "
        "tiny offline model)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--env", default="tabletop", choices=["tabletop", "pusht"], help="pusht needs the [pusht] extra"
    )
    args = parser.parse_args()

    reward_model = load_reward_model(args)
    if args.env == "pusht":
        from roboreward.sim.pusht import PUSHT_TASK, make_pusht_env

        base, policy, task = make_pusht_env(max_steps=40), PushTBasePolicy(args.seed), PUSHT_TASK
    else:
        base, policy, task = (
            TabletopEnv(seed=args.seed, max_steps=40, observation="state"),
            BasePolicy(),
            None,
        )
    env = EpisodicRewardWrapper(
        NoiseSpaceEnv(base, policy),
        reward_model,
        task=task,
        reward_type=args.reward_type,
        max_frames=args.max_frames,
    )
    actor = NoiseActor(dim=env.action_space.shape[0], seed=args.seed)
    print(f"{'episode':>7}  {'steps':>5}  {'VLM reward':>10}  {'VLM score':>9}  {'true score':>10}  task")
    rewards, truths, started = [], [], time.perf_counter()
    for episode in range(args.episodes):
        # PushT draws its start from the env's own generator: seeded once, at the first reset
        observation, _ = env.reset(seed=args.seed if args.env == "pusht" and episode == 0 else None)
        actor.begin_episode()
        steps, done = 0, False
        while not done:
            # plug your diffusion policy / DSRL actor here: the actor picks the noise, the frozen
            # policy (inside NoiseSpaceEnv) turns it into the robot's action
            observation, reward, terminated, truncated, info = env.step(actor(observation))
            steps, done = steps + 1, terminated or truncated
        actor.update(reward)  # the episodic VLM reward is the RL signal
        rewards.append(reward)
        true = info["truth"] if "truth" in info else _pusht_truth(info)  # the simulator's own truth
        truths.append(true["progress"])
        vlm = info["roboreward"]["score"]
        print(f"{episode:7d}  {steps:5d}  {reward:10.3f}  {vlm:9d}  {true['score']:10d}  {env.task}")
    varied = np.std(rewards) > 0 and np.std(truths) > 0
    agreement = f"{np.corrcoef(rewards, truths)[0, 1]:.2f}" if varied else "n/a (no variation)"
    seconds = time.perf_counter() - started
    print(
        f"{args.episodes} episodes in {seconds:.1f} s: mean VLM reward {np.mean(rewards):.3f}, "
        f"true success rate {np.mean([t == 1.0 for t in truths]):.2f}, "
        f"correlation of VLM reward with true progress {agreement}"
    )


if __name__ == "__main__":
    main()
