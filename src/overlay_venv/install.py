"""``overlay-venv install``: pip (or uv) constrained so that the base keeps what its packages depend on.

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

This module holds the pure parts, tested without pip: reading what the user asked for
(:func:`read_requests`), deriving holds (:func:`derive_holds`), explaining a failed resolution in
terms of holds (:func:`parse_conflict`, :func:`explain_conflict`), the overlay's changes
(:func:`overlay_changes`) and the record of requests (:func:`merge_requests`). ``packaging`` and the
layers module are imported lazily, like everywhere in this package.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .errors import OverlayError

# --------------------------------------------------------------------------------------------------
# What the user asked for


@dataclass
class Requests:
    """The user's requests, as pip gets them and as overlay-venv understands them."""

    pip_args: list[str] = field(default_factory=list)  # requirements, -r, -e, -c, in the user's order
    names: set[str] = field(default_factory=set)  # canonical names asked for (exempt from holds)
    constrained: set[str] = field(default_factory=set)  # canonical names in the user's own -c files
    specifiers: dict[str, str] = field(default_factory=dict)  # name -> the specifier the user gave, "" for none
    record: list[str] = field(default_factory=list)  # what to remember in overlay-venv.json
    unnamed: list[str] = field(default_factory=list)  # requests whose project name could not be read


_WHEEL = re.compile(r"^(?P<name>[^-]+)-[^-]+(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")
_SDIST = re.compile(r"^(?P<name>.+)-[^-]+\.(tar\.gz|zip|tar\.bz2|tgz)$")
_EGG = re.compile(r"[#&]egg=(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)")
_PROJECT_NAME = re.compile(r"""^\s*name\s*=\s*["']([^"']+)["']""", re.M)
_SETUP_PY_NAME = re.compile(r"""\bname\s*=\s*["']([A-Za-z0-9][A-Za-z0-9._-]*)["']""")


def looks_like_path(text: str) -> bool:
    """pip's rule of thumb: a separator, a leading dot, an archive suffix, or an existing path."""
    return (
        os.sep in text
        or text.startswith(".")
        or text.endswith((".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz"))
        or os.path.exists(text)
    )


def _pyproject_name(text: str) -> Optional[str]:
    try:
        import tomllib  # Python 3.11+
    except ImportError:
        tomllib = None
    if tomllib is not None:
        try:
            name = tomllib.loads(text).get("project", {}).get("name")
            return name if isinstance(name, str) else None
        except ValueError:
            return None
    # Older Pythons: the `name = "..."` line of the [project] table, read by hand.
    match = re.search(r"^\[project\]\s*$(?P<body>.*?)(?=^\[|\Z)", text, re.M | re.S)
    if match:
        found = _PROJECT_NAME.search(match["body"])
        return found.group(1) if found else None
    return None


def project_name(location: str) -> Optional[str]:
    """The project name of a local path or URL, when it is cheap to read: a wheel's or sdist's file
    name, an ``#egg=`` fragment, or a source tree's pyproject.toml / setup.cfg / setup.py. None otherwise
    (pip still installs it; it is just not exempt from holds)."""
    egg = _EGG.search(location)
    if egg:
        return egg["name"]
    if "://" in location:
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(location)
        if parts.scheme != "file":
            filename = unquote(parts.path.rsplit("/", 1)[-1])
            match = _WHEEL.match(filename) or _SDIST.match(filename)
            return match["name"] if match else None
        location = unquote(parts.path)
    path = Path(location)
    match = _WHEEL.match(path.name) or _SDIST.match(path.name)
    if match and path.is_file():
        return match["name"]
    if not path.is_dir():
        return None
    try:
        if (path / "pyproject.toml").is_file():
            name = _pyproject_name((path / "pyproject.toml").read_text(encoding="utf-8"))
            if name:
                return name
        if (path / "setup.cfg").is_file():
            parser = configparser.ConfigParser(interpolation=None)
            parser.read(path / "setup.cfg", encoding="utf-8")
            name = parser.get("metadata", "name", fallback=None)
            if name:
                return name
        if (path / "setup.py").is_file():
            found = _SETUP_PY_NAME.search((path / "setup.py").read_text(encoding="utf-8"))
            return found.group(1) if found else None
    except (OSError, UnicodeError, configparser.Error):
        return None
    return None


def _expand(text: str, environ: Mapping[str, str]) -> str:
    # pip expands ${VAR} (only this form, only upper case, digits and underscores) in requirement files.
    return re.sub(r"\$\{([A-Z0-9_]+)\}", lambda m: environ.get(m.group(1), m.group(0)), text)


def requirement_lines(path: Path, environ: Mapping[str, str], seen: Optional[set] = None) -> Iterable[tuple[str, str, Path]]:
    """``(kind, text, file)`` for each entry of a pip requirements file, nested files followed: kind is
    "requirement", "editable" or "constraint" (a requirement line of a -c file). Options pip alone
    cares about (--index-url, --hash, ...) are skipped."""
    seen = set() if seen is None else seen
    text = _read_once(path, seen, "requirements")
    if text is not None:
        yield from _file_entries(text, path, environ, seen, "requirement")


def _read_once(path: Path, seen: set, what: str) -> Optional[str]:
    """The text of a requirements or constraints file, or None if it was read already (files that
    include each other)."""
    real = os.path.realpath(path)
    if real in seen:
        return None
    seen.add(real)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise OverlayError(f"cannot read the {what} file {path}: {exc.strerror or exc}") from None


def _file_entries(text: str, path: Path, environ: Mapping[str, str], seen: set, kind: str) -> Iterable[tuple[str, str, Path]]:
    logical = re.sub(r"\\\r?\n", "", text)  # continuation lines
    for raw in logical.splitlines():
        line = re.sub(r"(^|\s+)#.*$", "", raw).strip()
        if not line:
            continue
        line = _expand(line, environ)
        option = re.match(r"^(-r|--requirement|-c|--constraint|-e|--editable)(?:\s*=\s*|\s+|(?=[^-\s]))(?P<value>\S.*)$", line)
        if option:
            flag, value = option.group(1), option["value"].strip()
            if flag in ("-e", "--editable"):
                yield ("editable" if kind == "requirement" else kind, value, path)
                continue
            nested = Path(value) if os.path.isabs(value) else path.parent / value
            if "://" in value:
                continue  # a remote file: pip reads it; its names are not exempt
            nested_kind = "constraint" if flag in ("-c", "--constraint") else kind
            if nested_kind == "constraint":
                nested_text = _read_once(nested, seen, "constraints")
                if nested_text is not None:
                    yield from _file_entries(nested_text, nested, environ, seen, "constraint")
            else:
                yield from requirement_lines(nested, environ, seen)
            continue
        if line.startswith("-"):
            continue  # --index-url, --find-links, --pre, ...: pip applies them; they name nothing
        # Per-requirement options (--hash=..., --config-settings ...) follow the requirement.
        yield (kind, re.split(r"\s+--?[A-Za-z]", line, maxsplit=1)[0].strip(), path)


def _absolute(location: str) -> str:
    return location if "://" in location else os.path.abspath(location)


def read_requests(
    packages: Sequence[str],
    requirement_files: Sequence[str] = (),
    editables: Sequence[str] = (),
    constraint_files: Sequence[str] = (),
    environ: Optional[Mapping[str, str]] = None,
) -> Requests:
    """Everything the user asked for, read with packaging's rules (what pip itself uses)."""
    from .layers import canonical_name, parse_requirement

    environ = dict(os.environ if environ is None else environ)
    requests = Requests()

    def add(kind: str, text: str) -> None:
        name: Optional[str] = None
        specifier = ""
        recorded = text
        if kind == "editable":
            name = project_name(text)
            recorded = f"-e {_absolute(text)}"
        else:
            parsed = None
            if not looks_like_path(text) or "@" in text:
                try:
                    parsed = parse_requirement(text)
                except Exception:  # packaging's InvalidRequirement: maybe a path or URL after all
                    parsed = None
            if parsed is not None:
                name = parsed.name
                specifier = "" if parsed.specifier is None else str(parsed.specifier)
            else:
                name = project_name(text)
                recorded = _absolute(text)
        if kind == "constraint":
            if name:
                requests.constrained.add(canonical_name(name))
            return
        requests.record.append(recorded)
        if name is None:
            requests.unnamed.append(text)
            return
        name = canonical_name(name)
        requests.names.add(name)
        if name not in requests.specifiers or specifier:
            requests.specifiers[name] = specifier

    for text in packages:
        requests.pip_args.append(text)
        add("requirement", text)
    for location in editables:
        requests.pip_args += ["-e", location]
        add("editable", location)
    for file in requirement_files:
        requests.pip_args += ["-r", file]
        for kind, text, _ in requirement_lines(Path(file), environ):
            add(kind, text)
    for file in constraint_files:
        requests.pip_args += ["-c", file]
        try:
            text = Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            raise OverlayError(f"cannot read the constraints file {file}: {exc.strerror or exc}") from None
        for kind, line, _ in _file_entries(text, Path(file), environ, set(), "constraint"):
            add(kind, line)
    return requests


# --------------------------------------------------------------------------------------------------
# Holds: what the base keeps


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


# --------------------------------------------------------------------------------------------------
# Explaining a failed resolution


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


# --------------------------------------------------------------------------------------------------
# After the installer: what changed, and what to remember


@dataclass(frozen=True)
class Change:
    name: str
    display_name: str
    before: Optional[str]  # version in the overlay before; None if it was not there
    after: Optional[str]  # version in the overlay now; None if it is gone
    shadows: tuple[tuple[str, str], ...] = ()  # (version, layer label) of the copies the new one hides


def overlay_changes(before: Iterable[Any], after: Iterable[Any]) -> list[Change]:
    """How the overlay's own distributions differ between two layerings (lists of
    :class:`overlay_venv.layers.Distribution`), sorted by name; copies in other layers are ignored."""
    from .layers import OVERLAY

    def overlay_versions(dists) -> dict[str, tuple[str, Any]]:
        found = {}
        for dist in dists:
            for copy in (dist.effective, *dist.shadowed):
                if copy.layer.kind == OVERLAY and copy.name not in found:
                    found[copy.name] = (copy.version, dist)
        return found

    old, new = overlay_versions(before), overlay_versions(after)
    changes = []
    for name in sorted(set(old) | set(new)):
        was = old.get(name, (None, None))[0]
        now, dist = new.get(name, (None, None))
        if was == now:
            continue
        shown = dist if dist is not None else old[name][1]
        shadows = tuple((copy.version, copy.layer.name) for copy in dist.shadowed) if dist is not None else ()
        changes.append(Change(name, shown.display_name, was, now, shadows))
    return changes


def merge_requests(old: Sequence[str], new: Sequence[str]) -> list[str]:
    """The overlay's recorded requests after an install: a new request replaces an older one for the
    same project (``tool`` then ``tool==2.0`` leaves ``tool==2.0``); the rest keep their order."""

    def key(entry: str) -> str:
        from .layers import canonical_name, parse_requirement

        text = entry[3:] if entry.startswith("-e ") else entry
        if entry.startswith("-e ") or (looks_like_path(text) and "@" not in text):
            name = project_name(text)
            return f"name:{canonical_name(name)}" if name else f"text:{text}"
        try:
            return f"name:{parse_requirement(text).name}"
        except Exception:
            return f"text:{text}"

    new_keys = {key(entry) for entry in new}
    merged = [entry for entry in old if key(entry) not in new_keys]
    for entry in new:
        if entry not in merged:
            merged.append(entry)
    return merged


def problem_key(problem: Any) -> tuple:
    """Identifies a broken requirement across two checks, so ``install`` reports only new ones."""
    found = problem.found.version if problem.found is not None else None
    return (problem.kind, problem.requirer.name, problem.requirer.version, problem.requirement.display, problem.extra, found)


def overlay_snapshot(overlay: Path, site_packages: Iterable[str]) -> set[tuple[str, str, str]]:
    """(location, name, version) of every distribution in the overlay's own site-packages: enough to
    tell whether a failed installer changed anything."""
    from .layers import scan_entry

    seen = set()
    for rel in site_packages:
        directory = str(overlay / rel)
        for found in scan_entry(directory):
            seen.add((os.path.basename(found.location), found.display_name, found.version))
        seen.update((name, "", "") for name in _pth_files(directory))
    return seen


def _pth_files(directory: str) -> list[str]:
    try:
        return sorted(name for name in os.listdir(directory) if name.endswith(".pth"))
    except OSError:
        return []


def relayer(before: Any, pth_files: Mapping[str, list[str]]) -> Optional[list[Any]]:
    """The distributions after an install, from ``before`` (a :class:`overlay_venv.layers.Layering`)
    with only the overlay's own directories read again: the base is read-only and the interpreter's
    sys.path is what it was, which saves an interpreter start and a scan of the whole release.

    None when that cannot be trusted: the install added or removed a ``.pth`` file (an editable
    install does), which can change sys.path itself; the caller then loads the layering afresh.
    ``pth_files`` is what :func:`pth_files_of` said before the install."""
    from .layers import OVERLAY, copy_of, resolve, scan_entry

    inside = os.path.join(os.path.realpath(before.overlay), "")
    copies = []
    old_copies = [copy for dist in before.distributions for copy in (dist.effective, *dist.shadowed)]
    for layer in before.layers:
        if layer.kind != OVERLAY:
            copies += [copy for copy in old_copies if copy.layer == layer]
            continue
        if _pth_files(layer.path) != list(pth_files.get(layer.path, ())):
            return None
        copies += [copy_of(item, layer, inside) for item in scan_entry(layer.path)]
    return resolve(copies)


def pth_files_of(layering: Any) -> dict[str, list[str]]:
    """The ``.pth`` files of each of the overlay's directories, for :func:`relayer`."""
    from .layers import OVERLAY

    return {layer.path: _pth_files(layer.path) for layer in layering.layers if layer.kind == OVERLAY}
