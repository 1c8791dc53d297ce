"""Editable and ``.pth``-added installs in an overlay win over the release, and ``list`` says so.

The release ships basepkg 1.0 on PYTHONPATH. Each overlay here gets basepkg 9.9.9 in one of the ways a
developer puts a checkout into an environment; in every one of them the overlay's copy must be the one
imported (unactivated, through a console script, in a subprocess, under ``run``, and activated in
every shell), and ``overlay-venv list`` must name the copy a real import loads.

The build backends (setuptools, hatchling) come from the wheelhouse ``scripts/fetch-test-wheels.sh``
fills; pip builds the editables in its isolated build environment from there, with no index.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest
from capabilities import require_capability, require_shell
from conftest import ROOT, Release, make_base, overlay_venv
from shells import CshShell, FishShell, PosixShell

WHEELHOUSE = Path(os.environ.get("OVERLAY_VENV_TEST_WHEELS", ROOT / ".test-wheels"))
VERSION = "9.9.9"
SHOW = "import basepkg; print(basepkg.__version__, basepkg.__file__)"
MODULE = f"__version__ = {VERSION!r}\n\n\ndef show():\n    print(__version__)\n"

# setuptools' default mode: a finder on sys.meta_path for a flat layout, a path entry for src/; strict
# mode: a tree of links under build/, reached by a path entry; hatchling: a path entry (_basepkg.pth);
# a plain .pth naming a directory that pip filled with --target; a `setup.py develop` checkout
# (easy-install.pth, .egg-link, an .egg-info beside the code), which older tools wrote.
MODES = ["setuptools-finder", "setuptools-src", "setuptools-strict", "hatchling", "pth-directory", "egg-link"]
EDITABLE = {"setuptools-finder", "setuptools-src", "setuptools-strict", "hatchling", "egg-link"}
SCRIPTED = {"setuptools-finder", "setuptools-src", "setuptools-strict", "hatchling"}


def require_wheelhouse() -> None:
    if not any(WHEELHOUSE.glob("setuptools-*.whl")) or not any(WHEELHOUSE.glob("hatchling-*.whl")):
        require_capability(
            "setuptools and hatchling wheels", f"builds the editables; bash scripts/fetch-test-wheels.sh fills {WHEELHOUSE}"
        )


def setuptools_project(root: Path, src_layout: bool) -> Path:
    package = (root / "src" if src_layout else root) / "basepkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(MODULE)
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [build-system]
            requires = ["setuptools>=64"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "basepkg"
            version = "{VERSION}"

            [project.scripts]
            showbasepkg = "basepkg:show"

            [tool.setuptools]
            packages = ["basepkg"]
            """
        )
        + ('[tool.setuptools.package-dir]\n"" = "src"\n' if src_layout else "")
    )
    return root


def hatchling_project(root: Path) -> Path:
    (root / "src" / "basepkg").mkdir(parents=True)
    (root / "src" / "basepkg" / "__init__.py").write_text(MODULE)
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"

            [project]
            name = "basepkg"
            version = "{VERSION}"

            [project.scripts]
            showbasepkg = "basepkg:show"

            [tool.hatch.build.targets.wheel]
            packages = ["src/basepkg"]
            """
        )
    )
    return root


def site_packages(overlay: Path) -> Path:
    return next((overlay / "lib").glob("python3.*")) / "site-packages"


def pip(overlay: Path, release: Release, *args: str) -> None:
    cmd = [str(overlay / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(WHEELHOUSE), *args]
    result = subprocess.run(cmd, env=release.env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def develop(overlay: Path, mode: str, work: Path, release: Release) -> Path:
    """Put basepkg 9.9.9 into ``overlay`` the way ``mode`` does; returns the directory its code is in."""
    project = work / "project"
    if mode == "setuptools-finder":
        # Through overlay-venv install -e, as a user would; it records the request.
        setuptools_project(project, src_layout=False)
        overlay_venv(
            "install", "-q", "--overlay", str(overlay), "--no-index", "-f", str(WHEELHOUSE), "-e", str(project), env=release.env()
        )
        return project
    if mode == "setuptools-src":
        setuptools_project(project, src_layout=True)
        pip(overlay, release, "-e", str(project))
        return project / "src"
    if mode == "setuptools-strict":
        setuptools_project(project, src_layout=False)
        pip(overlay, release, "--config-settings", "editable_mode=strict", "-e", str(project))
        return project
    if mode == "hatchling":
        hatchling_project(project)
        pip(overlay, release, "-e", str(project))
        return project / "src"
    if mode == "pth-directory":
        wheels = make_base.build_wheel(work / "wheels", "basepkg", VERSION, modules={"basepkg/__init__.py": MODULE})
        target = work / "mylibs"
        pip(overlay, release, "--no-deps", "--target", str(target), str(wheels))
        (site_packages(overlay) / "mylibs.pth").write_text(f"{target}\n")
        return target
    if mode == "egg-link":
        (project / "basepkg").mkdir(parents=True)
        (project / "basepkg" / "__init__.py").write_text(MODULE)
        (project / "basepkg.egg-info").mkdir()
        (project / "basepkg.egg-info" / "PKG-INFO").write_text(f"Metadata-Version: 1.1\nName: basepkg\nVersion: {VERSION}\n")
        (site_packages(overlay) / "basepkg.egg-link").write_text(f"{project}\n.")
        (site_packages(overlay) / "easy-install.pth").write_text(f"{project}\n")
        return project
    raise AssertionError(mode)


@pytest.fixture(scope="module", params=MODES)
def developed(request, release, tmp_path_factory):
    """(overlay, the directory basepkg 9.9.9's code is in, mode), one overlay per mode and base."""
    require_wheelhouse()
    mode = request.param
    work = tmp_path_factory.mktemp(f"dev-{mode}")
    overlay = work / "ov"
    overlay_venv("create", str(overlay), env=release.env())
    code = develop(overlay, mode, work, release)
    return overlay, code, mode


def imported(overlay: Path, release: Release, *prefix: str, code: str = SHOW) -> tuple[str, str]:
    result = subprocess.run(
        [*prefix, str(overlay / "bin" / "python"), "-c", code], env=release.env(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    version, _, origin = result.stdout.strip().partition(" ")
    return version, origin


def test_unactivated_interpreter_imports_the_overlays_copy(developed, release):
    overlay, code, _ = developed
    version, origin = imported(overlay, release)
    assert version == VERSION
    assert Path(origin).resolve().is_relative_to(code.resolve())


def test_subprocess_and_console_script(developed, release):
    overlay, _, mode = developed
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {SHOW!r}], check=True)"
    assert imported(overlay, release, code=child)[0] == VERSION
    if mode in SCRIPTED:
        out = subprocess.run([str(overlay / "bin" / "showbasepkg")], env=release.env(), capture_output=True, text=True)
        assert out.stdout.strip() == VERSION, out.stderr


def test_run_job(developed, release):
    overlay, _, _ = developed
    out = overlay_venv("run", str(overlay), "--", "python", "-c", "import basepkg; print(basepkg.__version__)", env=release.env())
    assert out.stdout.strip() == VERSION


def test_list_names_the_copy_python_imports(developed, release):
    overlay, code, mode = developed
    document = json.loads(overlay_venv("list", str(overlay), "--json", env=release.env()).stdout)
    entry = next(dist for dist in document["distributions"] if dist["name"] == "basepkg")
    version, origin = imported(overlay, release)
    assert entry["version"] == version == VERSION
    assert entry["layer"] == "overlay"
    assert [copy["version"] for copy in entry["shadows"]] == ["1.0"]
    assert entry["editable"] is (mode in EDITABLE)
    if mode in EDITABLE:
        assert Path(entry["source"]).resolve() in (code.resolve(), code.resolve().parent)
    text = overlay_venv("list", str(overlay), "--shadowed", env=release.env()).stdout
    line = next(line for line in text.splitlines() if line.startswith("basepkg"))
    assert line.split()[1:3] == [VERSION, "overlay"] and "shadows 1.0 base" in line
    assert ("editable from" in line) is (mode in EDITABLE)


def test_check_sees_the_overlays_copy(developed, release):
    overlay, _, _ = developed
    document = json.loads(overlay_venv("check", str(overlay), "--json", env=release.env(), check=False).stdout)
    assert document["problems"] == []


SHELLS = [PosixShell("bash"), PosixShell("dash"), PosixShell("zsh"), PosixShell("ksh"), CshShell("tcsh"), FishShell("fish")]


@pytest.mark.parametrize("shell", SHELLS, ids=lambda shell: shell.name)
def test_activated_in_every_shell(developed, release, shell):
    require_shell(shell)
    overlay, _, _ = developed
    script = overlay / "bin" / shell.activate_script
    result = shell.run(
        [shell.probe("before"), shell.source(script), shell.probe("active"), "deactivate", shell.probe("after")],
        env=release.env(),
    )
    assert result["before"]["basepkg"] == "1.0"
    assert result["active"]["basepkg"] == VERSION
    assert result["after"]["basepkg"] == "1.0"
    assert result["after"]["PYTHONPATH"] == result["before"]["PYTHONPATH"]


@pytest.mark.parametrize("developed", ["setuptools-finder"], indirect=True)  # the mode made with overlay-venv install -e
def test_install_e_is_recorded_and_lock_refuses_it_clearly(developed, release, tmp_path):
    overlay, code, _ = developed
    assert json.loads((overlay / "overlay-venv.json").read_text())["requests"] == [f"-e {code}"]
    result = overlay_venv("lock", str(overlay), "-o", str(tmp_path / "pylock.toml"), env=release.env(), check=False)
    assert result.returncode == 1 and not (tmp_path / "pylock.toml").exists()
    (line,) = result.stderr.splitlines()
    assert (
        line.startswith("overlay-venv: error: basepkg 9.9.9 was installed from an editable project") and "build a wheel" in line
    )
