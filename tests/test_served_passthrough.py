"""A served model is sent a video file as it is when that shows the server the very frames it is
meant to see (`roboreward.models.frames.passthrough_video`), and re-encoded frames otherwise."""

import base64
import io

import numpy as np
import pytest
from conftest import frame_index_of, write_video
from PIL import Image

from roboreward import video
from roboreward.models.frames import episode_frames, passthrough_video
from roboreward.models.openai_chat import video_data_url
from roboreward.models.served import ServedRewardModel
from roboreward.models.settings import served_settings
from roboreward.testing.chat_server import Reply, ScriptedChatServer


def _reply(request):
    return Reply("ANSWER: 4", {"4": -0.2, "3": -1.8})


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """20 frames at 10 fps, 64x48: H.264 and AV1 in mp4, H.264 in Matroska, MPEG-4 Part 2 in mp4."""
    root = tmp_path_factory.mktemp("passthrough")
    return {
        "h264": write_video(root / "h264.mp4", num_frames=20, fps=10),
        "av1": write_video(root / "av1.mp4", num_frames=20, fps=10, codec="libsvtav1"),
        "mkv": write_video(root / "h264.mkv", num_frames=20, fps=10),
        "mpeg4": write_video(root / "mpeg4.mp4", num_frames=20, fps=10, codec="mpeg4"),
    }


def _sent_video(settings_overrides, source, **range_):
    """The bytes of the one video part a served model sends for ``source``, and the JPEG parts."""
    with ScriptedChatServer(_reply, model="judge") as server:
        model = ServedRewardModel.from_spec(f"openai+logprobs:{server.url}#judge", **settings_overrides)
        model.score(source, "open the drawer", **range_)
    (request,) = server.requests
    content = request["messages"][0]["content"]
    videos = [p["video_url"]["url"] for p in content if p["type"] == "video_url"]
    images = [p for p in content if p["type"] == "image_url"]
    assert len(videos) == 1 and not images
    prefix = "data:video/mp4;base64,"
    assert videos[0].startswith(prefix)
    return base64.b64decode(videos[0][len(prefix) :])


@pytest.mark.parametrize("overrides", [{"num_frames": 20}, {"fps": 10.0}, {"fps": 30.0, "num_frames": None}])
@pytest.mark.parametrize("kind", ["h264", "av1"])
def test_every_frame_at_its_size_sends_the_file_byte_for_byte(clips, kind, overrides):
    path = clips[kind]
    settings = {"num_frames": None, **overrides, "max_side": 64}
    assert _sent_video(settings, path) == path.read_bytes()
    # a dataset row's bytes, and bytes given directly, go the same way
    row = {"bytes": path.read_bytes(), "path": "elsewhere.mp4"}
    assert _sent_video(settings, row) == path.read_bytes()
    assert _sent_video(settings, path.read_bytes()) == path.read_bytes()
    chosen = passthrough_video(path, served_settings("judge", **settings))
    assert chosen is not None and chosen[1:] == (20, 10.0)
    # ... and it is exactly what the model was meant to see: every frame, in order
    frames, rate = episode_frames(path, served_settings("judge", **settings))
    assert rate == 10.0 and [frame_index_of(f) for f in frames] == list(range(20))
    assert np.array_equal(video.sample_frames(chosen[0]), frames)


@pytest.mark.parametrize(
    ("overrides", "range_", "why"),
    [
        ({"num_frames": 20}, {"start": 0.5}, "a start"),
        ({"num_frames": 20}, {"end": 1.5}, "an end"),
        ({"num_frames": 20}, {"start": 0.0, "end": 2.0}, "a range, even the whole video"),
        ({"num_frames": 8}, {}, "fewer frames than the video holds"),
        ({"num_frames": 40}, {}, "more frames than the video holds (repeats)"),
        ({"num_frames": None, "fps": 5.0}, {}, "a rate below the video's"),
        ({"num_frames": 20, "max_side": 32}, {}, "a resize"),
    ],
)
def test_a_cut_a_different_sampling_or_a_resize_is_never_passed_through(
    clips, overrides, range_, why, tmp_path
):
    path = clips["h264"]
    settings = served_settings("judge", **{"max_side": 64, **overrides})
    assert passthrough_video(path, settings, **range_) is None, why
    sent = _sent_video({"max_side": 64, **overrides}, path, **range_)
    assert sent != path.read_bytes(), why
    # the part is what it was before pass-through existed: the sampled frames, encoded by
    # `video_data_url`, byte for byte; decoded, the same frames (within H.264's loss) in the same order
    frames, rate = episode_frames(path, settings, **range_)
    assert sent == base64.b64decode(video_data_url(frames, rate).split(",", 1)[1]), why
    decoded = video.sample_frames(sent)
    # the same frames as the part made before it was encoded in memory (`video.encode`, a file)
    before = video.encode(frames, tmp_path / "before.mp4", fps=rate, crf=18, preset="veryfast")
    assert np.array_equal(decoded, video.sample_frames(before)), why
    assert decoded.shape == frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2].shape
    assert [frame_index_of(f) for f in decoded] == [frame_index_of(f) for f in frames]
    assert np.abs(decoded.astype(int) - frames[:, : decoded.shape[1], : decoded.shape[2]]).mean() < 2.0


@pytest.mark.parametrize("kind", ["mkv", "mpeg4"])
def test_another_container_or_codec_is_re_encoded(clips, kind):
    settings = served_settings("judge", num_frames=20, max_side=64)
    assert passthrough_video(clips[kind], settings) is None
    assert (
        passthrough_video(clips["h264"], served_settings("judge", num_frames=20, sampler="qwen_vl_utils"))
        is None
    )
    sent = _sent_video({"num_frames": 20, "max_side": 64}, clips[kind])
    frames, rate = episode_frames(clips[kind], settings)
    assert sent == base64.b64decode(video_data_url(frames, rate).split(",", 1)[1])


def test_an_endpoint_without_video_input_gets_every_frame_of_a_passed_through_file_as_images(clips):
    with ScriptedChatServer(_reply, model="judge", video="refuse") as server:
        model = ServedRewardModel.from_spec(
            f"openai+logprobs:{server.url}#judge", num_frames=20, max_side=64, video_input="frames"
        )
        model.score(clips["h264"], "open the drawer")
    (request,) = server.requests
    images = [p for p in request["messages"][0]["content"] if p["type"] == "image_url"]
    assert len(images) == 20
    jpegs = [base64.b64decode(p["image_url"]["url"].split(",", 1)[1]) for p in images]
    levels = [frame_index_of(np.asarray(Image.open(io.BytesIO(jpeg)))) for jpeg in jpegs]
    assert levels == list(range(20))


@pytest.mark.parametrize("shape", [(4, 48, 64), (5, 47, 63), (3, 168, 224)])
def test_a_part_made_in_memory_decodes_to_the_frames_of_the_file_encode_writes(shape, tmp_path):
    frames = np.random.default_rng(sum(shape)).integers(0, 256, (*shape, 3), dtype=np.uint8)
    data = video.encode_bytes(frames, fps=2.0, crf=18, preset="veryfast")
    assert data == video.encode_bytes(frames, fps=2.0, crf=18, preset="veryfast")  # deterministic
    written = video.encode(frames, tmp_path / "f.mp4", fps=2.0, crf=18, preset="veryfast")
    assert np.array_equal(video.sample_frames(data), video.sample_frames(written))
    assert video.probe(data).frames == shape[0] and video.probe(data).fps == 2.0
    with pytest.raises(ValueError, match="fps must be > 0"):
        video.encode_bytes(frames, fps=0)


def test_every_client_of_every_endpoint_shares_one_ssl_context(monkeypatch):
    import threading

    import httpx

    from roboreward.models import openai_chat

    made = []

    def create_ssl_context(*args, **kwargs):
        made.append(1)
        return real(*args, **kwargs)

    real = httpx.create_ssl_context
    monkeypatch.setattr(openai_chat, "_SSL", [])
    monkeypatch.setattr(httpx, "create_ssl_context", create_ssl_context)
    chats = [openai_chat.OpenAIChat(f"http://127.0.0.1:{port}/v1", "judge") for port in (1, 2)]
    clients = []
    threads = [threading.Thread(target=lambda c=c: clients.append(c._client())) for c in chats * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1 and len({id(c) for c in clients}) == 8  # one context, a client per thread
