"""The command group: lazily loaded commands that agree with their registry, and help with examples."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import click
import pytest
from conftest import CLICK_ONLY, modules_loaded

from overlay_venv import __version__, commands
from overlay_venv.cli import COMMANDS, cli


def command_modules() -> list[str]:
    names = []
    for info in pkgutil.iter_modules(commands.__path__):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        if isinstance(getattr(module, "command", None), click.Command):
            names.append(info.name)
    return sorted(names)


def first_sentence(command: click.Command) -> str:
    return " ".join((command.help or "").split("\n\n")[0].split())


def test_every_command_module_is_registered_and_nothing_else():
    assert sorted(COMMANDS) == command_modules()


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_registered_summary_is_the_commands_own_first_sentence(name):
    command = cli.get_command(click.Context(cli), name)
    assert command.name == name
    assert COMMANDS[name] == first_sentence(command)


def walk(command: click.Command, path: tuple[str, ...]):
    yield path, command
    if isinstance(command, click.Group):
        for name in command.list_commands(click.Context(command)):
            yield from walk(command.get_command(click.Context(command), name), (*path, name))


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_and_subcommand_help_has_an_example(name):
    for path, command in walk(cli.get_command(click.Context(cli), name), (name,)):
        if isinstance(command, click.Group) and path == (name,) and command.list_commands(click.Context(command)):
            continue  # a group's subcommands carry the examples
        assert "Example" in (command.help or ""), f"overlay-venv {' '.join(path)} --help has no example"


@pytest.mark.parametrize("args", [("--help",), ("--version",)])
def test_help_and_version_load_no_command(args):
    loaded = modules_loaded(*args)
    assert not [m for m in loaded if m.startswith("overlay_venv.commands.")], loaded
    assert not [m for m in loaded if m.split(".")[0] in ("jinja2", "virtualenv", "packaging")], loaded


def test_version_alone_is_answered_before_click_is_imported():
    assert modules_loaded("--version") == ["overlay_venv", "overlay_venv._entry"]


def run(argv: list[str], **env: str) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(argv, capture_output=True, env={**os.environ, **env})


@pytest.mark.parametrize("args", [("--version",), ("--version", "--help"), ("--version", "list"), ("list", "--version")])
def test_the_version_fast_path_answers_as_click_does(args):
    entry = run([sys.executable, "-m", "overlay_venv", *args])
    through_click = run([sys.executable, "-c", CLICK_ONLY, *args])
    assert (entry.returncode, entry.stdout, entry.stderr) == (
        through_click.returncode,
        through_click.stdout,
        through_click.stderr,
    )
    if args == ("--version",):
        assert entry.returncode == 0 and entry.stdout == f"overlay-venv, version {__version__}\n".encode() and entry.stderr == b""


def broken_pipe_run(argv: list[str]) -> subprocess.CompletedProcess:
    import os

    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written: the first write fails with EPIPE
    try:
        return subprocess.run(argv, stdout=write, stderr=subprocess.PIPE)
    finally:
        os.close(write)


def test_the_version_fast_path_meets_a_gone_reader_or_a_closed_stdout_as_click_does():
    entry, through_click = [sys.executable, "-m", "overlay_venv", "--version"], [sys.executable, "-c", CLICK_ONLY, "--version"]
    piped = [broken_pipe_run(argv) for argv in (entry, through_click)]
    assert [(r.returncode, r.stderr) for r in piped] == [(1, b""), (1, b"")]
    closed = [subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh", *argv], capture_output=True) for argv in (entry, through_click)]
    assert [(r.returncode, r.stderr) for r in closed] == [(0, b""), (0, b"")]


def test_completion_of_version_is_left_to_click():
    # A shell asking for completions of `overlay-venv --version`: click's completion answers, not the version.
    env = {"_OVERLAY_VENV_COMPLETE": "bash_complete", "COMP_WORDS": "overlay-venv --version", "COMP_CWORD": "1"}
    entry = run([sys.executable, "-m", "overlay_venv", "--version"], **env)
    through_click = run([sys.executable, "-c", CLICK_ONLY, "--version"], **env)
    assert entry.returncode == through_click.returncode == 0
    assert entry.stdout == through_click.stdout and __version__.encode() not in entry.stdout
    assert b"plain,--version" in entry.stdout


def test_a_command_loads_only_its_own_module():
    loaded = modules_loaded("list", "--help")
    assert [m for m in loaded if m.startswith("overlay_venv.commands.")] == ["overlay_venv.commands.list"]


GROUP_MODULES = ["overlay_venv", "overlay_venv._entry", "overlay_venv.cli", "overlay_venv.commands"]
GROUP_MODULES += ["overlay_venv.errors", "overlay_venv.guard", "overlay_venv.oserrors"]


@pytest.mark.parametrize("name", ["info", "list", "check"])
def test_a_commands_help_costs_the_group_and_its_own_module_alone(name):
    # What the command needs to run is imported when it runs, not for --help.
    loaded = [m for m in modules_loaded(name, "--help") if m.startswith("overlay_venv")]
    assert loaded == sorted([*GROUP_MODULES, f"overlay_venv.commands.{name}"])


def test_an_unknown_command_is_a_usage_error():
    result = subprocess.run([sys.executable, "-m", "overlay_venv", "crate", "x"], capture_output=True, text=True)
    assert result.returncode == 2 and "No such command 'crate'" in result.stderr


# The console script's quick exit (_entry._exit_now): what Python's own exit would do for us, done,
# and the rest (the teardown of every module) skipped; a thread Python would wait for: Python's exit.
QUICK_EXIT = {
    "plain": ("import sys; sys.stdout.write('all of it' * 20000)", "all of it" * 20000, 3),
    "atexit": (
        "import atexit; atexit.register(print, 'second'); atexit.register(lambda: print('atexit ran'))",
        "atexit ran\nsecond\n",
        3,
    ),
    "atexit-fails": ("import atexit; atexit.register(lambda: 1 / 0); atexit.register(print, 'still')", "still\n", 3),
    "thread": (
        "import threading, time; threading.Thread(target=lambda: (time.sleep(0.2), print('thread done'))).start()",
        "thread done\n",
        0,
    ),
}


@pytest.mark.parametrize("case", sorted(QUICK_EXIT))
def test_the_quick_exit_keeps_output_runs_atexit_once_and_leaves_threads_to_python(case):
    setup, out, status = QUICK_EXIT[case]
    # Whatever .pth files of the test interpreter registered at start is not the case under test.
    code = f"import atexit; atexit._clear()\n{setup}\nfrom overlay_venv._entry import _exit_now\n_exit_now(3)\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (result.stdout, result.returncode) == (out, status), result.stderr
    if case == "atexit-fails":  # as at Python's own exit: reported, and the others still run
        assert "ZeroDivisionError" in result.stderr
