"""Shared fixtures: a simulated read-only release, overlays built on it, and a tester that runs real shells.

The release is built by ``scripts/make_base.py`` on a copy of a real interpreter (3.9 and the newest
installed), then made truly read-only: a read-only bind mount when running as root (root ignores file
modes), ``chmod -R a-w`` otherwise. A fingerprint taken before the tests is compared at the end, so a
test run that wrote into the base fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import make_base  # noqa: E402
from capabilities import pytest_unconfigure, require_python  # noqa: E402,F401  (the hook lists what was missing)

CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"
# overlay-venv's cache (skeletons, compiled templates) for this test session only: the tests neither
# read a user's cache nor leave theirs behind. Tests of the cache itself use their own.
SESSION_CACHE = Path(tempfile.mkdtemp(prefix="overlay-venv-test-cache-"))
os.environ["XDG_CACHE_HOME"] = str(SESSION_CACHE)  # for what runs in-process or inherits our environment


BASE_PYTHONS = list(make_base.TEST_BASE_MINORS)


def fingerprint(root: Path) -> str:
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames + dirnames):
            path = Path(dirpath, name)
            stat = path.lstat()
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_mode}\n".encode())
    return digest.hexdigest()


def make_read_only(path: Path) -> bool:
    """Make ``path`` read-only for everyone, root included. Returns True if a bind mount was made."""
    if os.geteuid() == 0:
        subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
        return True
    subprocess.run(["chmod", "-R", "a-w", str(path)], check=True)
    return False


@dataclass
class Release:
    """A simulated release: ``setup.sh`` puts ``python/bin`` on PATH and ``site`` on PYTHONPATH."""

    root: Path
    python: Path
    site: Path
    wheels: Path
    minor: str
    mounted: bool = False
    print_: str = field(default="", repr=False)

    @property
    def bin(self) -> Path:
        return self.python.parent

    def env(self, **extra: str) -> dict[str, str]:
        """The environment right after sourcing the release's setup.sh in a clean login shell."""
        env = clean_env()
        env["PATH"] = f"{self.bin}:{env['PATH']}"
        env["PYTHONPATH"] = str(self.site)
        env.update(extra)
        return env


def clean_env() -> dict[str, str]:
    env = {
        "PATH": CLEAN_PATH,
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "XDG_CACHE_HOME": str(SESSION_CACHE),
    }
    for key in ("VIRTUALENV_OVERRIDE_APP_DATA", "TMPDIR"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def build_release(dest: Path, minor: str, base=make_base.DEFAULT_BASE, wheels=make_base.DEFAULT_WHEELS) -> Release:
    python = require_python(minor)
    root = make_base.make_base(dest, python, base, wheels)
    exe = next((root / "python" / "bin").glob("python3.*"))
    return Release(root=root, python=exe, site=root / "lib" / exe.name / "site-packages", wheels=dest / "wheels", minor=minor)


def read_only_release(dest: Path, minor: str):
    """A release made read-only for the tests that use it, then checked unwritten and unmounted."""
    rel = build_release(dest, minor)
    rel.mounted = make_read_only(rel.root)
    before = fingerprint(rel.root)
    yield rel
    after = fingerprint(rel.root)
    if rel.mounted:
        subprocess.run(["umount", str(rel.root)], check=False)
    assert after == before, "the read-only release was modified"


@pytest.fixture(scope="session", params=BASE_PYTHONS, ids=lambda minor: f"py{minor}")
def release(request, tmp_path_factory) -> Release:
    """A read-only release per base interpreter, never written by any test (checked at the end)."""
    yield from read_only_release(tmp_path_factory.mktemp(f"release{request.param}"), request.param)


@pytest.fixture(scope="session")
def release39(tmp_path_factory) -> Release:
    """The 3.9 release alone, for tests that need one base and no parametrisation."""
    yield from read_only_release(tmp_path_factory.mktemp("release-single"), "3.9")


# The installed console script itself (not a version-manager shim), so tests can run it with any PATH.
CLI = str(Path(sys.executable).parent / "overlay-venv")


def overlay_venv(*args: str, env: dict[str, str], cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run the overlay-venv CLI as a user would, in a given environment."""
    run_env = dict(env)
    # The CLI's own interpreter must be reachable whatever PATH the test sets up.
    cmd = [sys.executable, "-m", "overlay_venv", *args]
    result = subprocess.run(cmd, env=run_env, cwd=cwd, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"overlay-venv {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result


# click's own answer, from the group itself: what the click-free answers in _entry.py must reproduce.
CLICK_ONLY = "import sys; sys.argv[0] = 'overlay-venv'; from overlay_venv.cli import main; main()"

# Runs the console script's entry point in a fresh interpreter and prints the modules it loaded.
_LOADED = """\
import json, sys
sys.argv = ["overlay-venv", *sys.argv[1:]]
try:
    from overlay_venv._entry import run
    run()
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("overlay_venv", "jinja2", "virtualenv", "packaging", "click")))))
"""


def modules_loaded(*args: str, env: dict[str, str] | None = None) -> list[str]:
    """Our modules and our dependencies' that ``overlay-venv ARGS`` loads (it must succeed)."""
    out = subprocess.run([sys.executable, "-c", _LOADED, *args], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def make_overlay(release: Release, dest: Path, *args: str, install: tuple[str, ...] = ("basepkg==2.0",)) -> Path:
    """Create an overlay on ``release`` and pip-install ``install`` into it from the local wheelhouse."""
    env = release.env()
    overlay_venv("create", str(dest), *args, env=env)
    if install:
        pip = [str(dest / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(release.wheels)]
        subprocess.run([*pip, *install], env=env, check=True, capture_output=True)
    return dest


@pytest.fixture(scope="session")
def overlay(release, tmp_path_factory) -> Path:
    """An overlay on the release with basepkg 2.0 installed (the release has 1.0)."""
    return make_overlay(release, tmp_path_factory.mktemp("ov") / "myenv")


@pytest.fixture(scope="session")
def overlay39(release39, tmp_path_factory) -> Path:
    """The overlay the shell tests share: on the 3.9 release, basepkg 2.0 installed."""
    return make_overlay(release39, tmp_path_factory.mktemp("ov39") / "myenv")


@pytest.fixture(scope="session")
def second_overlay39(release39, tmp_path_factory) -> Path:
    return make_overlay(release39, tmp_path_factory.mktemp("ov39b") / "other", install=())


ODD_NAME = "odd dir ' \" $(touch pwned) `touch pwned2` ! ünï"


@pytest.fixture(scope="session")
def odd_overlay(release39, tmp_path_factory) -> Path:
    """An overlay in a directory whose name holds every character a shell might execute."""
    parent = tmp_path_factory.mktemp("odd")
    return make_overlay(release39, parent / ODD_NAME)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(SESSION_CACHE, ignore_errors=True)
