"""Property tests: the pure list functions, and the shells agreeing with them on generated values."""

from __future__ import annotations

import subprocess

import pytest
from capabilities import require_shell
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shells import PosixShell

from overlay_venv.paths import (
    activate_value,
    deactivate_value,
    path_problem,
    prepend_entries,
    rebase_value,
    remove_entries,
    remove_under,
)

# Entries as PYTHONPATH holds them: anything but the separator and NUL, empty ones included.
entry = st.text(st.characters(blacklist_characters=":\x00", blacklist_categories=("Cs",)), max_size=12)
search_list = st.lists(entry, min_size=1, max_size=6).map(":".join)
maybe_list = st.none() | search_list
own = st.lists(
    st.text(st.characters(blacklist_characters=":\x00", blacklist_categories=("Cs",)), min_size=1, max_size=12),
    min_size=1,
    max_size=2,
    unique=True,
)


@given(maybe_list, own)
def test_deactivate_undoes_activate_exactly(value, entries):
    saved, new = activate_value(value, entries)
    assert new.split(":")[: len(entries)] == entries
    assert "" not in new.split(":")[: len(entries)]
    if value is not None and not set(entries) & set(value.split(":")):
        assert saved == value
    assert deactivate_value(new, saved, new, entries) == saved


@given(maybe_list, own)
def test_activate_never_adds_an_empty_entry(value, entries):
    _, new = activate_value(value, entries)
    before = 0 if value is None else value.split(":").count("")
    assert new.split(":").count("") <= before


@given(maybe_list, own, search_list)
def test_additions_made_while_active_survive(value, entries, added):
    saved, new = activate_value(value, entries)
    changed = f"{added}:{new}"
    after = deactivate_value(changed, saved, new, entries)
    kept = [item for item in added.split(":") if item not in entries]
    if after is None:  # only when the variable was unset and nothing but empty entries was added
        assert value is None and set(kept) <= {""}
        return
    assert after.split(":")[: len(kept)] == kept
    assert not set(entries) & set(after.split(":"))


@given(search_list, own)
def test_remove_entries_keeps_everything_else_in_order(value, entries):
    result = remove_entries(value, entries)
    assert result.split(":") == [item for item in value.split(":") if item not in entries] or (
        result == "" and all(item in entries for item in value.split(":"))
    )
    assert remove_entries(result, entries) == result


@given(maybe_list, own)
def test_rebase_puts_entries_first_once(value, entries):
    result = rebase_value(value, entries)
    items = result.split(":")
    assert items[: len(entries)] == entries
    assert all(items.count(item) == 1 for item in entries)


def test_remove_under_and_prepend():
    assert remove_under("/v/bin:/usr/bin:/v:/vx/bin", "/v") == "/usr/bin:/vx/bin"
    assert prepend_entries(["/a"], None) == "/a"
    assert prepend_entries(["/a"], "") == "/a"
    assert prepend_entries(["/a", "/b"], ":") == "/a:/b::"


@pytest.mark.parametrize("path", ["/a:b/env", "/a/b\nc"])
def test_path_problem(path):
    assert path_problem(path)
    assert path_problem("/a b/'\"$(x)`!/env") is None


# --- the shells agree with the model ----------------------------------------------------------------

SCRIPT = r"""
set -eu
if [ "$TEST_SET" = 1 ]; then PYTHONPATH=$TEST_VALUE; export PYTHONPATH; else unset PYTHONPATH; fi
. "$TEST_ACTIVATE"
if [ "${PYTHONPATH+set}" = set ]; then printf 'S%s\0' "$PYTHONPATH"; else printf 'U\0'; fi
if [ "$TEST_ADD_SET" = 1 ]; then PYTHONPATH=$TEST_ADD:$PYTHONPATH; fi
deactivate
if [ "${PYTHONPATH+set}" = set ]; then printf 'S%s\0' "$PYTHONPATH"; else printf 'U\0'; fi
"""


def decode(field: str):
    return None if field == "U" else field[1:]


@pytest.mark.parametrize("shell", ["dash", "bash", "zsh", "ksh"])
def test_shells_agree_with_the_model(shell, overlay39):
    require_shell(PosixShell(shell))
    own_entries = [str(next((overlay39 / "lib").glob("python3.*")) / "site-packages")]

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(value=maybe_list, added=st.none() | search_list)
    def check(value, added):
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "TEST_SET": "0" if value is None else "1",
            "TEST_VALUE": value or "",
            "TEST_ADD_SET": "0" if added is None else "1",
            "TEST_ADD": added or "",
            "TEST_ACTIVATE": str(overlay39 / "bin" / "activate"),
        }
        # Bytes, not text: universal newlines would turn a \r in a value into \n.
        out = subprocess.run([shell, "-c", SCRIPT], env=env, capture_output=True, check=True).stdout.decode()
        active, after = (decode(field) for field in out.split("\0")[:2])
        saved, new = activate_value(value, own_entries)
        assert active == new
        current = new if added is None else f"{added}:{new}"
        assert after == deactivate_value(current, saved, new, own_entries)

    check()


def test_which_finds_what_shutil_which_finds(tmp_path, monkeypatch):
    import shutil

    from overlay_venv.paths import which

    plain, runnable, folder, later = (tmp_path / name for name in ("plain", "runnable", "folder", "later"))
    for directory in (plain, runnable, folder, later):
        directory.mkdir()
    (plain / "python3").write_text("not executable\n")
    (runnable / "python3").write_text("#!/bin/sh\n")
    (runnable / "python3").chmod(0o755)
    (folder / "python3").mkdir()
    (later / "python3").write_text("#!/bin/sh\n")
    (later / "python3").chmod(0o755)
    monkeypatch.chdir(runnable)
    searches = [
        f"{plain}:{folder}:{runnable}:{later}",
        f"{folder}:{later}:{runnable}",
        f"{plain}:{folder}",
        f"{plain}::{later}",  # an empty entry: the current directory
        "",
    ]
    for search in searches:
        assert which("python3", search) == shutil.which("python3", path=search), search
