"""POSIX activation details beyond the shared scenarios: shellcheck, prompts, inherited environments,
and living next to plain venvs."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import ODD_NAME
from shells import PosixShell


@pytest.mark.parametrize("dialect", ["sh", "bash", "ksh"])
def test_shellcheck_passes(overlay39, odd_overlay, dialect):
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    for overlay in (overlay39, odd_overlay):
        for script in ("activate", "_overlay_venv_lib.sh"):
            result = subprocess.run(["shellcheck", "-s", dialect, str(overlay / "bin" / script)], capture_output=True, text=True)
            assert result.returncode == 0, result.stdout


def test_bash_prompt_shows_the_name_and_runs_nothing(release39, odd_overlay, tmp_path):
    script = [
        "PS1='\\u$ '",
        PosixShell("bash").source(odd_overlay / "bin" / "activate"),
        'printf "%s\\n" "${PS1@P}"',
        "deactivate",
        'printf "%s\\n" "$PS1"',
    ]
    result = PosixShell("bash").run(script, env=release39.env(), cwd=tmp_path)
    shown, restored = result.lines
    assert shown.startswith(f"({ODD_NAME}) ")
    assert restored == "\\u$ "
    assert list(tmp_path.iterdir()) == []


def test_zsh_prompt_uses_psvar_even_with_prompt_subst(release39, odd_overlay, tmp_path):
    if shutil.which("zsh") is None:
        pytest.skip("zsh is not installed")
    script = [
        "setopt PROMPT_SUBST",
        "PS1='%# '",
        PosixShell("zsh").source(odd_overlay / "bin" / "activate"),
        'print -r -- "${(%%)PS1}"',
        'print -rP -- "$PS1"',
        "deactivate",
        'print -r -- "$PS1"',
    ]
    result = PosixShell("zsh").run(script, env=release39.env(), cwd=tmp_path)
    assert result.lines[1].startswith(f"({ODD_NAME}) ")
    assert result.lines[-1] == "%# "
    assert list(tmp_path.iterdir()) == []


def test_prompt_can_be_disabled(release39, overlay39, tmp_path):
    script = ["PS1='$ '", ". " + str(overlay39 / "bin" / "activate"), 'printf "%s\\n" "$PS1"']
    env = release39.env(VIRTUAL_ENV_DISABLE_PROMPT="1")
    assert PosixShell("bash").run(script, env=env, cwd=tmp_path).lines == ["$ "]


@pytest.mark.parametrize("shell", ["dash", "bash"])
def test_inherited_activated_environment_gives_no_duplicates(shell, release39, overlay39, second_overlay39, tmp_path):
    """A batch job started with the submitter's activated environment, then activating again."""
    sh = PosixShell(shell)
    outer = release39.env()
    activated = sh.run([sh.source(second_overlay39 / "bin" / "activate"), "env -0"], env=outer).stdout
    inherited = dict(item.split("=", 1) for item in activated.split("\0") if "=" in item)
    result = sh.run(["set -eu", sh.source(overlay39 / "bin" / "activate"), sh.probe("job")], env=inherited, cwd=tmp_path)
    job = result["job"]
    assert str(second_overlay39) not in job["PATH"] and str(second_overlay39) not in job["PYTHONPATH"]
    assert job["PATH"].split(":").count(f"{overlay39}/bin") == 1
    assert job["PYTHONPATH"] == f"{next((overlay39 / 'lib').glob('python3.*'))}/site-packages:{release39.site}"
    assert job["basepkg"] == "2.0"


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_overlay_over_a_plain_venv(shell, release39, overlay39, tmp_path):
    """Our activate calls the active venv's own `deactivate nondestructive` first, then takes over.
    (The other way round cannot work: venv's script defines its `deactivate` before calling it, so it
    never calls ours; the README says to deactivate an overlay before activating a plain venv.)"""
    sh = PosixShell(shell)
    if not sh.available():
        pytest.skip(f"{shell} is not installed")
    venv = tmp_path / "plain"
    subprocess.run([str(release39.python), "-m", "venv", "--without-pip", str(venv)], check=True)
    result = sh.run(
        [
            sh.probe("before"),
            sh.source(venv / "bin" / "activate"),
            sh.source(overlay39 / "bin" / "activate"),
            sh.probe("overlay"),
            "deactivate",
            sh.probe("after"),
        ],
        env=release39.env(),
        cwd=tmp_path,
    )
    before = result["before"]
    assert result["overlay"]["PATH"] == f"{overlay39}/bin:{before['PATH']}"
    assert result["overlay"]["VIRTUAL_ENV"] == str(overlay39)
    assert result["overlay"]["basepkg"] == "2.0"
    assert (result["after"]["PATH"], result["after"]["PYTHONPATH"]) == (before["PATH"], before["PYTHONPATH"])
    assert result["after"]["VIRTUAL_ENV"] is None
