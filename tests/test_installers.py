"""One installer contract: a third installer is one new module plus one line in the registry, and
every command that installs (install, sync, create --from, rebuild) uses the one chosen."""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import time

import pytest
from click.testing import CliRunner
from conftest import make_overlay, overlay_venv

from overlay_venv import backends
from overlay_venv.cli import cli

# The new file: an installer that is pip, and says each time it is used.
FAKE = textwrap.dedent(
    """\
    from pathlib import Path

    from overlay_venv.backends.pip import PipBackend

    CALLS = []


    class FakeBackend(PipBackend):
        name = "fake"

        def install(self, job):
            CALLS.append("install")
            return super().install(job)

        def install_locked(self, python, environ, requirements, files):
            CALLS.append("install_locked")
            return super().install_locked(python, environ, requirements, files)

        def uninstall(self, python, environ, names):
            CALLS.append(("uninstall", tuple(names)))
            return super().uninstall(python, environ, names)
    """
)


@pytest.fixture
def fake(tmp_path, monkeypatch):
    (tmp_path / "fake_installer.py").write_text(FAKE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(backends.INSTALLERS, "fake", "fake_installer:FakeBackend")  # the one registry line
    yield __import__("fake_installer").CALLS
    sys.modules.pop("fake_installer", None)


def run(args, env):
    result = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_every_installing_command_uses_the_chosen_installer(fake, release39, tmp_path):
    env = {**release39.env(), "PIP_CONFIG_FILE": "/dev/null"}
    overlay = make_overlay(release39, tmp_path / "env", install=())
    wheels = str(release39.wheels)
    run(["install", "--overlay", str(overlay), "--installer", "fake", "-q", "--no-index", "-f", wheels, "basepkg==2.0"], env)
    assert fake == ["install"]

    lock = tmp_path / "pylock.toml"
    run(["lock", str(overlay), "-o", str(lock), "--no-index", "-f", wheels], env)
    copy = tmp_path / "copy"
    run(["create", str(copy), "--from", str(lock), "--wheelhouse", wheels], {**env, "OVERLAY_VENV_INSTALLER": "fake"})
    assert fake == ["install", "install_locked", ("uninstall", ())]

    # sync to a lock without basepkg: the fake removes it.
    overlay_venv("create", str(tmp_path / "empty"), env=env)
    empty_lock = tmp_path / "empty.toml"
    run(["lock", str(tmp_path / "empty"), "-o", str(empty_lock)], env)
    run(["sync", str(copy), str(empty_lock), "--installer", "fake"], env)
    assert fake[-1] == ("uninstall", ("basepkg",))

    del fake[:]
    run(["rebuild", str(overlay), "--installer", "fake", "-q", "--no-index", "-f", wheels], env)
    assert fake == ["install"]
    listing = json.loads(overlay_venv("list", str(overlay), "--json", env=env).stdout)
    assert {d["name"]: d["version"] for d in listing["distributions"] if d["layer"] == "overlay"}["basepkg"] == "2.0"


def test_an_unknown_installer_is_a_usage_error(release39, tmp_path):
    env = release39.env()
    overlay = make_overlay(release39, tmp_path / "env", install=())
    result = overlay_venv("install", "--overlay", str(overlay), "--installer", "conda", "six", env=env, check=False)
    assert result.returncode == 2
    assert "unknown installer 'conda': choose one of pip, uv" in result.stderr
    result = overlay_venv(
        "install", "--overlay", str(overlay), "six", env={**env, "OVERLAY_VENV_INSTALLER": "conda"}, check=False
    )
    assert result.returncode == 2 and "unknown installer 'conda'" in result.stderr


# --------------------------------------------------------------------------------------------------
# The pre-flight asks the overlay's interpreter for wheel tags only when they decide something


def _preflight_case(tmp_path, monkeypatch, wheel_names):
    """preflight() of `install` on a find-links directory of ``wheel_names`` (requests: each name's
    project), with the interpreter's tag question counted rather than asked."""
    from types import SimpleNamespace

    from conftest import make_base

    from overlay_venv.operations import install as operation

    wheels = tmp_path / "wheels"
    built = make_base.build_wheel(tmp_path / "build", "pkg", "1.0", requires=("corelib>=1",))
    wheels.mkdir()
    for name in wheel_names:
        (wheels / name).write_bytes(built.read_bytes())
    asked = []
    real_tags = [str(tag) for tag in __import__("packaging.tags").tags.sys_tags()]
    monkeypatch.setattr(operation, "interpreter_tags", lambda layering: asked.append(layering) or real_tags)
    layering = SimpleNamespace(
        environ={"PIP_CONFIG_FILE": "/dev/null", "HOME": str(tmp_path)},
        overlay=tmp_path / "ov",
        interpreter=SimpleNamespace(tags=None),
        marker_environment={"python_full_version": "3.9.18", "python_version": "3.9"},
        distributions=[],
    )
    requests = SimpleNamespace(record=["pkg"], constrained=set())
    holds = [SimpleNamespace(name="corelib", version="1.0")]
    index = backends.IndexOptions(None, (), (str(wheels),), True)
    return operation, layering, requests, holds, index, asked


def test_a_pure_python_wheel_is_judged_without_asking_for_tags(tmp_path, monkeypatch):
    operation, layering, requests, holds, index, asked = _preflight_case(tmp_path, monkeypatch, ["pkg-1.0-py3-none-any.whl"])
    verdicts = operation.preflight(layering, requests, holds, index, ask_tags=True)
    assert asked == [] and [verdict.name for verdict in verdicts] == ["pkg"]
    assert [release.version for release in verdicts[0].ruled_out] == []  # judged: 1.0 fits corelib 1.0


def test_a_binary_wheel_asks_for_the_tags_once(tmp_path, monkeypatch):
    names = ["pkg-1.0-cp39-cp39-manylinux_2_17_x86_64.whl", "pkg-1.0-cp39-cp39-win_amd64.whl"]
    operation, layering, requests, holds, index, asked = _preflight_case(tmp_path, monkeypatch, names)
    operation.preflight(layering, requests, holds, index, ask_tags=True)
    assert asked == [layering]
    asked.clear()
    operation.preflight(layering, requests, holds, index)  # rebuild's: pure wheels only, as before
    assert asked == []


def test_tags_matter_only_for_a_wheel_that_is_not_pure_or_a_version_with_two_wheels():
    from packaging.tags import sys_tags
    from packaging.version import Version

    from overlay_venv.operations.install import tags_needed
    from overlay_venv.preflight import SDIST, WHEEL, File, candidates

    def wheel(version, tag):
        return File("pkg", Version(version), WHEEL, f"pkg-{version}-{tag}.whl", frozenset(tag.split("|")))

    sdist = File("pkg", Version("1.0"), SDIST, "pkg-1.0.tar.gz")
    python = ".".join(map(str, sys.version_info[:3]))
    major, minor = sys.version_info[:2]
    pure_sets = [
        [wheel("1.0", "py3-none-any"), sdist, wheel("2.0", f"py{major}{minor}-none-any")],
        [wheel("1.0", "py2-none-any|py3-none-any")],
        [sdist],
        [],
    ]
    tags = [str(tag) for tag in sys_tags()]
    for files in pure_sets:
        assert not tags_needed(files, python)
        assert candidates(files, None, python) == candidates(files, tags, python)  # the same answer either way
    assert tags_needed([wheel("1.0", "cp39-cp39-manylinux_2_17_x86_64")], python)
    assert tags_needed([wheel("1.0", "py2-none-any")], python)  # not this interpreter's: tags say no
    assert tags_needed([wheel("1.0", "py3-none-any"), wheel("1.0", f"py{major}{minor}-none-any")], python)  # ranked


def test_stopping_a_run_does_not_wait_for_a_child_holding_its_output(tmp_path):
    """Running.stop kills the run and reaps it without reading its output to the end, which a child
    it started (and that outlives it) would hold open."""
    pid_file = tmp_path / "child"
    running = backends.start_collected(["sh", "-c", f"sleep 60 & echo $! > {pid_file}; wait"], {"PATH": os.environ["PATH"]})
    while not pid_file.exists() or not pid_file.read_text().strip():
        time.sleep(0.01)
    child = int(pid_file.read_text())
    try:
        started = time.monotonic()
        running.stop()
        assert time.monotonic() - started < 30  # reading to the end would take the child's 60 s
        assert running.process.returncode == -signal.SIGKILL
        assert os.path.exists(f"/proc/{child}")  # the child still held the pipes all along
    finally:
        os.kill(child, signal.SIGKILL)
