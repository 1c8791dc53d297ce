"""Console scripts pip wrote, re-pointed with overlay-venv's own trampoline.

When the interpreter's path has a blank or is longer than the kernel reads of a shebang (127 bytes),
pip writes a ``/bin/sh`` trampoline::

    #!/bin/sh
    '''exec' "/path/to/overlay/bin/python" "$0" "$@"
    ' '''

with the path in *double* quotes when it has a blank and in no quotes at all when it is only long.
sh then expands ``$(...)``, backquotes and ``$VAR`` in the overlay's own path (and splits and globs an
unquoted one) every time the script runs: an overlay under a directory named ``$(touch x)`` runs
``touch x``. :func:`secure_scripts` replaces that header with :func:`overlay_venv.relocate.shebang_for`'s,
which quotes the path once for sh with single quotes; plain ``#!`` lines (no shell involved) and
scripts pip did not write are left as they are. Run after every install overlay-venv makes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .relocate import shebang_for, write_new_file

_START = b"'''exec' "
_END = b' "$0" "$@"'


def pip_trampoline_interpreter(head: list[bytes]) -> bytes | None:
    """The interpreter of pip's sh trampoline, from a script's first three lines; None for any other
    header (a plain shebang, overlay-venv's own single-quoted trampoline, anything else)."""
    if len(head) < 3 or head[0] != b"#!/bin/sh" or head[2] != b"' '''":
        return None
    line = head[1]
    if not (line.startswith(_START) and line.endswith(_END)):
        return None
    word = line[len(_START) : -len(_END)]
    if len(word) >= 2 and word.startswith(b'"') and word.endswith(b'"'):
        word = word[1:-1]  # pip quoted it because of a blank; nothing inside is escaped
    return word if word.startswith(b"/") else None


def secure_scripts(bin_dir: Path) -> list[Path]:
    """Rewrite the header of every script in ``bin_dir`` that pip gave its trampoline for an
    interpreter in ``bin_dir`` itself. Returns the scripts rewritten."""
    changed = []
    own = os.fsencode(os.path.abspath(bin_dir))
    try:
        entries = sorted(os.scandir(bin_dir), key=lambda entry: entry.name)
    except OSError:
        return changed
    for entry in entries:
        if entry.is_symlink() or not entry.is_file():
            continue
        try:
            with open(entry.path, "rb") as handle:
                head = handle.read(4096)
        except OSError:
            continue
        if not head.startswith(b"#!/bin/sh\n"):
            continue
        interpreter = pip_trampoline_interpreter(head.split(b"\n", 3)[:3])
        if interpreter is None or os.path.dirname(interpreter) != own:
            continue
        data = Path(entry.path).read_bytes()
        body = data.split(b"\n", 3)[3] if data.count(b"\n") >= 3 else b""
        try:
            header = shebang_for(os.fsdecode(interpreter))
        except UnicodeEncodeError:
            continue  # a path that is not UTF-8: shebang_for cannot spell it; left as pip wrote it
        mode = stat.S_IMODE(os.lstat(entry.path).st_mode)
        write_new_file(Path(entry.path), header + body, mode)
        changed.append(Path(entry.path))
    return changed
