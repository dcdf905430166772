"""A Space for the `calibration_preference` metric: paste compute() arguments as JSON, get the result.

evaluate's `launch_gradio_widget` still calls gradio 3 APIs, so the interface (a gr.Blocks) is built here.
"""

import json
from pathlib import Path

import evaluate
import gradio as gr

# The module file, not the folder: on a Space the folder is the Space's checkout. In memory: a compute
# that raises leaves no cache-file lock behind.
MODULE = evaluate.load(
    str(Path(__file__).resolve().with_name("calibration_preference.py")), keep_in_memory=True
)
EXAMPLE = {
    "predictions": [5, 3, 3, 1],
    "references": [5, 4, 2, 1],
    "probabilities": [[0, 0, 0, 0.2, 0.8], [0, 0, 0.6, 0.4, 0], [0, 0.5, 0.5, 0, 0], [1, 0, 0, 0, 0]],
    "groups": ["a", "a", "b", "b"],
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
        title="Calibration and preference (RoboReward)",
        description=MODULE.info.description,
        article=MODULE.info.inputs_description.replace("\n", "  \n"),
        flagging_mode="never",
    )


demo = build_interface()

if __name__ == "__main__":
    demo.launch()
