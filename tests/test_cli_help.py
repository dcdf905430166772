"""`roboreward COMMAND --help` as a new user reads it (issue 26, item 6): one spelling per flag, yes/no
fields as switches, no ``(default: None)``, defaults written as a recipe writes them, and fast."""

import os
import re
import subprocess
import sys

import pytest

from roboreward.cli import build_parser, main
from roboreward.cli.commands import COMMANDS

#: Modules no command's --help may import: they cost seconds (torch, transformers) and say nothing
#: about flags.
HEAVY = ("torch", "transformers", "trl")


def _help(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def _options(text: str) -> dict[str, str]:
    """``--flag`` -> its help entry (joined to one line), from the ``options:`` section."""
    section = text.split("\noptions:\n", 1)[1]
    entries = re.split(r"\n  (?=-)", section)
    return {entry.split()[0].rstrip(","): " ".join(entry.split()) for entry in entries}


def _subcommands(command: str) -> list[list[str]]:
    parser = next(a.choices for a in build_parser(command)._actions if isinstance(a.choices, dict))[command]
    nested = [a.choices for a in parser._actions if isinstance(a.choices, dict)]
    return [[command]] + [[command, name] for choices in nested for name in choices]


ALL = [argv for command in COMMANDS for argv in _subcommands(command)]


def test_a_yes_no_field_is_a_switch(capsys):
    demo = _help(["demo"], capsys)
    assert "[--serve]" in demo and "SERVE" not in demo
    assert _options(demo)["--serve"] == "--serve then open the Space on the trained model"
    serve = _help(["serve"], capsys)
    assert "[--insecure]" in serve and "INSECURE" not in serve and "[--public]" in serve
    # the switch takes no value: what follows it is the next argument
    args = build_parser("demo").parse_args(["demo", "--serve", "--steps", "3"])
    assert args.serve is True and args.train_steps == 3


@pytest.mark.parametrize("argv", ALL, ids=" ".join)
def test_no_flag_says_default_none_and_each_flag_is_spelled_once(argv, capsys):
    text = _help(argv, capsys)
    assert "(default: None)" not in text and "(default: [])" not in text
    assert "(default: False)" not in text
    options = _options(text)
    for flag, entry in options.items():
        if flag.startswith("--"):
            # the flag heads its entry once: no --max_side / --max-side pair, no repeated metavar
            assert entry.split(" (also ")[0].count(flag) == 1 or flag == "--help", entry
            assert f"--{flag[2:].replace('-', '_')} " not in entry or "_" not in flag[2:], entry
    heads = [entry.split()[0] for entry in re.split(r"\n  (?=-)", text.split("\noptions:\n", 1)[1])]
    assert len(heads) == len(set(heads))


def test_the_video_key_flag_appears_once_with_its_short_alias(capsys):
    text = _help(["build"], capsys)
    assert "--lerobot_video_key" not in text
    assert text.count("--video-key") == 1
    entry = _options(text)["--lerobot-video-key"]
    assert entry == (
        "--lerobot-video-key LEROBOT_VIDEO_KEY LeRobot camera feature (None: the first non-wrist camera) "
        "(also --video-key)"
    )
    # every spelling still works
    for spelling in ("--video-key", "--lerobot_video_key", "--lerobot-video-key"):
        args = build_parser("build").parse_args(["build", spelling, "top"])
        assert args.lerobot_video_key == "top"


def test_a_required_flag_shows_no_default(capsys):
    review = _options(_help(["review"], capsys))
    assert review["--db"] == "--db FILE the SQLite file of decisions, created if missing (required)"
    assert review["--dataset"] == "--dataset DIR a folder written by `roboreward build` (required)"
    relabel = _options(_help(["relabel"], capsys))
    assert relabel["--out"] == "--out OUT_DIR the new folder"


def test_defaults_are_written_as_a_recipe_writes_them(capsys):
    build = _help(["build"], capsys)
    assert "0.9212040285807633" not in build
    options = _options(build)
    assert options["--split-ratios"].endswith("(default: train=64850,validation=2442,test=3105)")
    assert options["--roboarena-cameras"].endswith("(default: left)")
    # a shipped recipe's values become the defaults, shown as the recipe writes them
    recipe = _options(_help(["build", "--config", "smoke"], capsys))
    assert recipe["--split-ratios"].endswith("(default: train=0.6,validation=0.2,test=0.2)")


def test_bench_usage_shows_model_as_the_readme_writes_it(capsys):
    text = _help(["bench"], capsys)
    usage = text.split("\n\n", 1)[0]
    assert "--model SPEC" in usage and "--models" not in text
    assert _options(text)["--model"].startswith("--model SPEC a model to score (repeatable)")
    args = build_parser("bench").parse_args(["bench", "--dataset", "d", "--model", "a", "--models", "b"])
    assert args.models == ["a", "b"]  # the field's own spelling is still accepted


def _cpu_seconds(argv: list[str]) -> tuple[float, list[str]]:
    """CPU seconds (user + system) of ``roboreward ARGV --help`` in a fresh interpreter, and the heavy
    modules it imported. CPU time, not wall time: other jobs on the machine do not decide it."""
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['roboreward', *{argv!r}, '--help']\n"
        "try:\n"
        "    runpy.run_module('roboreward.cli', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('HEAVY', *sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out[-2000:]
    heavy = out.rsplit("HEAVY", 1)[1].split()
    return usage.ru_utime + usage.ru_stime, heavy


@pytest.mark.parametrize("command", list(COMMANDS))
def test_help_returns_in_under_a_second_without_torch(command):
    seconds, heavy = min(_cpu_seconds([command]) for _ in range(2))
    assert heavy == [], f"roboreward {command} --help imports {heavy}"
    assert seconds < 1.0, f"roboreward {command} --help took {seconds:.2f} s of CPU"
