"""Failures of the system (a full disk, a read-only or unwritable directory, a damaged file) as the
one line a user reads, never a traceback.

``describe_os_error`` says what the kernel said and about which file, without Python's
``[Errno 28]`` decoration; ``READ_ERRORS`` are what reading a damaged compressed file can raise
besides ``OSError`` (a truncated gzip ends in ``EOFError``, a corrupt one in ``zlib.error``).
"""

from __future__ import annotations

import os
import zlib

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
