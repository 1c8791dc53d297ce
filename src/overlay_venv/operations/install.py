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
from ..backends import Backend, IndexOptions, Job, Outcome, Refused, run_in_background
from ..errors import OverlayError


@dataclass
class Guarded:
    """One guarded installer run: what it was asked, what held the base, what happened."""

    layering: Any  # layers.Layering before the run
    requests: Any  # install.Requests
    holds: list
    outcome: Outcome
    warnings: list[str]
    verdicts: list = field(default_factory=list)  # preflight.Verdict per request the pre-flight judged
    notes: list[str] = field(default_factory=list)  # one line per request it steered to an older release

    @property
    def refused(self) -> bool:
        """The pre-flight refused: nothing was installed (uv's dry run may have started, and was stopped)."""
        return any(verdict.refused for verdict in self.verdicts)


# The pre-flight's bounds: all of it, and one read (a page or a metadata file). Past them pip works alone.
PREFLIGHT_SECONDS = 30.0
PREFLIGHT_READ_TIMEOUT = 10.0
PREFLIGHT_VARIABLE = "OVERLAY_VENV_PREFLIGHT"  # "0": no pre-flight (benchmarks compare with it off)


def _index_requests(layering, requests, upgrade: bool) -> list:
    """The requests pip takes from an index (not paths, URLs or editables) whose marker applies,
    and which pip would not satisfy from what is installed: those the pre-flight can judge."""
    from packaging.requirements import InvalidRequirement, Requirement

    from ..layers import canonical_name
    from ..requests import looks_like_path

    installed = {d.name: d.version for d in layering.distributions}
    found: dict[str, Any] = {}
    for entry in requests.record:
        if entry.startswith("-e ") or (looks_like_path(entry) and "@" not in entry):
            continue
        try:
            requirement = Requirement(entry)
        except InvalidRequirement:
            continue
        name = canonical_name(requirement.name)
        # A name in the user's own -c file: its versions are the user's to choose, and a bound beside
        # that constraint could only make pip's answer a conflict between the two.
        if requirement.url or name in found or name in requests.constrained:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate(layering.marker_environment):
            continue
        if not upgrade and name in installed and requirement.specifier.contains(installed[name], prereleases=True):
            continue  # pip keeps what is there
        found[name] = requirement
    return list(found.values())


def preflight(layering, requests, holds: Sequence, index: IndexOptions, ask_tags: bool = False) -> list:
    """Judge each index request's releases against ``holds`` before pip runs (see
    :mod:`overlay_venv.preflight`); [] when there is nothing to judge or a place cannot be read.
    Wheels are judged by ``layering.interpreter.tags``; without them (a layering read without tags)
    only pure-Python ones are, unless ``ask_tags``: the interpreter is then asked when they matter."""
    import os
    import time

    from ..index_client import IndexClient, Unreadable, all_sources
    from ..layers import canonical_name
    from ..preflight import Budget, candidates, judge

    held = {hold.name: hold.version for hold in holds}
    if not held or layering.environ.get(PREFLIGHT_VARIABLE, os.environ.get(PREFLIGHT_VARIABLE)) == "0":
        return []
    wanted = _index_requests(layering, requests, index.upgrade)
    if not wanted:
        return []
    tags = getattr(layering.interpreter, "tags", None)
    asked = tags is not None or not ask_tags
    try:
        sources = all_sources(index, layering.environ, str(layering.overlay))
    except Unreadable:
        return []  # pip's configuration is unreadable: pip will say so itself
    client = IndexClient(sources, PREFLIGHT_READ_TIMEOUT)
    budget = Budget(time.monotonic() + PREFLIGHT_SECONDS)
    verdicts = []
    try:
        for requirement in wanted:
            files = client.files(canonical_name(requirement.name))
            environment = layering.marker_environment
            python = environment.get("python_full_version", "3")
            if not asked and tags_needed(files, python):
                tags, asked = interpreter_tags(layering), True
            fetch = client.reader([file for _, file in candidates(files, tags, python) if file is not None])
            verdicts.append(judge(requirement, files, held, environment, fetch, budget, tags, index.pre))
    except Unreadable:
        return []  # a place pip would look is unreadable: the pre-flight cannot know every release
    finally:
        client.close()
    return verdicts


def tags_needed(files, python_full_version: str) -> bool:
    """Would the wheel tags change what the pre-flight picks from ``files``? Not when every wheel is
    pure Python for this interpreter's major version and no version has two wheels: such a wheel fits
    whatever the tags (every interpreter's tags include ``pyX-none-any`` and ``pyXY-none-any``; see
    ``preflight.compatible``) and one wheel per version leaves nothing to rank (an sdist ranks last
    anyway). The usual small project, then, costs no tags: asking for them is ~35 ms of importing
    packaging.tags in the overlay's interpreter."""
    from ..preflight import WHEEL

    major, minor = python_full_version.split(".")[:2]
    pure = {f"py{major}-none-any", f"py{major}{minor}-none-any"}
    versions = set()
    for file in files:
        if file.kind != WHEEL:
            continue
        if not file.tags & pure or file.version in versions:
            return True
        versions.add(file.version)
    return False


def interpreter_tags(layering):
    """The overlay interpreter's wheel tags, asked for only when :func:`tags_needed` says so (one more
    interpreter start); None when it cannot say (no packaging there), as the probe says it."""
    from ..layers.probe import probe

    return probe(layering.python, layering.environ, tags=True).tags


def run_guarded(
    layering, requests, allow_shadow: Sequence[str], index: IndexOptions, backend: Backend, quiet: bool, ask_tags: bool = False
) -> Guarded:
    """Hold every base distribution others depend on (except the named and ``allow_shadow``) and run
    ``backend`` on ``requests`` in the overlay ``layering`` describes (``ask_tags``: see :func:`preflight`).
    The pre-flight runs before the installer, or during uv's dry run (``Backend.judges_while_resolving``)."""
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
        judged = _Preflight(layering, requests, holds, index, ask_tags, constraints)
        # pip's own temporary directories go into ours, which is removed however we end.
        environ = {**layering.environ, "TMPDIR": str(workdir)}
        # Every layer's distributions too, for an installer that cannot see past the overlay itself (uv).
        provided, requested = layering.distributions, frozenset(requests.names)
        job = Job(layering.python, environ, index, requests.pip_args, constraints, workdir, quiet, provided, requested, judged)
        try:
            if not backend.judges_while_resolving:
                judged()
            outcome = backend.install(job)
        except Refused:
            outcome = Outcome(1, "")
        if not judged.ran:  # a backend that says it judges while resolving, and did not
            raise RuntimeError(f"the {backend.name} backend installed without running the pre-flight")
    return Guarded(layering, requests, holds, outcome, warnings, judged.verdicts, judged.notes)


class _Preflight:
    """``Job.preflight`` for :func:`run_guarded`: the pre-flight, once; the releases it rules out stay
    out of the resolver's way (``tool<=0.8.0`` added to the constraints beside the holds)."""

    def __init__(self, layering, requests, holds, index: IndexOptions, ask_tags: bool, constraints: Path) -> None:
        self.layering, self.requests, self.holds, self.index, self.ask_tags = layering, requests, holds, index, ask_tags
        self.constraints = constraints
        self.ran = False
        self.verdicts: list = []
        self.notes: list[str] = []

    def __call__(self) -> bool:
        from ..holds import preflight_note

        if self.ran:
            return False
        self.ran = True
        self.verdicts = preflight(self.layering, self.requests, self.holds, self.index, self.ask_tags)
        self.notes = [note for note in (preflight_note(verdict, self.holds) for verdict in self.verdicts) if note]
        if any(verdict.refused for verdict in self.verdicts):
            raise Refused()
        bounds = [constraint for constraint in (verdict.constraint() for verdict in self.verdicts) if constraint]
        if not bounds:
            return False
        with self.constraints.open("a", encoding="utf-8") as file:
            file.write("".join(f"{line}\n" for line in bounds))
        return True


def failure_details(run: Guarded, command: str = "overlay-venv install", fallback: bool = True) -> list[str]:
    """The lines that explain a failed run: which held packages pin what and the ways out, else (with
    ``fallback``) the installer's own failure block."""
    from ..holds import explain_conflict, holds_summary, parse_conflict, refusal

    if run.refused:
        return refusal(run.verdicts, run.holds, run.requests, command)
    conflict = run.outcome.conflict or parse_conflict(run.outcome.output)  # uv's words read by the uv backend
    fitting = {verdict.name: verdict.newest_fit for verdict in run.verdicts if verdict.newest_fit}
    lines = explain_conflict(conflict, run.holds, run.requests, command, fitting) if conflict else None
    if lines or not fallback:
        return lines or []
    # Failed some other way (a build error, the network): say which holds shaped what pip tried.
    held_back = run.outcome.held_back.rstrip("\n").splitlines() if run.outcome.held_back else []
    return held_back + holds_summary(run.holds, run.verdicts, run.outcome.output)


@dataclass
class InstallResult:
    """What ``install`` did, for the command to show."""

    changes: list  # install.Change, the overlay's own distributions that changed
    problems: list  # every broken requirement now
    new: list  # those this install broke
    allow_shadow: tuple[str, ...]
    distributions: list
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # the pre-flight's, one line each


def install(
    overlay: Path, backend: Backend, requests, index: IndexOptions, allow_shadow: Sequence[str], quiet: bool
) -> InstallResult:
    """The install proper into a live overlay, all or nothing (a transaction: rolled back on any
    failure, interruption or full disk). The caller holds the overlay's lock."""
    import os

    from ..changes import pth_files_of
    from ..layers import check_requirements, load_layering
    from ..overlay_lock import command_text
    from ..record import read_record
    from ..scripts_guard import secure_scripts
    from ..transaction import all_or_nothing, begin, scheme_dirs

    record = read_record(overlay)
    # The installer starts what it would wait for first (uv: asking a new overlay's interpreter, its
    # view of the layers), to run while the layers are read and the snapshot taken.
    with backend.ahead(record.python(overlay), os.environ) as ahead:
        # No wheel tags: the pre-flight asks for them only if it meets a wheel they decide (tags_needed).
        layering = load_layering(overlay, requirements=True)
        ahead.layers_read(layering.distributions)
        pth_files = pth_files_of(layering)
        # What was already broken, computed while the installer runs: only new breakage is reported after.
        broken_before = run_in_background(check_requirements, layering.distributions, layering.marker_environment, [])
        txn = begin(overlay, scheme_dirs(record.bin_dir, record.site_packages), command_text())

        def work() -> InstallResult:
            run = run_guarded(layering, requests, allow_shadow, index, backend, quiet, ask_tags=True)
            if run.refused:
                state = txn.rollback()
                raise OverlayError(f"no release that works with the base's held packages: {state}", details=failure_details(run))
            if not run.outcome.ok:
                who = run.outcome.tool or backend.name
                state = txn.rollback()
                raise OverlayError(f"{who} failed (exit status {run.outcome.returncode}): {state}", details=failure_details(run))
            secure_scripts(overlay / record.bin_dir)
            result = _record_and_check(overlay, layering, pth_files, requests, allow_shadow, broken_before(), run.warnings)
            result.notes = run.notes
            return result

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
