"""Moving an overlay to another directory or node that has the same release at the same path.

An overlay names its own absolute path in few places, all of them written by overlay-venv or pip:

- the activation scripts (every shell) and ``bin/overlay-venv-relocate``: rendered again from the
  record for the new place, exactly as ``create`` renders them;
- console-script shebangs, ``#!/OLD/bin/python`` or the ``#!/bin/sh`` trampoline that ``create`` (and
  pip) write for a path with a blank or over 127 bytes: rewritten with ``shebang_for``;
- ``pyvenv.cfg`` (its ``command`` line).

The record (``overlay-venv.json``) stores paths relative to the overlay and the start-up hook reads
``sys.prefix``, so both are true at any place as they are. ``bin/python`` links to the release's
interpreter, which is why the release must be at the same path on the other side.

What cannot move is refused before anything is written: editable installs (they point at a source
tree that stays behind), symlinks that reach into the overlay by absolute path or out of it by a
relative one, ``.pth`` files naming the overlay's absolute path, and special files.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
from collections.abc import Callable
from pathlib import Path

from . import __version__
from .activation import activation_values, write_activation_scripts
from .launcher import write_launcher
from .record import OverlayRecord
from .templates import render

RELOCATE_SCRIPT = "overlay-venv-relocate"
RELOCATE_TEMPLATE = "overlay-venv-relocate.py.j2"
# The assignment in the relocate script that holds the directory it was written for.
_LOCATION_NAME = "OVERLAY_DIR"

# The characters a path may hold for the stdlib relocate script to move an overlay by plain text
# replacement: with none but these, every shell's quoting leaves the path as it is, bare or inside
# quotes, and no shell expands or splits it. Quotes, `$`, backquotes, backslashes, `!`, blanks, a
# newline, a colon, glob and operator characters are all outside. `overlay-venv unpack` re-renders
# everything and needs no such rule.
_PLAIN_PATH = re.compile(r"[\w@%+=,./-]+")

# A path occurrence ends where a path name cannot go on: "/OLD" must not match inside "/OLD-base/..."
# (a release beside the overlay) nor "/data/OLD". Bytes >= 0x80 are parts of UTF-8 names. `=` may come
# before a path (VIRTUAL_ENV=/OLD) but after it only inside a longer name.
_NAME_CHAR = rb"[\w@%+,.\-\x80-\xff]"
_NAME_CHAR_AFTER = rb"[\w@%+,.=\-\x80-\xff]"


def location_pattern(old: str | bytes) -> re.Pattern[bytes]:
    """A bytes pattern that finds ``old`` as a whole path (or a path's leading part) in any text."""
    raw = old if isinstance(old, bytes) else os.fsencode(old)
    return re.compile(rb"(?<!" + _NAME_CHAR + rb")" + re.escape(raw) + rb"(?!" + _NAME_CHAR_AFTER + rb")")


def render_relocate_script(location: Path | str, bin_dir: str = "bin") -> str:
    return render(RELOCATE_TEMPLATE, repr, version=__version__, location=str(location), bin_dir=bin_dir)


def write_new_file(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write ``path`` as a new file, never through what is at that name: in an unpacked archive a
    symlink or a hard link there may lead to a file outside the overlay. ``mode``: exactly that
    (default: 0o666 less the umask)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else 0o600)
    with open(fd, "wb") as handle:
        if mode is not None:
            os.fchmod(fd, mode)
        handle.write(data)


def write_relocate_script(target: Path, location: Path | None = None, bin_dir: str = "bin") -> Path:
    """Write ``bin/overlay-venv-relocate`` into the overlay being built in ``target``, for an overlay
    that will live at ``location`` (default: ``target``). ``create`` calls this with its staging
    directory and the final path, so an overlay copied with plain tools can be re-pointed anywhere."""
    script = target / bin_dir / RELOCATE_SCRIPT
    write_new_file(script, render_relocate_script(location or target, bin_dir).encode(), 0o755)
    return script


def read_location(script_text: str) -> str | None:
    """The directory a relocate script was written for: the literal of its ``OVERLAY_DIR = ...``
    line, read without running the script."""
    import ast  # only relocation reads a script back

    try:
        tree = ast.parse(script_text)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == _LOCATION_NAME for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return None
            return value if isinstance(value, str) else None
    return None


def _is_editable_direct_url(path: Path) -> bool:
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and bool((data.get("dir_info") or {}).get("editable"))


def movable_problems(overlay: Path, bin_dir: str = "bin") -> list[str]:
    """What in ``overlay`` would be wrong at another place, one phrase each naming the file; [] if
    nothing. The overlay's own site directories are the only places pip writes .pth files and
    metadata, but the whole tree is walked: a symlink anywhere breaks as well. Absolute symlinks out
    of the overlay may only be its interpreter links, ``bin_dir/python*`` (unpack refuses others)."""
    problems: list[str] = []
    root = str(overlay)
    raw_root = os.fsencode(root)
    pattern = location_pattern(raw_root)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = path[len(root) + 1 :]  # os.walk gives paths under root: slicing, not relpath (10x cheaper)
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                target = os.readlink(path)
                if os.path.isabs(target):
                    if target == root or target.startswith(root + os.sep):
                        problems.append(f"{rel} is a symlink to {target} by absolute path (make it relative)")
                    elif os.path.dirname(rel) != bin_dir or not name.startswith("python"):
                        problems.append(
                            f"{rel} is a symlink to {target} by absolute path, which only {bin_dir}/python* may be "
                            "(an archive could write through it)"
                        )
                else:
                    resolved = os.path.normpath(os.path.join(dirpath, target))
                    if resolved != root and not resolved.startswith(root + os.sep):
                        problems.append(f"{rel} is a relative symlink to {target}, which leads out of the overlay")
                continue
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                problems.append(f"{rel} is not a regular file, directory or symlink")
                continue
            if name.startswith("__editable__") and name.endswith(".pth"):
                problems.append(f"{rel} belongs to an editable install (pip install -e); reinstall it without -e")
            elif name.endswith(".egg-link"):
                problems.append(
                    f"{rel} belongs to an editable install (setup.py develop / pip install -e); reinstall it without -e"
                )
            elif name == "direct_url.json" and dirpath.endswith(".dist-info") and _is_editable_direct_url(Path(path)):
                dist = os.path.basename(dirpath)[: -len(".dist-info")]
                problems.append(f"{dist} is an editable install ({rel}); reinstall it without -e")
            elif name.endswith(".pth"):
                try:
                    data = Path(path).read_bytes()
                except OSError:
                    continue
                if pattern.search(data):
                    problems.append(f"{rel} names the overlay's absolute path {root}")
    return problems


# Longest shebang line the kernel reads in full (BINPRM_BUF_SIZE minus "#!" and the newline).
MAX_SHEBANG = 127


def shebang_for(python: str) -> bytes:
    """A shebang that runs ``python`` wherever it lives. The kernel splits the line at whitespace and
    reads only 127 bytes, so a path with a space or a long one gets a /bin/sh trampoline instead, with
    the path quoted once for sh (and inside a Python string literal, which the trampoline closes)."""
    if len(python) <= MAX_SHEBANG and not any(char.isspace() for char in python):
        return f"#!{python}\n".encode()
    return f"#!/bin/sh\n'''exec' {shlex.quote(python)} \"$0\" \"$@\"\n' '''\n".encode()


def _script_interpreter(lines: list[bytes]) -> tuple[str, int] | None:
    """The interpreter a script's first lines run and how many lines that header takes: a plain
    ``#!PATH`` line, or the sh trampoline (``#!/bin/sh`` / ``'''exec' PATH "$0" "$@"`` / ``' '''``)
    written for paths the kernel cannot take, with PATH quoted by create (single) or pip (double)."""
    if not lines or not lines[0].startswith(b"#!"):
        return None
    if lines[0] == b"#!/bin/sh" and len(lines) >= 3 and lines[1].startswith(b"'''exec' ") and lines[2] == b"' '''":
        try:
            words = shlex.split(os.fsdecode(lines[1]))
        except ValueError:
            return None
        if len(words) == 4 and words[0] == "exec" and words[2:] == ["$0", "$@"]:
            return words[1], 3
        return None
    interpreter = os.fsdecode(lines[0][2:]).strip()
    if not interpreter or any(char.isspace() for char in interpreter):
        return None  # an interpreter with arguments: left alone, reported if it names the old place
    return interpreter, 1


def repointed_script(data: bytes, old: str, new: str) -> bytes | None:
    """The script ``data`` running the same interpreter file in ``new`` that it ran in ``old``; None
    when it is not a script whose interpreter lies in ``old``."""
    if not data.startswith(b"#!"):
        return None
    prefix = old.rstrip("/") + "/"
    lines = data.split(b"\n")
    found = _script_interpreter(lines[:3])
    if found is None or not found[0].startswith(prefix):
        return None
    interpreter, header = found
    return shebang_for(new.rstrip("/") + "/" + interpreter[len(prefix) :]) + b"\n".join(lines[header:])


def repointed_cfg(data: bytes, old: str, new: str) -> bytes:
    """pyvenv.cfg's text with every path in ``old`` moved to ``new``."""
    replacement = os.fsencode(new)
    return location_pattern(old).sub(lambda _match: replacement, data)


def move_shebangs(bin_dir: Path, old: str, new: str) -> list[Path]:
    """Point every script in ``bin_dir`` whose interpreter lies in ``old`` at the same file in ``new``."""
    changed = []
    for script in sorted(bin_dir.iterdir()):
        if script.is_symlink() or not script.is_file():
            continue
        with open(script, "rb") as handle:
            if handle.read(2) != b"#!":
                continue
            data = b"#!" + handle.read()
        moved = repointed_script(data, old, new)
        if moved is None:
            continue
        write_new_file(script, moved, stat.S_IMODE(script.stat().st_mode))
        changed.append(script)
    return changed


def repoint(root: Path, old: str, new: str, bin_dir: str, edit_cfg: Callable[[bytes], bytes] | None = None) -> None:
    """Point what virtualenv wrote naming ``old`` (the scripts' shebangs in ``bin_dir``, pyvenv.cfg)
    at ``new``, for the environment whose files are in ``root``; ``edit_cfg`` changes pyvenv.cfg
    further. A file that changes is written anew, never through a symlink or a hard link that was
    there; one that does not is left alone."""
    move_shebangs(root / bin_dir, old, new)
    cfg = root / "pyvenv.cfg"
    if cfg.is_file() and not cfg.is_symlink():
        text = cfg.read_bytes()
        moved = repointed_cfg(text, old, new)
        if edit_cfg is not None:
            moved = edit_cfg(moved)
        if moved != text:
            write_new_file(cfg, moved, stat.S_IMODE(cfg.stat().st_mode))


def relocate_tree(root: Path, old: str, new: Path, record: OverlayRecord) -> None:
    """Make the overlay whose files are in ``root`` (a staging directory) correct at ``new``; it was
    last written for ``old``. ``root`` and ``new`` may be the same directory. Every file is written
    anew, never through a symlink or a hard link that was there."""
    repoint(root, old, str(new), record.bin_dir)
    write_activation_scripts(activation_values(new, record), root / record.bin_dir)
    write_launcher(root / record.bin_dir, new, record)
    write_relocate_script(root, new, record.bin_dir)


def files_naming(root: Path, location: str) -> list[str]:
    """Files under ``root`` that still contain ``location`` as a path, relative to ``root``. Compiled
    bytecode is skipped: the import system replaces a .pyc's recorded file name with the real one."""
    pattern = location_pattern(location)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith((".pyc", ".pyo")):
                continue
            path = os.path.join(dirpath, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            try:
                with open(path, "rb") as handle:
                    data = handle.read()
            except OSError:
                continue
            if pattern.search(data):
                found.append(os.path.relpath(path, root))
    return found


def text_replacement_problem(path: str) -> str | None:
    """Why the stdlib relocate script cannot move an overlay to or from ``path``, or None."""
    if _PLAIN_PATH.fullmatch(path):
        return None
    bad = sorted({char for char in path if not _PLAIN_PATH.fullmatch(char)})
    return f"{path!r} contains {' '.join(repr(char) for char in bad)}, which shells quote or expand"
