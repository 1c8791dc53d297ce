"""One mutation of an overlay at a time, and no installer that outlives the command that started it.

Every command that changes an overlay in place (``install``, ``sync``, ``rebuild``, ``create --clear``,
``kernel install``) runs inside :func:`overlay_lock`. The lock is an ``flock`` on the overlay's
``pyvenv.cfg``: the kernel drops it when the last descriptor of it closes, so it dies with its holder
however that ends (SIGKILL, a node losing its job), and there is no pid file to judge stale. The
file is one every overlay has and no install replaces, so locking leaves no trace in the overlay
(a failed install changes nothing, not even a lock file; ``pack`` has nothing extra to carry). Who
holds a lock is read from ``/proc/locks`` and the holder's command line; a second mutation prints one
line naming it (command, pid) and waits; with ``wait=False`` (``--no-wait``) it fails at once.

``--clear`` and ``rebuild`` swap the whole directory (and relocating writes ``pyvenv.cfg`` anew), so
a waiter checks after it got the lock that the file it holds is still the one at the path, and
otherwise locks the new one.

Children: :func:`guarded` wraps an installer's command so that it dies with us. A tiny wrapper
asks the kernel for SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``, kept across exec),
checks the parent is still there, and execs the real command: util-linux's ``setpriv`` and ``sh``
where setpriv takes ``--pdeathsig``, else a tiny interpreter. The lock's descriptor is handed on to
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

LOCK_FILE = "pyvenv.cfg"

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


def command_of(argv: Sequence[str]) -> str:
    """How a process is shown to a waiter: ``overlay-venv install six`` for an overlay-venv command
    (however it was started: the console script, ``python -m overlay_venv``), else its command line."""
    words = list(argv)
    for index, word in enumerate(words):
        if os.path.basename(word) == "overlay-venv":
            words = ["overlay-venv", *words[index + 1 :]]
            break
        if word == "-m" and words[index + 1 : index + 2] == ["overlay_venv"]:
            words = ["overlay-venv", *words[index + 2 :]]
            break
    text = "".join(char if char.isprintable() else "?" for char in " ".join(words))
    return text if len(text) <= 200 else text[:197] + "..."


def holder_pid(fd: int, locks_text: str | None = None) -> int | None:
    """The pid holding an flock on ``fd``'s file, from ``/proc/locks`` (None: not visible here, e.g.
    a holder on another NFS client)."""
    info = os.fstat(fd)
    exact = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    if locks_text is None:
        try:
            with open("/proc/locks", encoding="ascii", errors="replace") as handle:
                locks_text = handle.read()
        except OSError:
            return None
    same_inode = []
    for line in locks_text.splitlines():
        parts = line.split()
        if len(parts) < 6 or parts[1] == "->" or parts[1] != "FLOCK" or not parts[4].isdigit():
            continue  # "->" marks a waiter, not a holder
        if parts[5] == exact:
            return int(parts[4])
        if parts[5].rsplit(":", 1)[-1] == str(info.st_ino):
            same_inode.append(int(parts[4]))  # overlayfs and the like report another device
    return same_inode[0] if len(same_inode) == 1 else None


def holder_text(pid: int | None) -> str:
    if pid is None:
        return "another process (not on this host, or not visible here)"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = [os.fsdecode(word) for word in handle.read().split(b"\0") if word]
    except OSError:
        argv = []
    return f"`{command_of(argv)}` (pid {pid})" if argv else f"process {pid}"


def _open(path: Path) -> int:
    # Opened for writing where we may: flock over NFS is a POSIX write lock, which needs it.
    try:
        return os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        raise OverlayError(f"cannot lock {path.parent}: it has no {path.name} (not an overlay?)") from None
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise OverlayError(f"cannot lock {path.parent}: {exc.strerror}") from None
    # An overlay we may read but not write (another user's, or on a read-only mount: a team's group
    # area): a lock still works for reading it (publish, lock); a mutation will say why it cannot.
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
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
    """Take the lock of ``overlay``; returns its descriptor (give it to :func:`release`). ``command``
    names what we are doing in messages; waiters read who we are from /proc."""
    path = lock_path(overlay)
    said = False
    while True:
        fd = _open(path)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                who = holder_text(holder_pid(fd))
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
    """This command as waiters and the interrupted-install message show it: ``overlay-venv install six``."""
    return command_of(["overlay-venv", *(sys.argv[1:] if argv is None else argv)])


def inherited_fds() -> tuple[int, ...]:
    """The lock descriptors an installer started now must inherit (see the module docstring)."""
    return tuple(_held.values())


# The same guard from util-linux's setpriv (2.33+) and sh: two small execs, ~3 ms, where the Python
# guard is an interpreter start and ctypes, ~11 ms, paid by every installer run. setpriv sets the
# parent-death signal and execs sh, which checks its parent ($PPID, read once the signal is set) as
# _GUARD does. A missing command fails before exec, in _GUARD's words.
_SH_GUARD = (
    '[ "$PPID" = "$1" ] || exit 137; shift; '
    'command -v "$1" >/dev/null 2>&1 || { echo "cannot run $1: not found or not executable" >&2; exit 127; }; '
    'exec "$@"'
)
_setpriv_found: list[str | None] = []  # [] until looked for, once a process


def _setpriv() -> str | None:
    """setpriv, if it takes --pdeathsig (util-linux 2.33, 2018; older ones refuse it) and there is a
    /bin/sh. Asked of the binary itself, once a process: its option table names the options it takes,
    so reading it (~0.1 ms) answers without running it (an exec, ~2 ms, as much as the guard saves)."""
    if not _setpriv_found:
        import shutil

        found = shutil.which("setpriv")
        try:
            with open(found or "", "rb") as binary:
                takes = b"pdeathsig" in binary.read(16 << 20)
        except OSError:
            takes = False
        _setpriv_found.append(found if takes and os.access("/bin/sh", os.X_OK) else None)
    return _setpriv_found[0]


def guarded(cmd: Sequence[str]) -> list[str]:
    """``cmd`` wrapped so that it is killed when this process dies (Linux; elsewhere unchanged)."""
    if not sys.platform.startswith("linux"):
        return list(cmd)
    setpriv = _setpriv()
    if setpriv:
        return [setpriv, "--pdeathsig", "KILL", "--", "/bin/sh", "-c", _SH_GUARD, "sh", str(os.getpid()), *cmd]
    return [sys.executable, "-I", "-S", "-c", _GUARD, str(os.getpid()), *cmd]
