"""virtualenv's start-up patch made lazy (lazy_virtualenv.make_lazy): not imported at start, still in
force when distutils or setuptools is imported, on the 3.9 and 3.13 bases.

The proof that the patch still works is the install it exists for: a ``setup.cfg`` whose ``[install]``
section names directories outside the environment. virtualenv's patch drops those options, so
``setup.py install`` lands in the overlay; without it (the control: ``_virtualenv.pth`` removed) it
lands outside. Real overlays made by ``overlay-venv create``, real setuptools from the wheelhouse.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from capabilities import require_capability
from conftest import ROOT, make_overlay, overlay_venv

from overlay_venv.lazy_virtualenv import EAGER_LINE, MARKER, PTH, make_lazy, patched_modules

WHEELHOUSE = Path(os.environ.get("OVERLAY_VENV_TEST_WHEELS", ROOT / ".test-wheels"))
KINDS = ("eager", "lazy", "unpatched")
VIRTUALENV_MODULE = Path(__import__("virtualenv").__file__).parent / "create" / "via_global_ref" / "_virtualenv.py"


def site_packages(overlay: Path) -> Path:
    return next((overlay / "lib").glob("python3.*/site-packages"))


def python(overlay: Path, code: str, env: dict[str, str], cwd: Path | None = None) -> str:
    result = subprocess.run([str(overlay / "bin" / "python"), "-c", code], env=env, cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def overlays(release, tmp_path_factory) -> dict[str, Path]:
    """Three overlays on the release: as created, made lazy, and with virtualenv's .pth removed."""
    parent = tmp_path_factory.mktemp(f"lazy{release.minor}")
    made = {kind: make_overlay(release, parent / kind, install=()) for kind in KINDS}
    for kind, overlay in made.items():
        site = site_packages(overlay)
        if not (site / PTH).exists():
            # virtualenv writes its patch only for bases below 3.10; on 3.13 the files are put in as it
            # writes them for 3.9 (an environment upgraded in place keeps them), so the stand-in is
            # tested on the newer interpreter too.
            assert release.minor != "3.9"
            shutil.copyfile(VIRTUALENV_MODULE, site / "_virtualenv.py")
        elif kind == "lazy":
            # create itself makes the line lazy (before the skeleton is cached, so clones are too).
            assert MARKER in (site / PTH).read_text(), "create left virtualenv's patch eager"
            continue
        # The eager line as virtualenv writes it, in a new file: the old one is linked to the skeleton cache.
        (site / PTH).unlink(missing_ok=True)
        (site / PTH).write_text(EAGER_LINE)
    assert make_lazy(site_packages(made["lazy"]))
    (site_packages(made["unpatched"]) / PTH).unlink()
    return made


@pytest.fixture(scope="module")
def with_setuptools(release, overlays) -> dict[str, Path]:
    if not any(WHEELHOUSE.glob("setuptools-*.whl")):
        require_capability("setuptools wheels", f"for the overlays; bash scripts/fetch-test-wheels.sh fills {WHEELHOUSE}")
    for overlay in overlays.values():
        pip = [str(overlay / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(WHEELHOUSE)]
        subprocess.run([*pip, "setuptools"], env=release.env(), check=True, capture_output=True)
    return overlays


STATE = "import sys, json; print(json.dumps(['_virtualenv' in sys.modules, [type(f).__module__ for f in sys.meta_path]]))"


def test_start_up_no_longer_imports_virtualenvs_module(release, overlays):
    eager_loaded, _ = json.loads(python(overlays["eager"], STATE, release.env()))
    lazy_loaded, finders = json.loads(python(overlays["lazy"], STATE, release.env()))
    assert eager_loaded and not lazy_loaded
    assert finders.count(MARKER) == 1  # one stand-in, even where site reads the directory twice


@pytest.mark.parametrize("module", ["distutils.dist", "setuptools.dist"])
def test_importing_a_patched_module_wakes_virtualenv_as_at_start_up(release, with_setuptools, module):
    code = f"import {module}; {STATE}"
    eager = json.loads(python(with_setuptools["eager"], code, release.env()))
    lazy = json.loads(python(with_setuptools["lazy"], code, release.env()))
    # The stand-in is gone and virtualenv's finder is where its own .pth line would have put it.
    assert lazy == eager and lazy[0] and MARKER not in lazy[1]
    if release.minor == "3.9":  # virtualenv installs its finder only below 3.10
        assert "_virtualenv" in lazy[1]


def tiny_project(root: Path, elsewhere: Path) -> Path:
    (root / "tinypkg").mkdir(parents=True)
    (root / "tinypkg" / "__init__.py").write_text("X = 1\n")
    (root / "setup.py").write_text('from setuptools import setup\nsetup(name="tinypkg", version="1.0", packages=["tinypkg"])\n')
    # What virtualenv's patch is for: a configuration file that would send the install elsewhere.
    (root / "setup.cfg").write_text(f"[install]\ninstall_lib = {elsewhere}/lib\ninstall_scripts = {elsewhere}/bin\n")
    return root


@pytest.mark.parametrize("kind", KINDS)
def test_a_config_file_cannot_send_setup_py_install_out_of_the_overlay(release, with_setuptools, tmp_path, kind):
    overlay = with_setuptools[kind]
    elsewhere = tmp_path / "elsewhere"
    project = tiny_project(tmp_path / "project", elsewhere)
    install = [str(overlay / "bin" / "python"), "setup.py", "-q", "install"]
    result = subprocess.run(install, cwd=project, env=release.env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    installed_here = (site_packages(overlay) / "tinypkg").is_dir()
    try:
        if kind == "unpatched" and release.minor == "3.9":
            # The control: without virtualenv's patch the configuration file wins. This is what shows
            # the other two rows test the patch and not something else.
            assert (elsewhere / "lib" / "tinypkg").is_dir() and not installed_here
        elif release.minor == "3.9":
            assert installed_here and not elsewhere.exists()
    finally:
        subprocess.run([str(overlay / "bin" / "python"), "-m", "pip", "uninstall", "-q", "-y", "tinypkg"], env=release.env())
        shutil.rmtree(site_packages(overlay) / "tinypkg", ignore_errors=True)


@pytest.mark.parametrize("module", ["distutils.dist", "setuptools.dist"])
def test_the_parsed_install_options_are_the_eager_ones(release, with_setuptools, tmp_path, module):
    # On 3.13 virtualenv patches nothing: lazy must then change nothing either.
    project = tiny_project(tmp_path / "project", tmp_path / "elsewhere")
    code = f"import {module} as m, json; d = m.Distribution(); d.parse_config_files(); print(json.dumps(d.command_options))"
    eager = python(with_setuptools["eager"], code, release.env(), cwd=project)
    assert python(with_setuptools["lazy"], code, release.env(), cwd=project) == eager
    if release.minor == "3.9":
        unpatched = python(with_setuptools["unpatched"], code, release.env(), cwd=project)
        assert "install_lib" in json.loads(unpatched)["install"]
        assert "install_lib" not in json.loads(eager).get("install", {})


def test_a_stack_of_lazy_overlays_installs_one_stand_in_and_still_patches(release, tmp_path):
    team = make_overlay(release, tmp_path / "team", install=())
    overlay_venv("create", str(tmp_path / "mid"), "--on", str(team), "--no-pip", env=release.env())
    overlay_venv("create", str(tmp_path / "top"), "--on", str(tmp_path / "mid"), "--no-pip", env=release.env())
    for name in ("team", "mid", "top"):
        site = site_packages(tmp_path / name)
        if not (site / PTH).exists():  # 3.13: as virtualenv writes them for 3.9 (see `overlays`)
            shutil.copyfile(VIRTUALENV_MODULE, site / "_virtualenv.py")
            (site / PTH).write_text(EAGER_LINE)
        assert make_lazy(site)
    top = tmp_path / "top"
    loaded, finders = json.loads(python(top, STATE, release.env()))
    assert not loaded and finders.count(MARKER) == 1
    project = tiny_project(tmp_path / "project", tmp_path / "elsewhere")
    code = "import distutils.dist as m, json; d = m.Distribution(); d.parse_config_files(); print(json.dumps(d.command_options))"
    if release.minor == "3.9":  # the stdlib's distutils; 3.13 has none without setuptools
        assert "install_lib" not in json.loads(python(top, code, release.env(), cwd=project)).get("install", {})


def test_the_line_is_replaced_by_a_new_file_once(release, tmp_path):
    overlay = make_overlay(release, tmp_path / "ov", install=())
    site = site_packages(overlay)
    if release.minor != "3.9":  # nothing written by virtualenv, nothing to do
        assert not (site / PTH).exists() and not make_lazy(site) and not (site / PTH).exists()
        return
    assert MARKER in (site / PTH).read_text()  # create made it lazy; put virtualenv's line back
    (site / PTH).unlink()
    (site / PTH).write_text(EAGER_LINE + "\n")
    module_before = (site / "_virtualenv.py").read_bytes()
    linked = tmp_path / "linked.pth"  # stands for the skeleton cache's copy, which a clone hard-links
    os.link(site / PTH, linked)
    assert make_lazy(site) and make_lazy(site)  # a second call finds it done
    assert linked.read_text().strip() == EAGER_LINE
    assert MARKER in (site / PTH).read_text() and (site / "_virtualenv.py").read_bytes() == module_before
    assert (site / PTH).read_text().count("\n") == 1
    assert not [p for p in site.iterdir() if p.name.endswith(".tmp")]


def test_shapes_it_does_not_know_are_left_alone(tmp_path):
    real_module = VIRTUALENV_MODULE
    assert patched_modules(real_module.read_text()) == ("distutils.dist", "setuptools.dist")
    cases = {
        "other line": ("import _virtualenv; import os\n", real_module.read_text()),
        "no patch list": (EAGER_LINE + "\n", "import sys\n"),
        "not Python": (EAGER_LINE + "\n", "def (\n"),
        "no module": (EAGER_LINE + "\n", None),
    }
    for name, (line, module) in cases.items():
        site = tmp_path / name
        site.mkdir()
        (site / PTH).write_text(line)
        if module is not None:
            (site / "_virtualenv.py").write_text(module)
        assert not make_lazy(site), name
        assert (site / PTH).read_text() == line, name
    assert not make_lazy(tmp_path / "missing")
