"""Scripted relabeling models for the tests: valid JSON by stage, optionally slow.

`answers` is deterministic: the ladder's instruction for level L is ``variant L.n of the task`` where
n counts how often level L was rejected before (named in the prompt), and the checker says "no" to
``variant 2.0`` only, so level 2 is accepted at the second attempt.
"""

import json
import re
import time


def quoted(prompt):
    """The last ``<task>...</task>`` quote of a prompt (the instruction; the data note comes first)."""
    return re.findall(r"<task>(.*?)</task>", prompt)[-1]


def levels_asked(prompt):
    return [int(x) for x in re.search(r"levels ([\d, ]+), in increasing", prompt).group(1).split(", ")]


def ladder(prompt):
    modes = []
    for level in levels_asked(prompt):
        retry = prompt.count(f"level {level}: <task>variant {level}.")
        modes.append(
            {
                "level": level,
                "failure": f"failure {level}",
                "instruction": f"variant {level}.{retry} of the task",
            }
        )
    return {"failure_modes": modes}


def answers(stage, prompt, frames):
    if stage == "rewrite":
        task = quoted(prompt)
        return json.dumps({"task": task[0].upper() + task[1:] + "."})
    if stage == "scene":
        scene = {"objects": ["red block", "blue bowl"], "final_state": "the red block is in the blue bowl"}
        return f"Here is the scene:\n```json\n{json.dumps(scene)}\n```"
    if stage == "ladder":
        return json.dumps(ladder(prompt))
    if stage == "check":
        return '{"plausible": "no"}' if "variant 2.0" in prompt else '{"plausible": "yes"}'
    if stage == "paraphrase":
        task = quoted(prompt)
        return json.dumps({"paraphrases": [f"please {task}", f"{task}, thanks", f"now {task}"]})
    if stage == "clip_judge":
        return "ANSWER: 3"
    raise ValueError(stage)


def stage_of(prompt):
    """The stage a prompt belongs to, from its wording (for served models, which see no stage)."""
    if "Describe the scene" in prompt:
        return "scene"
    if "plausible outcome" in prompt:
        return "check"
    if "Write NEW instructions" in prompt:
        return "ladder"
    if "paraphrases of this robot task" in prompt:
        return "paraphrase"
    if "reward model for robot manipulation" in prompt:
        return "clip_judge"
    return "rewrite"


def slow(stage, prompt, frames):
    time.sleep(0.15)
    return answers(stage, prompt, frames)
