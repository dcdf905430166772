"""RoboReward Space: score a robot rollout video against a task with a RoboReward reward model.

    ROBOREWARD_MODEL=my-org/RoboReward-3B python spaces_demo/app.py

Upload a video (or pick an example), type the task, press Score: the page shows the distribution over
the five rubric scores, the expected score and the reward, the rubric line of the predicted score, and
the frames the model saw; with "Show the progress curve" ticked, the episode's progress curve under
the score (the plot ``roboreward curve`` draws). An error clears what an earlier video showed. The
same scoring is a named API endpoint, ``/score``:

    from gradio_client import Client, handle_file
    Client("my-org/roboreward").predict(handle_file("rollout.mp4"), "open the drawer", api_name="/score")
    # {"score": 4, "expected": 3.9, "reward": 0.72, "probs": [...], "rubric": "4 - Near completion: ..."}

Settings (environment variables, e.g. Space variables; the Space's README lists them):
``ROBOREWARD_MODEL`` (any reward-model spec `roboreward.models.load_reward_model` takes: a folder or a
Hub id, ``openai+logprobs:URL#model`` for a model served by vLLM, a ``roboreward serve`` URL),
``ROBOREWARD_PROMPT``, ``ROBOREWARD_NUM_FRAMES``,
``ROBOREWARD_MAX_SIDE`` (the last three override the checkpoint's own inference settings, which it
is scored with by default: the ``release`` prompt and Qwen-VL's sampling for RoboReward-4B/8B),
``ROBOREWARD_DTYPE``, ``ROBOREWARD_CURVE_POINTS`` (the points of the progress curve the page can
show under the score, default 8), ``ROBOREWARD_EXAMPLES`` (a JSONL file of ``{"video", "task"}``
rows; default: two generated clips), ``ROBOREWARD_MAX_UPLOAD``, ``ROBOREWARD_MAX_SECONDS``,
``ROBOREWARD_CONCURRENCY``.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

from roboreward import rubric, video
from roboreward.apps.curves import curve_figure, curve_frames
from roboreward.environ import model_spec
from roboreward.extras import refusing_blocks
from roboreward.models import RewardScorer, load_reward_model
from roboreward.models.frames import episode_frames
from roboreward.models.local import RewardModel

DEFAULT_MODEL = "teetone/RoboReward-4B"
NUM_FRAMES = int(os.environ["ROBOREWARD_NUM_FRAMES"]) if os.environ.get("ROBOREWARD_NUM_FRAMES") else None
PROMPT = os.environ.get("ROBOREWARD_PROMPT") or None
DTYPE = os.environ.get("ROBOREWARD_DTYPE", "auto")
MAX_SIDE = int(os.environ["ROBOREWARD_MAX_SIDE"]) if os.environ.get("ROBOREWARD_MAX_SIDE") else None
MAX_UPLOAD = os.environ.get("ROBOREWARD_MAX_UPLOAD", "50mb")
MAX_SECONDS = float(os.environ.get("ROBOREWARD_MAX_SECONDS", "120"))
CONCURRENCY = int(os.environ.get("ROBOREWARD_CONCURRENCY", "2"))
QUEUE_SIZE = 32
MAX_TASK_CHARS = 500
CURVE_POINTS = int(os.environ.get("ROBOREWARD_CURVE_POINTS", "8"))
THUMBNAIL_SIDE = 224

DESCRIPTION = """\
# RoboReward: a reward model for robot episodes

Give a rollout video and the task the robot was given. The model scores the **final state** on the
RoboReward rubric: 1 no goal-relevant change, 2 small progress, 3 in the goal region but wrong,
4 near miss, 5 done. It reads one forward pass: the probability of each score, their expectation, and
a reward in [0, 1] = (E[score] - 1) / 4. [Paper](https://arxiv.org/abs/2601.00675)
"""


def example_videos(folder: str | os.PathLike[str]) -> list[list[str]]:
    """Two procedural rollouts (a success and a near miss) written to ``folder``: no video is shipped."""
    from roboreward import sim

    folder = Path(folder)
    examples = []
    for index, outcome in enumerate(("success", "near_miss")):
        episode = sim.make_episode(index, outcome, seed=0)
        path = video.encode(
            np.stack([sim.render(s, 320, 240) for s in episode.states]),
            folder / f"{outcome}.mp4",
            fps=sim.FPS,
        )
        examples.append([str(path), episode.task])
    return examples


def read_examples(manifest: str | os.PathLike[str]) -> list[list[str]]:
    """``[video, task]`` pairs from a JSONL file of ``{"video", "task"}`` rows (paths relative to it)."""
    manifest = Path(manifest)
    examples = []
    for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            path, task = manifest.parent / row["video"], row["task"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f'{manifest} line {number} is not a {{"video", "task"}} row: {exc}') from None
        if not path.is_file():
            raise ValueError(f"{manifest} line {number}: video {path} does not exist")
        examples.append([str(path), task])
    return examples


def refused(message: str) -> gr.Error:
    """A refusal, shown in the page and in the API's answer. A refusal is the Space working as meant,
    not a fault: it logs no traceback (a log full of them would hide a real one)."""
    return gr.Error(message, print_exception=False)


class SpaceBlocks(refusing_blocks()):
    """`gr.Blocks` that answers a request naming no upload with a refusal that says so.

    Gradio refuses a server path that was not uploaded (``/etc/passwd``, a model file, ``../``) and a
    string where a file is expected before the Space's function runs; plain ``gr.Blocks`` answers
    ``{"error": null}`` and logs a traceback for each (`roboreward.extras.refusing_blocks`).
    """

    not_uploaded = "This Space scores uploaded videos only: that file was not uploaded."
    wrong_input = "The video must be an uploaded file, not a path or text."


def check_upload(path: str | None, task: str | None, max_seconds: float = MAX_SECONDS) -> video.VideoInfo:
    """Refuse, with a message shown in the page, anything but a readable video under ``max_seconds``
    and within `roboreward.video.DEFAULT_LIMITS` (pixels per frame, frames, decoded bytes)."""
    if not path:
        raise refused("Upload a video first.")
    if not task or not task.strip():
        raise refused("Type the task the robot was given.")
    if len(task) > MAX_TASK_CHARS:
        raise refused(f"The task is {len(task)} characters long; this Space takes at most {MAX_TASK_CHARS}.")
    try:
        info = video.probe(path)
    except video.VideoDecodeError as exc:
        raise refused(f"This file is not a readable video: {exc.reason}.") from None
    if info.frames < 2:
        # FFmpeg opens a PNG or JPEG as a one-frame "video": a still image says nothing about an episode.
        raise refused(f"This file is a still image ({info.codec}), not a video.")
    if info.duration > max_seconds:
        raise refused(
            f"The video is {info.duration:.0f} s long; this Space scores videos up to {max_seconds:.0f} s."
        )
    try:  # before any frame is decoded: a small file can hold frames that decode to gigabytes
        video.check_limits(info, video.DEFAULT_LIMITS, path)
    except video.VideoLimitError as exc:
        raise refused(f"This video is too large to score: {exc.reason}.") from None
    return info


def load_model(spec: RewardScorer | str | os.PathLike[str] | None = None) -> RewardScorer:
    """``spec`` as a reward model: itself, or made by `roboreward.models.load_reward_model` (a folder,
    a Hub id, ``openai+logprobs:URL#model``, a ``roboreward serve`` URL).

    Without ``spec``: ``$ROBOREWARD_MODEL``, else DEFAULT_MODEL (the model the Space card lists).
    """
    if isinstance(spec, RewardScorer):
        return spec
    spec = spec or model_spec(DEFAULT_MODEL)
    print(f"loading the reward model {spec}", flush=True)
    overrides = {"num_frames": NUM_FRAMES, "max_side": MAX_SIDE, "prompt": PROMPT}
    if str(spec).startswith(("http://", "https://")):  # a roboreward serve server: its own settings
        return load_reward_model(spec)
    return load_reward_model(spec, dtype=DTYPE, **overrides)


def shown_frames(reward_model: RewardScorer, video_path: str) -> np.ndarray:
    """The frames the model is shown for ``video_path`` (its settings applied; 8 evenly spread when
    the model does not say its settings)."""
    if reward_model.settings is None:
        return video.sample_frames(video_path, num_frames=8)
    return episode_frames(video_path, reward_model.settings)[0]


def progress_figure(
    reward_model: RewardScorer, video_path: str, task: str, points: int = CURVE_POINTS
) -> Any:
    """The episode's progress curve as ``roboreward curve`` draws it (`roboreward.apps.curves`): the
    expected score at ``points`` cuts with its band, legend and VOC, above the frames at those cuts."""
    curve = reward_model.progress_curve(video_path, task, points=points)
    return curve_figure(curve, curve_frames(video_path, curve, max_side=96))


def _thumbnails(frames: np.ndarray) -> list[Image.Image]:
    images = []
    for frame in frames:
        image = Image.fromarray(frame)
        image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        images.append(image)
    return images


def build_demo(
    model: RewardScorer | str | os.PathLike[str] | None = None,
    examples: list[list[str]] | None = None,
    max_seconds: float = MAX_SECONDS,
) -> gr.Blocks:
    """The Space around ``model`` (a reward model, or its spec; default ``$ROBOREWARD_MODEL``).

    ``examples`` are ``[video path, task]`` pairs shown under the inputs. Serve it with `launch`.
    """
    reward_model = load_model(model)
    # One forward pass at a time for a model loaded here: a Space has one accelerator, and two videos'
    # activations at once could exhaust it. A served model's servers batch requests themselves.
    local = isinstance(reward_model, RewardModel)
    model_lock = threading.Lock() if local else contextlib.nullcontext()

    def score(video_path: str | None, task: str | None) -> dict[str, Any]:
        """Score one rollout: five probabilities, the score, its expectation, the reward, the rubric line."""
        check_upload(video_path, task, max_seconds)
        try:
            with model_lock:
                result = reward_model.score(video_path, task)
        except video.VideoDecodeError as exc:
            raise refused(f"This file is not a readable video: {exc.reason}.") from None
        return {**result.to_dict(), "rubric": rubric.level(result.score).line()}

    def show(result: dict[str, Any], video_path: str, task: str, with_curve: bool):
        bars = pd.DataFrame({"score": [str(s) for s in rubric.SCORES], "probability": result["probs"]})
        summary = (
            f"**Score {result['score']}** (expected {result['expected']:.2f}, reward {result['reward']:.3f})"
        )
        thumbnails = _thumbnails(shown_frames(reward_model, video_path))
        return bars, summary, f"_{result['rubric']}_", thumbnails, progress(video_path, task, with_curve)

    def progress(video_path: str, task: str, with_curve: bool) -> Any:
        """The episode's progress curve (`roboreward.apps.curves.curve_figure`), or the plot hidden."""
        if not with_curve:
            return gr.Plot(value=None, visible=False)
        with model_lock:
            figure = progress_figure(reward_model, video_path, task)
        return gr.Plot(value=figure, visible=True)

    def clear() -> tuple[Any, ...]:
        """What the page shows after an error: nothing of the video scored before."""
        empty = pd.DataFrame({"score": [str(s) for s in rubric.SCORES], "probability": [0.0] * 5})
        return None, empty, "", "", [], gr.Plot(value=None, visible=False)

    with SpaceBlocks(title="RoboReward") as demo:
        gr.Markdown(DESCRIPTION)
        with gr.Row():
            with gr.Column():
                # include_audio keeps Gradio from re-encoding the upload with ffmpeg (an extra dependency).
                video_in = gr.Video(
                    label="Rollout video", sources=["upload"], include_audio=True, elem_id="video-input"
                )
                task_in = gr.Textbox(
                    label="Task",
                    placeholder="put the red block in the blue bowl",
                    max_length=MAX_TASK_CHARS,
                    elem_id="task",
                )
                with_curve = gr.Checkbox(
                    label=f"Show the progress curve (the episode cut at 1/{CURVE_POINTS}, ..., all of it)",
                    value=False,
                    elem_id="curve-toggle",
                )
                button = gr.Button("Score", variant="primary", elem_id="score-button")
            with gr.Column():
                summary = gr.Markdown(elem_id="summary")
                rubric_line = gr.Markdown(elem_id="rubric-line")
                curve_plot = gr.Plot(label="Progress curve", visible=False, elem_id="curve")
                bars = gr.BarPlot(
                    x="score", y="probability", y_lim=[0, 1], label="Score distribution", sort="x"
                )
                details = gr.JSON(label="Result (also the /score API)")
        frames = gr.Gallery(
            label="Frames the model saw", columns=8, height="auto", object_fit="contain", elem_id="frames"
        )
        if examples:
            gr.Examples(examples, [video_in, task_in])
        scored = button.click(score, [video_in, task_in], details, api_name="score")
        shown = [bars, summary, rubric_line, frames, curve_plot]
        scored.success(
            show, [details, video_in, task_in, with_curve], shown, api_visibility="private"
        ).failure(clear, None, [details, *shown], api_visibility="private")
        scored.failure(clear, None, [details, *shown], api_visibility="private")
    return demo


def launch(
    demo: gr.Blocks, max_file_size: str | int = MAX_UPLOAD, concurrency: int = CONCURRENCY, **kwargs: Any
) -> Any:
    """Queue ``demo`` (``concurrency`` requests at a time, at most QUEUE_SIZE waiting) and serve it.

    Only uploads are served: no ``allowed_paths``, and Gradio refuses an API call that names a server
    file that was not uploaded. ``kwargs`` go to ``gr.Blocks.launch`` (host, port, ...).
    """
    demo.queue(default_concurrency_limit=concurrency, max_size=QUEUE_SIZE)
    return demo.launch(max_file_size=max_file_size, **kwargs)


def main() -> None:
    manifest = os.environ.get("ROBOREWARD_EXAMPLES")
    if manifest:
        examples = read_examples(manifest)
    else:
        examples = example_videos(tempfile.mkdtemp(prefix="roboreward-examples-"))
    launch(build_demo(examples=examples))


if __name__ == "__main__":
    main()
