"""One mutation of an overlay at a time, and no installer that outlives the command that started it.

Every command that changes an overlay in place (``install``, ``sync``, ``rebuild``, ``create --clear``,
``kernel install``) runs inside :func:`overlay_lock`. The lock is an ``flock`` on the file
``OVERLAY/.overlay-venv.lock``: the kernel drops it when the last descriptor of it closes, so it dies
with its holder however that ends (SIGKILL, a node losing its job) and there is no pid file to
judge stale. A second mutation prints one line naming who holds it (command, pid, host) and waits;
with ``wait=False`` (``--no-wait``) it fails at once.

The file is never replaced, only opened, so its identity is stable; ``--clear`` and ``rebuild`` swap
the whole directory, though, so a waiter checks after it got the lock that the file it holds is still
the one at the path, and otherwise locks the new one.

Children: :func:`guarded` wraps an installer's command so that it dies with us. A tiny interpreter
asks the kernel for SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``, kept across exec),
checks the parent is still there, and execs the real command. The lock's descriptor is handed on to
that child (:func:`inherited_fds`), so even in the instant between our death and the child's, the
lock is still held: a job script's immediate retry waits for pip to be gone rather than racing it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from .errors import OverlayError

LOCK_FILE = ".overlay-venv.lock"

# The descriptors of the locks this process holds, by overlay: a nested mutation of the same overlay
# (a command calling another's code) must not wait for itself.
_held: dict[str, int] = {}

# Sets the parent-death signal, then execs argv[2:]. PR_SET_PDEATHSIG is 1, SIGKILL 9. The signal
# comes when the *thread* that started us ends, so installers are started from the main thread.
_GUARD = (
    "import ctypes, os, sys\n"
    "ctypes.CDLL(None).prctl(1, 9)\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    os._exit(137)\n"  # the parent died before the prctl: do nothing at all
    "try:\n"
    "    os.execvp(sys.argv[2], sys.argv[2:])\n"
    "except OSError as exc:\n"
    "    sys.stderr.write(f'cannot run {sys.argv[2]}: {exc.strerror}\\n')\n"
    "    os._exit(127)\n"
)


def lock_path(overlay: Path) -> Path:
    return overlay / LOCK_FILE


def holder_text(raw: bytes) -> str:
    """Who holds a lock, from what the holder wrote into the file: ``pid host command``."""
    pid, _, rest = raw.decode("utf-8", "replace").strip().partition(" ")
    host, _, command = rest.partition(" ")
    if not pid.isdigit():
        return "another overlay-venv command"
    where = f" on {host}" if host and host != os.uname().nodename else ""
    return f"`{command or 'overlay-venv'}` (pid {pid}{where})"


def _open(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except PermissionError:
        try:  # an overlay we may read but not write: a lock still works; the mutation will say why not
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise OverlayError(f"cannot lock {path.parent}: {exc.strerror}") from None
    except OSError as exc:
        raise OverlayError(f"cannot lock {path.parent}: {exc.strerror}") from None


def _same_file(fd: int, path: Path) -> bool:
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)


def acquire(overlay: Path, command: str, wait: bool = True, say: Callable[[str], None] | None = None) -> int:
    """Take the lock of ``overlay``; returns its descriptor (give it to :func:`release`)."""
    path = lock_path(overlay)
    said = False
    while True:
        fd = _open(path)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                who = holder_text(os.pread(fd, 4096, 0))
                if not wait:
                    raise OverlayError(f"{overlay} is busy: {who} is changing it; not waiting (--no-wait)") from None
                if not said:
                    (say or _stderr)(f"overlay-venv: waiting for {who} to finish with {overlay}")
                    said = True
                fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(fd, path):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # the directory was replaced meanwhile (--clear, rebuild): lock the new one
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {os.uname().nodename} {command}\n".encode("utf-8", "replace"), 0)
    except OSError as exc:
        if exc.errno not in (errno.EBADF, errno.EINVAL, errno.ENOSPC, errno.EDQUOT):
            os.close(fd)
            raise OverlayError(f"cannot lock {overlay}: {exc.strerror}") from None
        # read-only descriptor or a full disk: the lock holds; waiters only learn less about us
    return fd


def release(fd: int) -> None:
    os.close(fd)  # drops the flock; the file stays, its identity is what waiters lock


def _stderr(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


@contextlib.contextmanager
def overlay_lock(
    overlay: Path, command: str, wait: bool = True, say: Callable[[str], None] | None = None, recover: bool = True
) -> Iterator[None]:
    """``with overlay_lock(overlay, "overlay-venv install six"): ...``: the one way to change an
    overlay in place. Inside, an install that an earlier command left interrupted has been rolled
    back first (``recover``; see :mod:`overlay_venv.transaction`)."""
    key = os.path.realpath(overlay)
    if key in _held:
        yield
        return
    fd = acquire(Path(overlay), command, wait, say)
    _held[key] = fd
    try:
        if recover:
            from .transaction import recover_locked

            recover_locked(Path(overlay), say or _stderr)
        yield
    finally:
        del _held[key]
        release(fd)


def command_text(argv: Sequence[str] | None = None) -> str:
    """How waiters see us: ``overlay-venv install six`` (a long command line cut short)."""
    words = list(sys.argv[1:] if argv is None else argv)
    text = " ".join(["overlay-venv", *words])
    text = "".join(char if char.isprintable() else "?" for char in text)
    return text if len(text) <= 200 else text[:197] + "..."


def inherited_fds() -> tuple[int, ...]:
    """The lock descriptors an installer started now must inherit (see the module docstring)."""
    return tuple(_held.values())


def guarded(cmd: Sequence[str]) -> list[str]:
    """``cmd`` wrapped so that it is killed when this process dies (Linux; elsewhere unchanged)."""
    if not sys.platform.startswith("linux"):
        return list(cmd)
    return [sys.executable, "-I", "-S", "-c", _GUARD, str(os.getpid()), *cmd]
