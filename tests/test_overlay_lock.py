"""One change of an overlay at a time: the flock of overlay_lock, and installers that die with us.

A helper process holds the lock (as a running install would); the tests check that a second taker
waits with one line naming the holder, fails at once with --no-wait, gets the lock the moment the
holder is SIGKILLed, and follows a directory that --clear or rebuild swapped meanwhile. ``guarded``
children are checked to die with their parent.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from capabilities import require_capability
from conftest import overlay_venv

from overlay_venv.errors import OverlayError
from overlay_venv.overlay_lock import LOCK_FILE, acquire, command_of, guarded, holder_pid, holder_text, overlay_lock, release

HOLD = textwrap.dedent(
    """
    import subprocess, sys, time
    from pathlib import Path
    from overlay_venv.overlay_lock import guarded, inherited_fds, overlay_lock
    with overlay_lock(Path(sys.argv[1]), "overlay-venv install six", recover=False):
        child = subprocess.Popen(guarded(["sleep", "60"]), pass_fds=inherited_fds()) if sys.argv[2] == "child" else None
        print(child.pid if child else 0, flush=True)
        time.sleep(60)
    """
)


def holder(directory: Path, mode: str = "alone") -> tuple[subprocess.Popen, int]:
    """A process holding the lock; its command line ends like an install's, which is how waiters name it."""
    (directory / "pyvenv.cfg").touch()
    argv = [sys.executable, "-c", HOLD, str(directory), mode, "overlay-venv", "install", "six"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    child = int(process.stdout.readline())
    return process, child


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_holder_is_named_by_its_command_and_pid():
    assert command_of(["/usr/bin/python3", "/opt/bin/overlay-venv", "install", "six"]) == "overlay-venv install six"
    assert command_of(["python3", "-m", "overlay_venv", "sync", "a b", "x\ny"]) == "overlay-venv sync a b x?y"
    assert command_of(["sleep", "60"]) == "sleep 60"
    assert holder_text(None) == "another process (not on this host, or not visible here)"
    locks = "1: FLOCK  ADVISORY  WRITE 4711 fe:00:{ino} 0 EOF\n1: -> FLOCK  ADVISORY  WRITE 4712 fe:00:{ino} 0 EOF\n"
    fd = os.open(__file__, os.O_RDONLY)
    try:
        ino = os.fstat(fd).st_ino
        assert holder_pid(fd, locks.format(ino=ino)) == 4711  # the waiter ("->") is not the holder
        assert holder_pid(fd, locks.format(ino=ino + 1)) is None
    finally:
        os.close(fd)


def test_no_wait_fails_at_once_naming_the_holder(tmp_path):
    process, _ = holder(tmp_path)
    try:
        with pytest.raises(OverlayError) as caught:
            acquire(tmp_path, "overlay-venv install other", wait=False)
        message = caught.value.format_message()
        assert (
            message
            == f"{tmp_path} is busy: `overlay-venv install six` (pid {process.pid}) is changing it; not waiting (--no-wait)"
        )
    finally:
        process.kill()
        process.wait()


def test_a_waiter_says_once_what_it_waits_for_and_gets_the_lock_when_the_holder_is_killed(tmp_path):
    process, _ = holder(tmp_path)
    said: list[str] = []
    got: list[int] = []
    thread = threading.Thread(target=lambda: got.append(acquire(tmp_path, "overlay-venv install other", say=said.append)))
    thread.start()
    time.sleep(0.5)
    assert not got, "the lock was taken while held"
    assert said == [f"overlay-venv: waiting for `overlay-venv install six` (pid {process.pid}) to finish with {tmp_path}"]
    process.kill()  # SIGKILL: no clean-up of any kind runs in the holder
    process.wait()
    thread.join(10)
    assert got, "the lock did not die with its holder"
    assert holder_pid(got[0]) == os.getpid()
    release(got[0])


def test_a_waiter_locks_the_new_directory_when_the_old_one_was_swapped_away(tmp_path):
    overlay = tmp_path / "ov"
    overlay.mkdir()
    (overlay / "pyvenv.cfg").touch()
    first = acquire(overlay, "overlay-venv rebuild ov")
    got: list[int] = []
    thread = threading.Thread(target=lambda: got.append(acquire(overlay, "overlay-venv install x", say=lambda _t: None)))
    thread.start()
    time.sleep(0.3)
    os.rename(overlay, tmp_path / "old")  # what --clear and rebuild do, in one step
    overlay.mkdir()
    (overlay / "pyvenv.cfg").touch()
    release(first)
    thread.join(10)
    assert got
    assert os.fstat(got[0]).st_ino == os.stat(overlay / LOCK_FILE).st_ino
    release(got[0])


def test_the_same_process_may_nest_locks_of_one_overlay(tmp_path):
    (tmp_path / "pyvenv.cfg").touch()
    other = [sys.executable, "-c", HOLD, str(tmp_path), "alone"]
    with overlay_lock(tmp_path, "outer", recover=False):
        with overlay_lock(tmp_path, "inner", recover=False):  # does not wait for itself
            held = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import sys; from pathlib import Path; from overlay_venv.overlay_lock import acquire; "
                    "acquire(Path(sys.argv[1]), 'x', wait=False)",
                    str(tmp_path),
                ],
                capture_output=True,
                text=True,
            )
            assert held.returncode != 0 and "is busy" in held.stderr
    process = subprocess.Popen(other, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "0"  # released at the outer block's end: another can take it
    process.kill()
    process.wait()


def test_a_guarded_child_dies_with_its_parent_and_holds_the_lock_until_then(tmp_path):
    process, child = holder(tmp_path, "child")
    assert alive(child)
    process.kill()
    process.wait()
    assert gone_within(child, 2.0), "the installer outlived the command that started it"
    fd = acquire(tmp_path, "retry", wait=False)
    release(fd)


def test_install_waits_or_fails_with_no_wait_on_a_held_overlay(release39, tmp_path):
    overlay = tmp_path / "ov"
    env = release39.env()
    overlay_venv("create", str(overlay), env=env)
    process, _ = holder(overlay)
    try:
        args = ("install", "--overlay", str(overlay), "--no-index", "-f", str(release39.wheels), "basepkg==2.0", "-q")
        refused = overlay_venv(*args, "--no-wait", env=env, check=False)
        assert refused.returncode == 1
        who = f"`overlay-venv install six` (pid {process.pid})"
        assert refused.stderr.splitlines() == [
            f"overlay-venv: error: {overlay} is busy: {who} is changing it; not waiting (--no-wait)"
        ]
        waiting = subprocess.Popen(
            [sys.executable, "-m", "overlay_venv", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        time.sleep(1.5)
        assert waiting.poll() is None, "install did not wait"
        process.kill()
        process.wait()
        out, err = waiting.communicate(timeout=120)
        assert waiting.returncode == 0, err
        assert (
            err.splitlines()[0]
            == f"overlay-venv: waiting for `overlay-venv install six` (pid {process.pid}) to finish with {overlay}"
        )

        # create --clear waits too: the old overlay is not swapped away under a running install.
        process, _ = holder(overlay)
        clearing = subprocess.Popen(
            [sys.executable, "-m", "overlay_venv", "create", str(overlay), "--clear"], env=env, stderr=subprocess.PIPE, text=True
        )
        time.sleep(1.5)
        assert clearing.poll() is None, "create --clear did not wait"
        process.kill()
        process.wait()
        _out, err = clearing.communicate(timeout=120)
        assert clearing.returncode == 0, err
        assert err.splitlines()[0].startswith("overlay-venv: waiting for `overlay-venv install six`")
    finally:
        process.kill()
        process.wait()


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.fixture(params=["setpriv", "python"])
def guard_kind(request, monkeypatch):
    """Each guard in turn: setpriv and sh where setpriv takes --pdeathsig, else the Python one."""
    from overlay_venv import overlay_lock as module

    if request.param == "setpriv":
        if not module._setpriv():
            require_capability("setpriv", "util-linux setpriv with --pdeathsig")
    else:
        monkeypatch.setattr(module, "_setpriv_found", [None])
    return request.param


def test_each_guard_runs_the_command_and_says_when_it_cannot(guard_kind, tmp_path):
    assert (guarded(["x"])[0] == sys.executable) == (guard_kind == "python")
    result = subprocess.run(
        guarded(["sh", "-c", 'printf "%s|" "$@"; exit 3', "sh", "a b", "$(x)"]), capture_output=True, text=True
    )
    assert (result.stdout, result.returncode) == ("a b|$(x)|", 3)
    missing = subprocess.run(guarded([str(tmp_path / "nothing")]), capture_output=True, text=True)
    assert missing.returncode == 127 and "cannot run" in missing.stderr


def test_each_guard_runs_nothing_when_its_parent_is_already_gone(guard_kind, tmp_path):
    """The parent died before the death signal was set: the guard sees another parent and stops."""
    cmd = guarded(["touch", str(tmp_path / "ran")])
    cmd[cmd.index(str(os.getpid()))] = str(dead_pid())
    assert subprocess.run(cmd).returncode == 137
    assert not (tmp_path / "ran").exists()


def test_each_guard_child_dies_with_its_parent(guard_kind, tmp_path):
    """A parent (one Python process) starts a guarded sleep and is SIGKILLed: the sleep goes too."""
    from overlay_venv import overlay_lock as module

    script = (
        "import subprocess, sys, time\n"
        "from overlay_venv import overlay_lock as m\n"
        f"m._setpriv_found[:] = [{module._setpriv()!r}]\n"
        "child = subprocess.Popen(m.guarded(['sleep', '60']))\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    deadline = time.monotonic() + 10  # until the guard has set the signal and exec'd sleep
    while comm(child) != "sleep" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert comm(child) == "sleep"
    parent.kill()
    parent.wait()
    assert gone_within(child, 5.0), "the guarded child outlived its parent"


def test_a_setpriv_without_pdeathsig_is_not_used(tmp_path, monkeypatch):
    from overlay_venv import overlay_lock as module

    fake = tmp_path / "setpriv"
    fake.write_text("#!/bin/sh\necho 'setpriv from util-linux 2.32: --reuid --regid'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setattr(module, "_setpriv_found", [])
    assert guarded(["true"])[0] == sys.executable
