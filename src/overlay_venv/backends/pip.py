"""pip as the installer: one constrained ``pip install`` in the overlay's interpreter.

A single run is enough for "all or nothing" on a failed resolution: pip resolves the whole set (and
builds any wheel it needs) before it uninstalls or installs anything, so ResolutionImpossible and a
missing distribution leave the overlay untouched. A dry run first would cost a second resolution.
"""

from __future__ import annotations

from . import PIP, Backend, Job, Outcome, run_streaming


class PipBackend(Backend):
    name = PIP

    def install(self, job: Job) -> Outcome:
        return run_streaming(self.pip_command(job), job.environ, job.quiet)
