"""`overlay-venv create`: what it builds, what it records, and what it refuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CLI, make_overlay, overlay_venv

STAGING = ".overlay-venv-tmp-"


def debris(parent: Path) -> list[str]:
    return [name for name in os.listdir(parent) if name.startswith(STAGING)]


def test_overlay_records_its_base(release, overlay):
    record = json.loads((overlay / "overlay-venv.json").read_text())
    assert record["base"]["interpreter"] == str(release.bin / "python3")
    assert record["base"]["version"].startswith(release.minor + ".")
    assert record["base"]["pythonpath"] == str(release.site)
    assert record["site_packages"] == [f"lib/python{release.minor}/site-packages"]
    assert record["bin_dir"] == "bin"
    assert record["system_site_packages"] is True
    cfg = (overlay / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = true" in cfg


def test_nothing_in_the_overlay_names_the_staging_directory(overlay):
    for path in overlay.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert STAGING.encode() not in path.read_bytes(), path


def test_seeded_pip_runs_from_its_shebang(release, overlay):
    out = subprocess.run([str(overlay / "bin" / "pip"), "--version"], env=release.env(), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert str(overlay) in out.stdout


def test_base_wins_in_base_and_overlay_wins_in_overlay(release, overlay):
    """The story of the README: the release's interpreter keeps 1.0, the overlay's has 2.0, even unactivated."""
    code = "import basepkg; print(basepkg.__version__)"
    base = subprocess.run([str(release.python), "-c", code], env=release.env(), capture_output=True, text=True)
    ours = subprocess.run([str(overlay / "bin" / "python"), "-c", code], env=release.env(), capture_output=True, text=True)
    assert (base.stdout.strip(), ours.stdout.strip()) == ("1.0", "2.0")


def test_no_pip_and_no_system_site_packages(release39, tmp_path):
    dest = tmp_path / "bare"
    overlay_venv("create", str(dest), "--no-pip", "--no-system-site-packages", "--prompt", "p r", env=release39.env())
    assert not (dest / "bin" / "pip").exists()
    assert "include-system-site-packages = false" in (dest / "pyvenv.cfg").read_text()
    record = json.loads((dest / "overlay-venv.json").read_text())
    assert record["prompt"] == "p r"
    assert record["system_site_packages"] is False


def test_python_option_and_output(release39, tmp_path):
    env = release39.env()
    env["PATH"] = "/usr/bin:/bin"  # the release's python3 is no longer first on PATH
    result = overlay_venv("create", str(tmp_path / "x"), "--python", str(release39.python), env=env)
    assert f"CPython {release39.minor}." in result.stdout
    assert "source " in result.stdout and "/bin/activate" in result.stdout


def test_rerun_on_the_same_base_is_a_no_op_and_clear_replaces(release39, tmp_path):
    dest = make_overlay(release39, tmp_path / "env")
    again = overlay_venv("create", str(dest), env=release39.env())
    assert "already" in again.stdout
    assert (dest / "lib" / "python3.9" / "site-packages" / "basepkg" / "__init__.py").exists()
    overlay_venv("create", str(dest), "--clear", env=release39.env())
    assert not (dest / "lib" / "python3.9" / "site-packages" / "basepkg").exists()
    assert (dest / "overlay-venv.json").exists()
    assert debris(tmp_path) == []


# --- refusals: one line on stderr, non-zero exit, nothing made ----------------------------------------


def refuse(script_runner, env, cwd, *args) -> str:
    before = sorted(os.listdir(cwd))
    result = script_runner.run([CLI, "create", *args], env=env, cwd=cwd)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("overlay-venv: error: ")
    assert sorted(os.listdir(cwd)) == before  # nothing half-made, no debris
    return lines[0]


@pytest.mark.parametrize("name", ["a:b", "new\nline"])
def test_refuses_separator_characters(script_runner, release39, tmp_path, name):
    message = refuse(script_runner, release39.env(), tmp_path, name)
    assert "colon" in message or "newline" in message


def test_refuses_a_parent_with_a_colon(script_runner, release39, tmp_path):
    parent = tmp_path / "x:y"
    parent.mkdir()
    assert "colon" in refuse(script_runner, release39.env(), parent, "env")


def test_refuses_a_missing_interpreter(script_runner, release39, tmp_path):
    message = refuse(script_runner, release39.env(), tmp_path, "env", "--python", "/nonexistent/python3")
    assert "/nonexistent/python3" in message


def test_refuses_when_no_python3_on_path(script_runner, tmp_path):
    env = {"PATH": str(tmp_path / "nothing"), "HOME": os.environ.get("HOME", "/root")}
    assert "python3" in refuse(script_runner, env, tmp_path, "env")


def test_refuses_a_directory_that_is_not_an_overlay(script_runner, release39, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "thesis.tex").write_text("precious")
    for args in (["data"], ["data", "--clear"]):
        assert "not an overlay" in refuse(script_runner, release39.env(), tmp_path, *args)
    assert (tmp_path / "data" / "thesis.tex").read_text() == "precious"


def test_refuses_a_file(script_runner, release39, tmp_path):
    (tmp_path / "f").write_text("x")
    assert "not a directory" in refuse(script_runner, release39.env(), tmp_path, "f")


def test_refuses_a_missing_parent(script_runner, release39, tmp_path):
    assert "does not exist" in refuse(script_runner, release39.env(), tmp_path, "no/such/env")


def test_refuses_an_overlay_on_another_base_without_clear(script_runner, release39, tmp_path):
    dest = tmp_path / "env"
    overlay_venv("create", str(dest), "--no-pip", env=release39.env())
    message = refuse(script_runner, release39.env(), tmp_path, "env")  # now with pip: other options
    assert "--clear" in message


def test_an_empty_directory_is_used(release39, tmp_path):
    (tmp_path / "env").mkdir()
    overlay_venv("create", str(tmp_path / "env"), env=release39.env())
    assert (tmp_path / "env" / "bin" / "activate").exists()


def test_help_has_examples(script_runner):
    for args in (["--help"], ["create", "--help"]):
        result = script_runner.run([CLI, *args])
        assert result.returncode == 0
        assert "overlay-venv create myenv" in result.stdout


def test_a_record_from_a_newer_version_stays_readable(overlay):
    """Keys a newer overlay-venv adds must not make an overlay 'damaged' for this one."""
    from overlay_venv.record import OverlayRecord

    data = json.loads((overlay / "overlay-venv.json").read_text())
    data["future_key"] = {"x": 1}
    data["base"]["future_base_key"] = "y"
    record = OverlayRecord.from_json(json.dumps(data))
    assert record.extra["future_key"] == {"x": 1}
    assert record.base.interpreter == data["base"]["interpreter"]


def test_a_newline_in_the_name_is_reported_as_such(script_runner, release39, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    assert "newline" in refuse(script_runner, release39.env(), work, "a\nb") and "prompt" not in refuse(
        script_runner, release39.env(), work, "a\nb"
    )


def test_a_prompt_or_name_starting_with_a_dash(release39, tmp_path):
    overlay_venv("create", "./-weird", "--no-pip", env=release39.env(), cwd=tmp_path)
    overlay_venv("create", str(tmp_path / "p"), "--no-pip", "--prompt", "-x", env=release39.env())
    assert json.loads((tmp_path / "-weird" / "overlay-venv.json").read_text())["prompt"] == "-weird"
    assert json.loads((tmp_path / "p" / "overlay-venv.json").read_text())["prompt"] == "-x"


def test_a_warm_create_starts_no_program_and_does_not_import_jinja2(release39, tmp_path):
    """From a skeleton and cached templates: the one execve is create's own (its janitor is a fork),
    and neither Jinja2 nor click (_entry.py answers a plain `create NAME`) nor virtualenv is imported."""
    from capabilities import require_executable

    strace = require_executable("strace", "counts the programs a warm create starts")
    env = release39.env()
    overlay_venv("create", str(tmp_path / "warm-up"), env=env)
    trace = tmp_path / "trace"
    cmd = [strace, "-f", "-qq", "-e", "trace=execve", "-o", str(trace), sys.executable, "-X", "importtime", "-m", "overlay_venv"]
    result = subprocess.run([*cmd, "create", str(tmp_path / "env")], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    execs = [line for line in trace.read_text().splitlines() if "execve(" in line]
    assert len(execs) == 1 and sys.executable in execs[0], execs
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert "overlay_venv.templates" in imported
    assert not [name for name in imported if name.split(".")[0] in ("jinja2", "click", "virtualenv")], imported


def test_a_cold_create_compiles_the_start_up_modules_under_their_final_paths(release39, tmp_path):
    """The base interpreter that passed the probe compiles them, naming where they will be, not the
    staging directory."""
    dest = tmp_path / "env"
    overlay_venv("create", "--no-cache", str(dest), env=release39.env())
    site = next((dest / "lib").glob("python3.*")) / "site-packages"
    show = "import marshal, sys; print(marshal.loads(open(sys.argv[1], 'rb').read()[16:]).co_filename)"
    for name in ("_overlay_venv_hook", "_virtualenv"):
        pyc = next((site / "__pycache__").glob(f"{name}.*.pyc"))
        shown = subprocess.run([str(release39.python), "-c", show, str(pyc)], capture_output=True, text=True, check=True)
        assert shown.stdout.strip() == str(site / f"{name}.py")
