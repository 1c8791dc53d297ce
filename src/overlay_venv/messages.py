"""The one channel for what overlay-venv says besides its output: warnings, on stderr, one a line.

Operations that can go on despite something odd either return it in their result (pure code: the
holds' and the requirement check's warnings) or, when they are deep in a callback, call :func:`warn`;
commands print the returned ones with :func:`warn` too, so every warning looks the same.
"""

from __future__ import annotations

import codecs
import sys
from collections.abc import Iterable


def write_line(text: str, err: bool = False) -> None:
    """``text`` and a newline on stdout (or stderr) as it is now (click's CliRunner swaps it), flushed
    at once, as click.echo writes a line: so a warning lands before whatever a child process writes
    next, and a stream left ASCII by a bare C locale gets UTF-8 with unencodable characters replaced
    rather than an error. Without click, for the commands _entry.py answers without it."""
    stream = sys.stderr if err else sys.stdout
    if stream is None:  # closed: click.echo writes nothing either
        return
    buffer = getattr(stream, "buffer", None)
    if buffer is not None and codecs.lookup(getattr(stream, "encoding", None) or "ascii").name == "ascii":
        stream.flush()
        buffer.write((text + "\n").encode("utf-8", "replace"))
        buffer.flush()
        return
    stream.write(text + "\n")
    stream.flush()


def warn(text: str) -> None:
    write_line(f"overlay-venv: warning: {text}", err=True)


def warn_all(texts: Iterable[str]) -> None:
    """Each distinct warning once, in the order first given."""
    for text in dict.fromkeys(texts):
        warn(text)
