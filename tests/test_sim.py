"""The procedural tabletop: ground truth, rendering, and datasets that the real readers read."""

import json
from collections import Counter

import numpy as np
import pytest
import yaml
from conftest import split_entries

from roboreward import rubric, sim, video
from roboreward.cli import main as cli_main
from roboreward.sources.lerobot.reader import LeRobotSource
from roboreward.sources.roboarena import RoboArenaSource


@pytest.mark.parametrize("outcome", sim.OUTCOMES)
def test_each_outcome_has_its_rubric_score_and_a_progress_in_that_bin(outcome):
    for index in range(30):
        truth = sim.make_episode(index, outcome, seed=3).truth()
        assert truth["score"] == sim.OUTCOME_SCORE[outcome]
        assert truth["success"] == (outcome == "success")
        assert rubric.progress_to_score(truth["progress"]) == truth["score"]


def test_evaluate_by_hand():
    bowl = sim.Bowl("blue", 0.5, 0.5)
    other = sim.Bowl("green", 0.2, 0.2)
    start = sim.Scene(blocks=(sim.Block("red", 0.9, 0.5), sim.Block("yellow", 0.9, 0.9)), bowls=(bowl, other))

    def at(x, y):
        return sim.move_block(start, "red", x, y)

    assert sim.evaluate(start, at(0.52, 0.5), "red", "blue") == {"score": 5, "progress": 1.0, "success": True}
    rim = sim.evaluate(start, at(0.5 + 0.1, 0.5), "red", "blue")
    assert rim["score"] == 4 and 2 / 3 < rim["progress"] < 1
    assert sim.evaluate(start, at(0.2, 0.21), "red", "blue")["score"] == 3
    carried = sim.evaluate(start, at(0.7, 0.5), "red", "blue")  # 0.4 -> 0.2 from the bowl: half way
    assert carried == {"score": 2, "progress": round(1 / 3, 4), "success": False}
    assert sim.evaluate(start, at(0.88, 0.5), "red", "blue")["score"] == 1  # 0.02 closer is no progress
    assert sim.evaluate(start, start, "yellow", "blue") == {"score": 1, "progress": 0.0, "success": False}


def test_counterfactual_tasks_carry_exact_levels():
    episode = sim.make_episode(0, "success", seed=0)
    counterfactuals = {c["task"]: c["score"] for c in episode.counterfactuals()}
    assert episode.task not in counterfactuals
    assert len(counterfactuals) == 3 * 2 - 1  # every (block, bowl) pair on the table but the true one
    other_bowl = next(b.colour for b in episode.initial.bowls if b.colour != episode.bowl)
    assert counterfactuals[sim.task_text(episode.block, other_bowl)] == 3  # in a bowl, the wrong one
    for block in episode.initial.blocks[1:]:
        assert counterfactuals[sim.task_text(block.colour, episode.bowl)] == 1  # never touched


def test_rollouts_are_deterministic_and_render_the_final_state():
    a, b = sim.make_episode(4, "near_miss", seed=1), sim.make_episode(4, "near_miss", seed=1)
    assert a.states == b.states and a.task == b.task
    assert sim.make_episode(4, "near_miss", seed=2).initial != a.initial
    frame = sim.render(a.final, 160, 120)
    assert frame.shape == (120, 160, 3) and frame.dtype == np.uint8
    block = a.final.block(a.block)
    x, y = int(block.x * 160), int(block.y * 120)
    assert np.abs(frame[y, x].astype(int) - sim.COLOURS[a.block]).max() <= 2  # the block is drawn where it is
    assert np.array_equal(sim.render(a.final, 160, 120, mirror=True), frame[:, ::-1])


def test_lerobot_layout_holds_successes_that_the_reader_reads(tmp_path):
    root = sim.write_sim_dataset(tmp_path / "sim_tabletop_lerobot", episodes=4, layout="lerobot", seed=0)
    source = LeRobotSource(root)
    episodes, skips = split_entries(list(source.episodes()))
    assert source.name == "oxe/sim_tabletop" and not skips
    assert source.video_key == sim.LEROBOT_CAMERA  # the wrist camera is not the default
    truth = [json.loads(line) for line in (root / "sim_truth.jsonl").read_text().splitlines()]
    assert [t["outcome"] for t in truth] == ["success"] * 4
    assert [e.task for e in episodes] == [t["task"] for t in truth]
    assert {t["source"] for t in truth} == {"oxe/sim_tabletop"}
    # The truth where the reader looks for rewards too (successes here: 5, full progress).
    rewards = [
        json.loads(line) for line in (root / "meta" / "episode_rewards.jsonl").read_text().splitlines()
    ]
    assert rewards == [
        {"episode_index": i, "reward": t["score"], "progress": t["progress"]} for i, t in enumerate(truth)
    ]
    assert source.rewards_from == "meta/episode_rewards.jsonl"
    assert [(e.reward, e.progress) for e in episodes] == [(5, 1.0)] * 4
    info = video.probe(episodes[0].video)
    assert (info.width, info.height, info.fps, info.codec) == (160, 120, 10.0, "h264")
    assert info.frames == len(sim.make_episode(0, "success", seed=0).states)


def test_roboarena_layout_gives_every_level_and_the_reader_recovers_it(tmp_path):
    root = sim.write_sim_dataset(tmp_path / "arena", episodes=12, layout="roboarena", seed=0)
    episodes, skips = split_entries(list(RoboArenaSource(root).episodes()))
    assert len(episodes) == 12 and not skips
    truth = {t["episode_id"]: t for t in map(json.loads, (root / "sim_truth.jsonl").read_text().splitlines())}
    assert {e.episode_id: e.reward for e in episodes} == {k: t["score"] for k, t in truth.items()}
    assert Counter(e.reward for e in episodes) == {1: 4, 2: 2, 3: 2, 4: 2, 5: 2}
    meta = yaml.safe_load((root / "evaluation_sessions" / "sim_session_0000" / "metadata.yaml").read_text())
    assert sorted(meta["policies"]) == ["A", "B", "C"]
    # one table and one task per session
    session = [e for e in episodes if e.episode_id.startswith("sim_session_0000/")]
    assert len({e.task for e in session}) == 1 and session[0].task == meta["language_instruction"]


def test_av1_lerobot_and_refusals(tmp_path):
    root = sim.write_sim_dataset(
        tmp_path / "av1", episodes=2, layout="lerobot", codec="libsvtav1", cameras=["scene"]
    )
    episodes, _ = split_entries(list(LeRobotSource(root).episodes()))
    assert video.probe(episodes[0].video).codec == "av1"
    with pytest.raises(FileExistsError):
        sim.write_sim_dataset(root, episodes=2)
    with pytest.raises(ValueError, match="layout"):
        sim.write_sim_dataset(tmp_path / "x", layout="rlds")
    with pytest.raises(ValueError, match="outcome"):
        sim.make_episode(0, "teleport")


def test_cli_sim(tmp_path, capsys):
    assert cli_main(["sim", "--out", str(tmp_path / "a"), "--episodes", "3", "--layout", "roboarena"]) == 0
    assert "wrote 3 roboarena episodes" in capsys.readouterr().out
    assert cli_main(["sim", "--out", str(tmp_path / "a"), "--episodes", "3"]) == 1
    assert "exists" in capsys.readouterr().err
