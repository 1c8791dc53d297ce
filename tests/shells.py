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

    def run(self, lines: list[str], env: dict[str, str], cwd: Path | None = None, check: bool = True) -> ShellResult:
        script_dir = Path(os.environ.get("TMPDIR", "/tmp"))
        script = script_dir / f"ovtest-{os.getpid()}-{id(lines)}.{self.name}"
        script.write_text("\n".join(lines) + "\n", encoding="utf-8")
        try:
            proc = subprocess.run(self.argv(script), env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
        finally:
            script.unlink()
        result = ShellResult(proc)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{self.name} exited {proc.returncode}\n--- script\n"
                + "\n".join(lines)
                + f"\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
            )
        return result


class PosixShell(Shell):
    family = "posix"

    def leftovers(self) -> str:
        return {
            "bash": "compgen -v; compgen -A function || true",
            "zsh": "print -rl -- ${(k)parameters} ${(k)functions}",
            "ksh": "typeset +; typeset +f",
            # dash cannot list functions: ask for each name we might have left.
            "dash": "set | sed 's/=.*//'; for f in deactivate overlay_venv_rebase _overlay_venv_drop _overlay_venv_drop_under; "
            "do command -v $f || true; done",
        }[self.name]


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
