"""Applying a lock: into a new overlay (``create --from``), onto an existing one (``sync``).

Installing a lock is two steps, so that nothing changes before every artifact is known to be right:

1. :func:`gather` puts every artifact in one private directory and checks its sha256 itself (files from
   the wheelhouse or a local path are copied; remote ones are fetched by ``pip download
   --require-hashes``, which checks them too). A mismatch stops here, with the file named.
2. The installer's ``install_locked`` (see :mod:`overlay_venv.backends`) installs exactly those files,
   hashes required, no dependencies, no index, nothing built. ``sync`` removes what the lock does not
   hold only after that succeeded.

A lock pins wheels only: building an sdist needs its build backend from an index, which installing a
lock never uses. ``lock`` refuses a distribution installed from an sdist, and a lock from another tool
whose only fitting artifact is an sdist is refused before anything changes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..atomic import private_tmp
from ..backends import get_backend
from ..backends.pip import PIP_QUIET, run_pip
from ..errors import OverlayError, UsageError
from ..lock import Artifact, Lock, LockedPackage, artifact_name_problem, sha256_of, size_problem
from ..lock_compare import Target
from ..messages import warn
from .lock import _file_path, base_distributions, overlay_versions, target_of


def selected(lock: Lock, target: Target, names: Optional[Iterable[str]] = None) -> list[tuple[LockedPackage, Artifact]]:
    """The artifact to install for each locked package (or those ``names``), for ``target``."""
    from ..lock_compare import select_artifact

    wanted = set(lock.by_name()) if names is None else set(names)
    chosen = []
    for package in lock.packages:
        if package.name in wanted:
            artifact = select_artifact(package, target)
            if artifact is None:  # incompatibilities() reports this first; here it is a guard
                raise OverlayError(f"no locked artifact of {package.name} {package.version} fits {target.platform}")
            chosen.append((package, artifact))
    return chosen


def gather(
    chosen: Sequence[tuple[LockedPackage, Artifact]],
    dest: Path,
    python: str,
    environ: Mapping[str, str],
    wheelhouse: Optional[Path] = None,
) -> None:
    """Put every chosen artifact into ``dest``, each checked against its sha256 before anything is
    installed. With a wheelhouse, the files come from there alone; otherwise from the recorded path,
    or the recorded URL through ``pip download --require-hashes``."""
    dest.mkdir(parents=True, exist_ok=True)
    remote: list[tuple[LockedPackage, Artifact]] = []
    for package, artifact in chosen:
        problem = artifact_name_problem(artifact.filename)
        if problem:  # parse_lock refuses these; a Lock made in code is checked here
            raise OverlayError(f"the artifact of {package.name} {package.version}: {artifact.filename!r} {problem}")
        if wheelhouse is not None:
            source = wheelhouse / artifact.filename
            if not source.is_file():
                raise OverlayError(
                    f"{artifact.filename} ({package.name} {package.version}) is not in the wheelhouse {wheelhouse}"
                )
        elif artifact.path is not None:
            source = Path(artifact.path)
            if not source.is_file():
                raise OverlayError(
                    f"{artifact.path}, locked for {package.name} {package.version}, is gone; pass --wheelhouse DIR"
                )
        elif artifact.url and _file_path(artifact.url) is not None:
            source = _file_path(artifact.url)
        else:
            remote.append((package, artifact))
            continue
        _copy_checked(source, dest / artifact.filename, artifact, package)
    if remote:
        requirements = dest.parent / "remote-requirements.txt"
        lines = [f"{package.name} @ {artifact.url} --hash=sha256:{artifact.sha256}" for package, artifact in remote]
        requirements.write_text("\n".join(lines) + "\n", encoding="utf-8")
        args = ["download", *PIP_QUIET, "--quiet", "--no-deps", "--require-hashes", "--dest", str(dest), "-r", str(requirements)]
        run_pip(python, environ, args, "fetching the locked artifacts")
        for _package, artifact in remote:
            fetched = dest / artifact.filename
            if not fetched.is_file() or sha256_of(fetched) != artifact.sha256:
                raise OverlayError(f"{artifact.url} did not give the locked {artifact.filename} (sha256 {artifact.sha256})")
            problem = size_problem(artifact, fetched.stat().st_size)
            if problem:
                raise OverlayError(f"{problem}; nothing was installed")


def _copy_checked(source: Path, target: Path, artifact: Artifact, package: LockedPackage) -> None:
    digest = hashlib.sha256()
    with open(source, "rb") as reader, open(target, "wb") as writer:
        for block in iter(lambda: reader.read(1 << 20), b""):
            digest.update(block)
            writer.write(block)
    if digest.hexdigest() != artifact.sha256:
        target.unlink()
        raise OverlayError(
            f"hash mismatch: {source} has sha256 {digest.hexdigest()}, but the lock pins {package.name} {package.version} "
            f"to {artifact.sha256}; refusing it (tampered, or a different build of the same version); nothing was installed"
        )
    problem = size_problem(artifact, target.stat().st_size)  # the sha256 matched: the size was edited
    if problem:
        target.unlink()
        raise OverlayError(f"{problem}; nothing was installed")


def refuse_incompatible(lock: Lock, target: Target, overlay: Path, lock_file: str) -> None:
    """Stop with what differs when ``lock`` cannot be installed for ``target``, pointing at rebuild."""
    from ..lock_compare import incompatibilities

    problems = incompatibilities(lock, target)
    if problems:
        raise OverlayError(
            f"{lock_file} does not fit this base: {'; '.join(problems)}. To resolve its requests again on this base, "
            f"run: overlay-venv rebuild {_quote(overlay)} --lock {_quote(lock_file)}"
        )


def _quote(path: Any) -> str:
    import shlex

    return shlex.quote(str(path))


def base_drift(lock: Lock, layering: Any) -> Optional[str]:
    """A warning when the base's distributions are not the ones the lock was made on (installing still
    works: the lock pins only the overlay's own distributions)."""
    from ..lock_compare import base_changes

    if lock.base is None:
        return None
    changes = base_changes(lock.base.distributions, base_distributions(layering))
    if not changes:
        return None
    shown = ", ".join(changes[:5]) + (f" and {len(changes) - 5} more" if len(changes) > 5 else "")
    return (
        f"the base differs from the one locked ({shown}); the locked versions are installed as they are "
        "(check with: overlay-venv check)"
    )


def install_lock(
    overlay: Path,
    lock: Lock,
    lock_file: str,
    environ: Mapping[str, str],
    wheelhouse: Optional[Path],
    names: Optional[Iterable[str]] = None,
    remove: Sequence[str] = (),
    final: Optional[Path] = None,
    after=None,
    installer: str = "pip",
) -> None:
    """Install the lock's artifacts (or only ``names``) into ``overlay`` (replacing the overlay's own
    copies of other versions), then remove ``remove``. Every artifact is gathered and checked first, and
    an sdist is refused: a bad artifact changes nothing. Then pip installs and removes inside a
    transaction: a failure, a kill or Ctrl-C at any point leaves the overlay as it was (rolled back),
    and the error says so. ``after`` runs inside it too (sync records the lock's requests there).
    ``final`` is the name messages use when ``overlay`` is a staging directory (thrown away on failure,
    so no transaction is needed). ``installer`` names the backend that installs and removes."""
    from ..layers import load_layering

    backend = get_backend(installer)
    layering = load_layering(overlay, environ, tags=True)  # one interpreter start: layers and tags
    target = target_of(layering)
    refuse_incompatible(lock, target, final or overlay, lock_file)
    drift = base_drift(lock, layering)
    if drift:
        warn(drift)
    chosen = selected(lock, target, names)
    refuse_sdists(chosen, lock_file)
    with private_tmp("artifacts") as tmp:
        files = tmp / "files"
        # pip's own temporary directories go into ours, which is removed however we end.
        environ = {**layering.environ, "TMPDIR": str(tmp)}
        gather(chosen, files, layering.python, environ, wheelhouse)
        job = _Apply(overlay, layering.python, environ, chosen, files, tuple(remove), after, backend)
        if final is not None:  # a staging directory: thrown away whole if anything fails
            _install_files(job)
            return
        _install_transaction(job)


@dataclass(frozen=True)
class _Apply:
    """One application of a lock: what to install from where, what to remove, and with what."""

    overlay: Path
    python: str
    environ: Mapping[str, str]
    chosen: Sequence[tuple[LockedPackage, Artifact]]
    files: Path
    remove: Sequence[str]
    after: Any
    backend: Any


def _install_files(job: _Apply) -> None:
    from ..lock_compare import requirements_text
    from ..record import read_record
    from ..scripts_guard import secure_scripts

    if job.chosen:
        requirements = job.files.parent / "locked-requirements.txt"
        lines = requirements_text((p.name, p.version, a.sha256) for p, a in job.chosen)
        requirements.write_text(lines, encoding="utf-8")
        job.backend.install_locked(job.python, job.environ, requirements, job.files)
    job.backend.uninstall(job.python, job.environ, list(job.remove))
    secure_scripts(job.overlay / read_record(job.overlay).bin_dir)
    if job.after is not None:
        job.after()


def _install_transaction(job: _Apply) -> None:
    """:func:`_install_files` on a live overlay, all or nothing (see :mod:`overlay_venv.transaction`)."""
    from ..overlay_lock import command_text
    from ..record import read_record
    from ..transaction import UNCHANGED, all_or_nothing, begin, scheme_dirs

    record = read_record(job.overlay)
    txn = begin(job.overlay, scheme_dirs(record.bin_dir, record.site_packages), command_text())

    def state() -> str:
        return f"{job.overlay} is unchanged" if txn.rollback() == UNCHANGED else f"rolled back: {job.overlay} is as it was before"

    all_or_nothing(txn, lambda: _install_files(job), state)


def refuse_sdists(chosen: Sequence[tuple[LockedPackage, Artifact]], lock_file: str) -> None:
    """Stop when an artifact to install is not a wheel: building it would need its build backend from an
    index, and installing a lock uses none (pip would fail part-way, after the overlay changed)."""
    sdists = [
        f"{package.name} {package.version} ({artifact.filename})" for package, artifact in chosen if artifact.kind != "wheel"
    ]
    if sdists:
        shown = ", ".join(sdists[:5]) + (f" and {len(sdists) - 5} more" if len(sdists) > 5 else "")
        raise OverlayError(
            f"{lock_file} has no wheel that fits for {shown}: installing a lock builds nothing, so it installs wheels "
            "only; build a wheel of each, install those and lock again"
        )


def remember_requests(overlay: Path, requests: Sequence[str], allow_shadow: Sequence[str] = ()) -> None:
    """Record top-level requests, and the base distributions they may shadow, as the overlay's own
    (what a later lock or rebuild uses)."""
    from ..record import read_record, write_record

    if requests:
        record = read_record(overlay)
        if record.requests != list(requests) or record.allow_shadow != list(allow_shadow):
            record.requests = list(requests)
            record.allow_shadow = list(allow_shadow)
            write_record(overlay, record)


def populate_from_lock(lock: Lock, lock_file: str, wheelhouse: Optional[Path], dest: Path, installer: str = "pip"):
    """The ``populate`` callback of ``create --from``: runs in the staging overlay, before the rename."""

    def populate(stage: Path, environ: dict[str, str]) -> None:
        install_lock(
            stage,
            lock,
            lock_file,
            environ,
            wheelhouse,
            final=dest,
            after=lambda: remember_requests(stage, lock.requests, lock.allow_shadow),
            installer=installer,
        )

    return populate


def prepare_create_from(name: Path, lock_file: str, wheelhouse: Optional[str], pip: bool, clear: bool, installer: str = "pip"):
    """What ``create NAME --from FILE`` hands create_overlay as ``populate``; None when NAME is already an
    overlay holding exactly the lock (a job script may run the same create twice)."""
    from ..lock import read_lock
    from ..lock_compare import plan_sync
    from ..record import is_overlay, read_record

    if not pip:
        raise UsageError("--from installs with the overlay's pip: leave out --no-pip")
    lock = read_lock(lock_file)
    dest = Path(os.path.abspath(name))
    if is_overlay(dest) and not clear:
        if plan_sync(lock, overlay_versions(dest, read_record(dest).site_packages)).empty:
            return None
        raise OverlayError(
            f"{dest} exists and differs from {lock_file}: make it match with "
            f"`overlay-venv sync {_quote(name)} {_quote(lock_file)}`, or replace it with --clear"
        )
    return populate_from_lock(
        lock,
        lock_file,
        Path(os.path.abspath(wheelhouse)) if wheelhouse else None,
        dest,
        installer=installer,
    )
