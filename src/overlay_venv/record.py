"""The overlay record: what an overlay says about itself, in ``NAME/overlay-venv.json``.

Paths inside the overlay are stored relative to it, so the record stays true when the overlay moves;
paths of the base are absolute, because the base does not move with it.

The record is versioned (``format``), as pipx versions its metadata: a record in a newer format than
this overlay-venv knows is refused with the upgrade to run (guessing at it could rewrite it wrongly);
an older one is migrated on read, step by step (:data:`MIGRATIONS`); keys this version does not know
are kept where they were, at the top level or in ``base``, and written back there.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from .errors import OverlayError
from .oserrors import describe_os_error
from .values import Value, fresh

METADATA_FILE = "overlay-venv.json"
# 2: "allow_shadow" and "base.environment" always written; unknown keys kept in place rather than
#    nested under an "extra" key (which format 1 wrote).
RECORD_FORMAT = 2
UPGRADE = "python -m pip install --upgrade overlay-venv"


def _from_1(data: dict) -> dict:
    """Format 1 -> 2: defaults for the keys format 2 always has, and the keys an older overlay-venv
    nested under "extra" (the ones it did not know) back at the top level where they were written."""
    data = dict(data)
    nested = data.pop("extra", None)
    if isinstance(nested, dict):
        for key, value in nested.items():
            data.setdefault(key, value)
    data.setdefault("allow_shadow", [])
    data.setdefault("requests", [])
    if isinstance(data.get("base"), dict):
        data["base"] = {"environment": None, **data["base"]}
    data["format"] = 2
    return data


class NewerFormat(ValueError):
    """A record in a format newer than this overlay-venv reads."""


# format N -> the function that turns a format-N record into format N + 1
MIGRATIONS = {1: _from_1}


def migrate(data: dict) -> dict:
    """``data`` (a parsed record) in this version's :data:`RECORD_FORMAT`; raises ValueError for a newer one."""
    version = data.get("format", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"format should be a whole number from 1, not {_shown(version)}")
    if version > RECORD_FORMAT:
        raise NewerFormat(
            f"it was written by a newer overlay-venv (record format {version}; this one reads up to {RECORD_FORMAT}): "
            f"upgrade with `{UPGRADE}`"
        )
    while version < RECORD_FORMAT:
        data = MIGRATIONS[version](data)
        version = data["format"]
    return data


class Base(Value):
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
    unknown: dict = fresh(dict)  # keys of a newer version, written back as they were


class OverlayRecord(Value):
    prompt: str
    bin_dir: str  # relative to the overlay
    site_packages: list[str]  # relative to the overlay; platlib first, then purelib
    system_site_packages: bool
    base: Base
    created_by: str
    format: int = RECORD_FORMAT
    # Top-level keys this version does not know (a newer overlay-venv's), written back as they were.
    extra: dict = fresh(dict)
    # What `overlay-venv install` was asked for, newest request per project last (see install.py), so
    # that a later lock or rebuild can resolve again from intent. Absent from older files: [].
    requests: list[str] = fresh(list)
    # Base distributions `install --allow-shadow` let the overlay replace (canonical names, sorted):
    # part of the intent, so rebuild and create --from hold the base as the requests were installed.
    allow_shadow: list[str] = fresh(list)
    # The overlays under this one (create --on), top-down, as stack.Lower values: [] when it sits on
    # the release directly. Absent from older files: [].
    lowers: list = fresh(list)

    def python(self, overlay: Path) -> str:
        """The overlay's interpreter, ``NAME/bin/python``: what jobs and installers run."""
        return str(overlay / self.bin_dir / "python")

    def to_data(self) -> dict:
        data = self.as_dict()
        base = data.pop("base")
        extra = data.pop("extra")
        base_unknown = base.pop("unknown")
        return {**extra, **data, "base": {**base_unknown, **base}, "format": RECORD_FORMAT}

    def to_json(self) -> str:
        return json.dumps(self.to_data(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> OverlayRecord:
        """Read a record, migrating an older format; keys this version does not know (written by a
        newer overlay-venv of the same format) are kept, to be written back where they were. Raises
        ValueError saying which field is wrong (see :func:`record_problem`) or that the format is newer."""
        try:
            data = json.loads(text)
        except RecursionError:
            raise ValueError("it is nested too deeply to be a record") from None
        problem = record_problem(data)
        if problem:
            raise ValueError(problem)
        data = migrate(dict(data))
        base = data["base"]
        data["base"] = Base(
            **{key: value for key, value in base.items() if key in _BASE_KNOWN},
            unknown={key: value for key, value in base.items() if key not in _BASE_KNOWN},
        )
        known = {key: value for key, value in data.items() if key in _RECORD_KNOWN}
        known["extra"] = {key: value for key, value in data.items() if key not in _RECORD_KNOWN}
        if "lowers" in known:
            from .stack import lowers_from_data

            known["lowers"] = lowers_from_data(known["lowers"])
        return cls(**known)

    def info_json(self, overlay: Path) -> dict:
        """What ``overlay-venv info --json`` says of the record (the drift verdict is the caller's)."""
        return {
            "overlay": str(overlay),
            "prompt": self.prompt,
            "site_packages": [str(overlay / rel) for rel in self.site_packages],
            "system_site_packages": self.system_site_packages,
            "base": {
                "implementation": self.base.implementation,
                "version": self.base.version,
                "interpreter": self.base.interpreter,
                "executable": self.base.executable,
                "pythonpath": self.base.pythonpath,
                "setup": self.base.setup,
                "keep_setup": self.base.keep_setup,
            },
            "created_by": self.created_by,
            # A stacked overlay's lower overlays, top-down; absent for an overlay on the release.
            **({"lowers": [self._lower_json(lower) for lower in self.lowers]} if self.lowers else {}),
        }

    @staticmethod
    def _lower_json(lower) -> dict:
        return {"path": lower.path, "label": lower.label, "ref": lower.ref}


_BASE_KNOWN = set(Base.FIELDS) - {"unknown"}
_RECORD_KNOWN = set(OverlayRecord.FIELDS) - {"extra"}


# --------------------------------------------------------------------------------------------------
# What a record must hold: every field, its type, and paths inside the overlay that stay inside.
# All validation of the file is here, so that it moves with the record (a later record.py).

_TEXT = "a string"
_OPTIONAL_TEXT = "a string or null"
_RECORD_FIELDS = {  # name: (what it must be, required)
    "prompt": (_TEXT, True),
    "bin_dir": ("a path inside the overlay", True),
    "site_packages": ("a list of paths inside the overlay", True),
    "system_site_packages": ("true or false", True),
    "base": ("an object", True),
    "created_by": (_TEXT, True),
    "format": ("a whole number", False),
    "extra": ("an object", False),
    "requests": ("a list of strings", False),
    "allow_shadow": ("a list of strings", False),
    "lowers": ("a list of lower overlays", False),
}
# One entry of "lowers" (see stack.py).
_LOWER_FIELDS = {
    "path": ("an absolute path", True),
    "prompt": (_TEXT, True),
    "bin_dir": ("a path inside the overlay", True),
    "site_packages": ("a list of paths inside the overlay", True),
    "stamp": (_OPTIONAL_TEXT, True),
    "fingerprint": (_TEXT, True),
    "ref": (_OPTIONAL_TEXT, False),
}
_BASE_FIELDS = {
    "interpreter": ("an absolute path", True),
    "executable": ("an absolute path", True),
    "version": (_TEXT, True),
    "implementation": (_TEXT, True),
    "pythonpath": (_OPTIONAL_TEXT, True),
    "setup": (_OPTIONAL_TEXT, False),
    "keep_setup": ("true or false", False),
    "environment": ("an object of strings or null", False),
}


def inside_path_problem(value: object) -> bool:
    """Whether ``value`` is not a plain relative path that stays inside the overlay."""
    return (
        not isinstance(value, str)
        or not value
        or "\0" in value
        or value.startswith("/")
        or any(part in ("", ".", "..") for part in value.split("/"))
    )


def _is_text(value: object) -> bool:
    return isinstance(value, str) and "\0" not in value  # a NUL byte is no path and no shell word


def _fits(kind: str, value: object) -> bool:
    if kind == _TEXT:
        return _is_text(value)
    if kind == _OPTIONAL_TEXT:
        return value is None or _is_text(value)
    if kind == "true or false":
        return isinstance(value, bool)
    if kind == "a whole number":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "an object":
        return isinstance(value, dict)
    if kind == "an absolute path":
        return _is_text(value) and value.startswith("/")
    if kind == "a path inside the overlay":
        return not inside_path_problem(value)
    if kind == "a list of paths inside the overlay":
        return isinstance(value, list) and bool(value) and not any(inside_path_problem(item) for item in value)
    if kind == "a list of strings":
        return isinstance(value, list) and all(_is_text(item) for item in value)
    if kind == "a list of lower overlays":
        return isinstance(value, list) and all(
            isinstance(item, dict) and set(item) <= set(_LOWER_FIELDS) and _table_problem(item, _LOWER_FIELDS, "") is None
            for item in value
        )
    if kind == "an object of strings or null":
        return value is None or (isinstance(value, dict) and all(item is None or _is_text(item) for item in value.values()))
    raise AssertionError(kind)


def _shown(value: object) -> str:
    if isinstance(value, (dict, list)):
        return "an object" if isinstance(value, dict) else "a list"
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _table_problem(data: dict, spec: dict, where: str) -> str | None:
    for key, (kind, required) in spec.items():
        if key not in data:
            if required:
                return f"it has no {where}{key}"
            continue
        if not _fits(kind, data[key]):
            return f"{where}{key} should be {kind}, not {_shown(data[key])}"
    return None


def record_problem(data: object) -> str | None:
    """Why ``data`` (parsed JSON) is not a record overlay-venv can use, or None: one phrase."""
    if not isinstance(data, dict):
        return f"it holds {_shown(data)}, not an object"
    return _table_problem(data, _RECORD_FIELDS, "") or _table_problem(data["base"], _BASE_FIELDS, "base.")


# Written into bin/activate by every overlay-venv since the first: tells our activation script
# from one that only has the name.
ACTIVATE_MARK = b"made by overlay-venv"


def overlay_problem(path: Path) -> str | None:
    """What ``path`` lacks to be an overlay made by overlay-venv, or None: a record that parses and
    validates, and the structure that record describes (pyvenv.cfg, our own bin/activate).
    ``create --clear`` removes a directory only when this says None."""
    try:
        record = read_record(path)
    except OverlayError as exc:
        return exc.message
    if not (path / "pyvenv.cfg").is_file():
        return f"{path} has an {METADATA_FILE} but no pyvenv.cfg"
    activate = path / record.bin_dir / "activate"
    try:
        with open(activate, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return f"{path} has an {METADATA_FILE} but no readable {record.bin_dir}/activate"
    if ACTIVATE_MARK not in head:
        return f"{path} has an {METADATA_FILE} but its {record.bin_dir}/activate was not written by overlay-venv"
    return None


def is_overlay(path: Path) -> bool:
    """Whether ``path`` holds a record (valid or not): commands then read it and say what is wrong.
    What may be *removed* is decided by :func:`overlay_problem`."""
    try:
        return stat.S_ISREG(os.stat(path / METADATA_FILE).st_mode)
    except OSError:  # missing, or a path the system refuses (too long, not searchable)
        return False


def write_record(overlay: Path, record: OverlayRecord) -> None:
    """Replace the record in one step: install and sync rewrite it in a live overlay, and a process
    killed halfway must not leave a truncated file that makes the overlay unreadable."""
    from .atomic import replace_file
    from .stack import write_stamp

    # A new stamp with every record: overlays stacked on this one see at activation that it changed.
    write_stamp(overlay)
    replace_file(overlay / METADATA_FILE, record.to_json().encode("utf-8"))


def read_record(overlay: Path) -> OverlayRecord:
    path = overlay / METADATA_FILE
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise OverlayError(f"{overlay} is not an overlay made by overlay-venv (no {METADATA_FILE})") from None
    except IsADirectoryError:
        raise OverlayError(f"{path} is a directory, not an overlay's record") from None
    except OSError as exc:  # unreadable: permissions, an I/O error
        raise OverlayError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise OverlayError(f"{path} is damaged: it is not UTF-8 text") from None
    try:
        return OverlayRecord.from_json(text)
    except NewerFormat as exc:
        raise OverlayError(f"{path}: {exc}") from None
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise OverlayError(f"{path} is damaged: {exc}") from None


def find_overlay(name: str | os.PathLike | None) -> Path:
    """The overlay named on the command line, else the active one (``VIRTUAL_ENV``)."""
    if name is None:
        active = os.environ.get("VIRTUAL_ENV")
        if not active:
            raise OverlayError("no overlay is active: name one, or activate one with `source NAME/bin/activate`")
        name = active
    else:  # a published reference (team/ana:v3, STORE/team/ana@ID) becomes its id's directory
        from .refs import overlay_argument

        name = overlay_argument(name)
    path = Path(os.path.abspath(name))
    try:
        os.stat(path / METADATA_FILE)
    except FileNotFoundError:
        raise OverlayError(f"{path} is not an overlay made by overlay-venv (no {METADATA_FILE})") from None
    except OSError as exc:  # a name too long, a directory we may not enter
        raise OverlayError(f"cannot look at {path}: {describe_os_error(exc)}") from None
    if not is_overlay(path):
        raise OverlayError(f"{path} is not an overlay made by overlay-venv ({METADATA_FILE} is not a file)")
    _recover_interrupted(path)
    return path


def _recover_interrupted(path: Path) -> None:
    """Every command that finds an overlay first rolls back an install into it that was killed (one
    stat when there is none), so no command reads a half-installed package. Who may not write the
    overlay is told, and goes on reading it as it is."""
    from .transaction import interrupted, recover

    if not interrupted(path):
        return
    from .messages import warn

    try:
        recover(path, warn)
    except OverlayError as exc:
        warn(f"{exc.message} (an interrupted install is left for its owner to roll back)")
