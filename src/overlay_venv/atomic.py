"""Build a directory beside its final place and move it there in one step.

An overlay is built in a hidden staging directory next to its destination and renamed into place
only when complete, so no one ever sees half an overlay under the real name. Two things make that
hold when the process dies without warning (SIGKILL, a node losing its job):

- a *janitor*: a tiny ``sh`` started in its own session that waits for our end of a pipe to close,
  which the kernel does however we die, and then removes the staging directory. It removes it again
  every second for a while: a child we started (pip, a compiler) may outlive us by a moment and
  recreate part of it. When we finish normally we stop the janitor ourselves;
- staging names that carry host and pid, so a later run can also clear debris whose owner is gone
  (the janitor itself killed, a reboot).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

STAGING_PREFIX = ".overlay-venv-tmp-"
# Waits for EOF on stdin (our death or our exit), then removes the staging paths, repeatedly for 30 s.
_JANITOR = 'cat >/dev/null; i=0; while [ "$i" -lt 30 ]; do rm -rf -- "$@"; sleep 1; i=$((i + 1)); done'

_RENAME_EXCHANGE = 2  # from <linux/fs.h>
_AT_FDCWD = -100


def _host() -> str:
    return os.uname().nodename or "host"  # gethostname(), without importing socket


def staging_name(pid: int | None = None, host: str | None = None) -> str:
    return f"{STAGING_PREFIX}{host or _host()}-{pid or os.getpid()}-{secrets.token_hex(4)}"


def parse_staging_name(name: str) -> tuple[str, int] | None:
    """``(host, pid)`` of a staging directory name, or None if the name is not one of ours."""
    if not name.startswith(STAGING_PREFIX):
        return None
    parts = name[len(STAGING_PREFIX) :].rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_staging(parent: Path) -> list[Path]:
    """Remove staging directories in ``parent`` left by dead processes of this host."""
    removed = []
    host = _host()
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    for name in names:
        owner = parse_staging_name(name)
        if owner and owner[0] == host and owner[1] != os.getpid() and not _pid_alive(owner[1]):
            shutil.rmtree(parent / name, ignore_errors=True)
            removed.append(parent / name)
    return removed


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE). False where not supported."""
    import ctypes  # only --clear needs it

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def start_janitor(paths: list[Path]) -> subprocess.Popen:
    """The janitor of the module docstring, for ``paths``; stop it with :func:`stop_janitor`."""
    return subprocess.Popen(
        ["/bin/sh", "-c", _JANITOR, "overlay-venv-janitor", *map(str, paths)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop_janitor(janitor: subprocess.Popen) -> None:
    janitor.kill()
    janitor.wait()
    if janitor.stdin is not None:
        janitor.stdin.close()


# Private temporary directories of install, sync and rebuild: the installer's own temporary files
# go inside (TMPDIR points there), so one removal covers pip's build and unpack directories too.
_TMP_NAME = re.compile(r"^overlay-venv-(?:install|artifacts|rebuild)-(?P<host>.+)-(?P<pid>\d+)-[^-]+$")


def remove_stale_tmp(base: Path) -> list[Path]:
    """Remove private temporary directories in ``base`` whose process (on this host) is gone: what a
    kill left when the janitor died too (a whole process group or cgroup killed)."""
    removed = []
    try:
        names = os.listdir(base)
    except OSError:
        return removed
    host = _host()
    for name in names:
        match = _TMP_NAME.match(name)
        if match and match["host"] == host and int(match["pid"]) != os.getpid() and not _pid_alive(int(match["pid"])):
            shutil.rmtree(base / name, ignore_errors=True)
            removed.append(base / name)
    return removed


@contextlib.contextmanager
def private_tmp(kind: str) -> Iterator[Path]:
    """A temporary directory ``overlay-venv-KIND-HOST-PID-*`` that is removed when the block ends,
    by the janitor if we are killed, or by the next run if the janitor was killed with us."""
    base = Path(tempfile.gettempdir())
    remove_stale_tmp(base)
    path = Path(tempfile.mkdtemp(prefix=f"overlay-venv-{kind}-{_host()}-{os.getpid()}-", dir=base))
    janitor = start_janitor([path])
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        stop_janitor(janitor)


class Staging:
    """A staging directory for ``dest``: ``with Staging(dest) as stage: build in stage.path; stage.commit()``.

    Leaving the block without ``commit`` (an exception) removes the staging directory; dying removes
    it through the janitor.
    """

    def __init__(self, dest: Path):
        self.dest = dest
        self.path = dest.parent / staging_name()
        # Where the old directory goes when no atomic swap is possible; the janitor watches it too.
        self._trash = dest.parent / staging_name()
        self._janitor: subprocess.Popen | None = None
        self._lock: contextlib.AbstractContextManager | None = None

    def __enter__(self) -> Staging:
        remove_stale_staging(self.dest.parent)
        if (self.dest / "overlay-venv.json").is_file():
            # Building a replacement (--clear, rebuild): the old overlay is locked until it is
            # swapped out, so no install lands in it meanwhile (re-entrant for rebuild's own lock).
            from .overlay_lock import command_text, overlay_lock

            self._lock = overlay_lock(self.dest, command_text(), recover=False)
            self._lock.__enter__()
        self._janitor = start_janitor([self.path, self._trash])
        self.path.mkdir()
        return self

    def commit(self, replace: bool) -> None:
        """Move the staging directory to ``dest``.

        Without ``replace`` an existing non-empty ``dest`` (say, a concurrent create that finished
        first) raises FileExistsError. With it the old directory is swapped out in one step where the
        kernel allows, and removed afterwards.

        From here on Ctrl-C is ignored: once the rename is done the command has done its work, and an
        interrupt between it and the command's end would report "interrupted" over a complete result.
        """
        _ignore_interrupts()
        if replace and self.dest.exists():
            if not _exchange(self.path, self.dest):
                # No atomic swap here (non-Linux, or a filesystem without it): two renames.
                os.rename(self.dest, self._trash)
                os.rename(self.path, self.dest)
                self.path = self._trash
            shutil.rmtree(self.path, ignore_errors=True)
            return
        try:
            os.rename(self.path, self.dest)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise FileExistsError(errno.EEXIST, "exists", str(self.dest)) from exc
            raise

    def __exit__(self, *exc_info) -> None:
        # Committed, the staging path is gone; failed, we remove it ourselves (our children have
        # ended). Either way the janitor has nothing left to do: stop it rather than let it wait.
        shutil.rmtree(self.path, ignore_errors=True)
        if self._janitor is not None:
            stop_janitor(self._janitor)
        if self._lock is not None:
            self._lock.__exit__(None, None, None)


def _ignore_interrupts() -> None:
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def replace_file(target: Path, data: bytes, mode: int | None = None) -> None:
    """Put ``data`` at ``target`` in one step: written to a new file beside it (never through a link
    at that name), then renamed over it, so a reader or a process killed halfway never sees half a
    file. ``mode``: exactly that (default: 0o666 less the umask). The one atomic file write of
    overlay-venv: the record, locks, launchers. Raises OSError, leaving nothing behind."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else 0o600)
    try:
        with open(fd, "wb") as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            handle.write(data)
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise

