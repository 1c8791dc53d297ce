"""``publish``: a relocated, read-only copy of an overlay in a store, under an id derived from what it
holds; and the way back, a private writable copy of a published overlay (``create --from REF``).

The copy is made by ``cp`` (the benchmark's yardstick is ``cp -a``; a Python copy loop is several times
slower on site-packages' thousands of small files) into a staging directory inside the store's
``ids/``, made correct at its final path by the same relocation ``unpack`` uses (every script
re-rendered from the record, shebangs and pyvenv.cfg repointed), made read-only, and renamed into
place: one rename within one directory, so a reader sees the whole id or none. A killed publish
leaves only a hidden staging directory, removed by its janitor (atomic.py) or the next publish/gc.

The id is a digest of the base (interpreter, version, PYTHONPATH, setup) and of every distribution's
name, version and file hashes from its RECORD (paths outside site-packages left out, they name the
overlay's place): the same content published twice gets the same id, and the second publish copies
nothing. Files not installed by any distribution do not count.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import Staging
from .errors import OverlayError
from .oserrors import describe_os_error
from .record import METADATA_FILE, OverlayRecord, find_overlay, overlay_problem, read_record
from .refs import ID_LENGTH, IDS, looks_like_reference, name_problem, resolve, tag_problem
from .relocate import RELOCATE_SCRIPT, movable_problems, read_location, relocate_tree
from .store import (
    INFO_FILE,
    TagChange,
    clean_leftovers,
    make_name_dir,
    name_lock,
    remove_tree,
    set_tags_locked,
    store_error,
)
from .treelinks import tree_link_problems

ID_SCHEME = b"overlay-venv publish id 1\n"
DEFAULT_TAG = "latest"
# The live overlay's own bookkeeping (its lock file, an install's journal): not part of a copy.
_PRIVATE_PREFIX = ".overlay-venv"


def _record_lines(dist_info: str) -> list[str]:
    """``path,hash`` of the files a distribution installed inside site-packages, sorted."""
    try:
        with open(os.path.join(dist_info, "RECORD"), encoding="utf-8", errors="replace") as handle:
            rows = handle.read().splitlines()
    except OSError:
        return []
    kept = []
    for row in rows:
        path, _, rest = row.partition(",")
        digest = rest.partition(",")[0]
        if digest and not path.startswith(("..", "/")) and ".dist-info/" not in path:
            kept.append(f"{path},{digest}")
    return sorted(kept)


def distributions(overlay: Path, record: OverlayRecord) -> list[str]:
    """``name-version`` of each distribution in the overlay's own site-packages, sorted."""
    found = set()
    for rel in record.site_packages:
        with contextlib.suppress(OSError):
            found.update(entry[: -len(".dist-info")] for entry in os.listdir(overlay / rel) if entry.endswith(".dist-info"))
    return sorted(found)


def content_id(overlay: Path, record: OverlayRecord) -> str:
    """The id of what ``overlay`` holds (module docstring): 16 hex digits of a sha256."""
    digest = hashlib.sha256(ID_SCHEME)
    base = record.base
    facts = [base.implementation, base.version, base.interpreter, base.pythonpath, base.setup, base.keep_setup]
    digest.update(json.dumps([facts, record.system_site_packages]).encode() + b"\n")
    if record.lowers:  # a stacked overlay is its own content on top of exactly these lowers
        digest.update(json.dumps([[lower.path, lower.fingerprint] for lower in record.lowers]).encode() + b"\n")
    for rel in sorted(set(record.site_packages)):
        site = overlay / rel
        for dist in sorted(entry for entry in os.listdir(site) if entry.endswith(".dist-info")) if site.is_dir() else ():
            digest.update(f"{dist}\n".encode())
            digest.update("\n".join(_record_lines(str(site / dist))).encode() + b"\n")
    return digest.hexdigest()[:ID_LENGTH]


def _die_with_parent() -> None:  # runs in the child between fork and exec
    import ctypes

    ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL: a killed publish stops copying too


def copy_tree(source: Path, target: Path, meanwhile: Callable[[], None] | None = None, umask: int = 0o022) -> None:
    """Copy the contents of ``source`` into the existing directory ``target``: times and hard links
    kept (bytecode stays valid), symlinks copied as symlinks, modes those of the source under
    ``umask``, owner and group the copier's (the group of a setgid store directory). ``meanwhile``
    runs while cp copies (cp waits on the disk, the checks on the CPU); if it raises, the copy is
    stopped and the error passes on."""
    command = ["cp", "-R", "-P", "--preserve=timestamps,links", "--", f"{source}/.", str(target)]

    def hook() -> None:  # in the child, between fork and exec
        os.umask(umask)
        if sys.platform.startswith("linux"):
            _die_with_parent()

    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=hook) as proc:
        try:
            if meanwhile is not None:
                meanwhile()
        except BaseException:
            proc.kill()
            raise
        errors = proc.stderr.read()
    if proc.returncode != 0:
        lines = [line for line in errors.splitlines() if line.strip()]
        raise OverlayError(f"cannot copy {source} to {target.parent}: {lines[-1] if lines else f'cp exited {proc.returncode}'}")
    for name in os.listdir(target):
        if name.startswith(_PRIVATE_PREFIX):
            remove_tree(target / name) if (target / name).is_dir() else (target / name).unlink()


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def set_modes(root: Path, umask: int, setgid: bool = False, top: bool = True, owner_writes: bool = False) -> None:
    """Give every file and directory under ``root`` (``root`` too, with ``top``) the modes a new one
    gets under ``umask`` (a file not executable by anyone stays so), plus owner write with
    ``owner_writes``; directories the setgid bit with ``setgid``. Symlinks have no mode of their own."""
    keep = 0o777 & ~umask | (stat.S_IRWXU if owner_writes else 0)
    gid_bit = stat.S_ISGID if setgid else 0
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            path = os.path.join(dirpath, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISDIR(mode):
                os.chmod(path, keep | gid_bit)
            elif not stat.S_ISLNK(mode):
                os.chmod(path, (0o777 if mode & 0o111 else 0o666) & keep)
    if top:
        os.chmod(root, keep | gid_bit)


def source_location(overlay: Path, record: OverlayRecord) -> str:
    """The place the overlay's files were last written for (its relocate script says), else its path."""
    script = overlay / record.bin_dir / RELOCATE_SCRIPT
    with contextlib.suppress(OSError):
        if script.is_file() and not script.is_symlink():
            found = read_location(script.read_text(encoding="utf-8", errors="replace"))
            if found:
                return found
    return str(overlay)


@dataclass
class Published:
    name_dir: Path
    id: str
    copied: bool  # False: that content was published already
    changes: list[TagChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.name_dir / IDS / self.id


def _check_dest(dest: Path, overlay: Path) -> None:
    problem = name_problem(dest.name)
    if problem:
        raise OverlayError(f"cannot publish to {dest}: {problem}")
    if dest == overlay or str(dest).startswith(str(overlay) + os.sep) or str(overlay).startswith(str(dest) + os.sep):
        raise OverlayError(f"cannot publish {overlay} to {dest}: one is inside the other")
    if ":" in str(dest):
        raise OverlayError(f"cannot publish to {dest}: a store path cannot hold ':' (it would break PYTHONPATH)")


def publish(name: str | os.PathLike, dest: str | os.PathLike, tags: list[str]) -> Published:
    """Publish the overlay ``name`` (a path or a reference) into the name directory ``dest``
    (``STORE/team/ana``) and point ``tags`` (default: latest) at it."""
    from .overlay_lock import command_text, overlay_lock

    tags = list(dict.fromkeys(tags or [DEFAULT_TAG]))
    for tag in tags:
        problem = tag_problem(tag)
        if problem:
            raise OverlayError(problem)
    overlay = find_overlay(name)
    record = read_record(overlay)
    dest = Path(os.path.abspath(os.path.expanduser(dest)))
    _check_dest(dest, overlay)
    make_name_dir(dest)
    clean_leftovers(dest)
    with overlay_lock(overlay, command_text()):  # no install changes it while we read and copy it
        id_ = content_id(overlay, record)
        result = Published(dest, id_, copied=False)
        final = dest / IDS / id_
        if not final.is_dir():
            result.copied = _build(overlay, record, final, name)
    with name_lock(dest):
        # gc takes this lock too: between the rename and the tags no gc can take the new id away.
        if not final.is_dir():
            raise OverlayError(f"{final} was removed while publishing (a gc?); publish again")
        result.changes = set_tags_locked(dest, id_, tags)
    return result


def _refuse_unmovable(overlay: Path, record: OverlayRecord) -> None:
    """What pack refuses, publish refuses: editables, symlinks that would lead elsewhere, and so on."""
    problems = movable_problems(overlay, record.bin_dir) or tree_link_problems(overlay, record.bin_dir)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise OverlayError(f"cannot publish {overlay}, it could not work from the store: {shown}")


def frozen_umask(umask: int) -> int:
    """The umask published files are made under: no write bit for anyone, others as the user's umask
    says, owner and group what the overlay's own files give them (pip writes 0644 and 0755)."""
    return 0o222 | (umask & 0o007)


def _build(overlay: Path, record: OverlayRecord, final: Path, name) -> bool:
    """Copy, relocate, freeze and rename into place ``final``; False when another publish of the
    same content finished first.

    cp runs under :func:`frozen_umask` and without keeping modes, so what it creates is read-only
    already (a setgid store directory's group and bit passed on by the kernel) and no second walk
    over thousands of files is needed; only bin/, which relocation rewrites, and the top are redone."""
    umask = frozen_umask(current_umask())
    setgid = bool(os.stat(final.parent).st_mode & stat.S_ISGID)
    try:
        with Staging(final) as stage:
            try:
                # While cp copies, the checks pack makes (the CPU's work while cp waits on the disk).
                copy_tree(overlay, stage.path, lambda: _refuse_unmovable(overlay, record), umask=umask)
                bin_dir = stage.path / record.bin_dir
                # Writable for relocation; its setgid bit kept, or the scripts written anew lose the group.
                os.chmod(bin_dir, stat.S_IMODE(os.stat(bin_dir).st_mode) | stat.S_IRWXU)
                previous = os.umask(umask)  # the files relocation writes anew are read-only too
                try:
                    relocate_tree(stage.path, source_location(overlay, record), final, record)
                    info = {
                        "id": final.name,
                        "published_at": time.time(),
                        "published": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                        "published_by": _user(),
                        "source": str(overlay),
                        "source_argument": os.fspath(name),
                        "distributions": distributions(overlay, record),
                        "base": {
                            "implementation": record.base.implementation,
                            "version": record.base.version,
                            "interpreter": record.base.interpreter,
                            "setup": record.base.setup,
                        },
                    }
                    (stage.path / INFO_FILE).write_text(json.dumps(info, indent=1, sort_keys=True) + "\n", encoding="utf-8")
                finally:
                    os.umask(previous)
                set_modes(bin_dir, umask, setgid)  # relocation gives its scripts fixed modes (0755)
                os.chmod(stage.path, 0o777 & ~umask | (stat.S_ISGID if setgid else 0))
                try:
                    stage.commit(replace=False)
                except FileExistsError:
                    return False  # the same content, published by someone else meanwhile
                return True
            finally:
                if stage.path.exists():  # read-only now: give it back to the owner so it can go
                    remove_tree(stage.path)
    except OSError as exc:
        raise store_error("publish into", final.parent.parent, exc) from None


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def private_copy(reference: str, dest: str | os.PathLike, clear: bool = False) -> tuple[Path, str]:
    """``create DEST --from REF``: a writable copy of the published overlay ``reference`` at ``dest``,
    relocated there; returns (dest, the pinned reference copied). Built beside ``dest`` and renamed
    into place, like every create."""
    resolved = resolve(reference)
    source = resolved.path
    record = read_record(source)
    dest = Path(os.path.abspath(dest))
    if os.path.lexists(dest) and not (dest.is_dir() and not any(dest.iterdir())):
        problem = overlay_problem(dest)
        if not clear or problem:
            raise OverlayError(f"{dest} exists; pass --clear to replace it (only an overlay is replaced)")
    if not dest.parent.is_dir():
        raise OverlayError(f"directory {dest.parent} does not exist (create it first)")
    try:
        with Staging(dest) as stage:
            copy_tree(source, stage.path, umask=0o077)  # private until its modes are set below
            set_modes(stage.path, current_umask(), owner_writes=True)  # the user's own, writable
            (stage.path / INFO_FILE).unlink(missing_ok=True)
            relocate_tree(stage.path, source_location(source, record), dest, record)
            try:
                stage.commit(replace=clear and (dest / METADATA_FILE).is_file())
            except FileExistsError:
                raise OverlayError(f"{dest} was created by another process meanwhile; left it as it is") from None
    except OSError as exc:
        raise OverlayError(f"cannot copy {resolved.pinned} to {dest}: {describe_os_error(exc)}") from None
    return dest, resolved.pinned


def is_reference_argument(value: str) -> bool:
    """Whether ``create --from VALUE`` names a published overlay rather than a lock file."""
    return looks_like_reference(value) and not os.path.lexists(value)
