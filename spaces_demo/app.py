"""RoboReward Space: score a robot rollout video against a task with a RoboReward reward model.

    ROBOREWARD_MODEL=my-org/RoboReward-3B python spaces_demo/app.py

Upload a video (or pick an example), type the task, press Score: the page shows the distribution over
the five rubric scores, the expected score and the reward, the rubric line of the predicted score, and
the frames the model saw. The same scoring is a named API endpoint, ``/score``:

    from gradio_client import Client, handle_file
    Client("my-org/roboreward-demo").predict(handle_file("rollout.mp4"), "open the drawer", api_name="/score")
    # {"score": 4, "expected": 3.9, "reward": 0.72, "probs": [...], "rubric": "4 - Near completion: ..."}
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from roboreward import rubric, video
from roboreward.scoring import RewardModel

MAX_UPLOAD = os.environ.get("ROBOREWARD_MAX_UPLOAD", "50mb")
MAX_SECONDS = float(os.environ.get("ROBOREWARD_MAX_SECONDS", "120"))
CONCURRENCY = int(os.environ.get("ROBOREWARD_CONCURRENCY", "2"))

DESCRIPTION = """\
# RoboReward: a reward model for robot episodes

Give a rollout video and the task the robot was given. The model scores the **final state** on the
RoboReward rubric: 1 no goal-relevant change, 2 small progress, 3 in the goal region but wrong,
4 near miss, 5 done. It reads one forward pass: the probability of each score, their expectation, and
a reward in [0, 1] = (E[score] - 1) / 4. [Paper](https://arxiv.org/abs/2601.00675)
"""


def example_videos(folder: Path) -> list[list[str]]:
    """Two procedural rollouts (a success and a near miss) to try the Space without an upload."""
    from roboreward.sources import sim

    examples = []
    for index, outcome in enumerate(("success", "near_miss")):
        episode = sim.make_episode(index, outcome, seed=3)
        path = video.encode(
            np.stack([sim.render(s, 320, 240) for s in episode.states]),
            folder / f"{outcome}.mp4",
            fps=sim.FPS,
        )
        examples.append([str(path), episode.task])
    return examples


def _check_upload(path: str | None, task: str | None) -> None:
    if not path:
        raise gr.Error("Upload a video first.")
    if not task or not task.strip():
        raise gr.Error("Type the task the robot was given.")
    try:
        info = video.probe(path)
    except video.VideoDecodeError as exc:
        raise gr.Error(f"This file is not a readable video: {exc.reason}.") from None
    if info.duration > MAX_SECONDS:
        raise gr.Error(
            f"The video is {info.duration:.0f} s long; this Space scores videos up to {MAX_SECONDS:.0f} s."
        )


def build_demo(model: RewardModel | str | None = None, examples: list[list[str]] | None = None) -> gr.Blocks:
    """The Space around ``model`` (a RewardModel, or a path / Hub id; default ``$ROBOREWARD_MODEL``)."""
    spec = model if model is not None else os.environ.get("ROBOREWARD_MODEL")
    if spec is None:
        raise RuntimeError("set ROBOREWARD_MODEL to a RoboReward checkpoint (a folder or a Hub id)")
    reward_model = spec if isinstance(spec, RewardModel) else RewardModel.from_pretrained(spec)

    def score(video_path: str, task: str) -> dict[str, Any]:
        """Score one rollout: five probabilities, the score, its expectation, the reward, the rubric line."""
        _check_upload(video_path, task)
        result = reward_model.score(video_path, task)
        return {**result.to_dict(), "rubric": rubric.level(result.score).line()}

    def render(result: dict[str, Any], video_path: str):
        bars = pd.DataFrame({"score": [str(s) for s in rubric.SCORES], "probability": list(result["probs"])})
        summary = (
            f"**Score {result['score']}** (expected {result['expected']:.2f}, reward {result['reward']:.3f})"
        )
        frames = video.sample_frames(video_path, num_frames=reward_model.num_frames or 16, max_side=224)
        return bars, summary, f"_{result['rubric']}_", list(frames)

    with gr.Blocks(title="RoboReward") as demo:
        gr.Markdown(DESCRIPTION)
        with gr.Row():
            with gr.Column():
                video_in = gr.Video(label="Rollout video", sources=["upload"], elem_id="video-input")
                task_in = gr.Textbox(
                    label="Task", placeholder="put the red block in the blue bowl", elem_id="task"
                )
                button = gr.Button("Score", variant="primary", elem_id="score-button")
            with gr.Column():
                summary = gr.Markdown(elem_id="summary")
                rubric_line = gr.Markdown(elem_id="rubric-line")
                bars = gr.BarPlot(
                    x="score", y="probability", y_lim=[0, 1], label="Score distribution", sort="x"
                )
                details = gr.JSON(label="Result (also the /score API)")
        frames = gr.Gallery(label="Frames the model saw", columns=8, height=180)
        if examples:
            gr.Examples(examples, [video_in, task_in])
        button.click(score, [video_in, task_in], details, api_name="score").success(
            render, [details, video_in], [bars, summary, rubric_line, frames], api_visibility="private"
        )
    return demo


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="roboreward-examples-"))
    demo = build_demo(examples=example_videos(folder))
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=32).launch(max_file_size=MAX_UPLOAD)


if __name__ == "__main__":
    main()
