"""Installs that are all or nothing: SIGKILL, Ctrl-C, a full disk and pip failures never leave half a package.

Real pip installs from local wheels (no network) into overlays on the read-only 3.9 release. The wheel
``manyfiles`` has 500 small modules, so a kill at a random moment often lands while pip writes. After
every kill the overlay must be as before or as after: every dist-info's RECORD files exist with their
hashes, no package directory without a dist-info, one copy of the package, and what ``list`` reads
(the dist-info) is what Python imports.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from capabilities import require_capability
from conftest import make_base, overlay_venv

from overlay_venv import transaction
from overlay_venv.operations.lock import overlay_versions
from overlay_venv.overlay_lock import overlay_lock

MODULES = 500
PACKAGE = "manyfiles"
KILLS = 100
WORKERS = 4


def build_manyfiles(wheels: Path) -> None:
    modules = {f"{PACKAGE}/m{i:04d}.py": f"X = {i}\n" * 20 for i in range(MODULES)}
    for version in ("1.0", "2.0"):
        init = f"__version__ = {version!r}\n\ndef main():\n    print(__version__)\n"
        make_base.build_wheel(
            wheels,
            PACKAGE,
            version,
            modules={**modules, f"{PACKAGE}/__init__.py": init},
            console_scripts={"manytool": f"{PACKAGE}:main"},
        )


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("atomic-wheels")
    build_manyfiles(path)
    return path


def new_overlay(release, parent: Path, name: str = "ov") -> Path:
    overlay_venv("create", str(parent / name), env=release.env())
    return parent / name


def install_cmd(overlay: Path, wheels: Path, version: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "overlay_venv",
        "install",
        "--overlay",
        str(overlay),
        "--no-index",
        "-f",
        str(wheels),
        f"{PACKAGE}=={version}",
        "-q",
        *extra,
    ]


def site_of(overlay: Path) -> Path:
    return next((overlay / "lib").glob("python3.*/site-packages"))


_OURS = ("_overlay_venv", "~overlay_venv", "_virtualenv", "__pycache__")


def half_installed(site: Path) -> list[str]:
    """What is wrong in ``site`` as an installer left it; [] when every distribution is whole."""
    problems = []
    owned = set()
    for info in sorted(site.glob("*.dist-info")):
        record = info / "RECORD"
        if not record.is_file():
            problems.append(f"{info.name} has no RECORD")
            continue
        for row in csv.reader(record.read_text(encoding="utf-8").splitlines()):
            if not row:
                continue
            path, digest = row[0], (row[1] if len(row) > 1 else "")
            owned.add(Path(path).parts[0])
            if "__pycache__" in path or path.endswith(".pyc"):
                continue  # bytecode: written whole by rename, and the seeded pip lists some it lacks
            full = site / path
            if not os.path.lexists(full):
                problems.append(f"{path} of {info.name} is missing")
            elif digest:
                algorithm, _, expected = digest.partition("=")
                got = base64.urlsafe_b64encode(hashlib.new(algorithm, full.read_bytes()).digest()).rstrip(b"=").decode()
                if got != expected:
                    problems.append(f"{path} of {info.name} has other bytes than its RECORD says")
    for entry in sorted(site.iterdir()):
        name = entry.name
        if name.endswith((".dist-info", ".pth", ".virtualenv")) or name.startswith(_OURS):
            continue
        if name not in owned:
            problems.append(f"{name} belongs to no dist-info")
    copies = [info.name for info in site.glob(f"{PACKAGE}-*.dist-info")]
    if len(copies) > 1:
        problems.append(f"{len(copies)} copies of {PACKAGE}: {copies}")
    return problems


def imported_version(overlay: Path, release) -> str:
    result = subprocess.run(
        [str(overlay / "bin" / "python"), "-c", f"import {PACKAGE}; print({PACKAGE}.__version__)"],
        env=release.env(),
        capture_output=True,
        text=True,
    )
    return result.stdout.strip() if result.returncode == 0 else "(no import)"


def listed_version(overlay: Path) -> str:
    return overlay_versions(overlay, [str(site_of(overlay).relative_to(overlay))]).get(PACKAGE, "(none)")


def installers_of(overlay: Path) -> list[str]:
    """Command lines of running processes that use the overlay's interpreter (pip, or the guard)."""
    needle = os.fsencode(str(overlay / "bin" / "python"))
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmdline = handle.read()
        except OSError:
            continue
        if needle in cmdline:
            found.append(cmdline.replace(b"\0", b" ").decode("utf-8", "replace"))
    return found


def wait_gone(overlay: Path, seconds: float = 10.0) -> list[str]:
    deadline = time.monotonic() + seconds
    while True:
        alive = installers_of(overlay)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.02)


def whole(overlay: Path, release) -> list[str]:
    problems = half_installed(site_of(overlay))
    listed, imported = listed_version(overlay), imported_version(overlay, release)
    if listed != imported:
        problems.append(f"list says {listed}, Python imports {imported}")
    return problems


def _package_inode(overlay: Path):
    try:
        return os.stat(site_of(overlay) / PACKAGE).st_ino
    except OSError:
        return None


def calibrate(release, overlay: Path, command: list[str]) -> tuple[float, float]:
    """One uninterrupted run: when (seconds after start) pip began to replace the package (its
    directory moved away or appeared) and when the run ended."""
    old = _package_inode(overlay)
    start = time.monotonic()
    process = subprocess.Popen(command, env=release.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    writing = None
    while process.poll() is None:
        if writing is None and _package_inode(overlay) != old:
            writing = time.monotonic() - start
        time.sleep(0.002)
    assert process.returncode == 0
    end = time.monotonic() - start
    return (writing if writing is not None else 0.0), end


def kill_worker(release, overlay: Path, commands, kills: int, seed: int, stats: dict, lock: threading.Lock) -> None:
    """Run ``commands(i)`` again and again, SIGKILL each at a random moment, and check the overlay after
    each (rolled back in-process, as the next command would). A third of the moments are anywhere in
    the time a full run takes (start-up, snapshot, pip, commit), the rest from when pip began to
    replace the package to the end (where a package can be half written)."""
    rng = random.Random(seed)
    writing, full = calibrate(release, overlay, commands(0))
    share = writing / full  # of a run's time, before pip begins to replace the package
    done = i = 0
    while done < kills:
        i += 1
        moment = rng.uniform(0, full) if i % 3 == 0 else rng.uniform(max(0.0, (share - 0.05) * full), full)
        started = time.monotonic()
        process = subprocess.Popen(commands(i), env=release.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            process.wait(timeout=moment)
            # Faster than the estimate (the machine's load changes): aim earlier from now on.
            full = 0.7 * full + 0.3 * 0.95 * (time.monotonic() - started)
            with lock:
                stats["finished"] += 1
            continue
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        done += 1
        left = wait_gone(overlay)
        before = half_installed(site_of(overlay))
        transaction.recover(overlay, lambda _text: None)
        after = whole(overlay, release)
        with lock:
            stats["kills"] += 1
            stats["half before recovery"] += bool(before)
            if left:
                stats["installers left"].append(left)
            if after:
                stats["broken"].append(after)


def run_kills(release, overlays_and_commands, kills: int) -> dict:
    stats = {"kills": 0, "finished": 0, "half before recovery": 0, "installers left": [], "broken": []}
    lock = threading.Lock()
    per = kills // len(overlays_and_commands)
    threads = [
        threading.Thread(target=kill_worker, args=(release, overlay, commands, per, seed, stats, lock))
        for seed, (overlay, commands) in enumerate(overlays_and_commands)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return stats


def test_sigkill_at_random_moments_during_install_and_sync_leaves_nothing_half_installed(release39, wheels, tmp_path):
    started = time.monotonic()
    jobs = []
    # install: alternating versions, so every run replaces 500 files
    for n in range(WORKERS // 2):
        overlay = new_overlay(release39, tmp_path, f"inst{n}")
        jobs.append((overlay, lambda i, ov=overlay: install_cmd(ov, wheels, "2.0" if i % 2 == 0 else "1.0")))
    # sync: between two locks, one per version
    locks = {}
    for version in ("1.0", "2.0"):
        source = new_overlay(release39, tmp_path, f"lock{version}")
        subprocess.run(install_cmd(source, wheels, version), env=release39.env(), check=True, capture_output=True)
        locks[version] = tmp_path / f"pylock.{version}.toml"
        overlay_venv("lock", str(source), "-o", str(locks[version]), "--no-index", "-f", str(wheels), env=release39.env())
    for n in range(WORKERS - WORKERS // 2):
        overlay = new_overlay(release39, tmp_path, f"sync{n}")
        jobs.append(
            (
                overlay,
                lambda i, ov=overlay: [
                    sys.executable,
                    "-m",
                    "overlay_venv",
                    "sync",
                    str(ov),
                    str(locks["2.0" if i % 2 == 0 else "1.0"]),
                ],
            )
        )
    stats = run_kills(release39, jobs, KILLS)
    elapsed = time.monotonic() - started
    print(
        f"\n{stats['kills']} SIGKILLs ({stats['finished']} runs finished first) in {elapsed:.0f} s: "
        f"{stats['half before recovery']} left a half-installed package before the roll-back, "
        f"{len(stats['broken'])} after it; {len(stats['installers left'])} left an installer running"
    )
    assert stats["kills"] == KILLS
    assert stats["broken"] == [], stats["broken"][:3]
    assert stats["installers left"] == [], stats["installers left"][:3]
    # The kills did land while pip wrote: without the roll-back these would be half-installed packages.
    assert stats["half before recovery"] > 0


def test_the_next_command_rolls_back_and_says_so(release39, wheels, tmp_path):
    overlay = new_overlay(release39, tmp_path)
    subprocess.run(install_cmd(overlay, wheels, "1.0"), env=release39.env(), check=True, capture_output=True)
    process = subprocess.Popen(
        install_cmd(overlay, wheels, "2.0"), env=release39.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    # Kill once pip is writing: the new version's first files appear while the old dist-info is there.
    deadline = time.monotonic() + 60
    while not (transaction.interrupted(overlay) and installers_of(overlay)) and time.monotonic() < deadline:
        time.sleep(0.01)
    process.kill()
    process.wait()
    assert wait_gone(overlay) == []
    assert transaction.interrupted(overlay)
    retry = subprocess.run(install_cmd(overlay, wheels, "1.0"), env=release39.env(), capture_output=True, text=True)
    assert retry.returncode == 0, retry.stderr
    assert "was interrupted before it finished; rolled back: the overlay is as it was before" in retry.stderr
    assert f"`overlay-venv install --overlay {overlay}" in retry.stderr
    assert not transaction.interrupted(overlay)
    assert whole(overlay, release39) == []
    assert listed_version(overlay) == "1.0"


def test_two_concurrent_installs_of_two_versions_serialize(release39, wheels, tmp_path):
    overlay = new_overlay(release39, tmp_path)
    for _round in range(3):
        first = subprocess.Popen(install_cmd(overlay, wheels, "1.0"), env=release39.env(), stderr=subprocess.PIPE, text=True)
        second = subprocess.Popen(install_cmd(overlay, wheels, "2.0"), env=release39.env(), stderr=subprocess.PIPE, text=True)
        errors = [first.communicate()[1], second.communicate()[1]]
        assert first.returncode == 0 and second.returncode == 0, errors
        waited = [line for text in errors for line in text.splitlines() if line.startswith("overlay-venv: waiting for")]
        assert len(waited) <= 1
        assert half_installed(site_of(overlay)) == []
        assert len(list(site_of(overlay).glob(f"{PACKAGE}-*.dist-info"))) == 1
        assert listed_version(overlay) == imported_version(overlay, release39)


def test_a_killed_overlay_venv_leaves_no_pip_and_an_immediate_retry_waits_for_nothing(release39, wheels, tmp_path):
    overlay = new_overlay(release39, tmp_path)
    process = subprocess.Popen(
        install_cmd(overlay, wheels, "2.0"), env=release39.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while not any(" -m pip install" in line for line in installers_of(overlay)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert installers_of(overlay), "pip never started"
    process.kill()
    process.wait()
    assert wait_gone(overlay, 2.0) == []
    retry = subprocess.run(install_cmd(overlay, wheels, "1.0", "--no-wait"), env=release39.env(), capture_output=True, text=True)
    assert retry.returncode == 0, retry.stderr
    assert whole(overlay, release39) == []


def test_ctrl_c_rolls_back_with_a_true_message(release39, wheels, tmp_path):
    overlay = new_overlay(release39, tmp_path)
    subprocess.run(install_cmd(overlay, wheels, "1.0"), env=release39.env(), check=True, capture_output=True)
    new_files = site_of(overlay) / f"{PACKAGE}-2.0.dist-info"
    # As a terminal does: SIGINT to the whole foreground process group, once pip is writing (it has
    # moved the old copy away). Not after a fixed wait: on a fast machine pip may be done by then.
    # A test process starved on a loaded machine may signal only once the install has ended (or is
    # past the point where Python can still raise: its exit): nothing was interrupted then, and the
    # exit status and the whole 2.0 say so truly. The 1.0 it replaced is put back for another try.
    for _attempt in range(5):
        old = _package_inode(overlay)
        process = subprocess.Popen(
            install_cmd(overlay, wheels, "2.0"), env=release39.env(), stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while _package_inode(overlay) == old and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
        _out, err = process.communicate()
        if process.returncode != 0 or err.strip():
            break
        assert listed_version(overlay) == "2.0" and whole(overlay, release39) == [], "exit status 0 but not installed"
        subprocess.run(install_cmd(overlay, wheels, "1.0"), env=release39.env(), check=True, capture_output=True)
    else:
        pytest.fail("each install ended before the test could interrupt it")
    assert err.strip(), f"no message at all; exit status {process.returncode}"
    last = err.strip().splitlines()[-1]
    assert process.returncode != 0, err
    assert last.endswith(("rolled back: the overlay is as it was before", "nothing was installed; the overlay is unchanged")), err
    assert whole(overlay, release39) == []
    assert listed_version(overlay) == "1.0" and not new_files.exists()
    assert not transaction.interrupted(overlay)


def test_sigterm_rolls_back_at_once_and_ends_pip(release39, wheels, tmp_path):
    """A batch system's time limit: SIGTERM to overlay-venv alone, while pip writes."""
    overlay = new_overlay(release39, tmp_path)
    subprocess.run(install_cmd(overlay, wheels, "1.0"), env=release39.env(), check=True, capture_output=True)
    old = _package_inode(overlay)
    process = subprocess.Popen(install_cmd(overlay, wheels, "2.0"), env=release39.env(), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while _package_inode(overlay) == old and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate()
    assert process.returncode == 130, err
    assert (
        err.strip().splitlines()[-1] == "overlay-venv: error: interrupted (SIGTERM): rolled back: the overlay is as it was before"
    )
    assert wait_gone(overlay, 2.0) == []
    assert whole(overlay, release39) == [] and listed_version(overlay) == "1.0"
    assert not transaction.interrupted(overlay)


def test_a_full_disk_rolls_back_with_a_true_message(release39, wheels, tmp_path):
    if os.geteuid() != 0:
        require_capability("root", "mounting a small tmpfs to fill up")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], check=True)
    try:
        overlay = new_overlay(release39, mount)
        subprocess.run(
            [
                str(overlay / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "-q",
                "--no-index",
                "-f",
                str(release39.wheels),
                "basepkg==2.0",
            ],
            env=release39.env(),
            check=True,
            capture_output=True,
        )
        used = os.statvfs(mount)
        used_bytes = (used.f_blocks - used.f_bfree) * used.f_frsize
        # Room for some of the 500 modules (a page each on tmpfs), not for all of them.
        subprocess.run(["mount", "-o", f"remount,size={used_bytes + 1024 * 1024}", str(mount)], check=True)
        before = half_installed(site_of(overlay))
        result = subprocess.run(install_cmd(overlay, wheels, "2.0"), env=release39.env(), capture_output=True, text=True)
        assert result.returncode == 1, result.stderr
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("overlay-venv: error: pip failed (exit status 1): "), result.stderr
        assert last.endswith("rolled back: the overlay is as it was before"), result.stderr
        assert half_installed(site_of(overlay)) == before == []
        assert listed_version(overlay) == "(none)" and imported_version(overlay, release39) == "(no import)"
        assert not transaction.interrupted(overlay)
    finally:
        subprocess.run(["umount", str(mount)], check=False)


# --------------------------------------------------------------------------------------------------
# The roll-back itself, interrupted at every step


def tree_state(root: Path) -> dict[str, object]:
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".overlay-venv-txn"))
        for name in sorted(dirnames + filenames):
            path = Path(dirpath, name)
            if name.startswith(".overlay-venv-txn"):
                continue
            rel = str(path.relative_to(root))
            state[rel] = (
                path.read_bytes()
                if path.is_file() and not path.is_symlink()
                else ("link", os.readlink(path))
                if path.is_symlink()
                else "dir"
            )
    return state


def fake_overlay(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_text("old tool")
    os.symlink("/usr/bin/python3", root / "bin" / "python")
    site = root / "lib" / "python3.9" / "site-packages"
    (site / "pkg").mkdir(parents=True)
    (site / "pkg" / "__init__.py").write_text("version = 1")
    (site / "pkg-1.0.dist-info").mkdir()
    (site / "pkg-1.0.dist-info" / "RECORD").write_text("pkg/__init__.py,,\n")
    (site / "easy.pth").write_text("/somewhere\n")
    (root / "overlay-venv.json").write_text('{"old": true}')
    (root / "pyvenv.cfg").write_text("home = /usr/bin\n")
    return root


def install_into(root: Path) -> None:
    """What an installer does: unlink and write anew, add, remove, rewrite a .pth in place."""
    site = root / "lib" / "python3.9" / "site-packages"
    (site / "pkg" / "__init__.py").unlink()
    (site / "pkg" / "__init__.py").write_text("version = 2")
    (site / "pkg" / "new.py").write_text("new")
    os.rename(site / "pkg-1.0.dist-info", site / "pkg-2.0.dist-info")
    with open(site / "easy.pth", "w") as handle:  # in place, through the same inode
        handle.write("/elsewhere\n")
    (root / "bin" / "tool").unlink()
    (root / "bin" / "tool").write_text("new tool")
    (root / "share" / "data").mkdir(parents=True)
    (root / "overlay-venv.json").write_text('{"new": true}')


class Cut(Exception):
    pass


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "two-renames"])
def test_a_rollback_cut_short_at_any_step_is_finished_by_the_next_one(tmp_path, monkeypatch, exchange):
    """Every rename, unlink and removal of the restore is cut in turn (as a SIGKILL there would);
    running the restore again must always end with the overlay exactly as it was."""
    steps = 0
    while True:
        overlay = fake_overlay(tmp_path / f"case{steps}")
        before = tree_state(overlay)
        txn = transaction.begin(overlay, transaction.scheme_dirs("bin", ["lib/python3.9/site-packages"]), "test")
        install_into(overlay)
        assert tree_state(overlay) != before and txn.changed()
        calls = {"n": 0}
        real = {name: getattr(transaction.os, name) for name in ("rename", "replace")}
        real_rmtree, real_exchange = transaction.remove_tree, transaction._exchange

        def cut(function, calls=calls, limit=steps):
            def wrapper(*args, **kwargs):
                calls["n"] += 1
                if calls["n"] > limit:
                    raise Cut()
                return function(*args, **kwargs)

            return wrapper

        with monkeypatch.context() as patch:
            for name, function in real.items():
                patch.setattr(transaction.os, name, cut(function))
            patch.setattr(transaction, "remove_tree", cut(real_rmtree))
            patch.setattr(transaction, "_exchange", cut(real_exchange if exchange else lambda a, b: False))
            try:
                transaction.restore(overlay, overlay / transaction.TXN)
                finished = True
            except Cut:
                finished = False
        if not finished:
            assert transaction.interrupted(overlay) or tree_state(overlay) == before
            transaction.recover(overlay, lambda _text: None)
        assert tree_state(overlay) == before, f"cut after {steps} steps"
        assert not transaction.interrupted(overlay)
        with overlay_lock(overlay, "the next install"):  # clears a finished snapshot not yet removed
            assert not [name for name in os.listdir(overlay) if name.startswith(".overlay-venv-txn")]
        if finished:
            break
        steps += 1
    assert steps > 5


def test_commit_keeps_what_was_installed_and_leaves_nothing_behind(tmp_path):
    overlay = fake_overlay(tmp_path / "ov")
    txn = transaction.begin(overlay, transaction.scheme_dirs("bin", ["lib/python3.9/site-packages"]), "test")
    install_into(overlay)
    after = tree_state(overlay)
    txn.commit()
    assert tree_state(overlay) == after
    assert sorted(os.listdir(overlay)) == ["bin", "lib", "overlay-venv.json", "pyvenv.cfg", "share"]


def staging_beside(overlay: Path) -> list[str]:
    return [name for name in os.listdir(overlay.parent) if name.startswith(".overlay-venv-tmp-")]


def wait_removed(overlay: Path, seconds: float = 30.0) -> list[str]:
    """The snapshots still beside ``overlay`` after waiting up to ``seconds`` for them to go (a wait,
    not a timing: the removal runs detached)."""
    deadline = time.monotonic() + seconds
    while staging_beside(overlay) and time.monotonic() < deadline:
        time.sleep(0.05)
    return staging_beside(overlay)


def test_commit_moves_the_snapshot_out_of_the_overlay_and_a_detached_child_removes_it(tmp_path):
    """The overlay is clean the moment commit returns; the snapshot, renamed beside it under a staging
    name, is removed by a grandchild (not waited for), which leaves no zombie child of ours."""
    overlay = fake_overlay(tmp_path / "ov")
    txn = transaction.begin(overlay, transaction.scheme_dirs("bin", ["lib/python3.9/site-packages"]), "test")
    install_into(overlay)
    txn.commit()
    assert not txn.open and not transaction.interrupted(overlay)
    assert sorted(os.listdir(overlay)) == ["bin", "lib", "overlay-venv.json", "pyvenv.cfg", "share"]
    assert wait_removed(overlay) == []
    assert sorted(os.listdir(tmp_path)) == ["ov"]
    try:  # the middle child was waited for, and the grandchild is not ours: no zombie to reap
        reaped = os.waitpid(-1, os.WNOHANG)[0]
    except ChildProcessError:
        reaped = 0
    assert reaped == 0


def test_a_snapshot_that_cannot_leave_the_overlay_is_removed_before_commit_returns(tmp_path, monkeypatch):
    """Where the rename beside the overlay fails (the overlay a mount point: EXDEV; a parent not
    writable), the snapshot is renamed to a done name inside and removed at once, as before."""
    overlay = fake_overlay(tmp_path / "ov")
    txn = transaction.begin(overlay, transaction.scheme_dirs("bin", ["lib/python3.9/site-packages"]), "test")
    install_into(overlay)
    real_rename = os.rename

    def rename(src, dst, *args, **kwargs):
        if Path(dst).parent != overlay:
            raise OSError(18, "Invalid cross-device link", str(dst))
        return real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(transaction.os, "rename", rename)
    txn.commit()
    assert sorted(os.listdir(overlay)) == ["bin", "lib", "overlay-venv.json", "pyvenv.cfg", "share"]
    assert sorted(os.listdir(tmp_path)) == ["ov"]


def test_with_other_threads_running_the_snapshot_is_removed_without_forking(tmp_path, monkeypatch):
    overlay = fake_overlay(tmp_path / "ov")
    txn = transaction.begin(overlay, transaction.scheme_dirs("bin", ["lib/python3.9/site-packages"]), "test")
    install_into(overlay)
    monkeypatch.setattr(transaction.os, "fork", lambda: pytest.fail("forked with a thread running"))
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        txn.commit()
    finally:
        stop.set()
        other.join()
    assert sorted(os.listdir(tmp_path)) == ["ov"]


def test_a_snapshot_left_beside_the_overlay_by_a_killed_remover_is_cleared_by_the_next_command(tmp_path):
    """The detached remover killed (a batch system ending the whole job): what it left carries our
    pid in its staging name, so the next command that locks an overlay there removes it, and no
    recovery reads it as an interrupted install."""
    from overlay_venv.atomic import staging_name

    overlay = fake_overlay(tmp_path / "ov")
    left = tmp_path / staging_name(pid=dead_pid())
    (left / "tree" / "bin").mkdir(parents=True)
    (left / "manifest.json").write_text('{"dirs": ["bin"], "absent": [], "files": []}')
    with overlay_lock(overlay, "the next install"):
        assert not left.exists()
    assert (overlay / "bin" / "tool").read_text() == "old tool"


def test_an_unchanged_overlay_is_reported_as_unchanged(tmp_path):
    overlay = fake_overlay(tmp_path / "ov")
    txn = transaction.begin(overlay, transaction.scheme_dirs("bin", ["lib/python3.9/site-packages"]), "test")
    (overlay / "lib" / "python3.9" / "site-packages" / "pkg" / "__pycache__").mkdir()  # pip compiled its own modules
    assert txn.rollback() == transaction.UNCHANGED
    txn = transaction.begin(overlay, transaction.scheme_dirs("bin", ["lib/python3.9/site-packages"]), "test")
    (overlay / "bin" / "extra").write_text("x")
    assert txn.rollback() == transaction.ROLLED_BACK
    assert not (overlay / "bin" / "extra").exists()


# --------------------------------------------------------------------------------------------------
# What killed commands leave in /tmp and beside the overlay, and a skeleton on a full disk


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_private_tmp_dirs_of_dead_processes_are_removed_by_the_next_run(tmp_path, monkeypatch):
    import tempfile

    from overlay_venv import atomic

    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    host = os.uname().nodename
    stale = [tmp_path / f"overlay-venv-{kind}-{host}-{dead_pid()}-abc123" for kind in ("install", "artifacts", "rebuild")]
    live = tmp_path / f"overlay-venv-install-{host}-{os.getppid()}-abc123"
    other_host = tmp_path / f"overlay-venv-install-elsewhere-{dead_pid()}-abc123"
    for path in [*stale, live, other_host]:
        (path / "pip-unpack-x").mkdir(parents=True)
    with atomic.private_tmp("install") as work:
        assert work.parent == tmp_path and work.name.startswith(f"overlay-venv-install-{host}-{os.getpid()}-")
    assert not work.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other_host.name])


def test_a_killed_install_leaves_no_tmp_dir_even_with_its_janitor_killed(release39, wheels, tmp_path):
    """A cgroup kill: overlay-venv, pip and the janitor all get SIGKILL; the next run clears /tmp."""
    overlay = new_overlay(release39, tmp_path)
    env = release39.env(TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    process = subprocess.Popen(install_cmd(overlay, wheels, "2.0"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not any(" -m pip install" in line for line in installers_of(overlay)) and time.monotonic() < deadline:
        time.sleep(0.01)
    work = [p for p in (tmp_path / "tmp").iterdir() if p.name.startswith("overlay-venv-install-")]
    assert len(work) == 1
    janitors = [  # forked ones are named in comm, an sh one in its cmdline
        pid
        for pid in Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        if b"janitor" in _cmdline(pid) + Path(f"/proc/{pid}/comm").read_bytes()
    ]
    for pid in [*janitors, str(process.pid)]:  # the janitor first: it would clean up at our death
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()
    assert wait_gone(overlay) == []
    assert work[0].exists()  # nobody left to remove it ...
    subprocess.run(install_cmd(overlay, wheels, "1.0"), env=env, check=True, capture_output=True)
    assert not work[0].exists()  # ... until the next run
    assert list((tmp_path / "tmp").iterdir()) == []


def _cmdline(pid: str) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def test_a_staging_dir_left_by_a_killed_create_is_removed_by_the_next_command_there(release39, wheels, tmp_path):
    from overlay_venv.atomic import staging_name

    overlay = new_overlay(release39, tmp_path)
    left = tmp_path / staging_name(pid=dead_pid())
    (left / "lib").mkdir(parents=True)
    subprocess.run(install_cmd(overlay, wheels, "1.0"), env=release39.env(), check=True, capture_output=True)
    assert not left.exists()


def test_a_clone_that_fails_on_a_full_disk_keeps_the_skeleton(tmp_path, monkeypatch):
    from overlay_venv import skeleton

    root = tmp_path / "skeletons"
    monkeypatch.setattr(skeleton, "skeletons_dir", lambda: root)
    built_dir = tmp_path / "built"
    fake_overlay(built_dir)
    built = skeleton.Built(
        bin_dir="bin",
        libs=["lib/python3.9/site-packages"],
        executable="/usr/bin/python3",
        version="3.9.0",
        implementation="CPython",
    )
    root.mkdir()
    skeleton.store("key", built_dir, built)
    assert (root / "key" / skeleton.MANIFEST).exists()

    def full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    target = tmp_path / "target"
    target.mkdir()
    with monkeypatch.context() as patch:
        patch.setattr(skeleton, "_copy", full)
        patch.setattr(skeleton.os, "link", full)
        assert skeleton.clone("key", target) is None
    assert list(target.iterdir()) == []
    assert (root / "key" / skeleton.MANIFEST).exists(), "a valid skeleton was deleted"
    assert skeleton.clone("key", target) is not None
    # A damaged one (a file removed from it) is still dropped.
    (root / "key" / "tree" / "bin" / "tool").unlink()
    other = tmp_path / "other"
    other.mkdir()
    assert skeleton.clone("key", other) is None
    assert not (root / "key").exists()


def test_a_reading_command_rolls_back_a_killed_install_first(release39, tmp_path):
    """`list` after a killed install shows the overlay as it was, not the half-installed package."""
    from conftest import make_overlay

    from overlay_venv.record import read_record

    overlay = make_overlay(release39, tmp_path / "env", install=())
    record = read_record(overlay)
    before = overlay_venv("list", str(overlay), "--json", env=release39.env()).stdout
    transaction.begin(overlay, transaction.scheme_dirs(record.bin_dir, record.site_packages), "a killed install")
    half = overlay / record.site_packages[0] / "halfpkg-1.0.dist-info"
    half.mkdir()
    (half / "METADATA").write_text("Metadata-Version: 2.1\nName: halfpkg\nVersion: 1.0\n")
    result = overlay_venv("list", str(overlay), "--json", env=release39.env())
    assert "halfpkg" not in result.stdout and result.stdout == before
    assert "rolled back" in result.stderr and not half.exists()
    assert not transaction.interrupted(overlay)
