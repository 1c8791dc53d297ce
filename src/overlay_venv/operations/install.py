"""The guarded install: requests installed with the base's depended-on packages held.

One core (:func:`run_guarded`) serves ``install`` (into a live overlay, inside a transaction: see
:func:`install`) and ``rebuild`` (into a staging overlay that is thrown away on failure). It derives
the holds from the layers, writes them as pip constraints, runs the installer and, when that fails,
explains the failure in terms of the holds (:func:`failure_details`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import private_tmp
from ..backends import Backend, IndexOptions, Job, Outcome, run_in_background
from ..errors import OverlayError


@dataclass
class Guarded:
    """One guarded installer run: what it was asked, what held the base, what happened."""

    layering: Any  # layers.Layering before the run
    requests: Any  # install.Requests
    holds: list
    outcome: Outcome
    warnings: list[str]


def run_guarded(layering, requests, allow_shadow: Sequence[str], index: IndexOptions, backend: Backend, quiet: bool) -> Guarded:
    """Hold every base distribution others depend on (except the named and ``allow_shadow``) and run
    ``backend`` on ``requests`` in the overlay ``layering`` describes."""
    from ..holds import constraints_text, derive_holds

    warnings: list[str] = []
    holds = derive_holds(
        layering.distributions,
        layering.marker_environment,
        named=requests.names | requests.constrained,
        allowed=allow_shadow,
        warnings=warnings,
    )
    with private_tmp("install") as workdir:
        constraints = workdir / "base-holds.txt"
        constraints.write_text(constraints_text(holds), encoding="utf-8")
        # pip's own temporary directories go into ours, which is removed however we end.
        environ = {**layering.environ, "TMPDIR": str(workdir)}
        job = Job(layering.python, environ, index, requests.pip_args, constraints, workdir, quiet)
        outcome = backend.install(job)
    return Guarded(layering, requests, holds, outcome, warnings)


def failure_details(run: Guarded, command: str = "overlay-venv install", fallback: bool = True) -> list[str]:
    """The lines that explain a failed run: which held packages pin what and the ways out, else (with
    ``fallback``) the installer's own failure block."""
    from ..holds import explain_conflict, parse_conflict

    conflict = parse_conflict(run.outcome.output)
    lines = explain_conflict(conflict, run.holds, run.requests, command) if conflict else None
    if not lines and fallback and run.outcome.held_back:
        lines = run.outcome.held_back.rstrip("\n").splitlines()
    return lines or []


@dataclass
class InstallResult:
    """What ``install`` did, for the command to show."""

    changes: list  # install.Change, the overlay's own distributions that changed
    problems: list  # every broken requirement now
    new: list  # those this install broke
    allow_shadow: tuple[str, ...]
    distributions: list
    warnings: list[str] = field(default_factory=list)


def install(
    overlay: Path, backend: Backend, requests, index: IndexOptions, allow_shadow: Sequence[str], quiet: bool
) -> InstallResult:
    """The install proper into a live overlay, all or nothing (a transaction: rolled back on any
    failure, interruption or full disk). The caller holds the overlay's lock."""
    from ..changes import pth_files_of
    from ..layers import check_requirements, load_layering
    from ..overlay_lock import command_text
    from ..record import read_record
    from ..scripts_guard import secure_scripts
    from ..transaction import all_or_nothing, begin, scheme_dirs

    record = read_record(overlay)
    layering = load_layering(overlay, requirements=True)
    pth_files = pth_files_of(layering)
    # What was already broken, computed while the installer runs: only new breakage is reported after.
    broken_before = run_in_background(check_requirements, layering.distributions, layering.marker_environment, [])
    txn = begin(overlay, scheme_dirs(record.bin_dir, record.site_packages), command_text())

    def work() -> InstallResult:
        run = run_guarded(layering, requests, allow_shadow, index, backend, quiet)
        if not run.outcome.ok:
            who = "uv" if backend.name == "uv" and run.outcome.stage == "install" else "pip"
            state = txn.rollback()
            raise OverlayError(f"{who} failed (exit status {run.outcome.returncode}): {state}", details=failure_details(run))
        secure_scripts(overlay / record.bin_dir)
        return _record_and_check(overlay, layering, pth_files, requests, allow_shadow, broken_before(), run.warnings)

    # Committed when work() returns: what follows only reports the install.
    return all_or_nothing(txn, work)


def _record_and_check(overlay, before, pth_files, requests, allow_shadow, broken_before, warnings) -> InstallResult:
    from ..changes import overlay_changes, problem_key, relayer
    from ..layers import canonical_name, check_requirements, load_layering
    from ..record import read_record, write_record
    from ..requests import merge_requests
    from ..sources import redact_url

    distributions = relayer(before, pth_files)
    environment = before.marker_environment
    if distributions is None:
        after = load_layering(overlay, requirements=True)
        distributions, environment = after.distributions, after.marker_environment
    changes = overlay_changes(before.distributions, distributions)
    problems = check_requirements(distributions, environment, warnings)
    old = {problem_key(problem) for problem in broken_before}
    new = [problem for problem in problems if problem_key(problem) not in old]

    record = read_record(overlay)
    # Credentials from ${VAR}s or typed in a URL stay out of the record (and so out of locks), as
    # pip keeps them out of direct_url.json.
    merged = merge_requests(record.requests, [redact_url(entry) for entry in requests.record])
    # What --allow-shadow released is part of the intent: rebuild must release it again.
    allowed = sorted({*record.allow_shadow, *(canonical_name(name) for name in allow_shadow)})
    if merged != record.requests or allowed != record.allow_shadow:
        record.requests = merged
        record.allow_shadow = allowed
        write_record(overlay, record)
    return InstallResult(changes, problems, new, tuple(allow_shadow), distributions, warnings)
