import pytest

from roboreward.episode import Episode, EpisodeError, Skip


def _ep(**changes):
    fields = {
        "video": "/v/0.mp4",
        "task": "open the drawer",
        "reward": 5,
        "source": "oxe/toto",
        "episode_id": "0",
    }
    return Episode(**{**fields, **changes})


def test_defaults_derive_from_the_source_row():
    ep = _ep(task="  open   the\ndrawer ", progress=1)
    assert ep.task == "open the drawer" and ep.original_task == "open the drawer"
    assert ep.group == "oxe/toto/0" and ep.augmentation == "original" and ep.progress == 1.0
    assert ep.id.startswith("oxe/toto/0/") and len(ep.id) == len("oxe/toto/0/") + 12


def test_id_is_stable_and_distinguishes_rows():
    assert _ep().id == _ep().id
    assert _ep().id != _ep(task="close the drawer").id
    assert _ep().id != _ep(camera="right").id
    assert _ep().id != _ep(video_start=0.0, video_end=2.0).id
    # provenance does not change what the row is
    assert _ep(provenance={"a": 1}).id == _ep().id


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"task": "   "}, "task is empty in episode '0' of 'oxe/toto'"),
        ({"reward": 7}, "reward must be 1..5 in episode '0' of 'oxe/toto', got 7"),
        ({"reward": 0}, "reward must be 1..5"),
        ({"reward": 4.5}, "reward must be an integer"),
        ({"reward": True}, "reward must be an integer"),
        ({"progress": 1.5}, r"progress must be in \[0, 1\]"),
        ({"progress": float("nan")}, r"progress must be in \[0, 1\]"),
        ({"progress": "0.5"}, "progress must be a number"),
        ({"source": ""}, "source is empty"),
        ({"episode_id": ""}, "episode_id is empty in source 'oxe/toto'"),
        ({"video": ""}, "video path is empty"),
        ({"video_start": 2.0, "video_end": 1.0}, "video time range is empty"),
        ({"augmentation": "mixup"}, "augmentation must be one of"),
        ({"provenance": {"x": object()}}, "provenance must be JSON-serialisable"),
    ],
)
def test_bad_rows_are_refused_naming_the_episode(changes, message):
    with pytest.raises(EpisodeError, match=message):
        _ep(**changes)


def test_dict_round_trip_and_replace():
    ep = _ep(camera="image", provenance={"dataset": "lerobot/toto"})
    assert Episode.from_dict(ep.to_dict()) == ep
    relabeled = ep.replace(task="put the cup in the drawer", reward=2, augmentation="counterfactual")
    assert relabeled.original_task == "open the drawer" and relabeled.group == ep.group
    with pytest.raises(EpisodeError, match="unknown episode fields"):
        Episode.from_dict({**ep.to_dict(), "colour": "red"})
    with pytest.raises(EpisodeError, match=r"reward must be 1\.\.5"):
        ep.replace(reward=9)


def test_skip_is_a_plain_record():
    assert Skip("roboarena", "s1/A", "task is empty").as_dict() == {
        "source": "roboarena",
        "episode_id": "s1/A",
        "reason": "task is empty",
    }


def test_a_task_over_the_limit_is_an_episode_error_and_never_reaches_a_prompt():
    from roboreward import rubric

    long = "open the drawer " * 200  # 3,200 characters
    with pytest.raises(EpisodeError, match=r"task is 3199 characters long in .*; the limit is 1000"):
        Episode(video="ep0.mp4", task=long, reward=5, progress=1.0, source="m", episode_id="0")
    with pytest.raises(ValueError, match="task is 3200 characters long; the limit is 1000"):
        rubric.build_prompt(long)
    assert rubric.build_prompt("x" * 1000)  # the limit itself is fine
