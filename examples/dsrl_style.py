"""DSRL-style RL with a RoboReward model as the reward, on the simulated tabletop (paper §5.2).

    python examples/dsrl_style.py                       # tiny offline model, 8 episodes, < 1 min on CPU
    python examples/dsrl_style.py --model my-org/RoboReward-3B --episodes 50

DSRL fine-tunes a pretrained diffusion policy by learning, with RL, the noise it is sampled from; the
reward is the reward VLM's end-of-episode score of the rollout video for the task, not a human label.
This script shows the loop and where each piece plugs in: the env (`TabletopEnv`, rendered frames),
the reward (`EpisodicRewardWrapper` around a `RewardModel`), and the policy (a scripted expert with
noise standing in for the diffusion policy + latent-noise actor). It prints each episode's VLM reward
next to the simulator's ground truth.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from roboreward.rl import EpisodicRewardWrapper, TabletopEnv
from roboreward.scoring import RewardModel
from roboreward.testing import make_tiny_vlm


class NoisyExpert:
    """Stands in for a diffusion policy steered by a DSRL latent-noise actor."""

    def __init__(self, noise: float, seed: int):
        self.noise = noise
        self.rng = np.random.default_rng(seed)

    def __call__(self, env: TabletopEnv) -> np.ndarray:
        # plug your diffusion policy / DSRL actor here: action = policy(observation, noise=actor(observation))
        action = env.expert_action()
        action[:2] += self.rng.normal(0, self.noise, 2)
        return np.clip(action, -1, 1)

    def update(self, reward: float) -> None:
        # plug the RL update here (DSRL trains the latent-noise actor with SAC on these rewards);
        # this stand-in just becomes more careful after low rewards
        self.noise = max(0.05, self.noise * (0.9 if reward < 0.5 else 1.0))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="a RoboReward checkpoint or Hub id (default: a tiny offline model)")
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--reward-type", default="progress", choices=["progress", "discrete", "binary"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    path = args.model or make_tiny_vlm(Path(tempfile.mkdtemp()) / "tiny-reward-model")
    reward_model = RewardModel.from_pretrained(path, num_frames=8)
    env = EpisodicRewardWrapper(
        TabletopEnv(max_steps=40), reward_model, reward_type=args.reward_type, max_frames=8
    )
    policy = NoisyExpert(noise=0.6, seed=args.seed)
    print(f"{'episode':>7}  {'steps':>5}  {'VLM reward':>10}  {'VLM score':>9}  {'true score':>10}  task")
    for episode in range(args.episodes):
        env.reset(seed=args.seed + episode)
        steps, done = 0, False
        while not done:
            _, reward, terminated, truncated, info = env.step(policy(env.unwrapped))
            steps, done = steps + 1, terminated or truncated
        policy.update(reward)
        vlm, truth = info["roboreward"]["score"], info["truth"]["score"]
        print(f"{episode:7d}  {steps:5d}  {reward:10.3f}  {vlm:9d}  {truth:10d}  {env.unwrapped.task}")


if __name__ == "__main__":
    main()
