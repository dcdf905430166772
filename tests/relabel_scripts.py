"""Scripted relabeling models for the tests: valid JSON by stage, optionally slow."""

import json
import re
import time


def answers(stage, prompt, frames):
    if stage == "rewrite":
        task = re.findall(r"<task>(.*?)</task>", prompt)[-1]  # the instruction, after the note on markers
        return json.dumps({"task": task[0].upper() + task[1:] + "."})
    if stage == "scene":
        scene = {"objects": ["red block", "blue bowl"], "final_state": "the red block is in the blue bowl"}
        return f"```json\n{json.dumps(scene)}\n```"
    if stage == "ladder":
        levels = [int(x) for x in re.search(r"levels ([\d, ]+), in increasing", prompt).group(1).split(", ")]
        retry = prompt.count("were rejected")
        modes = [
            {"level": lv, "failure": f"failure {lv}", "instruction": f"variant {lv}.{retry} of the task"}
            for lv in levels
        ]
        return json.dumps({"failure_modes": modes})
    if stage == "check":
        return '{"plausible": "no"}' if "variant 2.0" in prompt else '{"plausible": "yes"}'
    if stage == "paraphrase":
        task = re.findall(r"<task>(.*?)</task>", prompt)[-1]  # the instruction, after the note on markers
        return json.dumps({"paraphrases": [f"please {task}", f"{task}, thanks"]})
    raise ValueError(stage)


def slow(stage, prompt, frames):
    time.sleep(0.15)
    return answers(stage, prompt, frames)
