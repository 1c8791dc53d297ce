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
from .metadata import METADATA_FILE, read_record
from .paths import path_problem
from .relocate import (
    RELOCATE_SCRIPT,
    files_naming,
    movable_problems,
    read_location,
    relocate_tree,
    render_relocate_script,
    text_replacement_problem,
)


@dataclass
class PackResult:
    archive: Path
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
    """Write ``overlay`` into the gzipped tar ``output``; refuse what cannot move."""
    overlay = Path(os.path.abspath(overlay))
    output = Path(os.path.abspath(output))
    record = read_record(overlay)
    if output == overlay or str(output).startswith(str(overlay) + os.sep):
        raise OverlayError(f"the archive {str(output)!r} cannot be inside the overlay it packs")
    if not output.parent.is_dir():
        raise OverlayError(f"directory {str(output.parent)!r} does not exist (create it first)")
    if (output.exists() or output.is_symlink()) and not force:
        raise OverlayError(f"{str(output)!r} exists; pass --force to overwrite it")
    problems = movable_problems(overlay)
    if problems:
        raise OverlayError(f"cannot pack {overlay}, it could not work elsewhere: " + "; ".join(problems))

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
    problem = text_replacement_problem(str(overlay))
    if problem:
        notes.append(f"note: {problem}: unpack this archive with `overlay-venv unpack`; bin/{RELOCATE_SCRIPT} cannot move it")
    return PackResult(archive=output, size=output.stat().st_size, members=members, notes=notes)


def _member_problem(member: tarfile.TarInfo) -> str | None:
    """Why an archive member must not be extracted, or None. The archive may come from anywhere."""
    name = member.name
    parts = name.split("/")
    if name.startswith("/") or ".." in parts:
        return f"{name!r} would land outside the destination"
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        return f"{name!r} is a device, fifo or other special file"
    if member.islnk():
        target = member.linkname.split("/")
        if member.linkname.startswith("/") or ".." in target:
            return f"{name!r} is a hard link to {member.linkname!r}, outside the destination"
    if member.issym() and not member.linkname.startswith("/"):
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
        if resolved == ".." or resolved.startswith("../"):
            return f"{name!r} is a symlink to {member.linkname!r}, outside the destination"
    return None


def check_unpack_destination(dest: Path) -> None:
    problem = path_problem(dest)
    if problem:
        raise OverlayError(f"cannot unpack an overlay there: {problem}")
    if not dest.parent.is_dir():
        raise OverlayError(f"parent directory {str(dest.parent)!r} does not exist (create it first)")
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise OverlayError(f"{str(dest)!r} exists and is not a directory")
    if dest.is_dir() and any(dest.iterdir()):
        raise OverlayError(f"{str(dest)!r} exists and is not empty; unpack into a new directory")


def unpack_overlay(archive: Path, dest: Path) -> UnpackResult:
    """Unpack ``archive`` (made by :func:`pack_overlay`) into ``dest`` and point it there.

    Built in a staging directory beside ``dest`` and renamed into place when complete, like
    ``create``: an unpack that fails or is killed leaves nothing under ``dest``.
    """
    dest = Path(os.path.abspath(dest))
    check_unpack_destination(dest)
    try:
        tar = tarfile.open(archive, "r:*")
    except (OSError, tarfile.TarError) as exc:
        raise OverlayError(f"cannot read {str(archive)!r} as a tar archive: {exc}") from None
    with tar:
        members = tar.getmembers()
        names = {member.name.rstrip("/") for member in members}
        if METADATA_FILE not in names:
            raise OverlayError(
                f"{str(archive)!r} does not hold an overlay (no {METADATA_FILE} at its top); make it with overlay-venv pack"
            )
        problems = [problem for problem in map(_member_problem, members) if problem]
        if problems:
            raise OverlayError(f"refusing to unpack {str(archive)!r}: " + "; ".join(problems))
        with Staging(dest) as stage:
            if hasattr(tarfile, "tar_filter"):
                # "tar", not "data": the overlay's bin/python is an absolute symlink to the release's
                # interpreter, which the data filter refuses. Members were checked above.
                tar.extractall(stage.path, members=members, filter="tar")
            else:
                tar.extractall(stage.path, members=members)
            record = read_record(stage.path)
            script = stage.path / record.bin_dir / RELOCATE_SCRIPT
            source = read_location(script.read_text(encoding="utf-8")) if script.is_file() else None
            if not source:
                raise OverlayError(
                    f"{str(archive)!r} has no readable {record.bin_dir}/{RELOCATE_SCRIPT}, so the place it was packed "
                    "from is unknown; make the archive with overlay-venv pack"
                )
            relocate_tree(stage.path, source, dest, record)
            notes = []
            if source != str(dest):
                left = files_naming(stage.path, source)
                if left:
                    shown = ", ".join(left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
                    notes.append(f"warning: these files still name the old place {source}: {shown}")
            interpreter = record.base.interpreter
            if not os.path.exists(interpreter):
                notes.append(
                    f"warning: the interpreter {interpreter} the overlay was built on is not on this machine; "
                    "the overlay works only where its release is at the same path"
                )
            try:
                stage.commit(replace=False)
            except FileExistsError:
                raise OverlayError(f"{str(dest)!r} was created by another process meanwhile; left it as it is") from None
    return UnpackResult(dest=dest, source=source, notes=notes)
