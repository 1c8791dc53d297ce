"""Installs that happen whole or not at all.

Before an installer runs, :func:`begin` takes a snapshot of every directory of the overlay the
installer may write (``bin``, ``lib``, ``include``, ``share``, ``etc``: pip's install scheme) made of
hard links, plus copies of the overlay's own small files (its record, ``pyvenv.cfg``). That costs
one link per file, no data. It is sound because pip (and uv, and overlay-venv itself) never writes
into an installed file: it unlinks and writes anew, or writes aside and renames, so the linked
inode in the snapshot keeps the old bytes. ``.pth`` files are the exception pip may rewrite in
place (legacy ``easy-install.pth``), so those are copied.

The snapshot is built under a temporary name and renamed to ``OVERLAY/.overlay-venv-txn`` when
complete: from that moment, and until :meth:`Transaction.commit` renames it away again, the
overlay counts as "being changed". If the process dies in between (SIGKILL, a node lost, a full
disk that breaks even the rollback), the next command that takes the overlay's lock finds the
directory and restores the snapshot (:func:`recover_locked`). A failure or Ctrl-C in the process
itself rolls back at once.

Restoring swaps each snapshotted directory with the live one in one step (``renameat2`` with
``RENAME_EXCHANGE``; two renames where the filesystem lacks it). Every snapshot directory carries a
marker file, so a restore that is itself interrupted knows, per directory, whether the swap was
done: a live directory holding the marker is the restored one. Restoring is idempotent; running it
twice, or after a kill at any point of it, ends in the snapshot's state.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

from .atomic import _exchange, remove_tree
from .errors import OverlayError

TXN = ".overlay-venv-txn"
NEW_PREFIX = ".overlay-venv-txn-new-"
DONE_PREFIX = ".overlay-venv-txn-done-"
MARKER = ".overlay-venv-snapshot"
MANIFEST = "manifest.json"
# Top-level directories of the overlay pip's install scheme writes into (scripts, purelib/platlib,
# headers, and data files, which mostly land in share/ and etc/).
SCHEME_DIRS = ("bin", "lib", "include", "share", "etc", "man")
OWN_FILES = ("overlay-venv.json", "pyvenv.cfg")

UNCHANGED = "nothing was installed; the overlay is unchanged"
ROLLED_BACK = "rolled back: the overlay is as it was before"


class Interrupted(BaseException):
    """SIGTERM or SIGHUP during an install: ends it like Ctrl-C, so it is rolled back at once."""


def scheme_dirs(bin_dir: str, site_packages: list[str]) -> list[str]:
    """The overlay's top-level directories an install may write, for a record's layout."""
    names = [Path(bin_dir).parts[0], *(Path(rel).parts[0] for rel in site_packages), *SCHEME_DIRS]
    return list(dict.fromkeys(names))


_NO_LINKS = (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES)


def _link_tree(source: str, target: str) -> None:
    """A copy of ``source`` made of hard links (``.pth`` files copied, see the module docstring), or
    of copies from the first file a filesystem refuses to link (AFS, some network filesystems)."""
    os.mkdir(target)
    shutil.copystat(source, target, follow_symlinks=False)
    _link_entries(source, target, [True])


def _link_entries(source: str, target: str, linking: list[bool]) -> None:
    # scandir's entry types come with the listing (d_type): no lstat a file, as os.walk would need
    # beside ours; symlinks to directories are recreated as links, not followed.
    with os.scandir(source) as entries:
        for entry in entries:
            src, dst = entry.path, os.path.join(target, entry.name)
            if entry.is_symlink():
                os.symlink(os.readlink(src), dst)
            elif entry.is_dir(follow_symlinks=False):
                os.mkdir(dst)
                shutil.copystat(src, dst, follow_symlinks=False)
                _link_entries(src, dst, linking)
            elif entry.name.endswith(".pth") or not linking[0]:
                shutil.copy2(src, dst, follow_symlinks=False)
            else:
                try:
                    os.link(src, dst, follow_symlinks=False)
                except OSError as exc:
                    if exc.errno not in _NO_LINKS:
                        raise
                    linking[0] = False
                    shutil.copy2(src, dst, follow_symlinks=False)


def _remove_detached(path: Path) -> None:
    """Remove ``path`` in a grandchild of ours that keeps nothing of ours open (not our stdout: a
    caller reading it would wait for the removal), so our exit does not wait for it; here when other
    threads run (forking is unsafe then) or fork fails. The middle child exits at once, so none of
    them is left a zombie of a long-lived caller."""
    from .atomic import keep_no_descriptors, threading_active

    if threading_active():
        remove_tree(path)
        return
    try:
        pid = os.fork()
    except OSError:
        remove_tree(path)
        return
    if pid:
        os.waitpid(pid, 0)
        return
    try:  # the child: never returns into our caller's code
        os.setsid()  # a Ctrl-C to our terminal must not leave the removal half done (the next command would finish it)
        if os.fork() == 0:
            keep_no_descriptors()
            remove_tree(path)
    finally:
        os._exit(0)


def remove_leftovers(overlay: Path) -> None:
    """Remove snapshots that were never started (a kill while one was built) or already finished
    (a kill while one was thrown away). Neither says anything about the overlay's state."""
    try:
        names = os.listdir(overlay)
    except OSError:
        return
    for name in names:
        if name.startswith((NEW_PREFIX, DONE_PREFIX)):
            remove_tree(overlay / name)


class Transaction:
    """An install in progress on ``overlay``; see the module docstring."""

    def __init__(self, overlay: Path, path: Path, manifest: dict):
        self.overlay = overlay
        self.path = path
        self.manifest = manifest
        self.open = True

    # -- outcome -----------------------------------------------------------------------------

    def changed(self) -> bool:
        """Does the live overlay differ from the snapshot? Compares every name's size and mtime, so it
        sees any file pip wrote, removed or replaced; bytecode caches are not compared."""
        if any((self.overlay / name).exists() for name in self.manifest["absent"]):
            return True
        for name in self.manifest["files"]:
            try:
                if (self.overlay / name).read_bytes() != (self.path / "files" / name).read_bytes():
                    return True
            except OSError:
                return True
        for name in self.manifest["dirs"]:
            if _identities(self.overlay / name) != _identities(self.path / "tree" / name):
                return True
        return False

    def commit(self) -> None:
        """The install is complete: drop the snapshot. The rename is the moment it counts as done.

        Removing the snapshot's links costs one unlink a file (85-250 ms on a loaded machine for an
        overlay with pip in it), so it is not waited for: the snapshot is renamed at once out of the
        overlay to a staging name beside it (``atomic.staging_name``: hidden, and removed by the next
        command in that directory once we are gone) and a detached child removes it while we report.
        The overlay's own listing is clean the moment commit returns, and recovery never sees a done
        snapshot: only ``TXN`` means "being changed". Where that rename cannot be (the overlay is a
        mount point, its parent not writable) or forking is unsafe, it is removed here, as before."""
        from .atomic import staging_name

        aside = self.overlay.parent / staging_name()
        try:
            os.rename(self.path, aside)
        except OSError:
            done = self.overlay / f"{DONE_PREFIX}{os.urandom(4).hex()}"  # not secrets: it loads OpenSSL (hmac)
            os.rename(self.path, done)
            self.open = False
            remove_tree(done)
            return
        self.open = False
        _remove_detached(aside)

    def rollback(self) -> str:
        """Put the overlay back as the snapshot has it; returns what happened, in words."""
        with _signals_ignored():
            if not self.changed():
                self.commit()  # nothing to restore: throwing the snapshot away is the same
                return UNCHANGED
            restore(self.overlay, self.path)
            self.open = False
            return ROLLED_BACK


def _identities(root: Path) -> dict[str, object]:
    """What identifies each entry under ``root`` across the snapshot and the live tree: a file's size
    and mtime, a copied ``.pth`` file's bytes, a symlink's target; directories only exist."""
    found: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in dirnames + filenames:
            if name == MARKER:
                continue
            path = os.path.join(dirpath, name)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                found[os.path.relpath(path, root)] = os.readlink(path)
            elif stat.S_ISDIR(info.st_mode):
                found[os.path.relpath(path, root)] = None
            elif name.endswith(".pth"):
                try:
                    with open(path, "rb") as handle:
                        found[os.path.relpath(path, root)] = handle.read()
                except OSError:
                    found[os.path.relpath(path, root)] = b"?"
            else:
                # Not the inode: where the snapshot had to copy, that differs though nothing changed.
                # A file pip wrote anew has a new mtime; a copy keeps it (copy2).
                found[os.path.relpath(path, root)] = (info.st_size, info.st_mtime_ns)
    return found


def begin(overlay: Path, dirs: list[str], command: str) -> Transaction:
    """Snapshot ``dirs`` (top-level names) of ``overlay`` and mark it as being changed. Nothing of
    the overlay itself is touched here: a failure (a full disk) leaves it as it was."""
    remove_leftovers(overlay)
    if (overlay / TXN).exists():  # the caller holds the lock, so this is an interrupted one
        restore(overlay, overlay / TXN)
    new = overlay / f"{NEW_PREFIX}{os.getpid()}-{os.urandom(4).hex()}"
    present = [name for name in dirs if _is_real_dir(overlay / name)]
    manifest = {
        "command": command,
        "pid": os.getpid(),
        "dirs": present,
        "absent": [name for name in dirs if name not in present and not os.path.lexists(overlay / name)],
        "files": [name for name in OWN_FILES if (overlay / name).is_file() and not (overlay / name).is_symlink()],
    }
    try:
        new.mkdir()
        (new / "tree").mkdir()
        (new / "files").mkdir()
        for name in present:
            _link_tree(str(overlay / name), str(new / "tree" / name))
            (new / "tree" / name / MARKER).write_bytes(b"")
        for name in manifest["files"]:
            shutil.copy2(overlay / name, new / "files" / name)
        (new / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
        os.rename(new, overlay / TXN)
    except OSError as exc:
        remove_tree(new)
        raise OverlayError(
            f"cannot prepare the install ({exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}); {UNCHANGED}"
        ) from None
    return Transaction(overlay, overlay / TXN, manifest)


def _is_real_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def restore(overlay: Path, txn: Path) -> None:
    """Make ``overlay`` what the snapshot in ``txn`` holds, then remove ``txn``. Safe to interrupt and
    run again at any point."""
    try:
        manifest = json.loads((txn / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        # The manifest is written before the snapshot is renamed into place, so this is not ours.
        raise OverlayError(f"{txn} is damaged (no readable {MANIFEST}); move it away by hand") from None
    discard = txn / "discard"
    discard.mkdir(exist_ok=True)
    for name in manifest["dirs"]:
        _restore_dir(overlay / name, txn / "tree" / name, discard / name)
    for name in manifest["absent"]:  # made by the install (data files): not there before
        if os.path.lexists(overlay / name):
            remove_tree(discard / name)
            os.rename(overlay / name, discard / name)
    for name in manifest["files"]:
        partial = overlay / f".{name}.restore"
        shutil.copy2(txn / "files" / name, partial)
        os.replace(partial, overlay / name)
    done = overlay / f"{DONE_PREFIX}{os.urandom(4).hex()}"
    os.rename(txn, done)
    remove_tree(done)


def _restore_dir(live: Path, snap: Path, discard: Path) -> None:
    if (live / MARKER).exists():
        pass  # swapped already: what is at snap (or discard) is the install's, to be thrown away
    elif snap.exists():
        if os.path.lexists(live):
            if not _exchange(snap, live):
                remove_tree(discard)
                os.rename(live, discard)
                os.rename(snap, live)
        else:
            os.rename(snap, live)  # an interrupted two-rename restore
    else:
        return  # neither marker nor snapshot: restored and cleaned up by an earlier run
    remove_tree(snap)
    remove_tree(discard)
    (live / MARKER).unlink(missing_ok=True)


def interrupted(overlay: Path) -> bool:
    """Is an install into ``overlay`` unfinished? (One stat; for read-only commands.)"""
    return os.path.isdir(overlay / TXN)


def describe(overlay: Path) -> str:
    try:
        manifest = json.loads((overlay / TXN / MANIFEST).read_text(encoding="utf-8"))
        return f"`{manifest['command']}` (pid {manifest['pid']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "an install"


def recover_locked(overlay: Path, say: Callable[[str], None]) -> bool:
    """With the overlay's lock held: roll back an install that was interrupted, saying so in one line.
    True if there was one. Also clears what killed commands left beside the overlay (staging
    directories of a create whose janitor was killed with it)."""
    from .atomic import remove_stale_staging

    remove_leftovers(overlay)
    remove_stale_staging(overlay.parent)
    if not interrupted(overlay):
        return False
    who = describe(overlay)
    try:
        with _signals_ignored():
            restore(overlay, overlay / TXN)
    except OSError as exc:
        raise OverlayError(
            f"{overlay}: an install ({who}) was interrupted, and rolling it back failed: {exc.strerror or exc}"
        ) from None
    say(f"overlay-venv: {who} was interrupted before it finished; {ROLLED_BACK}")
    return True


def recover(overlay: Path, say: Callable[[str], None]) -> bool:
    """For commands that only read an overlay: if an install was interrupted (its holder gone) roll it
    back first; if one is running now, leave it alone. Costs one stat when there is nothing to do."""
    if not interrupted(overlay):
        return False
    from .overlay_lock import overlay_lock

    try:
        with overlay_lock(overlay, "overlay-venv (rolling back an interrupted install)", wait=False, recover=False):
            return recover_locked(overlay, say)
    except OverlayError as exc:
        if "not waiting" in exc.message:
            return False  # an install is running: its holder finishes or rolls back itself
        raise


@contextmanager
def _signals_ignored() -> Iterator[None]:
    """A restore that a second Ctrl-C cut short would be finished by the next command anyway, but
    finishing it now is kinder."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@contextmanager
def terminations_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP (a batch system's time limit, a closed terminal) raise :class:`Interrupted`
    inside the block, so the install is rolled back at once rather than left for the next command."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, _frame):
        raise Interrupted(signal.Signals(signum).name)

    saved = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)


def interrupted_error(state: str, exc: BaseException) -> OverlayError:
    """The one line for an install ended by Ctrl-C or a termination signal, exit status 130."""
    what = "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else f"interrupted ({exc})"
    error = OverlayError(f"{what}: {state}")
    error.exit_code = 130
    return error


def space_words(exc: OSError) -> str:
    return "no space left on the device" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else (exc.strerror or str(exc))


def all_or_nothing(txn: Transaction, work: Callable[[], Any], state: Optional[Callable[[], str]] = None) -> Any:
    """Run ``work()`` inside ``txn`` and commit; on anything that stops it (an installer failure, a
    full disk, Ctrl-C, a termination signal) roll back and say so in the one-line error. ``state``
    rolls back and words the outcome (default: :meth:`Transaction.rollback`'s words). ``work`` may
    roll back itself and raise: the error then passes as it is."""
    state = state or txn.rollback
    try:
        with terminations_interrupt():
            result = work()
            txn.commit()
            return result
    except (KeyboardInterrupt, Interrupted) as exc:
        raise interrupted_error(state() if txn.open else "the install had finished", exc) from None
    except OverlayError as exc:
        if txn.open:
            raise OverlayError(f"{exc.message}; {state()}", details=exc.details) from None
        raise
    except OSError as exc:
        if txn.open:
            raise OverlayError(f"{space_words(exc)}: {state()}") from None
        raise
    finally:
        if txn.open:
            txn.rollback()
