"""overlay-venv runs on Python 3.9 and later: every module of it compiles and imports there (a
dependency it cannot find on that interpreter aside), and the console script's own answers work.
An annotation such as ``dict | None`` in a module without ``from __future__ import annotations``
passes on the newest Python and breaks every command on 3.9."""

from __future__ import annotations

import subprocess
from pathlib import Path

from capabilities import require_python

SRC = Path(__file__).resolve().parent.parent / "src"

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
