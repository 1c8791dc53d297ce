"""overlay-venv runs on Python 3.9 and later: every module of it compiles and imports there (a
dependency it cannot find on that interpreter aside), and the console script's own answers work.
An annotation such as ``dict | None`` in a module without ``from __future__ import annotations``
passes on the newest Python and breaks every command on 3.9."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from capabilities import require_python
from conftest import clean_env

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
WHEELHOUSE = Path(os.environ.get("OVERLAY_VENV_TEST_WHEELS", ROOT / ".test-wheels"))

IMPORT_ALL = """\
import importlib, pkgutil, sys
sys.path.insert(0, sys.argv[1])
import overlay_venv
THIRD_PARTY = {"click", "jinja2", "virtualenv", "packaging", "jupyter_client", "uv"}
failed = []
for info in pkgutil.walk_packages(overlay_venv.__path__, "overlay_venv."):
    if info.name == "overlay_venv.__main__":
        continue
    try:
        importlib.import_module(info.name)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in THIRD_PARTY:
            failed.append(f"{info.name}: {exc!r}")
    except Exception as exc:
        failed.append(f"{info.name}: {exc!r}")
print("\\n".join(failed) or "ok")
"""


def test_every_module_imports_on_python_3_9():
    python = require_python("3.9")
    out = subprocess.run([python, "-I", "-c", IMPORT_ALL, str(SRC)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok", out.stdout


def test_the_entry_answers_version_on_python_3_9():
    from overlay_venv import __version__

    python = require_python("3.9")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); sys.argv[1:] = ['--version']; from overlay_venv._entry import main; main()"
    )
    out = subprocess.run([python, "-I", "-c", code, str(SRC)], capture_output=True, text=True)
    assert (out.returncode, out.stdout, out.stderr) == (0, f"overlay-venv, version {__version__}\n", "")


ATEXIT_FAILS = """\
import atexit, sys
sys.path.insert(0, sys.argv[1])
atexit.register(print, "still")
atexit.register(lambda: 1 / 0)
from overlay_venv._entry import _exit_now
_exit_now(3)
"""


def test_a_failing_atexit_callback_keeps_the_exit_status_on_python_3_9():
    """3.9's atexit._run_exitfuncs re-raises the last callback's error after reporting it."""
    python = require_python("3.9")
    out = subprocess.run([python, "-I", "-c", ATEXIT_FAILS, str(SRC)], capture_output=True, text=True)
    assert (out.returncode, out.stdout) == (3, "still\n"), out.stderr
    assert "ZeroDivisionError" in out.stderr


def test_installed_by_pip_on_python_3_9_it_creates_installs_and_lists(release39, tmp_path):
    """overlay-venv as a user on 3.9 gets it: pip builds and installs this checkout (hatchling and the
    dependencies from the test wheelhouse, scripts/test-wheels/tool.txt), then its console script
    makes an overlay cold and warm, installs into it without breaking the release, and lists it."""
    python = require_python("3.9")
    tool = tmp_path / "tool"
    subprocess.run([python, "-m", "venv", str(tool)], check=True, capture_output=True)
    pip_env = {**clean_env(), "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    pip = [str(tool / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(WHEELHOUSE)]
    installed = subprocess.run([*pip, str(ROOT)], env=pip_env, capture_output=True, text=True)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    cli = str(tool / "bin" / "overlay-venv")
    env = release39.env()

    def run(*args: str) -> subprocess.CompletedProcess:
        result = subprocess.run([cli, *args], env=env, capture_output=True, text=True)
        assert result.returncode == 0, f"overlay-venv {' '.join(args)}: {result.stdout}{result.stderr}"
        return result

    assert run("--version").stdout.startswith("overlay-venv, version ")
    run("create", "--no-cache", str(tmp_path / "cold"))
    run("create", str(tmp_path / "env"))  # the skeleton the first one kept is not used: --no-cache keeps none
    run("create", str(tmp_path / "warm"))
    run("install", "--overlay", str(tmp_path / "warm"), "--no-index", "-f", str(release39.wheels), "basepkg==2.0")
    listed = run("list", str(tmp_path / "warm")).stdout
    assert "basepkg" in listed and "2.0" in listed
    check = subprocess.run(
        [str(tmp_path / "warm" / "bin" / "python"), "-c", "import basepkg; print(basepkg.__file__)"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0 and str(tmp_path / "warm") in check.stdout, check.stderr
