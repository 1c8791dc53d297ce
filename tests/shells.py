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

    @staticmethod
    def quote(value: str) -> str:
        # Always in single quotes: shlex.quote leaves a word such as `=ls` or `a:=ls` bare, and zsh
        # expands a bare `=word` (after a colon too, in an assignment) to the path of a command.
        return "'" + value.replace("'", "'\\''") + "'"

    def prepend(self, var: str, value: str) -> str:
        return f'{var}={self.quote(value + ":")}"${var}"; export {var}'

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
        return f"set -gx --path {var} (string split : -- {self.quote(value)}) ${var}"

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


# --- State dumps with builtins only, for the fuzzer (tests/test_shell_options.py) -----------------------
#
# A dump is a marker field "@LABEL", then one field per variable, "S" + its value or "U" when unset, then
# "F" or "N" (whether `deactivate` is defined), then "L" + name for each of ``names`` that is set or
# defined. Builtins only: one shell process runs hundreds of cases, some with PATH unset or hostile.


def posix_dump(label: str, variables: list[str], names: list[str], extra: tuple[str, ...] = ()) -> list[str]:
    """For sh, dash, bash, zsh and ksh; fields end with NUL. ``extra`` are quoted shell words printed as
    further "S" fields (zsh's psvar, say)."""
    lines = [f"printf '@%s\\0' {shlex.quote(label)}"]
    for var in variables:
        lines.append(f"if [ \"${{{var}+x}}\" = x ]; then printf 'S%s\\0' \"${var}\"; else printf 'U\\0'; fi")
    lines += [f"printf 'S%s\\0' {word}" for word in extra]
    lines.append("if command -v deactivate >/dev/null 2>&1; then printf 'F\\0'; else printf 'N\\0'; fi")
    if names:
        lines += [
            f"for ovt_n in {' '.join(names)}; do",
            '    if eval "[ \\"\\${$ovt_n+x}\\" = x ]"; then printf \'L%s\\0\' "$ovt_n"; fi',
            '    if command -v "$ovt_n" >/dev/null 2>&1; then printf \'L%s\\0\' "$ovt_n"; fi',
            "done",
            "unset ovt_n",
        ]
    return lines


def csh_dump(label: str, variables: list[str], names: list[str], aliases: tuple[str, ...] = ()) -> list[str]:
    """For tcsh and csh: fields are lines (csh has no printf builtin; values hold no newline). Run with
    ``set echo_style = bsd`` in tcsh so that echo writes backslashes as they are. Whether an alias
    exists is asked without a subshell (one costs csh 10 ms): a "Q" + name line, then `alias NAME`,
    which prints the alias text (never starting with a capital) or nothing; read_dumps sorts it out."""
    lines = [f"echo '@{label}'"]
    for var in variables:
        lines += [f"if ( $?{var} ) then", f'echo "S${var}:q"', "else", "echo U", "endif"]
    for alias in ("deactivate", *aliases):
        lines += [f"echo Q{alias}", f"alias {alias}"]
    lines += [f'if ( $?{name} ) echo "L{name}"' for name in names]
    return lines


def fish_dump(label: str, variables: list[str], names: list[str]) -> list[str]:
    """For fish; fields end with NUL. A list is shown joined with colons, as fish exports it; `string
    join` adds a newline at the end of a non-empty result, which the reader strips."""
    lines = [f"printf '@%s\\0' {label}"]
    for var in variables:
        lines.append(f"if set -q {var}; printf 'S%s\\0' (string join : -- ${var} | string collect -N); else; printf 'U\\0'; end")
    lines.append("if functions -q deactivate; printf 'F\\0'; else; printf 'N\\0'; end")
    if names:
        lines += [
            f"for ovt_n in {' '.join(names)}",
            "    set -q $ovt_n; and printf 'L%s\\0' $ovt_n",
            "    functions -q $ovt_n; and printf 'L%s\\0' $ovt_n",
            "end",
            "set -e ovt_n",
        ]
    return lines


def read_dumps(output: bytes, separator: bytes, strip_newline: bool = False) -> dict[str, list[str]]:
    """The fields of each dump in ``output``, by label. ``strip_newline``: fish's "S" fields end in the
    newline `string join` added. csh's alias lines become "F"/"N" for deactivate, "L" + name for others."""
    dumps: dict[str, list[str]] = {}
    fields: list[str] = []
    asked = None  # the alias a csh "Q" line asked about, until its answer (or the next field) comes
    for raw in output.split(separator)[:-1]:
        field = raw.decode("utf-8", "surrogateescape")
        if asked is not None:
            found = field[:1] not in ("@", "S", "U", "Q", "L")
            if asked == "deactivate":
                fields.append("F" if found else "N")
            elif found:
                fields.append("L" + asked)
            asked = None
            if found:
                continue
        if field.startswith("@"):
            fields = dumps.setdefault(field[1:], [])
        elif field.startswith("Q"):
            asked = field[1:]
        else:
            if strip_newline and field.startswith("S") and field.endswith("\n"):
                field = field[:-1]
            fields.append(field)
    if asked == "deactivate":
        fields.append("N")
    return dumps
