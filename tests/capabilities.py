"""What the test run needs from the machine, and what happens when something is missing.

Tests that need a base interpreter (3.9, 3.13), a shell, shellcheck, Slurm or uv ask here instead of
calling ``pytest.skip`` themselves. Under ``CI=true`` a missing capability fails the test, naming it:
a CI run that skipped half of itself for want of an interpreter would otherwise look green. Outside
CI it is a skip, and the run ends with one line listing every capability it could not test.

Skips for what cannot apply at all (csh has no parse-only mode, this Python has no tar filters) stay
plain ``pytest.skip``: no machine setup would make them run.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import NoReturn, Optional

import pytest

# name -> why it was needed, in the order first met; read by pytest_unconfigure.
MISSING: dict[str, str] = {}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_capability(name: str, why: str) -> NoReturn:
    """``name`` is missing: fail under CI, skip otherwise; either way the end-of-run line lists it."""
    MISSING.setdefault(name, why)
    if in_ci():
        pytest.fail(f"missing under CI=true: {name} ({why})", pytrace=False)
    pytest.skip(f"{name} is missing: {why}")


def require_executable(name: str, why: str, path: Optional[str] = None) -> str:
    """The full path of ``name`` on PATH (or ``path``), or the test fails/skips naming it."""
    found = shutil.which(name, path=path)
    if found is None:
        require_capability(name, why)
    return found


def require_shellcheck() -> str:
    why = "lints the generated sh, bash and ksh scripts; scripts/install-test-deps.sh installs it"
    return require_executable("shellcheck", why)


def require_shell(shell):
    """A tests/shells.py Shell that is installed, or the test fails/skips naming the shell."""
    if not shell.available():
        require_capability(shell.name, "a shell the activation scripts are written for; scripts/install-test-deps.sh installs it")
    return shell


def require_python(minor: str) -> str:
    """A base interpreter ``minor`` to build test releases on (scripts/make_base.py finds it)."""
    scripts = str(Path(__file__).resolve().parent.parent / "scripts")
    if scripts not in sys.path:
        sys.path.insert(0, scripts)
    import make_base

    python = make_base.find_python(minor)
    if python is None:
        require_capability(f"python{minor}", f"a base interpreter for the test releases: {make_base.missing_python_hint(minor)}")
    return python


def require_uv() -> str:
    from overlay_venv.backends.uv import find_uv

    found = find_uv()
    if found is None:
        require_capability("uv", "the --uv backend; the test extra installs it (pip install -e '.[test]')")
    return found


def pytest_unconfigure(config):
    """One line, after pytest's own summary, naming what this run could not test (a plugin hook:
    conftest imports it)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if MISSING and reporter is not None:
        reporter.write_line("could not test, missing: " + ", ".join(MISSING), yellow=True, bold=True)
