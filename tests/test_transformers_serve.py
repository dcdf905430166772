"""A real OpenAI-compatible server: `transformers serve` with the tiny Qwen2.5-VL, driven by relabel and
bench with nothing scripted between our client and the server.

The module's fixture starts ``python -m transformers.cli.transformers serve FOLDER`` on 127.0.0.1 (a
free port), the model loaded from a local folder with the Hub offline, and stops it after the module.
The tiny model has random weights, so it answers gibberish, the same for the same request
(temperature 0): the tests check that its answers reach the caches, the counters and the
predictions as they are. Relabeling's LLM stays a script (its ladders are valid JSON), so that the
VLM's check stage is reached.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import write_manifest, write_video

from roboreward import rubric, video
from roboreward.cli import main
from roboreward.dataset.builder import BuildConfig, build
from roboreward.models.openai_chat import OpenAIChat
from roboreward.relabel import extract_json, prompts

pytestmark = pytest.mark.slow

#: Seconds the server may take to import torch, load the model and answer /health (about 7 s on 2 cores).
READY_TIMEOUT = 180.0
TASK = "put the red block in the blue bowl"
LLM = "scripted:relabel_scripts:answers"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-chars:] if log.exists() else "(no log)"


def _clip(served) -> Path:
    """A 1.2 s fixture video in the server's folder (12 frames at 10 fps)."""
    path = served["root"] / "clip.mp4"
    return path if path.exists() else write_video(path, num_frames=12, fps=10)


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_vlm_dir):
    """``{"url", "model", "spec"}`` of a running `transformers serve` pinned to the tiny Qwen2.5-VL."""
    from transformers.utils.import_utils import is_serve_available

    if not is_serve_available():
        pytest.skip("transformers serve needs pip install 'transformers[serving]' (the dev extra has it)")
    root = tmp_path_factory.mktemp("transformers_serve")
    model = str(tiny_vlm_dir)
    port = _free_port()
    log = root / "server.log"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",  # the CLI asks PyPI for a newer transformers otherwise
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    # Pinned to the folder (the positional FORCE_MODEL): loaded before /health answers, and requests
    # must name the same string as their "model".
    command = [sys.executable, "-m", "transformers.cli.transformers", "serve", model]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root)
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if server.poll() is not None:
                pytest.fail(f"transformers serve exited with {server.returncode}:\n{_tail(log)}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"transformers serve not ready after {READY_TIMEOUT:g} s:\n{_tail(log)}")
            time.sleep(0.2)
        url = f"http://127.0.0.1:{port}/v1"
        yield {"url": url, "model": model, "spec": f"openai:{url}#{model}", "root": root}
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_the_server_answers_our_request_body_the_same_twice(served):
    chat = OpenAIChat(served["url"], served["model"], retries=0)
    frames = video.sample_frames(str(_clip(served)), num_frames=2, max_side=64)
    body = chat.request_body("Describe the scene.", frames, 16)
    assert [part["type"] for part in body["messages"][0]["content"]] == ["image_url", "image_url", "text"]
    response = httpx.post(f"{served['url']}/chat/completions", json=body, timeout=60)
    assert response.status_code == 200
    answer = response.json()
    assert answer["model"] == served["model"] and answer["choices"][0]["finish_reason"] == "length"
    assert answer["usage"]["completion_tokens"] == 16
    text = answer["choices"][0]["message"]["content"]
    assert text and chat.complete("scene", "Describe the scene.", frames, 16) == text


def test_what_the_server_says_to_fields_only_vllm_knows(served):
    """Log-probabilities are accepted and left out of the answer; vLLM's prefill switches and
    unknown fields are refused with 422 before any generation."""
    body = OpenAIChat(served["url"], served["model"]).request_body("Rate it.", None, 4)

    def post(**extra):
        return httpx.post(f"{served['url']}/chat/completions", json={**body, **extra}, timeout=60)

    plain = post()
    with_logprobs = post(logprobs=True, top_logprobs=20)
    assert with_logprobs.status_code == 200 and "logprobs" not in with_logprobs.json()["choices"][0]
    assert with_logprobs.json()["choices"][0]["message"] == plain.json()["choices"][0]["message"]
    prefill = {"messages": [*body["messages"], {"role": "assistant", "content": "ANSWER:"}]}
    refused = post(**prefill, continue_final_message=True, add_generation_prompt=False)
    assert refused.status_code == 422
    assert "Unexpected fields" in refused.json()["detail"]
    assert "continue_final_message" in refused.json()["detail"]
    unknown = post(best_guess=True)
    assert unknown.status_code == 422 and "best_guess" in unknown.json()["detail"]


# ---------------------------------------------------------------------------------------------
# relabel


@pytest.fixture(scope="module")
def one_success(tmp_path_factory):
    """A built folder of one successful episode (reward 5): what counterfactuals start from."""
    root = tmp_path_factory.mktemp("served_relabel")
    write_manifest(root / "src", [{"video": "ep0.mp4", "task": TASK, "reward": 5}], num_frames=12)
    out = root / "ds"
    build(
        BuildConfig(
            manifest=[str(root / "src" / "m.jsonl")],
            out=str(out),
            split_ratios={"train": 1.0},
            max_side=32,
            max_frames=4,
        )
    )
    return out


def _relabel(served, in_dir, out, cache):
    args = ["relabel", str(in_dir), "--out", str(out), "--vlm", served["spec"], "--llm", LLM]
    args += ["--stages", "counterfactual", "--max-retries", "1", "--num-frames", "2", "--max-side", "32"]
    args += ["--max-new-tokens", "16", "--workers", "1", "--request-retries", "0"]
    assert main([*args, "--cache-dir", str(cache), "--json"]) == 0
    report = json.loads((out / "relabel_report.json").read_text())
    assert report["errors"] == [] and report["models"]["vlm"] == served["model"]
    return {k: v for k, v in report["stages"]["counterfactual"].items() if v}


def _entries(cache: Path) -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(cache.glob("*/*.json"))]


def test_relabel_asks_the_served_vlm_for_scenes_and_checks(served, one_success, tmp_path):
    cache = tmp_path / "cache"
    # The tiny model's scene description is no JSON: asked twice (max_retries 1), then the
    # episode's four levels are dropped before any ladder.
    assert _relabel(served, one_success, tmp_path / "first", cache) == {
        "episodes": 1,
        "calls": 2,
        "retries": 1,
        "unparseable": 2,
        "dropped": 4,
    }
    scenes = _entries(cache)
    assert [(e["stage"], e["model"]) for e in scenes] == [("scene", served["model"])] * 2
    assert all(e["answer"] and extract_json(e["answer"]) is None for e in scenes)
    # What was cached is what the server answers to that request: the scene prompt with the
    # episode's two frames, asked again here directly.
    (source,) = (tmp_path / "first" / ".build" / "source_videos").glob("*.mp4")
    frames = video.sample_frames(str(source), num_frames=2, max_side=32)
    direct = OpenAIChat(served["url"], served["model"]).complete("scene", prompts.scene(TASK), frames, 16)
    assert direct in {e["answer"] for e in scenes}

    # With a valid scene in the cache (as a better VLM would have answered), the scripted LLM's
    # ladders reach the served checker: 2 ladders x 4 levels x 2 asks, every answer unparseable.
    scene = {"objects": ["red block", "blue bowl"], "final_state": "the red block is in the blue bowl"}
    for path in cache.glob("*/*.json"):
        path.write_text(json.dumps({**json.loads(path.read_text()), "answer": json.dumps(scene)}))
    assert _relabel(served, one_success, tmp_path / "second", cache) == {
        "episodes": 1,
        "calls": 18,  # 2 ladders (scripted) + 16 checks (served)
        "cache_hits": 1,  # the scene
        "retries": 9,  # 8 checks re-asked, 1 ladder re-asked
        "proposed": 8,
        "unparseable": 16,
        "dropped": 4,
    }
    entries = _entries(cache)
    by_stage = {
        stage: sorted({e["model"] for e in entries if e["stage"] == stage}) for stage in ("scene", "check")
    }
    assert by_stage == {"scene": [served["model"]], "check": [served["model"]]}
    checks = [e["answer"] for e in entries if e["stage"] == "check"]
    assert len(checks) == 16 and all(a and extract_json(a) is None for a in checks)
    assert sum(e["stage"] == "ladder" for e in entries) == 2
    rows = json.loads((tmp_path / "second" / "relabel_report.json").read_text())["rows"]
    assert rows == {"input": 1, "output": 1, "added": 0, "passed_through": 0}


# ---------------------------------------------------------------------------------------------
# bench


@pytest.fixture(scope="module")
def four_episodes(tmp_path_factory):
    root = tmp_path_factory.mktemp("served_bench")
    rows = [
        {"video": f"ep{i}.mp4", "task": f"open the drawer {i}", "reward": 1 + i, "source": source}
        for i, source in enumerate(["oxe/toto", "oxe/toto", "roboarena", "roboarena"])
    ]
    write_manifest(root, rows)
    out = root / "ds"
    build(
        BuildConfig(manifest=[str(root / "m.jsonl")], out=str(out), split_ratios={"test": 1.0}, max_side=32)
    )
    return out


def _bench(served, dataset, out, spec=None):
    args = [
        "bench",
        "--dataset",
        str(dataset),
        "--model",
        spec or served["spec"],
        "--model",
        "baseline:constant-5",
    ]
    assert main([*args, "--num-frames", "2", "--max-side", "64", "--out", str(out), "--json"]) == 0
    return json.loads((out / "results.json").read_text())


def test_bench_scores_the_served_model_from_its_text(served, four_episodes, tmp_path):
    results = _bench(served, four_episodes, tmp_path / "first")
    name = served["model"]  # a served model is named by its "model" field
    assert set(results["models"]) == {name, "baseline:constant-5"} and results["num_examples"] == 4
    served_results = results["models"][name]
    assert served_results["spec"] == served["spec"]
    assert served_results["inference_settings"]["num_frames"] == 2
    files = {p.name for p in (tmp_path / "first" / "predictions").iterdir()}
    (file,) = files - {"baseline_constant-5.jsonl"}
    rows = [json.loads(line) for line in (tmp_path / "first" / "predictions" / file).read_text().splitlines()]
    assert sorted(r["reference"] for r in rows) == [1, 2, 3, 4]
    assert all(isinstance(r["output"], str) and r["output"] for r in rows)
    assert [r["prediction"] for r in rows] == [rubric.parse_answer(r["output"]) or 0 for r in rows]
    invalid = sum(r["prediction"] == 0 for r in rows)
    assert served_results["invalid"] == invalid == 4  # gibberish: no score in any answer
    assert served_results["invalid_rate"] == 1.0
    assert results["models"]["baseline:constant-5"]["invalid"] == 0
    # it fails on a video part (HTTP 500: no decoder for the mp4's audio), so the frames went as images
    assert served_results["served"] == {
        "requested_scoring": "text",
        "endpoints": 1,
        "scoring": {"text": 4},
        "video_input": {"frames": 4},
    }

    again = _bench(served, four_episodes, tmp_path / "second")  # a fresh folder: asked again
    rows_again = (tmp_path / "second" / "predictions" / file).read_text().splitlines()
    assert [json.loads(line)["output"] for line in rows_again] == [r["output"] for r in rows]
    assert again["models"][name] == served_results


def test_asked_for_logprobs_it_is_scored_from_its_text(served, four_episodes, tmp_path):
    """transformers serve refuses vLLM's prefill switches (HTTP 422): the logprob path finds out on
    the first request, says so, and scores every example from the same text answers as above."""
    spec = served["spec"].replace("openai:", "openai+logprobs:", 1)
    text = _bench(served, four_episodes, tmp_path / "text")
    results = _bench(served, four_episodes, tmp_path / "logprobs", spec=spec)
    entry = results["models"][served["model"]]
    assert entry["served"] == {
        "requested_scoring": "logprobs",
        "endpoints": 1,
        "scoring": {"text": 4},
        "video_input": {"frames": 4},
    }
    (file,) = {p.name for p in (tmp_path / "text" / "predictions").iterdir()} - {"baseline_constant-5.jsonl"}

    def outputs(run):
        return [json.loads(line)["output"] for line in (tmp_path / run / "predictions" / file).open()]

    assert outputs("logprobs") == outputs("text")
    assert entry["mae"] == text["models"][served["model"]]["mae"]
