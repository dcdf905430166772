"""The Gradio Space: the /score API through gradio_client, bad uploads, and a real browser."""

import importlib.util
import shutil
import socket
from pathlib import Path

import pytest
from conftest import write_video

from roboreward.scoring import RewardModel
from roboreward.testing import make_tiny_vlm

ROOT = Path(__file__).resolve().parents[1]
TASK = "put the red block in the blue bowl"


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
def space(tmp_path_factory):
    root = tmp_path_factory.mktemp("space")
    model = RewardModel.from_pretrained(make_tiny_vlm(root / "tiny"), num_frames=4)
    app = _load_app()
    examples = app.example_videos(root)
    demo = app.build_demo(model, examples=examples)
    demo.queue(default_concurrency_limit=2)
    port = _free_port()
    demo.launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, max_file_size="5mb"
    )
    good = write_video(root / "good.mp4", num_frames=12, fps=10)
    bad = root / "bad.mp4"
    bad.write_text("not a video at all\n" * 20)
    yield {
        "url": f"http://127.0.0.1:{port}/",
        "model": model,
        "good": good,
        "bad": bad,
        "root": root,
        "examples": examples,
    }
    demo.close()


def test_score_api_equals_direct_scoring(space):
    from gradio_client import Client, handle_file

    client = Client(space["url"], verbose=False)
    result = client.predict(handle_file(str(space["good"])), TASK, api_name="/score")
    direct = space["model"].score(str(space["good"]), TASK)
    assert result["score"] == direct.score
    assert result["probs"] == pytest.approx(list(direct.probs), abs=1e-5)
    assert result["reward"] == pytest.approx(direct.reward, abs=1e-5)
    assert result["rubric"].startswith(f"{direct.score} - ")


def test_a_bad_upload_is_an_error_in_the_page_and_the_app_keeps_serving(space):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(space["url"], verbose=False)
    with pytest.raises(AppError, match="not a readable video"):
        client.predict(handle_file(str(space["bad"])), TASK, api_name="/score")
    with pytest.raises(AppError, match="Type the task"):
        client.predict(handle_file(str(space["good"])), "   ", api_name="/score")
    assert client.predict(handle_file(str(space["good"])), TASK, api_name="/score")["score"] in range(1, 6)


def test_examples_are_generated_not_shipped(space):
    assert [Path(v).suffix for v, _ in space["examples"]] == [".mp4", ".mp4"]
    assert not list((ROOT / "spaces_demo").glob("**/*.mp4"))


def test_the_space_card_has_front_matter():
    import yaml

    front = yaml.safe_load((ROOT / "spaces_demo" / "README.md").read_text().split("---\n")[1])
    assert front["sdk"] == "gradio" and front["app_file"] == "app.py"
    assert "roboreward" in (ROOT / "spaces_demo" / "requirements.txt").read_text()


def test_real_browser_scores_a_video(space, tmp_path):
    chromium = shutil.which("chromium")
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (CI installs it)")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(space["url"])
        page.locator("#video-input input[type=file]").set_input_files(str(space["good"]))
        page.locator("#task textarea").fill(TASK)
        page.locator("#score-button").click()
        page.wait_for_selector("#summary :text('Score')", timeout=60_000)
        shown = page.locator("#summary").inner_text()
        shot = tmp_path / "space.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    direct = space["model"].score(str(space["good"]), TASK)
    assert f"Score {direct.score}" in shown and f"reward {direct.reward:.3f}" in shown
    assert shot.stat().st_size > 20_000
