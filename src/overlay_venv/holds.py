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
    conflict: Conflict, holds: Iterable[Hold], requests: Requests, command: str = "overlay-venv install"
) -> Optional[list[str]]:
    """A few lines saying which held base distributions pin what, and what the user can do; None when
    no hold takes part (a conflict among the user's own requests: pip's words say it best)."""
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
    for name in dict.fromkeys(candidates):
        if requests.specifiers.get(name):
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
