"""Run in a child process by test_video_limits: a decompression bomb through serve, the Space, `score`
and `build`, printing JSON with each path's outcome and the peak RSS growth it caused.

    python tests/bomb_child.py BOMB.mp4 GOOD.mp4 TINY_MODEL_DIR WORK_DIR

Everything that allocates once (imports, the model, the app, a first good request through every
path) runs before the bombs, so the growth measured is what the bomb costs. Each path's growth is
its peak RSS minus the RSS it started from: Linux's peak (VmHWM) is reset before each path through
/proc/self/clear_refs; elsewhere the process peak (ru_maxrss) minus the peak before the bombs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import re
import resource
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from roboreward.cli import main as cli_main
from roboreward.dataset.builder import BuildConfig, build
from roboreward.models.local import RewardModel
from roboreward.serving.server import create_app

ROOT = Path(__file__).resolve().parents[1]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _status_mb(key: str) -> float:
    return int(re.search(rf"{key}:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) / 1024


def measured(run) -> dict:
    """Run one path; its result with ``growth_mb``, the peak RSS it reached over the RSS it began at."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # peak := current RSS
        start = _status_mb("VmRSS")
        result = run()
        return {**result, "growth_mb": round(_status_mb("VmHWM") - start, 1), "how": "VmHWM"}
    except OSError:  # no /proc: the process-wide peak, against the peak before the bombs
        result = run()
        return {**result, "growth_mb": round(peak_mb() - BASELINE[0], 1), "how": "ru_maxrss"}


BASELINE = [0.0]


def load_space():
    spec = importlib.util.spec_from_file_location("space_app", ROOT / "spaces_demo" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(bomb: str, good: str, tiny: str, work: str) -> None:
    work_dir = Path(work)
    model = RewardModel.from_pretrained(tiny, num_frames=4)
    space = load_space()
    demo = space.build_demo(model)
    space_score = next(f.fn for f in demo.fns.values() if f.api_name == "score")

    def serve_path(client: TestClient, path: str) -> dict:
        with open(path, "rb") as f:
            response = client.post("/score", files={"video": ("v.mp4", f, "video/mp4")}, data={"task": "t"})
        return {"status": response.status_code, "detail": response.json().get("detail")}

    def space_path(path: str) -> dict:
        try:
            return {"score": space_score(path, "open the drawer")["score"]}
        except Exception as exc:  # gr.Error
            return {"error": type(exc).__name__, "message": str(exc)}

    def score_path(path: str) -> dict:
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli_main(["score", "--model", tiny, "--video", path, "--task", "t", "--num-frames", "4"])
        return {"code": code, "stderr": err.getvalue()}

    def build_path(path: str, name: str) -> dict:
        rows = [{"video": str(Path(good).resolve()), "task": "open the drawer", "reward": 5}]
        if path != good:
            rows.append({"video": str(Path(path).resolve()), "task": "open the drawer", "reward": 1})
        folder = work_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        for row in rows:  # the manifest keeps its videos inside its folder
            target = folder / Path(row["video"]).name
            target.write_bytes(Path(row["video"]).read_bytes())
            row["video"] = target.name
        (folder / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            report = build(
                BuildConfig(manifest=[str(folder / "m.jsonl")], out=str(folder / "out"), max_frames=4)
            )
        return {"rows": report["totals"]["rows"], "skipped": [s["reason"] for s in report["skipped"]]}

    with TestClient(create_app(model)) as client:
        warm = {
            "serve": serve_path(client, good),
            "space": space_path(good),
            "score": score_path(good),
            "build": build_path(good, "warm"),
        }
        BASELINE[0] = peak_mb()
        out: dict = {"warm": warm, "peak_before_mb": BASELINE[0]}
        for name, run in (
            ("serve", lambda: serve_path(client, bomb)),
            ("space", lambda: space_path(bomb)),
            ("score", lambda: score_path(bomb)),
            ("build", lambda: build_path(bomb, "bomb")),
        ):
            out[name] = measured(run)
    print(json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:5])
