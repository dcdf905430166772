"""`roboreward demo` (what `make demo` runs): the whole toolkit, offline, on 2 CPU cores.

1. render procedural tabletop rollouts with ground-truth rewards (`roboreward.sim`), written
   as a LeRobot v2.1 dataset (successes, like Open X-Embodiment) and a RoboArena dump (every outcome);
2. `roboreward build` them, with relabeling: counterfactual rows whose levels the simulator knows
   exactly, plus the model-based stages run on tiny offline models (random weights: their answers
   are garbage, and the relabel report shows every one rejected);
3. fine-tune a small Qwen2.5-VL-architecture reward model with ``roboreward train``'s code (what
   `trl_training/sft.py` runs), in this process, on the shipped ``tiny_cpu`` recipe (found through
   `roboreward.resources`, so any install runs the demo);
4. `roboreward bench` on the test split: the trained model, the same model untrained, a constant
   baseline (the most common training reward) and a random one;
5. write the leaderboard, plots and a model card to ``demo_output/`` and print the leaderboard.

Every step goes through the code users run on real data; only the sizes are small.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from roboreward.apps.training_run import Tee, train_tiny_reward_model
from roboreward.config import check_fields, check_range
from roboreward.dataset.folder import BUILD_REPORT, RELABEL_REPORT, DatasetFolder
from roboreward.extras import require
from roboreward.models.settings import MAX_NUM_FRAMES

__all__ = ["TRAINED", "UNTRAINED", "DemoConfig", "run_demo"]

#: The trained model's and the untrained baseline's folders, which the leaderboard names them by.
TRAINED, UNTRAINED = "reward-model", "base-qwen2_5_vl"


@dataclass
class DemoConfig:
    """What `run_demo` makes (``roboreward demo``'s flags); bad values fail here, before any step."""

    out: str = "demo_output"
    arena_episodes: int = 72  # RoboArena sessions of 3 policy runs: every rubric level
    oxe_episodes: int = 36  # LeRobot successes
    train_steps: int = 500
    learning_rate: float = 5e-4  # a model trained from random weights needs more than the paper's 3e-6
    num_frames: int = 8
    max_side: int = 112
    batch_size: int = 4
    seed: int = 0
    model_size: Literal["tiny", "small"] = "small"  # roboreward.testing.tiny.SIZES
    serve: bool = False
    # ``env="pusht"``: the imitation experiment (`roboreward.apps.imitation`) instead of the tour
    env: Literal["tabletop", "pusht"] = "tabletop"
    pusht_episodes: int = 40  # rollouts the reward model trains on, and as many to annotate and imitate
    eval_episodes: int = 30  # seeded env episodes per behaviour-cloned policy
    keep_min_score: int = 4
    model: str | None = None  # annotate with this reward model instead of training one

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.out.strip():
            raise ValueError("out is empty")
        names = ("arena_episodes", "oxe_episodes", "train_steps", "batch_size")
        for name in (*names, "pusht_episodes", "eval_episodes"):
            check_range(self, name, low=1)
        check_range(self, "num_frames", 1, MAX_NUM_FRAMES)
        check_range(self, "keep_min_score", low=1, high=5)
        if self.env != "pusht" and self.model is not None:
            raise ValueError("model (a reward model to annotate with) applies to --env pusht only")
        if self.env == "pusht" and self.serve:
            raise ValueError("serve applies to --env tabletop only")
        check_range(self, "max_side", low=16)  # the build's smallest frames
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")


def _step(number: int, text: str) -> float:
    print(f"\n[{number}/5] {text}", flush=True)
    return time.perf_counter()


def _done(started: float, text: str) -> None:
    print(f"      {text} ({time.perf_counter() - started:.0f} s)", flush=True)


def run_demo(config: DemoConfig) -> dict[str, Any]:
    """Run the five steps into ``config.out``; returns the bench results.

    With ``env="pusht"`` it runs `roboreward.apps.imitation.run_imitation` instead (reward-filtered
    and reward-weighted behaviour cloning on PushT) and returns its results.

    Args:
        config: what to make.
    """
    if config.env == "pusht":
        from roboreward.apps.imitation import ImitationConfig, run_imitation

        return run_imitation(
            ImitationConfig(
                out=config.out,
                reward_episodes=config.pusht_episodes,
                pool_episodes=config.pusht_episodes,
                eval_episodes=config.eval_episodes,
                model=config.model,
                train_steps=config.train_steps,
                learning_rate=config.learning_rate,
                num_frames=config.num_frames,
                max_side=config.max_side,
                batch_size=config.batch_size,
                model_size=config.model_size,
                keep_min_score=config.keep_min_score,
                seed=config.seed,
            )
        )
    from roboreward import sim
    from roboreward.bench.run import BenchConfig, run_bench
    from roboreward.dataset.builder import BuildConfig, build
    from roboreward.dataset.cards import render_model_card
    from roboreward.relabel import RelabelConfig, Relabeler
    from roboreward.testing.tiny import make_tiny_lm, make_tiny_vlm

    if config.serve:  # --serve needs gradio: say so before the minutes of the demo, not after them
        require("gradio", "space")
    out = Path(config.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    began = time.perf_counter()

    t = _step(1, "rendering simulated robot episodes with ground-truth rewards")
    lerobot = sim.write_sim_dataset(
        out / "sources" / "sim_tabletop", config.oxe_episodes, "lerobot", config.seed
    )
    arena = sim.write_sim_dataset(
        out / "sources" / "roboarena_sim", config.arena_episodes, "roboarena", config.seed + 1
    )
    _done(
        t,
        f"{config.oxe_episodes} LeRobot successes, {config.arena_episodes} RoboArena runs",
    )

    t = _step(2, "roboreward build, with relabeling (sim-truth counterfactuals + tiny offline models)")
    models = out / "models"
    vlm = make_tiny_vlm(models / "relabel-vlm", size="tiny", seed=1)
    llm = make_tiny_lm(models / "relabel-lm", size="tiny", seed=1)
    relabeler = Relabeler(
        RelabelConfig(
            vlm=f"hf:{vlm}",
            llm=f"hf:{llm}",
            stages=["rewrite", "counterfactual", "paraphrase"],
            max_new_tokens=24,
            max_retries=1,
            workers=1,
        )
    )
    truth = sim.TruthCounterfactuals([lerobot / "sim_truth.jsonl", arena / "sim_truth.jsonl"])

    def augment(episodes, work_dir):
        relabeled, skips, _ = relabeler(episodes, work_dir)
        with_truth, _, truth_report = truth(relabeled, work_dir)
        # The report describes the rows written: the sim-truth counterfactuals included.
        report = relabeler.report(episodes, with_truth)
        report["stages"]["sim_truth_counterfactual"] = {"accepted": truth_report["sim_truth"]["added"]}
        return with_truth, skips, {"relabel": report}

    dataset = out / "roboreward"
    report = build(
        BuildConfig(
            lerobot=[str(lerobot)],
            roboarena=[str(arena)],
            out=str(dataset),
            seed=config.seed,
            oxe_episodes=config.oxe_episodes,
            split_ratios={"train": 0.7, "validation": 0.1, "test": 0.2},
            max_side=config.max_side,
            max_frames=16,
            num_proc=1,
        ),
        augment=augment,
    )
    rows = {s: report["rows"][s]["rows"] for s in ("train", "validation", "test")}
    _done(t, f"{rows} rows; relabel report in {dataset / RELABEL_REPORT}")

    t = _step(
        3,
        f"fine-tuning a small Qwen2.5-VL reward model with trl_training/sft.py ({config.train_steps} steps)",
    )
    base = make_tiny_vlm(models / UNTRAINED, size=config.model_size, seed=config.seed)
    run = out / TRAINED
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
    summary = json.loads((run / "training_summary.json").read_text())
    curve = ", ".join(f"{e['step']}: {e['mae']:.2f}" for e in summary["evals"])
    _done(t, f"validation MAE by step {curve}; best step {summary['best_step']}")

    t = _step(4, "roboreward bench on the test split")
    train_rewards = Counter(DatasetFolder(dataset).read_report(BUILD_REPORT)["rows"]["train"]["by_reward"])
    constant = int(max(train_rewards, key=lambda k: (train_rewards[k], k)))
    bench_dir = out / "bench"
    results = run_bench(
        BenchConfig(
            dataset=str(dataset),
            models=[str(run), str(base), f"baseline:constant-{constant}", "baseline:random"],
            out=str(bench_dir),
            num_frames=config.num_frames,
            max_side=config.max_side,
            batch_size=8,
            seed=config.seed,
        )
    )
    _done(t, f"{results['num_examples']} test examples, {len(results['subsets'])} subsets")

    t = _step(5, "model card and leaderboard")
    render_model_card(
        run,
        bench=bench_dir,
        out=out / "model_card.md",
        model_name="roboreward-demo-small",
        bench_model=run.name,
    )
    for name in (
        "leaderboard.md",
        "leaderboard.csv",
        "subset_mae_heatmap.png",
        "mean_win_rate.png",
        "results.json",
    ):
        shutil.copy(bench_dir / name, out / name)
    _done(t, f"wrote {out / 'model_card.md'}")
    print("\n" + (out / "leaderboard.md").read_text())
    trained, untrained = results["models"][run.name]["mae"], results["models"][base.name]["mae"]
    print(
        f"trained MAE {trained:.3f} vs untrained {untrained:.3f}; total {time.perf_counter() - began:.0f} s"
    )
    if config.serve:
        _serve(run, config)
    return results


def _serve(checkpoint: Path, config: DemoConfig) -> None:
    """``roboreward space`` on the trained model, in this process (SIGTERM or Ctrl-C stops it)."""
    from roboreward.apps.space import run_space

    run_space(checkpoint)
