"""Jupyter kernels that carry the release: ``overlay-venv kernel install/list/remove``.

A kernelspec is a directory ``kernels/KERNEL/`` holding ``kernel.json`` in one of Jupyter's data
directories. Its argv runs ``bin/overlay-venv-kernel`` inside the overlay (templates/
kernel-launcher.sh.j2), which sets up the release, activates the overlay and becomes the kernel;
the launcher is rendered from the record like the activation scripts, so create, rebuild, unpack
and relocation all keep it true to the overlay's place.

Jupyter's path rules are implemented here rather than by importing jupyter_core, which overlay-venv
does not depend on (Linux and macOS rules of jupyter_core.paths):

- the user data directory: ``$JUPYTER_DATA_DIR``, else ``$XDG_DATA_HOME/jupyter``, else
  ``~/.local/share/jupyter`` (``~/Library/Jupyter`` on macOS);
- ``--prefix DIR``: ``DIR/share/jupyter`` (what ``jupyter kernelspec install --prefix`` uses);
- the search path: ``$JUPYTER_PATH`` entries, the user data directory, then the system directories
  ``/usr/local/share/jupyter`` and ``/usr/share/jupyter``.

Kernel names are what jupyter_client accepts (letters, digits, ``. _ -``), compared in lower case.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .atomic import Staging
from .errors import OverlayError
from .launcher import LAUNCHER, launcher_location, write_launcher
from .record import OverlayRecord, is_overlay, read_record
from .release import normalize_setup

SPEC_FILE = "kernel.json"
# The key in kernel.json's metadata that marks a kernel as ours, with the overlay it runs.
MARK = "overlay_venv"
SYSTEM_DATA_DIRS = ("/usr/local/share/jupyter", "/usr/share/jupyter")
_KERNEL_NAME = re.compile(r"^[a-z0-9._-]+$", re.IGNORECASE)
# jupyter_client replaces {connection_file}, {prefix}, {resource_dir} and the names of its launch
# arguments in a kernel's argv; a setup holding such a word (shell's ${prefix}) would be changed.
_JUPYTER_FIELD = re.compile(r"\{[a-z_]+\}")
NO_IPYKERNEL = 3  # the launcher's --check exit status when ipykernel cannot be imported


# ---- pure rules -------------------------------------------------------------------------------


def user_data_dir(environ: dict[str, str], home: str, platform: str = sys.platform) -> Path:
    """jupyter_core.paths.jupyter_data_dir() for Linux and macOS."""
    if environ.get("JUPYTER_DATA_DIR"):
        return Path(environ["JUPYTER_DATA_DIR"])
    if platform == "darwin":
        return Path(home, "Library", "Jupyter")
    xdg = environ.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    return Path(xdg, "jupyter")


def kernels_dir(environ: dict[str, str], home: str, prefix: str | None = None) -> Path:
    """Where ``kernel install`` writes: ``--prefix DIR`` or the user data directory."""
    data = Path(os.path.abspath(prefix), "share", "jupyter") if prefix else user_data_dir(environ, home)
    return data / "kernels"


def search_dirs(environ: dict[str, str], home: str, prefixes: tuple[str, ...] = ()) -> list[Path]:
    """The ``kernels`` directories Jupyter reads, first wins; ``prefixes`` (``--prefix``) after the
    user's, as jupyter_core puts ``sys.prefix`` there."""
    data = [Path(item) for item in environ.get("JUPYTER_PATH", "").split(os.pathsep) if item]
    data.append(user_data_dir(environ, home))
    data += [Path(os.path.abspath(prefix), "share", "jupyter") for prefix in prefixes]
    data += [Path(item) for item in SYSTEM_DATA_DIRS]
    return list(dict.fromkeys(path / "kernels" for path in data))


def check_kernel_name(name: str) -> str:
    if not _KERNEL_NAME.match(name):
        raise OverlayError(f"{name!r} is not a kernel name Jupyter accepts: use letters, digits, '.', '_' and '-'")
    return name.lower()


def default_kernel_name(overlay: Path) -> str:
    """The overlay's directory name made into a kernel name: ``My Env`` -> ``my-env``."""
    name = re.sub(r"[^a-z0-9._-]+", "-", overlay.name.lower()).strip("-.")
    return name or "overlay"


# A path component or setup word naming the release: an LCG view or release (LCG_105, LCG_105a), an
# ATLAS project with its version (AnalysisBase 25.2.15, as a path .../AnalysisBase/25.2.15/ or
# `asetup AnalysisBase,25.2.15`), a CMSSW release.
_RELEASE_NAMES = (
    re.compile(r"(?<![A-Za-z0-9])(LCG_[A-Za-z0-9_.]+?)(?=/|$|\s|['\"])"),
    re.compile(r"(?<![A-Za-z])((?:AnalysisBase|AthAnalysis|AnalysisTop|AthSimulation|Athena)[,/ ]+\d+(?:\.\d+)+)"),
    re.compile(r"(?<![A-Za-z0-9])(CMSSW_\d+_\d+_\d+[A-Za-z0-9_]*)"),
)


def release_label(record: OverlayRecord) -> str | None:
    """A short name of the release the overlay sits on, from its setup, interpreter or PYTHONPATH."""
    for text in (record.base.setup or "", record.base.interpreter, record.base.pythonpath or ""):
        for pattern in _RELEASE_NAMES:
            found = pattern.search(text)
            if found:
                return re.sub(r"[,/ ]+", " ", found.group(1))
    return None


def default_display_name(record: OverlayRecord) -> str:
    """``ana (LCG_105, Python 3.11)``, or ``ana (Python 3.11)`` when no release name is found."""
    python = "Python " + ".".join(record.base.version.split(".")[:2])
    label = release_label(record)
    return f"{record.prompt} ({label}, {python})" if label else f"{record.prompt} ({python})"


def kernel_argv(launcher: Path, setup: str | None) -> list[str]:
    return [str(launcher), *(["--setup", setup] if setup else []), "-f", "{connection_file}"]


def kernel_spec(overlay: Path, record: OverlayRecord, display_name: str, setup: str | None) -> dict:
    return {
        "argv": kernel_argv(overlay / record.bin_dir / LAUNCHER, setup),
        "display_name": display_name,
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {MARK: {"overlay": str(overlay), "setup": setup, "written_by": f"overlay-venv {__version__}"}},
    }


# ---- kernelspecs ------------------------------------------------------------------------------


@dataclass
class Kernel:
    name: str
    spec_dir: Path
    display_name: str
    overlay: str | None  # None: not ours
    setup: str | None
    problem: str | None = None  # why it cannot start, or None

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "spec_dir": str(self.spec_dir),
            "display_name": self.display_name,
            "overlay": self.overlay,
            "setup": self.setup,
            "ok": self.problem is None,
            "problem": self.problem,
        }


def read_kernel(spec_dir: Path) -> Kernel | None:
    """The kernel in ``spec_dir``, or None when it has no readable kernel.json."""
    try:
        spec = json.loads((spec_dir / SPEC_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(spec, dict):
        return None
    mark = (spec.get("metadata") or {}).get(MARK) if isinstance(spec.get("metadata"), dict) else None
    overlay = mark.get("overlay") if isinstance(mark, dict) else None
    setup = mark.get("setup") if isinstance(mark, dict) else None
    kernel = Kernel(spec_dir.name.lower(), spec_dir, str(spec.get("display_name", "")), overlay, setup)
    if overlay is not None:
        kernel.problem = kernel_problem(Path(overlay), spec)
    return kernel


def kernel_problem(overlay: Path, spec: dict) -> str | None:
    """Why a kernel of ours would not start, with what to run; None if it would."""
    if not is_overlay(overlay):
        return f"the overlay {overlay} is gone (moved or removed)"
    try:
        record = read_record(overlay)
    except OverlayError as exc:
        return exc.format_message()
    launcher = overlay / record.bin_dir / LAUNCHER
    argv = spec.get("argv") or []
    if not launcher.is_file() or not argv or argv[0] != str(launcher):
        return f"its launcher {launcher} is missing; run: overlay-venv kernel install {shlex.quote(str(overlay))}"
    location = launcher_location(launcher)
    if location != str(overlay):
        bin_dir = overlay / record.bin_dir
        relocate = f"{shlex.quote(str(bin_dir / 'python'))} {shlex.quote(str(bin_dir / 'overlay-venv-relocate'))}"
        return f"the overlay was moved here from {location} without being re-pointed; run: {relocate}"
    return None


def find_kernels(dirs: list[Path], ours_only: bool = True) -> list[Kernel]:
    """Kernels in the search directories, the first of each name only (the one Jupyter starts)."""
    found: dict[str, Kernel] = {}
    for directory in dirs:
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith(".") or not _KERNEL_NAME.match(entry.name) or entry.name.lower() in found:
                continue
            kernel = read_kernel(Path(entry.path))
            if kernel is not None:
                found[kernel.name] = kernel
    return [kernel for kernel in found.values() if kernel.overlay is not None or not ours_only]


def check_setup(setup: str) -> str:
    setup = normalize_setup(setup)
    field = _JUPYTER_FIELD.search(setup)
    if field:
        raise OverlayError(
            f"the setup holds {field.group()}, which Jupyter replaces in a kernel's command line; "
            f"write ${field.group()[1:-1]} instead of ${field.group()}"
        )
    return setup


def clean_environment(environ: dict[str, str]) -> dict[str, str]:
    """The environment of a Jupyter server that never set up the release, for the launcher's --check."""
    keep = ("HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TMPDIR", "XDG_CACHE_HOME")
    env = {key: environ[key] for key in keep if key in environ}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    return env


def check_launcher(overlay: Path, launcher: Path, setup: str | None, environ: dict[str, str]) -> str:
    """Run the launcher's --check as a Jupyter server would start it; the path of ipykernel_launcher."""
    argv = [str(launcher), *(["--setup", setup] if setup else []), "--check"]
    proc = subprocess.run(argv, env=clean_environment(environ), capture_output=True, text=True)
    if proc.returncode == NO_IPYKERNEL:
        raise OverlayError(
            f"neither the overlay {overlay} nor its release provides ipykernel; install it with: "
            f"overlay-venv install --overlay {shlex.quote(str(overlay))} ipykernel"
        )
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit status {proc.returncode}"
        raise OverlayError(f"the kernel launcher fails in a clean environment: {last}")
    return proc.stdout.strip()


def copy_logos(launcher_module: Path, spec_dir: Path) -> None:
    """The logos ipykernel ships (``ipykernel/resources/logo-*``, beside ipykernel_launcher.py), as
    ``ipykernel install`` copies them; Jupyter shows the kernel's initial without them."""
    resources = launcher_module.parent / "ipykernel" / "resources"
    for logo in sorted(resources.glob("logo-*")) if resources.is_dir() else []:
        shutil.copyfile(logo, spec_dir / logo.name)


@dataclass
class Installed:
    kernel: Kernel
    ipykernel: str
    notes: list[str]


def install_kernel(
    name: str | os.PathLike | None,
    kernel_name: str | None = None,
    display_name: str | None = None,
    prefix: str | None = None,
    setup: str | None = None,
    environ: dict[str, str] | None = None,
) -> Installed:
    from .record import find_overlay

    environ = dict(os.environ) if environ is None else environ
    overlay = find_overlay(name)
    record = read_record(overlay)
    kernel_name = check_kernel_name(kernel_name) if kernel_name else default_kernel_name(overlay)
    setup = check_setup(setup) if setup else None
    if display_name is not None and not display_name.strip():
        raise OverlayError("the display name is empty")
    target = kernels_dir(environ, os.path.expanduser("~"), prefix) / kernel_name
    existing = read_kernel(target) if target.exists() else None
    if target.exists() and (existing is None or existing.overlay is None):
        raise OverlayError(
            f"{target} exists and was not written by overlay-venv; choose another --name or remove it with: "
            f"jupyter kernelspec remove {kernel_name}"
        )
    if existing is not None and existing.overlay != str(overlay):
        raise OverlayError(
            f"kernel {kernel_name!r} ({target}) runs the overlay {existing.overlay}; choose another --name, "
            f"or remove it first with: overlay-venv kernel remove {kernel_name}"
        )
    launcher = write_launcher(overlay / record.bin_dir, overlay, record)
    found = check_launcher(overlay, launcher, setup, environ)
    spec = kernel_spec(overlay, record, display_name or default_display_name(record), setup)
    target.parent.mkdir(parents=True, exist_ok=True)
    with Staging(target) as stage:
        (stage.path / SPEC_FILE).write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
        copy_logos(Path(found), stage.path)
        stage.path.chmod(0o755)
        stage.commit(replace=target.exists())
    notes = []
    if not setup and not record.base.setup and record.base.environment is None:
        notes.append(
            "note: this overlay was created before overlay-venv recorded LD_LIBRARY_PATH, so the kernel restores "
            "only PYTHONPATH; give --setup 'COMMAND' or rebuild the overlay for the release's libraries"
        )
    return Installed(read_kernel(target) or Kernel(kernel_name, target, spec["display_name"], str(overlay), setup), found, notes)


def remove_kernel(kernel_name: str, dirs: list[Path]) -> Kernel:
    kernel_name = check_kernel_name(kernel_name)
    for kernel in find_kernels(dirs, ours_only=False):
        if kernel.name != kernel_name:
            continue
        if kernel.overlay is None:
            raise OverlayError(
                f"kernel {kernel_name!r} ({kernel.spec_dir}) was not written by overlay-venv; remove it with: "
                f"jupyter kernelspec remove {kernel_name}"
            )
        # Out of Jupyter's sight in one step, then deleted: a server never reads half a kernel.
        doomed = kernel.spec_dir.parent / f".{kernel.spec_dir.name}.overlay-venv-{os.getpid()}.removed"
        os.rename(kernel.spec_dir, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
        return kernel
    raise OverlayError(f"no kernel named {kernel_name!r} in {', '.join(str(d) for d in dirs)}")


def kernels_of(overlay: str, environ: dict[str, str] | None = None) -> list[Kernel]:
    """Our kernels (in the default search path) that run the overlay at ``overlay``."""
    environ = dict(os.environ) if environ is None else environ
    dirs = search_dirs(environ, os.path.expanduser("~"))
    return [kernel for kernel in find_kernels(dirs) if kernel.overlay == overlay]


def unpack_notes(source: str, dest: Path) -> list[str]:
    """After unpacking an overlay packed from ``source`` at another place: the kernels installed for
    ``source`` still start that one; say how to get one for ``dest``."""
    if source == str(dest):
        return []
    notes = []
    for kernel in kernels_of(source):
        notes.append(
            f"note: the Jupyter kernel {kernel.name!r} still runs {source}; for this copy run: "
            f"overlay-venv kernel install {shlex.quote(str(dest))} --name NEW-NAME"
        )
    return notes
