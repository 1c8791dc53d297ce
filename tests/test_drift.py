"""Drift is judged on what Python will see: the model (paths.python_entries), the model against real
CPython, and every shell's activation script against the model on generated values."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from capabilities import require_python, require_shell
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shells import LIBRARY_SOURCED, CshShell, FishShell, PosixShell, watch_library

from overlay_venv.activation import ActivationValues, write_activation_scripts
from overlay_venv.paths import python_entries, same_for_python

# --- the model ---------------------------------------------------------------------------------------


def test_python_entries_keep_the_first_of_each():
    assert python_entries("a:b:a:b") == python_entries("a:a:b") == python_entries("a:b:b:a") == ("a", "b")
    assert python_entries("b:a:b") == ("b", "a")  # a different order is a different release
    assert python_entries("a:b:") == python_entries("a:b::b:") == ("a", "b", "")  # "" is the current directory
    assert python_entries("a::b:") == ("a", "", "b")
    assert python_entries(":") == ("",)
    assert python_entries("") == python_entries(None) == ()  # Python ignores an empty PYTHONPATH
    assert python_entries("a/:a") == ("a/", "a")  # exact strings: nothing is normalised


# Any PYTHONPATH value, unset included.
entry = st.text(st.characters(blacklist_characters=":\x00", blacklist_categories=("Cs",)), max_size=8)
maybe_list = st.none() | st.lists(entry, min_size=1, max_size=6).map(":".join)


@given(maybe_list, maybe_list)
def test_same_for_python_is_equality_of_first_occurrences(value, other):
    entries = python_entries(value)
    assert len(set(entries)) == len(entries)
    if entries != ("",):  # joined, a lone empty entry would read as an empty PYTHONPATH
        assert python_entries(":".join(entries)) == entries
    if value:
        assert same_for_python(value, f"{value}:{value}")  # the release set up twice
    assert same_for_python(value, other) == (entries == python_entries(other))


# Entries a release setup leaves: absolute, relative, a trailing slash, glob characters, empty.
release_entry = st.sampled_from(["/r/a", "/r/b", "/r/a/", "rel", "", "/r/[c]*", "/r/with space"])


@pytest.mark.parametrize("minor", ["3.9", "3.13"])
def test_same_entries_give_cpython_the_same_path(minor, tmp_path):
    """The model against the interpreter: two values the model calls the same put the same
    directories, in the same order, where imports look, with `site` (which drops repeats itself) and
    without (-S, where the repeats stay but only the first copy is ever reached)."""
    python = require_python(minor)

    def import_path(value: str, *flags: str) -> list[str]:
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": value}
        cmd = [str(python), "-s", *flags, "-c", "import sys, json; print(json.dumps(sys.path[1:]))"]
        out = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, check=True).stdout
        return list(dict.fromkeys(json.loads(out)))  # an import takes the first copy

    @settings(max_examples=20, deadline=None)
    @given(st.lists(release_entry, min_size=1, max_size=4), st.data())
    def check(entries, data):
        value = ":".join(entries)
        repeats = data.draw(st.lists(st.sampled_from(entries), max_size=3))
        twice = ":".join(entries + repeats) if data.draw(st.booleans()) else ":".join(repeats + entries)
        if same_for_python(value, twice):
            assert import_path(value) == import_path(twice)
            assert import_path(value, "-S") == import_path(twice, "-S")

    check()
    # A trailing empty entry is one directory more, and the model says so.
    assert import_path("/r/a:") != import_path("/r/a") and not same_for_python("/r/a:", "/r/a")


# --- every shell against the model ----------------------------------------------------------------

SHELLS = {
    "dash": PosixShell,
    "bash": PosixShell,
    "zsh": PosixShell,
    "ksh": PosixShell,
    "tcsh": CshShell,
    "csh": CshShell,
    "fish": FishShell,
}


def render_overlay(where: Path, recorded: str | None) -> Path:
    """The activation scripts of an overlay built on a release whose PYTHONPATH was ``recorded``,
    rendered as create renders them (no interpreter needed beyond one that exists), library watched."""
    overlay = where / "ov"
    site = overlay / "lib" / "python3.9" / "site-packages"
    site.mkdir(parents=True)
    values = ActivationValues(
        overlay_dir=str(overlay),
        bin_dir=str(overlay / "bin"),
        site_packages=[str(site)],
        site_packages_rel=["lib/python3.9/site-packages"],
        prompt="ov",
        base_interpreter=sys.executable,
        base_pythonpath=recorded or "",
        rebuild_hint="rebuild with: overlay-venv rebuild ov",
    )
    (overlay / "bin").mkdir()
    write_activation_scripts(values, overlay / "bin")
    watch_library(overlay)
    return overlay


def exported_pythonpath(stdout: str) -> str | None:
    for item in stdout.split("\0"):
        if item.startswith("PYTHONPATH="):
            return item[len("PYTHONPATH=") :]
    return None


@st.composite
def recorded_and_current(draw):
    """A recorded PYTHONPATH and this shell's: often the recorded entries repeated (the release set up
    twice, in any arrangement), sometimes with an entry more or in another order."""
    recorded = draw(st.none() | st.lists(release_entry, min_size=1, max_size=3).map(":".join))
    pool = list(python_entries(recorded)) or [draw(release_entry)]
    current = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=6))
    if draw(st.booleans()):
        current.insert(draw(st.integers(0, len(current))), draw(release_entry))
    value = ":".join(current)
    if draw(st.integers(0, 9)) == 0:
        value = draw(st.sampled_from([None, ""]))  # the release not set up: unset, or set empty
    return recorded, value


@pytest.mark.parametrize("shell_name", list(SHELLS))
def test_each_shell_warns_exactly_when_the_model_says_drift(shell_name, tmp_path_factory):
    """Activation warns (and, in the POSIX shells, sources its library) exactly when PYTHONPATH gives
    Python other entries than the recorded one; deactivate gives the value back byte for byte."""
    shell = require_shell(SHELLS[shell_name](shell_name))
    overlays: dict[str | None, Path] = {}

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(recorded_and_current())
    def check(case):
        recorded, current = case
        if recorded not in overlays:
            overlays[recorded] = render_overlay(tmp_path_factory.mktemp("drift"), recorded)
        overlay = overlays[recorded]
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/nonexistent"}
        if current is not None:
            env["PYTHONPATH"] = current
        lines = [shell.source(overlay / "bin" / shell.activate_script), "deactivate", "env -0"]
        result = shell.run(lines, env=env, cwd=overlay)
        drifted = not same_for_python(current, recorded)
        warnings = [line for line in result.stderr.splitlines() if line.startswith("overlay-venv: warning: PYTHONPATH is")]
        assert len(warnings) == (1 if drifted else 0), (recorded, current, result.stderr)
        if shell.family == "posix":
            # Nothing else here needs the library: no inherited environment, none of our entries.
            assert result.stderr.count(LIBRARY_SOURCED) == (1 if drifted else 0), (recorded, current, result.stderr)
        assert exported_pythonpath(result.stdout) == current

    check()
