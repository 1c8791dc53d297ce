"""Failures of the system (a full disk, a read-only or unwritable directory, a damaged file) as the
one line a user reads, never a traceback.

``describe_os_error`` says what the kernel said and about which file, without Python's
``[Errno 28]`` decoration; ``READ_ERRORS`` are what reading a damaged compressed file can raise
besides ``OSError`` (a truncated gzip ends in ``EOFError``, a corrupt one in ``zlib.error``).
"""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Iterator

from .errors import OverlayError

READ_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, zlib.error)


def describe_os_error(exc: BaseException) -> str:
    """``"No space left on device (/scratch/x)"`` for an OSError, the text of anything else; one line."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
        if exc.filename is not None:
            text += f" ({os.fsdecode(exc.filename)})"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split("\n"))


@contextlib.contextmanager
def os_errors_as(what: str) -> Iterator[None]:
    """Inside the block, an OSError becomes ``what: cause`` as one OverlayError line."""
    try:
        yield
    except OSError as exc:
        raise OverlayError(f"{what}: {describe_os_error(exc)}") from None


def not_text_problem(what: str, value: str) -> str | None:
    """Why ``value`` (a path or name from the command line, bytes kept as surrogates) cannot be
    written into activation scripts and Python files, which are UTF-8 text; None if it can."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        shown = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return f"{what} '{shown}' is not valid UTF-8, and the overlay's scripts name it as text"
    return None
