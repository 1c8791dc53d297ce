"""Requirements of the effective distributions, with ``packaging``'s semantics, and what they break.

Parsing and evaluating ~10,000 Requires-Dist lines of a large release is most of ``check``'s work, so
the common shapes take a fast path and parsed specifiers and markers are cached by text.
``packaging`` is imported inside the functions that need it: ``overlay-venv --help`` must not pay for
it.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Optional

from .model import OVERLAY, Copy, Distribution, _owner, _place, canonical_name


@dataclass(frozen=True)
class Requirement:
    """A parsed Requires-Dist line. ``specifier`` and ``marker`` are ``packaging`` objects or None."""

    name: str  # canonical
    project: str = ""  # the name as written
    extras: frozenset[str] = frozenset()  # canonical
    specifier: Any = None  # packaging.specifiers.SpecifierSet
    marker: Any = None  # packaging.markers.Marker, or a markers.SimpleMarker (same evaluate and str)
    url: Optional[str] = None
    written_extras: tuple[str, ...] = ()  # as written, for messages

    @property
    def display(self) -> str:
        """``name[extras]specifier`` or ``name @ url``, without the marker: how messages quote it.
        Computed on demand: str(SpecifierSet) sorts and formats, too slow to do for every line."""
        text = (self.project or self.name) + (f"[{','.join(sorted(self.written_extras))}]" if self.written_extras else "")
        if self.url:
            return f"{text} @ {self.url}"
        return text + ("" if self.specifier is None else str(self.specifier))


_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"


# `===` is left to packaging: its arbitrary-string version may swallow commas.
_SPEC_ITEM = r"(?:~=|==|!=|<=|>=|<|>)\s*[A-Za-z0-9][A-Za-z0-9.*+!_-]*"


_SPECS = rf"{_SPEC_ITEM}(?:\s*,\s*{_SPEC_ITEM})*"


# The shapes nearly every Requires-Dist line has: NAME [EXTRAS] [SPECS | (SPECS)] [; MARKER]. Anything
# else (URLs, odd spacing) goes to packaging's full parser. This path exists for speed: packaging's
# parser costs ~30 us a line, too much for the ~10,000 lines of a large release (see parse_requirement).
_SIMPLE_REQUIREMENT = re.compile(
    rf"""\s*(?P<name>{_NAME})\s*
    (?:\[\s*(?P<extras>(?:{_NAME}(?:\s*,\s*{_NAME})*)?)\s*\])?\s*
    (?:(?P<specs>{_SPECS})|\(\s*(?P<pspecs>{_SPECS})?\s*\))?\s*
    (?:;\s*(?P<marker>\S.*?))?\s*""",
    re.VERBOSE | re.DOTALL,
)


_requirements: dict[str, Requirement] = {}


_markers: dict[str, Any] = {}


_specifier_sets: dict[str, Any] = {}


def _specifier_set(text: str, factory):
    # A release repeats a few specifier texts (`>=1.0,<2`) across thousands of distinct lines; a
    # SpecifierSet is never changed once made, so one object serves them all (and _satisfies' memo).
    found = _specifier_sets.get(text)
    if found is None:
        found = _specifier_sets[text] = factory(text)
    return found


def _marker(text: str):
    # Releases repeat a few dozen marker texts thousands of times; parse each once. The common shapes
    # without packaging.markers (markers.py: its import is ~12 ms of every `check`).
    marker = _markers.get(text)
    if marker is None:
        from .markers import simple_marker

        marker = simple_marker(text)
        if marker is None:
            from packaging.markers import Marker

            marker = Marker(text)
        _markers[text] = marker
    return marker


def parse_requirement(text: str) -> Requirement:
    """Parse a PEP 508 requirement with ``packaging``'s semantics (raises its InvalidRequirement).

    Common shapes are split with a regular expression and their parts handed to packaging's
    SpecifierSet and Marker; the rest goes through packaging's Requirement. Results are cached by text.
    """
    cached = _requirements.get(text)
    if cached is not None:
        return cached
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    match = _SIMPLE_REQUIREMENT.fullmatch(text)
    parsed = None
    if match:
        try:
            specs = match["specs"] or match["pspecs"] or ""
            extras = [e.strip() for e in (match["extras"] or "").split(",") if e.strip()]
            specifier = _specifier_set(specs, SpecifierSet)
            marker = _marker(match["marker"]) if match["marker"] else None
            parsed = Requirement(
                name=canonical_name(match["name"]),
                project=match["name"],
                extras=frozenset(canonical_name(e) for e in extras),
                specifier=specifier,
                marker=marker,
                written_extras=tuple(extras),
            )
        except (InvalidSpecifier, ValueError):
            parsed = None  # let packaging's full parser decide, and word the error
    if parsed is None:
        from packaging.requirements import Requirement as PackagingRequirement

        req = PackagingRequirement(text)
        parsed = Requirement(
            name=canonical_name(req.name),
            project=req.name,
            extras=frozenset(canonical_name(e) for e in req.extras),
            specifier=req.specifier,
            marker=req.marker,
            url=req.url or None,
            written_extras=tuple(sorted(req.extras)),
        )
    _requirements[text] = parsed
    return parsed


_versions: dict[str, Any] = {}


def _version(text: str):
    """``packaging.version.Version`` of ``text``, None if it is not PEP 440; parsed once per text."""
    if text not in _versions:
        from packaging.version import InvalidVersion, Version

        try:
            _versions[text] = Version(text)
        except InvalidVersion:
            _versions[text] = None
    return _versions[text]


def _valid_version(text: str) -> bool:
    return _version(text) is not None


# (id(specifier), version) -> (specifier, verdict); the specifier is kept so its id stays its own.
_contains: dict[tuple[int, str], tuple[Any, bool]] = {}


def _satisfies(requirement: Requirement, version: str) -> bool:
    """pip's rule: a URL requirement is met by any version; prereleases count (pip check does so)."""
    specifier = requirement.specifier
    if requirement.url or specifier is None or len(specifier) == 0:
        return True
    key = (id(specifier), version)
    known = _contains.get(key)
    if known is None:
        parsed = _version(version)
        known = _contains[key] = (specifier, parsed is not None and specifier.contains(parsed, prereleases=True))
    return known[1]


@dataclass(frozen=True)
class Problem:
    """A requirement of an effective distribution that the effective versions do not meet."""

    kind: str  # "missing" (nothing installed) or "conflict" (wrong version)
    requirer: Distribution
    requirement: Requirement
    extra: str  # the extra that activated the requirement, "" for an unconditional one
    found: Optional[Distribution] = None  # the effective copy of the required distribution

    def satisfied_by(self, copy: Copy) -> bool:
        return _satisfies(self.requirement, copy.version)

    def message(self) -> str:
        who = self.requirer
        text = f"{who.display_name} {who.version} ({who.layer.name}) requires {self.requirement.display}"
        if self.extra:
            text += f" for its extra [{self.extra}]"
        if self.found is None:
            return f"{text}, but {self.requirement.project or self.requirement.name} is not installed"
        found = self.found
        version = found.version if _valid_version(found.version) else f"{found.version!r} (not a PEP 440 version)"
        if found.shadowed:
            hidden = " and ".join(f"{_owner(copy.layer)} {copy.version}" for copy in found.shadowed)
            return f"{text}, but {found.display_name} {version} from {_place(found.layer)} shadows {hidden}"
        return f"{text}, but {found.display_name} {version} ({found.layer.name}) is installed"


def _marker_applies(
    requirement: Requirement, environment: Mapping[str, str], extra: str, warnings: list[str], memo: dict
) -> bool:
    marker = requirement.marker
    if marker is None:
        return True
    # Parsed markers are shared by text (see _marker), and the environment is fixed for one run, so
    # each (marker, extra) is evaluated once: evaluation costs ~20 us, and releases repeat markers a lot.
    key = (id(marker), extra)
    if key not in memo:
        try:
            memo[key] = bool(marker.evaluate({**environment, "extra": extra}))
        except Exception as exc:  # packaging raises UndefinedComparison and friends for odd markers
            warnings.append(f"cannot evaluate marker {str(marker)!r}: {exc}; requirement ignored")
            memo[key] = False
    return memo[key]


@dataclass(frozen=True)
class Edge:
    """An active requirement of an effective distribution, and what it resolves to."""

    requirer: Distribution
    requirement: Requirement
    extra: str  # "" when unconditional
    target: Optional[Distribution]


def active_requirements(
    distributions: Iterable[Distribution], environment: Mapping[str, str], warnings: Optional[list[str]] = None
) -> Iterator[Edge]:
    """Every requirement of every effective distribution that applies on the overlay's interpreter.

    Markers are evaluated with ``environment`` (the overlay interpreter's, not ours). Requirements
    behind an extra apply when some active requirement asks for that extra (``clientlib[s3]``), which
    may in turn ask for others: a worklist runs to the fixed point. Shadowed copies are never looked at.
    """
    warnings = [] if warnings is None else warnings
    by_name = {dist.name: dist for dist in distributions}
    work = deque((name, "") for name in sorted(by_name))
    seen_pairs = set(work)
    seen_lines: set[tuple[str, str]] = set()  # a line active without an extra is not repeated per extra
    memo: dict = {}  # keyed by id(marker): the module's caches keep every parsed marker alive
    while work:
        name, extra = work.popleft()
        dist = by_name[name]
        for line in dist.requires:
            if (name, line) in seen_lines:
                continue
            try:
                requirement = parse_requirement(line)
            except Exception as exc:  # InvalidRequirement: a broken METADATA must not stop the check
                warnings.append(f"{dist.display_name} {dist.version}: cannot parse requirement {line!r}: {exc}")
                seen_lines.add((name, line))
                continue
            if not _marker_applies(requirement, environment, extra, warnings, memo):
                continue
            seen_lines.add((name, line))
            target = by_name.get(requirement.name)
            yield Edge(dist, requirement, extra, target)
            if target is not None:
                for wanted in sorted(requirement.extras):
                    if (target.name, wanted) not in seen_pairs:
                        seen_pairs.add((target.name, wanted))
                        work.append((target.name, wanted))


def check_requirements(
    distributions: Iterable[Distribution], environment: Mapping[str, str], warnings: Optional[list[str]] = None
) -> list[Problem]:
    """The active requirements the effective versions break, sorted by requirer and requirement."""
    problems = []
    for edge in active_requirements(distributions, environment, warnings):
        if edge.target is None:
            problems.append(Problem("missing", edge.requirer, edge.requirement, edge.extra))
        elif not _satisfies(edge.requirement, edge.target.version):
            problems.append(Problem("conflict", edge.requirer, edge.requirement, edge.extra, edge.target))
    return sorted(problems, key=lambda p: (p.requirer.name, p.requirement.name, p.extra, p.requirement.display))


def shadowed_dependents(
    distributions: Iterable[Distribution], environment: Mapping[str, str]
) -> list[tuple[Distribution, list[Distribution]]]:
    """Effective distributions outside the overlay with an active requirement on an overlay copy that
    shadows another: the ones whose imports may break in ways metadata cannot show (a compiled module
    built against numpy 1 under an overlay's numpy 2). Sorted by name; each with its shadowing deps."""
    found: dict[str, tuple[Distribution, dict[str, Distribution]]] = {}
    for edge in active_requirements(distributions, environment):
        target = edge.target
        if edge.requirer.layer.kind == OVERLAY or target is None:
            continue
        if target.layer.kind == OVERLAY and target.shadowed:
            found.setdefault(edge.requirer.name, (edge.requirer, {}))[1][target.name] = target
    return [(dist, [deps[n] for n in sorted(deps)]) for _, (dist, deps) in sorted(found.items())]
