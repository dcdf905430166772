"""The pipeline layer: recipes are checked before any source is read, and the layers point down only
(relabel stages and the dataset folder below the builder, the builder below the pipeline)."""

import ast
from pathlib import Path

import pytest
from conftest import write_manifest

from roboreward.cli import main
from roboreward.dataset import builder, pipeline
from roboreward.dataset.builder import BuildConfig
from roboreward.relabel import RelabelConfig

SRC = Path(__file__).resolve().parents[1] / "src" / "roboreward"
SCRIPTED = "scripted:relabel_scripts:answers"


@pytest.fixture
def never_read(monkeypatch):
    """Make opening a source fail the test: whatever runs must stop before any source is read."""
    opened = []

    def open_sources(config):
        opened.append(config)
        raise AssertionError("a source was opened")

    monkeypatch.setattr(builder, "open_sources", open_sources)
    return opened


def test_a_typo_in_the_relabel_recipe_fails_before_any_source_is_read(tmp_path, never_read):
    config = BuildConfig(
        manifest=[str(tmp_path / "rollouts.jsonl")],
        out=str(tmp_path / "ds"),
        relabel={"stagess": ["rewrite"]},
    )
    with pytest.raises(ValueError, match=r"unknown relabel settings \['stagess'\]"):
        pipeline.build_with_relabel(config)
    assert never_read == [] and not (tmp_path / "ds").exists()


def test_a_bad_relabel_value_fails_before_any_source_is_read(tmp_path, never_read):
    config = BuildConfig(manifest=[str(tmp_path / "m.jsonl")], relabel={"stages": "rewrite,clipping"})
    with pytest.raises(ValueError, match="stages must be among"):
        pipeline.build_with_relabel(config)
    assert never_read == []


def test_the_cli_reports_a_recipe_typo_not_the_source_it_never_opened(tmp_path, capsys):
    recipe = tmp_path / "relabel.yaml"
    recipe.write_text(f"relabel:\n  llm: {SCRIPTED}\n  paraphrasess: 3\n")
    missing = tmp_path / "no_such_manifest.jsonl"  # reading it would fail with another message
    code = main(["build", "--manifest", str(missing), "--relabel", str(recipe), "--out", str(tmp_path / "o")])
    assert code == 1
    err = capsys.readouterr().err
    assert "unknown relabel settings ['paraphrasess']" in err and "no_such_manifest" not in err


def test_the_builder_refuses_a_relabel_section_it_would_skip(tmp_path, never_read):
    with pytest.raises(ValueError, match=r"run by roboreward\.dataset\.pipeline\.build_with_relabel"):
        builder.build(BuildConfig(manifest=[str(tmp_path / "m.jsonl")], relabel={"stages": ["rewrite"]}))
    assert never_read == []


def test_pipeline_build_runs_the_relabel_section(tmp_path):
    root = tmp_path / "src"
    manifest = write_manifest(
        root, [{"video": f"ep{i}.mp4", "task": f"open drawer {i}", "reward": 5} for i in range(2)]
    )
    config = BuildConfig(
        manifest=[str(manifest)],
        out=str(tmp_path / "ds"),
        split_ratios={"train": 1.0},
        max_side=32,
        max_frames=4,
        relabel={"llm": SCRIPTED, "vlm": SCRIPTED, "stages": ["paraphrase"]},
    )
    report = pipeline.build_with_relabel(config)
    assert report["relabel"]["by_augmentation"] == {"original": 2, "paraphrase": 4}
    assert report["rows"]["train"]["rows"] == 6


def test_bad_export_settings_fail_before_any_video_is_read(tmp_path):
    source = tmp_path / "built"
    (source / "data").mkdir(parents=True)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="max_frames must be >= 2"):
        pipeline.relabel_dataset(source, out, RelabelConfig(llm=SCRIPTED, vlm=SCRIPTED), max_frames=1)
    assert not out.exists()


def _imports(path: Path) -> set[str]:
    """The roboreward modules a file imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("roboreward"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("roboreward"))
    return found


def _reaches(imports: set[str], module: str) -> bool:
    return any(name == module or name.startswith(module + ".") for name in imports)


def test_the_layers_point_down():
    below_builder = [SRC / "dataset" / "folder.py", *sorted((SRC / "relabel").glob("*.py"))]
    for path in below_builder:
        for upper in ("roboreward.dataset.builder", "roboreward.dataset.pipeline", "roboreward.cli"):
            assert not _reaches(_imports(path), upper), f"{path.name} imports {upper}"
    for path in sorted((SRC / "relabel").glob("*.py")):
        assert not _reaches(_imports(path), "roboreward.dataset.folder"), f"relabel/{path.name}"
    builder_imports = _imports(SRC / "dataset" / "builder.py")
    assert not _reaches(builder_imports, "roboreward.relabel") and not _reaches(
        builder_imports, "roboreward.dataset.pipeline"
    )
    for name in ("dataset/builder.py", "dataset/cards.py", "apps/hub.py"):
        assert not _reaches(_imports(SRC / name), "roboreward.dataset.pipeline"), name


def test_no_module_imports_a_private_name_of_the_dataset_folder_or_pipeline():
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in (
                "roboreward.dataset.folder",
                "roboreward.dataset.pipeline",
                "roboreward.dataset.builder",
            ):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name} imports {private} from {node.module}"


def _module_graph() -> dict[str, set[str]]:
    """roboreward module -> the roboreward modules it imports (at any depth, inside functions too);
    ``from package import module`` points at the module, ``from module import name`` at the module."""
    names = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in names.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in names:
                targets |= {
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in names else node.module
                    for a in node.names
                }
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name in names}
        graph[name] = targets - {name}
    return graph


def test_the_package_has_no_import_circle():
    graph = _module_graph()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError("import circle: " + " -> ".join([*path[path.index(name) :], name]))
        if name in done:
            return
        for target in sorted(graph[name]):
            visit(target, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
