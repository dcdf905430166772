"""The README as a new user reads it (issue 26, items 4, 5 and 7): every ```python block runs as
written, top to bottom in one namespace, each block's inputs made by the README itself (the rubric
example's frames, the episode file the video example writes) or, for what the README's prose says the
user already has, by the command the README gives for it (a trained checkpoint, a built folder);
each ``# -> value`` comment is checked; the demo's leaderboard names are the README's; ``make``
says what its install step is doing."""

from __future__ import annotations

import ast
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

#: What the README's prose says the user already has, by the name the blocks use, and what makes it
#: here: a checkpoint `roboreward train` wrote (the tiny model), a folder `roboreward build` wrote.
STAND_INS = {
    "runs/3b": "checkpoint",
    "runs/roboreward-qwen2_5_vl_3b": "checkpoint",
    "roboreward": "dataset",
}
#: The blocks that need none of `STAND_INS` (nor a model): the fast tests run them.
FIRST_BLOCKS = ("from roboreward import sim", "from roboreward import video\n\nvideo.encode")
METRICS_BLOCK = "import evaluate\nimport roboreward.metrics"


def fenced_blocks(language: str, text: str | None = None) -> list[tuple[int, str]]:
    """(line number, code) of each ```language block of the README, in order."""
    text = README.read_text(encoding="utf-8") if text is None else text
    return [
        (text[: m.start()].count("\n") + 2, m.group(1))
        for m in re.finditer(rf"^```{language}\n(.*?)^```", text, re.S | re.M)
    ]


def _arrow(line: str) -> tuple[bool, object]:
    """The value a ``# -> value`` comment promises (a Python literal), if the line has one."""
    found = re.search(r"#[^#]*?-> ([^\s;,]+)", line)
    if not found:
        return False, None
    try:
        return True, ast.literal_eval(found.group(1))
    except (ValueError, SyntaxError):
        return False, None


def run_block(line: int, code: str, namespace: dict) -> int:
    """Run one block statement by statement in ``namespace``; check its arrows; return how many."""
    checked = 0
    lines = code.splitlines()
    for statement in ast.parse(code).body:
        where = f"README.md:{line + statement.lineno - 1}"
        try:
            if isinstance(statement, ast.Expr):
                value = eval(compile(ast.Expression(statement.value), where, "eval"), namespace)
                has, promised = _arrow(lines[statement.end_lineno - 1])
                if has:
                    assert value == promised, f"{where}: {value!r}, the README says {promised!r}"
                    checked += 1
            else:
                exec(compile(ast.Module([statement], []), where, "exec"), namespace)
        except AssertionError:
            raise
        except Exception as exc:
            raise AssertionError(f"{where} fails as written: {type(exc).__name__}: {exc}") from exc
    return checked


def make_stand_ins(folder: Path, checkpoint: Path) -> None:
    """`STAND_INS` in ``folder``: links to a tiny checkpoint, and a small `roboreward build` folder."""
    from conftest import write_manifest

    from roboreward.dataset.builder import BuildConfig, build

    for name, kind in STAND_INS.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if kind == "checkpoint":
            target.symlink_to(checkpoint, target_is_directory=True)
        else:
            rows = [
                {"video": f"ep{i}.mp4", "task": f"open the drawer {i}", "reward": 1 + i % 5} for i in range(4)
            ]
            write_manifest(folder / "sources", rows, num_frames=4)
            build(
                BuildConfig(
                    manifest=[str(folder / "sources" / "m.jsonl")],
                    out=str(target),
                    split_ratios={"train": 2, "validation": 1, "test": 1},
                    max_side=32,
                )
            )


def test_the_readme_has_the_python_blocks_this_test_runs():
    blocks = fenced_blocks("python")
    assert len(blocks) == 9
    firsts = [code.splitlines()[0] for _, code in blocks]
    assert firsts[:2] == ["from roboreward import sim", "from roboreward import video"]
    # what no block may use without making it first, nor a stand-in providing it
    text = "\n".join(code for _, code in blocks)
    assert "rollout.mp4" not in text and 'row["video"]' not in text.split("ds = datasets", 1)[0]


def test_the_first_blocks_run_as_written_and_say_what_they_return(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no input lies here: the blocks make theirs
    namespace: dict = {}
    checked = 0
    for line, code in fenced_blocks("python"):
        if code.startswith(FIRST_BLOCKS):
            checked += run_block(line, code, namespace)
    assert checked == 4  # parse_answer twice, progress_to_score twice
    assert namespace["frames"].shape[0] == 4  # 2 frames a second of [1 s, 3 s)
    assert (tmp_path / "episode_000000.mp4").is_file() and (tmp_path / "first_half.mp4").is_file()


def test_the_metrics_block_loads_the_shipped_modules_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no metrics/ folder here
    namespace: dict = {}
    [(line, code)] = [
        (line, code) for line, code in fenced_blocks("python") if code.startswith(METRICS_BLOCK)
    ]
    run_block(line, code, namespace)
    out = namespace["win"].compute(
        predictions=[[5, 3], [2, 2]], references=[5, 1], subsets=["a", "a"], model_names=["x", "y"]
    )
    assert out["mean_win_rate"] == {"x": 1.0, "y": 0.0}
    assert namespace["mae"].compute(predictions=[1, 5], references=[2, 5])["mae"] == 0.5


def test_a_block_that_fails_is_named_by_its_readme_line():
    with pytest.raises(AssertionError, match=r"README.md:12 fails as written: NameError: name 'frames'"):
        run_block(10, "x = 1\n\ny = frames\n", {})
    with pytest.raises(AssertionError, match=r"README.md:10: 2, the README says 3"):
        run_block(10, "1 + 1  # -> 3\n", {})


@pytest.mark.slow
def test_every_python_block_runs_as_written(tmp_path, monkeypatch, tiny_vlm_dir):
    monkeypatch.chdir(tmp_path)
    make_stand_ins(tmp_path, tiny_vlm_dir)
    namespace: dict = {}
    for line, code in fenced_blocks("python"):
        run_block(line, code, namespace)
    assert namespace["result"].score in range(1, 6) and len(namespace["curve"].points) == 8
    assert namespace["row"]["video"]["bytes"][4:8] == b"ftyp"  # the built folder's test row, an mp4


def test_the_readme_leaderboard_names_the_models_as_the_demo_does():
    from roboreward.apps.demo import TRAINED, UNTRAINED

    text = README.read_text(encoding="utf-8")
    section = text.split("## What you just ran", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[2].strip() for line in section.splitlines() if re.match(r"\| \d+ \|", line)]
    assert rows[0] == TRAINED and UNTRAINED in rows
    assert all(
        name in (TRAINED, UNTRAINED, "baseline:random") or re.fullmatch(r"baseline:constant-[1-5]", name)
        for name in rows
    )
    assert "(trained)" not in section and "(untrained)" not in section


def test_make_says_what_its_install_step_is_doing(tmp_path):
    done = subprocess.run(
        ["make", "-n", "-B", "install", f"VENV={tmp_path / 'venv'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "MAKEFLAGS": ""},
        check=True,
    )
    lines = done.stdout.splitlines()
    install = next(i for i, line in enumerate(lines) if 'install --progress-bar off -e ".[dev]"' in line)
    said = " ".join(line for line in lines[:install] if line.startswith("echo "))
    assert "installing the toolkit into" in said and "a few minutes" in said
    assert "--quiet" not in lines[install]  # pip names each package as it goes
