"""``overlay-venv create NAME`` is answered without click (_entry.py, commands/created.py): the same
options, output, errors and exit status as click's own answer, and every other command line still
goes to click."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from conftest import CLICK_ONLY, modules_loaded, overlay_venv

from overlay_venv import _entry
from overlay_venv.cli import cli
from overlay_venv.commands import created
from overlay_venv.create import CreateOptions


def both(args: list[str], env: dict[str, str], cwd: Path) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    """The same command line through the console script's entry and through click alone, each in a
    directory of its own (cwd/quick, cwd/click) so both can make the same relative NAME."""
    results = []
    for how, cmd in (("quick", ["-m", "overlay_venv"]), ("click", ["-c", CLICK_ONLY])):
        where = cwd / how
        where.mkdir(exist_ok=True)
        results.append(subprocess.run([sys.executable, *cmd, *args], env=env, cwd=where, capture_output=True, text=True))
    return results[0], results[1]


def same(quick: subprocess.CompletedProcess, through_click: subprocess.CompletedProcess) -> None:
    """Equal, but for the directory each ran in (errors name absolute paths)."""

    def shown(result, how):
        return result.returncode, result.stdout.replace(f"/{how}/", "/CWD/"), result.stderr.replace(f"/{how}/", "/CWD/")

    assert shown(quick, "quick") == shown(through_click, "click")


def test_create_name_imports_no_click(release39, tmp_path):
    env = release39.env()
    overlay_venv("create", str(tmp_path / "warm-up"), env=env)
    dependencies = {name.split(".")[0] for name in modules_loaded("create", str(tmp_path / "env"), env=env)}
    assert dependencies == {"overlay_venv"}
    assert (tmp_path / "env" / "bin" / "activate").is_file()
    cold = {name.split(".")[0] for name in modules_loaded("create", "--no-cache", str(tmp_path / "cold"), env=env)}
    assert "click" not in cold and "virtualenv" in cold


def options_both_ways(args: list[str], monkeypatch) -> tuple[CreateOptions, CreateOptions]:
    """What the click command and the click-free path each hand create_and_report for ``create ARGS``."""
    seen: list[CreateOptions] = []
    monkeypatch.setattr(created, "create_and_report", seen.append)
    monkeypatch.setattr(created, "note_container", lambda: None)
    monkeypatch.delenv("_OVERLAY_VENV_COMPLETE", raising=False)
    result = CliRunner().invoke(cli, ["create", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    monkeypatch.setattr(sys, "argv", ["overlay-venv", "create", *args])
    # _plain_create, not run(): run() also sets SIGINT to ignored for the interpreter's exit, which
    # this (pytest's) process and every child it starts later would inherit.
    assert _entry._plain_create() is True
    assert len(seen) == 2
    return seen[0], seen[1]


def test_the_options_are_the_ones_click_passes_for_the_same_command_line(monkeypatch):
    through_click, plain = options_both_ways(["myenv"], monkeypatch)
    assert through_click == plain == CreateOptions(dest=Path("myenv"))


FLAGS = sorted(_entry.PLAIN_FLAGS)


@pytest.mark.parametrize("subset", range(1 << len(FLAGS)))
def test_every_combination_of_the_plain_flags_means_what_it_means_to_click(subset, monkeypatch):
    """Each subset of the flags, split before and after NAME (and a contrary pair in both orders)."""
    flags = [flag for bit, flag in enumerate(FLAGS) if subset >> bit & 1]
    args = [*flags[::2], "myenv", *flags[1::2]]
    through_click, plain = options_both_ways(args, monkeypatch)
    assert through_click == plain and plain.dest == Path("myenv")


@pytest.mark.parametrize(
    "args",
    [
        ["create"],
        ["create", "--help"],
        ["create", "-h"],
        ["create", "--prompt", "x", "env"],
        ["create", "env", "--keep-setup"],
        ["create", "--python=/usr/bin/python3", "env"],
        ["create", "--clear"],
        ["create", "--no-cache", "a", "b"],
        ["create", "--no-pip", "-x"],
        ["create", "--", "-dash"],
        ["create", ""],
        ["list", "env"],
        ["--version"],
    ],
)
def test_anything_else_goes_to_click(args, monkeypatch):
    def refuse(options):
        raise AssertionError(f"answered without click: {args}")

    monkeypatch.setattr(created, "plain_create", refuse)
    monkeypatch.setattr(sys, "argv", ["overlay-venv", *args])
    monkeypatch.delenv("_OVERLAY_VENV_COMPLETE", raising=False)
    assert _entry._plain_create() is False


def test_a_shell_asking_for_completions_goes_to_click(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["overlay-venv", "create", "env"])
    monkeypatch.setenv("_OVERLAY_VENV_COMPLETE", "bash_complete")
    monkeypatch.setattr(created, "plain_create", lambda options: pytest.fail("answered without click"))
    assert _entry._plain_create() is False


def test_created_then_nothing_to_do_prints_as_click_does(release39, tmp_path):
    env = release39.env()
    fresh = both(["create", "env"], env, tmp_path)
    same(*fresh)
    assert fresh[0].returncode == 0 and fresh[0].stdout.startswith("created overlay env on CPython 3.9.")
    assert fresh[0].stdout.endswith("activate it with: source env/bin/activate\n")
    again = both(["create", "env"], env, tmp_path)
    same(*again)
    replaced = both(["create", "--clear", "env", "--no-cache"], env, tmp_path)
    same(*replaced)
    assert replaced[0].returncode == 0 and replaced[0].stdout.startswith("created overlay env on CPython 3.9.")
    assert again[0].stdout.startswith("overlay env already exists on CPython 3.9.")
    assert again[0].stdout.endswith("nothing to do\n")


def test_errors_are_the_same_line_and_status(release39, tmp_path):
    env = release39.env()
    for how in ("quick", "click"):
        (tmp_path / how / "taken").mkdir(parents=True)
        (tmp_path / how / "taken" / "notes.txt").write_text("mine\n")
    refused = both(["create", "taken"], env, tmp_path)
    same(*refused)
    assert refused[0].returncode != 0 and refused[0].stderr.startswith("overlay-venv: error: ")
    assert len(refused[0].stderr.splitlines()) == 1 and refused[0].stdout == ""
    assert (tmp_path / "quick" / "taken" / "notes.txt").read_text() == "mine\n"

    no_python = both(["create", "env"], {**env, "PATH": "/nonexistent"}, tmp_path)
    same(*no_python)
    assert no_python[0].returncode == 1 and "python3" in no_python[0].stderr
    assert not (tmp_path / "quick" / "env").exists()


@pytest.mark.parametrize(
    "failure, status, line",
    [
        (KeyboardInterrupt(), 130, "overlay-venv: error: interrupted (Ctrl-C)"),
        (ZeroDivisionError("boom"), 1, "overlay-venv: error: unexpected ZeroDivisionError: boom (a bug in overlay-venv"),
    ],
)
def test_ctrl_c_and_bugs_end_in_the_same_line_as_under_click(failure, status, line, monkeypatch, capsys):
    def fail(options):
        raise failure

    monkeypatch.setattr(created, "create_and_report", fail)
    monkeypatch.setattr(created, "note_container", lambda: None)
    monkeypatch.delenv("OVERLAY_VENV_DEBUG", raising=False)
    monkeypatch.delenv("_OVERLAY_VENV_COMPLETE", raising=False)
    monkeypatch.setattr(sys, "argv", ["overlay-venv", "create", "env"])
    with pytest.raises(SystemExit) as quick:
        _entry._plain_create()
    quick_err = capsys.readouterr().err
    through_click = CliRunner().invoke(cli, ["create", "env"])
    assert quick.value.code == through_click.exit_code == status
    assert quick_err == through_click.output and quick_err.startswith(line) and len(quick_err.splitlines()) == 1


def test_a_stdout_left_ascii_gets_utf8_as_click_gives_it(release39, tmp_path):
    """A bare C locale leaves Python's streams ASCII: click.echo then writes UTF-8, replacing what
    cannot be encoded, and so does every line overlay-venv writes without click."""
    env = release39.env(PYTHONIOENCODING="ascii")
    made = both(["create", "caf\u00e9"], env, tmp_path)
    same(*made)
    assert made[0].returncode == 0 and made[0].stdout.startswith("created overlay caf\u00e9 on CPython"), made[0].stderr
    for how in ("quick", "click"):
        (tmp_path / how / "d\u00e9j\u00e0").mkdir()
        (tmp_path / how / "d\u00e9j\u00e0" / "notes.txt").write_text("mine\n")
    refused = both(["create", "d\u00e9j\u00e0"], env, tmp_path)
    same(*refused)
    assert refused[0].returncode == 1 and "d\u00e9j\u00e0" in refused[0].stderr and "Traceback" not in refused[0].stderr


@pytest.mark.parametrize("name", ["plain", "with space/and dir", "caf\u00e9", os.fsdecode(b"bad\xffbyte"), Path("p/q")])
def test_paths_are_shown_as_click_shows_them(name):
    assert created.display_path(name) == click.format_filename(str(name))


def test_create_help_is_judged_without_loading_create():
    """Telling a plain command line from the others takes no import: `create --help` stays click's alone."""
    loaded = modules_loaded("create", "--help")
    assert "overlay_venv.create" not in loaded and "overlay_venv.commands.created" not in loaded, loaded


def test_an_unreadable_name_goes_to_click(monkeypatch, tmp_path):
    """click's Path refuses an existing NAME it cannot read (a usage error, exit 2); root reads
    everything, so the refusal is simulated."""
    name = str(tmp_path)
    monkeypatch.setattr(_entry.os, "access", lambda path, mode: not (path == name and mode == os.R_OK))
    assert _entry.plain_create_fields([name]) is None
    assert _entry.plain_create_fields([str(tmp_path / "new")]) == {"dest": str(tmp_path / "new")}
