"""POSIX activation details beyond the shared scenarios: shellcheck, prompts, inherited environments,
and living next to plain venvs."""

from __future__ import annotations

import subprocess

import pytest
from capabilities import require_shell, require_shellcheck
from conftest import ODD_NAME
from shells import LIBRARY_FUNCTIONS, PosixShell

POSIX_SHELLS = ["dash", "bash", "zsh", "ksh"]


@pytest.mark.parametrize("dialect", ["sh", "bash", "ksh"])
def test_shellcheck_passes(overlay39, odd_overlay, dialect):
    require_shellcheck()
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
    require_shell(PosixShell("zsh"))
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
    sh = require_shell(PosixShell(shell))
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


def shell_or_skip(name: str) -> PosixShell:
    return require_shell(PosixShell(name))


@pytest.mark.parametrize("shell", POSIX_SHELLS)
@pytest.mark.parametrize("ps1", [None, "", "$ "], ids=["unset", "empty", "set"])
def test_prompt_round_trip_is_exact(shell, ps1, release39, overlay39, odd_overlay, tmp_path):
    """PS1 comes back as it was, unset included, for a plain name and for one each shell treats apart."""
    sh = shell_or_skip(shell)
    show = 'printf "[%s]\\n" "${PS1+set}:${PS1-}"'
    for overlay in (overlay39, odd_overlay):
        setup = "unset PS1" if ps1 is None else f"PS1={sh.quote(ps1)}"
        result = sh.run([setup, show, sh.source(overlay / "bin" / "activate"), show, "deactivate", show], env=release39.env())
        before, active, after = result.lines
        assert after == before, (overlay, result.lines)
        if overlay == overlay39:
            assert active == f"[set:(myenv) {ps1 or ''}]"


@pytest.mark.parametrize("shell", POSIX_SHELLS)
@pytest.mark.parametrize("home", [None, "/opt/elsewhere"], ids=["unset", "set"])
def test_pythonhome_is_unset_while_active_and_restored(shell, home, release39, overlay39):
    sh = shell_or_skip(shell)
    show = 'printf "[%s]\\n" "${PYTHONHOME+set}:${PYTHONHOME-}"'
    env = release39.env()
    env.pop("PYTHONHOME", None)
    if home is not None:
        env["PYTHONHOME"] = home
    result = sh.run([show, sh.source(overlay39 / "bin" / "activate"), show, "deactivate", show], env=env)
    before, active, after = result.lines
    assert active == "[:]"
    assert after == before == ("[:]" if home is None else f"[set:{home}]")


@pytest.mark.parametrize("shell", POSIX_SHELLS)
def test_library_is_unloaded_after_each_use(shell, release39, overlay39, second_overlay39, tmp_path):
    """bin/_overlay_venv_lib.sh is sourced for an inherited environment, drift, a rebase and an unwind;
    each time its functions are gone again, while active and after."""
    sh = shell_or_skip(shell)
    functions = " ".join(LIBRARY_FUNCTIONS)
    list_functions = f"for f in {functions}; do command -v $f || true; done; echo ."
    env = release39.env(VIRTUAL_ENV=str(second_overlay39))  # inherited: VIRTUAL_ENV without `deactivate`
    env["PYTHONPATH"] = f"{second_overlay39}/lib/python3.9/site-packages:/opt/drifted:{env['PYTHONPATH']}"
    result = sh.run(
        [
            sh.source(overlay39 / "bin" / "activate"),
            list_functions,
            sh.prepend("PATH", "/opt/rucio/bin"),
            "overlay_venv_rebase",
            list_functions,
            "deactivate",
            sh.leftovers(),
        ],
        env=env,
        cwd=tmp_path,
    )
    assert "overlay-venv: warning: PYTHONPATH is" in result.stderr
    assert result.lines[:2] == [".", "."], result.lines
    left = [name for name in result.lines[2:] if "overlay_venv" in name.lower() or name.strip() == "deactivate"]
    assert left == []


@pytest.mark.parametrize("shell", POSIX_SHELLS)
@pytest.mark.parametrize(
    "change, pythonpath_before, expected_pythonpath, expected_path_head",
    [
        # Only PATH changed: PYTHONPATH (unset before) comes back unset, PATH keeps the addition.
        ("PATH=/opt/tool/bin:$PATH", None, None, "/opt/tool/bin"),
        # Only PYTHONPATH changed, unset before: the addition alone is left, PATH is exact.
        ("PYTHONPATH=/opt/tool/lib:$PYTHONPATH", None, "/opt/tool/lib", None),
        # PYTHONPATH emptied on purpose while active: it stays unset, not back to the release's.
        ("unset PYTHONPATH", "/release/lib", None, None),
    ],
    ids=["path-only", "pythonpath-only", "pythonpath-unset"],
)
def test_each_variable_is_restored_on_its_own(
    shell, change, pythonpath_before, expected_pythonpath, expected_path_head, release39, overlay39
):
    sh = shell_or_skip(shell)
    show = 'printf "[%s|%s]\\n" "${PYTHONPATH+set}:${PYTHONPATH-}" "$PATH"'
    setup = "unset PYTHONPATH" if pythonpath_before is None else f"PYTHONPATH={pythonpath_before}; export PYTHONPATH"
    result = sh.run([setup, show, sh.source(overlay39 / "bin" / "activate"), change, "deactivate", show], env=release39.env())
    before, after = (line.strip("[]").split("|") for line in result.lines)
    assert after[0] == ("set:" + expected_pythonpath if expected_pythonpath else ":")
    assert after[1] == (f"{expected_path_head}:{before[1]}" if expected_path_head else before[1])


@pytest.mark.parametrize("shell", POSIX_SHELLS)
def test_library_serves_the_deactivate_of_an_older_version(shell, release39, overlay39):
    """A shell still holding the `deactivate` of an older overlay-venv when the overlay is rebuilt:
    it calls the library's unwind with no argument, and its state is bare values, with the variable
    left unset for what was unset. The library must still restore both variables."""
    sh = shell_or_skip(shell)
    site = next((overlay39 / "lib").glob("python3.*")) / "site-packages"
    show = 'printf "[%s|%s]\\n" "${PYTHONPATH+set}:${PYTHONPATH-}" "$PATH"'
    lines = [
        "unset PYTHONPATH",
        show,
        # What the older activate left: PATH saved bare, PYTHONPATH's saved value unset (was unset).
        "_OVERLAY_VENV_OLD_PATH=$PATH",
        f"PYTHONPATH={sh.quote(str(site))}; export PYTHONPATH",
        f"PATH={sh.quote(str(overlay39 / 'bin'))}:$PATH",
        "_OVERLAY_VENV_NEW_PYTHONPATH=$PYTHONPATH; _OVERLAY_VENV_NEW_PATH=$PATH",
        "PATH=/opt/rucio/bin:$PATH",  # changed while active, so the older deactivate asks the library
        sh.source(overlay39 / "bin" / "_overlay_venv_lib.sh"),
        "_overlay_venv_unwind",
        show,
    ]
    before, after = (line.strip("[]").split("|") for line in sh.run(lines, env=release39.env()).lines)
    assert after == [":", f"/opt/rucio/bin:{before[1]}"]


@pytest.mark.parametrize("shell", POSIX_SHELLS)
def test_commands_found_before_activation_are_looked_up_again(shell, release39, overlay39):
    """No `hash -r` in the scripts: assigning PATH must be what makes the shell forget the release's
    python3 it had found (and remembered) before activation, and the overlay's after deactivate."""
    sh = shell_or_skip(shell)
    where = "python3 -c 'import sys; print(sys.prefix)'"
    result = sh.run([where, sh.source(overlay39 / "bin" / "activate"), where, "deactivate", where], env=release39.env())
    before, active, after = result.lines
    assert active == str(overlay39)
    assert before == after != str(overlay39)
