"""RoboRewardBench as HELM ranks it (mean of per-subset MAEs), policy ranking and success detection,
on a built dataset of a RoboArena dump (six policies) and two Open X-Embodiment-like rows."""

import base64
import csv
import json

import pytest
from conftest import frame_index_of, write_manifest
from roboarena_fixtures import GOOD_SESSIONS, write_roboarena_dump

from roboreward import metrics, rubric, video
from roboreward.bench.run import BenchConfig, load_examples, run_bench
from roboreward.dataset.builder import BuildConfig, build
from roboreward.testing.chat_server import Reply, ScriptedChatServer


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("helm")
    dump = write_roboarena_dump(root / "dump", GOOD_SESSIONS)
    rows = [
        {"video": f"oxe{i}.mp4", "task": f"pick up the cup {i}", "reward": 5, "source": "oxe"}
        for i in range(2)
    ]
    write_manifest(root, rows)
    out = root / "ds"
    build(
        BuildConfig(
            manifest=[str(root / "m.jsonl")],
            roboarena=[str(dump)],
            out=str(out),
            split_ratios={"test": 1.0},
            max_side=32,
        )
    )
    return out


@pytest.fixture(scope="module")
def examples(dataset):
    return load_examples(str(dataset), "test")


def _write_predictions(path, examples, rule):
    path.write_text("".join(json.dumps({"id": e.id, "prediction": rule(e)}) + "\n" for e in examples))
    return f"predictions:{path}"


def test_rows_of_a_roboarena_dump_name_their_policy(examples):
    arena = [e for e in examples if e.subset == "roboarena"]
    assert len(arena) == 10 and all(e.subset == "oxe" for e in examples if e not in arena)
    assert sorted({e.policy for e in arena}) == [
        "paligemma_binning_droid",
        "paligemma_diffusion_droid",
        "paligemma_fast_droid",
        "paligemma_vq_droid",
        "pi0_droid",
        "pi0_fast_droid",
    ]
    assert {e.policy for e in examples if e.subset == "oxe"} == {None}


@pytest.mark.parametrize("conventions", ["helm", "roboreward"])
def test_helm_ranks_by_the_mean_of_subset_maes(dataset, examples, tmp_path, conventions):
    # "arena-expert": exact on the 10 RoboArena rows, 4 off on the 2 OXE rows:
    # all rows 8/12, subsets (0 + 4) / 2
    # "off-by-one": 1 off everywhere: all rows 1.0, subsets 1.0
    expert = _write_predictions(
        tmp_path / "arena-expert.jsonl", examples, lambda e: e.reward if e.policy else 1
    )
    off = _write_predictions(
        tmp_path / "off-by-one.jsonl", examples, lambda e: e.reward + (1 if e.reward < 5 else -1)
    )
    results = run_bench(
        BenchConfig(
            dataset=str(dataset), models=[expert, off], out=str(tmp_path / "out"), conventions=conventions
        )
    )
    a, b = results["models"]["arena-expert"], results["models"]["off-by-one"]
    assert a["mae"] == pytest.approx(8 / 12) and a["macro_mae"] == 2.0
    assert a["subset_mae"] == {"oxe": 4.0, "roboarena": 0.0}
    assert b["mae"] == 1.0 and b["macro_mae"] == 1.0
    # each wins one subset: win rates tie at 0.5, and the all-rows MAE decides under "roboreward"
    assert a["mean_win_rate"] == b["mean_win_rate"] == 0.5
    expected = ["off-by-one", "arena-expert"] if conventions == "helm" else ["arena-expert", "off-by-one"]
    assert results["leaderboard"] == expected
    header, *board = list(csv.reader((tmp_path / "out" / "leaderboard.csv").open()))
    assert header[2:5] == ["mean win rate", "MAE (mean of subsets)", "MAE (all rows)"]
    assert [row[1] for row in board] == expected
    by_name = {row[1]: row for row in board}
    assert by_name["arena-expert"][3:5] == ["2.000", "0.667"]
    text = (tmp_path / "out" / "leaderboard.md").read_text()
    ranked = (
        "Ranked by MAE (mean of subsets), as HELM ranks"
        if conventions == "helm"
        else "Ranked by mean win rate"
    )
    assert ranked in text


def test_policy_ranking_and_success_detection_in_results(dataset, examples, tmp_path):
    expert = _write_predictions(
        tmp_path / "arena-expert.jsonl", examples, lambda e: e.reward if e.policy else 1
    )
    results = run_bench(
        BenchConfig(dataset=str(dataset), models=[expert, "baseline:constant-3"], out=str(tmp_path / "out"))
    )
    assert results["num_policies"] == 6
    arena = [e for e in examples if e.policy]
    truth = metrics.load("policy_ranking").compute(
        predictions=[e.reward for e in arena],
        references=[e.reward for e in arena],
        policies=[e.policy for e in arena],
    )
    ranking = results["models"]["arena-expert"]["policy_ranking"]
    assert ranking["kendall_tau"] == 1.0 and ranking["spearman"] == 1.0 and ranking["num_policies"] == 6
    assert ranking["rows"] == 10 and ranking["policy_reference"] == truth["policy_reference"]
    constant = results["models"]["baseline:constant-3"]["policy_ranking"]
    assert constant["num_policies"] == 6 and constant["kendall_tau"] is None  # a flat column: none
    # success detection of the text scores: the expert scores its 3 true RoboArena successes 5, the 2 OXE
    # successes 1 and every failure below 5
    detection = results["models"]["arena-expert"]["success_detection"]
    expected = metrics.load("success_detection").compute(
        predictions=[float(e.reward if e.policy else 1) for e in examples],
        references=[e.reward for e in examples],
    )
    assert detection == {**expected, "score": "score"}
    assert detection["positives"] == 2 + sum(e.reward == 5 for e in arena)
    header, *board = list(csv.reader((tmp_path / "out" / "leaderboard.csv").open()))
    at = header.index("policy Kendall tau")
    assert header[at - 2 : at + 2] == [
        "success ROC-AUC",
        "success PR-AUC",
        "policy Kendall tau",
        "policy Spearman",
    ]
    assert {row[1]: row[at] for row in board} == {"arena-expert": "1.000", "baseline:constant-3": "n/a"}


def test_bench_prompt_helm_sends_text_then_the_frames_the_processor_picks(tmp_path):
    """`bench --prompt helm`: HELM's text first, then the video, whose frames are those a Qwen3-VL video
    processor's defaults pick (HELM's Qwen-VL client leaves the sampling to it), at full size."""
    from transformers import Qwen3VLVideoProcessor
    from transformers.video_utils import VideoMetadata

    rows = [{"video": "ep.mp4", "task": "open the drawer", "reward": 3, "source": "oxe"}]
    write_manifest(tmp_path / "src", rows, num_frames=37)  # 3.7 s at 10 fps
    build(
        BuildConfig(
            manifest=[str(tmp_path / "src" / "m.jsonl")], out=str(tmp_path / "ds"), split_ratios={"test": 1.0}
        )
    )
    with ScriptedChatServer(lambda request: Reply("ANSWER: 3"), model="judge") as server:
        results = run_bench(
            BenchConfig(
                dataset=str(tmp_path / "ds"),
                models=[f"openai:{server.url}#judge"],
                out=str(tmp_path / "out"),
                prompt="helm",
                conventions="helm",
            )
        )
    raw = server.raw_requests[-1]
    content = json.loads(raw)["messages"][0]["content"]
    assert [part["type"] for part in content] == ["text", "video_url"]
    text = rubric.build_prompt("open the drawer", "helm")
    assert text == rubric.build_prompt("open the drawer", "release") and content[0]["text"] == text
    assert raw.index(json.dumps(text).encode()) < raw.index(b"data:video/mp4;base64,")  # the bytes in order
    sent = video.sample_frames(base64.b64decode(content[1]["video_url"]["url"].split(",", 1)[1]))
    (example,) = load_examples(str(tmp_path / "ds"), "test")
    info = video.probe(example.video)
    picked = Qwen3VLVideoProcessor().sample_frames(VideoMetadata(total_num_frames=info.frames, fps=info.fps))
    assert (info.frames, info.fps) == (37, 10.0) and list(picked) == [
        0,
        6,
        12,
        18,
        24,
        30,
        36,
    ]  # int(3.7 * 2)
    every = video.sample_frames(example.video)
    assert (
        [frame_index_of(f) for f in sent]
        == [frame_index_of(every[i]) for i in picked]
        == [0, 6, 12, 18, 24, 30, 4]
    )
    assert sent.shape[1:3] == every.shape[1:3]  # full size: the processor resizes
    settings = results["models"]["judge"]["inference_settings"]
    assert (settings["prompt"], settings["sampler"], settings["video_first"]) == ("helm", "processor", False)
    assert (settings["num_frames"], settings["fps"], settings["max_side"]) == (None, None, None)
    assert results["models"]["judge"]["mae"] == 0.0


def test_the_preference_scenario_asked_directly_in_helms_wording(dataset, examples, tmp_path):
    """`--preference-pairs N`: a served model is asked about two rollouts of one RoboArena session in one
    prompt, HELM's instructions, task, then each policy's title, camera header and video."""
    with ScriptedChatServer(lambda request: Reply("A did it.\nANSWER: A"), model="judge") as server:
        results = run_bench(
            BenchConfig(
                dataset=str(dataset),
                models=[f"openai:{server.url}#judge"],
                out=str(tmp_path / "out"),
                num_frames=2,
                preference_pairs=3,
            )
        )
    asked = [r for r in server.requests if "Policy A" in json.dumps(r)]
    assert len(asked) == 3
    content = asked[0]["messages"][0]["content"]
    kinds = [p["type"] if p["type"] != "text" else p["text"] for p in content]
    task = content[1]["text"]
    assert task.startswith("\nTask: ") and task.endswith("\n")
    assert kinds == [
        rubric.HELM_PREFERENCE_INSTRUCTIONS,
        task,
        "Policy A",
        "Policy A - Left camera:",
        "video_url",
        "\n",
        "Policy B",
        "Policy B - Left camera:",
        "video_url",
    ]
    entry = results["models"]["judge"]["preference_direct"]
    references = [a["reference"] for a in entry["answers"]]
    assert entry["direct"]["pairs"] == 3 and entry["direct"]["right"] == references.count("A")
    assert entry["direct"]["unparsed"] == 0 and {a["output"] for a in entry["answers"]} == {
        "A did it.\nANSWER: A"
    }
    by_id = {e.id: e for e in examples}
    for answer in entry["answers"]:  # pairs of one session, the reference from their true rewards
        a, b = by_id[answer["a"]], by_id[answer["b"]]
        assert a.group == b.group and a.policy and b.policy
        assert answer["reference"] == ("A" if a.reward > b.reward else "B" if a.reward < b.reward else "tie")
    # every pair answered from the two single scores too (ANSWER: nothing parsable -> every pair wrong)
    helm = results["models"]["judge"]["preference_helm"]
    assert helm["pairs"] == 1 + 1 + 3 + 3 and helm["right"] == 0  # the sessions' runs: 2, 2, 3, 3


def test_a_local_model_answers_a_two_video_prompt(tiny_vlm_dir, dataset, examples):
    from roboreward.models.local import RewardModel

    model = RewardModel.from_pretrained(tiny_vlm_dir, num_frames=2, max_side=32)
    a, b = [e for e in examples if e.policy][:2]
    parts = rubric.preference_parts(a.task, ["left"], ["left"])
    videos = {("A", 0): a.video, ("B", 0): b.video}
    inputs = model.encode_parts([p if isinstance(p, str) else videos[p] for p in parts])
    assert inputs["video_grid_thw"].shape[0] == 2  # two videos in one prompt
    text = model.generate_parts([p if isinstance(p, str) else videos[p] for p in parts], max_new_tokens=3)
    assert isinstance(text, str)


def test_a_local_checkpoint_asked_the_helm_way(tiny_vlm_dir, tmp_path):
    from conftest import write_video

    from roboreward.models.local import RewardModel

    model = RewardModel.from_pretrained(tiny_vlm_dir, prompt="helm")
    settings = model.settings
    assert (settings.prompt, settings.sampler, settings.video_first) == ("helm", "processor", False)
    assert (settings.num_frames, settings.fps, settings.max_side) == (None, None, None)
    text = model.render_prompt("open the drawer")
    assert text.index("Task: open the drawer") < text.index("<|video_pad|>")  # text before video
    episode = write_video(tmp_path / "ep.mp4", num_frames=37, fps=10)
    frames, rate = model.load_frames(episode)
    assert [frame_index_of(f) for f in frames] == [0, 6, 12, 18, 24, 30, 4]  # 36 mod 32: the processor's pick
    assert frames.shape[1:3] == (48, 64) and rate == pytest.approx(7 / 3.7)
    result = model.score(episode, "open the drawer")
    assert sum(result.probs) == pytest.approx(1.0, abs=1e-5)
