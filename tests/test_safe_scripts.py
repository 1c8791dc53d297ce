"""Console scripts installed through overlay-venv cannot run anything from the overlay's path.

pip writes a ``/bin/sh`` trampoline when the interpreter's path has a blank (the path in double
quotes: ``$(...)`` and backquotes still run) or is over 127 bytes (no quotes at all). overlay-venv
re-heads those scripts with its own single-quoted trampoline after install, sync and create --from.
The overlays here live under a long directory whose name holds ``$(touch ...)``, backquotes, quotes
and blanks; each script must run and print its version, and nothing may appear in the working
directory.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import make_base, overlay_venv

from overlay_venv.relocate import MAX_SHEBANG
from overlay_venv.scripts_guard import pip_trampoline_interpreter, secure_scripts

HOSTILE = "odd $(touch pwned) `touch pwned2` ' \" x"


@pytest.fixture(scope="module")
def tool_wheels(tmp_path_factory) -> Path:
    wheels = tmp_path_factory.mktemp("script-wheels")
    for version in ("1.0", "2.0"):
        init = f"__version__ = {version!r}\n\ndef main():\n    print('tool', __version__)\n"
        make_base.build_wheel(
            wheels, "sometool", version, modules={"sometool/__init__.py": init}, console_scripts={"sometool": "sometool:main"}
        )
    return wheels


def test_reads_the_interpreter_of_each_trampoline_pip_writes():
    quoted = [b"#!/bin/sh", b'\'\'\'exec\' "/a b/$(x)/bin/python" "$0" "$@"', b"' '''"]
    bare = [b"#!/bin/sh", b"'''exec' /" + b"l" * 130 + b'/bin/python "$0" "$@"', b"' '''"]
    assert pip_trampoline_interpreter(quoted) == b"/a b/$(x)/bin/python"
    assert pip_trampoline_interpreter(bare) == b"/" + b"l" * 130 + b"/bin/python"
    ours = [b"#!/bin/sh", b"'''exec' '/a b/$(x)/bin/python' \"$0\" \"$@\"", b"' '''"]
    assert pip_trampoline_interpreter(ours) is None  # already single-quoted
    assert pip_trampoline_interpreter([b"#!/usr/bin/python3", b"import sys", b""]) is None


def test_rewrites_only_pip_trampolines_for_its_own_interpreter(tmp_path):
    bin_dir = tmp_path / "long $(touch pwned)" / "bin"
    bin_dir.mkdir(parents=True)
    python = f"{bin_dir}/python"
    body = "import sys\nprint('hi')\n"
    (bin_dir / "pipmade").write_text(f"#!/bin/sh\n'''exec' \"{python}\" \"$0\" \"$@\"\n' '''\n{body}")
    (bin_dir / "foreign").write_text(f"#!/bin/sh\n'''exec' \"/elsewhere/bin/python\" \"$0\" \"$@\"\n' '''\n{body}")
    (bin_dir / "plain").write_text(f"#!/usr/bin/python3\n{body}")
    (bin_dir / "pipmade").chmod(0o755)
    assert secure_scripts(bin_dir) == [bin_dir / "pipmade"]
    text = (bin_dir / "pipmade").read_text()
    assert text == f"#!/bin/sh\n'''exec' '{python}' \"$0\" \"$@\"\n' '''\n{body}"
    assert (bin_dir / "pipmade").stat().st_mode & 0o777 == 0o755
    assert secure_scripts(bin_dir) == []  # once is enough


@pytest.fixture(scope="module")
def hostile_parent(tmp_path_factory) -> Path:
    parent = tmp_path_factory.mktemp("scripts") / ("p" * 90) / HOSTILE
    parent.mkdir(parents=True)
    return parent


def run_script(script: Path, release, cwd: Path) -> subprocess.CompletedProcess:
    cwd.mkdir(exist_ok=True)
    return subprocess.run([str(script)], env=release.env(), cwd=cwd, capture_output=True, text=True)


def test_install_and_create_from_give_scripts_that_run_nothing_from_the_path(release39, tool_wheels, hostile_parent, tmp_path):
    env = release39.env()
    overlay = hostile_parent / "ov"
    overlay_venv("create", str(overlay), env=env)
    assert len(f"{overlay}/bin/python") > MAX_SHEBANG
    overlay_venv("install", "--overlay", str(overlay), "--no-index", "-f", str(tool_wheels), "sometool==1.0", env=env)
    cwd = tmp_path / "cwd"
    result = run_script(overlay / "bin" / "sometool", release39, cwd)
    assert (result.returncode, result.stdout) == (0, "tool 1.0\n"), result.stderr
    assert list(cwd.iterdir()) == []

    lock = tmp_path / "pylock.toml"
    overlay_venv("lock", str(overlay), "-o", str(lock), "--no-index", "-f", str(tool_wheels), env=env)
    copy = hostile_parent / "copy"
    overlay_venv("create", str(copy), "--from", str(lock), env=env)
    result = run_script(copy / "bin" / "sometool", release39, cwd)
    assert (result.returncode, result.stdout) == (0, "tool 1.0\n"), result.stderr
    assert list(cwd.iterdir()) == []


def test_sync_gives_scripts_that_run_nothing_from_the_path(release39, tool_wheels, hostile_parent, tmp_path):
    env = release39.env()
    source = tmp_path / "source"
    overlay_venv("create", str(source), env=env)
    overlay_venv("install", "--overlay", str(source), "--no-index", "-f", str(tool_wheels), "sometool==2.0", env=env)
    lock = tmp_path / "pylock.toml"
    overlay_venv("lock", str(source), "-o", str(lock), "--no-index", "-f", str(tool_wheels), env=env)
    overlay = hostile_parent / "synced"
    overlay_venv("create", str(overlay), env=env)
    overlay_venv("sync", str(overlay), str(lock), env=env)
    cwd = tmp_path / "cwd"
    result = run_script(overlay / "bin" / "sometool", release39, cwd)
    assert (result.returncode, result.stdout) == (0, "tool 2.0\n"), result.stderr
    assert list(cwd.iterdir()) == []


def test_plain_pip_still_writes_a_trampoline_that_expands_the_path(release39, tool_wheels, hostile_parent):
    """What the README's Known behaviours says: pip itself, run by hand, is not guarded."""
    overlay = hostile_parent / "plain"
    overlay_venv("create", str(overlay), env=release39.env())
    pip = [str(overlay / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "-f", str(tool_wheels), "sometool==1.0"]
    subprocess.run(pip, env=release39.env(), check=True, capture_output=True)
    head = (overlay / "bin" / "sometool").read_bytes().split(b"\n")[:3]
    assert pip_trampoline_interpreter(head) is not None
    assert secure_scripts(overlay / "bin") == [overlay / "bin" / "sometool"]  # what install does after pip
    assert pip_trampoline_interpreter((overlay / "bin" / "sometool").read_bytes().split(b"\n")[:3]) is None
