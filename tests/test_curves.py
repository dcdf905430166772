"""Progress curves: `RewardModel.progress_curve`, `roboreward curve`, value-order correlation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import TINY_VLM_FIXTURES, write_video
from stub_vlm import DISTRIBUTIONS, StubVLM, expected_of
from transformers import AutoProcessor

from roboreward import video
from roboreward.apps.curves import BAND_LABEL, average_ranks, curve_figure, spearman, value_order_correlation
from roboreward.cli import main
from roboreward.models.local import RewardModel
from roboreward.models.results import CurvePoint, ProgressCurve, score_result

TASK = "put the red block in the blue bowl"


@pytest.fixture(scope="module")
def stub(tiny_vlm_dir):
    processor = AutoProcessor.from_pretrained(tiny_vlm_dir)
    model = RewardModel(StubVLM((0,) * 5, len(processor.tokenizer)), processor, num_frames=8, frames_fps=4.0)
    model.model.score_token_ids = list(model.score_token_ids)
    return model


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """30 frames at 10 fps: 3 s."""
    return write_video(tmp_path_factory.mktemp("curve-video") / "a.mp4", num_frames=30, fps=10)


def _frames(n: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def test_curve_on_a_stub_is_exactly_the_prefix_lengths_answers(stub):
    # 16 frames at 4 fps, K=4: prefixes of 4, 8, 12, 16 frames -> temporal grids 2, 4, 6, 8.
    curve = stub.progress_curve(_frames(16), TASK, points=4, batch_size=8)
    assert curve.duration == 4.0
    assert curve.times == [1.0, 2.0, 3.0, 4.0]
    assert [p.fraction for p in curve.points] == [0.25, 0.5, 0.75, 1.0]
    for point, grid in zip(curve.points, [2, 4, 6, 8], strict=True):
        np.testing.assert_allclose(point.result.probs, DISTRIBUTIONS[grid], atol=1e-6)
        assert point.result.expected == pytest.approx(expected_of(DISTRIBUTIONS[grid]), abs=1e-6)
        assert point.result.reward == pytest.approx((expected_of(DISTRIBUTIONS[grid]) - 1) / 4, abs=1e-6)
        assert point.result.score == int(np.argmax(DISTRIBUTIONS[grid])) + 1


def test_odd_prefixes_repeat_their_last_frame(stub):
    # 10 frames, K=3: prefixes of ceil(10/3)=4, ceil(20/3)=7 -> 8 (even), 10 frames -> grids 2, 4, 5.
    curve = stub.progress_curve(_frames(10), TASK, points=3)
    for point, grid in zip(curve.points, [2, 4, 5], strict=True):
        np.testing.assert_allclose(point.result.probs, DISTRIBUTIONS[grid], atol=1e-6)


@pytest.mark.parametrize(("points", "batch_size", "passes"), [(8, 8, 1), (8, 3, 3), (5, 2, 3), (1, 4, 1)])
def test_curve_costs_one_forward_pass_per_chunk(stub, points, batch_size, passes):
    stub.model.calls, stub.model.batch_sizes = 0, []
    stub.progress_curve(_frames(16), TASK, points=points, batch_size=batch_size)
    assert stub.model.calls == passes == math.ceil(points / batch_size)
    assert sum(stub.model.batch_sizes) == points


def test_curve_refuses_bad_arguments(stub):
    for points in (0, 257, 2.5, True):
        with pytest.raises(ValueError, match=r"points must be an integer in 1\.\.256, got"):
            stub.progress_curve(_frames(4), TASK, points=points)
    with pytest.raises(ValueError, match="batch_size"):
        stub.progress_curve(_frames(4), TASK, batch_size=0)
    with pytest.raises(ValueError, match="empty"):
        stub.progress_curve(_frames(4), "  ")


def test_video_curve_applies_the_frame_policy_to_each_prefix(tiny_vlm_dir, clip):
    model = RewardModel.from_pretrained(tiny_vlm_dir, num_frames=4)
    curve = model.progress_curve(clip, TASK, points=3, batch_size=2)
    assert curve.times == pytest.approx([1.0, 2.0, 3.0])
    # The last point is the whole episode: exactly `score`.
    assert curve.points[-1].result.probs == pytest.approx(model.score(clip, TASK).probs, abs=1e-6)
    # A middle point is the episode cut there, sampled as the settings say (4 frames over [0, t)).
    for point in curve.points[:-1]:
        frames = video.sample_frames(clip, num_frames=4, end=point.time, max_side=model.max_side)
        alone = model.score(frames, TASK, fps=4 / point.time)
        assert point.result.probs == pytest.approx(alone.probs, abs=1e-6)


@pytest.mark.parametrize("sampling", [{"num_frames": 4}, {"fps": 4.0}], ids=["fixed_count", "rate"])
def test_each_curve_point_equals_score_of_its_prefix_from_one_decoding_pass(
    tiny_vlm_dir, clip, sampling, monkeypatch
):
    model = RewardModel.from_pretrained(tiny_vlm_dir, **sampling)
    passes = []
    frames_at = video.frames_at
    monkeypatch.setattr(video, "frames_at", lambda *a, **k: passes.append(a) or frames_at(*a, **k))
    monkeypatch.setattr(video, "sample_frames", None)  # a per-prefix decode would fail
    curve = model.progress_curve(clip, TASK, points=5, batch_size=3, start=0.2)
    assert len(passes) == 1
    monkeypatch.undo()
    assert curve.times == pytest.approx([0.56, 1.12, 1.68, 2.24, 2.8])
    for point in curve.points:
        alone = model.score(clip, TASK, start=0.2, end=0.2 + point.time)
        assert point.result.probs == pytest.approx(alone.probs, abs=1e-4)
        assert point.result.expected == pytest.approx(alone.expected, abs=1e-4)


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_aligned_curve_runs_the_video_once_and_each_point_equals_score_of_its_prefix(
    family, request, clip, monkeypatch
):
    model = RewardModel.from_pretrained(request.getfixturevalue(TINY_VLM_FIXTURES[family]), fps=2.0)
    visual, shared = model.model.model.visual, []
    grids = []
    forward = visual.forward
    monkeypatch.setattr(
        visual,
        "forward",
        lambda x, grid_thw, **k: grids.append(grid_thw.tolist()) or forward(x, grid_thw, **k),
    )
    share = model._shared_prefix_probs
    monkeypatch.setattr(model, "_shared_prefix_probs", lambda *a: shared.append(share(*a)) or shared[-1])
    # 2.8 s from 0.2 s at 2 fps: steps of one temporal patch (1 s); K=4 rounds 0.7, 1.4, 2.1 s to 1, 1,
    # 2 s, and the last point is the longest whole-step prefix (2 s: the 0.8 s tail is left out).
    curve = model.progress_curve(clip, TASK, points=4, start=0.2, align=True)
    monkeypatch.undo()
    assert curve.times == [1.0, 1.0, 2.0, 2.0] and curve.duration == pytest.approx(2.8)
    assert sorted(shared[0]) == [0, 1]  # the two distinct 1 s and 2 s prefixes, from one prefill
    assert grids[0][0][0] == 2  # the vision tower ran once over the longest shared prefix's 2 patches
    for point in curve.points:
        alone = model.score(clip, TASK, start=0.2, end=0.2 + point.time)
        assert point.result.probs == pytest.approx(alone.probs, abs=1e-4)
        assert point.result.expected == pytest.approx(alone.expected, abs=1e-4)


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_shared_prefill_matches_batched_prefixes_including_an_odd_last_patch(family, request):
    model = RewardModel.from_pretrained(request.getfixturevalue(TINY_VLM_FIXTURES[family]), frames_fps=4.0)
    frames = _frames(12)  # 3 s at 4 fps; K=4 cuts 3, 6, 9, 12 frames: odd prefixes repeat their last frame
    shared = model.progress_curve(frames, TASK, points=4)
    batched = model.progress_curve(frames, TASK, points=4, share=False)
    prefixes = [(frames[:n], 4.0) for n in (3, 6, 9, 12)]
    assert sorted(model._shared_prefix_probs(prefixes, TASK)) == [
        0,
        1,
        2,
        3,
    ]  # each shares all but its last patch
    for a, b in zip(shared.points, batched.points, strict=True):
        assert a.result.probs == pytest.approx(b.result.probs, abs=1e-4)


def test_align_refuses_fixed_count_sampling_and_episodes_shorter_than_a_step(tiny_vlm_dir, clip):
    from roboreward.models.frames import curve_cuts

    model = RewardModel.from_pretrained(tiny_vlm_dir, num_frames=4)
    with pytest.raises(ValueError, match="align needs frames sampled at a rate"):
        model.progress_curve(clip, TASK, points=3, align=True)
    with pytest.raises(ValueError, match=r"shorter than one aligned step \(1\.000 s\)"):
        curve_cuts(_frames(3), 2, fps=4.0, align=1.0)
    cuts = curve_cuts(_frames(16), 3, fps=4.0, align=0.5)  # 4 s: whole steps, the last is the episode
    assert cuts.times == [1.5, 2.5, 4.0] and cuts.ends == [1.5, 2.5, None]


def test_prefix_frames_are_those_sample_frames_decodes_for_each_prefix(clip):
    from roboreward.models.frames import curve_cuts, prefix_frames
    from roboreward.models.settings import InferenceSettings

    for settings in (
        InferenceSettings(num_frames=4, max_side=32),
        InferenceSettings(fps=3.0, num_frames=None),
    ):
        cuts = curve_cuts(clip, 6, start=0.5)
        decoded = prefix_frames(cuts, settings)
        assert decoded is not None and len(decoded) == 6
        for (frames, rate), end in zip(decoded, cuts.ends, strict=True):
            alone, alone_rate = video.sample_frames_with_rate(
                clip,
                num_frames=settings.num_frames,
                fps=settings.fps,
                start=0.5,
                end=end,
                max_side=settings.max_side,
            )
            assert np.array_equal(frames, alone) and rate == alone_rate
    assert prefix_frames(curve_cuts(_frames(8), 2), InferenceSettings()) is None  # frames: nothing to decode


def test_spearman_and_voc_equal_hand_values():
    assert average_ranks([3.0, 1.0, 3.0, 2.0]).tolist() == [3.5, 1.0, 3.5, 2.0]
    # Ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4): deviations (-1.5, 0, 0, 1.5) and (-1.5, -.5, .5, 1.5).
    assert value_order_correlation([1.0, 2.0, 2.0, 4.0]) == pytest.approx(4.5 / math.sqrt(4.5 * 5))
    assert value_order_correlation([4.0, 3.0, 2.0, 1.0]) == pytest.approx(-1.0)
    assert value_order_correlation([1.0, 5.0, 2.0], times=[0.5, 1.0, 1.5]) == pytest.approx(0.5)
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(0.8207826816681233)  # scipy's value
    assert math.isnan(value_order_correlation([2.0, 2.0, 2.0]))
    assert math.isnan(value_order_correlation([3.0]))


def test_cli_curve_writes_json_and_png(tiny_vlm_dir, clip, tmp_path, capsys):
    out = tmp_path / "curve_out"
    code = main(
        ["curve", str(clip), "--task", TASK, "--model", str(tiny_vlm_dir), "--points", "3", "--out", str(out)]
    )
    assert code == 0
    record = json.loads((out / "curve.json").read_text())
    assert [p["time"] for p in record["points"]] == pytest.approx([1.0, 2.0, 3.0])
    assert all(len(p["probs"]) == 5 and sum(p["probs"]) == pytest.approx(1.0) for p in record["points"])
    expected = [p["expected"] for p in record["points"]]
    voc = value_order_correlation(expected)
    assert record["voc"] == (None if math.isnan(voc) else pytest.approx(voc))
    assert record["model"] == tiny_vlm_dir.name and record["task"] == TASK  # never a path of this machine
    assert (out / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "expected" in capsys.readouterr().out


def test_cli_curve_align_cuts_whole_seconds_at_2_fps_and_refuses_a_fixed_count(
    tiny_vlm_dir, clip, tmp_path, capsys
):
    import shutil

    from roboreward.models.settings import InferenceSettings, save_settings

    rated = tmp_path / "rated"
    shutil.copytree(tiny_vlm_dir, rated)
    save_settings(InferenceSettings(fps=2.0, num_frames=None), rated)
    argv = ["curve", str(clip), "--task", TASK, "--points", "4", "--align", "--json"]
    assert main([*argv, "--model", str(rated), "--out", str(tmp_path / "a")]) == 0
    record = json.loads((tmp_path / "a" / "curve.json").read_text())
    assert [p["time"] for p in record["points"]] == [1.0, 2.0, 2.0, 3.0]  # 3 s: 0.75, 1.5, 2.25 rounded
    capsys.readouterr()
    code = main([*argv, "--model", str(tiny_vlm_dir), "--out", str(tmp_path / "b")])
    assert code != 0 and "align needs frames sampled at a rate" in capsys.readouterr().err


def _hand_curve(probs: list[list[float]]) -> ProgressCurve:
    points = tuple(
        CurvePoint(time=float(i + 1), fraction=(i + 1) / len(probs), result=score_result(p))
        for i, p in enumerate(probs)
    )
    return ProgressCurve(task="open the drawer", duration=float(len(probs)), points=points)


def test_the_curve_figure_has_a_legend_for_the_band_and_the_curves_voc():
    rising = _hand_curve([[1, 0, 0, 0, 0], [0, 0.5, 0.5, 0, 0], [0, 0, 0, 0.2, 0.8]])
    fig = curve_figure(rising, frames=np.zeros((3, 8, 8, 3), np.uint8))
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [BAND_LABEL, "expected score (VOC 1.00)"]
    assert ax.lines[0].get_ydata().tolist() == pytest.approx([1.0, 2.5, 4.8])
    assert len(fig.axes) == 4  # the curve and a strip of 3 frames
    flat = curve_figure(_hand_curve([[0, 0, 1, 0, 0]] * 3))
    assert flat.axes[0].get_legend().get_texts()[1].get_text() == "expected score (VOC n/a: a flat curve)"
