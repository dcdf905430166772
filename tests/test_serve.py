"""The reward server: concurrent clients, micro-batching, refusals that leave it serving."""

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import uvicorn
from conftest import write_video

from roboreward.scoring import RewardModel
from roboreward.serve import RewardClient, RewardServerError, create_app
from roboreward.testing import make_tiny_vlm


def _port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    model = RewardModel.from_pretrained(make_tiny_vlm(root / "tiny"), num_frames=4)
    app = create_app(
        model, max_batch=8, max_wait_ms=200, max_upload_mb=0.5, max_seconds=10, model_name="tiny"
    )
    port = _port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not instance.started and time.time() < deadline:
        time.sleep(0.05)
    videos = [write_video(root / f"v{i}.mp4", num_frames=10 + i, fps=10) for i in range(4)]
    yield {"url": f"http://127.0.0.1:{port}", "model": model, "app": app, "videos": videos, "root": root}
    instance.should_exit = True
    thread.join(timeout=10)


def test_concurrent_clients_get_direct_scores_in_fewer_batches(server):
    model, videos = server["model"], server["videos"]
    jobs = [(videos[i % 4], f"open the drawer {i % 3}") for i in range(16)]
    before = server["app"].state.stats.batches

    def call(job):
        client = RewardClient(server["url"])
        try:
            return client.score(*job)
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(call, jobs))
    for (video, task), result in zip(jobs, results, strict=True):
        direct = model.score(str(video), task)
        assert result.score == direct.score
        assert result.probs == pytest.approx(direct.probs, abs=1e-5)
    batches = server["app"].state.stats.batches - before
    assert batches < len(jobs)  # requests that arrived together shared forward passes
    assert max(server["app"].state.stats.batch_sizes) > 1


def test_refusals_are_4xx_with_a_message_and_the_server_keeps_serving(server):
    client = RewardClient(server["url"])
    bad = server["root"] / "notes.mp4"
    bad.write_text("not a video\n" * 100)
    with pytest.raises(RewardServerError, match=r"422.*not a readable video"):
        client.score(bad, "open the drawer")
    with pytest.raises(RewardServerError, match=r"413.*limit"):
        client.score(b"\0" * (600 * 1024), "open the drawer")
    with pytest.raises(RewardServerError, match=r"422.*task is empty"):
        client.score(server["videos"][0], "  ")
    long_video = write_video(server["root"] / "long.mp4", num_frames=150, fps=10)  # 15 s > 10 s limit
    with pytest.raises(RewardServerError, match=r"422.*15\.0 s long"):
        client.score(long_video, "open the drawer")
    ok = client.score(server["videos"][1], "open the drawer")
    assert 1 <= ok.score <= 5
    health = client.health()
    assert health["status"] == "ok" and health["model"] == "tiny" and health["requests"] >= 1


def test_frames_are_encoded_by_the_client(server):
    from roboreward import video

    frames = video.sample_frames(server["videos"][0])
    result = RewardClient(server["url"], fps=10).score(frames, "open the drawer")
    assert 1 <= result.score <= 5 and abs(sum(result.probs) - 1) < 1e-6
