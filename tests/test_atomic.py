"""A create killed at any moment leaves no half overlay and no debris; concurrent creates end with one."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CLI, overlay_venv

from overlay_venv.atomic import parse_staging_name, remove_stale_staging, staging_name

STAGING = ".overlay-venv-tmp-"


def wait_for_no_debris(parent: Path, timeout: float = 5.0) -> list[str]:
    """The janitor runs when the pipe closes; give it a moment."""
    deadline = time.monotonic() + timeout
    while True:
        left = [name for name in os.listdir(parent) if name.startswith(STAGING)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def works(overlay: Path, env: dict) -> bool:
    result = subprocess.run([str(overlay / "bin" / "python"), "-c", "import pip"], env=env, capture_output=True)
    return (overlay / "overlay-venv.json").is_file() and (overlay / "bin" / "activate").is_file() and result.returncode == 0


def test_sigkill_at_any_point_leaves_nothing_half_made(release39, tmp_path):
    env = release39.env()
    start = time.monotonic()
    subprocess.run([CLI, "create", str(tmp_path / "timing")], env=env, check=True, capture_output=True)
    duration = time.monotonic() - start
    # Kill at evenly spread moments over a whole create, from the start to just after the end.
    delays = [duration * fraction for fraction in (0.02, 0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 0.9, 0.97, 1.1)]
    for index, delay in enumerate(delays):
        parent = tmp_path / f"kill{index}"
        parent.mkdir()
        dest = parent / "env"
        proc = subprocess.Popen([CLI, "create", str(dest)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert wait_for_no_debris(parent) == [], f"debris after a kill at {delay:.2f}s"
        leftovers = os.listdir(parent)
        assert leftovers in ([], ["env"]), leftovers
        if leftovers:
            assert works(dest, env), f"a kill at {delay:.2f}s left a broken {dest}"
        # Re-running the same command succeeds, whatever the kill left.
        rerun = subprocess.run([CLI, "create", str(dest)], env=env, capture_output=True, text=True)
        assert rerun.returncode == 0, rerun.stderr
        assert works(dest, env)


def run_two_creates(dest: Path, env: dict[str, str], *options: str) -> list[tuple[int, str, str]]:
    procs = [
        subprocess.Popen([CLI, "create", str(dest), *options], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    return sorted((proc.wait(), *proc.communicate()) for proc in procs)


def test_two_creates_at_once_end_with_one_overlay_and_a_clear_error(release39, tmp_path):
    """Both building at once (--no-cache: virtualenv each, half a second): one wins, the other says
    so in one line and fails."""
    env = release39.env()
    dest = tmp_path / "env"
    (ok_code, ok_out, _), (err_code, _, err) = run_two_creates(dest, env, "--no-cache")
    assert ok_code == 0 and "created overlay" in ok_out
    assert err_code != 0
    assert len(err.strip().splitlines()) == 1 and "another process" in err
    assert works(dest, env)
    assert wait_for_no_debris(tmp_path) == []


def test_two_warm_creates_at_once_end_with_one_overlay(release39, tmp_path):
    """From a skeleton a create takes a fifth of a second, so the second may look only after the first
    has finished: then it finds the same overlay and has nothing to do, as any re-run. Either way one
    of them built it, and the other said what happened in one line."""
    env = release39.env()
    overlay_venv("create", str(tmp_path / "warm-up"), env=env)
    dest = tmp_path / "env"
    outcomes = run_two_creates(dest, env)
    built = [out for code, out, _ in outcomes if code == 0 and "created overlay" in out]
    others = [(code, out + err) for code, out, err in outcomes if "created overlay" not in out]
    assert len(built) == 1 and len(others) == 1
    code, message = others[0]
    assert len(message.strip().splitlines()) == 1
    assert (code != 0 and "another process" in message) or (code == 0 and "nothing to do" in message)
    assert works(dest, env)
    assert wait_for_no_debris(tmp_path) == []


def test_staging_names_round_trip():
    name = staging_name(pid=1234, host="login-01.cern.ch")
    assert parse_staging_name(name) == ("login-01.cern.ch", 1234)
    assert parse_staging_name("myenv") is None
    assert parse_staging_name(STAGING + "garbage") is None


def test_stale_staging_of_dead_processes_is_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / staging_name(pid=dead.pid)
    alive = tmp_path / staging_name(pid=os.getppid())
    other_host = tmp_path / staging_name(pid=dead.pid, host="elsewhere")
    for path in (stale, alive, other_host):
        path.mkdir()
    assert remove_stale_staging(tmp_path) == [stale]
    assert sorted(os.listdir(tmp_path)) == sorted([alive.name, other_host.name])


@pytest.mark.skipif(sys.platform != "linux", reason="renameat2 is Linux-only")
def test_clear_swaps_atomically(release39, tmp_path):
    env = release39.env()
    dest = tmp_path / "env"
    subprocess.run([CLI, "create", str(dest)], env=env, check=True, capture_output=True)
    inode_before = dest.stat().st_ino
    subprocess.run([CLI, "create", "--clear", str(dest)], env=env, check=True, capture_output=True)
    assert dest.stat().st_ino != inode_before
    assert works(dest, env)
    assert wait_for_no_debris(tmp_path) == []


# A process that holds a lock, starts a janitor for DIR, says the janitor's pid, and dies by SIGKILL.
_DIE_WITH_A_JANITOR = r"""
import fcntl, os, signal, sys
from pathlib import Path
from overlay_venv.atomic import Janitor
lock = open(sys.argv[2], "w")
fcntl.flock(lock, fcntl.LOCK_EX)
janitor = Janitor([Path(sys.argv[1])])
print(janitor.pid, flush=True)
sys.stdin.readline()
os.kill(os.getpid(), signal.SIGKILL)
"""


def _open_files(pid: int) -> dict[int, str]:
    """The descriptors ``pid`` holds now; one it closes between the listing and the look is gone."""
    fds = Path(f"/proc/{pid}/fd")
    found = {}
    for fd in os.listdir(fds):
        with contextlib.suppress(FileNotFoundError):
            found[int(fd)] = os.readlink(fds / fd)
    return found


def test_the_janitor_is_a_fork_holding_only_its_pipe_and_cleans_up_after_sigkill(tmp_path):
    """No program is started; the janitor keeps neither the dead owner's stdout (a caller reading it
    would wait for the janitor) nor its lock (the next command would wait for it) open."""
    staging, lock = tmp_path / "stage", tmp_path / "lock"
    (staging / "lib").mkdir(parents=True)
    owner = subprocess.Popen(
        [sys.executable, "-c", _DIE_WITH_A_JANITOR, str(staging), str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    janitor = int(owner.stdout.readline())
    try:
        deadline = time.monotonic() + 10  # it names itself and closes what it inherited right after the fork
        while Path(f"/proc/{janitor}/comm").read_text().strip() != "overlay-janitor" and time.monotonic() < deadline:
            time.sleep(0.01)
        while len(_open_files(janitor)) > 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert Path(f"/proc/{janitor}/comm").read_text().strip() == "overlay-janitor"
        assert Path(f"/proc/{janitor}/exe").resolve() == Path(f"/proc/{owner.pid}/exe").resolve()  # no exec
        files = _open_files(janitor)
        assert sorted(files) == [0, 1, 2], files
        assert files[0].startswith("pipe:") and files[1] == files[2] == os.devnull
        assert os.getsid(janitor) == janitor != os.getsid(owner.pid)  # its own session
        owner.stdin.write("go\n")
        owner.stdin.flush()
        assert owner.wait() == -signal.SIGKILL
        assert owner.stdout.read() == ""  # EOF: the janitor does not hold the dead owner's stdout
        deadline = time.monotonic() + 10
        while staging.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not staging.exists()
        import fcntl

        with open(lock, "w") as handle:  # free at once, though the janitor still runs
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert os.path.exists(f"/proc/{janitor}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(janitor, signal.SIGKILL)


def test_a_janitor_stopped_by_its_owner_removes_nothing(tmp_path):
    from overlay_venv.atomic import Janitor

    staging = tmp_path / "stage"
    staging.mkdir()
    janitor = Janitor([staging])
    janitor.stop()
    assert staging.is_dir() and not os.path.exists(f"/proc/{janitor.pid}")
