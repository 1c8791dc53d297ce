"""The policy for what the machine lacks: under CI=true a missing capability fails the run and names
it; outside CI it is a skip, and the run ends with one line naming everything it could not test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import make_base
import pytest
from capabilities import require_python

TESTS = Path(__file__).resolve().parent

NEEDS_A_TOOL = """
from capabilities import require_executable

def test_needs_a_tool():
    require_executable("no-such-tool-ov", "a tool this test drives")

def test_needs_nothing():
    pass
"""


def pytest_run(args: list[str], cwd: Path, ci: bool, **extra: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env.update(extra, PYTHONPATH=os.pathsep.join([str(TESTS), str(TESTS.parent / "scripts")]))
    if ci:
        env["CI"] = "true"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("ci", [True, False], ids=["ci", "not-ci"])
def test_a_missing_tool_fails_under_ci_and_is_listed_at_the_end(tmp_path, ci):
    (tmp_path / "test_tiny.py").write_text(NEEDS_A_TOOL)
    result = pytest_run(["-p", "capabilities", "test_tiny.py"], tmp_path, ci)
    out = result.stdout
    assert out.splitlines()[-1] == "could not test, missing: no-such-tool-ov", out
    if ci:
        assert result.returncode == 1 and "1 failed, 1 passed" in out, out
        assert "missing under CI=true: no-such-tool-ov (a tool this test drives)" in out
    else:
        assert result.returncode == 0 and "1 passed, 1 skipped" in out, out


def test_a_missing_base_interpreter_fails_a_real_test_under_ci(tmp_path):
    """The real conftest, with only a 3.9 interpreter named: every test on the 3.13 release fails."""
    only = require_python("3.9")
    node = "tests/test_hook.py::test_base_interpreter_is_unaffected[py3.13]"
    result = pytest_run([node], TESTS.parent, True, **{make_base.TEST_PYTHONS_VAR: only})
    assert result.returncode == 1, result.stdout
    assert "missing under CI=true: python3.13 (a base interpreter for the test releases: install it with pyenv" in result.stdout
    assert result.stdout.splitlines()[-1] == "could not test, missing: python3.13"
