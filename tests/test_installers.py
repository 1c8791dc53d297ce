"""One installer contract: a third installer is one new module plus one line in the registry, and
every command that installs (install, sync, create --from, rebuild) uses the one chosen."""

from __future__ import annotations

import json
import sys
import textwrap

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
