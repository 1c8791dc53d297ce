"""bin/activate_this.py: activating inside a running interpreter, with a release on PYTHONPATH."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

# Runs in the interpreter under test (3.9 compatible): exec the file as its docstring says, then
# report what imports and how sys.path and the environment look.
CHECK = """
import json, os, sys
path = sys.argv[1]
exec(open(path).read(), {"__file__": path})
exec(open(path).read(), {"__file__": path})  # twice: nothing may be duplicated
import basepkg
print(json.dumps({
    "basepkg": basepkg.__version__,
    "sys_path": sys.path,
    "PYTHONPATH": os.environ["PYTHONPATH"],
    "PATH": os.environ["PATH"],
    "VIRTUAL_ENV": os.environ["VIRTUAL_ENV"],
    "prefix": sys.prefix,
    "real_prefix": getattr(sys, "real_prefix", None),
}))
"""


def site_packages(overlay: Path) -> str:
    return str(next((overlay / "lib").glob("python3.*")) / "site-packages")


@pytest.mark.parametrize("interpreter", ["overlay", "base"])
def test_activate_this_puts_the_overlay_first(interpreter, release39, overlay39, tmp_path):
    python = overlay39 / "bin" / "python" if interpreter == "overlay" else release39.python
    env = release39.env()  # the release's site-packages on PYTHONPATH, as after its setup.sh
    result = subprocess.run(
        [str(python), "-c", CHECK, str(overlay39 / "bin" / "activate_this.py")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    state = json.loads(result.stdout)
    ours = site_packages(overlay39)
    assert state["basepkg"] == "2.0"  # the overlay's copy, not the release's 1.0
    assert state["sys_path"][0] == ours
    assert state["sys_path"].count(ours) == 1
    assert state["sys_path"].index(ours) < state["sys_path"].index(str(release39.site))
    assert state["PYTHONPATH"] == f"{ours}:{release39.site}"
    assert state["PATH"] == f"{overlay39}/bin:{env['PATH']}"
    assert state["VIRTUAL_ENV"] == str(overlay39)
    assert state["prefix"] == str(overlay39)
    if interpreter == "base":
        assert state["real_prefix"] == str(release39.python.parent.parent)
