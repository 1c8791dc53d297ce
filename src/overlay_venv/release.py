"""Setting up a release from a command (``create --setup``) and telling whether this shell has it.

A release setup is a shell command: ``source /cvmfs/.../setup.sh``, ``asetup AnalysisBase,25.2.15``
after ATLAS's setup script, ``lsetup 'views LCG_105 ...'``. We run it in a non-interactive bash and
take the environment it leaves; the overlay is then built on the interpreter and PYTHONPATH of that
environment.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from .errors import OverlayError
from .paths import remove_under

CONTAINER_SETUP = "/release_setup.sh"
# Variables bash itself sets; they say nothing about the release.
_SHELL_OWN = {"_", "SHLVL", "PWD", "OLDPWD", "BASH_EXECUTION_STRING"}
_MARK = b"\0overlay-venv-environment\0"


def normalize_setup(command: str) -> str:
    """The command as activation scripts will run it under any POSIX shell.

    A path to an existing file is sourced; a leading ``source`` becomes ``.``, because dash, which
    runs most batch job scripts, has no ``source``.
    """
    command = command.strip()
    if not command:
        raise OverlayError("the --setup command is empty")
    if "\n" not in command and os.path.isfile(command):
        return f". {shlex.quote(os.path.abspath(command))}"
    if command.startswith("source "):
        return ". " + command[len("source ") :].lstrip()
    return command


def run_setup(command: str, environ: dict[str, str]) -> dict[str, str]:
    """Run ``command`` in bash and return the environment it leaves.

    The release's banner goes to our stderr; aliases it defines work on the following lines, as in an
    interactive shell. Aliases defined only by a login shell's profile (setupATLAS) do not exist here.
    """
    script = "\n".join(
        [
            "exec 3>&1 1>&2",  # the release's own output goes to stderr; fd 3 carries the environment
            "shopt -s expand_aliases",
            command,
            "__overlay_venv_status=$?",
            'if [ "$__overlay_venv_status" -ne 0 ]; then exit "$__overlay_venv_status"; fi',
            r"printf '\0overlay-venv-environment\0' >&3",
            "env -0 >&3",
        ]
    )
    import subprocess  # only with --setup: a warm create starts no program

    proc = subprocess.run(["bash", "--noprofile", "--norc", "-c", script], env=environ, capture_output=True)
    stderr = proc.stderr.decode(errors="replace")
    if proc.returncode != 0 or _MARK not in proc.stdout:
        # One line: the error, ending with the setup's own last word on it.
        raise OverlayError(explain_failure(command, proc.returncode, stderr))
    if stderr:
        os.write(2, proc.stderr)  # the release's banner, as the user would see it in a shell
    raw = proc.stdout.split(_MARK, 1)[1]
    env = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep and key.decode() not in _SHELL_OWN:
            env[os.fsdecode(key)] = os.fsdecode(value)
    return env


def explain_failure(command: str, status: int, stderr: str) -> str:
    first = command.split()[0] if command.split() else command
    if "No such file or directory" in stderr:
        return f"the setup command failed: {stderr.strip().splitlines()[-1]}"
    if status == 127 or "command not found" in stderr:
        return (
            f"the setup command failed: {first!r} was not found. Aliases such as setupATLAS, asetup and lsetup "
            "exist only in interactive login shells; use the sourceable form, e.g. "
            "--setup 'source \"$ATLAS_LOCAL_ROOT_BASE/user/atlasLocalSetup.sh\"' followed on a new line by asetup/lsetup"
        )
    last = stderr.strip().splitlines()[-1] if stderr.strip() else "no message"
    return f"the setup command {command!r} failed with exit status {status}: {last}"


def container_hint() -> str | None:
    """A note for users inside an ATLAS container who did not say how to set up the release."""
    if Path(CONTAINER_SETUP).is_file():
        return (
            f"note: {CONTAINER_SETUP} exists (an ATLAS release container); to build on that release, "
            f"pass --setup {CONTAINER_SETUP} (and --keep-setup to have activation run it)"
        )
    return None


def base_pythonpath(environ: dict[str, str]) -> str | None:
    """PYTHONPATH as the release set it: entries of an environment active in this shell removed."""
    value = environ.get("PYTHONPATH")
    active = environ.get("VIRTUAL_ENV")
    if value is not None and active:
        value = remove_under(value, active)
    return value


def drift(overlay: Path, record, environ: dict[str, str]) -> list[str]:
    """How this shell's release differs from the one ``overlay`` was built on, in words; [] if it does not.

    The same comparison the activation scripts make without starting a program: the recorded
    interpreter still exists, and PYTHONPATH less the overlay's own entries gives Python the entries
    the recorded one gives (``same_for_python``: the release set up twice, which repeats its entries,
    is the same release).
    """
    from .paths import remove_entries, same_for_python

    problems = []
    if not os.path.exists(record.base.interpreter):
        problems.append(f"the interpreter {record.base.interpreter} it was built on is gone")
    elif not os.path.exists(overlay / record.bin_dir / "python"):
        problems.append(f"{overlay / record.bin_dir / 'python'} no longer leads to an interpreter")
    current = base_pythonpath(environ)
    if current is not None:
        # A stacked overlay's activation puts its lower overlays' entries there too.
        lower_sites = [site for lower in record.lowers for site in lower.sites]
        current = remove_entries(current, [str(overlay / rel) for rel in record.site_packages] + lower_sites)
    if not same_for_python(current, record.base.pythonpath):
        problems.append(f"PYTHONPATH is {current or '(unset)'!s}, built with {record.base.pythonpath or '(unset)'!s}")
    if record.lowers:
        from .stack import stamp_drift

        problems += stamp_drift(record.lowers)
    return problems


def rebuild_hint(overlay: Path) -> str:
    # rebuild re-creates the overlay on the release of this shell and installs what was asked for.
    return f"rebuild with: overlay-venv rebuild {shlex.quote(str(overlay))}"
