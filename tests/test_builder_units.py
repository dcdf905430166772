"""Builder pieces that need no video: sampling quotas, grouped splits, recipes."""

from collections import Counter
from pathlib import Path

import pytest

from roboreward.dataset.builder import (
    DEFAULT_SPLIT_RATIOS,
    SPLITS,
    BuildConfig,
    assign_splits,
    sample_uniform,
)
from roboreward.dataset.splits import split_counts
from roboreward.episode import Episode

RECIPES = Path(__file__).resolve().parents[1] / "dataset_builder" / "configs"


def test_uniform_sampling_gives_equal_shares():
    assert sample_uniform({"a": 1000, "b": 1000, "c": 1000}, 1350) == {"a": 450, "b": 450, "c": 450}


def test_uniform_sampling_refills_from_larger_datasets():
    assert sample_uniform({"a": 10, "b": 1000, "c": 1000}, 100) == {"a": 10, "b": 45, "c": 45}
    assert sample_uniform({"a": 3, "b": 5, "c": 1000}, 30) == {"a": 3, "b": 5, "c": 22}


def test_uniform_sampling_remainder_and_caps():
    assert sample_uniform({"a": 100, "b": 100, "c": 100}, 100) == {"a": 34, "b": 33, "c": 33}
    assert sample_uniform({"a": 2, "b": 3}, 1350) == {"a": 2, "b": 3}
    assert sample_uniform({"a": 0, "b": 7}, 4) == {"a": 0, "b": 4}


def _episodes(source: str, groups: int, per_group: int = 1) -> list[Episode]:
    return [
        Episode(
            video=f"/v/{source}/{g}.mp4",
            task=f"task {g} variant {k}",
            reward=1 + (g + k) % 5,
            source=source,
            episode_id=f"{g}-{k}",
            group=f"{source}/{g}",
        )
        for g in range(groups)
        for k in range(per_group)
    ]


def test_splits_keep_every_group_in_one_split_and_follow_the_ratios():
    episodes = _episodes("oxe/a", 200, per_group=3) + _episodes("roboarena", 100, per_group=2)
    splits = assign_splits(episodes, {"train": 0.8, "validation": 0.1, "test": 0.1}, seed=0)
    where = {}
    for split, rows in splits.items():
        for ep in rows:
            assert where.setdefault(ep.group, split) == split
    assert sum(len(rows) for rows in splits.values()) == len(episodes)
    # stratified: each source is cut by the ratios on its own
    per_source = {s: Counter(ep.source for ep in splits[s]) for s in SPLITS}
    assert per_source["train"] == {"oxe/a": 480, "roboarena": 160}
    assert per_source["validation"] == {"oxe/a": 60, "roboarena": 20}
    assert per_source["test"] == {"oxe/a": 60, "roboarena": 20}


def test_splits_are_deterministic_and_order_independent():
    episodes = _episodes("oxe/a", 50) + _episodes("oxe/b", 30)
    ratios = {"train": 0.6, "validation": 0.2, "test": 0.2}
    first = assign_splits(episodes, ratios, seed=3)
    again = assign_splits(list(reversed(episodes)), ratios, seed=3)
    assert {s: [e.id for e in first[s]] for s in SPLITS} == {s: [e.id for e in again[s]] for s in SPLITS}
    other_seed = assign_splits(episodes, ratios, seed=4)
    assert {e.id for e in first["test"]} != {e.id for e in other_seed["test"]}


def test_small_sources_still_reach_validation_and_test():
    counts = split_counts(5, {s: v for s, v in DEFAULT_SPLIT_RATIOS.items()})
    assert counts == {"train": 3, "validation": 1, "test": 1}
    assert split_counts(2, DEFAULT_SPLIT_RATIOS) == {"train": 2, "validation": 0, "test": 0}
    assert split_counts(1000, DEFAULT_SPLIT_RATIOS) == {"train": 921, "validation": 35, "test": 44}
    assert split_counts(10, {"train": 1.0, "validation": 0.0, "test": 0.0}) == {
        "train": 10,
        "validation": 0,
        "test": 0,
    }


def test_config_validation():
    with pytest.raises(ValueError, match="no source given"):
        BuildConfig()
    with pytest.raises(ValueError, match="split_ratios"):
        BuildConfig(manifest=["m.jsonl"], split_ratios={"train": 1, "dev": 1})
    with pytest.raises(ValueError, match="num_proc"):
        BuildConfig(manifest=["m.jsonl"], num_proc=0)
    with pytest.raises(ValueError, match="thresholds"):
        BuildConfig(manifest=["m.jsonl"], progress_thresholds=[0.5, 0.1, 0.2, 1.0])
    assert BuildConfig(manifest="m.jsonl").manifest == ["m.jsonl"]
    assert BuildConfig(manifest="m.jsonl").roboarena_progress_unit == "auto"
    assert BuildConfig(manifest="m.jsonl").lerobot_rewards == "auto"
    assert BuildConfig(lerobot=["x"], lerobot_rewards="column:outcome").lerobot_rewards == "column:outcome"
    with pytest.raises(ValueError, match=r"a sidecar file ends in \.jsonl or \.parquet"):
        BuildConfig(lerobot=["x"], lerobot_rewards="truth")
    units = "roboarena_progress_unit must be one of 'auto', 'percent', 'fraction', got '%'"
    with pytest.raises(ValueError, match=units):
        BuildConfig(roboarena=["dump"], roboarena_progress_unit="%")


def test_recipes_load_and_flags_override(tmp_path):
    config = BuildConfig.from_yaml(RECIPES / "roboreward.yaml", roboarena=["/data/dump"], seed=7)
    assert config.oxe_episodes == 1350 and config.seed == 7 and config.roboarena == ["/data/dump"]
    assert len(config.lerobot) == 19 and all(r.startswith("lerobot/") for r in config.lerobot)
    assert config.split_ratios == {"train": 64850, "validation": 2442, "test": 3105}
    assert config.roboarena_progress_unit == "auto"
    unit = tmp_path / "unit.yaml"
    unit.write_text("roboarena: [dump]\nroboarena_progress_unit: percent\n")
    assert BuildConfig.from_yaml(unit).roboarena_progress_unit == "percent"
    flagged = BuildConfig.from_yaml(unit, roboarena_progress_unit="fraction")
    assert flagged.roboarena_progress_unit == "fraction"
    smoke = BuildConfig.from_yaml(RECIPES / "smoke.yaml", manifest=["m.jsonl"], num_proc=None)
    assert (smoke.max_frames, smoke.num_proc, smoke.name) == (8, 1, "smoke")
    bad = tmp_path / "bad.yaml"
    bad.write_text("lerobot: [x]\nmax_frame: 3\n")
    with pytest.raises(ValueError, match=r"unknown fields in build recipe .*bad.yaml: \['max_frame'\]"):
        BuildConfig.from_yaml(bad)
    bad.write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="must be a mapping"):
        BuildConfig.from_yaml(bad)
