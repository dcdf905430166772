"""`roboreward space --model M` (issue 26, item 3): gradio checked first, a missing model named with its
flag and variable, and the Space in the command's own process, so SIGTERM stops it."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from roboreward.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_without_a_model_it_says_which_flag_or_variable_to_set(monkeypatch, capsys):
    monkeypatch.delenv("ROBOREWARD_MODEL", raising=False)
    assert main(["space"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(
        "roboreward space: error: no reward model to serve: give --model SPEC or set ROBOREWARD_MODEL"
    )
    assert "\n" not in err


def test_without_gradio_it_names_the_extra_before_anything_else(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio raises ImportError
    monkeypatch.delenv("ROBOREWARD_MODEL", raising=False)  # not reached: gradio is checked first
    assert main(["space"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        'roboreward space: error: this needs gradio, which is not installed: pip install "roboreward[space]"'
    )
    assert main(["demo", "--serve", "--out", "unused"]) == 1  # before the demo's minutes, not after
    assert capsys.readouterr().err.strip().endswith('pip install "roboreward[space]"')
    assert not Path("unused").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_sigterm_to_the_command_stops_the_space(tiny_vlm_dir, tmp_path):
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    command = [
        sys.executable,
        "-m",
        "roboreward.cli",
        "space",
        "--model",
        str(tiny_vlm_dir),
        "--port",
        str(port),
    ]
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, process.stdout.read().decode()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the Space did not start within 180 s"
            time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    out = process.stdout.read().decode()
    assert f"serving the Space on {tiny_vlm_dir} at http://127.0.0.1:{port}/" in out
