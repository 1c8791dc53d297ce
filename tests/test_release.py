"""create --setup/--keep-setup, `info`, and base drift."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from capabilities import require_shell, require_shellcheck
from conftest import CLI, build_release, clean_env, make_overlay, overlay_venv
from shells import PosixShell


def workdir(tmp_path: Path) -> Path:
    """An empty directory to run in (pytest-console-scripts puts its own files in tmp_path)."""
    work = tmp_path / "work"
    work.mkdir()
    return work


@pytest.fixture(scope="module")
def kept(release39, tmp_path_factory) -> Path:
    """An overlay made from a clean shell with the release's setup.sh given to --setup and kept."""
    dest = tmp_path_factory.mktemp("kept") / "kept"
    overlay_venv("create", str(dest), "--setup", str(release39.root / "setup.sh"), "--keep-setup", env=clean_env())
    pip = [str(dest / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(release39.wheels)]
    subprocess.run([*pip, "basepkg==2.0"], env=release39.env(), check=True, capture_output=True)
    return dest


def test_setup_builds_on_the_release_it_sets_up(release39, kept):
    record = json.loads((kept / "overlay-venv.json").read_text())
    assert record["base"]["interpreter"] == str(release39.bin / "python3")
    assert record["base"]["pythonpath"] == str(release39.site)
    assert record["base"]["setup"] == f". {release39.root / 'setup.sh'}"
    assert record["base"]["keep_setup"] is True


def test_source_is_recorded_as_dot(release39, tmp_path):
    overlay_venv("create", str(tmp_path / "e"), "--no-pip", "--setup", f"source {release39.root}/setup.sh", env=clean_env())
    record = json.loads((tmp_path / "e" / "overlay-venv.json").read_text())
    assert record["base"]["setup"] == f". {release39.root}/setup.sh"
    assert record["base"]["keep_setup"] is False


@pytest.mark.parametrize("setup", ["setupATLAS", "asetup AnalysisBase,25.2.15"])
def test_login_shell_aliases_are_explained(script_runner, tmp_path, setup):
    tmp_path = workdir(tmp_path)
    result = script_runner.run([CLI, "create", "env", "--setup", setup], cwd=tmp_path, env=clean_env())
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("overlay-venv: error:") and "atlasLocalSetup.sh" in message
    assert list(tmp_path.iterdir()) == []


def test_failing_setup_is_reported_with_its_status(script_runner, tmp_path):
    tmp_path = workdir(tmp_path)
    result = script_runner.run([CLI, "create", "env", "--setup", "echo broken release >&2; false"], cwd=tmp_path, env=clean_env())
    assert result.returncode != 0
    assert "exit status 1" in result.stderr and "broken release" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_keep_setup_needs_setup(script_runner, release39, tmp_path):
    tmp_path = workdir(tmp_path)
    result = script_runner.run([CLI, "create", "env", "--keep-setup"], cwd=tmp_path, env=release39.env())
    assert result.returncode != 0 and "--setup" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("shell", ["sh", "dash", "bash"])
def test_kept_setup_makes_a_fresh_job_shell_one_step(shell, release39, kept, tmp_path):
    """A batch job: a fresh non-interactive shell with no release set up, `set -eu`, one source line."""
    sh = require_shell(PosixShell(shell))
    result = sh.run(
        ["set -eu", sh.source(kept / "bin" / "activate"), sh.probe("job"), "deactivate", sh.probe("after")],
        env=clean_env(),
        cwd=tmp_path,
    )
    job = result["job"]
    assert job["basepkg"] == "2.0"
    assert job["PYTHONPATH"] == f"{kept}/lib/python3.9/site-packages:{release39.site}"
    assert job["executable"].startswith(str(kept))
    assert result.stderr == ""  # the release matched: no drift warning
    # deactivate leaves the release set up (a release cannot be unset), without the overlay.
    assert result["after"]["PYTHONPATH"] == str(release39.site)
    assert result["after"]["basepkg"] == "1.0"


def test_kept_setup_is_not_run_twice(release39, kept, tmp_path):
    sh = PosixShell("bash")
    result = sh.run(
        [sh.source(kept / "bin" / "activate"), sh.source(kept / "bin" / "activate"), sh.probe("twice")],
        env=clean_env(),
        cwd=tmp_path,
    )
    assert result["twice"]["PATH"].split(":").count(str(release39.bin)) == 1
    assert result["twice"]["PYTHONPATH"].split(":").count(str(release39.site)) == 1


def test_info_matches_and_json(release39, kept):
    text = overlay_venv("info", str(kept), env=release39.env()).stdout
    assert "matches the recorded base" in text
    assert "CPython 3.9" in text and "activation runs it" in text
    data = json.loads(overlay_venv("info", str(kept), "--json", env=release39.env()).stdout)
    assert data["matches_this_shell"] is True and data["differences"] == []
    assert data["base"]["pythonpath"] == str(release39.site)
    assert set(data) == {
        "overlay",
        "prompt",
        "site_packages",
        "system_site_packages",
        "base",
        "created_by",
        "matches_this_shell",
        "differences",
    }


def test_info_of_the_active_overlay_and_errors(script_runner, release39, kept, tmp_path):
    env = release39.env(VIRTUAL_ENV=str(kept))
    assert "matches" in overlay_venv("info", env=env).stdout
    none = script_runner.run([CLI, "info"], env=release39.env(), cwd=tmp_path)
    assert none.returncode != 0 and "no overlay is active" in none.stderr
    (tmp_path / "plain").mkdir()
    bad = script_runner.run([CLI, "info", "plain"], env=release39.env(), cwd=tmp_path)
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1


def test_drift_other_pythonpath_is_reported_by_info_and_activation(release39, overlay39, tmp_path):
    other = tmp_path / "other-site"
    other.mkdir()
    env = release39.env(PYTHONPATH=f"{other}:{release39.site}")
    text = overlay_venv("info", str(overlay39), env=env).stdout
    assert "differs" in text and str(other) in text and "overlay-venv rebuild" in text
    sh = PosixShell("bash")
    result = sh.run([sh.source(overlay39 / "bin" / "activate"), sh.probe("active")], env=env, cwd=tmp_path)
    warning = result.stderr.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith("overlay-venv: warning:") and str(other) in warning[0]
    assert "overlay-venv rebuild" in warning[0]


def test_drift_moved_interpreter(tmp_path):
    release = build_release(tmp_path / "movable", "3.9")
    overlay = make_overlay(release, tmp_path / "env", install=())
    moved = tmp_path / "moved"
    shutil.move(str(release.root.parent), str(moved))
    env = clean_env()
    text = overlay_venv("info", str(overlay), env=env).stdout
    assert "is gone" in text
    sh = PosixShell("dash")
    result = sh.run(["set -eu", sh.source(overlay / "bin" / "activate"), "echo activated"], env=env, cwd=tmp_path)
    assert "activated" in result.lines
    assert "is gone" in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize("shell_name", ["tcsh", "csh", "fish"])
def test_drift_warning_in_csh_and_fish(shell_name, release39, overlay39, kept, tmp_path):
    from shells import CshShell, FishShell

    shell = (FishShell if shell_name == "fish" else CshShell)(shell_name)
    require_shell(shell)
    script = overlay39 / "bin" / shell.activate_script
    quiet = shell.run([shell.source(script), "deactivate"], env=release39.env(), cwd=tmp_path)
    assert quiet.stderr == ""
    other = release39.env(PYTHONPATH=f"/opt/other:{release39.site}")
    warned = shell.run([shell.source(script), "deactivate"], env=other, cwd=tmp_path)
    lines = warned.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("overlay-venv: warning: PYTHONPATH is /opt/other:")
    # A kept setup cannot run in these shells: the warning says what to set up.
    kept_warning = shell.run([shell.source(kept / "bin" / shell.activate_script), "deactivate"], env=clean_env(), cwd=tmp_path)
    assert "cannot run" in kept_warning.stderr and str(release39.root / "setup.sh") in kept_warning.stderr


def test_container_setup_is_pointed_out(monkeypatch, tmp_path):
    """Inside an ATLAS container /release_setup.sh exists; create says how to build on it."""
    from overlay_venv import release

    monkeypatch.setattr(release, "CONTAINER_SETUP", str(tmp_path / "absent.sh"))
    assert release.container_hint() is None
    setup = tmp_path / "release_setup.sh"
    setup.write_text("export PYTHONPATH=/release/lib\n")
    monkeypatch.setattr(release, "CONTAINER_SETUP", str(setup))
    hint = release.container_hint()
    assert hint and f"--setup {setup}" in hint and "--keep-setup" in hint
    assert release.normalize_setup(str(setup)) == f". {setup}"


def test_multi_line_kept_setup_works_in_every_shell(release39, tmp_path):
    """The README's ATLAS recipe shape: several lines, aliases/commands on later lines, kept."""
    setup = f'export MY_ROOT={release39.root}\nsource "$MY_ROOT/setup.sh"\ntrue'
    dest = tmp_path / "multi"
    overlay_venv("create", str(dest), "--no-pip", "--keep-setup", "--setup", setup, env=clean_env())
    sh = PosixShell("dash")
    job = sh.run(["set -eu", sh.source(dest / "bin" / "activate"), sh.probe("job")], env=clean_env(), cwd=tmp_path)["job"]
    assert job["PYTHONPATH"] == f"{dest}/lib/python3.9/site-packages:{release39.site}"
    from shells import CshShell

    tcsh = require_shell(CshShell("tcsh"))  # after the dash half: without tcsh that much is still tested
    result = tcsh.run([tcsh.source(dest / "bin" / "activate.csh"), "deactivate"], env=clean_env(), cwd=tmp_path)
    warning = result.stderr.strip().splitlines()
    assert len(warning) == 1 and "export MY_ROOT=" in warning[0] and "; true" in warning[0]


def test_missing_setup_file_is_one_clear_line(script_runner, tmp_path):
    tmp_path = workdir(tmp_path)
    result = script_runner.run([CLI, "create", "env", "--setup", "/nonexistent/setup.sh"], cwd=tmp_path, env=clean_env())
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "No such file" in lines[0] and "setupATLAS" not in lines[0]


def test_create_inside_an_active_overlay_builds_on_the_release(release39, overlay39, tmp_path):
    """python3 first on PATH is then the active overlay's; create must look past it."""
    active = release39.env(
        VIRTUAL_ENV=str(overlay39),
        PATH=f"{overlay39}/bin:{release39.env()['PATH']}",
        PYTHONPATH=f"{overlay39}/lib/python3.9/site-packages:{release39.site}",
    )
    overlay_venv("create", str(tmp_path / "other"), "--no-pip", env=active)
    record = json.loads((tmp_path / "other" / "overlay-venv.json").read_text())
    assert record["base"]["interpreter"] == str(release39.bin / "python3")
    assert record["base"]["pythonpath"] == str(release39.site)
    # Re-creating the active overlay itself is the usual no-op.
    assert "nothing to do" in overlay_venv("create", str(overlay39), env=active).stdout


@pytest.mark.parametrize("dialect", ["sh", "bash", "ksh"])
def test_kept_setup_script_passes_shellcheck(kept, dialect):
    require_shellcheck()
    result = subprocess.run(["shellcheck", "-s", dialect, str(kept / "bin" / "activate")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("shell_name", ["bash", "tcsh", "csh", "fish"])
def test_drift_warning_names_an_unset_pythonpath(shell_name, release39, overlay39, tmp_path):
    from shells import CshShell, FishShell

    shell = {"fish": FishShell, "tcsh": CshShell, "csh": CshShell}.get(shell_name, PosixShell)(shell_name)
    require_shell(shell)
    env = release39.env()
    del env["PYTHONPATH"]
    result = shell.run([shell.source(overlay39 / "bin" / shell.activate_script), "deactivate"], env=env, cwd=tmp_path)
    assert f"PYTHONPATH is (unset), but this overlay was built with {release39.site};" in result.stderr


def test_kept_setup_does_not_see_the_callers_arguments(release39, tmp_path):
    """A job script run with arguments sources bin/activate: the release setup must not receive them
    (ATLAS's setup scripts parse their own options and fail on foreign ones)."""
    setup = tmp_path / "relsetup.sh"
    setup.write_text(f'if [ "$#" -ne 0 ]; then echo "setup got $# args" >&2; return 3; fi\n. {release39.root}/setup.sh\n')
    dest = tmp_path / "args"
    overlay_venv("create", str(dest), "--no-pip", "--keep-setup", "--setup", str(setup), env=clean_env())
    job = tmp_path / "job.sh"
    job.write_text(f'set -eu\n. {dest}/bin/activate\npython3 -c "import sys; print(sys.prefix)"\n')
    for shell in ("dash", "bash"):
        result = subprocess.run([shell, str(job), "--year", "2024"], env=clean_env(), capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == str(dest) and "setup got" not in result.stderr
