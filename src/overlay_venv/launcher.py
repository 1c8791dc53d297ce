"""The Jupyter kernel launcher an overlay carries: ``bin/overlay-venv-kernel``, from
templates/kernel-launcher.sh.j2.

Rendered from the record like the activation scripts, by create (so rebuild too), unpack and
relocation, and again by ``kernel install``: it always names the overlay's current place. What it
restores when no release setup is known comes from the record: PYTHONPATH, and LD_LIBRARY_PATH and
PATH as ``create`` recorded them (``Base.environment``; records written before that have none).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from . import __version__
from .atomic import replace_file
from .paths import remove_under
from .record import OverlayRecord
from .templates import render

LAUNCHER = "overlay-venv-kernel"
LAUNCHER_TEMPLATE = "kernel-launcher.sh.j2"


def recorded_environment(environ: dict[str, str]) -> dict[str, str | None]:
    """What ``create`` records beside PYTHONPATH for a kernel to restore: LD_LIBRARY_PATH and PATH as
    the release left them, an active environment's entries dropped (None: unset)."""
    active = environ.get("VIRTUAL_ENV")
    found: dict[str, str | None] = {}
    for name in ("LD_LIBRARY_PATH", "PATH"):
        value = environ.get(name)
        found[name] = remove_under(value, active) if value is not None and active else value
    return found


def restore_values(record: OverlayRecord) -> list[tuple[str, str]]:
    """The variables the launcher puts back when no setup is known, as ``(NAME, recorded value)``.
    A record written before LD_LIBRARY_PATH and PATH were kept restores PYTHONPATH and the base
    interpreter's directory only."""
    values = [("PYTHONPATH", record.base.pythonpath or "")]
    environment = record.base.environment
    if environment is None:
        values.append(("PATH", os.path.dirname(record.base.interpreter)))
    else:
        values += [(name, environment.get(name) or "") for name in ("LD_LIBRARY_PATH", "PATH")]
    return [(name, value) for name, value in values if value]


def launcher_setup(record: OverlayRecord) -> str:
    """The setup the launcher runs by default: the recorded one, unless activation runs it (kept)."""
    return "" if record.base.keep_setup else (record.base.setup or "")


def render_launcher(overlay: Path, record: OverlayRecord) -> str:
    return render(
        LAUNCHER_TEMPLATE,
        shlex.quote,
        version=__version__,
        overlay_dir=str(overlay),
        bin_dir=record.bin_dir,
        setup_command=launcher_setup(record),
        keep_setup=record.base.keep_setup,
        base_pythonpath=record.base.pythonpath or "",
        restore=restore_values(record),
    )


def write_launcher(bin_dir: Path, overlay: Path, record: OverlayRecord) -> Path:
    """Write ``bin_dir/overlay-venv-kernel`` for the overlay that lives (or will live) at ``overlay``.
    A new file, never through what is at the name (an unpacked archive may hold a link there); left
    alone when it already says the same, so an overlay on a read-only filesystem keeps its kernel."""
    target = bin_dir / LAUNCHER
    text = render_launcher(overlay, record).encode()
    try:
        if not target.is_symlink() and target.read_bytes() == text:
            return target
    except OSError:
        pass
    replace_file(target, text, 0o755)
    return target


def launcher_location(launcher: Path) -> str | None:
    """The overlay directory a launcher was written for (its ``overlay=...`` line), or None."""
    try:
        lines = launcher.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        if line.startswith("overlay="):
            words = shlex.split(line[len("overlay=") :])
            return words[0] if len(words) == 1 else None
    return None
