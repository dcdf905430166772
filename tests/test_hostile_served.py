"""A served model that misbehaves: every case ends in a clear one-line error or INVALID rows, in bounded
time and memory, never a traceback; the time to report a dead endpoint does not grow with --concurrency.

The hostile server is a raw socket server (it can say what no HTTP framework lets it say: nothing, an
endless body, one byte every half second), on 127.0.0.1 only, its loops bounded.
"""

from __future__ import annotations

import json
import math
import socket
import threading
import time

import numpy as np
import pytest
from conftest import write_manifest

from roboreward.cli import main
from roboreward.dataset.builder import BuildConfig, build
from roboreward.models.openai_chat import OpenAIChat
from roboreward.models.served import ServedRewardModel

CHAT = {"id": "x", "object": "chat.completion", "model": "judge"}


def _completion(message, logprobs=None):
    choice = {"index": 0, "message": message, "finish_reason": "length"}
    if logprobs is not None:
        choice["logprobs"] = logprobs
    return json.dumps({**CHAT, "choices": [choice]}).encode()


def _http(status: int, body: bytes, extra: str = "", content_type: str = "application/json") -> bytes:
    head = f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n{extra}"
    return (head + "Connection: close\r\n\r\n").encode() + body


def _logprobs(top):
    return {"content": [{"token": "4", "logprob": -0.1, "top_logprobs": top}]}


#: What the server does with a request, by mode.
CANNED = {
    "500": _http(500, b'{"error": "boom"}'),
    "html": _http(200, b"<html><body>It works!</body></html>", content_type="text/html"),
    "zero_choices": _http(200, json.dumps({**CHAT, "choices": []}).encode()),
    "null_choices": _http(200, json.dumps({**CHAT, "choices": None}).encode()),
    "list_message": _http(200, json.dumps({**CHAT, "choices": [{"message": [1, 2]}]}).encode()),
    "deep_json": _http(200, b"[" * 100_000 + b"]" * 100_000),
    "retry_after": _http(429, b'{"error": "slow down"}', extra="Retry-After: 1e8\r\n"),
    "nonfinite": _http(
        200,
        _completion(
            {"role": "assistant", "content": "4"},
            {"content": [{"token": "4", "logprob": "Infinity", "top_logprobs": []}]},
        ).replace(b'"Infinity"', b"Infinity"),
    ),
    "top_logprobs_number": _http(200, _completion({"role": "assistant", "content": "4"}, _logprobs(7))),
    "content_not_a_list": _http(
        200, _completion({"role": "assistant", "content": "ANSWER: 4"}, {"content": {"0": 1}})
    ),
}


class HostileServer:
    """Accepts on 127.0.0.1 and misbehaves as ``mode`` says; counts the requests it got."""

    def __init__(self, mode: str):
        self.mode = mode
        self.requests = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._stop = threading.Event()
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/v1"

    def __enter__(self):
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._sock.close()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _read_request(self, conn) -> None:
        data = b""
        conn.settimeout(10)
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            ),
            0,
        )
        while len(body) < length:
            body += conn.recv(1 << 20)

    def _answer(self, conn):
        with conn:
            try:
                self._read_request(conn)
            except OSError:
                return
            self.requests += 1
            mode = self.mode
            try:
                if mode in CANNED:
                    conn.sendall(CANNED[mode])
                elif mode == "hang":
                    self._stop.wait(30)
                elif mode == "close_without_answer":
                    return
                elif mode == "close_mid_response":
                    conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n{"choices": [')
                elif mode == "endless":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
                    chunk = b" " * 65536
                    deadline = time.monotonic() + 30  # bounded: the client must stop reading first
                    while time.monotonic() < deadline and not self._stop.is_set():
                        conn.sendall(chunk)
                elif mode == "drip":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                    for _ in range(60):  # bounded: 30 s at most
                        if self._stop.wait(0.5):
                            return
                        conn.sendall(b" ")
            except OSError:
                return


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    rows = [{"video": f"ep{i}.mp4", "task": f"push the cube {i}", "reward": 1 + i % 5} for i in range(16)]
    write_manifest(root, rows, num_frames=4)
    out = root / "ds"
    build(
        BuildConfig(manifest=[str(root / "m.jsonl")], out=str(out), split_ratios={"test": 1.0}, max_side=32)
    )
    return out


def _bench(dataset, url, out, concurrency=4, timeout=2.0):
    argv = ["bench", "--dataset", str(dataset), "--model", f"openai+logprobs:{url}#judge", "--out", str(out)]
    argv += ["--concurrency", str(concurrency), "--request-timeout", str(timeout), "--num-frames", "2"]
    started = time.monotonic()
    code = main(argv)
    return code, time.monotonic() - started


ERRORS = {
    "refused": "failed",
    "500": "HTTP 500",
    "html": "not a chat completion",
    "zero_choices": "not a chat completion",
    "null_choices": "not a chat completion",
    "list_message": "not a chat completion",
    "deep_json": "not a chat completion",
    "hang": "no answer within 2 s",
    "close_without_answer": "failed",
    "close_mid_response": "failed",
    "endless": "answered more than 8 MiB",
    "drip": "no answer within 2 s",
    "retry_after": "HTTP 429",
}


@pytest.mark.parametrize("mode", sorted(ERRORS))
def test_a_misbehaving_server_is_one_clear_error_in_bounded_time(mode, dataset, tmp_path, capsys):
    if mode == "refused":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"  # nothing listens once closed
        code, seconds = _bench(dataset, url, tmp_path / "out")
    else:
        with HostileServer(mode) as server:
            code, seconds = _bench(dataset, server.url, tmp_path / "out")
            # one request's retries (4 tries, backoff 0.5 + 1 + 2 s) plus the probes, not one per example
            assert server.requests <= 8, server.requests
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("roboreward bench: error:")]
    assert code == 1 and "Traceback" not in err
    assert len(errors) == 1 and errors[0].startswith("roboreward bench: error: judge: request for example")
    assert ERRORS[mode] in errors[0]
    # --request-timeout 2 s and 3 retries (backoff 0.5, 1, 2 s, +20 % jitter), probes included
    assert seconds < 4 * 2.0 + 4.5 + 4.0, seconds


def test_the_time_to_report_a_dead_endpoint_does_not_grow_with_concurrency(dataset, tmp_path, capsys):
    times = {}
    for concurrency in (1, 16):
        with HostileServer("hang") as server:
            code, times[concurrency] = _bench(
                dataset, server.url, tmp_path / f"c{concurrency}", concurrency, 1.0
            )
            assert code == 1 and server.requests <= 8
    capsys.readouterr()
    assert times[16] < times[1] + 2.0, times


@pytest.mark.parametrize(
    ("mode", "output"),
    [
        ("nonfinite", "unusable log-probability for score 4: inf"),
        ("top_logprobs_number", "ANSWER: 4"),
    ],
)
def test_odd_log_probabilities_are_invalid_with_the_reason_or_read_as_given(mode, output, dataset, tmp_path):
    with HostileServer(mode) as server:
        assert (
            main(
                [
                    "bench",
                    "--dataset",
                    str(dataset),
                    "--model",
                    f"openai+logprobs:{server.url}#judge",
                    "--out",
                    str(tmp_path / "o"),
                    "--num-frames",
                    "2",
                    "--request-timeout",
                    "5",
                ]
            )
            == 0
        )
    rows = [
        json.loads(line) for line in (tmp_path / "o" / "predictions" / "judge.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 16 and {r["output"] for r in rows} == {output}
    if mode == "nonfinite":  # unknown: never renormalised around the infinity
        assert {r["prediction"] for r in rows} == {0} and all(r.get("probs") is None for r in rows)
    else:  # a number where the list belongs: the token's own log-probability, certain
        assert {r["prediction"] for r in rows} == {4}


def test_logprobs_content_that_is_not_a_list_is_read_as_no_log_probabilities(tmp_path):
    with HostileServer("content_not_a_list") as server:
        model = ServedRewardModel([OpenAIChat(server.url, "judge", timeout=5, retries=0)])
        frames = np.zeros((2, 16, 16, 3), np.uint8)
        answer = model.answer(frames, "open the drawer", fps=2.0)
    assert (answer.scoring, answer.score, answer.text) == ("text", 4, "ANSWER: 4")
    assert not math.isnan(answer.result().expected)
