"""Build a directory beside its final place and move it there in one step.

An overlay is built in a hidden staging directory next to its destination and renamed into place
only when complete, so no one ever sees half an overlay under the real name. Two things make that
hold when the process dies without warning (SIGKILL, a node losing its job):

- a *janitor*: a child forked (no program started: a fork costs a fraction of an exec of ``sh``)
  into its own session, holding only the read end of a pipe whose write end only we hold. The
  kernel closes that end however we die, the janitor reads EOF and removes the staging directory.
  It removes it again every second for a while: a child we started (pip, a compiler) may outlive us
  by a moment and recreate part of it. When we finish normally we stop the janitor ourselves. It
  keeps no other file of ours open: not our stdout (a caller reading it would wait for the janitor)
  nor a lock (the next command would wait for it). Where other threads run, forking is unsafe (a
  lock held by one of them stays held in the child), so there the janitor is one ``sh``;
- staging names that carry host and pid, so a later run can also clear debris whose owner is gone
  (the janitor itself killed, a reboot). That alone is not enough: a killed job may never run again
  in that directory, and a shared project area would keep a half overlay of hundreds of MB.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

STAGING_PREFIX = ".overlay-venv-tmp-"
# What the janitor is called in ps (its /proc/PID/comm; 15 bytes at most).
JANITOR_NAME = "overlay-janitor"
JANITOR_ROUNDS = 30  # removals, a second apart, after our death
# The janitor where forking is unsafe: waits for EOF on stdin, then removes the paths repeatedly.
_SH_JANITOR = 'read -r _; i=0; while [ "$i" -lt 30 ]; do rm -rf -- "$@"; sleep 1; i=$((i + 1)); done'

_RENAME_EXCHANGE = 2  # from <linux/fs.h>
_AT_FDCWD = -100


def _host() -> str:
    return os.uname().nodename or "host"  # gethostname(), without importing socket


def staging_name(pid: int | None = None, host: str | None = None) -> str:
    return f"{STAGING_PREFIX}{host or _host()}-{pid or os.getpid()}-{os.urandom(4).hex()}"  # secrets would load OpenSSL


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
            remove_tree(parent / name)
            removed.append(parent / name)
    return removed


def remove_tree(path: Path | str) -> None:
    """Remove ``path`` and all it holds as far as possible (shutil.rmtree, errors ignored); nothing
    when it is not there, as after a commit: shutil, ~1.4 ms to import, is then not even loaded."""
    if not os.path.lexists(path):
        return
    import shutil

    shutil.rmtree(path, ignore_errors=True)


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


class Janitor:
    """The janitor of the module docstring for ``paths``, started at once; :meth:`stop` ends it."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = [os.fsencode(path) for path in paths]
        self.pid = 0
        self._sh = None
        if threading_active():
            import subprocess  # only here: a warm create starts no program

            self._sh = subprocess.Popen(
                ["/bin/sh", "-c", _SH_JANITOR, JANITOR_NAME, *map(str, paths)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            return
        read_end, self._write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns into our caller's code
            try:
                _janitor_child(read_end, self.paths)
            finally:
                os._exit(0)
        os.close(read_end)
        self.pid = pid

    def stop(self) -> None:
        if self._sh is not None:
            self._sh.kill()
            self._sh.wait()
            self._sh.stdin.close()
            return
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self._write_end)


def threading_active() -> bool:
    """Is any thread but this one running? Only then is ``threading`` even imported."""
    threading = sys.modules.get("threading")
    return threading is not None and threading.active_count() > 1


def _janitor_child(read_end: int, paths: list[bytes]) -> None:
    os.setsid()  # a Ctrl-C or hang-up to our terminal or process group must not end it
    try:
        with open("/proc/self/comm", "w") as comm:
            comm.write(JANITOR_NAME)
    except OSError:
        pass
    keep_no_descriptors(stdin=read_end)
    while os.read(0, 512):  # nothing is ever written: this returns at EOF, our end closed
        pass
    for _round in range(JANITOR_ROUNDS):
        for path in paths:
            remove_tree(path)
        time.sleep(1)


def keep_no_descriptors(stdin: int | None = None) -> None:
    """In a detached child: stdin is ``stdin`` (else /dev/null), stdout and stderr /dev/null, and
    nothing else of the parent's stays open (not its stdout: a caller reading it would wait for us;
    not a lock: the next command would)."""
    if stdin is not None:
        os.dup2(stdin, 0)  # before /dev/null is opened: it could otherwise take a closed 0 and be overwritten
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (1, 2) if stdin is not None else (0, 1, 2):
        os.dup2(null, fd)
    os.closerange(3, _fd_limit())


def _fd_limit() -> int:
    try:
        return max(int(name) for name in os.listdir("/proc/self/fd")) + 1
    except (OSError, ValueError):
        return os.sysconf("SC_OPEN_MAX")


def start_janitor(paths: list[Path]) -> Janitor:
    """The janitor of the module docstring, for ``paths``; stop it with :func:`stop_janitor`."""
    return Janitor(paths)


def stop_janitor(janitor: Janitor) -> None:
    janitor.stop()


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
            remove_tree(base / name)
            removed.append(base / name)
    return removed


@contextlib.contextmanager
def private_tmp(kind: str) -> Iterator[Path]:
    """A temporary directory ``overlay-venv-KIND-HOST-PID-*`` that is removed when the block ends,
    by the janitor if we are killed, or by the next run if the janitor was killed with us."""
    import tempfile  # here: create needs none of it

    base = Path(tempfile.gettempdir())
    remove_stale_tmp(base)
    path = Path(tempfile.mkdtemp(prefix=f"overlay-venv-{kind}-{_host()}-{os.getpid()}-", dir=base))
    janitor = start_janitor([path])
    try:
        yield path
    finally:
        remove_tree(path)
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
        self._janitor: Janitor | None = None
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
            remove_tree(self.path)
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
        remove_tree(self.path)
        if self._janitor is not None:
            stop_janitor(self._janitor)
        if self._lock is not None:
            self._lock.__exit__(None, None, None)


def _ignore_interrupts() -> None:
    # Only the main thread may set a handler (ValueError elsewhere): asking signal itself spares
    # importing threading (~1.5 ms of a warm create) to find out which thread this is.
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:
        pass


def replace_file(target: Path, data: bytes, mode: int | None = None) -> None:
    """Put ``data`` at ``target`` in one step: written to a new file beside it (never through a link
    at that name), then renamed over it, so a reader or a process killed halfway never sees half a
    file. ``mode``: exactly that (default: 0o666 less the umask). The one atomic file write of
    overlay-venv: the record, locks, launchers. Raises OSError, leaving nothing behind."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.part")
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
