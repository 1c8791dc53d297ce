"""The installers: one contract (:class:`Backend`) for everything that installs into an overlay.

Every command that installs (``install``, ``sync``, ``create --from``, ``rebuild``) picks one with
``--installer pip|uv`` (``--uv`` is kept as an alias) or ``OVERLAY_VENV_INSTALLER``; pip by default.
:data:`INSTALLERS` names them: a new installer is one module here plus one line in that table.
A backend covers a guarded install (:meth:`Backend.install`), the install of a lock's exact hashed
artifacts (:meth:`Backend.install_locked`) and removal (:meth:`Backend.uninstall`).

Both are given the same thing: the overlay's interpreter, the environment a job runs it in (the base's
PYTHONPATH applied, so the base counts as installed), pip-style arguments and a constraints file. They
differ only in how they turn that into installed files, which is all :class:`Backend` hides:

- :class:`~overlay_venv.backends.pip.PipBackend` runs ``pip install -c CONSTRAINTS ...`` once. pip's
  resolver finishes before pip changes anything, so an impossible resolution leaves the overlay as it was.
- :class:`~overlay_venv.backends.uv.UvBackend` resolves with uv's dry run against a view of every layer
  (uv cannot see packages reached through PYTHONPATH, so it would copy the whole base into the overlay),
  or with ``pip install --dry-run --report`` where uv cannot decide as pip would, and installs exactly
  the resolved set with ``--no-deps``.

``Job.preflight`` (the caller's look at the index, which may add constraints) runs before the
resolution installed from: for pip the caller runs it first, uv runs it while its dry run runs
(:attr:`Backend.judges_while_resolving`).

:func:`run_streaming` runs either tool with its output shown as progress, except the block pip prints
when resolution fails: ``install`` replaces that with its own explanation, or shows it when it has none.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..errors import OverlayError
from ..sources import Sources

PIP = "pip"
UV = "uv"
# name -> "module:class". A new installer: a module defining a Backend subclass, and one line here.
INSTALLERS = {PIP: "overlay_venv.backends.pip:PipBackend", UV: "overlay_venv.backends.uv:UvBackend"}
INSTALLER_VARIABLE = "OVERLAY_VENV_INSTALLER"

# pip's failure block starts with one of these lines. The conflict details follow at INFO level, on
# stdout, which is why pip runs without -q even when the user asked for quiet: they are needed here.
_FAILURE_STARTS = ("ERROR: Cannot install", "ERROR: ResolutionImpossible", "ERROR: Could not find a version")


@dataclass
class Outcome:
    """What one installer run did."""

    returncode: int
    output: str  # everything the tools printed, stdout and stderr interleaved
    held_back: str = ""  # the failure block, not shown yet (the caller shows it, or explains instead)
    tool: str = ""  # the tool that failed, when a backend knows ("pip" resolving for uv); else the backend's name
    conflict: Any = None  # a holds.Conflict the backend read from its tool's failure (uv's words), else None

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass(frozen=True)
class IndexOptions(Sources):
    """Where packages come from, and which versions count: the pip options both tools understand."""

    pre: bool = False
    upgrade: bool = False

    def pip_args(self) -> list[str]:
        return super().pip_args() + ["--pre"] * self.pre + ["--upgrade"] * self.upgrade

    def uv_args(self) -> list[str]:
        """The same sources for uv (it spells them as pip does). --upgrade has no counterpart: uv gets
        exact pins."""
        return super().pip_args() + ["--prerelease", "allow"] * self.pre


class Refused(Exception):
    """Raised by :attr:`Job.preflight` when it refused the requests: the installer must not install."""


def _nothing_to_judge() -> bool:
    return False


@dataclass(frozen=True)
class Job:
    """Everything an installer needs to act on one overlay."""

    python: str  # OVERLAY/bin/python
    environ: Mapping[str, str]  # the job environment: base PYTHONPATH applied, overlay not activated
    index: IndexOptions
    requirement_args: Sequence[str]  # requirements, -r, -e and -c as pip takes them
    constraints: Path  # the base holds, one `name==version` a line
    workdir: Path  # a private temporary directory (the constraints file lives there)
    quiet: bool = False
    # Every distribution the overlay's interpreter sees (layers.Distribution, all layers), for a resolver
    # that cannot look through PYTHONPATH itself (uv); None when the caller did not read the layers.
    provided: Optional[Sequence[Any]] = None
    requested: frozenset = frozenset()  # canonical names the user asked for (pip marks them REQUESTED)
    # The caller's judgement of the requests (install's pre-flight), before the resolution installed
    # from: True when it added lines to ``constraints`` (a resolution made without them is made again),
    # Refused when nothing may be installed. Later calls do nothing and return False. The caller makes
    # the first call, unless the backend ``judges_while_resolving``.
    preflight: Callable[[], bool] = _nothing_to_judge


class Ahead:
    """Work an installer started ahead of an install (see :meth:`Backend.ahead`): told the layers
    once they are read, stopped or waited for when the context ends. This one starts nothing."""

    def __enter__(self) -> Ahead:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def layers_read(self, provided: Sequence[Any]) -> None:
        """Every distribution the overlay's interpreter sees, as ``Job.provided`` will hold them."""


class Backend:
    """An installer. Subclasses implement the three operations; :meth:`pip_command` is shared."""

    name = ""
    # True: install() calls Job.preflight itself, when it chooses, before the resolution it installs
    # from (uv: while its dry run, which writes nothing, runs; the index is read meanwhile). False:
    # the caller calls it before install().
    judges_while_resolving = False

    def ahead(self, python: str, environ: Mapping[str, str]) -> Ahead:
        """What this installer can start before an install into the overlay of ``python`` (in the job
        environment ``environ``), to run while the caller reads the layers and takes its snapshot; a
        context, whose end stops or waits for whatever still runs. Nothing by default."""
        return Ahead()

    def install(self, job: Job) -> Outcome:
        """Install ``job.requirement_args`` with the base held by ``job.constraints``; never raises for
        a failed resolution (the caller explains it from the :class:`Outcome`). With
        ``judges_while_resolving``, calls ``job.preflight()`` before the resolution it installs from,
        and lets its Refused pass."""
        raise NotImplementedError

    def install_locked(self, python: str, environ: Mapping[str, str], requirements: Path, files: Path) -> None:
        """Install exactly the ``name==version --hash=sha256:...`` lines of ``requirements``, from the
        checked artifacts in ``files`` only: no index, no dependencies, nothing built. Replaces the
        overlay's own copy of another version. Raises OverlayError on failure."""
        raise NotImplementedError

    def uninstall(self, python: str, environ: Mapping[str, str], names: Sequence[str]) -> None:
        """Remove ``names`` from the overlay (never from the base). Raises OverlayError on failure."""
        raise NotImplementedError

    def pip_command(self, job: Job, *extra: str) -> list[str]:
        """``pip install`` in the overlay's interpreter, constrained. --no-warn-conflicts: ``install``
        runs its own check afterwards, which knows shadowed copies from imported ones (pip's does not,
        and walking every base distribution would cost time on a large release)."""
        return [
            job.python,
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--no-warn-conflicts",
            "-c",
            str(job.constraints),
            *extra,
            *job.index.pip_args(),
            *job.requirement_args,
        ]


def installer_name(given: Optional[str] = None, use_uv: bool = False, environ: Optional[Mapping[str, str]] = None) -> str:
    """The installer asked for: ``--installer``, else ``--uv``, else OVERLAY_VENV_INSTALLER, else pip."""
    environ = os.environ if environ is None else environ
    return given or (UV if use_uv else None) or environ.get(INSTALLER_VARIABLE, "").strip() or PIP


def chosen_backend(given: Optional[str] = None, use_uv: bool = False) -> Backend:
    """The installer ``--installer``/``--uv``/OVERLAY_VENV_INSTALLER name, made before any work, so an
    unknown name or a missing uv is said at once; ``.name`` is what operations take."""
    return get_backend(installer_name(given, use_uv))


def get_backend(name: str) -> Backend:
    """The backend called ``name``. Made here, before any work, so a missing uv fails fast."""
    if name not in INSTALLERS:
        from ..errors import UsageError

        raise UsageError(f"unknown installer {name!r}: choose one of {', '.join(sorted(INSTALLERS))}")
    module, _, cls = INSTALLERS[name].partition(":")
    return getattr(importlib.import_module(module), cls)()


def run_streaming(cmd: Sequence[str], environ: Mapping[str, str], quiet: bool, hold_failure: bool = True) -> Outcome:
    """Run ``cmd``, echoing its output to stderr line by line as progress (unless ``quiet``).

    stdout and stderr share one pipe so their lines keep their order. From the first line of a pip
    failure block on (``hold_failure``), lines are kept back rather than echoed.
    """
    from ..overlay_lock import guarded, inherited_fds

    if shutil.which(cmd[0]) is None:
        raise OverlayError(f"cannot run {cmd[0]}: it is missing or not executable")
    try:
        # Guarded: killed with us; and holding our lock's descriptor, so the lock outlives us by
        # exactly as long as the installer does (see overlay_lock).
        process = subprocess.Popen(
            guarded(cmd),
            pass_fds=inherited_fds(),
            env=dict(environ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
        )
    except OSError as exc:
        raise OverlayError(f"cannot run {cmd[0]}: {exc}") from None
    shown: list[str] = []
    held: list[str] = []
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if hold_failure and (held or line.startswith(_FAILURE_STARTS)):
                held.append(line)
                continue
            shown.append(line)
            if not quiet:
                sys.stderr.write(line)
                sys.stderr.flush()
        returncode = process.wait()
    except BaseException:
        # Ctrl-C, a termination signal, a broken stderr: the installer must be gone before the
        # caller rolls back what it wrote, or it would write on into the restored overlay.
        process.kill()
        process.wait()
        raise
    return Outcome(returncode, "".join(shown + held), "".join(held))


class Running:
    """An installer command started with its output kept (:func:`start_collected`), not waited for yet."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process

    def result(self) -> Outcome:
        """Wait for it: its exit status, stdout then stderr. Stopped first if the wait is interrupted."""
        try:
            stdout, stderr = self.process.communicate()
        except BaseException:
            self.stop()
            raise
        return Outcome(self.process.returncode, stdout + stderr)

    def stop(self) -> None:
        """Kill it (if it still runs) and reap it. Its output is thrown away unread: a child of its own
        that still holds the pipes must not keep us waiting for their end."""
        if self.process.poll() is None:
            self.process.kill()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        self.process.wait()


def start_collected(cmd: Sequence[str], environ: Mapping[str, str], cwd: Optional[Path] = None, guard: bool = True) -> Running:
    """Start an installer command with its output kept and nothing shown, to wait for later
    (:meth:`Running.result`). Guarded like :func:`run_streaming`: killed with us, holding our lock.
    ``guard=False`` for a command that changes no overlay (a dry run): the guard is an interpreter
    start, ~10 ms, for nothing there."""
    from ..overlay_lock import guarded, inherited_fds

    if shutil.which(cmd[0]) is None:
        raise OverlayError(f"cannot run {cmd[0]}: it is missing or not executable")
    try:
        process = subprocess.Popen(
            guarded(list(cmd)) if guard else list(cmd),
            pass_fds=inherited_fds() if guard else (),
            env=dict(environ),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise OverlayError(f"cannot run {cmd[0]}: {exc}") from None
    return Running(process)


def run_collected(cmd: Sequence[str], environ: Mapping[str, str], cwd: Optional[Path] = None, guard: bool = True) -> Outcome:
    """Run an installer command with its output kept and nothing shown (:func:`start_collected`)."""
    return start_collected(cmd, environ, cwd, guard).result()


def run_captured(cmd: Sequence[str], environ: Mapping[str, str], what: str, cwd: Optional[Path] = None, failure=None) -> str:
    """Run an installer command with its output kept, shown (through ``failure``, which picks the
    lines that say what went wrong) only when it fails; the one way overlay-venv runs pip or uv
    without showing progress."""
    outcome = run_collected(cmd, environ, cwd)
    if not outcome.ok:
        output = outcome.output
        said = failure(output) if failure is not None else (output.strip().splitlines() or [""])[-1]
        raise OverlayError(f"{what} failed: {said or f'{os.path.basename(cmd[0])} exit status {outcome.returncode}'}")
    return outcome.output


def run_in_background(function, *args):
    """Start ``function(*args)`` in a thread while an installer runs (it mostly waits on a pipe, so the
    GIL is free); the returned callable waits and gives the result, or raises what the function raised."""
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = function(*args)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()

    def result():
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    return result


__all__ = [
    "INSTALLERS",
    "INSTALLER_VARIABLE",
    "PIP",
    "UV",
    "Backend",
    "IndexOptions",
    "Job",
    "Outcome",
    "Refused",
    "Running",
    "chosen_backend",
    "get_backend",
    "installer_name",
    "run_captured",
    "run_collected",
    "run_in_background",
    "run_streaming",
    "start_collected",
]
