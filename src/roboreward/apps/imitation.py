"""Does the reward model help? Reward-filtered and reward-weighted imitation on PushT, against the truth.

`roboreward demo --env pusht` (`run_imitation`), offline on CPU:

1. simulate two mixed PushT datasets (`roboreward.sim.pusht`: scripted policies of skill 1.0, 0.9,
   0.75, 0.5 and 0.0, the env's truth in ``sim_truth.jsonl``): ``pusht_reward`` for the reward
   model, ``pusht_pool`` for the demonstrations to imitate;
2. ``roboreward build`` the first (rewards from its truth sidecar) and train a small reward model on
   it through ``trl_training/sft.py`` (as ``roboreward demo`` does), or take any reward model spec
   given as ``model`` (a checkpoint, ``teetone/RoboReward-4B``, a served pool) and skip training;
3. ``roboreward annotate`` the pool with it, ``--keep-min-score`` writing the filtered LeRobot copy;
4. train a state-based behaviour-cloning policy (`BCPolicy`, a PyTorch MLP) five ways: on every
   demonstration (``all``), on the filtered copy (``reward model keeps``), on every demonstration
   weighted by the reward model's score (``reward model weights``: annotate's
   ``sample_weights.parquet``), on the episodes
   whose true score passes the same threshold (``oracle keeps``) and on a random subset of the size the
   reward model kept (``random subset``; of the oracle's size when the reward model keeps none);
5. run each policy in the env (``eval_episodes`` seeded episodes, none of them a training seed) and
   report its mean final coverage with a bootstrap 95% interval and its success rate with a Wilson
   95% interval, beside the reward model's own figures on the pool (MAE, ECE, preference accuracy,
   the ranking of the five scripted policies): ``imitation.md``, ``imitation.json`` and
   ``coverage_by_selection.png`` in ``out``.

The score -> weight map is annotate's (`roboreward.apps.frame_signals.episode_weights`, written by
``roboreward annotate --weight-temperature T`` as ``sample_weights.parquet``): advantage-weighted
regression's exponential on the rubric's scale, ``exp((E[score] - 5) / T)`` normalised to mean 1,
E[score] the model's expected score; a sure 4 weighs e^-1 of a sure 5 at T = 1, a sure 1 e^-4. The
experiment reads the weights from that file, as a training loop of a user's would.

The policy sees the state in the T's body frame (the agent's offset from the T's centre, the centre's
offset from the goal's, the angle still to turn as sine and cosine, the centre in the arena) and
predicts the agent's next target in that frame, at most 40 px away: the expert's own frame, so that a
few thousand steps can teach it. Everything is seeded: the same config gives the same numbers, every
row included (the H.264 bytes the reward model decodes repeat since `roboreward.video` turned x264's
mbtree off; tests/test_imitation.py runs the pipeline twice and compares).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow.parquet as pq

from roboreward import rubric
from roboreward.config import check_fields, check_range

__all__ = [
    "SELECTIONS",
    "BCPolicy",
    "ImitationConfig",
    "bootstrap_mean_ci",
    "evaluate_policy",
    "read_lerobot_steps",
    "run_imitation",
    "train_bc",
    "wilson_interval",
]

#: The five ways of choosing the demonstrations, in the table's order.
SELECTIONS = ("all", "reward model keeps", "reward model weights", "oracle keeps", "random subset")
#: Longest step the policy predicts, px (the expert's navigation targets are farther; it then goes slower).
MAX_REACH = 40.0
#: The evaluation episodes' seeds start here (the simulations use seed * 100_003 + index: far below).
EVAL_SEED_BASE = 900_000_000


@dataclass
class ImitationConfig:
    """What `run_imitation` does.

    Args:
        out: output folder (replaced if it exists).
        reward_episodes: PushT rollouts the reward model is trained on.
        pool_episodes: PushT rollouts that are annotated and imitated.
        eval_episodes: seeded env episodes per policy.
        max_steps: steps per episode (simulated and evaluated; gym-pusht's default is 300).
        model: a reward model spec to annotate with instead of training one (None: train).
        train_steps: the reward model's training steps.
        learning_rate: its learning rate.
        num_frames: frames per video for the reward model.
        max_side: longer side of those frames.
        batch_size: its training batch size.
        model_size: the tiny offline model's size (`roboreward.testing.tiny.SIZES`).
        keep_min_score: the reward model's (and the oracle's) threshold, 1..5.
        temperature: of annotate's score -> weight map (``--weight-temperature``).
        bc_epochs: behaviour-cloning epochs.
        bc_seeds: policies trained per selection (seeds differ), each run on every evaluation
            episode: one policy's luck of initialisation moves its coverage by several points.
        seed: every seed derives from it.
        device: the reward model's device when annotating (None: cuda if available).
    """

    out: str = "demo_pusht"
    reward_episodes: int = 40
    pool_episodes: int = 40
    eval_episodes: int = 30
    max_steps: int = 300
    model: str | None = None
    train_steps: int = 300
    learning_rate: float = 5e-4
    num_frames: int = 8
    max_side: int = 96
    batch_size: int = 4
    model_size: Literal["tiny", "small"] = "small"
    keep_min_score: int = 4
    temperature: float = 1.0
    bc_epochs: int = 60
    bc_seeds: int = 3
    seed: int = 0
    device: str | None = None

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.out.strip():
            raise ValueError("out is empty")
        for name in ("reward_episodes", "pool_episodes", "eval_episodes", "train_steps", "batch_size"):
            check_range(self, name, low=1)
        for name in ("max_steps", "num_frames", "bc_epochs", "bc_seeds"):
            check_range(self, name, low=1)
        check_range(self, "max_side", low=16)
        check_range(self, "keep_min_score", low=1, high=5)
        if self.model is None and self.reward_episodes < 5:
            raise ValueError(
                f"reward_episodes must be >= 5 to train a reward model, got {self.reward_episodes}"
            )
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson's score interval of a success rate (95% at z = 1.96).

    Args:
        successes: how many succeeded.
        n: out of how many (> 0).
        z: the normal quantile.
    """
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got {successes} of {n}")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_mean_ci(values: Sequence[float], seed: int = 0, resamples: int = 2000) -> tuple[float, float]:
    """The percentile bootstrap 95% interval of a mean.

    Args:
        values: the sample (not empty).
        seed: the resampling's seed.
        resamples: how many resamples.
    """
    x = np.asarray(values, float)
    if x.size == 0:
        raise ValueError("no values to bootstrap")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, (resamples, x.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def read_lerobot_steps(root: str | os.PathLike[str]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Each episode's states and actions, ``{episode_index: (states (T, 5), actions (T, 2))}``.

    Reads the data parquet files of a LeRobot v2.x folder (``observation.state`` and ``action``), as
    `roboreward.sim.pusht.write_pusht_dataset` and annotate's filtered copy write them.

    Args:
        root: the dataset folder.
    """
    files = sorted(Path(root).glob("data/*/*.parquet"))
    if not files:
        raise FileNotFoundError(f"{root}: no data/*/*.parquet (a LeRobot v2.x dataset?)")
    steps: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for path in files:
        table = pq.read_table(path, columns=["episode_index", "frame_index", "observation.state", "action"])
        episode = table.column("episode_index").to_numpy()
        if len(set(episode.tolist())) != 1:
            raise ValueError(f"{path}: one episode per file expected (LeRobot v2.x)")
        order = np.argsort(table.column("frame_index").to_numpy(), kind="stable")
        states = np.asarray(table.column("observation.state").to_pylist(), np.float64)[order]
        actions = np.asarray(table.column("action").to_pylist(), np.float64)[order]
        steps[int(episode[0])] = (states[:-1], actions[:-1])  # the last frame's action is a copy
    return steps


def _features(states: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The policy's inputs (N, 8) and the T's frame (cos, sin of its angle) for each state (N, 5)."""
    from roboreward.sim.pusht import BLOCK_COG, GOAL_ANGLE, GOAL_COG

    s = np.atleast_2d(np.asarray(states, np.float64))
    c, n = np.cos(s[:, 4]), np.sin(s[:, 4])
    centre = s[:, 2:4] + np.column_stack(
        [c * BLOCK_COG[0] - n * BLOCK_COG[1], n * BLOCK_COG[0] + c * BLOCK_COG[1]]
    )
    agent = _to_body(s[:, :2] - centre, c, n) / 100.0
    error = _to_body(GOAL_COG - centre, c, n) / 100.0
    turn = GOAL_ANGLE - s[:, 4]
    x = np.column_stack([agent, error, np.sin(turn), np.cos(turn), centre / 256.0 - 1.0])
    return x.astype(np.float32), c, n


def _to_body(v: np.ndarray, c: np.ndarray, s: np.ndarray) -> np.ndarray:
    return np.column_stack([c * v[:, 0] + s * v[:, 1], -s * v[:, 0] + c * v[:, 1]])


def _targets(states: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """The labels: each action's offset from the agent in the T's frame, at most `MAX_REACH`, / 50."""
    _, c, s = _features(states)
    d = _to_body(np.asarray(actions, np.float64) - np.asarray(states, np.float64)[:, :2], c, s)
    length = np.hypot(d[:, 0], d[:, 1])[:, None]
    d = d * np.minimum(1.0, MAX_REACH / np.maximum(length, 1e-9))
    return (d / 50.0).astype(np.float32)


class BCPolicy:
    """A behaviour-cloned PushT policy: an MLP (8 -> 256 -> 256 -> 2) from `_features` to the target."""

    def __init__(self, net: Any):
        self.net = net

    def __call__(self, state: np.ndarray) -> np.ndarray:
        """The agent's next target for one env state ``[agent_x, agent_y, block_x, block_y, angle]``.

        Args:
            state: the env's state observation.
        """
        import torch

        x, c, s = _features(state)
        with torch.no_grad():
            y = self.net(torch.from_numpy(x)).numpy().astype(np.float64)[0] * 50.0
        agent = np.asarray(state[:2], np.float64)
        target = agent + np.array([c[0] * y[0] - s[0] * y[1], s[0] * y[0] + c[0] * y[1]])
        return np.clip(target, 0, 512).astype(np.float32)


def train_bc(
    episodes: Sequence[tuple[np.ndarray, np.ndarray]],
    weights: Sequence[float] | None = None,
    epochs: int = 60,
    seed: int = 0,
    batch_size: int = 256,
) -> BCPolicy:
    """Behaviour cloning: weighted mean squared error on each step's target, Adam, fixed seed, 1 thread.

    Args:
        episodes: (states, actions) per demonstration.
        weights: one per demonstration, given to each of its steps (None: all 1).
        epochs: passes over the steps.
        seed: torch's seed (initialisation and batches).
        batch_size: steps per batch.
    """
    import torch

    if not episodes:
        raise ValueError("no demonstrations to imitate")
    if weights is not None and len(weights) != len(episodes):
        raise ValueError(f"{len(weights)} weights for {len(episodes)} demonstrations")
    x = torch.from_numpy(np.concatenate([_features(s)[0] for s, _ in episodes]))
    y = torch.from_numpy(np.concatenate([_targets(s, a) for s, a in episodes]))
    w = np.concatenate(
        [
            np.full(len(s), 1.0 if weights is None else weights[i], np.float32)
            for i, (s, _) in enumerate(episodes)
        ]
    )
    w = torch.from_numpy(w)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same bytes on any machine's thread count
    try:
        torch.manual_seed(seed)
        net = torch.nn.Sequential(
            torch.nn.Linear(x.shape[1], 256),
            torch.nn.ReLU(),
            torch.nn.Linear(256, 256),
            torch.nn.ReLU(),
            torch.nn.Linear(256, 2),
        )
        optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=generator)
            for start in range(0, len(x), batch_size):
                batch = order[start : start + batch_size]
                total = w[batch].sum()
                if total <= 0:
                    continue
                loss = (w[batch] * ((net(x[batch]) - y[batch]) ** 2).sum(dim=1)).sum() / total
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        net.eval()
    finally:
        torch.set_num_threads(threads)
    return BCPolicy(net)


def evaluate_policy(
    policy: Any | Sequence[Any], episodes: int, max_steps: int = 300, seed: int = 0
) -> dict[str, Any]:
    """Run ``policy`` (state -> action) in PushT on seeded episodes; the env's coverage and success.

    Args:
        policy: a callable from the env's state to its action, or several (each runs the same
            episodes; their results are pooled: one run per policy and episode).
        episodes: how many episodes (seeds ``EVAL_SEED_BASE + seed * 1000 + i``).
        max_steps: steps per episode.
        seed: which block of evaluation seeds (and the bootstrap's seed).

    Returns:
        ``{"coverage": [...], "success": [...], "mean_coverage", "coverage_ci", "success_rate",
        "success_ci"}`` over the runs.
    """
    import torch

    from roboreward.sim.pusht import make_pusht_env

    policies = list(policy) if isinstance(policy, (list, tuple)) else [policy]
    env = make_pusht_env(max_steps=max_steps)
    coverage, success = [], []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for act in policies:
            for i in range(episodes):
                state, info = env.reset(seed=EVAL_SEED_BASE + seed * 1000 + i)
                done = False
                while not done:
                    state, _, terminated, truncated, info = env.step(act(state))
                    done = terminated or truncated
                coverage.append(round(float(info["coverage"]), 12))
                success.append(bool(info["is_success"]))
    finally:
        torch.set_num_threads(threads)
        env.close()
    wins = sum(success)
    return {
        "coverage": coverage,
        "success": success,
        "mean_coverage": round(float(np.mean(coverage)), 12),
        "coverage_ci": [round(v, 12) for v in bootstrap_mean_ci(coverage, seed)],
        "success_rate": wins / len(success),
        "success_ci": [round(v, 12) for v in wilson_interval(wins, len(success))],
    }


def _step(number: int, total: int, text: str) -> float:
    print(f"\n[{number}/{total}] {text}", flush=True)
    return time.perf_counter()


def _done(started: float, text: str) -> None:
    print(f"      {text} ({time.perf_counter() - started:.0f} s)", flush=True)


def _reward_model_figures(
    truth: dict[int, dict[str, Any]], annotations: dict[int, dict[str, Any]]
) -> dict[str, Any]:
    """The reward model's MAE, ECE, preference accuracy and policy ranking on the pool, against the truth."""
    from roboreward import metrics
    from roboreward.apps.curves import spearman
    from roboreward.bench.quality import quality_entry

    order = sorted(annotations)
    predicted = [int(annotations[i]["score"]) for i in order]
    references = [int(truth[i]["score"]) for i in order]
    mae = metrics.load("mae").compute(predictions=predicted, references=references)["mae"]
    quality = quality_entry(
        predicted, references, [list(annotations[i]["probs"]) for i in order], ["pusht"] * len(order)
    )
    skills = sorted({float(truth[i]["skill"]) for i in order}, reverse=True)
    by_skill = {
        str(k): {
            "episodes": sum(1 for i in order if float(truth[i]["skill"]) == k),
            "mean_expected_score": round(
                float(np.mean([annotations[i]["expected"] for i in order if float(truth[i]["skill"]) == k])),
                6,
            ),
            "mean_true_coverage": round(
                float(np.mean([truth[i]["coverage"] for i in order if float(truth[i]["skill"]) == k])), 6
            ),
        }
        for k in skills
    }
    ranking = spearman(
        [v["mean_expected_score"] for v in by_skill.values()],
        [v["mean_true_coverage"] for v in by_skill.values()],
    )
    calibration = quality["calibration"] or {}
    return {
        "episodes": len(order),
        "mae": round(float(mae), 6),
        "ece": calibration.get("ece"),
        "preference_accuracy": quality["preference"]["accuracy"],
        "preference_pairs": quality["preference"]["pairs"],
        "policy_ranking_spearman": None if math.isnan(ranking) else round(float(ranking), 6),
        "by_skill": by_skill,
        "predicted_counts": {str(k): predicted.count(k) for k in rubric.SCORES},
        "true_counts": {str(k): references.count(k) for k in rubric.SCORES},
    }


def render_table(results: dict[str, Any]) -> str:
    """``imitation.md``: one row per data selection, then the reward model's figures.

    Args:
        results: what `run_imitation` returns.
    """
    lines = [
        f"PushT behaviour cloning: {results['bc_seeds']} policies per data selection (training seeds), "
        f"each run on the same {results['eval_episodes']} seeded episodes "
        f"(95% intervals over those runs: bootstrap for coverage, Wilson for success)",
        "",
        "| data selection | demos | steps | mean final coverage | 95% CI | success rate | 95% CI |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in SELECTIONS:
        row = results["policies"][name]
        if row.get("skipped"):
            lines.append(f"| {name} | 0 | 0 | - | - | - | - ({row['skipped']}) |")
            continue
        lines.append(
            f"| {name} | {row['demos']} | {row['steps']} | {row['mean_coverage']:.3f} | "
            f"{row['coverage_ci'][0]:.3f}-{row['coverage_ci'][1]:.3f} | {row['success_rate']:.2f} | "
            f"{row['success_ci'][0]:.2f}-{row['success_ci'][1]:.2f} |"
        )
    rm = results["reward_model"]
    ece = "-" if rm["ece"] is None else f"{rm['ece']:.3f}"
    ranking = "-" if rm["policy_ranking_spearman"] is None else f"{rm['policy_ranking_spearman']:.2f}"
    pref = "-" if rm["preference_accuracy"] is None else f"{rm['preference_accuracy']:.3f}"
    lines += [
        "",
        f"Reward model `{results['model']}` on the {rm['episodes']} pool episodes, against the env's truth: "
        f"MAE {rm['mae']:.3f}, ECE {ece}, preference accuracy {pref} ({rm['preference_pairs']} pairs), "
        f"policy ranking (Spearman of mean expected score and mean true coverage over the "
        f"{len(rm['by_skill'])} scripted skills) {ranking}.",
        f"It kept {results['kept']['reward_model']} of {results['pool_episodes']} demonstrations "
        f"(score >= {results['keep_min_score']}); the truth passes {results['kept']['oracle']}; the random "
        f"subset holds {results['kept']['random_subset']}"
        + (
            " (the oracle's size: the reward model kept none)."
            if not results["kept"]["reward_model"]
            else "."
        ),
    ]
    return "\n".join(lines) + "\n"


def plot_selection(path: Path, results: dict[str, Any]) -> Path:
    """``coverage_by_selection.png``: mean final coverage (with its interval) by data selection, the
    oracle's and the random subset's as lines across.

    Args:
        path: the PNG to write.
        results: what `run_imitation` returns.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(n, results["policies"][n]) for n in SELECTIONS if not results["policies"][n].get("skipped")]
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    xs = np.arange(len(rows))
    means = [r["mean_coverage"] for _, r in rows]
    errors = np.array(
        [
            [r["mean_coverage"] - r["coverage_ci"][0], r["coverage_ci"][1] - r["mean_coverage"]]
            for _, r in rows
        ]
    ).T
    colours = ["#4C72B0" if n not in ("oracle keeps", "random subset") else "#BBBBBB" for n, _ in rows]
    ax.bar(xs, means, yerr=errors, color=colours, capsize=4)
    for name, style, colour in (("oracle keeps", "--", "#2CA02C"), ("random subset", ":", "#D62728")):
        entry = results["policies"][name]
        if not entry.get("skipped"):
            ax.axhline(
                entry["mean_coverage"],
                linestyle=style,
                color=colour,
                label=f"{name} ({entry['mean_coverage']:.3f})",
            )
    ax.set_xticks(xs)
    ax.set_xticklabels([n.replace(" ", "\n", 2) for n, _ in rows], fontsize=8)
    ax.set_ylabel("mean final coverage")
    runs = results["eval_episodes"] * results["bc_seeds"]
    ax.set_title(f"PushT BC by data selection ({runs} runs each, 95% CI)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run_imitation(config: ImitationConfig) -> dict[str, Any]:
    """Run the experiment into ``config.out`` (see the module docstring); returns ``imitation.json``.

    Args:
        config: what to do.
    """
    from roboreward.apps.annotate import ANNOTATIONS, AnnotateConfig, annotate_lerobot
    from roboreward.apps.frame_signals import SAMPLE_WEIGHTS
    from roboreward.sim.pusht import write_pusht_dataset

    out = Path(config.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    began = time.perf_counter()
    steps = 5 if config.model is None else 4
    number = 1

    t = _step(
        number,
        steps,
        "simulating PushT rollouts of scripted policies (expert to random) with the env's truth",
    )
    reward_sim = out / "sources" / "pusht_reward"
    pool = out / "sources" / "pusht_pool"
    if config.model is None:
        write_pusht_dataset(reward_sim, config.reward_episodes, config.seed, config.max_steps)
    write_pusht_dataset(pool, config.pool_episodes, config.seed + 1, config.max_steps)
    truth = {
        int(t["episode_id"]): t for t in map(json.loads, (pool / "sim_truth.jsonl").read_text().splitlines())
    }
    made = f"{config.pool_episodes} pool rollouts"
    if config.model is None:
        made = f"{config.reward_episodes} rollouts for the reward model, " + made
    _done(t, made)
    number += 1

    model = config.model
    if model is None:
        t = _step(number, steps, f"building and training a small reward model ({config.train_steps} steps)")
        model = str(_train_reward_model(config, reward_sim, out))
        summary = json.loads((Path(model) / "training_summary.json").read_text())
        _done(t, f"best validation MAE {summary['best_mae']:.3f} at step {summary['best_step']}")
        number += 1

    t = _step(number, steps, f"roboreward annotate the pool, keeping scores >= {config.keep_min_score}")
    annotated, kept_copy = out / "annotate", out / "pool_kept"
    report = annotate_lerobot(
        AnnotateConfig(
            lerobot=str(pool),
            model=model,
            out=str(annotated),
            keep_min_score=config.keep_min_score,
            filtered_out=str(kept_copy),
            weight_temperature=config.temperature,
            device=config.device,
        )
    )
    assert report is not None  # one process
    table = pq.read_table(annotated / ANNOTATIONS).to_pylist()
    annotations = {int(r["episode_index"]): r for r in table}
    kept = sorted(i for i, r in annotations.items() if r["score"] >= config.keep_min_score)
    weight_rows = pq.read_table(annotated / SAMPLE_WEIGHTS).to_pylist()
    weight_of = {int(r["episode_index"]): float(r["weight"]) for r in weight_rows}
    _done(t, f"scores {report['score_counts']}; kept {len(kept)} of {len(annotations)}")
    number += 1

    t = _step(number, steps, "behaviour cloning five ways, each run in the env")
    demos = read_lerobot_steps(pool)
    oracle = sorted(i for i in demos if int(truth[i]["score"]) >= config.keep_min_score)
    rng = np.random.default_rng(config.seed)
    size = len(kept) if kept else len(oracle)  # the control of the reward model's choice, else the oracle's
    random_subset = sorted(rng.choice(sorted(demos), size=size, replace=False).tolist()) if size else []
    kept_demos = list(read_lerobot_steps(kept_copy).values()) if kept else []
    scored = sorted(i for i in demos if i in annotations)
    plans: dict[str, tuple[list[tuple[np.ndarray, np.ndarray]], list[float] | None, list[int]]] = {
        "all": ([demos[i] for i in sorted(demos)], None, sorted(demos)),
        "reward model keeps": (kept_demos, None, kept),
        "reward model weights": (
            [demos[i] for i in scored],
            [weight_of[i] for i in scored],
            scored,
        ),
        "oracle keeps": ([demos[i] for i in oracle], None, oracle),
        "random subset": ([demos[i] for i in random_subset], None, random_subset),
    }
    policies: dict[str, dict[str, Any]] = {}
    for name in SELECTIONS:
        episodes, weights, indices = plans[name]
        if not episodes:
            policies[name] = {"skipped": "no demonstrations selected", "episodes": []}
            print(f"      {name}: no demonstrations selected", flush=True)
            continue
        trained = [
            train_bc(episodes, weights, epochs=config.bc_epochs, seed=config.seed * 1000 + k)
            for k in range(config.bc_seeds)
        ]
        result = evaluate_policy(trained, config.eval_episodes, config.max_steps, config.seed)
        policies[name] = {
            "demos": len(episodes),
            "steps": int(sum(len(s) for s, _ in episodes)),
            "episodes": indices,
            "weights": None if weights is None else [round(w, 6) for w in weights],
            "true_mean_coverage_of_demos": round(float(np.mean([truth[i]["coverage"] for i in indices])), 6),
            **result,
        }
        print(
            f"      {name}: {len(episodes)} demos -> coverage {result['mean_coverage']:.3f}, "
            f"success {result['success_rate']:.2f}",
            flush=True,
        )
    _done(t, f"{len(SELECTIONS)} selections x {config.bc_seeds} policies x {config.eval_episodes} episodes")
    number += 1

    t = _step(number, steps, "the reward model's own figures, the table and the plot")
    results = {
        "config": asdict(config),
        "model": model if config.model is not None else "reward-model (trained here)",
        "pool_episodes": config.pool_episodes,
        "eval_episodes": config.eval_episodes,
        "bc_seeds": config.bc_seeds,
        "keep_min_score": config.keep_min_score,
        "kept": {"reward_model": len(kept), "oracle": len(oracle), "random_subset": len(random_subset)},
        "pool_truth": {
            "success": sum(bool(t["success"]) for t in truth.values()),
            "mean_coverage": round(float(np.mean([t["coverage"] for t in truth.values()])), 6),
        },
        "reward_model": _reward_model_figures(truth, annotations),
        "policies": policies,
    }
    (out / "imitation.json").write_text(json.dumps(results, indent=2) + "\n")
    text = render_table(results)
    (out / "imitation.md").write_text(text)
    plot_selection(out / "coverage_by_selection.png", results)
    _done(t, f"wrote {out / 'imitation.md'}, imitation.json, coverage_by_selection.png")
    print("\n" + text)
    print(f"total {time.perf_counter() - began:.0f} s")
    return results


def _train_reward_model(config: ImitationConfig, reward_sim: Path, out: Path) -> Path:
    """``roboreward build`` of the reward model's rollouts (rewards from the truth sidecar), then the
    demo's training through ``trl_training/sft.py`` on them; returns the checkpoint folder."""
    from roboreward.apps.training_run import Tee, train_tiny_reward_model
    from roboreward.dataset.builder import BuildConfig, build
    from roboreward.testing.tiny import make_tiny_vlm

    dataset = out / "roboreward"
    build(
        BuildConfig(
            lerobot=[str(reward_sim)],
            out=str(dataset),
            seed=config.seed,
            oxe_episodes=config.reward_episodes,
            split_ratios={"train": 0.8, "validation": 0.2, "test": 0.0},
            max_side=config.max_side,
            max_frames=16,
            num_proc=1,
        )
    )
    base = make_tiny_vlm(out / "models" / "base-qwen2_5_vl", size=config.model_size, seed=config.seed)
    run = out / "reward-model"
    with Tee(out / "training.log"):
        train_tiny_reward_model(
            base,
            dataset,
            run,
            train_steps=config.train_steps,
            learning_rate=config.learning_rate,
            batch_size=config.batch_size,
            num_frames=config.num_frames,
            max_side=config.max_side,
            seed=config.seed,
        )
    return run
