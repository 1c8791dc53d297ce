"""Running commands inside an overlay without sourcing anything: ``run`` here and now, ``wrap`` as a
job script for a batch system.

Both go through the overlay's own ``bin/activate``, which already runs the kept release setup, drops
entries an activated overlay left in an inherited environment and warns about a changed release, so
there is one definition of "inside the overlay". ``run`` replaces itself with ``/bin/sh``, which
replaces itself with the command: no process of ours stays between the caller and the command, so its
exit status and the signals sent to it are the caller's business alone.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
from pathlib import Path

from . import __version__
from .errors import OverlayError
from .pack import publish_file, temporary_beside
from .record import OverlayRecord, find_overlay, read_record
from .release import normalize_setup
from .templates import render

SH = "/bin/sh"
NOT_FOUND = 127  # what a shell returns for a command it cannot find

# $1: the activation script; the rest: the command. The script is sourced from a function called
# with no arguments: a sourced script (and the release setup it runs) sees the positional parameters
# of its caller, and would take the command for its own arguments. `command -v` runs after
# activation, so the overlay's bin/ and the release's PATH are searched, and a missing command gets
# one clear line.
RUN_PROGRAM = (
    '_overlay_venv_activate="$1"\n'
    "shift\n"
    '_overlay_venv_source () { . "$_overlay_venv_activate"; }\n'
    "_overlay_venv_source || exit\n"
    "unset -f _overlay_venv_source\n"
    "unset _overlay_venv_activate\n"
    'if ! command -v "$1" >/dev/null 2>&1; then\n'
    "    printf 'overlay-venv: error: %s: command not found (searched PATH with the overlay %s active)\\n' \\\n"
    '        "$1" "$VIRTUAL_ENV" >&2\n'
    f"    exit {NOT_FOUND}\n"
    "fi\n"
    'exec "$@"\n'
)


def activation_script(overlay: Path, record: OverlayRecord) -> Path:
    script = overlay / record.bin_dir / "activate"
    if not script.is_file():
        raise OverlayError(f"{script} is missing; recreate the overlay with: overlay-venv create --clear {overlay}")
    return script


def run_argv(overlay: Path, command: list[str]) -> list[str]:
    """The argv that runs ``command`` inside ``overlay`` (for ``os.execv(SH, ...)``)."""
    record = read_record(overlay)
    return ["sh", "-c", RUN_PROGRAM, "overlay-venv", str(activation_script(overlay, record)), *command]


def exec_in_overlay(name: str | os.PathLike, command: list[str]) -> None:
    """Become ``command`` running inside the overlay ``name``. Returns only by raising."""
    overlay = find_overlay(name)
    argv = run_argv(overlay, command)
    # Python ignores SIGPIPE and SIGXFSZ for itself, and ignored signals survive exec: put them back,
    # so `overlay-venv run ... | head` ends the command the way it would end it run directly.
    for signame in ("SIGPIPE", "SIGXFSZ"):
        if hasattr(signal, signame):
            signal.signal(getattr(signal, signame), signal.SIG_DFL)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(SH, argv)
    except OSError as exc:
        raise OverlayError(f"cannot run {SH}: {exc.strerror}") from None


def job_setup(record: OverlayRecord, setup: str | None) -> str:
    """The release setup a job script runs itself: ``setup`` if given, else the recorded one unless
    activation runs it anyway (``--keep-setup``); "" for none."""
    if setup is not None:
        return normalize_setup(setup) if setup.strip() else ""
    if record.base.setup and not record.base.keep_setup:
        return record.base.setup
    return ""


def render_job(overlay: Path, command: list[str], setup: str | None = None, ship: dict | None = None) -> tuple[str, list[str]]:
    """The job script text, and notes for the user. ``ship``: the values of ship.ship_values, for a
    job that unpacks the overlay itself."""
    record = read_record(overlay)
    activation_script(overlay, record)
    own_setup = job_setup(record, setup)
    if ship and setup is None and record.base.setup:
        # A shipped job runs even a kept setup itself, before the release's interpreter unpacks the
        # overlay; activation then finds the release set up and skips it.
        own_setup = record.base.setup
    notes = []
    if not own_setup and not record.base.keep_setup:
        notes.append(
            "note: no release setup is recorded for this overlay, so the job relies on the environment it starts "
            "in (e.g. sbatch --export=ALL from a shell with the release set up); to make it self-contained pass "
            "--setup 'COMMAND'"
        )
    text = render(
        "job.sh.j2",
        shlex.quote,
        version=__version__,
        overlay_dir=str(overlay),
        bin_dir=record.bin_dir,
        command=list(command),
        setup=own_setup,
        base_pythonpath=record.base.pythonpath or "",
        keep_setup=record.base.keep_setup,
        **(ship or {"ship": False, "embedded": False}),
    )
    return text, notes


def write_job(text: str, output: Path, force: bool, mode: int = 0o755) -> None:
    """Write the job script executable (HTCondor runs its `executable` directly), whole or not at all."""
    output = Path(os.path.abspath(output))
    if not output.parent.is_dir():
        raise OverlayError(f"directory {str(output.parent)!r} does not exist (create it first)")
    if (output.exists() or output.is_symlink()) and not force:
        raise OverlayError(f"{str(output)!r} exists; pass --force to overwrite it")
    temporary = temporary_beside(output)
    try:
        temporary.write_text(text, encoding="utf-8")
        temporary.chmod(mode)
        publish_file(temporary, output, force)
    finally:
        if temporary.exists():
            temporary.unlink()
