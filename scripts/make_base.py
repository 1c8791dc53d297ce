#!/usr/bin/env python3
"""Build a simulated release (a read-only "base stack") and a small local wheelhouse, with no network.

A real release, such as an LCG view on CVMFS, is a prefix with an interpreter in ``bin/`` and a
``site-packages`` that its ``setup.sh`` puts on ``PYTHONPATH``. This script builds the same shape::

    DEST/release/python/bin/python3.X        a copy of an interpreter whose own site-packages is empty
    DEST/release/lib/python3.X/site-packages  the release's packages (reached through PYTHONPATH)
    DEST/release/setup.sh, setup.csh, setup.fish
    DEST/wheels/                              wheels to install into overlays (basepkg 2.0, ...)

The interpreter is a copy because the pyenv interpreters on these machines carry ~100 packages in their
own site-packages, which would leak into every overlay built with system site packages. The copy keeps
the binary and links to the standard library, minus site-packages.

Usage:
    python scripts/make_base.py DEST [--python PYTHON] [--base basepkg==1.0 ...] [--wheel basepkg==2.0 ...]
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

DEFAULT_BASE = ("basepkg==1.0",)
DEFAULT_WHEELS = ("basepkg==2.0",)
# The base interpreters the tests build releases on: the oldest a real release ships, and the newest.
TEST_BASE_MINORS = ("3.9", "3.13")


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def build_wheel(
    outdir: Path,
    name: str,
    version: str,
    *,
    requires: tuple[str, ...] = (),
    modules: dict[str, str] | None = None,
    console_scripts: dict[str, str] | None = None,
) -> Path:
    """Write a pure-Python wheel by hand: a zip with the module, METADATA, WHEEL and RECORD.

    By default the wheel holds one module named like the distribution that reports its version, so a
    test can tell which copy was imported: ``import basepkg; basepkg.__version__``.
    """
    outdir.mkdir(parents=True, exist_ok=True)
    module = name.replace("-", "_")
    if modules is None:
        modules = {f"{module}/__init__.py": f"__version__ = {version!r}\n"}
    dist_info = f"{module}-{version}.dist-info"
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata += [f"Requires-Dist: {req}" for req in requires]
    files: dict[str, bytes] = {path: text.encode() for path, text in modules.items()}
    files[f"{dist_info}/METADATA"] = ("\n".join(metadata) + "\n").encode()
    files[f"{dist_info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: make_base\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    if console_scripts:
        lines = ["[console_scripts]"] + [f"{cmd} = {target}" for cmd, target in console_scripts.items()]
        files[f"{dist_info}/entry_points.txt"] = ("\n".join(lines) + "\n").encode()
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for path, data in files.items():
        writer.writerow([path, _record_hash(data), len(data)])
    writer.writerow([f"{dist_info}/RECORD", "", ""])
    files[f"{dist_info}/RECORD"] = record.getvalue().encode()
    wheel = outdir / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0)), data)
    return wheel


def install_wheel(wheel: Path, site_packages: Path) -> None:
    """Unpack a pure-Python wheel into a site-packages directory, as a release build would install it."""
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site_packages)
        dist_info = next(n.split("/")[0] for n in archive.namelist() if n.split("/")[0].endswith(".dist-info"))
    (site_packages / dist_info / "INSTALLER").write_text("make_base\n")


# Names the interpreters the tests build releases on, as PATH does: "/opt/py39/bin/python3.9:/opt/py313/bin/python3".
# When set, only these are used (each is asked its version), so a run tests exactly what it was given.
TEST_PYTHONS_VAR = "OVERLAY_VENV_TEST_PYTHONS"


def _version_key(name: str) -> tuple:
    """Version "3.9.18" after "3.9.9": pyenv's version directories sorted as versions, not as text."""
    return tuple(int(part) if part.isdigit() else -1 for part in name.split("."))


def pyenv_roots(environ=os.environ) -> list[Path]:
    """Where pyenv keeps its versions, found without relying on HOME: $PYENV_ROOT, what ``pyenv root``
    says, and the checkout the ``pyenv`` executable or its shims on PATH live in (``pyenv root`` alone
    would answer ``$HOME/.pyenv``, wrong under a fresh HOME)."""
    roots = [environ["PYENV_ROOT"]] if environ.get("PYENV_ROOT") else []
    search = environ.get("PATH", os.defpath)
    pyenv = shutil.which("pyenv", path=search)
    if pyenv:
        try:
            out = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=10, env=dict(environ))
            roots += [out.stdout.strip()] if out.returncode == 0 and out.stdout.strip() else []
        except (OSError, subprocess.TimeoutExpired):
            pass
        roots.append(str(Path(os.path.realpath(pyenv)).parent.parent))  # ROOT/libexec/pyenv
    for entry in search.split(os.pathsep):
        if Path(entry).name == "shims":  # ROOT/shims, ROOT/plugins/pyenv-virtualenv/shims
            roots.append(str(Path(entry).parent))
    return [Path(root) for root in dict.fromkeys(roots) if (Path(root) / "versions").is_dir()]


def _minor_of(python: str) -> str | None:
    try:
        out = subprocess.run(
            [python, "-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def missing_python_hint(minor: str) -> str:
    return f"install it with pyenv, put python{minor} on PATH, or name it in ${TEST_PYTHONS_VAR}"


def find_python(minor: str, environ=os.environ) -> str | None:
    """An interpreter of version ``minor`` (e.g. "3.9") to build a release on: from
    $OVERLAY_VENV_TEST_PYTHONS if set (and then only there), else pyenv's newest ``minor.*``, else
    ``python{minor}`` on PATH (not a pyenv shim: it is a script, and fails for a version not selected).
    Shared by the tests and the benchmarks."""
    listed = environ.get(TEST_PYTHONS_VAR)
    if listed:
        return next((exe for exe in listed.split(os.pathsep) if exe and _minor_of(exe) == minor), None)
    for root in pyenv_roots(environ):
        candidates = [p for p in (root / "versions").glob(f"{minor}.*") if (p / "bin" / f"python{minor}").exists()]
        if candidates:
            return str(max(candidates, key=lambda p: _version_key(p.name)) / "bin" / f"python{minor}")
    for entry in environ.get("PATH", os.defpath).split(os.pathsep):
        exe = Path(entry or ".") / f"python{minor}"
        if Path(entry).name != "shims" and os.access(exe, os.X_OK) and exe.is_file():
            return str(exe)
    return None


def copy_interpreter(python: str, prefix: Path) -> Path:
    """Make ``prefix/bin/python3.X`` run with the standard library of ``python`` and an empty site-packages."""
    query = "import sys, sysconfig; print(sys.version_info[0], sys.version_info[1]); print(sysconfig.get_path('stdlib'))"
    out = subprocess.run([python, "-I", "-c", query], check=True, capture_output=True, text=True).stdout.split("\n")
    major, minor = out[0].split()
    stdlib = Path(out[1])
    real = Path(shutil.which(python) or python).resolve()
    lib = prefix / "lib" / f"python{major}.{minor}"
    lib.mkdir(parents=True)
    for entry in stdlib.iterdir():
        # The bytecode cache is linked too: without it every start recompiles the standard library
        # where PYTHONDONTWRITEBYTECODE is set (0.18 s instead of 0.02 s).
        if entry.name != "site-packages":
            (lib / entry.name).symlink_to(entry)
    (lib / "site-packages").mkdir()
    bindir = prefix / "bin"
    bindir.mkdir()
    exe = bindir / f"python{major}.{minor}"
    shutil.copy2(real, exe)
    (bindir / "python3").symlink_to(exe.name)
    return exe


SETUP_SH = """\
# Set up the simulated release, the way an LCG view's setup.sh does: interpreter on PATH,
# the release's site-packages on PYTHONPATH.
PATH={bin}${{PATH:+":$PATH"}}
PYTHONPATH={site}${{PYTHONPATH:+":$PYTHONPATH"}}
export PATH PYTHONPATH
"""

SETUP_CSH = """\
# Set up the simulated release (csh/tcsh).
setenv PATH {bin}:"$PATH"
if ( $?PYTHONPATH ) then
    setenv PYTHONPATH {site}:"$PYTHONPATH"
else
    setenv PYTHONPATH {site}
endif
"""

SETUP_FISH = """\
# Set up the simulated release (fish).
set -gx PATH {bin} $PATH
set -gx PYTHONPATH {site} $PYTHONPATH
"""


def _spec(text: str) -> tuple[str, str]:
    name, _, version = text.partition("==")
    if not version:
        raise SystemExit(f"make_base: give packages as NAME==VERSION, not {text!r}")
    return name, version


def make_base(dest: Path, python: str = sys.executable, base=DEFAULT_BASE, wheels=DEFAULT_WHEELS) -> Path:
    """Build DEST/release and DEST/wheels; return the release prefix."""
    import shlex

    release = dest / "release"
    exe = copy_interpreter(python, release / "python")
    site = release / "lib" / exe.name / "site-packages"
    site.mkdir(parents=True)
    built = dest / "build"
    for name, version in map(_spec, base):
        install_wheel(build_wheel(built, name, version), site)
    shutil.rmtree(built, ignore_errors=True)
    for name, version in map(_spec, wheels):
        build_wheel(dest / "wheels", name, version)
    bindir = str(exe.parent)
    (release / "setup.sh").write_text(SETUP_SH.format(bin=shlex.quote(bindir), site=shlex.quote(str(site))))
    (release / "setup.csh").write_text(SETUP_CSH.format(bin=bindir, site=site))
    (release / "setup.fish").write_text(SETUP_FISH.format(bin=bindir, site=site))
    return release


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv == ["--print-test-pythons"]:
        # For scripts/fetch-test-wheels.sh: the interpreters the tests build releases on, one a line.
        for minor in TEST_BASE_MINORS:
            python = find_python(minor)
            if python is None:
                print(f"make_base: no Python {minor} found ({missing_python_hint(minor)})", file=sys.stderr)
                return 1
            print(python)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", type=Path, help="directory to create (must not exist)")
    parser.add_argument("--python", default=sys.executable, help="interpreter to copy (default: this one)")
    parser.add_argument("--base", action="append", help="NAME==VERSION installed in the release (repeatable)")
    parser.add_argument("--wheel", action="append", help="NAME==VERSION built into DEST/wheels (repeatable)")
    args = parser.parse_args(argv)
    if args.dest.exists():
        parser.error(f"{args.dest} already exists")
    release = make_base(args.dest.resolve(), args.python, args.base or DEFAULT_BASE, args.wheel or DEFAULT_WHEELS)
    print(release)
    return 0


if __name__ == "__main__":
    sys.exit(main())
