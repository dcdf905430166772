"""Relabeling backends: spec strings, OpenAI-compatible endpoints on 127.0.0.1 (images, retries,
timeouts, pools), and local transformers models (the tiny random ones emit garbage, which is counted)."""

import base64
import io
import json
import math
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import relabel_scripts
from conftest import write_video
from PIL import Image

from roboreward import rubric, video
from roboreward.cli import build_parser
from roboreward.episode import Episode
from roboreward.relabel import RelabelConfig, Relabeler
from roboreward.relabel.backends import (
    BackendError,
    OpenAIChat,
    PooledBackend,
    ScriptedBackend,
    TransformersBackend,
    parse_backend,
)
from roboreward.testing.chat_server import Reply, ScriptedChatServer, prompt_text
from roboreward.testing.tiny import make_tiny_lm

TASK = "put the red block in the blue bowl"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("relabel_backends") / "ep.mp4", num_frames=20, fps=10)


def _episodes(video, n=1):
    return [
        Episode(
            video=str(video),
            task=f"{TASK} {i}" if i else TASK,
            reward=5,
            source="oxe/toto",
            episode_id=str(i),
        )
        for i in range(n)
    ]


def _run(tmp_path, episodes, **settings):
    return Relabeler(RelabelConfig(**settings), progress=False)(episodes, tmp_path / "work")


# ---------------------------------------------------------------------------------------------
# A scripted OpenAI-compatible server


class ChatServer:
    """POST /v1/chat/completions answering like relabel_scripts.answers, with scripted failures.

    ``behaviour(n, body)`` may return ("status", code) or ("sleep", seconds) for request number n.
    """

    def __init__(self, behaviour=None):
        self.requests = []
        self.behaviour = behaviour or (lambda n, body: None)
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append(
                        {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
                    )
                    n = len(server.requests)
                action = server.behaviour(n, body)
                if action and action[0] == "status":
                    self.send_response(action[1])
                    self.send_header("Retry-After", "0")
                    self.end_headers()
                    return
                if action and action[0] == "sleep":
                    time.sleep(action[1])
                prompt = body["messages"][0]["content"][-1]["text"]
                text = relabel_scripts.answers(relabel_scripts.stage_of(prompt), prompt, None)
                payload = json.dumps(
                    {"choices": [{"message": {"role": "assistant", "content": text}}]}
                ).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up (a timeout case)
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def prompts(self):
        return [r["body"]["messages"][0]["content"][-1]["text"] for r in self.requests]


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_relabeling_through_an_openai_compatible_server(clip, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with ChatServer(lambda n, body: ("status", 503) if n == 1 else None) as server:
        vlm = parse_backend(f"openai:{server.url}#served-vlm", video_input="frames")
        llm = parse_backend(f"openai:{server.url}#served-llm")
        vlm.backoff = llm.backoff = 0.01
        out, _, extra = _run(
            tmp_path, _episodes(clip), vlm=vlm, llm=llm, stages=["counterfactual"], num_frames=4
        )
    assert [(r.reward, r.task) for r in out[1:]] == [
        (1, "variant 1.0 of the task"),
        (2, "variant 2.1 of the task"),
        (3, "variant 3.0 of the task"),
        (4, "variant 4.0 of the task"),
    ]
    assert out[1].provenance["counterfactual"]["vlm"] == "served-vlm"
    assert extra["relabel"]["models"] == {"vlm": "served-vlm", "llm": "served-llm"}
    requests = server.requests
    assert len(requests) == 1 + 1 + 2 + 5  # the 503, then the scene, two ladders, five checks
    assert requests[0]["body"] == requests[1]["body"]  # the 503 was retried with the same request
    assert {r["path"] for r in requests} == {"/v1/chat/completions"}
    for request in requests:
        body = request["body"]
        parts = body["messages"][0]["content"]
        images = [p for p in parts if p["type"] == "image_url"]
        stage = relabel_scripts.stage_of(parts[-1]["text"])
        assert (
            body["temperature"] == 0.0
            and body["seed"] == 0
            and body["max_tokens"] == 512
            and request["auth"] is None
        )
        if stage in ("scene", "check"):  # VLM calls carry the frames as JPEG data URLs
            assert body["model"] == "served-vlm" and len(images) == 4 and parts[-1]["type"] == "text"
            url = images[0]["image_url"]["url"]
            assert url.startswith("data:image/jpeg;base64,")
            frame = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
            assert frame.shape == (48, 64, 3)
        else:
            assert body["model"] == "served-llm" and images == []
    assert [relabel_scripts.stage_of(p) for p in server.prompts()[1:4]] == ["scene", "ladder", "check"]


def test_relabeling_sends_the_vlm_one_video_part_when_the_server_takes_it(clip, tmp_path):
    with ChatServer() as server:
        out, _, _ = _run(
            tmp_path,
            _episodes(clip),
            vlm=f"openai:{server.url}#served-vlm",
            llm=f"openai:{server.url}#served-llm",
            stages=["counterfactual"],
            num_frames=4,
            video_input="auto",
        )
    assert len(out) == 5
    for request in server.requests:
        parts = request["body"]["messages"][0]["content"]
        kinds = [p["type"] for p in parts]
        if request["body"]["model"] == "served-vlm":  # scene and checks: one mp4 of the 4 frames, then text
            assert kinds == ["video_url", "text"]
            data = base64.b64decode(parts[0]["video_url"]["url"].split(",", 1)[1])
            assert video.probe(data).frames == 4
        else:
            assert kinds == ["text"]
    assert sum(r["body"]["model"] == "served-vlm" for r in server.requests) == 1 + 5


def test_a_request_that_times_out_is_retried(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with ChatServer(lambda n, body: ("sleep", 1.5) if n == 1 else None) as server:
        backend = OpenAIChat(server.url, "m", timeout=0.3, retries=1, backoff=0.01)
        started = time.monotonic()
        answer = backend.complete("rewrite", f"Instruction: <task>{TASK}</task>")
        elapsed = time.monotonic() - started
    assert json.loads(answer) == {"task": "Put the red block in the blue bowl."}
    assert len(server.requests) == 2 and 0.3 <= elapsed < 1.5
    assert server.requests[0]["auth"] == "Bearer sk-test"


def test_an_endpoint_that_never_answers_in_time_gives_no_rows_and_no_cache(clip, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with ChatServer(lambda n, body: ("sleep", 1.0)) as server:
        backend = OpenAIChat(server.url, "slow", timeout=0.2, retries=1, backoff=0.01)
        with pytest.raises(BackendError, match=r"failed 2 times, last: no answer within 0.2 s") as caught:
            backend.complete("rewrite", "hello")
        assert caught.value.retryable
        out, _, extra = _run(
            tmp_path, _episodes(clip), vlm=backend, llm=backend, stages=["rewrite", "paraphrase"]
        )
    assert [(r.augmentation, r.task) for r in out] == [("original", TASK)]
    assert extra["relabel"]["stages"]["rewrite"]["errors"] == 1
    assert "no answer within 0.2 s" in extra["relabel"]["errors"][0]
    assert not list((tmp_path / "work" / "relabel_cache").rglob("*.json"))


def test_a_client_error_is_not_retried(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with ChatServer(lambda n, body: ("status", 400)) as server:
        backend = OpenAIChat(server.url, "m", retries=3, backoff=0.01)
        with pytest.raises(BackendError, match="answered HTTP 400") as caught:
            backend.complete("rewrite", "hello")
    assert len(server.requests) == 1 and not caught.value.retryable


def test_a_pool_spreads_calls_and_skips_an_endpoint_that_is_down(clip, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with ChatServer() as first, ChatServer() as second:
        dead = f"http://127.0.0.1:{_closed_port()}/v1"
        spec = [f"openai:{dead}#m", f"openai:{first.url}#m", f"openai:{second.url}#m"]
        pool = parse_backend(spec, retries=0)
        assert isinstance(pool, PooledBackend) and pool.name == "m" and len(pool.members) == 3
        out, _, extra = _run(
            tmp_path, _episodes(clip, 6), vlm=pool, llm=pool, stages=["paraphrase"], workers=3
        )
    assert len(out) == 6 * 3 and extra["relabel"]["stages"]["paraphrase"]["errors"] == 0
    assert pool.served[0] == 0 and pool.served[1] + pool.served[2] == 6
    assert len(first.requests) >= 1 and len(second.requests) >= 1
    assert pool.busy == [0, 0, 0]


def test_a_pool_serves_one_model():
    with pytest.raises(ValueError, match=r"must serve the same model, got \['a', 'b'\]"):
        parse_backend("openai:http://127.0.0.1:1/v1#a,http://127.0.0.1:2/v1#b")


# ---------------------------------------------------------------------------------------------
# Spec strings


def test_spec_strings_make_backends():
    one = parse_backend("openai:http://127.0.0.1:8000/v1/#Qwen/Qwen2.5-VL-7B-Instruct", timeout=5, retries=1)
    assert isinstance(one, OpenAIChat)
    assert (one.url, one.name, one.timeout, one.retries) == (
        "http://127.0.0.1:8000/v1",
        "Qwen/Qwen2.5-VL-7B-Instruct",
        5,
        1,
    )
    pool = parse_backend("openai:http://a:1/v1#m,openai:http://b:2/v1#m")
    assert [m.url for m in pool.members] == ["http://a:1/v1", "http://b:2/v1"]
    scripted = parse_backend("scripted:relabel_scripts:answers")
    assert isinstance(scripted, ScriptedBackend) and scripted.name == "scripted:relabel_scripts:answers"
    assert json.loads(scripted.complete("paraphrase", "<task>x</task>"))["paraphrases"][0] == "please x"
    assert parse_backend(scripted) is scripted


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "Qwen/Qwen2.5-VL-7B-Instruct",
            "model spec must be hf:PATH_OR_ID, openai:URL#model-name or scripted:",
        ),
        ("hf:", "model spec must be"),
        ("openai:http://127.0.0.1:8000/v1", "an OpenAI-compatible endpoint is openai:URL#model-name"),
        ("openai:127.0.0.1:8000#m", "endpoint URL must be http(s)://host[:port]/v1"),
        ("scripted:relabel_scripts", "a scripted model is scripted:package.module:callable"),
        ("scripted:no_such_module_here:f", "cannot import 'no_such_module_here'"),
        ("scripted:relabel_scripts:nothing", "relabel_scripts has no callable 'nothing'"),
        ("vllm:http://x#m", "unknown model kind 'vllm'"),
        (42, "a model is a spec string"),
    ],
)
def test_bad_spec_strings_are_named_in_the_error(spec, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_backend(spec)


def test_a_missing_local_model_is_an_os_error(tmp_path):
    with pytest.raises(OSError):
        parse_backend(f"hf:{tmp_path / 'nothing here'}")


# ---------------------------------------------------------------------------------------------
# Local transformers models


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory, tiny_vlm_dir):
    return tiny_vlm_dir, make_tiny_lm(tmp_path_factory.mktemp("tiny_models") / "lm")


def test_tiny_random_models_emit_garbage_and_nothing_is_written(clip, tmp_path, tiny_models):
    vlm, llm = tiny_models
    config = {
        "vlm": f"hf:{vlm}",
        "llm": f"hf:{llm}",
        "stages": ["rewrite", "counterfactual", "paraphrase"],
        "max_new_tokens": 12,
        "max_retries": 1,
        "num_frames": 4,
        "device": "cpu",
    }
    out, _, extra = _run(tmp_path, _episodes(clip), **config)
    assert [(r.augmentation, r.task) for r in out] == [("original", TASK)]
    report = extra["relabel"]
    stages = report["stages"]
    # every answer was asked for twice (max_retries 1), and none held the JSON asked for
    assert (stages["rewrite"]["unparseable"], stages["rewrite"]["calls"], stages["rewrite"]["dropped"]) == (
        2,
        2,
        1,
    )
    assert (stages["paraphrase"]["unparseable"], stages["paraphrase"]["dropped"]) == (2, 2)
    cf = stages["counterfactual"]
    assert (cf["unparseable"], cf["calls"], cf["dropped"], cf["proposed"], cf["accepted"]) == (2, 2, 4, 0, 0)
    assert all(s["errors"] == 0 for s in stages.values())
    assert report["rows"] == {"input": 1, "output": 1, "added": 0, "passed_through": 0}
    assert report["models"] == {"vlm": str(vlm), "llm": str(llm)}


def test_a_local_vlm_answers_with_frames_and_a_text_lm_cannot_be_the_vlm(tiny_models, tmp_path, clip):
    vlm_path, llm_path = tiny_models
    vlm = TransformersBackend(str(vlm_path), device="cpu")
    frames = np.zeros((3, 32, 32, 3), np.uint8)
    first = vlm.complete("scene", "Describe the scene.", frames, max_new_tokens=6, fps=2.0)
    assert isinstance(first, str) and first == vlm.complete(
        "scene", "Describe the scene.", frames, 6, 2.0
    )  # greedy
    assert isinstance(vlm.complete("rewrite", "Rewrite this.", None, max_new_tokens=4), str)
    lm = TransformersBackend(str(llm_path), device="cpu")
    assert not lm.is_vlm and isinstance(lm.complete("rewrite", "Rewrite this.", max_new_tokens=4), str)
    with pytest.raises(ValueError, match="is a text-only model"):
        lm.complete("scene", "Describe the scene.", frames)
    with pytest.raises(ValueError, match="is a text-only model: give an image-text-to-text model"):
        _run(tmp_path, _episodes(clip), vlm=lm, llm=lm, stages=["counterfactual"])


def test_a_reward_model_judges_clips_in_one_forward_pass(clip, tmp_path, tiny_models):
    vlm, _ = tiny_models
    settings = {
        "vlm": "scripted:relabel_scripts:answers",
        "llm": "scripted:relabel_scripts:answers",
        "stages": ["temporal_clip"],
        "clip_labeller": "judge",
        "judge": f"hf:{vlm}",
        "clip_fractions": [0.5, 0.75],
        "num_frames": 4,
        "device": "cpu",
    }
    out, _, extra = _run(tmp_path, _episodes(clip), **settings)
    clips = out[1:]
    assert [r.video_end for r in clips] == [1.0, 1.5] and all(1 <= r.reward <= 5 for r in clips)
    assert clips[0].provenance["temporal_clip"]["judge"] == vlm.name  # rows carry no local path
    tc = extra["relabel"]["stages"]["temporal_clip"]
    assert (tc["calls"], tc["accepted"], tc["unparseable"]) == (2, 2, 0)  # a score is always read
    assert extra["relabel"]["models"]["judge"] == str(vlm)
    again, _, extra = _run(tmp_path, _episodes(clip), **settings)
    assert [r.reward for r in again[1:]] == [r.reward for r in clips]
    assert extra["relabel"]["stages"]["temporal_clip"]["cache_hits"] == 2


def test_a_served_reward_model_judges_clips_from_its_logprobs(clip, tmp_path):
    def judge(request):  # a served RoboReward model: mostly 4, some 3
        return Reply("", {"4": math.log(0.7), "3": math.log(0.25), "x": math.log(0.05)})

    settings = {
        "vlm": "scripted:relabel_scripts:answers",
        "llm": "scripted:relabel_scripts:answers",
        "stages": ["temporal_clip"],
        "clip_labeller": "judge",
        "clip_fractions": [0.5, 0.75],
        "num_frames": 4,
    }
    with ScriptedChatServer(judge) as server:
        settings["judge"] = f"openai+logprobs:{server.url}#teetone/RoboReward-8B"
        out, _, extra = _run(tmp_path, _episodes(clip), **settings)
        again, _, _ = _run(tmp_path, _episodes(clip), **settings)  # cached: no new requests
    clips = out[1:]
    assert [(r.video_end, r.reward) for r in clips] == [(1.0, 4), (1.5, 4)]
    assert clips[0].provenance["temporal_clip"]["judge"] == "teetone/RoboReward-8B"
    assert len(server.requests) == 2 and all(r["logprobs"] and r["max_tokens"] == 1 for r in server.requests)
    # the published model's own prompt (the release preset), as its settings say
    assert prompt_text(server.requests[0]) == rubric.build_prompt(TASK, "release")
    assert [(r.video_end, r.reward) for r in again[1:]] == [(1.0, 4), (1.5, 4)]
    assert extra["relabel"]["stages"]["temporal_clip"]["calls"] == 2


def test_relabel_takes_concurrency_for_workers_on_the_command_line():
    args = build_parser("relabel").parse_args(["relabel", "in", "--out", "o", "--concurrency", "16"])
    assert args.workers == 16 and args.video_input == "auto"
    frames = build_parser("relabel").parse_args(["relabel", "in", "--out", "o", "--video-input", "frames"])
    assert frames.video_input == "frames"
