"""``pack`` and ``unpack``: an overlay as one gzipped tar, and back at another place.

The archive holds the overlay's files relative to its top (``tar tzf`` shows ``bin/activate``, not
``myenv/bin/activate``), so it unpacks into any directory; ``bin/overlay-venv-relocate`` in it is
always rendered fresh and names the directory the overlay was packed from. ``overlay-venv unpack``
reads that name, re-renders every script for the destination and moves the result into place whole;
without overlay-venv, ``tar xzf`` and running that script does the same by text replacement.
"""

from __future__ import annotations

import io
import os
import posixpath
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import Staging
from .errors import OverlayError
from .kernel import unpack_notes
from .oserrors import READ_ERRORS, describe_os_error, not_text_problem
from .paths import path_problem
from .record import METADATA_FILE, OverlayRecord, read_record
from .relocate import (
    RELOCATE_SCRIPT,
    files_naming,
    movable_problems,
    read_location,
    relocate_tree,
    render_relocate_script,
    text_replacement_problem,
)
from .treelinks import Entry, Lookup, link_problem, tree_link_problems


@dataclass
class PackResult:
    size: int
    members: int
    notes: list[str] = field(default_factory=list)


@dataclass
class UnpackResult:
    dest: Path
    source: str
    notes: list[str] = field(default_factory=list)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def temporary_beside(path: Path) -> Path:
    return path.parent / f".{path.name}.overlay-venv-{os.getpid()}.tmp"


def publish_file(temporary: Path, output: Path, force: bool) -> None:
    """Move a finished file into place: over an existing one only with ``force``, and without it
    never over a file that appeared meanwhile (a hard link fails if the name exists)."""
    if force:
        os.replace(temporary, output)
        return
    try:
        os.link(temporary, output)
    except FileExistsError:
        raise OverlayError(f"{str(output)!r} exists; pass --force to overwrite it") from None
    finally:
        temporary.unlink()


def pack_overlay(overlay: Path, output: Path, force: bool = False) -> PackResult:
    """Write ``overlay`` into the gzipped tar ``output``; refuse what cannot move. What the system
    refuses (a full disk, an unwritable directory, a name too long) is one line; no partial archive."""
    try:
        return _pack_overlay(overlay, output, force)
    except OSError as exc:
        raise OverlayError(f"cannot pack {overlay} into {str(output)!r}: {describe_os_error(exc)}") from None


def _pack_overlay(overlay: Path, output: Path, force: bool) -> PackResult:
    overlay = Path(os.path.abspath(overlay))
    output = Path(os.path.abspath(output))
    record = read_record(overlay)
    if output == overlay or str(output).startswith(str(overlay) + os.sep):
        raise OverlayError(f"the archive {str(output)!r} cannot be inside the overlay it packs")
    if not output.parent.is_dir():
        raise OverlayError(f"directory {str(output.parent)!r} does not exist (create it first)")
    if (output.exists() or output.is_symlink()) and not force:
        raise OverlayError(f"{str(output)!r} exists; pass --force to overwrite it")
    # The relocation problems, then where every symlink leads whatever the chain (an unpack refuses
    # the same links, so an archive pack writes always unpacks).
    problems = movable_problems(overlay, record.bin_dir) or tree_link_problems(overlay, record.bin_dir)
    if problems:
        raise OverlayError(f"cannot pack {overlay}, it could not work elsewhere: {_listed(problems)}")
    if record.lowers:
        from .stack import lower_pack_problem

        problem = lower_pack_problem(overlay, record.lowers)
        if problem:
            raise OverlayError(problem)

    relocate_member = posixpath.join(record.bin_dir, RELOCATE_SCRIPT)
    script = render_relocate_script(overlay, record.bin_dir).encode()
    temporary = temporary_beside(output)
    members = 0
    try:
        # PAX: any file name length and non-ASCII names, read by every tar of the last twenty years.
        with tarfile.open(temporary, "w:gz", format=tarfile.PAX_FORMAT, compresslevel=6) as tar:
            for dirpath, dirnames, filenames in os.walk(overlay):
                dirnames.sort()
                for name in sorted(dirnames + filenames):
                    path = os.path.join(dirpath, name)
                    arcname = Path(os.path.relpath(path, overlay)).as_posix()
                    if arcname == relocate_member:
                        continue  # written fresh below, for the place the overlay is packed from
                    tar.add(path, arcname=arcname, recursive=False)
                    members += 1
            info = tarfile.TarInfo(relocate_member)
            info.size = len(script)
            info.mode = 0o755
            info.mtime = int(time.time())
            info.uid, info.gid = os.getuid(), os.getgid()
            tar.addfile(info, io.BytesIO(script))
            members += 1
        publish_file(temporary, output, force)
    finally:
        if temporary.exists():
            temporary.unlink()

    notes = []
    if record.lowers:  # the lower overlays are not in the archive: like the release, they must be there
        paths = ", ".join(lower.path for lower in record.lowers)
        notes.append(f"note: {overlay} is stacked on {paths}: the target needs them at the same paths, as it needs the release")
    problem = text_replacement_problem(str(overlay))
    if problem:
        notes.append(f"note: {problem}: unpack this archive with `overlay-venv unpack`; bin/{RELOCATE_SCRIPT} cannot move it")
    return PackResult(size=output.stat().st_size, members=members, notes=notes)


def _member_problem(member: tarfile.TarInfo, bin_dir: str = "bin") -> str | None:
    """Why an archive member must not be extracted on its own, or None. The archive may come from
    anywhere. Where a symlink leads is judged with the whole archive (:func:`_archive_problems`)."""
    name = member.name
    parts = name.split("/")
    if name.startswith("/") or ".." in parts:
        return f"{name!r} would land outside the destination"
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        return f"{name!r} is a device, fifo or other special file"
    if posixpath.normpath(name) == "." and not member.isdir():
        return f"{name!r} is not a file name"
    if member.islnk():
        target = member.linkname.split("/")
        if member.linkname.startswith("/") or ".." in target:
            return f"{name!r} is a hard link to {member.linkname!r}, outside the destination"
    return None


def _archive_lookup(kinds: dict[str, tarfile.TarInfo]) -> Lookup:
    """``treelinks`` lookup over the tree the members would make, parents tar creates included."""
    parents = set()
    for name in kinds:
        parts = name.split("/")
        parents.update("/".join(parts[:depth]) for depth in range(1, len(parts)))

    def lookup(rel: str) -> Entry | None:
        member = kinds.get(rel)
        if member is None:
            return ("dir", None) if rel in parents else None
        if member.issym():
            return ("link", member.linkname)
        return ("dir", None) if member.isdir() else ("file", None)

    return lookup


def _archive_problems(members: list[tarfile.TarInfo], bin_dir: str) -> list[str]:
    """Why the archive's members must not be extracted, one phrase each; [] if nothing. Beyond each
    member on its own: no name twice (a file extracted over a symlink is written through it), nothing
    under a symlink or a file, and hard links only to a regular file met before (``pack`` writes no
    others; extracting a link to a symlink links its target)."""
    problems = []
    kinds: dict[str, tarfile.TarInfo] = {}
    for member in members:
        name = posixpath.normpath(member.name)
        if name in kinds and not (member.isdir() and kinds[name].isdir()):
            problems.append(f"{member.name!r} appears more than once")
        kinds[name] = member
        problem = _member_problem(member, bin_dir)
        if problem:
            problems.append(problem)
        elif member.islnk():
            target = kinds.get(posixpath.normpath(member.linkname))
            if target is None or not target.isreg():
                problems.append(f"{member.name!r} is a hard link to {member.linkname!r}, not to a file before it")
    for member in members:
        parts = posixpath.normpath(member.name).split("/")
        for depth in range(1, len(parts)):
            parent = kinds.get("/".join(parts[:depth]))
            if parent is not None and not parent.isdir():
                what = "symlink" if parent.issym() else "file"
                problems.append(f"{member.name!r} lies under the {what} {parent.name!r}")
                break
    # Where each symlink leads, resolved through the others (a chain of harmless-looking links can
    # lead out), against the tree the whole archive makes: links may point at later members.
    lookup = _archive_lookup(kinds)
    for name, member in kinds.items():
        if member.issym():
            problem = link_problem(name, member.linkname, lookup, bin_dir)
            if problem:
                problems.append(problem)
    return problems


def _listed(problems: list[str], shown: int = 5) -> str:
    """The first few problems, and how many more: a hostile archive can have thousands."""
    text = "; ".join(problems[:shown])
    return text + (f"; and {len(problems) - shown} more" if len(problems) > shown else "")


def _bin_dir_problem(bin_dir: object) -> str | None:
    if (
        not isinstance(bin_dir, str)
        or not bin_dir
        or bin_dir.startswith("/")
        or any(part in ("", ".", "..") for part in bin_dir.split("/"))
    ):
        return f"its {METADATA_FILE} names {bin_dir!r} as the scripts directory, which is no directory inside the overlay"
    return None


def _archived_bin_dir(tar: tarfile.TarFile, archive: Path, members: list[tarfile.TarInfo]) -> str:
    """The scripts directory the archive's record names, checked to be a plain path inside it."""
    found = [member for member in members if posixpath.normpath(member.name) == METADATA_FILE]
    if not found:
        raise OverlayError(
            f"{str(archive)!r} does not hold an overlay (no {METADATA_FILE} at its top); make it with overlay-venv pack"
        )
    if len(found) > 1 or not found[0].isreg():
        raise OverlayError(f"refusing to unpack {str(archive)!r}: its {METADATA_FILE} is not one regular file")
    try:
        handle = tar.extractfile(found[0])
        record = OverlayRecord.from_json(handle.read().decode("utf-8")) if handle else None
    except (*READ_ERRORS, tarfile.TarError, ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        raise OverlayError(f"{str(archive)!r} holds a damaged {METADATA_FILE}: {describe_os_error(exc)}") from None
    bin_dir = record.bin_dir if record else None
    problem = _bin_dir_problem(bin_dir)
    if problem:
        raise OverlayError(f"refusing to unpack {str(archive)!r}: {problem}")
    return bin_dir


def _owner_can_clean(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
    """tar's own filter, plus: directories stay writable by us, so that a failed unpack can remove
    what it extracted (a directory of mode 0555 would keep its files when we are not root)."""
    member = tarfile.tar_filter(member, path)
    if member.isdir() and member.mode is not None:
        member = member.replace(mode=member.mode | 0o700, deep=False)
    return member


def _extract(tar: tarfile.TarFile, members: list[tarfile.TarInfo], path: Path, archive: Path) -> None:
    try:
        if hasattr(tarfile, "tar_filter"):
            # tar's filter, not "data": the overlay's bin/python is an absolute symlink to the release's
            # interpreter, which the data filter refuses. Members were checked before.
            tar.extractall(path, members=members, filter=_owner_can_clean)
        else:
            for member in members:
                if member.isdir():
                    member.mode |= 0o700
            tar.extractall(path, members=members)
        # To the end of the compressed stream: tar stops at its end-of-archive blocks, before the
        # gzip trailer whose checksum tells a complete archive from a truncated or corrupted one.
        while tar.fileobj.read(1 << 20):
            pass
    except (*READ_ERRORS, tarfile.TarError) as exc:  # tarfile.FilterError is a TarError
        raise OverlayError(f"cannot unpack {str(archive)!r}: {describe_os_error(exc)}") from None


def _real_directory(root: Path, rel: str) -> bool:
    """Whether ``root/rel`` is a directory reached through no symlink: what is written there stays
    under ``root``."""
    path = root
    for part in rel.split("/"):
        path = path / part
        if path.is_symlink() or not path.is_dir():
            return False
    return True


def check_unpack_destination(dest: Path) -> Path:
    """Refuse what cannot become the overlay at ``dest`` (absolute); return the directory the final
    rename creates: ``dest`` itself, or its outermost missing parent, so that the missing parents
    appear together with the overlay, or not at all."""
    problem = path_problem(dest) or not_text_problem("the path", str(dest))
    if problem:
        raise OverlayError(f"cannot unpack an overlay there: {problem}")
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise OverlayError(f"{str(dest)!r} exists and is not a directory")
    if dest.is_dir() and any(dest.iterdir()):
        raise OverlayError(f"{str(dest)!r} exists and is not empty; unpack into a new directory")
    top = dest
    while not os.path.lexists(top.parent):
        top = top.parent
    if not top.parent.is_dir():
        raise OverlayError(f"cannot unpack an overlay there: {str(top.parent)!r} is not a directory")
    if not os.access(top.parent, os.W_OK | os.X_OK):
        raise OverlayError(f"cannot unpack an overlay there: cannot write in {str(top.parent)!r}")
    return top


def unpack_overlay(archive: Path, dest: Path) -> UnpackResult:
    """Unpack ``archive`` (made by :func:`pack_overlay`) into ``dest`` and point it there.

    Built in a staging directory beside ``dest`` and renamed into place when complete, like
    ``create``: an unpack that fails or is killed leaves nothing under ``dest``. Missing parents of
    ``dest`` are made inside the staging directory and appear with that one rename too.
    """
    dest = Path(os.path.abspath(dest))
    try:
        top = check_unpack_destination(dest)
    except OSError as exc:  # a name too long, a parent we may not enter
        raise OverlayError(f"cannot unpack an overlay there: {describe_os_error(exc)}") from None
    try:
        tar = tarfile.open(archive, "r:*")
    except (*READ_ERRORS, tarfile.TarError) as exc:
        raise OverlayError(f"cannot read {str(archive)!r} as a tar archive: {describe_os_error(exc)}") from None
    with tar:
        try:
            members = tar.getmembers()
        except (*READ_ERRORS, tarfile.TarError) as exc:  # a truncated .tgz ends in EOFError
            raise OverlayError(f"cannot read {str(archive)!r} as a tar archive: {describe_os_error(exc)}") from None
        bin_dir = _archived_bin_dir(tar, archive, members)
        problems = _archive_problems(members, bin_dir)
        if problems:
            raise OverlayError(f"refusing to unpack {str(archive)!r}: {_listed(problems)}")
        try:
            with Staging(top) as stage:
                tree = stage.path / dest.relative_to(top)  # the overlay: stage.path itself unless parents were missing
                tree.mkdir(parents=True, exist_ok=True)
                _extract(tar, members, tree, archive)
                record = read_record(tree)
                if not _real_directory(tree, record.bin_dir):
                    raise OverlayError(f"refusing to unpack {str(archive)!r}: {record.bin_dir!r} in it is not a directory")
                # The same rule once more, on what tar actually made: nothing extracted leads out.
                problems = tree_link_problems(tree, record.bin_dir)
                if problems:
                    raise OverlayError(f"refusing to unpack {str(archive)!r}: {_listed(problems)}")
                script = tree / record.bin_dir / RELOCATE_SCRIPT
                source = None
                if script.is_file() and not script.is_symlink():
                    source = read_location(script.read_text(encoding="utf-8", errors="replace"))
                if not source:
                    raise OverlayError(
                        f"{str(archive)!r} has no readable {record.bin_dir}/{RELOCATE_SCRIPT}, so the place it was packed "
                        "from is unknown; make the archive with overlay-venv pack"
                    )
                try:
                    relocate_tree(tree, source, dest, record)
                except OSError as exc:
                    raise OverlayError(f"cannot point the overlay unpacked from {str(archive)!r} at {dest}: {exc}") from None
                notes = []
                if source != str(dest):
                    left = files_naming(tree, source)
                    if left:
                        shown = ", ".join(left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
                        notes.append(f"warning: these files still name the old place {source}: {shown}")
                interpreter = record.base.interpreter
                if not os.path.exists(interpreter):
                    notes.append(
                        f"warning: the interpreter {interpreter} the overlay was built on is not on this machine; "
                        "the overlay works only where its release is at the same path"
                    )
                for lower in record.lowers:
                    if not os.path.isdir(lower.path):
                        notes.append(
                            f"warning: the lower overlay {lower.path} this overlay is stacked on is not on this "
                            "machine; the overlay works only where it is at the same path"
                        )
                # Kernels are outside the overlay: those installed for the old place still start that one.
                notes += unpack_notes(source, dest)
                try:
                    stage.commit(replace=False)
                except FileExistsError:
                    raise OverlayError(f"{str(dest)!r} was created by another process meanwhile; left it as it is") from None
        except OSError as exc:  # the staging directory: a read-only, unwritable or full filesystem
            raise OverlayError(f"cannot unpack {str(archive)!r} into {dest}: {describe_os_error(exc)}") from None
    return UnpackResult(dest=dest, source=source, notes=notes)
