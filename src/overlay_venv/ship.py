"""Jobs that carry their overlay: ``wrap --ship`` (and ``--embed``), and HTCondor submit descriptions.

The overlay is packed with ``pack`` and either written beside the job script, named by its sha256
(``myenv-3f2a9c1b0d4e.tar.gz``), or carried at the end of the script as base64 comment lines. The
job script names the pack's sha256; on the worker, ``templates/ship-unpack.py`` (standard library,
run by the release's interpreter) unpacks it once per node into a cache entry named by that hash and
points it there with the overlay's own ``bin/overlay-venv-relocate``. A new pack has a new hash, so
jobs of an older wrap keep their entry and never see a half-replaced one.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .errors import OverlayError
from .lock import sha256_of
from .pack import pack_overlay, temporary_beside
from .relocate import text_replacement_problem
from .templates import render, templates_dir

UNPACK_PROGRAM = "ship-unpack.py"
KEY_LENGTH = 32  # hex digits of the sha256 that name the cache entry: 128 bits
NAME_HASH_LENGTH = 12  # hex digits in the pack file's name, to tell packs apart at a glance
# sbatch refuses a batch script over this size unless the site raised max_script_size.
SBATCH_SCRIPT_LIMIT = 4 * 1024 * 1024


@dataclass
class Shipment:
    digest: str  # sha256 of the pack, hex
    size: int  # bytes the first unpack on a node needs: the unpacked overlay (and the pack, if embedded)
    pack_size: int  # bytes of the pack
    pack: Path | None = None  # the pack beside the job script; None when embedded
    payload: str = ""  # the embedded pack as comment lines of base64

    @property
    def key(self) -> str:
        return self.digest[:KEY_LENGTH]


def unpack_program() -> str:
    return (templates_dir() / UNPACK_PROGRAM).read_text(encoding="utf-8").rstrip("\n")


def ship_problem(overlay: Path) -> str | None:
    """Why ``overlay`` cannot be shipped, or None: the stdlib relocator moves only plain paths."""
    problem = text_replacement_problem(str(overlay))
    if problem:
        how = "the job moves it with bin/overlay-venv-relocate (move the overlay to a plain path first)"
        return f"cannot ship {overlay}: {problem}, and {how}"
    return None


def ship_dir_problem(ship_dir: str) -> str | None:
    if not os.path.isabs(ship_dir):
        return f"--ship-dir {ship_dir!r} must be an absolute path (it is a directory on the worker node)"
    problem = text_replacement_problem(ship_dir)
    return f"--ship-dir: {problem}" if problem else None


def tree_size(root: Path) -> int:
    total = 0
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def pack_name(overlay: Path, digest: str) -> str:
    return f"{overlay.name}-{digest[:NAME_HASH_LENGTH]}.tar.gz"


def payload_lines(data: bytes) -> str:
    """The pack as comment lines of base64, which no shell runs and shellcheck skips."""
    encoded = base64.encodebytes(data).decode("ascii")
    return "".join(f"#{line}\n" for line in encoded.splitlines()).rstrip("\n")


def make_shipment(overlay: Path, job: Path, embed: bool) -> tuple[Shipment, list[str]]:
    """Pack ``overlay`` for the job script ``job``: beside it (named by its hash), or for embedding."""
    temporary = temporary_beside(job.parent / f"{job.name}.pack")
    try:
        result = pack_overlay(overlay, temporary, force=True)
        digest = sha256_of(temporary)
        unpacked = tree_size(overlay)
        if embed:
            # The job decodes the pack into the cache for tar to read: it needs room there too.
            payload = payload_lines(temporary.read_bytes())
            return Shipment(digest, unpacked + result.size, result.size, payload=payload), result.notes
        pack = job.parent / pack_name(overlay, digest)
        os.replace(temporary, pack)  # same hash, same bytes: replacing an existing one changes nothing
        return Shipment(digest, unpacked, result.size, pack=pack), result.notes
    finally:
        if temporary.exists():
            temporary.unlink()


def ship_values(shipment: Shipment, interpreter: str, ship_dir: str | None) -> dict:
    """What templates/job.sh.j2 needs to unpack the shipment on the worker."""
    return {
        "ship": True,
        "embedded": shipment.pack is None,
        "key": shipment.key,
        "digest": shipment.digest,
        "size": shipment.size,
        "interpreter": interpreter,
        "ship_dir": ship_dir or "",
        "pack_name": shipment.pack.name if shipment.pack else "",
        "pack_path": str(shipment.pack) if shipment.pack else "",
        "payload": shipment.payload,
        "unpack_program": unpack_program(),
    }


def submit_path_problem(path: Path) -> str | None:
    """HTCondor separates file lists with commas and blanks: the paths in a description must be plain."""
    problem = text_replacement_problem(str(path))
    return f"cannot name {path} in an HTCondor submit description: {problem}" if problem else None


def render_submit(submit: Path, job: Path, shipment: Shipment | None, jobs: int) -> str:
    """An HTCondor submit description that runs ``job`` ``jobs`` times, with the pack transferred."""
    for path in (submit, job, *([shipment.pack] if shipment and shipment.pack else [])):
        problem = submit_path_problem(path)
        if problem:
            raise OverlayError(problem)
    # KiB, rounded up: the pack (transferred or decoded) and the overlay unpacked from it.
    request_disk = -(-(shipment.size + shipment.pack_size * (shipment.pack is not None)) // 1024) if shipment else 0
    return render(
        "job.sub.j2",
        str,
        version=__version__,
        submit=str(submit),
        job=str(job),
        directory=str(job.parent),
        stem=job.stem,
        pack=str(shipment.pack) if shipment and shipment.pack else "",
        embedded=bool(shipment and shipment.pack is None),
        request_disk=request_disk,
        jobs=jobs,
    )
