"""Real shells, driven the same way: run a script file, set variables, call the state probe.

Each test module (test_bash.py, test_zsh.py, ...) binds one Shell; the scenarios in
``activation_cases.py`` are written once against this interface.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = ROOT / "tests" / "probe.py"


class Shell:
    """How to talk to one shell: run a script, set and unset variables, call the state probe."""

    name: str
    family: str  # "posix", "csh" or "fish"
    activate_script = "activate"
    # Shells that report errors without failing the script set this: anything on stderr fails.
    stderr_is_failure = False

    def __init__(self, name: str):
        self.name = name
        self.exe = shutil.which(name)

    def available(self) -> bool:
        return self.exe is not None

    def quote(self, value: str) -> str:
        return shlex.quote(value)

    def set(self, var: str, value: str | None) -> str:
        if value is None:
            return f"unset {var}"
        return f"{var}={self.quote(value)}; export {var}"

    def source(self, path: Path | str) -> str:
        return f". {self.quote(str(path))}"

    def probe(self, label: str) -> str:
        """A command that prints, as one JSON line tagged ``label``, the environment the shell exports
        and what the ``python3`` it finds on PATH imports."""
        return f"python3 {self.quote(str(PROBE))} {self.quote(label)}"

    def prepend(self, var: str, value: str) -> str:
        """What a setup script run while active does: put ``value`` in front of ``var``."""
        return f"{var}={self.quote(value)}:${var}; export {var}"

    def leftovers(self) -> str:
        """A command that prints the names of all variables and functions, one per line."""
        raise NotImplementedError

    def strict(self) -> str:
        return "set -eu"

    def argv(self, script: Path) -> list[str]:
        return [self.exe, str(script)]

    def exported_path(self, value: str) -> str:
        """PATH as this shell exports it after a script sets it to ``value``: the activation script
        can only be held to what the shell itself keeps."""
        return value

    def syntax_check(self, script: Path) -> list[str] | None:
        """A command that parses ``script`` without running it, or None if the shell has none."""
        return [self.exe, "-n", str(script)]

    def quoting_stress(self) -> list[str]:
        """Lines that make the shell's quoting as hostile as a user's settings can."""
        return []

    def run(self, lines: list[str], env: dict[str, str], cwd: Path | None = None, check: bool = True) -> ShellResult:
        script_dir = Path(os.environ.get("TMPDIR", "/tmp"))
        script = script_dir / f"ovtest-{os.getpid()}-{id(lines)}.{self.name}"
        script.write_text("\n".join(lines) + "\n", encoding="utf-8")
        try:
            proc = subprocess.run(self.argv(script), env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
        finally:
            script.unlink()
        result = ShellResult(proc)
        # Drift warnings are expected wherever a test sets a PYTHONPATH other than the release's.
        errors = [line for line in proc.stderr.splitlines() if not line.startswith("overlay-venv: warning:")]
        if check and (proc.returncode != 0 or (self.stderr_is_failure and errors)):
            raise AssertionError(
                f"{self.name} exited {proc.returncode}\n--- script\n"
                + "\n".join(lines)
                + f"\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
            )
        return result


# The functions of an overlay's bin/_overlay_venv_lib.sh, which each of its entry points removes again.
LIBRARY_FUNCTIONS = (
    "_overlay_venv_drop",
    "_overlay_venv_drop_under",
    "_overlay_venv_drop_own",
    "_overlay_venv_drop_stale",
    "_overlay_venv_unwind",
    "_overlay_venv_tidy",
    "_overlay_venv_rebase",
    "_overlay_venv_warn_drift",
    "_overlay_venv_unload",
)


# What a watched overlay's library prints to stderr each time it is sourced (see watch_library).
LIBRARY_SOURCED = "overlay-venv-test: bin/_overlay_venv_lib.sh sourced"


def watch_library(overlay: Path) -> None:
    """Make ``overlay``'s bin/_overlay_venv_lib.sh say on stderr each time it is sourced, then do
    its work as before: a test can then tell the slow path from the fast one. Only for overlays a
    test made for itself."""
    library = overlay / "bin" / "_overlay_venv_lib.sh"
    real = library.with_name("_overlay_venv_lib.watched.sh")
    library.rename(real)
    library.write_text(f"printf '%s\\n' {shlex.quote(LIBRARY_SOURCED)} >&2\n. {shlex.quote(str(real))}\n", encoding="utf-8")


class PosixShell(Shell):
    family = "posix"

    def leftovers(self) -> str:
        return {
            "bash": "compgen -v; compgen -A function || true",
            "zsh": "print -rl -- ${(k)parameters} ${(k)functions}",
            "ksh": "typeset +; typeset +f",
            # dash cannot list functions: ask for each name we might have left.
            "dash": "set | sed 's/=.*//'; for f in deactivate overlay_venv_rebase " + " ".join(LIBRARY_FUNCTIONS) + "; "
            "do command -v $f || true; done",
        }[self.name]


class CshShell(Shell):
    """tcsh and csh. Each script runs as a file (``-f``: no ~/.cshrc): csh parses a whole line before
    running it, so an alias that ``source activate.csh`` defines is only usable on later lines."""

    family = "csh"
    activate_script = "activate.csh"

    @staticmethod
    def quote(value: str) -> str:
        from overlay_venv.activation import csh_quote

        return csh_quote(value)

    def set(self, var: str, value: str | None) -> str:
        return f"unsetenv {var}" if value is None else f"setenv {var} {self.quote(value)}"

    def source(self, path: Path | str) -> str:
        return f"source {self.quote(str(path))}"

    def prepend(self, var: str, value: str) -> str:
        return f'setenv {var} {self.quote(value + ":")}"${var}:q"'

    def leftovers(self) -> str:
        # Shell variables, aliases and the environment, one name a line (the test may run programs).
        return "set | cut -f1; alias | cut -f1; printenv | cut -d= -f1"

    def strict(self) -> str:
        return ""  # csh has no `set -eu`: argv() passes -e, and an undefined variable is an error anyway

    def argv(self, script: Path) -> list[str]:
        # -e: exit on the first failing command, as `set -e` does for the POSIX shells.
        return [self.exe, "-f", "-e", str(script)]

    def quoting_stress(self) -> list[str]:
        # tcsh's backslash_quote makes a backslash quote even inside single quotes.
        return ["set backslash_quote"] if self.name == "tcsh" else []

    def syntax_check(self, script: Path) -> list[str] | None:
        if self.name == "csh":
            # BSD csh -n still evaluates if-expressions, without substituting variables, so `$?name`
            # reads as a glob that matches nothing: it rejects every csh script that tests a variable.
            return None
        return [self.exe, "-f", "-n", str(script)]

    # csh reports many errors without failing the script.
    stderr_is_failure = True


class FishShell(Shell):
    family = "fish"
    activate_script = "activate.fish"

    @staticmethod
    def quote(value: str) -> str:
        from overlay_venv.activation import fish_quote

        return fish_quote(value)

    def set(self, var: str, value: str | None) -> str:
        if value is None:
            return f"set -e -g {var}"
        # Split at colons the way fish imports a *PATH variable, so the list holds the same entries.
        return f"set -gx --path {var} (string split : -- {self.quote(value)})"

    def source(self, path: Path | str) -> str:
        return f"source {self.quote(str(path))}"

    def prepend(self, var: str, value: str) -> str:
        return f"set -gx --path {var} {self.quote(value)} ${var}"

    def leftovers(self) -> str:
        # --all: functions whose name starts with an underscore are hidden otherwise.
        return "set --names; functions --all --names | string split ,; true"

    def strict(self) -> str:
        return ""  # fish has no `set -e`; run() fails on anything written to stderr instead

    def argv(self, script: Path) -> list[str]:
        return [self.exe, "--no-config", str(script)]

    def exported_path(self, value: str) -> str:
        # fish replaces an empty PATH entry with "." whenever PATH is set, before any activation.
        return ":".join(item or "." for item in value.split(":"))

    def syntax_check(self, script: Path) -> list[str] | None:
        return [self.exe, "--no-config", "--no-execute", str(script)]

    # fish carries on after a failing command.
    stderr_is_failure = True


class ShellResult:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.proc = proc
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.states: dict[str, dict] = {}
        self.lines: list[str] = []
        for line in proc.stdout.splitlines():
            if line.startswith("@@"):
                state = json.loads(line[2:])
                self.states[state["label"]] = state
            else:
                self.lines.append(line)

    def __getitem__(self, label: str) -> dict:
        return self.states[label]
