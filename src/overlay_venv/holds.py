"""Holds: what the base keeps while pip (or uv) installs into the overlay.

pip inside an overlay sees the base as installed, but nothing stops it from installing a newer copy of
a base package that other base packages pin: ``pip install tool`` happily puts corelib 1.43 into the
overlay, shadowing the corelib 1.20 that the base's clientlib needs. ``install`` prevents that by
handing pip a constraints file, computed fresh from the overlay's layers each time: every distribution
outside the overlay that another effective distribution requires (markers and extras applied) is held
at the version Python imports now. Exempt are the distributions the user names (asking for
``numpy>=2`` means "shadow the base's numpy"), and those given with ``--allow-shadow``.

A named distribution is also exempt as a *requirer*: pip resolves its requirements itself, for
whichever version it picks, so holding what it depends on would only stop the upgrade the user asked
for (``install tool==2.0 clientlib`` may move clientlib to a version that accepts the new corelib).

Pure functions, tested without pip: :func:`derive_holds`, and the explanation of a failed resolution
in terms of holds (:func:`parse_conflict`, :func:`explain_conflict`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from .requests import Requests


@dataclass(frozen=True)
class Reason:
    """One active requirement that makes a distribution held."""

    requirer: str  # display name
    version: str
    layer: str  # layer label: "base", "interpreter", "overlay", ...
    requirement: str  # as messages quote it, without the marker

    def text(self) -> str:
        return f"{self.requirer} {self.version} ({self.layer}) requires {self.requirement}"


@dataclass(frozen=True)
class Hold:
    """A distribution outside the overlay kept at the version Python imports now."""

    name: str  # canonical
    display_name: str
    version: str
    layer: str  # label of the layer it lives in
    reasons: tuple[Reason, ...]

    @property
    def constraint(self) -> str:
        from .layers import _valid_version

        # `===` compares strings: the only way to name a version that is not PEP 440 (pip refuses `==` there).
        return f"{self.name}{'==' if _valid_version(self.version) else '==='}{self.version}"

    def requirers(self) -> list[str]:
        return sorted({reason.requirer for reason in self.reasons}, key=str.lower)


def derive_holds(
    distributions: Iterable[Any],
    environment: Mapping[str, str],
    named: Iterable[str] = (),
    allowed: Iterable[str] = (),
    warnings: Optional[list[str]] = None,
) -> list[Hold]:
    """The distributions to hold, sorted by name: every effective distribution outside the overlay
    that another effective distribution requires (markers and extras applied, see
    :func:`overlay_venv.layers.active_requirements`), unless it is ``named`` or ``allowed``; a
    requirement of a ``named`` distribution holds nothing (pip resolves it for the version it picks)."""
    from .layers import OVERLAY, active_requirements, canonical_name

    named = {canonical_name(n) for n in named}
    exempt = named | {canonical_name(n) for n in allowed}
    reasons: dict[str, list[Reason]] = {}
    targets: dict[str, Any] = {}
    for edge in active_requirements(distributions, environment, warnings):
        target, requirer = edge.target, edge.requirer
        if target is None or target.layer.kind == OVERLAY or target.name == requirer.name:
            continue
        if target.name in exempt or requirer.name in named:
            continue
        reason = Reason(requirer.display_name, requirer.version, requirer.layer.name, edge.requirement.display)
        if reason not in reasons.setdefault(target.name, []):
            reasons[target.name].append(reason)
        targets[target.name] = target
    return [
        Hold(name, targets[name].display_name, targets[name].version, targets[name].layer.name, tuple(reasons[name]))
        for name in sorted(reasons)
    ]


def constraints_text(holds: Iterable[Hold]) -> str:
    lines = ["# Written by overlay-venv install: the base's distributions that others depend on, held."]
    lines += [hold.constraint for hold in holds]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Demand:
    """One line of pip's "The conflict is caused by:" block."""

    who: str  # the requiring distribution ("" for the user)
    version: str
    requirement: str
    name: str  # canonical name of what is required
    constraint: bool = False  # "The user requested (constraint) ..."


@dataclass
class Conflict:
    """pip's account of a failed resolution."""

    requested: list[str]  # what "Cannot install ..." names, as pip words it
    demands: list[Demand]


_CANNOT = re.compile(r"^ERROR: Cannot install (?P<what>.+?) because these package versions have conflicting dependencies\.", re.M)


_DEPENDS = re.compile(r"^(?P<who>\S+?)(?:\[[^\]]*\])? (?P<version>\S+) depends on (?P<req>.+)$")


_USER = re.compile(r"^The user requested (?P<constraint>\(constraint\) )?(?P<req>.+)$")


def _name_of(requirement: str) -> str:
    from .layers import canonical_name, parse_requirement

    try:
        return parse_requirement(requirement).name
    except Exception:  # pip may word a requirement packaging would not parse; its name still leads
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
        return canonical_name(match.group(0)) if match else requirement


def parse_conflict(output: str) -> Optional[Conflict]:
    """The conflict pip reported in ``output``, or None when pip failed some other way."""
    lines = output.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "The conflict is caused by:")
    except StopIteration:
        return None
    demands = []
    for line in lines[start + 1 :]:
        text = line.strip()
        if not text:
            break
        depends, user = _DEPENDS.match(text), _USER.match(text)
        if user:
            req = user["req"]
            demands.append(Demand("", "", req, _name_of(req), constraint=bool(user["constraint"])))
        elif depends:
            req = depends["req"]
            demands.append(Demand(depends["who"], depends["version"], req, _name_of(req)))
    cannot = _CANNOT.search(output)
    requested = re.split(r", | and ", cannot["what"]) if cannot else []
    return Conflict(requested, demands)


def _older(version: str) -> str:
    return f"<{version}"


def explain_conflict(
    conflict: Conflict,
    holds: Iterable[Hold],
    requests: Requests,
    command: str = "overlay-venv install",
    fitting: Optional[Mapping[str, str]] = None,
) -> Optional[list[str]]:
    """A few lines saying which held base distributions pin what, and what the user can do; None when
    no hold takes part (a conflict among the user's own requests: pip's words say it best).
    ``fitting``: name -> the newest version known to work with the holds (from the pre-flight)."""
    from .layers import canonical_name

    by_name = {hold.name: hold for hold in holds}
    involved = [by_name[name] for name in dict.fromkeys(d.name for d in conflict.demands) if name in by_name]
    if not involved:
        return None
    lines = [
        f"cannot install {' and '.join(conflict.requested) or 'what was asked'} without replacing base packages that others need:"
    ]
    for hold in involved:
        for demand in conflict.demands:
            if demand.name == hold.name and demand.who and canonical_name(demand.who) != hold.name:
                lines.append(f"  {demand.who} {demand.version} requires {demand.requirement}")
        shown = ", ".join(reason.text() for reason in hold.reasons[:3])
        more = f", and {len(hold.reasons) - 3} more" if len(hold.reasons) > 3 else ""
        lines.append(f"  {hold.display_name} is held at the {hold.layer}'s {hold.version}: {shown}{more}")
    lines.append("options:")
    # An older version of what the user asked for, when the user's own specifier chose the version: an
    # unpinned request has already been tried at every version by pip's backtracking.
    versions: dict[str, list[str]] = {}
    for demand in conflict.demands:
        if demand.who:
            versions.setdefault(canonical_name(demand.who), []).append(demand.version)
    candidates = [name for name in versions if name in requests.names] or [
        _name_of(text) for text in conflict.requested if _name_of(text) in requests.names
    ]
    fitting = fitting or {}
    for name in dict.fromkeys(candidates):
        if fitting.get(name):
            version = fitting[name]
            lines.append(f"  - ask for {name} {version}, the newest that works with the held versions: '{name}=={version}'")
        elif requests.specifiers.get(name):
            from .layers import _version

            known = sorted((v for v in versions.get(name, []) if _version(v) is not None), key=_version)
            example = f" (e.g. '{name}{_older(known[0])}')" if known else ""
            lines.append(f"  - ask for an older {name} that works with the held versions{example}")
    for hold in involved:
        lines.append(
            f"  - add --allow-shadow {hold.name}: the overlay gets its own {hold.display_name}, "
            f"which may break {', '.join(hold.requirers())} (see overlay-venv check afterwards)"
        )
    for hold in involved:
        names = [name for name in hold.requirers() if canonical_name(name) not in requests.names]
        if names:
            lines.append(
                f"  - add {' '.join(names)} to the packages, to upgrade {'it' if len(names) == 1 else 'them'} too "
                f"(works if a version that accepts another {hold.display_name} exists)"
            )
    return lines


# --------------------------------------------------------------------------------------------------
# What the pre-flight (overlay_venv.preflight) found, in words


def _held_words(hold: Hold) -> str:
    """``the base's corelib 1.20.0 (held: clientlib 1.4 (base) requires corelib==1.20)``"""
    shown = "; ".join(reason.text() for reason in hold.reasons[:2])
    more = f"; and {len(hold.reasons) - 2} more" if len(hold.reasons) > 2 else ""
    return f"the {hold.layer}'s {hold.display_name} {hold.version} (held: {shown}{more})"


def _span(name: str, releases: list) -> str:
    """``tool 1.299.0``, or ``300 releases of tool (1.0.0 to 1.299.0)``: ``releases`` newest first."""
    if len(releases) == 1:
        return f"{name} {releases[0].version}"
    return f"{len(releases)} releases of {name} ({releases[-1].version} to {releases[0].version})"


def preflight_note(verdict: Any, holds: Iterable[Hold]) -> Optional[str]:
    """One line when the pre-flight ruled out releases and pip installs an older one: which held
    package, held for whom, the newest release that did not fit, and ``--allow-shadow``."""
    clashing = verdict.clashing
    if verdict.refused or not clashing:
        return None
    by_name = {hold.name: hold for hold in holds}
    held = [by_name[name] for name in dict.fromkeys(c.held for r in clashing for c in r.clashes) if name in by_name]
    newest = clashing[0]
    what = ", ".join(f"{c.requirement}" for c in newest.clashes)
    against = " and ".join(_held_words(hold) for hold in held)
    chosen = (
        f"installing {verdict.name} {verdict.fits}, the newest that fits"
        if verdict.fits
        else (f"pip chooses among {verdict.name}<={verdict.bound}")
    )
    allow = " ".join(f"--allow-shadow {hold.name}" for hold in held)
    return (
        f"note: {_span(verdict.name, clashing)} cannot use {against}: {verdict.name} {newest.version} requires {what}; "
        f"{chosen} ({allow} for {verdict.name} {newest.version})"
    )


def refusal(
    verdicts: Iterable[Any], holds: Iterable[Hold], requests: Requests, command: str = "overlay-venv install"
) -> list[str]:
    """The explanation of a refusal: every release the user's specifier allows is ruled out by a hold."""
    holds = list(holds)
    refused = [verdict for verdict in verdicts if verdict.refused]
    demands, older = [], []
    for verdict in refused:
        newest = verdict.clashing[0]
        for clash in newest.clashes:
            demands.append(Demand(verdict.name, newest.version, clash.requirement, clash.held))
        if len(verdict.clashing) > 1:
            rest = verdict.clashing[1:]
            if len(rest) == 1:
                older.append(
                    f"  and so does the older {verdict.name} {rest[0].version}: it requires another version of a held package"
                )
            else:
                older.append(
                    f"  and so do the {len(rest)} older releases of {verdict.name} ({rest[-1].version} to {rest[0].version}): "
                    "each requires another version of a held package"
                )
    held = {d.name for d in demands}
    demands += [Demand("", "", hold.constraint, hold.name, constraint=True) for hold in holds if hold.name in held]
    fitting = {verdict.name: verdict.newest_fit for verdict in refused if verdict.newest_fit}
    conflict = Conflict([verdict.request for verdict in refused], demands)
    lines = explain_conflict(conflict, holds, requests, command, fitting) or []
    # The older releases' line goes under the newest's requirement, before the holds' own lines.
    prefixes = tuple(f"  {verdict.name} " for verdict in refused)
    last = max((i for i, line in enumerate(lines) if line.startswith(prefixes) and " requires " in line), default=0)
    return lines[: last + 1] + older + lines[last + 1 :]


def holds_summary(holds: Iterable[Hold], verdicts: Iterable[Any], output: str = "") -> list[str]:
    """Lines naming the holds that shaped a run that failed for another reason (a build error, the
    network): those the pre-flight met, and those pip's output mentions, in full; the rest counted."""
    holds = list(holds)
    if not holds:
        return []
    verdicts = list(verdicts)
    met = {clash.held for verdict in verdicts for release in verdict.clashing for clash in release.clashes}
    words = set(re.findall(r"[A-Za-z0-9][A-Za-z0-9._-]*", output.lower()))
    shaping = [hold for hold in holds if hold.name in met or hold.name in words or hold.display_name.lower() in words]
    if shaping and len(shaping) == len(holds) <= 5:
        lines = ["pip ran with these base packages held at the base's versions:"]
    elif shaping:
        lines = [f"pip ran with {len(holds)} base packages held at the base's versions, among them:"]
    else:
        listed = ", ".join(hold.constraint for hold in holds[:8]) + (", ..." if len(holds) > 8 else "")
        lines = [f"pip ran with {len(holds)} base package{'s' if len(holds) != 1 else ''} held at the base's versions: {listed}"]
    for hold in shaping[:5]:
        lines.append(f"  {hold.constraint}: " + "; ".join(reason.text() for reason in hold.reasons[:3]))
    for verdict in verdicts:
        clashing = verdict.clashing
        if clashing:
            names = " ".join(dict.fromkeys(f"--allow-shadow {c.held}" for r in clashing for c in r.clashes))
            lines.append(
                f"  {_span(verdict.name, clashing)} left out: they require other versions of held packages ({names} allows them)"
            )
        if verdict.newest_fit and verdict.newest_fit != verdict.bound:
            lines.append(f"  the newest {verdict.name} known to work with the holds: '{verdict.name}=={verdict.newest_fit}'")
    return lines
