"""overlay-venv's per-user cache directory: ``$XDG_CACHE_HOME/overlay-venv`` (``~/.cache/overlay-venv``).

Everything kept there only saves time: with no writable cache directory every command does the same,
only slower. On clusters where the home quota is small, point ``XDG_CACHE_HOME`` elsewhere.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path


def cache_dir(*parts: str) -> Path | None:
    """The cache subdirectory ``parts``, made if needed; None when it cannot be made or written."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    directory = os.path.join(base, "overlay-venv", *parts)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError:
        return None
    if not os.access(directory, os.W_OK):
        return None
    return Path(directory)


def sha256(data: bytes = b""):
    """A SHA-256 object for cache keys. CPython's own implementation where there is one: hashlib's
    import loads OpenSSL, ~2.5 ms of a warm create (the digest is the same)."""
    return _sha256_type()(data)


@functools.cache
def _sha256_type():
    # Looked up once: a failed import is not remembered by Python, and each attempt searches every
    # sys.path entry again (a warm create asks for eight digests).
    try:
        if sys.version_info >= (3, 12):
            from _sha2 import sha256 as builtin
        else:
            from _sha256 import sha256 as builtin
    except ImportError:  # not CPython
        from hashlib import sha256 as builtin
    return builtin
