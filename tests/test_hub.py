"""Release trees per kind, dry-run exports, and pushes that fail cleanly without a network."""

import json
import time
from pathlib import Path

import pytest

from roboreward.apps.hub import HubError, bundled_toolkit, push, release_files
from roboreward.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]


def _touch(root, *names, text="x"):
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def model_dir(tmp_path):
    return _touch(
        tmp_path / "run",
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "processor_config.json",
        "chat_template.jinja",
        "README.md",
        "training_summary.json",
        "training_args.bin",
        "trainer_state.json",
        "checkpoint-10/model.safetensors",
        "checkpoint-10/optimizer.pt",
        "checkpoint-10/rng_state.pth",
        "optimizer.pt",
        "__pycache__/x.cpython-311.pyc",
        "runs/events.out.tfevents",
    )


def test_model_release_leaves_out_trainer_state(model_dir):
    assert release_files("model", model_dir) == [
        "README.md",
        "chat_template.jinja",
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "processor_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "training_summary.json",
    ]
    with_state = release_files("model", model_dir, include_training_state=True)
    assert {"checkpoint-10/optimizer.pt", "optimizer.pt", "trainer_state.json"} <= set(with_state)
    assert "__pycache__/x.cpython-311.pyc" not in with_state


def test_dataset_release_is_the_card_the_shards_and_the_reports(tmp_path):
    root = _touch(
        tmp_path / "roboreward",
        "README.md",
        "data/train-00000-of-00001.parquet",
        "data/test-00000-of-00001.parquet",
        "build_report.json",
        "relabel_report.json",
        ".build/videos/abc.mp4",
        ".build/hf/cache.arrow",
        "notes.txt",
    )
    assert release_files("dataset", root) == [
        "README.md",
        "build_report.json",
        "data/test-00000-of-00001.parquet",
        "data/train-00000-of-00001.parquet",
        "relabel_report.json",
    ]


def test_space_and_metric_releases(tmp_path):
    space = _touch(tmp_path / "space", "app.py", "README.md", "requirements.txt", "__pycache__/app.pyc")
    assert release_files("space", space) == ["README.md", "app.py", "requirements.txt"]
    metric = _touch(tmp_path / "mae", "mae.py", "README.md", "app.py", "requirements.txt")
    assert release_files("metric", metric) == ["README.md", "app.py", "mae.py", "requirements.txt"]


def test_a_space_release_carries_the_toolkit_it_imports(tmp_path):
    import roboreward

    package = Path(roboreward.__file__).parent
    expected = sorted(
        f"roboreward/{p.relative_to(package).as_posix()}"
        for p in package.rglob("*")
        if p.suffix == ".py" or p.name == "py.typed"
    )
    result = push("space", ROOT / "spaces_demo", "org/roboreward", dry_run=True, export=tmp_path / "tree")
    exported = sorted(p.relative_to(tmp_path / "tree").as_posix() for p in (tmp_path / "tree").rglob("*"))
    exported = [f for f in exported if (tmp_path / "tree" / f).is_file()]
    assert exported == result.files == sorted(release_files("space", ROOT / "spaces_demo") + expected)
    assert {"roboreward/models/local.py", "roboreward/rubric.py", "roboreward/sim/tabletop.py"} <= set(
        result.files
    )
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in result.files)
    assert (tmp_path / "tree" / "roboreward" / "models" / "local.py").read_bytes() == (
        package / "models" / "local.py"
    ).read_bytes()
    # A Space that ships its own copy, or does not import the toolkit, gets nothing added.
    own = _touch(tmp_path / "own", "README.md", "app.py", "roboreward/__init__.py")
    (own / "app.py").write_text("from roboreward import rubric\n")
    plain = _touch(tmp_path / "plain", "README.md", "app.py")
    (plain / "app.py").write_text("import gradio as gr\n")
    assert bundled_toolkit("space", own) == {} and bundled_toolkit("space", plain) == {}
    assert bundled_toolkit("metric", ROOT / "spaces_demo") == {}


@pytest.mark.parametrize(
    ("kind", "files", "message"),
    [
        ("model", ["README.md"], "no config.json"),
        ("model", ["config.json"], "no README.md card"),
        ("dataset", ["README.md"], "no data/\\*.parquet"),
        ("space", ["app.py"], "no README.md"),
    ],
)
def test_incomplete_releases_are_refused(tmp_path, kind, files, message):
    with pytest.raises(HubError, match=message):
        release_files(kind, _touch(tmp_path / "x", *files))


def test_dry_run_export_writes_exactly_the_release(model_dir, tmp_path):
    result = push("model", model_dir, "org/RoboReward-tiny", dry_run=True, export=tmp_path / "review")
    exported = sorted(
        p.relative_to(tmp_path / "review").as_posix() for p in (tmp_path / "review").rglob("*") if p.is_file()
    )
    assert exported == result.files == release_files("model", model_dir)
    assert result.url is None and result.total_bytes == len(result.files)
    assert "checkpoint-10/optimizer.pt" in result.excluded
    with pytest.raises(HubError, match="not empty"):
        push("model", model_dir, "org/RoboReward-tiny", dry_run=True, export=tmp_path / "review")


def test_push_without_token_or_network_fails_in_one_line_and_fast(model_dir, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(model_dir.parent / "hf_home"))  # no cached token either
    with pytest.raises(HubError, match="no Hugging Face token"):
        push("model", model_dir, "org/m")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    started = time.monotonic()
    with pytest.raises(HubError, match="cannot reach the Hub to push org/m") as error:
        push("model", model_dir, "org/m", token="hf_fake", allow_card_without_results=True)
    assert time.monotonic() - started < 10
    assert "\n" not in str(error.value)
    with pytest.raises(HubError, match="ORG/NAME"):
        push("model", model_dir, "just-a-name", dry_run=True)


def test_cli_push(model_dir, tmp_path, capsys, monkeypatch):
    code = cli_main(
        [
            "push",
            "model",
            str(model_dir),
            "--repo-id",
            "org/m",
            "--dry-run",
            "--export",
            str(tmp_path / "e"),
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dry_run"] is True and out["files"] == release_files("model", model_dir)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_TOKEN", "hf_fake")
    assert cli_main(["push", "model", str(model_dir), "--repo-id", "org/m"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("roboreward push: error:") and "has no model-index" in err
    assert "--allow-card-without-results" in err and "\n" not in err
    assert (
        cli_main(["push", "model", str(model_dir), "--repo-id", "org/m", "--allow-card-without-results"]) == 1
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("roboreward push: error: cannot reach the Hub") and "\n" not in err


def test_push_model_refuses_a_card_without_results(model_dir, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    (model_dir / "README.md").write_text(
        "---\nlicense: apache-2.0\nbase_model: Qwen/Qwen2.5-VL-3B-Instruct\n---\n"
    )
    with pytest.raises(HubError, match="no model-index"):
        push("model", model_dir, "org/m", token="hf_fake")
    (model_dir / "README.md").write_text(
        "---\nmodel-index:\n- name: m\n  results:\n  - task: {type: video-text-to-text}\n"
        "    dataset: {name: RoboRewardBench, type: roboreward}\n"
        "    metrics: [{type: mae, value: 0.5}]\n---\n"
    )
    with pytest.raises(HubError, match="cannot reach the Hub"):  # past the card check, to the network
        push("model", model_dir, "org/m", token="hf_fake")
