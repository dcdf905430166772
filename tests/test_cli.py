import json
import subprocess
import sys

from roboreward.cli import main


def test_probe_prints_json(h264_video, capsys):
    assert main(["probe", str(h264_video), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["frames"] == 30 and out["fps"] == 10.0 and out["codec"] == "h264"
    assert (out["width"], out["height"], out["backend"]) == (64, 48, "decord")


def test_probe_of_a_bad_file_is_one_line_and_exit_1(tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 100)
    assert main(["probe", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("roboreward probe: error: cannot decode video") and "broken.mp4" in err[0]


def test_console_script_is_installed_and_documents_itself():
    result = subprocess.run(
        [sys.executable, "-m", "roboreward.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "probe" in result.stdout and "demo" in result.stdout
