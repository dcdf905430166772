"""A Space for the `policy_ranking` metric: paste predictions and references as JSON, get the result.

evaluate's `launch_gradio_widget` still calls gradio 3 APIs, so the interface is built here directly.
"""

import json
from pathlib import Path

import evaluate
import gradio as gr

# Load the module file, not the folder: on a Space the folder is the Space's checkout (/home/user/app),
# and evaluate.load(<folder>) would look for <folder name>.py, here app.py itself. In memory: a compute
# that raises on bad input leaves no cache-file lock behind to stall the next one.
MODULE = evaluate.load(str(Path(__file__).resolve().with_name("policy_ranking.py")), keep_in_memory=True)
EXAMPLE = {
    "predictions": [4.5, 3.0, 2.0, 2.5, 1.0, None],
    "references": [5, 4, 2, 3, 1, 1],
    "policies": ["pi0", "pi0", "fast", "fast", "vq", "vq"],
}


def compute(arguments: str) -> dict:
    try:
        kwargs = json.loads(arguments)
    except ValueError as exc:
        raise gr.Error(f"the input is not JSON: {exc}") from None
    if not isinstance(kwargs, dict):
        raise gr.Error("the input must be a JSON object of compute() arguments")
    try:
        return MODULE.compute(**kwargs)
    except (TypeError, ValueError) as exc:
        raise gr.Error(str(exc)) from None


def build_interface() -> gr.Interface:
    return gr.Interface(
        fn=compute,
        inputs=gr.Code(
            label="compute() arguments (JSON)", language="json", value=json.dumps(EXAMPLE, indent=1)
        ),
        outputs=gr.JSON(label="result"),
        title="Policy ranking (RoboReward)",
        description=MODULE.info.description,
        article=MODULE.info.inputs_description.replace("\n", "  \n"),
        flagging_mode="never",
    )


demo = build_interface()

if __name__ == "__main__":
    demo.launch()
