"""The reward server: concurrent clients, micro-batching, refusals that leave it serving, the client."""

import contextlib
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import uvicorn
from conftest import write_video

from roboreward.apps.rl import EpisodicRewardWrapper, subsample
from roboreward.cli import main
from roboreward.cli.commands.serve import check_serve_access
from roboreward.models.local import RewardModel
from roboreward.models.remote import RewardClient, RewardServerError
from roboreward.serving import server as serve_module
from roboreward.serving.server import create_app
from roboreward.sim import TabletopEnv


class SpyModel:
    """The model as the server sees it: counts score_batch calls; a task with 'boom' in it fails."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def score_batch(self, videos, tasks, **kwargs):
        self.calls.append(len(videos))
        if any("boom" in t for t in tasks):
            raise ValueError("the model cannot score a task that says boom")
        return self.model.score_batch(videos, tasks, **kwargs)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(app):
    port = _free_port()
    instance = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not instance.started and time.time() < deadline:
        time.sleep(0.02)
    assert instance.started, "the test server did not start within 30 s"
    return instance, thread, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_vlm_dir):
    root = tmp_path_factory.mktemp("serve")
    model = RewardModel.from_pretrained(tiny_vlm_dir, num_frames=4)
    spy = SpyModel(model)
    # a long wait, so that requests sent together surely share batches
    app = create_app(spy, max_batch=8, max_wait_ms=300, max_upload_mb=0.5, max_seconds=10, model_name="tiny")
    instance, thread, url = _start(app)
    videos = [write_video(root / f"v{i}.mp4", num_frames=10 + 3 * i, fps=10) for i in range(4)]
    yield {
        "url": url,
        "model": model,
        "spy": spy,
        "app": app,
        "videos": videos,
        "root": root,
    }
    instance.should_exit = True
    thread.join(timeout=10)


def test_concurrent_clients_get_direct_scores_from_shared_batches(server):
    model, spy, videos = server["model"], server["spy"], server["videos"]
    jobs = [[(videos[(2 * c + k) % 4], f"open drawer {c % 3}") for k in range(2)] for c in range(8)]
    before = len(spy.calls)

    def client_session(session):  # one client sending its two requests one after the other
        with RewardClient(server["url"], timeout=60) as client:
            return [client.score(path, task) for path, task in session]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(client_session, jobs))
    for session, answers in zip(jobs, results, strict=True):
        for (path, task), result in zip(session, answers, strict=True):
            direct = model.score(str(path), task)
            assert result.score == direct.score
            assert result.probs == pytest.approx(direct.probs, abs=1e-5)
            assert result.reward == pytest.approx(direct.reward, abs=1e-5)
    calls = spy.calls[before:]
    assert sum(calls) == 16  # each request scored once
    assert len(calls) < 16 and max(calls) > 1  # requests that arrived together shared forward passes


def test_refusals_are_4xx_with_a_message_and_the_server_keeps_serving(server):
    client = RewardClient(server["url"])
    before = client.health()
    refusals = [
        (server["root"] / "notes.txt", "open the drawer", 422, "not a readable video"),
        (b"\0" * (700 * 1024), "open the drawer", 413, "over the 0.5 MB limit"),
        (server["videos"][0], "   ", 422, "task is empty"),
        (
            write_video(server["root"] / "long.mp4", num_frames=150, fps=10),
            "open the drawer",
            422,
            r"15\.0 s long",
        ),
    ]
    (server["root"] / "notes.txt").write_text("not a video\n" * 100)
    for video, task, status, message in refusals:
        with pytest.raises(RewardServerError, match=message) as refused:
            client.score(video, task)
        assert refused.value.status == status
    missing = httpx.post(f"{server['url']}/score", data={"task": "open the drawer"})
    assert missing.status_code == 422 and "'video'" in missing.json()["detail"]
    ok = client.score(server["videos"][1], "open the drawer")
    assert ok.probs == pytest.approx(
        server["model"].score(str(server["videos"][1]), "open the drawer").probs, abs=1e-5
    )
    after = client.health()
    assert after["status"] == "ok" and after["model"] == "tiny"
    assert after["requests"] - before["requests"] == 1 and after["refused"] - before["refused"] == 5
    assert after["batches"] > before["batches"] and sum(after["batch_sizes"].values()) == after["batches"]


def test_a_streamed_oversize_upload_is_cut_off_with_413(server):
    def body():  # no Content-Length: the limit is enforced while the body streams in
        yield b'--b\r\nContent-Disposition: form-data; name="task"\r\n\r\nopen the drawer\r\n'
        yield b'--b\r\nContent-Disposition: form-data; name="video"; filename="v.mp4"\r\n\r\n'
        for _ in range(16):
            yield b"\0" * 65536
        yield b"\r\n--b--\r\n"

    response = httpx.post(
        f"{server['url']}/score", content=body(), headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert response.status_code == 413 and "0.5 MB limit" in response.json()["detail"]
    assert RewardClient(server["url"]).score(server["videos"][2], "open the drawer").score in range(1, 6)


def test_a_failing_request_in_a_batch_fails_alone(server):
    videos = server["videos"]
    jobs = [(videos[0], "open the drawer"), (videos[1], "boom"), (videos[2], "close the drawer")]

    def send(job):
        try:
            return RewardClient(server["url"]).score(*job)
        except RewardServerError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(send, jobs))
    assert (
        isinstance(results[1], RewardServerError)
        and results[1].status == 422
        and "boom" in results[1].message
    )
    for (video, task), result in ((jobs[0], results[0]), (jobs[2], results[2])):
        assert result.probs == pytest.approx(server["model"].score(str(video), task).probs, abs=1e-5)


def test_the_client_encodes_frames_to_mp4(server):
    frames = np.random.default_rng(0).integers(0, 255, (6, 48, 64, 3), dtype=np.uint8)
    client = RewardClient(server["url"], fps=4)
    encoded = client.video_bytes(frames)
    assert encoded[4:8] == b"ftyp" and encoded == client.video_bytes(frames, fps=4)
    result = client.score(frames, "open the drawer")
    assert result.probs == pytest.approx(server["model"].score(encoded, "open the drawer").probs, abs=1e-5)
    batch = client.score_batch([frames, server["videos"][0]], "open the drawer", fps=[4, None])
    assert batch[0].probs == pytest.approx(
        result.probs, abs=1e-5
    )  # batched on the server: within float noise
    direct = server["model"].score(str(server["videos"][0]), "open the drawer")
    assert batch[1].probs == pytest.approx(direct.probs, abs=1e-5)


def test_an_rl_episode_can_be_scored_by_the_server(server):
    env = EpisodicRewardWrapper(TabletopEnv(max_steps=5, seed=0), RewardClient(server["url"]), max_frames=4)
    env.reset()
    for _ in range(5):
        _, reward, _, truncated, info = env.step(np.array([0.1, 0.0, -1.0]))
    frames, fps = subsample(env.frames, 4, fps=10)
    sent = RewardClient(server["url"]).video_bytes(frames, fps=fps)
    direct = server["model"].score(sent, env.unwrapped.task)
    assert truncated and reward == pytest.approx(direct.reward, abs=1e-5)
    assert info["roboreward"]["probs"] == pytest.approx(direct.probs, abs=1e-5)


def test_serve_needs_a_token_off_loopback_unless_insecure(capsys, monkeypatch):
    monkeypatch.delenv("ROBOREWARD_SERVE_TOKEN", raising=False)
    assert main(["serve", "--model", "unused", "--host", "0.0.0.0"]) == 1
    assert "add --token TOKEN (or set ROBOREWARD_SERVE_TOKEN), or --insecure" in capsys.readouterr().err
    check_serve_access("0.0.0.0", "s3cret", insecure=False)  # the same words as `review`'s --insecure
    check_serve_access("0.0.0.0", None, insecure=True)
    check_serve_access("127.0.0.2", None, insecure=False)
    assert main(["serve", "--model", "unused", "--max-task-chars", "0"]) == 1
    assert "max_task_chars must be in 1..1000, got 0" in capsys.readouterr().err
    assert (
        main(["serve", "--model", "unused", "--max-task-chars", "100000"]) == 1
    )  # past the prompt's own bound
    assert "max_task_chars must be in 1..1000, got 100000" in capsys.readouterr().err
    assert main(["serve", "--model", "unused", "--max-batch", "0"]) == 1
    assert "max_batch must be >= 1" in capsys.readouterr().err


def test_a_task_over_the_length_limit_gets_422_before_the_model(server):
    calls = len(server["spy"].calls)
    with pytest.raises(
        RewardServerError, match="task is 100000 characters long; the limit is 500"
    ) as refused:
        RewardClient(server["url"]).score(server["videos"][0], "a" * 100_000)
    assert refused.value.status == 422 and len(server["spy"].calls) == calls  # never reached the model


class SlowModel(SpyModel):
    """A model whose batch sleeps when a task says 'slow' (a batch stuck in the model)."""

    def __init__(self, model, seconds):
        super().__init__(model)
        self.seconds, self.entered, self.left = seconds, threading.Event(), threading.Event()

    def score_batch(self, videos, tasks, **kwargs):
        if any("slow" in t for t in tasks):
            self.entered.set()
            time.sleep(self.seconds)
            self.left.set()
        return super().score_batch(videos, tasks, **kwargs)


@pytest.fixture(scope="module")
def guarded(server):
    """A server with a bearer token and a 2 s deadline, around a model that can be made slow."""
    slow = SlowModel(server["model"], seconds=4.0)
    app = create_app(slow, max_batch=8, max_wait_ms=0, deadline_s=2.0, token="s3cret", model_name="tiny")
    instance, thread, url = _start(app)
    yield {"url": url, "slow": slow, "videos": server["videos"], "model": server["model"]}
    instance.should_exit = True
    thread.join(timeout=10)


def test_without_the_token_the_server_answers_401_and_with_it_200(guarded):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
        refused = httpx.get(f"{guarded['url']}/health", headers=headers)
        assert refused.status_code == 401 and "bearer token" in refused.json()["detail"]
        assert refused.headers["www-authenticate"] == "Bearer"
    with pytest.raises(RewardServerError) as unauthorized:
        RewardClient(guarded["url"], token="").score(guarded["videos"][0], "open the drawer")
    assert unauthorized.value.status == 401
    client = RewardClient(guarded["url"], token="s3cret")
    assert client.health()["status"] == "ok"
    result = client.score(guarded["videos"][0], "open the drawer")
    direct = guarded["model"].score(str(guarded["videos"][0]), "open the drawer")
    assert result.probs == pytest.approx(direct.probs, abs=1e-5)


def test_the_client_reads_the_token_from_the_environment(guarded, monkeypatch):
    monkeypatch.setenv("ROBOREWARD_SERVE_TOKEN", "s3cret")
    assert RewardClient(guarded["url"]).health()["model"] == "tiny"


def test_a_request_past_its_deadline_fails_while_a_concurrent_one_succeeds(guarded):
    client = RewardClient(guarded["url"], token="s3cret")
    slow = guarded["slow"]
    slow.entered.clear()
    slow.left.clear()
    with ThreadPoolExecutor(max_workers=1) as pool:
        stuck = pool.submit(lambda: client.score(guarded["videos"][0], "slow: open the drawer"))
        assert slow.entered.wait(10)
        time.sleep(1.0)  # the normal request arrives while the slow batch is in the model
        normal = client.score(guarded["videos"][1], "open the drawer")
        with pytest.raises(RewardServerError, match="not scored within the server's 2 s deadline") as late:
            stuck.result(timeout=10)
    assert late.value.status == 504
    direct = guarded["model"].score(str(guarded["videos"][1]), "open the drawer")
    assert normal.probs == pytest.approx(direct.probs, abs=1e-5)
    health = client.health()
    assert not slow.left.is_set()  # the slow batch is still in the model...
    assert health["status"] == "degraded" and health["overrunning"] == 1  # ...past its deadline
    assert health["expired"] >= 1 and health["overruns"] >= 1
    assert slow.left.wait(10)
    for _ in range(100):  # the stuck batch finished: healthy again
        if client.health()["status"] == "ok":
            break
        time.sleep(0.05)
    assert client.health()["status"] == "ok"


def test_stuck_batches_never_pile_up_past_the_cap(server, monkeypatch):
    monkeypatch.setattr(serve_module, "MAX_LEFT_BEHIND", 1)
    slow = SlowModel(server["model"], seconds=2.5)
    instance, thread, url = _start(create_app(slow, max_wait_ms=0, deadline_s=0.5))
    try:
        client = RewardClient(url)
        with pytest.raises(RewardServerError, match=r"0\.5 s deadline"):
            client.score(server["videos"][0], "slow: open the drawer")
        assert slow.entered.is_set() and not slow.left.is_set()
        calls = len(slow.calls)
        with pytest.raises(RewardServerError, match=r"0\.5 s deadline"):  # waited for the stuck batch
            client.score(server["videos"][1], "open the drawer")
        assert len(slow.calls) == calls and client.health()["status"] == "degraded"
        assert slow.left.wait(10)
        assert client.score(server["videos"][1], "open the drawer").score in range(1, 6)
    finally:
        instance.should_exit = True
        thread.join(timeout=10)


_SIGTERM_CHILD = """
import sys, time
from roboreward.cli.commands.serve import run_server
from roboreward.serving.server import create_app

class Stuck:
    def score_batch(self, videos, tasks, **kwargs):
        print("in the model", flush=True)
        time.sleep(120)

run_server(create_app(Stuck(), model_name="stuck"), "127.0.0.1", int(sys.argv[1]), "warning")
"""


def test_sigterm_stops_a_busy_server_within_5_seconds(tmp_path, h264_video):
    import signal
    import subprocess
    import sys

    port = _free_port()
    child = subprocess.Popen(
        [sys.executable, "-c", _SIGTERM_CHILD, str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            time.sleep(0.05)

        def request():
            with contextlib.suppress(httpx.HTTPError):
                return httpx.post(
                    f"{url}/score",
                    files={"video": ("v.mp4", h264_video.read_bytes(), "video/mp4")},
                    data={"task": "open the drawer"},
                    timeout=30,
                )

        with ThreadPoolExecutor(max_workers=1) as pool:
            busy = pool.submit(request)
            assert child.stdout.readline().strip() == b"in the model"  # a batch holds the worker
            sent = time.monotonic()
            child.send_signal(signal.SIGTERM)
            child.wait(timeout=10)
            took = time.monotonic() - sent
            answer = busy.result(timeout=10)
        print(f"SIGTERM to exit: {took:.2f} s")
        assert took < 5.0
        assert answer is None or answer.status_code >= 500
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_sigterm_with_20_stalled_uploads_exits_in_time_answering_503_without_tracebacks():
    """Each stalled upload still open when the graceful shutdown ends was a CancelledError traceback."""
    import signal
    import subprocess
    import sys

    port = _free_port()
    child = subprocess.Popen(
        [sys.executable, "-c", _SIGTERM_CHILD, str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    sockets = []
    try:
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            time.sleep(0.05)
        head = (
            b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b'Content-Length: 100000\r\n\r\n--b\r\nContent-Disposition: form-data; name="task"\r\n\r\nopen'
        )
        for _ in range(20):
            conn = socket.create_connection(("127.0.0.1", port), timeout=10)
            conn.sendall(head)
            sockets.append(conn)
        time.sleep(0.5)  # every upload is in the app, waiting for the rest of its body
        sent = time.monotonic()
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=15)
        took = time.monotonic() - sent
        answers = [conn.recv(4096).split(b"\r\n", 1)[0] for conn in sockets]
    finally:
        for conn in sockets:
            conn.close()
        if child.poll() is None:
            child.kill()
            child.wait()
    assert took < 5.0, took
    assert b"Traceback" not in err and b"CancelledError" not in err, err.decode()[-2000:]
    assert answers == [b"HTTP/1.1 503 Service Unavailable"] * 20


def test_stalled_uploads_are_answered_408_in_time_and_the_server_keeps_serving(server):
    """A slow-upload attack: 50 clients send their headers and part of the body, then nothing more."""
    app = create_app(server["spy"], max_wait_ms=1, max_upload_mb=0.5, upload_timeout_s=1.0)
    instance, thread, url = _start(app)
    host, port = url.removeprefix("http://").split(":")
    head = (
        b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        b'Content-Length: 100000\r\n\r\n--b\r\nContent-Disposition: form-data; name="task"\r\n\r\nopen'
    )
    sockets = []
    try:
        started = time.monotonic()
        for _ in range(50):
            conn = socket.create_connection((host, int(port)), timeout=10)
            conn.sendall(head)
            sockets.append(conn)
        answers = []
        for conn in sockets:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            answers.append(data.split(b"\r\n", 1)[0])
        elapsed = time.monotonic() - started
        assert answers == [b"HTTP/1.1 408 Request Timeout"] * 50 and elapsed < 15, (set(answers), elapsed)
        assert app.state.stats.stalled == 50
        with RewardClient(url, timeout=60) as client:
            assert client.score(server["videos"][0], "open the drawer").score in range(1, 6)
    finally:
        for conn in sockets:
            conn.close()
        instance.should_exit = True
        thread.join(timeout=10)
