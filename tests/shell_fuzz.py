"""The activation fuzzer of tests/test_shell_options.py: generated cases, the lines that run them in
one shell, and the model (overlay_venv.paths) each step is held to."""

from __future__ import annotations

import os
import random
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from shells import CshShell, FishShell, PosixShell, csh_dump, fish_dump, posix_dump, read_dumps

from overlay_venv.activation import bash_prompt, csh_prompt, tcsh_prompt
from overlay_venv.paths import deactivate_value, prepend_entries, rebase_value, remove_entries, remove_under, same_for_python
from overlay_venv.release import rebuild_hint

CASES = 640
SEED = int(os.environ.get("OVERLAY_VENV_FUZZ_SEED", "20261202"))

# (shell, option set id, lines run first, extra shell arguments)
# What values are made of: every character some shell expands somewhere, and words that mean something.
PIECES = [*"=~*?[]{}$\\'\" \t!%#`()&;|<>^,-@+:", "\x01", "\x7f", "é", "ünï", "日本", "a", "b", "A", "/", "/usr/bin"]
PIECES += ["$HOME", "${PATH}", "$(echo X)", "`echo X`", "~root", "=ls", "=nosuch", "[ab]", "{a,b}", "*.py", "%9v", "\\n", "-n"]
PIECES.remove(":")  # the separator is placed by the list generator


@dataclass
class Case:
    pythonpath: str | None
    path: str | None
    pythonhome: str | None
    prompt: str | None  # PS1, or csh's prompt
    virtual_env: str | None  # an inherited one: its entries are dropped at activation
    added_pythonpath: str | None  # prepended while active, as another setup script would
    added_path: str | None
    rebase: bool
    overlay: int  # which of the three overlays


def generate(rng: random.Random, own: list[list[str]], family: str) -> list[Case]:
    # csh cannot quote a newline; other shells get newlines and carriage returns too.
    pieces = PIECES if family == "csh" else [*PIECES, "\n", "\r"]

    def text(most: int = 4) -> str:
        return "".join(rng.choice(pieces) for _ in range(rng.randint(1, most)))

    def entry(overlay: int, venv: str | None) -> str:
        roll = rng.random()
        if roll < 0.12:
            return ""
        if roll < 0.2:
            return rng.choice(own[overlay])  # a copy of our own entry, which activation must not double
        if roll < 0.22:
            return rng.choice(own[overlay]).upper()  # not ours, though bash's nocasematch would say so
        if roll < 0.28 and venv:
            return rng.choice([venv, f"{venv}/bin", f"{venv}{text(2)}"])
        return ("/" if rng.random() < 0.5 else "") + text()

    def search_list(overlay: int, venv: str | None, unset_ok: bool = True) -> str | None:
        roll = rng.random()
        if roll < 0.12 and unset_ok:
            return None
        if roll < 0.2:
            return ""
        return ":".join(entry(overlay, venv) for _ in range(rng.randint(1, 5)))

    cases = []
    for _ in range(CASES):
        overlay = rng.randrange(3)
        # As activation scripts set it: absolute, no trailing slash.
        venv = None if rng.random() < 0.85 else ("/v" + text(2)).rstrip("/")
        cases.append(
            Case(
                pythonpath=search_list(overlay, venv),
                # csh and fish keep PATH in step with a list of their own: it is always set there.
                path=search_list(overlay, venv, unset_ok=family == "posix"),
                pythonhome=None if rng.random() < 0.6 else rng.choice(["", text()]),
                prompt=None if family == "fish" or rng.random() < 0.2 else rng.choice(["", text(), "%# ", "\\u@\\h$ "]),
                virtual_env=venv,
                added_pythonpath=None if rng.random() < 0.7 else search_list(overlay, None, unset_ok=False),
                added_path=None if rng.random() < 0.8 else search_list(overlay, None, unset_ok=False),
                rebase=rng.random() < 0.15,
                overlay=overlay,
            )
        )
    return cases


# --- the overlays -----------------------------------------------------------------------------------------

# A path with `=`, `~`, glob and brace characters, a blank and a tab, under a plain prompt name that
# shlex.quote leaves bare and zsh would expand (`=nosuch` is "command not found").
GLOB_DIR = "fz =~*?[ab]{c,d}\t~x=y"
PLAIN_PROMPT = "=nosuch:=ls"
# A name each shell's prompt must treat apart: `$`, backquotes, `!`, `%`, a backslash.
ODD_PROMPT_NAME = "odd $(echo X) `echo Y` !1 %n \\w ~ ünï"
# A path shlex.quote leaves bare, which zsh's MAGIC_EQUAL_SUBST would expand after its `=`.
BARE_NAME = "bare==nosuch"


def own_entries(overlay: Path) -> tuple[list[str], list[str]]:
    site = str(next((overlay / "lib").glob("python3.*")) / "site-packages")
    return [site], [str(overlay / "bin")]


def our_names(overlay: Path, scripts: tuple[str, ...]) -> list[str]:
    """Every variable or function name of ours the scripts mention: none may be set after deactivate."""
    text = "".join((overlay / "bin" / script).read_text(encoding="utf-8") for script in scripts)
    names = set(re.findall(r"\b_?(?:overlay_venv|OVERLAY_VENV)_[A-Za-z0-9_]*[A-Za-z0-9]", text))
    return sorted(names | {"deactivate", "overlay_venv_rebase"})


# --- driving one shell --------------------------------------------------------------------------------------

VARIABLES = ["PATH", "PYTHONPATH", "PYTHONHOME", "PS1", "VIRTUAL_ENV", "VIRTUAL_ENV_PROMPT"]
LISTING = "ovt-listing-of-all-names"


class Driver:
    """The lines of one case in one shell, and how to read what they printed."""

    def __init__(self, shell, name: str, overlays: list[Path], options: tuple[str, ...] = ()):
        self.shell = shell
        self.nocasematch = "shopt -s nocasematch" in options
        self.name = name
        self.family = shell.family
        self.prompt_var = "prompt" if self.family == "csh" else "PS1"
        self.variables = [self.prompt_var if var == "PS1" else var for var in VARIABLES]
        scripts = {"posix": ("activate", "_overlay_venv_lib.sh"), "csh": ("activate.csh",), "fish": ("activate.fish",)}
        names = set()
        for overlay in overlays:
            names.update(our_names(overlay, scripts[self.family]))
        self.names = sorted(names)

    def assign(self, var: str, value: str | None) -> str:
        if var == "PS1" and self.family == "posix":  # a shell variable, not exported
            return "unset PS1" if value is None else f"PS1={self.shell.quote(value)}"
        if var == "prompt":
            return "unset prompt" if value is None else f"set prompt = {self.shell.quote(value)}"
        return self.shell.set(var, value)

    def dump(self, label: str, leftovers: bool = False) -> list[str]:
        names = [name for name in self.names if name != "deactivate"] if leftovers else []
        if self.family == "posix":
            extra = ('"${#psvar[@]}:${psvar[*]}"',) if self.name == "zsh" else ()
            return posix_dump(label, self.variables, names, extra)
        if self.family == "csh":
            return csh_dump(label, self.variables, names, aliases=("overlay_venv_rebase",) if leftovers else ())
        return fish_dump(label, self.variables, names)

    def script(self, options: list[str], cases: list[Case], overlays: list[Path]) -> list[str]:
        lines = list(self.shell.quoting_stress()) + list(options)
        if self.name == "tcsh":
            lines.append("set echo_style = bsd")
        for i, case in enumerate(cases):
            activate = overlays[case.overlay] / "bin" / self.shell.activate_script
            for var, value in (
                ("PATH", case.path),
                ("PYTHONPATH", case.pythonpath),
                ("PYTHONHOME", case.pythonhome),
                (self.prompt_var, case.prompt),
                ("VIRTUAL_ENV", case.virtual_env),
            ):
                lines.append(self.assign(var, value))
            lines += [*self.dump(f"{i}b"), self.shell.source(activate), *self.dump(f"{i}a")]
            if case.added_pythonpath is not None:
                lines.append(self.shell.prepend("PYTHONPATH", case.added_pythonpath))
            if case.added_path is not None:
                lines.append(self.shell.prepend("PATH", case.added_path))
            if case.rebase:
                lines += ["overlay_venv_rebase", *self.dump(f"{i}r")]
            lines += ["deactivate", *self.dump(f"{i}d", leftovers=True)]
        # At the end, every name the shell knows (tests/shells.py's listing, which may run programs).
        listing = self.shell.leftovers()
        if self.name == "zsh":  # its listing reads arrays: under zsh's own options, not the ones tested
            listing = f"emulate zsh -c {self.shell.quote(listing)}"
        return [*lines, self.shell.set("PATH", "/usr/bin:/bin"), f"echo {LISTING}", listing]

    def run(self, lines: list[str], extra_args: list[str], env: dict, tmp_path: Path) -> subprocess.CompletedProcess:
        script = tmp_path / f"fuzz.{self.name}"
        script.write_text("\n".join(lines) + "\n", encoding="utf-8")
        argv = self.shell.argv(script)
        return subprocess.run([argv[0], *extra_args, *argv[1:]], env=env, cwd=tmp_path, capture_output=True, timeout=600)

    def leftovers(self, output: bytes) -> list[str]:
        """Names of ours in the listing that ends a script(): none may be left."""
        names = output.partition(f"{LISTING}\n".encode())[2].decode("utf-8", "surrogateescape").split()
        if "PATH" not in names:
            return ["(the listing of names did not run)"]
        return [n for n in names if "overlay_venv" in n.lower() or n in ("deactivate", "VIRTUAL_ENV", "VIRTUAL_ENV_PROMPT")]

    def read(self, output: bytes) -> dict[str, list[str]]:
        output = output.partition(f"{LISTING}\n".encode())[0]
        if self.family == "csh":
            return read_dumps(output, b"\n")
        return read_dumps(output, b"\0", strip_newline=self.family == "fish")


# --- the model ----------------------------------------------------------------------------------------------


def state(fields: list[str], variables: list[str]) -> dict:
    values = {var: (None if field == "U" else field[1:]) for var, field in zip(variables, fields)}
    rest = fields[len(variables) :]
    extra = [field[1:] for field in rest if field.startswith("S")]
    return {"vars": values, "extra": extra, "deactivate": "F" in rest, "left": sorted(f[1:] for f in rest if f.startswith("L"))}


def prompt_name(overlay_index: int, overlay: Path) -> str:
    return PLAIN_PROMPT if overlay_index == 0 else overlay.name  # BARE_NAME is plain too


def expected_prompt(
    driver: Driver, overlay_index: int, overlay: Path, before: str | None, case: Case, options: list[str]
) -> str | None:
    """What activation makes of the prompt (None: unset)."""
    if driver.family == "fish":
        return before
    if driver.family == "csh":
        if before is None:
            return None
        name = prompt_name(overlay_index, overlay)
        return "(" + (tcsh_prompt(name) if driver.name == "tcsh" else csh_prompt(name)) + ") " + before
    if overlay_index != 1:  # a plain name
        return f"({prompt_name(overlay_index, overlay)}) " + (before or "")
    if driver.name == "bash":
        return "(" + bash_prompt(overlay.name) + ") " + (before or "")
    if driver.name == "zsh" and "unsetopt PROMPT_PERCENT" not in options:
        return "(%9v) " + (before or "")
    return before  # ksh and dash, and zsh without PROMPT_PERCENT, leave the prompt alone


def saved_value(driver: Driver, case: Case, var: str, value: str | None, overlay: Path) -> str | None:
    """What activation saves of ``var`` (and puts after our entries): ``value`` less the entries of an
    inherited environment and copies of our own. Two exceptions the scripts document: bin/activate
    looks for copies of ours only when PYTHONPATH holds one or VIRTUAL_ENV is set (a duplicate bin/ on
    PATH is harmless and deactivate takes it away again); csh splits lists at a marker byte, so a list
    holding that byte is kept whole (README: Known behaviours)."""
    if value is None or (driver.family == "csh" and "\x01" in value):
        return value
    own_pythonpath, own_path = own_entries(overlay)
    if case.virtual_env:
        value = remove_under(value, case.virtual_env)
    if driver.family == "posix" and var == "PATH":
        pythonpath = f":{case.pythonpath}:" if case.pythonpath is not None else ""
        if driver.nocasematch:  # bash's nocasematch: the `case` that decides this ignores letter case
            pythonpath, own_pythonpath = pythonpath.lower(), [entry.lower() for entry in own_pythonpath]
        if not case.virtual_env and not any(f":{entry}:" in pythonpath for entry in own_pythonpath):
            return value
        own_pythonpath = own_entries(overlay)[0]
    return remove_entries(value, own_pythonpath if var == "PYTHONPATH" else own_path)


def check_case(driver: Driver, i: int, case: Case, dumps: dict, overlays: list[Path], options: list[str]) -> list[str]:
    """The differences between case ``i`` as the shell ran it and the model; [] when none."""
    variables = driver.variables
    overlay = overlays[case.overlay]
    own_pp, own_path = own_entries(overlay)
    if f"{i}d" not in dumps:
        return ["the shell stopped before the end of this case"]
    before, active, after = (state(dumps[f"{i}{stage}"], variables) for stage in "bad")
    problems = []

    def differ(what: str, got, want) -> None:
        if got != want:
            problems.append(f"{what}: got {got!r}, want {want!r}")

    # The harness itself set what the case says (fish exports an empty PATH entry as ".").
    b = before["vars"]
    differ("PATH as set", b["PATH"], None if case.path is None else driver.shell.exported_path(case.path))
    differ("PYTHONPATH as set", b["PYTHONPATH"], case.pythonpath)

    model = {}
    for var, entries in (("PYTHONPATH", own_pp), ("PATH", own_path)):
        saved = saved_value(driver, case, var, b[var], overlay)
        new = prepend_entries(entries, saved)
        model[var] = (saved, new, entries)
        differ(f"active {var}", active["vars"][var], new)
    a = active["vars"]
    differ("active PYTHONHOME", a["PYTHONHOME"], None)
    differ("active VIRTUAL_ENV", a["VIRTUAL_ENV"], str(overlay))
    differ("active VIRTUAL_ENV_PROMPT", a["VIRTUAL_ENV_PROMPT"], prompt_name(case.overlay, overlay))
    differ(
        "active prompt", a[driver.prompt_var], expected_prompt(driver, case.overlay, overlay, b[driver.prompt_var], case, options)
    )
    differ("deactivate defined while active", active["deactivate"], True)

    current = {"PYTHONPATH": a["PYTHONPATH"], "PATH": a["PATH"]}
    for var, added in (("PYTHONPATH", case.added_pythonpath), ("PATH", case.added_path)):
        if added is not None and current[var] is not None:
            current[var] = f"{added}:{current[var]}"
            if var == "PATH":
                current[var] = driver.shell.exported_path(current[var])  # fish: an empty entry becomes "."
    if case.rebase:
        rebased = state(dumps[f"{i}r"], variables)["vars"]
        for var in ("PYTHONPATH", "PATH"):
            entries = model[var][2]
            want = rebase_value(current[var], entries)
            if driver.family == "csh" and "\x01" in current[var]:
                want = ":".join(entries) + (f":{current[var]}" if current[var] else "")
            differ(f"rebased {var}", rebased[var], want)
            current[var] = rebased[var]

    after_vars = after["vars"]
    for var in ("PYTHONPATH", "PATH"):
        saved, new, entries = model[var]
        if current[var] == new:
            want = saved
        elif driver.family == "csh" and "\x01" in current[var]:
            want = current[var]  # kept whole, our entries included
        else:
            want = deactivate_value(current[var], saved, new, entries)
        differ(f"PATH/PYTHONPATH after deactivate: {var}", after_vars[var], want)
    differ("PYTHONHOME after deactivate", after_vars["PYTHONHOME"], b["PYTHONHOME"])
    differ("prompt after deactivate", after_vars[driver.prompt_var], b[driver.prompt_var])
    differ("VIRTUAL_ENV after deactivate", after_vars["VIRTUAL_ENV"], None)
    differ("VIRTUAL_ENV_PROMPT after deactivate", after_vars["VIRTUAL_ENV_PROMPT"], None)
    differ("psvar after deactivate", after["extra"], before["extra"])
    differ("deactivate defined after deactivate", after["deactivate"], False)
    differ("names left behind", after["left"], [])
    return problems


def expected_warnings(driver: Driver, cases: list[Case], overlays: list[Path], base_pythonpath: str) -> str:
    """The drift warnings, in order: one for each case whose PYTHONPATH (less our own and the inherited
    environment's entries) gives Python other entries than the release's."""
    text = ""
    for case in cases:
        overlay = overlays[case.overlay]
        value = saved_value(driver, case, "PYTHONPATH", case.pythonpath, overlay)
        different = not same_for_python(value, base_pythonpath) or (driver.family == "csh" and "\x01" in (value or ""))
        if different:
            text += (
                f"overlay-venv: warning: PYTHONPATH is {value or '(unset)'}, but this overlay was built with "
                f"{base_pythonpath}; set up that release, or {rebuild_hint(overlay)}\n"
            )
    return text


SHELL_CLASSES = {"posix": PosixShell, "csh": CshShell, "fish": FishShell}
FAMILY = {"zsh": "posix", "bash": "posix", "ksh": "posix", "dash": "posix", "tcsh": "csh", "csh": "csh", "fish": "fish"}
