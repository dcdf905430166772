"""The Gradio Space: the /score API through gradio_client, the upload limits, and a real browser."""

import importlib.util
import json
import re
import socket
from pathlib import Path

import httpx
import pytest
from conftest import launch_chromium, playwright_or_skip, write_video
from PIL import Image

from roboreward import rubric
from roboreward.models.local import RewardModel

ROOT = Path(__file__).resolve().parents[1]
TASK = "put the red block in the blue bowl"
MAX_SECONDS = 3.0
MAX_UPLOAD_BYTES = 1_000_000


def _load_app():
    spec = importlib.util.spec_from_file_location("space_app", ROOT / "spaces_demo" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app():
    return _load_app()


@pytest.fixture(scope="module")
def space(app, tmp_path_factory, tiny_vlm_dir):
    root = tmp_path_factory.mktemp("space")
    model = RewardModel.from_pretrained(tiny_vlm_dir, num_frames=4)
    examples = app.example_videos(root)
    demo = app.build_demo(model, examples=examples, max_seconds=MAX_SECONDS)
    port = _free_port()
    app.launch(
        demo,
        max_file_size=MAX_UPLOAD_BYTES,
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
    )
    yield {
        "url": f"http://127.0.0.1:{port}/",
        "model": model,
        "good": write_video(root / "good.mp4", num_frames=12, fps=10),
        "root": root,
        "examples": examples,
        "demo": demo,
    }
    demo.close()


@pytest.fixture
def client(space):
    from gradio_client import Client

    return Client(space["url"], verbose=False)


def _score(client, path, task=TASK):
    from gradio_client import handle_file

    return client.predict(handle_file(str(path)), task, api_name="/score")


def test_score_api_equals_direct_scoring(space, client):
    result = _score(client, space["good"])
    direct = space["model"].score(str(space["good"]), TASK)
    assert result["score"] == direct.score
    assert result["probs"] == pytest.approx(list(direct.probs), abs=1e-5)
    assert result["expected"] == pytest.approx(direct.expected, abs=1e-5)
    assert result["reward"] == pytest.approx(direct.reward, abs=1e-5)
    assert result["rubric"] == rubric.level(direct.score).line()


def test_a_non_video_upload_is_an_error_and_the_app_keeps_serving(space, client):
    from gradio_client.exceptions import AppError

    bad = space["root"] / "notes.mp4"
    bad.write_text("not a video at all\n" * 20)
    with pytest.raises(AppError, match="not a readable video"):
        _score(client, bad)
    assert _score(client, space["good"])["score"] in rubric.SCORES


def test_a_still_image_is_refused(space, client):
    from gradio_client.exceptions import AppError

    image = space["root"] / "frame.png"
    Image.new("RGB", (64, 48), "red").save(image)
    with pytest.raises(AppError, match="still image"):
        _score(client, image)


def test_a_video_over_the_duration_limit_is_refused(space, client):
    from gradio_client.exceptions import AppError

    long_video = write_video(space["root"] / "long.mp4", num_frames=40, fps=10)
    with pytest.raises(AppError, match=f"up to {MAX_SECONDS:.0f} s"):
        _score(client, long_video)


def test_an_empty_task_is_refused(space, client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="Type the task"):
        _score(client, space["good"], task="   ")


def test_an_upload_over_the_size_limit_is_refused(space):
    payload = b"\0" * (MAX_UPLOAD_BYTES + 1)
    response = httpx.post(f"{space['url']}gradio_api/upload", files={"files": ("big.mp4", payload)})
    assert response.status_code == 413


def test_a_server_file_cannot_be_read_through_the_api(space):
    """A path on the server that was not uploaded is refused, whether scored or fetched."""
    secret = space["good"]  # exists on the server, never uploaded
    call = httpx.post(
        f"{space['url']}gradio_api/call/score",
        json={"data": [{"path": str(secret), "meta": {"_type": "gradio.FileData"}}, TASK]},
    )
    events = httpx.get(f"{space['url']}gradio_api/call/score/{call.json()['event_id']}", timeout=60).text
    assert "event: error" in events and '"score"' not in events
    assert httpx.get(f"{space['url']}gradio_api/file={secret}").status_code == 403


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("/etc/passwd", "The video must be an uploaded file, not a path or text."),
        ("../", "The video must be an uploaded file, not a path or text."),
        ({"path": "/etc/passwd"}, "The video must be an uploaded file, not a path or text."),
        ("file_data:/etc/passwd", "This Space scores uploaded videos only: that file was not uploaded."),
        ("file_data:../../etc/passwd", "This Space scores uploaded videos only: that file was not uploaded."),
        ("file_data:MODEL", "This Space scores uploaded videos only: that file was not uploaded."),
    ],
    ids=["string", "dotdot-string", "no-meta", "etc-passwd", "dotdot", "model-file"],
)
def test_a_path_that_was_not_uploaded_gets_a_refusal_that_says_so_and_no_traceback(
    space, tiny_vlm_dir, capfd, payload, message
):
    """Gradio refuses these before the Space's function runs: the answer was {"error": null}, the log
    a traceback per request."""
    if isinstance(payload, str) and payload.startswith("file_data:"):
        path = payload.removeprefix("file_data:")
        path = str(tiny_vlm_dir / "model.safetensors") if path == "MODEL" else path
        payload = {"path": path, "meta": {"_type": "gradio.FileData"}}
    capfd.readouterr()
    call = httpx.post(f"{space['url']}gradio_api/call/score", json={"data": [payload, TASK]})
    events = httpx.get(f"{space['url']}gradio_api/call/score/{call.json()['event_id']}", timeout=60).text
    data = json.loads(events.split("event: error\ndata: ", 1)[1].split("\n", 1)[0])
    assert data["error"] == message
    assert "Traceback" not in capfd.readouterr().err


def test_refused_uploads_log_no_traceback(space, client, capfd):
    from gradio_client.exceptions import AppError

    bad = space["root"] / "notes2.mp4"
    bad.write_text("not a video at all\n" * 20)
    capfd.readouterr()
    with pytest.raises(AppError, match="not a readable video"):
        _score(client, bad)
    with pytest.raises(AppError, match="Type the task"):
        _score(client, space["good"], task="   ")
    assert "Traceback" not in capfd.readouterr().err


def test_examples_are_generated_not_shipped(space):
    assert [Path(v).suffix for v, _ in space["examples"]] == [".mp4", ".mp4"]
    assert all(Path(v).stat().st_size > 0 and t for v, t in space["examples"])
    assert not [p for p in (ROOT / "spaces_demo").rglob("*") if p.suffix in {".mp4", ".webm", ".avi"}]


def test_examples_can_come_from_a_jsonl_file(app, tmp_path):
    (tmp_path / "clips").mkdir()
    write_video(tmp_path / "clips" / "ep0.mp4", num_frames=4)
    manifest = tmp_path / "examples.jsonl"
    manifest.write_text(json.dumps({"video": "clips/ep0.mp4", "task": "open the drawer"}) + "\n")
    assert app.read_examples(manifest) == [[str(tmp_path / "clips" / "ep0.mp4"), "open the drawer"]]
    manifest.write_text(json.dumps({"video": "clips/missing.mp4", "task": "open the drawer"}) + "\n")
    with pytest.raises(ValueError, match=r"line 1: video .*missing\.mp4 does not exist"):
        app.read_examples(manifest)


def test_the_space_card_and_requirements():
    import gradio
    import yaml
    from huggingface_hub import SpaceHardware

    card = (ROOT / "spaces_demo" / "README.md").read_text()
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["sdk"] == "gradio" and front["app_file"] == "app.py"
    assert front["sdk_version"] == gradio.__version__
    assert front["models"] and front["datasets"]
    assert front["suggested_hardware"] in {h.value for h in SpaceHardware}
    assert 'api_name="/score"' in card
    requirements = (ROOT / "spaces_demo" / "requirements.txt").read_text().splitlines()
    names = {re.match(r"[\w.-]*", line.split("#")[0].strip()).group() for line in requirements} - {""}
    assert {"torch", "transformers", "accelerate", "av"} <= names


def test_real_browser_scores_a_video(space, tmp_path):
    playwright = playwright_or_skip()
    with playwright.sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(space["url"])
        page.locator("#video-input input[type=file]").set_input_files(str(space["good"]))
        page.locator("#task textarea").fill(TASK)
        page.locator("#score-button").click()
        page.wait_for_selector("#summary :text('Score')", timeout=60_000)
        page.wait_for_selector("#frames img", timeout=30_000)
        shown = page.locator("#summary").inner_text()
        rubric_shown = page.locator("#rubric-line").inner_text()
        frames_shown = page.locator("#frames img").count()
        shot = tmp_path / "space.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    direct = space["model"].score(str(space["good"]), TASK)
    assert f"Score {direct.score}" in shown
    assert f"expected {direct.expected:.2f}" in shown and f"reward {direct.reward:.3f}" in shown
    assert rubric_shown.strip() == rubric.level(direct.score).line()
    assert frames_shown == 4
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def _events(demo):
    """The Space's score event, the event that shows its result, and those that run on a failure."""
    functions = list(demo.fns.values())
    score = next(f for f in functions if f.api_name == "score")
    show = next(f for f in functions if f.name == "show")
    failures = [f for f in functions if f.trigger_only_on_failure]
    return score, show, failures


def test_an_error_clears_what_the_last_video_showed(space):
    score, show, failures = _events(space["demo"])
    # a failed score (a bad upload) and a failed show both clear every output the page shows
    assert sorted(f.trigger_after for f in failures) == sorted([score._id, show._id])
    shown = [getattr(block, "elem_id", None) for block in failures[0].outputs]
    assert shown == [None, None, "summary", "rubric-line", "frames", "curve"]
    assert failures[0].outputs[0] is score.outputs[0]  # the /score JSON too
    details, bars, summary, rubric_line, frames, curve = failures[0].fn()
    assert (details, summary, rubric_line, frames) == (None, "", "", [])
    assert bars["probability"].tolist() == [0.0] * 5 and curve.visible is False


def test_the_curve_toggle_shows_the_episodes_progress_curve_under_the_score(space, app):
    _, show, _ = _events(space["demo"])
    video_path = str(space["good"])
    result = space["model"].score(video_path, TASK)
    record = {**result.to_dict(), "rubric": rubric.level(result.score).line()}
    *_, hidden = show.fn(record, video_path, TASK, False)
    assert hidden.visible is False
    *_, plot = show.fn(record, video_path, TASK, True)
    assert plot.visible is True and plot.value["type"] == "matplotlib"
    assert plot.value["plot"].startswith("data:image/")
    expected = space["model"].progress_curve(video_path, TASK, points=app.CURVE_POINTS).expected
    figure = app.progress_figure(space["model"], video_path, TASK)
    assert figure.axes[0].lines[0].get_ydata().tolist() == pytest.approx(expected)
    assert len(expected) == app.CURVE_POINTS == 8 and len(figure.axes) == 1 + 8  # the curve, 8 frames


def test_real_browser_clears_the_score_on_an_error_and_draws_the_curve(space):
    playwright = playwright_or_skip()
    with playwright.sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(space["url"])
        page.locator("#video-input input[type=file]").set_input_files(str(space["good"]))
        page.locator("#task textarea").fill(TASK)
        page.locator("#curve-toggle input").check()
        page.locator("#score-button").click()
        page.wait_for_selector("#summary :text('Score')", timeout=60_000)
        page.wait_for_selector("#curve img", timeout=60_000)  # the curve's plot, under the score
        scored = page.locator("#summary").inner_text()
        page.locator("#task textarea").fill("")  # an error: no task
        page.locator("#score-button").click()
        page.wait_for_function(
            "() => !document.querySelector('#summary').innerText.includes('Score')", timeout=30_000
        )
        after = page.locator("#summary").inner_text(), page.locator("#rubric-line").inner_text()
        curve_shown = page.locator("#curve").is_visible()
        browser.close()
    assert "Score" in scored
    assert after == ("", "") and not curve_shown
