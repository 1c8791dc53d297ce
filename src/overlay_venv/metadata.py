"""Moved to :mod:`overlay_venv.record` (the overlay record); this name stays for code written against it."""

from .record import *  # noqa: F401,F403
from .record import METADATA_FILE, OverlayRecord, find_overlay, is_overlay, read_record, write_record  # noqa: F401
