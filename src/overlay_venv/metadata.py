"""What an overlay records about itself, in ``NAME/overlay-venv.json``.

Paths inside the overlay are stored relative to it, so the record stays true when the overlay moves;
paths of the base are absolute, because the base does not move with it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .errors import OverlayError

METADATA_FILE = "overlay-venv.json"
FORMAT = 1


@dataclass
class Base:
    """The release the overlay sits on, as it was at creation."""

    interpreter: str  # the interpreter as given (after PATH lookup), symlinks kept
    executable: str  # the real interpreter binary virtualenv found behind it
    version: str  # e.g. "3.9.18"
    implementation: str  # e.g. "CPython"
    pythonpath: str | None  # PYTHONPATH at creation, without any active environment's entries
    setup: str | None = None  # the release setup command, if given with --setup
    keep_setup: bool = False  # activation runs `setup` first
    # LD_LIBRARY_PATH and PATH at creation (None: unset), for a Jupyter kernel to restore when no
    # setup is known (see kernel.py). None for the whole field in records written before it existed.
    environment: dict | None = None


@dataclass
class OverlayRecord:
    prompt: str
    bin_dir: str  # relative to the overlay
    site_packages: list[str]  # relative to the overlay; platlib first, then purelib
    system_site_packages: bool
    base: Base
    created_by: str
    format: int = FORMAT
    extra: dict = field(default_factory=dict)
    # What `overlay-venv install` was asked for, newest request per project last (see install.py), so
    # that a later lock or rebuild can resolve again from intent. Absent from older files: [].
    requests: list[str] = field(default_factory=list)
    # Base distributions `install --allow-shadow` let the overlay replace (canonical names, sorted):
    # part of the intent, so rebuild and create --from hold the base as the requests were installed.
    allow_shadow: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> OverlayRecord:
        """Read a record; keys this version does not know (written by a newer overlay-venv) are kept
        in ``extra`` instead of making the file unreadable."""
        data = json.loads(text)
        data["base"] = Base(**{key: value for key, value in data["base"].items() if key in _fields(Base)})
        known = {key: value for key, value in data.items() if key in _fields(cls)}
        known.setdefault("extra", {}).update({key: value for key, value in data.items() if key not in _fields(cls)})
        return cls(**known)


def _fields(cls) -> set[str]:
    return {item.name for item in fields(cls)}


def is_overlay(path: Path) -> bool:
    return (path / METADATA_FILE).is_file()


def write_record(overlay: Path, record: OverlayRecord) -> None:
    """Replace the record in one step: install and sync rewrite it in a live overlay, and a process
    killed halfway must not leave a truncated file that makes the overlay unreadable."""
    partial = overlay / f".{METADATA_FILE}.{os.getpid()}.part"
    try:
        partial.write_text(record.to_json(), encoding="utf-8")
        os.replace(partial, overlay / METADATA_FILE)
    finally:
        if partial.exists():
            partial.unlink()


def read_record(overlay: Path) -> OverlayRecord:
    try:
        return OverlayRecord.from_json((overlay / METADATA_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OverlayError(f"{overlay} is not an overlay made by overlay-venv (no {METADATA_FILE})") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise OverlayError(f"{overlay / METADATA_FILE} is damaged: {exc}") from None


def find_overlay(name: str | os.PathLike | None) -> Path:
    """The overlay named on the command line, else the active one (``VIRTUAL_ENV``)."""
    if name is None:
        active = os.environ.get("VIRTUAL_ENV")
        if not active:
            raise OverlayError("no overlay is active: name one, or activate one with `source NAME/bin/activate`")
        name = active
    path = Path(os.path.abspath(name))
    if not is_overlay(path):
        raise OverlayError(f"{path} is not an overlay made by overlay-venv (no {METADATA_FILE})")
    return path
