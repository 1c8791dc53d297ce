"""References to published overlays, ``team/ana:v3``, ``team/ana@ID`` and ``STORE/team/ana:v3``, and
the one function the rest of the code calls to turn an overlay argument into a directory.

A *store* is a directory a group can read; ``OVERLAY_VENV_STORES`` lists the stores to search,
colon-separated like ``PATH``. Inside a store every published name has a directory of its own::

    STORE/team/ana/ids/ID/        an overlay, relocated here and read-only; an ID never changes
    STORE/team/ana/tags/v3        a symlink ``../ids/ID``, replaced in one rename when the tag moves
    STORE/team/ana/.lock          flock'ed while tags change and by gc (see store.py)

A reference is recognised by its last path component holding ``:TAG`` or ``@ID``; a directory of
that very name wins (an overlay may be called anything). Starting with ``/``, ``./``, ``../`` or
``~`` it names the name's directory directly (``/eos/group/store/team/ana:v3``); otherwise the name
is looked up in each store in turn, and the first store that has that name with that tag or id wins.

Only ``os`` and ``re`` are imported: ``find_overlay`` calls :func:`overlay_argument` for every
command, and resolving must stay well under the 5 ms budget ``run`` allows it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import OverlayError

STORES_VARIABLE = "OVERLAY_VENV_STORES"
IDS = "ids"
TAGS = "tags"
LOCK = ".lock"
ID_LENGTH = 16
MIN_ID_PREFIX = 4

# A name is one or more components; ids/ and tags/ are the layout's own, and `:`/`@` end a name.
_COMPONENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
_ID = re.compile(f"[0-9a-f]{{{ID_LENGTH}}}")
_ID_PREFIX = re.compile(f"[0-9a-f]{{{MIN_ID_PREFIX},{ID_LENGTH}}}")
_RESERVED = (IDS, TAGS)


@dataclass(frozen=True)
class Reference:
    """A parsed reference: ``name`` (``team/ana``) with either ``tag`` or ``id`` (maybe a prefix);
    ``where`` is the name's directory when the reference gave it as a path, else None (search)."""

    text: str
    name: str
    tag: str | None = None
    id: str | None = None
    where: str | None = None


@dataclass(frozen=True)
class Resolved:
    reference: Reference
    name_dir: Path  # STORE/team/ana
    id: str

    @property
    def path(self) -> Path:
        """The published overlay itself: what every command works on."""
        return self.name_dir / IDS / self.id

    @property
    def pinned(self) -> str:
        """The same overlay named so that it never changes: ``team/ana@ID`` (or ``STORE/team/ana@ID``)."""
        prefix = self.reference.where if self.reference.where is not None else self.reference.name
        return f"{prefix}@{self.id}"


def is_path_like(text: str) -> bool:
    return text.startswith(("/", "./", "../", "~"))


def looks_like_reference(text: str) -> bool:
    """Whether ``text`` has the shape of a reference (cheap: no file system access)."""
    last = text.rstrip("/").rsplit("/", 1)[-1]
    return ":" in last or "@" in last


def name_problem(name: str) -> str | None:
    """Why ``name`` (``team/ana``) cannot name a published overlay, or None."""
    parts = name.split("/")
    for part in parts:
        if not _COMPONENT.fullmatch(part):
            return (
                f"{name!r} is not a valid name: each part of it must start with a letter or digit and hold only "
                "letters, digits and . _ + -"
            )
        if part in _RESERVED:
            return f"{name!r} is not a valid name: {part!r} is a directory of the store's own layout"
    return None


def tag_problem(tag: str) -> str | None:
    if _TAG.fullmatch(tag):
        return None
    return f"{tag!r} is not a valid tag: it must start with a letter or digit and hold only letters, digits and . _ + -"


def parse_reference(text: str) -> Reference:
    """Parse ``text`` (which :func:`looks_like_reference`); raises OverlayError saying what is wrong."""
    head, _, last = text.rstrip("/").rpartition("/")
    cut = min(i for i in (last.find(":"), last.find("@")) if i >= 0)
    base, sep, rest = last[:cut], last[cut], last[cut + 1 :]
    path = f"{head}/{base}" if head else base
    if sep == ":":
        problem = tag_problem(rest)
        tag, id_ = rest, None
    else:
        problem = (
            None
            if _ID_PREFIX.fullmatch(rest)
            else (f"{rest!r} is not an id: ids are {ID_LENGTH} hex digits (at least {MIN_ID_PREFIX} of them)")
        )
        tag, id_ = None, rest
    if problem:
        raise OverlayError(f"bad reference {text!r}: {problem}")
    if is_path_like(path):
        where = os.path.abspath(os.path.expanduser(path))
        return Reference(text, name=base, tag=tag, id=id_, where=where)
    problem = name_problem(path)
    if problem:
        raise OverlayError(f"bad reference {text!r}: {problem} (give a store's path with ./ or /)")
    return Reference(text, name=path, tag=tag, id=id_)


def stores(environ: dict | os._Environ | None = None) -> list[Path]:
    """The stores ``OVERLAY_VENV_STORES`` names, in order, empty entries skipped."""
    value = (os.environ if environ is None else environ).get(STORES_VARIABLE, "")
    return [Path(os.path.abspath(os.path.expanduser(entry))) for entry in value.split(":") if entry]


def is_name_dir(path: Path) -> bool:
    return os.path.isdir(path / IDS)


def tag_target(name_dir: Path, tag: str) -> str | None:
    """The id ``name_dir``'s tag points at, or None if there is no such tag (or it is no tag of ours)."""
    try:
        target = os.readlink(name_dir / TAGS / tag)
    except OSError:
        return None
    head, _, found = target.rpartition("/")
    return found if head == f"../{IDS}" and _ID.fullmatch(found) else None


def list_ids(name_dir: Path) -> list[str]:
    try:
        return sorted(entry for entry in os.listdir(name_dir / IDS) if _ID.fullmatch(entry))
    except OSError:
        return []


def list_tags(name_dir: Path) -> dict[str, str]:
    """tag -> id for every tag of ``name_dir`` (temporary and foreign entries left out)."""
    try:
        names = os.listdir(name_dir / TAGS)
    except OSError:
        return {}
    found = {tag: tag_target(name_dir, tag) for tag in sorted(names) if _TAG.fullmatch(tag)}
    return {tag: id_ for tag, id_ in found.items() if id_ is not None}


def list_names(store: Path, limit: int = 10000) -> list[str]:
    """The names published in ``store`` (``team/ana``, ...), sorted; at most ``limit`` directories
    are looked at, so that completion on a huge tree stays quick."""
    found, pending, seen = [], [""], 0
    while pending and seen < limit:
        rel = pending.pop()
        here = store / rel if rel else store
        try:
            entries = sorted(os.scandir(here), key=lambda entry: entry.name)
        except OSError:
            continue
        for entry in entries:
            seen += 1
            if not entry.is_dir() or not _COMPONENT.fullmatch(entry.name) or entry.name in _RESERVED:
                continue
            child = f"{rel}/{entry.name}" if rel else entry.name
            if is_name_dir(store / child):
                found.append(child)
            else:
                pending.append(child)
    return sorted(found)


def _find_id(name_dir: Path, reference: Reference) -> str | None:
    if reference.tag is not None:
        id_ = tag_target(name_dir, reference.tag)
        return id_ if id_ is not None and os.path.isdir(name_dir / IDS / id_) else None
    if len(reference.id) == ID_LENGTH:
        return reference.id if os.path.isdir(name_dir / IDS / reference.id) else None
    matches = [id_ for id_ in list_ids(name_dir) if id_.startswith(reference.id)]
    if len(matches) > 1:
        shown = ", ".join(matches[:5])
        raise OverlayError(
            f"{reference.text}: the id prefix {reference.id!r} matches {len(matches)} ids ({shown}); give more digits"
        )
    return matches[0] if matches else None


def _missing(reference: Reference, name_dirs: list[Path]) -> str:
    what = f"tag {reference.tag!r}" if reference.tag is not None else f"id {reference.id!r}"
    known = []
    for name_dir in name_dirs:
        tags = list_tags(name_dir)
        known += [f"{tag}" for tag in tags] if reference.tag is not None else list_ids(name_dir)
    listed = ", ".join(sorted(set(known))[:10]) or "none"
    where = ", ".join(str(path) for path in name_dirs)
    kind = "tags" if reference.tag is not None else "ids"
    return f"{reference.text}: {where} has no {what} ({kind} there: {listed})"


def resolve(text: str, environ: dict | None = None) -> Resolved:
    """Resolve the reference ``text`` to a published id; raises OverlayError with one line."""
    reference = parse_reference(text)
    if reference.where is not None:
        name_dir = Path(reference.where)
        if not is_name_dir(name_dir):
            raise OverlayError(f"{text}: {name_dir} is not a published name (no {IDS}/ in it)")
        id_ = _find_id(name_dir, reference)
        if id_ is None:
            raise OverlayError(_missing(reference, [name_dir]))
        return Resolved(reference, name_dir, id_)
    searched = stores(environ)
    if not searched:
        raise OverlayError(
            f"{text} looks like a reference to a published overlay, but {STORES_VARIABLE} names no store "
            f"(export {STORES_VARIABLE}=/path/to/store, or write ./{text} for a directory here)"
        )
    having = [store / reference.name for store in searched if is_name_dir(store / reference.name)]
    for name_dir in having:
        id_ = _find_id(name_dir, reference)
        if id_ is not None:
            return Resolved(reference, name_dir, id_)
    if not having:
        raise OverlayError(
            f"{text}: no store has {reference.name!r} (searched {STORES_VARIABLE}: {', '.join(map(str, searched))})"
        )
    raise OverlayError(_missing(reference, having))


def overlay_argument(name: str | os.PathLike) -> str | os.PathLike:
    """What ``find_overlay`` should look at for the argument ``name``: a reference's published id
    directory, anything else unchanged (an existing path wins over a reference of the same spelling)."""
    text = os.fspath(name)
    if not looks_like_reference(text) or os.path.lexists(text):
        return name
    return resolve(text).path


def tag_path(name: str | os.PathLike) -> Path:
    """``STORE/team/ana/tags/v3`` for a tag reference: a path that always leads to the id the tag
    points at when it is opened (``wrap --follow-tag``)."""
    text = os.fspath(name)
    if not looks_like_reference(text) or os.path.lexists(text):
        raise OverlayError(f"{text} is not a reference to a tag (team/ana:TAG)")
    resolved = resolve(text)
    if resolved.reference.tag is None:
        raise OverlayError(f"{text} names an id, which never moves; follow a tag instead (team/ana:TAG)")
    return resolved.name_dir / TAGS / resolved.reference.tag
