"""pip as the installer: one constrained ``pip install`` in the overlay's interpreter.

A single run is enough for "all or nothing" on a failed resolution: pip resolves the whole set (and
builds any wheel it needs) before it uninstalls or installs anything, so ResolutionImpossible and a
missing distribution leave the overlay untouched. A dry run first would cost a second resolution.

:func:`run_pip` is the one way overlay-venv runs pip with its output kept (locks, locked installs,
uninstalls); :func:`overlay_venv.backends.run_streaming` the one way with progress shown (install).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Optional

from . import PIP, Backend, Job, Outcome, run_captured, run_streaming

PIP_QUIET = ["--disable-pip-version-check", "--no-input"]


def run_pip(python: str, environ: Mapping[str, str], args: Sequence[str], what: str, cwd: Optional[Path] = None) -> str:
    """Run the overlay's pip; its output is kept and shown only when it fails."""
    return run_captured([python, "-m", "pip", *args], environ, what, cwd, failure=pip_failure)


def pip_failure(output: str) -> str:
    """The lines of pip's output that say what went wrong, joined."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if any("DO NOT MATCH THE HASHES" in line for line in lines):
        found = [
            line for line in lines if line.startswith(("Expected sha256", "Got ")) or line.endswith(".whl:") or "from " in line
        ]
        return "hash mismatch (tampered or a different build of the same version): " + " ".join(found[:6])
    errors = [line for line in lines if line.startswith("ERROR:")]
    return " ".join(errors[:3]) or (lines[-1] if lines else "")


class PipBackend(Backend):
    name = PIP

    def install(self, job: Job) -> Outcome:
        return run_streaming(self.pip_command(job), job.environ, job.quiet)

    def install_locked(self, python: str, environ: Mapping[str, str], requirements: Path, files: Path) -> None:
        """Install exactly the hashed pins of ``requirements`` from ``files``: hashes required, no
        dependencies, no index, nothing built (``--only-binary :all:``).

        ``--force-reinstall`` makes pip install each locked version into the overlay even when the base
        already has it (pip would otherwise call the base's copy good enough, and the overlay would lack
        its own), and replace the overlay's own copy of another version: pip uninstalls that first, and
        puts it back if the install fails. A copy in the base is outside the environment: pip leaves it
        alone. (``--ignore-installed`` would leave the overlay's old copy's files and metadata beside it.)
        """
        args = ["install", *PIP_QUIET, "--quiet", "--no-warn-conflicts", "--require-hashes", "--no-deps", "--no-index"]
        args += ["--only-binary", ":all:", "--force-reinstall", "--find-links", str(files)]
        run_pip(python, environ, [*args, "-r", str(requirements)], "installing the locked artifacts")

    def uninstall(self, python: str, environ: Mapping[str, str], names: Sequence[str]) -> None:
        if names:
            run_pip(python, environ, ["uninstall", *PIP_QUIET, "--quiet", "--yes", *names], "removing distributions")
