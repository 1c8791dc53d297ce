"""overlay-venv's per-user cache directory: ``$XDG_CACHE_HOME/overlay-venv`` (``~/.cache/overlay-venv``).

Everything kept there only saves time: with no writable cache directory every command does the same,
only slower. On clusters where the home quota is small, point ``XDG_CACHE_HOME`` elsewhere.
"""

from __future__ import annotations

import os
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
