"""Pure functions over paths and colon-separated search lists.

The activation scripts implement the same list operations in each shell's own syntax; these are the
reference semantics, property-tested against the shells in ``tests/``.

A search list such as ``PYTHONPATH`` is a string, not a list: ``""`` is one empty entry (the current
directory to Python), ``"a:"`` ends in an empty entry, and an unset variable is ``None``. The functions
keep every entry they do not touch byte for byte, empty ones included.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

SEPARATOR = ":"

# Characters that cannot appear in a path that goes on PATH or PYTHONPATH: the separator splits it, and
# a newline breaks line-oriented files (pyvenv.cfg, .pth) and most shell tooling.
FORBIDDEN_IN_PATH = {":": "a colon (it separates PATH and PYTHONPATH entries)", "\n": "a newline"}


def remove_entries(value: str, entries: Iterable[str]) -> str:
    """Drop every occurrence of each of ``entries`` from the search list ``value``; keep the rest exactly."""
    drop = set(entries)
    return SEPARATOR.join(item for item in value.split(SEPARATOR) if item not in drop)


def remove_under(value: str, directory: str) -> str:
    """Drop every entry of ``value`` that is ``directory`` or lies below it."""
    prefix = directory.rstrip("/") + "/"
    items = value.split(SEPARATOR)
    return SEPARATOR.join(item for item in items if item != directory and not item.startswith(prefix))


def prepend_entries(entries: Iterable[str], value: str | None) -> str:
    """Put ``entries`` at the head of a search list that may be unset or empty, adding no empty entry."""
    head = SEPARATOR.join(entries)
    return f"{head}{SEPARATOR}{value}" if value else head


def activate_value(value: str | None, entries: list[str]) -> tuple[str | None, str]:
    """What activation saves and what it sets: ``(saved, new)`` for a variable holding ``value``.

    Copies of our own entries already in the list (an environment inherited from a shell where the
    overlay was active) are removed first, so activation never duplicates them.
    """
    saved = None if value is None else remove_entries(value, entries)
    return saved, prepend_entries(entries, saved)


def deactivate_value(current: str | None, saved: str | None, activated: str, entries: list[str]) -> str | None:
    """What deactivation leaves: the saved value exactly if nothing changed the variable since
    activation; otherwise the current value without our own entries (so additions made while active
    survive), and unset if that leaves nothing of a variable that was unset before."""
    if current == activated:
        return saved
    if current is None:
        return None
    rest = remove_entries(current, entries)
    return None if rest == "" and saved is None else rest


def rebase_value(current: str | None, entries: list[str]) -> str:
    """Move our entries back to the head after something else prepended its own."""
    return prepend_entries(entries, None if current is None else remove_entries(current, entries))


def python_entries(value: str | None) -> tuple[str, ...]:
    """The entries of the search list ``value`` that decide an import: each the first time it comes.

    A release set up twice repeats its entries (``a:b:a:b``). Python looks in the first copy first,
    so later copies change nothing an import can find (``site`` even removes them from ``sys.path``).
    An empty entry is the current directory and counts like any other, once. An empty or unset
    ``PYTHONPATH`` is no entry at all: Python ignores an empty one. Entries are compared as strings,
    exactly: ``a/`` and ``a``, or a relative entry and its absolute form, may name the same directory,
    but only for some working directories, so they count as different.
    """
    if not value:
        return ()
    return tuple(dict.fromkeys(value.split(SEPARATOR)))


def same_for_python(value: str | None, other: str | None) -> bool:
    """Whether two ``PYTHONPATH`` values give Python the same entries, in the same order."""
    return value == other or python_entries(value) == python_entries(other)


def path_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot hold an overlay, or None. The whole absolute path matters, not just the
    name: a parent directory with a colon breaks PYTHONPATH just the same."""
    text = str(path)
    for char, words in FORBIDDEN_IN_PATH.items():
        if char in text:
            return f"the path {text!r} contains {words}"
    return None


def relative_to_overlay(overlay: Path, path: Path) -> str:
    """``path`` below ``overlay`` as a POSIX relative string, for metadata that survives a move."""
    return path.relative_to(overlay).as_posix()


def which(name: str, search: str) -> str | None:
    """The first entry of the PATH-style ``search`` holding an executable file ``name``, as
    shutil.which finds it on POSIX (an empty entry is the current directory, an empty ``search``
    finds nothing); None if none does. Here so that create need not import shutil for this alone."""
    if not search:
        return None
    for directory in search.split(os.pathsep):
        candidate = os.path.join(directory, name)
        if os.path.exists(candidate) and os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None
