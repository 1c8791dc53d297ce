"""Where the symlinks of an overlay's tree lead, resolved the way the kernel would resolve them.

A lexical check (``normpath`` of the link's target) cannot see that a component on the way is itself
a symlink: ``SP/p -> ../../..`` is harmless on its own, but ``SP/evil -> p/../../victim`` then leads
out of the tree, and pip writes through it. So each link is resolved component by component against
the tree itself: an archive's member list before anything is extracted (``unpack``), or the files on
disk (``pack``, and ``unpack`` again after extracting). One rule for both, over a ``lookup`` function.

The rule: every symlink resolves inside the tree, whatever the chain, except the interpreter links
``BIN/python*``, which may lead to the release's interpreter by absolute path, directly or through
another interpreter link; nothing resolves *through* one of those.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Callable
from pathlib import Path

# (kind, symlink target): kind is "dir", "file", "link" or "other"; target only for "link".
Entry = tuple[str, "str | None"]
Lookup = Callable[[str], "Entry | None"]

# The kernel gives up after 40 links in one lookup (ELOOP); so do we, and call it a loop.
MAX_HOPS = 40
PATH_MAX = 4096  # Linux's limit on a path, its terminating NUL included: no symlink target is longer


def is_interpreter_link(rel: str, bin_dir: str) -> bool:
    """Whether ``rel`` (relative, normalized) is one of the overlay's interpreter links, ``BIN/python*``."""
    return posixpath.dirname(rel) == bin_dir and posixpath.basename(rel).startswith("python")


def link_problem(rel: str, target: str, lookup: Lookup, bin_dir: str) -> str | None:
    """Why the symlink ``rel -> target`` in the tree is refused, or None. ``rel`` is relative to the
    tree's top, normalized, with ``/`` separators; ``lookup`` tells what a relative path is."""
    interpreter = is_interpreter_link(rel, bin_dir)
    if len(os.fsencode(target)) >= PATH_MAX:  # the kernel would refuse it; resolving it costs time
        return f"{rel!r} is a symlink to a target longer than {PATH_MAX - 1} bytes"
    if target.startswith("/"):
        if interpreter:
            return None
        return f"{rel!r} is a symlink to {target!r} by absolute path (only {bin_dir}/python* may be)"
    current: list[str] = posixpath.dirname(rel).split("/") if posixpath.dirname(rel) else []
    pending = target.split("/")
    pending.reverse()  # a stack: the next component last
    hops = 0
    lexical = False  # past a missing entry or a file: nothing further exists, judge by the name alone
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if not current:
                return f"{rel!r} is a symlink to {target!r}, which leads out of the overlay"
            current.pop()
            continue
        if lexical:
            current.append(part)
            continue
        candidate = "/".join([*current, part])
        entry = lookup(candidate)
        if entry is None or entry[0] != "link":
            lexical = entry is None or entry[0] != "dir"
            current.append(part)
            continue
        hops += 1
        if hops > MAX_HOPS:
            return f"{rel!r} is a symlink to {target!r}, which loops"
        next_target = entry[1] or ""
        if next_target.startswith("/"):
            # Only an interpreter link may end at another interpreter link (bin/python3 -> python).
            if interpreter and not pending and is_interpreter_link(candidate, bin_dir):
                return None
            return f"{rel!r} is a symlink to {target!r}, which leads out of the overlay through {candidate!r}"
        pending.extend(reversed(next_target.split("/")))
    return None


def disk_lookup(root: Path) -> Lookup:
    """``lookup`` over the files under ``root`` as they are now, never following a link."""

    def lookup(rel: str) -> Entry | None:
        path = os.path.join(root, rel)
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            return None
        if stat.S_ISLNK(mode):
            return ("link", os.readlink(path))
        if stat.S_ISDIR(mode):
            return ("dir", None)
        return ("file", None) if stat.S_ISREG(mode) else ("other", None)

    return lookup


def tree_link_problems(root: Path, bin_dir: str) -> list[str]:
    """Every symlink under ``root`` that breaks the rule, one phrase each; [] if none. Directories
    reached through a symlink are not walked (``os.walk`` does not follow them)."""
    lookup = disk_lookup(root)
    problems = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                rel = Path(os.path.relpath(path, root)).as_posix()
                problem = link_problem(rel, os.readlink(path), lookup, bin_dir)
                if problem:
                    problems.append(problem)
    return problems
