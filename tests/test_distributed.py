"""Build as datatrove tasks (local and Slurm): the in-process build's folder, byte for byte."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
import relabel_scripts
from conftest import write_manifest, write_video

from roboreward import sim, video
from roboreward.dataset import distributed
from roboreward.dataset.builder import BuildConfig, build
from roboreward.dataset.executors import ExecutorConfig, sbatch_lines, share
from roboreward.dataset.pipeline import build_with_relabel
from roboreward.testing.chat_server import Reply, ScriptedChatServer, prompt_text

pytest.importorskip("datatrove")


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """The demo's sources, small (sim LeRobot successes and RoboArena runs), plus a manifest with one
    unreadable video and one empty task, so the report has skips of both kinds."""
    root = tmp_path_factory.mktemp("demo_sources")
    lerobot = sim.write_sim_dataset(root / "sim_tabletop", 6, "lerobot", 0, size=(64, 48))
    arena = sim.write_sim_dataset(root / "roboarena_sim", 3, "roboarena", 1, size=(64, 48))
    manifest_root = root / "manifest"
    manifest_root.mkdir()
    write_video(manifest_root / "ok.mp4", num_frames=9)
    (manifest_root / "broken.mp4").write_bytes(b"not a video at all" * 10)
    rows = [
        {"video": "ok.mp4", "task": "stack the cups", "reward": 4},
        {"video": "broken.mp4", "task": "open the drawer", "reward": 5},
        {"video": "ok.mp4", "task": "", "reward": 3},
    ]
    manifest = write_manifest(manifest_root, rows)
    return {"lerobot": [str(lerobot)], "roboarena": [str(arena)], "manifest": [str(manifest)]}


def _config(sources, out, **kwargs):
    return BuildConfig(
        **sources,
        out=str(out),
        oxe_episodes=5,
        split_ratios={"train": 0.7, "validation": 0.1, "test": 0.2},
        max_side=32,
        max_frames=4,
        **kwargs,
    )


@pytest.fixture(scope="module")
def inprocess(sources, tmp_path_factory):
    out = tmp_path_factory.mktemp("inprocess") / "ds"
    report = build(_config(sources, out))
    return out, report


def _parquet_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "data").glob("*.parquet"))}


def _same_parquet(folder: Path, reference: Path) -> None:
    """The shards are equal byte for byte (and, when not, the rows and columns that differ are named)."""
    import pyarrow.parquet as pq

    mine, theirs = _parquet_bytes(folder), _parquet_bytes(reference)
    assert sorted(mine) == sorted(theirs)
    for name in mine:
        if mine[name] != theirs[name]:
            a = pq.read_table(folder / "data" / name).to_pylist()
            b = pq.read_table(reference / "data" / name).to_pylist()
            differing = [(x["id"], k) for x, y in zip(a, b, strict=False) for k in x if x[k] != y.get(k)]
            raise AssertionError(f"{name} differs: {len(a)} vs {len(b)} rows; (id, column) {differing[:10]}")


def _same_build(folder: Path, reference: tuple[Path, dict]) -> None:
    ref_folder, ref_report = reference
    _same_parquet(folder, ref_folder)
    assert (folder / "README.md").read_text() == (ref_folder / "README.md").read_text()
    report = json.loads((folder / "build_report.json").read_text())
    for key in ("rows", "totals", "skipped", "skipped_by_reason", "files", "lerobot_rewards"):
        assert report[key] == ref_report[key], key


def test_the_reference_build_has_skips_of_both_kinds(inprocess):
    _, report = inprocess
    reasons = {s["episode_id"]: s["reason"] for s in report["skipped"]}
    assert report["totals"]["skipped"] == 2
    assert reasons["2"].startswith("cannot decode video") and reasons["3"].startswith("task is empty")
    assert report["totals"]["rows"] == 5 + 3 + 1  # sampled LeRobot, RoboArena runs, the readable row


def test_share_covers_every_position_once_in_order():
    for count in (0, 1, 7, 30):
        for tasks in (1, 3, 4, 8):
            assert [i for r in range(tasks) for i in share(count, r, tasks)] == list(range(count))


def test_executor_settings_are_checked():
    with pytest.raises(ValueError, match="needs --slurm-partition"):
        ExecutorConfig(executor="slurm")
    with pytest.raises(ValueError, match="workers must be -1"):
        ExecutorConfig(executor="local", workers=0)
    with pytest.raises(ValueError, match="KEY=VALUE"):
        sbatch_lines(["two words=1"])


@pytest.mark.slow
def test_a_local_build_of_4_tasks_on_2_workers_is_the_in_process_build(sources, inprocess, tmp_path):
    out = tmp_path / "ds"
    report = build_with_relabel(
        _config(sources, out), executor=ExecutorConfig(executor="local", tasks=4, workers=2)
    )
    _same_build(out, inprocess)
    assert report["totals"] == inprocess[1]["totals"]
    run = distributed.run_dir(next((out / ".build" / "datatrove").iterdir()), 4)
    completions = sorted(p.name for p in (run / "tasks" / "completions").iterdir())
    assert completions == [f"{r:05d}" for r in range(4)]
    assert sorted(p.name for p in (run / "shards").iterdir()) == [f"task-{r:05d}.json" for r in range(4)]


def test_a_killed_task_is_the_only_one_run_again(sources, inprocess, tmp_path, monkeypatch):
    out = tmp_path / "ds"
    executor = ExecutorConfig(executor="local", tasks=4, workers=1)  # tasks run here, in rank order
    ran, encoded = [], []
    real_run, real_encode = distributed.BuildTask.run, video.encode

    def run(self, rank, world_size):
        ran.append(rank)
        return real_run(self, rank, world_size)

    def encode_then_die(frames, path, **kwargs):
        if ran[-1] == 3 and len([r for r in encoded if r == 3]) == 1:
            raise KeyboardInterrupt("killed")  # task 3 dies after its first video
        encoded.append(ran[-1])
        return real_encode(frames, path, **kwargs)

    monkeypatch.setattr(distributed.BuildTask, "run", run)
    monkeypatch.setattr(video, "encode", encode_then_die)
    with pytest.raises(KeyboardInterrupt):
        build_with_relabel(_config(sources, out), executor=executor)
    assert ran == [0, 1, 2, 3] and not (out / "data").exists()
    first = list(encoded)

    ran.clear(), encoded.clear()

    def encode(frames, path, **kwargs):
        encoded.append(ran[-1] if ran else "merge")
        return real_encode(frames, path, **kwargs)

    monkeypatch.setattr(video, "encode", encode)
    build_with_relabel(_config(sources, out), executor=executor)
    assert ran == [3]  # tasks 0, 1 and 2 had completed
    # 10 episodes in 4 shares of 2, 3, 2, 3: task 3 holds the last RoboArena run, ok.mp4 and broken.mp4
    # (which fails before encoding); it encoded one video before it died, so one is left, and the
    # merge finds every video in the cache
    assert first.count(3) == 1 and encoded == [3]
    _same_build(out, inprocess)


def _fake_slurm(bin_dir: Path, record: Path, run: bool = True) -> None:
    """sbatch, srun, scontrol and squeue that run a job array here, at once, recording each script
    (with ``run=False`` sbatch only records and answers a job id, as a busy cluster does)."""
    bin_dir.mkdir()
    record.mkdir()
    sbatch = f"""#!{sys.executable}
import os, re, subprocess, sys
from pathlib import Path
record = Path({str(record)!r})
args, script = sys.argv[1:-1], Path(sys.argv[-1]).read_text()
job = len(list(record.glob("*.sh"))) + 1
(record / f"{{job}}.sh").write_text(script)
(record / f"{{job}}.args").write_text(" ".join(args))
env = dict(os.environ)
for a in args:
    if a.startswith("--export=ALL,"):
        env.update(kv.split("=", 1) for kv in a.split(",", 1)[1].split(","))
if not {run!r}:
    print(f"Submitted batch job {{job}}"); sys.exit(0)
failed = {{p.stem for p in record.glob("*.failed")}}
dep = [a for a in args if a.startswith("--dependency=")] + re.findall(r"#SBATCH --dependency=(.*)", script)
if any(d.split(":")[-1] in failed for d in dep):
    (record / f"{{job}}.failed").write_text("dependency failed")
    print(f"Submitted batch job {{job}}"); sys.exit(0)
array = re.search(r"#SBATCH --array=(\\d+)-(\\d+)", script)
ranks = range(int(array.group(1)), int(array.group(2)) + 1) if array else [None]
for rank in ranks:
    task_env = {{**env, "SLURM_JOB_ID": str(job), "SLURM_NODELIST": "localhost"}}
    if rank is not None:
        task_env["SLURM_ARRAY_TASK_ID"] = str(rank)
    done = subprocess.run(["bash", "-c", script], env=task_env)
    if done.returncode:
        (record / f"{{job}}.failed").write_text(str(done.returncode))
print(f"Submitted batch job {{job}}")
"""
    scripts = {
        "sbatch": sbatch,
        "srun": '#!/bin/bash\nwhile [[ "$1" == -* ]]; do [[ "$1" == -n ]] && shift; shift; done\nexec "$@"\n',
        "scontrol": "#!/bin/bash\necho localhost\n",
        "squeue": "#!/bin/bash\nexit 0\n",  # every job already left the queue
    }
    for name, text in scripts.items():
        path = bin_dir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _on_path(monkeypatch, bin_dir: Path) -> None:
    venv_bin = str(Path(sys.executable).parent)  # datatrove's launch_pickled_pipeline and merge_stats
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{venv_bin}{os.pathsep}{os.environ['PATH']}")
    src = str(Path(distributed.__file__).parents[2])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))


def test_a_slurm_submission_returns_the_job_ids_and_asks_for_the_resources(sources, tmp_path, monkeypatch):
    bin_dir, record = tmp_path / "bin", tmp_path / "sbatch_scripts"
    _fake_slurm(bin_dir, record, run=False)
    _on_path(monkeypatch, bin_dir)
    executor = ExecutorConfig(
        executor="slurm",
        tasks=5,
        slurm_partition="gpu",
        slurm_gpus_per_task=2,
        slurm_job_name="night",
        slurm_qos="high",
        slurm_sbatch=["exclusive"],
        slurm_env_command="source /opt/venv/bin/activate",
    )
    out = tmp_path / "ds"
    submitted = build_with_relabel(_config(sources, out), executor=executor)
    assert submitted["out"] == str(out) and not (out / "data").exists()  # nothing ran yet
    jobs = submitted["submitted"]
    scripts = {p.stem: p.read_text() for p in record.glob("*.sh")}
    array, merge = scripts[jobs["tasks_job"]], scripts[jobs["merge_job"]]
    for line in ("--array=0-4", "--gpus=2", "--job-name=night-build", "--qos=high", "--exclusive"):
        assert f"#SBATCH {line}\n" in array, line
    assert "source /opt/venv/bin/activate" in array and "launch_pickled_pipeline" in array
    assert "#SBATCH --job-name=night-build-merge\n" in merge and "--gpus" not in merge
    assert f"--dependency=afterok:{jobs['tasks_job']}" in (record / f"{jobs['merge_job']}.args").read_text()


def test_the_executors_without_datatrove_name_the_extra(sources, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datatrove", None)  # as if not installed
    with pytest.raises(ImportError, match=r'pip install "roboreward\[datatrove\]"'):
        build_with_relabel(_config(sources, tmp_path / "ds"), executor=ExecutorConfig(executor="local"))
    assert not (tmp_path / "ds").exists()  # before any work


@pytest.mark.slow
def test_a_slurm_build_submits_an_array_and_a_dependent_merge(sources, inprocess, tmp_path, monkeypatch):
    bin_dir, record = tmp_path / "bin", tmp_path / "sbatch_scripts"
    _fake_slurm(bin_dir, record)
    _on_path(monkeypatch, bin_dir)
    out = tmp_path / "ds"
    executor = ExecutorConfig(
        executor="slurm",
        tasks=3,
        workers=2,
        slurm_partition="cpu-long",
        slurm_time="01:30:00",
        slurm_cpus_per_task=6,
        slurm_mem_per_cpu_gb=3,
        slurm_gpus_per_task=1,
        slurm_job_name="rr",
        slurm_sbatch=["account=robots", "constraint=h100"],
        slurm_wait=True,
    )
    report = build_with_relabel(_config(sources, out), executor=executor)
    _same_build(out, inprocess)
    assert report["totals"] == inprocess[1]["totals"]
    scripts = {p.stem: p.read_text() for p in record.glob("*.sh")}
    assert not list(record.glob("*.failed"))
    array = scripts["1"]  # the tasks, then their stats, then the merge (after the tasks), its stats
    for line in (
        "--partition=cpu-long",
        "--time=01:30:00",
        "--cpus-per-task=6",
        "--mem-per-cpu=3G",
        "--gpus=1",
        "--job-name=rr-build",
        "--array=0-2%2",
        "--account=robots",
        "--constraint=h100",
    ):
        assert f"#SBATCH {line}\n" in array, line
    merge = next(s for s in scripts.values() if "#SBATCH --job-name=rr-build-merge\n" in s and "0-0" in s)
    merge_job = next(k for k, s in scripts.items() if s == merge)
    assert "--dependency=afterok:1" in (record / f"{merge_job}.args").read_text()
    assert "#SBATCH --gpus" not in merge


def _answer(request):
    """A served relabeling model (`relabel_scripts.answers`, by the prompt's wording)."""
    text = prompt_text(request)
    return Reply(relabel_scripts.answers(relabel_scripts.stage_of(text), text, None))


def _asked(server):
    return sorted((r["model"], prompt_text(r)) for r in server.requests)


@pytest.mark.slow
def test_a_distributed_relabel_build_asks_each_call_once_and_equals_the_in_process_one(sources, tmp_path):
    with ScriptedChatServer(_answer) as server:
        settings = {
            "vlm": f"openai:{server.url}#Qwen/Qwen2.5-VL-7B-Instruct",
            "llm": f"openai:{server.url}#Qwen/Qwen3-4B-Instruct-2507",
            "stages": ["rewrite", "counterfactual", "paraphrase"],
            "paraphrases": 1,
            "max_retries": 1,
            "num_frames": 2,
            "workers": 2,
        }
        reference = build_with_relabel(_config(sources, tmp_path / "ref", relabel=settings))
        asked_in_process = _asked(server)
        server.requests.clear()
        out = tmp_path / "ds"
        executor = ExecutorConfig(executor="local", tasks=3, workers=2)
        report = build_with_relabel(_config(sources, out, relabel=settings), executor=executor)
        asked_by_tasks = _asked(server)
        # a task run again (its completion and shard gone) asks nothing: its calls are in the cache
        run = distributed.run_dir(next((out / ".build" / "datatrove").iterdir()), 3)
        (run / "tasks" / "completions" / "00001").unlink()
        (run / "shards" / "task-00001.json").unlink()
        (run / "merge" / "completions" / "00000").unlink()
        server.requests.clear()
        build_with_relabel(_config(sources, out, relabel=settings), executor=executor)
        asked_again = len(server.requests)
    assert len(asked_in_process) > 20 and asked_by_tasks == asked_in_process  # each call once
    assert asked_again == 0
    _same_parquet(out, tmp_path / "ref")
    for key in ("rows", "by_augmentation", "reward_histogram", "stages"):
        assert report["relabel"][key] == reference["relabel"][key], key
    assert report["relabel"]["rows"]["added"] > 0


def test_roboreward_build_takes_the_executor_flags(sources, inprocess, tmp_path, capsys):
    from roboreward.cli import main

    out = tmp_path / "ds"
    flags = [f"--{kind}={path}" for kind, paths in sources.items() for path in paths]
    settings = ["--oxe-episodes=5", "--split-ratios=train=0.7,validation=0.1,test=0.2"]
    settings += ["--max-side=32", "--max-frames=4", f"--out={out}"]
    assert main(["build", *flags, *settings, "--executor=local", "--tasks=2", "--workers=1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["totals"] == inprocess[1]["totals"]
    _same_build(out, inprocess)


def test_the_slurm_settings_come_from_a_recipe_too(tmp_path):
    from roboreward.cli import build_parser
    from roboreward.config import from_namespace

    recipe = tmp_path / "cluster.yaml"
    recipe.write_text(
        "manifest: [m.jsonl]\nexecutor: slurm\ntasks: 32\nslurm_partition: cpu\n"
        "slurm_sbatch: [account=robots]\nslurm_time: '12:00:00'\n"
    )
    args = build_parser("build").parse_args(["build", "--config", str(recipe), "--tasks", "8"])
    executor = from_namespace(ExecutorConfig, args)
    assert (executor.executor, executor.tasks, executor.slurm_partition) == ("slurm", 8, "cpu")
    assert executor.slurm_sbatch == ["account=robots"] and executor.slurm_time == "12:00:00"
    assert from_namespace(BuildConfig, args).manifest == ["m.jsonl"]


def test_a_rerun_with_another_number_of_tasks_takes_nothing_of_the_first(sources, inprocess, tmp_path):
    out = tmp_path / "ds"
    for tasks in (2, 3):
        executor = ExecutorConfig(executor="local", tasks=tasks, workers=1)
        build_with_relabel(_config(sources, out), executor=executor)
        _same_build(out, inprocess)
    work = next((out / ".build" / "datatrove").iterdir())
    assert sorted(p.name for p in work.iterdir()) == ["2-tasks", "3-tasks", "plan.json"]
    assert len(list((work / "3-tasks" / "shards").iterdir())) == 3
