"""A store's names, ids and tags: moving tags, listing what is published, removing what no tag keeps.

The layout is in refs.py. What makes it safe to share:

- an id appears by one rename of a complete, read-only tree (publish.py), and never changes again;
- a tag is a symlink replaced by one rename, so a reader sees the old id or the new one, never none;
- changing tags and removing ids happen under an ``flock`` of ``NAME/.lock``, so gc cannot remove an id
  between its rename into place and its tags, and the tags one publish sets move together;
- temporary names start with ``.`` and carry host and pid, so what a killed publish left is told from
  live work and removed by the next publish or gc.

Every directory the store gets is made with the user's umask, inside a setgid group directory its group.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import shutil
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import _host, _pid_alive, parse_staging_name, staging_name  # one judge of leftovers
from .errors import OverlayError
from .oserrors import describe_os_error
from .refs import IDS, LOCK, TAGS, is_name_dir, list_ids, list_names, list_tags, tag_target

INFO_FILE = "overlay-venv-published.json"  # inside each id: who published it, when, from what, how big
_TAG_TEMP = ".tag-"
# Another host's leftovers cannot be judged by pid: they go when older than this.
FOREIGN_LEFTOVER_AGE = 24 * 3600


def store_error(action: str, where: Path, exc: OSError) -> OverlayError:
    """The one line for a store the system refuses: most often one the user may read but not write."""
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OverlayError(f"cannot {action} {where}: you cannot write there ({describe_os_error(exc)})")
    return OverlayError(f"cannot {action} {where}: {describe_os_error(exc)}")


def make_tree_writable(root: Path) -> None:
    """Give the owner write access to every directory under ``root`` again, so it can be removed."""
    for dirpath, _dirnames, _filenames in os.walk(root):
        with contextlib.suppress(OSError):
            mode = os.lstat(dirpath).st_mode
            os.chmod(dirpath, stat.S_IMODE(mode) | stat.S_IRWXU)


def remove_tree(root: Path) -> None:
    with contextlib.suppress(OSError):
        os.chmod(root, stat.S_IMODE(os.lstat(root).st_mode) | stat.S_IRWXU)
    make_tree_writable(root)
    shutil.rmtree(root, ignore_errors=True)


def _leftover(name: str, path: Path, now: float) -> bool:
    """Whether ``name`` is a temporary entry whose process is gone (this host) or that is old (others)."""
    owner = parse_staging_name(name)
    if owner is None and name.startswith(_TAG_TEMP):
        parts = name[len(_TAG_TEMP) :].rsplit("-", 2)  # .tag-HOST-PID-RANDOM
        owner = (parts[0], int(parts[1])) if len(parts) == 3 and parts[1].isdigit() else None
    if owner is None:
        return False
    if owner[0] == _host():
        return owner[1] != os.getpid() and not _pid_alive(owner[1])
    try:
        return now - os.lstat(path).st_mtime > FOREIGN_LEFTOVER_AGE
    except OSError:
        return False


def clean_leftovers(name_dir: Path) -> list[Path]:
    """Remove what killed publishes and gcs left in ``name_dir`` (staging trees, half-made tags)."""
    removed, now = [], time.time()
    for sub in (IDS, TAGS):
        try:
            names = os.listdir(name_dir / sub)
        except OSError:
            continue
        for name in names:
            path = name_dir / sub / name
            if not _leftover(name, path, now):
                continue
            if path.is_symlink() or not path.is_dir():
                with contextlib.suppress(OSError):
                    path.unlink()
            else:
                remove_tree(path)
            removed.append(path)
    return removed


@contextlib.contextmanager
def name_lock(name_dir: Path) -> Iterator[None]:
    """Hold ``NAME/.lock``: tag changes and gc of one name happen one at a time. A read-only
    descriptor is enough for flock, for a group member who did not create the file."""
    path = name_dir / LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except PermissionError:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise store_error("lock", name_dir, exc) from None
    except OSError as exc:
        raise store_error("lock", name_dir, exc) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def make_name_dir(name_dir: Path) -> None:
    """``name_dir`` with its ids/ and tags/, made as needed with the user's umask."""
    try:
        for sub in (IDS, TAGS):
            (name_dir / sub).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        top = name_dir
        while not top.parent.exists() and top.parent != top:
            top = top.parent
        raise store_error("publish into", top.parent if not top.exists() else name_dir, exc) from None


@dataclass
class TagChange:
    tag: str
    old: str | None
    new: str

    def text(self) -> str:
        if self.old == self.new:
            return f"tag {self.tag} already at @{self.new}"
        if self.old is None:
            return f"tag {self.tag} -> @{self.new}"
        return f"tag {self.tag} moved @{self.old} -> @{self.new}"


def set_tags_locked(name_dir: Path, id_: str, tags: list[str]) -> list[TagChange]:
    """Point ``tags`` at ``id_``; the caller holds :func:`name_lock`. Each tag is a new symlink
    renamed over the old one: readers see the old id or the new one at every moment."""
    if not (name_dir / IDS / id_).is_dir():
        raise OverlayError(f"{name_dir} has no id {id_}")
    changes = []
    for tag in tags:
        old = tag_target(name_dir, tag)
        changes.append(TagChange(tag, old, id_))
        if old == id_:
            continue
        temporary = name_dir / TAGS / f"{_TAG_TEMP}{_host()}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            os.symlink(f"../{IDS}/{id_}", temporary)
            os.replace(temporary, name_dir / TAGS / tag)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise store_error(f"set the tag {tag} in", name_dir, exc) from None
    return changes


def set_tags(name_dir: Path, id_: str, tags: list[str]) -> list[TagChange]:
    with name_lock(name_dir):
        return set_tags_locked(name_dir, id_, tags)


def tree_size(root: Path) -> int:
    """Bytes in the regular files under ``root``: measured when listed or removed, not at publish,
    where it would be one more walk on the critical path."""
    size = 0
    pending = [str(root)]
    while pending:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        size += entry.stat(follow_symlinks=False).st_size
        except OSError:
            continue
    return size


def read_info(id_dir: Path) -> dict:
    """The sidecar publish wrote into an id, or {} (damaged or missing: listing goes on)."""
    try:
        data = json.loads((id_dir / INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@dataclass
class Entry:
    name: str
    id: str
    tags: list[str]
    info: dict = field(default_factory=dict)
    path: Path | None = None

    def as_json(self) -> dict:
        base = self.info.get("base", {})
        return {
            "name": self.name,
            "id": self.id,
            "tags": self.tags,
            "path": str(self.path),
            "published": self.info.get("published"),
            "published_by": self.info.get("published_by"),
            "python": base.get("version"),
            "base": base.get("setup") or base.get("interpreter"),
            "size": tree_size(self.path) if self.path is not None else None,
            "distributions": self.info.get("distributions"),
        }


def entries(store: Path) -> list[Entry]:
    """Every published id in ``store`` (a store, or one name's directory), newest first per name."""
    names = [""] if is_name_dir(store) else list_names(store)
    found = []
    for name in names:
        name_dir = store / name if name else store
        tags = list_tags(name_dir)
        shown_name = name or store.name
        rows = []
        for id_ in list_ids(name_dir):
            path = name_dir / IDS / id_
            rows.append(Entry(shown_name, id_, sorted(tag for tag, at in tags.items() if at == id_), read_info(path), path))
        rows.sort(key=lambda entry: entry.info.get("published_at", 0), reverse=True)
        found += rows
    return found


@dataclass
class Removed:
    name: str
    id: str
    size: int


def _owned(path: Path) -> bool:
    try:
        return os.geteuid() == 0 or os.lstat(path).st_uid == os.geteuid()
    except OSError:
        return False


def collect(store: Path, older_than_days: float = 0, dry_run: bool = False) -> tuple[list[Removed], list[str]]:
    """Remove every id of ``store`` that no tag points at and that was published more than
    ``older_than_days`` ago; never a tagged one. Returns what went and notes (ids left, and why).
    An id is first renamed out of ids/ (one step: no one resolves it half-removed), then deleted."""
    if not store.is_dir():
        raise OverlayError(f"{store} is not a directory")
    removed: list[Removed] = []
    notes: list[str] = []
    cutoff = time.time() - older_than_days * 86400
    names = [""] if is_name_dir(store) else list_names(store)
    for name in names:
        name_dir = store / name if name else store
        shown = name or store.name
        with name_lock(name_dir):
            clean_leftovers(name_dir)
            tagged = set(list_tags(name_dir).values())
            for id_ in list_ids(name_dir):
                path = name_dir / IDS / id_
                if id_ in tagged:
                    continue
                info = read_info(path)
                published = info.get("published_at")
                if not isinstance(published, (int, float)):
                    published = os.lstat(path).st_mtime
                if published > cutoff:
                    continue
                if not _owned(path):
                    notes.append(f"kept {shown}@{id_}: published by uid {os.lstat(path).st_uid}, who (or root) can remove it")
                    continue
                size = tree_size(path)
                if not dry_run:
                    trash = name_dir / IDS / staging_name()  # a leftover of ours if we die now
                    try:
                        os.rename(path, trash)
                    except OSError as exc:
                        raise store_error("remove ids from", name_dir, exc) from None
                    remove_tree(trash)
                removed.append(Removed(shown, id_, size))
    return removed, notes
