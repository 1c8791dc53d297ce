"""Helpers shared by the benchmarks: a simulated release in a temporary directory, a clean environment,
timing of commands, and tables.

Not a test module: nothing here asserts on time. Every benchmark builds its own release with
``scripts/make_base.py`` (on a copy of a clean interpreter, as the tests do) and removes everything it
made when it ends.

Bytecode: this machine's environment often carries ``PYTHONDONTWRITEBYTECODE=1``, which makes every run
recompile whatever has no cached ``.pyc`` (overlay-venv's own modules, an overlay's start-up hook). A
user's shell normally caches bytecode, so the commands measured here run with ``PYTHONPYCACHEPREFIX``
pointing into the benchmark's temporary directory: the warm-up run fills that cache, later runs are
warm, and nothing is written into the checkout or the interpreters' own trees.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import make_base  # noqa: E402

CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"


def resolve_python(spec: str | None) -> str:
    """``--python``: a version like ``3.12`` or a path/command. Default: 3.9 if present, else this one."""
    if spec is None:
        return make_base.find_python("3.9") or sys.executable
    if spec[:1].isdigit():
        found = make_base.find_python(spec)
        if found is None:
            raise SystemExit(f"no Python {spec} found (pyenv or PATH)")
        return found
    found = shutil.which(spec) if os.sep not in spec else spec
    if not found or not os.access(found, os.X_OK):
        raise SystemExit(f"no interpreter {spec!r}")
    return os.path.abspath(found)


def common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--python",
        default=None,
        help="base interpreter to copy into the simulated release: a version (3.9 .. 3.13) or a path."
        " Default: pyenv's 3.9 if present, else the running interpreter",
    )


@dataclass
class Release:
    root: Path
    python: Path  # DEST/release/python/bin/python3.X
    site: Path  # the release's site-packages, which setup.sh puts on PYTHONPATH
    scratch: Path  # the benchmark's temporary directory

    @property
    def bin(self) -> Path:
        return self.python.parent

    @property
    def version(self) -> str:
        return self.python.name[len("python") :]

    def env(self, path: str | None = None, **extra: str) -> dict[str, str]:
        """The environment right after sourcing the release's setup.sh (PATH and PYTHONPATH set)."""
        env = clean_env(self.scratch)
        env["PATH"] = f"{self.bin}:{path or env['PATH']}"
        env["PYTHONPATH"] = str(self.site)
        env.update(extra)
        return env


def clean_env(scratch: Path) -> dict[str, str]:
    env = {
        "PATH": CLEAN_PATH,
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        # Warm bytecode cache kept inside the scratch directory (see the module docstring).
        "PYTHONPYCACHEPREFIX": str(scratch / "pycache"),
        # virtualenv's app data (its interpreter cache, seed wheels) in the scratch directory too: the
        # warm-up run fills it, and a user's own ~/.cache/virtualenv is not touched.
        "VIRTUALENV_OVERRIDE_APP_DATA": str(scratch / "virtualenv-app-data"),
        # overlay-venv's own cache (skeletons, compiled templates) likewise.
        "XDG_CACHE_HOME": str(scratch / "cache"),
    }
    if "TMPDIR" in os.environ:
        env["TMPDIR"] = os.environ["TMPDIR"]
    return env


class Scratch:
    """A temporary directory removed on exit, whatever happened."""

    def __init__(self, name: str):
        self.path = Path(tempfile.mkdtemp(prefix=f"overlay-venv-{name}-")).resolve()

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc_info) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def build_release(scratch: Path, python: str) -> Release:
    root = make_base.make_base(scratch / "base", python)
    exe = next((root / "python" / "bin").glob("python3.*"))
    return Release(root=root, python=exe, site=root / "lib" / exe.name / "site-packages", scratch=scratch)


def tool_script(name: str = "overlay-venv") -> str:
    """The console script installed beside this interpreter (not a pyenv shim, which adds ~50 ms of bash)."""
    candidate = Path(sysconfig.get_path("scripts")) / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"{name} is not installed for {sys.executable}: run `pip install -e .` first")
    return found


def isolated_tool(scratch: Path) -> Path:
    """overlay-venv as a user installs it (pipx, or a venv of its own): an interpreter that sees only
    overlay-venv and its dependencies. Made here without network: a venv whose one .pth file lists
    where this interpreter finds them, as plain paths, so other .pth files there (which may import
    things at every start) do not run. Returns the venv's console script, written as pip writes one."""
    import overlay_venv

    tool = scratch / "tool-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tool)], check=True)
    where = "import site; print(site.getsitepackages()[0])"
    site = Path(subprocess.check_output([str(tool / "bin" / "python"), "-c", where], text=True).strip())
    dirs = [str(Path(overlay_venv.__file__).resolve().parent.parent)]
    dirs += [sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]
    (site / "overlay_venv_tool.pth").write_text("\n".join(dict.fromkeys(dirs)) + "\n")
    script = tool / "bin" / "overlay-venv"
    script.write_text(f"#!{tool / 'bin' / 'python'}\nimport sys\nfrom overlay_venv._entry import main\nsys.exit(main())\n")
    script.chmod(0o755)
    return script


def run(cmd: list[str], env: dict[str, str], cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise SystemExit(f"command failed ({result.returncode}): {' '.join(cmd)}\n{result.stdout}{result.stderr}")
    return result


def timed(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    """Wall time of one run of ``cmd`` (output discarded); fails loudly if the command fails."""
    start = time.perf_counter()
    result = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"command failed ({result.returncode}): {' '.join(cmd)}\n{result.stderr.decode(errors='replace')}")
    return elapsed


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    lines = [
        "  ".join(
            str(cell).ljust(width) if i == 0 else str(cell).rjust(width) for i, (cell, width) in enumerate(zip(row, widths))
        )
        for row in [headers, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def header(title: str, release: Release) -> None:
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    print(f"== {title} ==")
    print(f"tool python : {sys.executable} ({platform.python_version()})")
    print(f"base python : {release.python} (copy of a clean {release.version} interpreter)")
    print(f"machine     : {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in load)} at start")
    print()
