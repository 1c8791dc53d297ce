"""The one channel for what overlay-venv says besides its output: warnings, on stderr, one a line.

Operations that can go on despite something odd either return it in their result (pure code: the
holds' and the requirement check's warnings) or, when they are deep in a callback, call :func:`warn`;
commands print the returned ones with :func:`warn` too, so every warning looks the same.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable


def warn(text: str) -> None:
    # sys.stderr as it is now (click's CliRunner swaps it), flushed at once as click.echo does, so a
    # warning lands before whatever a child process writes next; no click, for quick.py's sake.
    err = sys.stderr
    if err is not None:
        err.write(f"overlay-venv: warning: {text}\n")
        err.flush()


def warn_all(texts: Iterable[str]) -> None:
    """Each distinct warning once, in the order first given."""
    for text in dict.fromkeys(texts):
        warn(text)
