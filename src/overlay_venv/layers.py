"""Which copy of each distribution an overlay's interpreter imports, and what that breaks.

An overlay stacks three kinds of site directories on ``sys.path``: its own site-packages ("overlay"),
the release's PYTHONPATH entries ("base") and the base interpreter's own site-packages ("interpreter").
A distribution installed in several of them is imported from the first; the others are *shadowed*.

The module is split in two:

- pure functions over plain data (:func:`classify_entries`, :func:`label_layers`, :func:`resolve`,
  :func:`parse_requirement`, :func:`check_requirements`, :func:`shadowed_dependents`,
  :func:`modules_from_files`), property-tested without any interpreter or file;
- a thin I/O layer: :func:`probe` asks the overlay's interpreter once for its real ``sys.path`` (base
  PYTHONPATH applied, not activated: what a batch job sees, after the start-up hook reordered it),
  :func:`scan_entry` reads ``*.dist-info``/``*.egg-info`` metadata from disk, never importing a
  package, and :func:`run_imports` imports modules in fresh interpreters for ``check --imports``.

:func:`load_layering` ties them together; :func:`effective_distributions` is the entry point other
commands (``install``) reuse.

``packaging`` is imported inside the functions that need it: command discovery imports this module's
users, and ``overlay-venv --help`` must not pay for it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .errors import OverlayError
from .paths import SEPARATOR, remove_under

OVERLAY = "overlay"
BASE = "base"
INTERPRETER = "interpreter"
USER = "user"
OTHER = "other"
KINDS = (OVERLAY, BASE, INTERPRETER, USER, OTHER)

FORMAT = 1  # version of the JSON documents `list --json` and `check --json` print


# --------------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class Layer:
    """One ``sys.path`` entry and the layer it belongs to."""

    kind: str  # one of KINDS
    path: str  # the sys.path entry, as the interpreter has it
    index: int = 0  # base entries: 1-based position in PYTHONPATH; 0 otherwise
    label: str = ""  # how text output names it: "overlay", "base", "base[2]", "interpreter", ...

    @property
    def name(self) -> str:
        return self.label or self.kind


@dataclass(frozen=True)
class Copy:
    """One installed copy of a distribution: its metadata directory in one layer."""

    name: str  # canonical (PEP 503) name
    display_name: str  # as its metadata spells it
    version: str
    layer: Layer
    location: str  # the .dist-info / .egg-info path
    requires: tuple[str, ...] = ()  # Requires-Dist, unparsed
    source: Optional[str] = None  # an editable install's source directory; None for a plain install

    @property
    def editable(self) -> bool:
        return self.source is not None


@dataclass(frozen=True)
class Distribution:
    """A distribution as the overlay's interpreter sees it: the copy it imports, and those it hides."""

    effective: Copy
    shadowed: tuple[Copy, ...] = ()

    @property
    def name(self) -> str:
        return self.effective.name

    @property
    def display_name(self) -> str:
        return self.effective.display_name

    @property
    def version(self) -> str:
        return self.effective.version

    @property
    def layer(self) -> Layer:
        return self.effective.layer

    @property
    def requires(self) -> tuple[str, ...]:
        return self.effective.requires


@dataclass(frozen=True)
class Requirement:
    """A parsed Requires-Dist line. ``specifier`` and ``marker`` are ``packaging`` objects or None."""

    name: str  # canonical
    project: str = ""  # the name as written
    extras: frozenset[str] = frozenset()  # canonical
    specifier: Any = None  # packaging.specifiers.SpecifierSet
    marker: Any = None  # packaging.markers.Marker
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


@dataclass(frozen=True)
class Probe:
    """What the overlay's interpreter reports about itself (see ``_PROBE``)."""

    sys_path: list[str]
    prefix: str
    base_prefixes: list[str]
    user_site: Optional[str]
    marker_environment: dict[str, str]
    own_entries: list[str] = field(default_factory=list)  # what the overlay's start-up hook counted as its own


@dataclass
class Layering:
    """Everything ``list`` and ``check`` show about one overlay."""

    overlay: Path
    python: str  # the overlay's interpreter
    environ: dict[str, str]  # the environment a job runs it in (for further subprocesses)
    pythonpath: Optional[str]  # the PYTHONPATH applied
    pythonpath_source: str  # "environment", "record" (none in the environment) or "none"
    layers: list[Layer]  # sys.path order
    distributions: list[Distribution]  # sorted by name
    marker_environment: dict[str, str]
    warnings: list[str] = field(default_factory=list)

    def by_name(self) -> dict[str, Distribution]:
        return {dist.name: dist for dist in self.distributions}


# --------------------------------------------------------------------------------------------------
# Pure functions: layering


def canonical_name(name: str) -> str:
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def classify_entries(
    sys_path: Iterable[str],
    overlay_dirs: Iterable[str],
    pythonpath_entries: Iterable[str],
    base_prefixes: Iterable[str],
    user_site: Optional[str],
    own_entries: Iterable[str] = (),
) -> list[Layer]:
    """The layer of each ``sys.path`` entry, without labels.

    Paths are compared as given, normalised (callers pass real paths where symlinks matter). Overlay
    directories win over PYTHONPATH entries (an activated shell has them on PYTHONPATH), PYTHONPATH
    entries over the interpreter's prefix (an LCG view's interpreter lives in the very prefix whose
    site-packages is on PYTHONPATH, and its setup script is what makes it a layer of the release).
    ``own_entries`` are directories outside the overlay that its ``.pth`` files put on sys.path (an
    editable checkout): they belong to the overlay too.
    """
    overlays = [os.path.join(os.path.normpath(d), "") for d in overlay_dirs]
    own = {os.path.normpath(entry) for entry in own_entries}
    positions: dict[str, int] = {}
    for position, entry in enumerate(pythonpath_entries, 1):
        positions.setdefault(os.path.normpath(entry), position)
    prefixes = [os.path.join(os.path.normpath(p), "") for p in base_prefixes]
    user = os.path.normpath(user_site) if user_site else None
    layers = []
    for entry in sys_path:
        norm = os.path.join(os.path.normpath(entry), "")
        if any(norm.startswith(d) for d in overlays) or os.path.normpath(entry) in own:
            layers.append(Layer(OVERLAY, entry))
        elif os.path.normpath(entry) in positions:
            layers.append(Layer(BASE, entry, positions[os.path.normpath(entry)]))
        elif user is not None and os.path.normpath(entry) == user:
            layers.append(Layer(USER, entry))
        elif any(norm.startswith(p) for p in prefixes):
            layers.append(Layer(INTERPRETER, entry))
        else:
            layers.append(Layer(OTHER, entry))
    return layers


def label_layers(layers: Iterable[Layer], carrying: Iterable[str]) -> list[Layer]:
    """Give each layer its text label. Base entries are just "base" unless more than one of them
    carries packages (paths in ``carrying``); then each is "base[N]", N its place in PYTHONPATH."""
    layers = list(layers)
    carrying = set(carrying)
    numbered = len({layer.path for layer in layers if layer.kind == BASE and layer.path in carrying}) > 1
    labelled = []
    for layer in layers:
        label = f"{BASE}[{layer.index}]" if layer.kind == BASE and numbered else layer.kind
        labelled.append(Layer(layer.kind, layer.path, layer.index, label))
    return labelled


def resolve(copies: Iterable[Copy]) -> list[Distribution]:
    """Group copies given in import order (sys.path order, then directory order): the first copy of
    each name is the one imported, the rest are shadowed. Sorted by name."""
    groups: dict[str, list[Copy]] = {}
    for copy in copies:
        groups.setdefault(copy.name, []).append(copy)
    return [Distribution(group[0], tuple(group[1:])) for _, group in sorted(groups.items())]


# --------------------------------------------------------------------------------------------------
# Pure functions: requirements

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


def _marker(text: str):
    # Releases repeat a few dozen marker texts thousands of times; parse each once.
    marker = _markers.get(text)
    if marker is None:
        from packaging.markers import Marker

        marker = _markers[text] = Marker(text)
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
            specifier = SpecifierSet(specs)
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


def _satisfies(requirement: Requirement, version: str) -> bool:
    """pip's rule: a URL requirement is met by any version; prereleases count (pip check does so)."""
    if requirement.url or requirement.specifier is None or len(requirement.specifier) == 0:
        return True
    parsed = _version(version)
    return parsed is not None and requirement.specifier.contains(parsed, prereleases=True)


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


def modules_from_files(paths: Iterable[str]) -> list[str]:
    """Top-level importable names from a RECORD-style file list (``pkg/mod.py``, ``mod.cpython-39-x86_64-
    linux-gnu.so``); metadata directories, scripts outside site-packages and caches are skipped."""
    names = set()
    for path in paths:
        parts = path.replace("\\", "/").split("/")
        head = parts[0]
        if not head or head in ("..", ".", "__pycache__") or head.endswith((".dist-info", ".egg-info", ".data")):
            continue
        if len(parts) == 1:
            if head.endswith(".pth"):
                continue
            stem, dot, suffix = head.partition(".")
            if not dot or not (suffix == "py" or suffix.endswith(("so", "pyd"))):
                continue
            head = stem
        if head.isidentifier():
            names.add(head)
    return sorted(names)


# --------------------------------------------------------------------------------------------------
# Pure functions: presentation


def copy_json(copy: Copy) -> dict[str, Any]:
    return {
        "version": copy.version,
        "layer": copy.layer.kind,
        "label": copy.layer.name,
        "path": copy.layer.path,
        "editable": copy.editable,
        "source": copy.source,
    }


def distribution_json(dist: Distribution) -> dict[str, Any]:
    return {
        "name": dist.name,
        "display_name": dist.display_name,
        **copy_json(dist.effective),
        "shadows": [copy_json(copy) for copy in dist.shadowed],
    }


def problem_json(problem: Problem) -> dict[str, Any]:
    found = problem.found
    return {
        "kind": problem.kind,
        "message": problem.message(),
        "distribution": {"name": problem.requirer.name, **copy_json(problem.requirer.effective)},
        "requirement": problem.requirement.display,
        "extra": problem.extra or None,
        "found": None if found is None else {"name": found.name, **copy_json(found.effective)},
        "shadowed": [] if found is None else [{**copy_json(c), "satisfies": problem.satisfied_by(c)} for c in found.shadowed],
    }


def colour_enabled(stream=None) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set to anything non-empty (no-color.org)."""
    stream = sys.stdout if stream is None else stream
    return not os.environ.get("NO_COLOR") and hasattr(stream, "isatty") and stream.isatty()


def align(rows: list[list[str]], styles: Optional[list[list[Optional[str]]]] = None, colour: bool = False) -> list[str]:
    """Rows as lines with each column padded to its widest cell; a cell's style (a click colour name)
    is applied after padding, so escape codes never upset the alignment."""
    import click

    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(max(map(len, rows)))]
    lines = []
    for r, row in enumerate(rows):
        cells = []
        for i, cell in enumerate(row):
            text = cell if i == len(row) - 1 else cell.ljust(widths[i])
            style = styles[r][i] if styles and i < len(styles[r]) else None
            cells.append(click.style(text, fg=style) if colour and style else text)
        lines.append("  ".join(cells).rstrip())
    return lines


def _place(layer: Layer) -> str:
    """``from ...``: where a copy comes from, in words."""
    words = {OVERLAY: "the overlay", INTERPRETER: "the interpreter's site-packages", USER: "the user site-packages"}
    if layer.kind == BASE:
        return "the base" if layer.name == BASE else layer.name
    return words.get(layer.kind, layer.path)


def _owner(layer: Layer) -> str:
    """``shadows ...'s 1.20``: whose copy is shadowed, in words."""
    words = {OVERLAY: "the overlay's", INTERPRETER: "the interpreter's", USER: "the user site's"}
    if layer.kind == BASE:
        return "the base's" if layer.name == BASE else f"{layer.name}'s"
    return words.get(layer.kind, f"{layer.path}'s")


# --------------------------------------------------------------------------------------------------
# I/O: the overlay's interpreter

# Run by the overlay's own interpreter (any Python 3.6+, nothing imported but the standard library).
# sys.path[0] is the `-c` entry (the current directory) unless safe_path is on: not a layer. The marker
# environment is packaging's default_environment(), written out so the overlay needs no packaging.
_PROBE = r"""
import json, os, platform, site, sys
def fmt(info):
    version = "%d.%d.%d" % (info.major, info.minor, info.micro)
    if info.releaselevel != "final":
        version += info.releaselevel[0] + str(info.serial)
    return version
path = sys.path[0 if getattr(sys.flags, "safe_path", False) else 1:]
user = site.USER_SITE if getattr(site, "ENABLE_USER_SITE", False) else None
env = {
    "implementation_name": sys.implementation.name,
    "implementation_version": fmt(sys.implementation.version),
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}
hook = sys.modules.get("_overlay_venv_hook")
print(json.dumps({"path": path, "prefix": sys.prefix, "base_prefixes": sorted({sys.base_prefix, sys.base_exec_prefix}),
                  "user_site": user, "env": env, "own": list(getattr(hook, "OWN_ENTRIES", None) or [])}))
"""

PROBE_TIMEOUT = 120  # seconds; a cold CVMFS cache can make the first start of an interpreter slow


def pythonpath_note(layering: Layering) -> Optional[str]:
    """A line for stderr when the layers shown are not this shell's: with no release set up here, the
    PYTHONPATH recorded at creation stood in for it (the JSON says so in ``pythonpath_source``)."""
    if layering.pythonpath_source == "record":
        return "note: no release is set up in this shell; layers read with the PYTHONPATH recorded at creation"
    return None


def job_pythonpath(environ: Mapping[str, str], overlay: Path, recorded: Optional[str]) -> tuple[Optional[str], str]:
    """The PYTHONPATH a job running ``NAME/bin/python`` unactivated has, and where it came from.

    It is this shell's PYTHONPATH without the overlay's own entries (activation put them there) nor
    those of another active environment. A shell where the release is not set up has none: then the
    PYTHONPATH recorded at creation stands in for it, since an overlay is meant to run on its release.
    """
    value = environ.get("PYTHONPATH")
    if value is not None:
        value = remove_under(value, str(overlay))
        active = environ.get("VIRTUAL_ENV")
        if active:
            value = remove_under(value, active)
    if value:
        return value, "environment"
    if recorded:
        return recorded, "record"
    return None, "none"


def _absolute_pythonpath(value: str) -> str:
    # Relative entries mean the caller's directory; subprocesses may run elsewhere (the import checks do).
    return SEPARATOR.join(os.path.abspath(item) if item else item for item in value.split(SEPARATOR))


def start_probe(python: str, environ: Mapping[str, str]) -> subprocess.Popen:
    """Start asking the overlay's interpreter for its sys.path and marker environment; the caller
    works meanwhile (an interpreter start is most of the wait) and then calls :func:`finish_probe`."""
    try:
        return subprocess.Popen(
            [python, "-c", _PROBE],
            env=dict(environ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    except OSError as exc:
        raise OverlayError(f"cannot run the overlay's interpreter {python}: {exc}") from None


def finish_probe(process: subprocess.Popen) -> Probe:
    python = process.args[0]
    try:
        out, err = process.communicate(timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise OverlayError(f"the overlay's interpreter {python} did not answer in {PROBE_TIMEOUT} s") from None
    if process.returncode != 0:
        last = (err.strip().splitlines() or [f"exit status {process.returncode}"])[-1]
        raise OverlayError(f"the overlay's interpreter {python} failed to start: {last}")
    data = json.loads(out.strip().splitlines()[-1])
    return Probe(data["path"], data["prefix"], data["base_prefixes"], data["user_site"], data["env"], data.get("own", []))


def probe(python: str, environ: Mapping[str, str]) -> Probe:
    """Ask the overlay's interpreter, once, for its sys.path and marker environment."""
    return finish_probe(start_probe(python, environ))


# --------------------------------------------------------------------------------------------------
# I/O: metadata on disk

_HEADER_END = re.compile(rb"\r?\n\r?\n")


def read_headers(path: str) -> dict[str, list[str]]:
    """The header block of a METADATA/PKG-INFO file, keys lower-cased. The body (often a long
    description) is not parsed: email.parser would cost more than the whole scan of a release."""
    with open(path, "rb") as handle:
        data = handle.read()
    end = _HEADER_END.search(data)
    text = (data[: end.start()] if end else data).decode("utf-8", "replace")
    headers: dict[str, list[str]] = {}
    last = None
    for line in text.splitlines():
        if line[:1] in (" ", "\t"):
            if last is not None:  # a folded header line continues the previous value
                headers[last][-1] += " " + line.strip()
            continue
        key, sep, value = line.partition(":")
        if sep:
            last = key.strip().lower()
            headers.setdefault(last, []).append(value.strip())
    return headers


@dataclass(frozen=True)
class Found:
    """A metadata directory found on one sys.path entry, before layering."""

    display_name: str
    version: str
    location: str
    requires: tuple[str, ...]


def _from_dirname(name: str) -> tuple[str, str]:
    stem = name.rsplit(".", 1)[0]
    project, _, version = stem.partition("-")
    return project, version.split("-")[0]


def _egg_info(location: str) -> Optional[Found]:
    from importlib.metadata import PathDistribution

    # Old setuptools layouts keep requirements in requires.txt sections; importlib converts them.
    dist = PathDistribution(Path(location))
    meta = dist.metadata
    if meta is None or not meta.get("Name"):
        return None
    return Found(meta["Name"], meta.get("Version") or "", location, tuple(dist.requires or ()))


def scan_entry(entry: str) -> list[Found]:
    """The distributions whose metadata lives directly in one sys.path entry, in name order (the
    order is only a tie-break for leftover duplicates in one directory)."""
    found: list[Found] = []
    if entry.endswith(".egg") and os.path.isdir(os.path.join(entry, "EGG-INFO")):
        item = _egg_info(os.path.join(entry, "EGG-INFO"))
        return [item] if item else []
    try:
        names = sorted(os.listdir(entry))
    except OSError:  # missing, a file (a zip on sys.path), unreadable: nothing installed there
        return found
    for name in names:
        location = os.path.join(entry, name)
        try:
            if name.endswith(".dist-info"):
                headers = read_headers(os.path.join(location, "METADATA"))
                fallback_name, fallback_version = _from_dirname(name)
                found.append(
                    Found(
                        (headers.get("name") or [fallback_name])[0],
                        (headers.get("version") or [fallback_version])[0],
                        location,
                        tuple(headers.get("requires-dist", ())),
                    )
                )
            elif name.endswith(".egg-info"):
                if os.path.isdir(location):
                    item = _egg_info(location)
                else:  # a single PKG-INFO file (distutils installs): no requirements recorded
                    headers = read_headers(location)
                    item = (
                        Found(headers["name"][0], (headers.get("version") or [""])[0], location, ())
                        if "name" in headers
                        else None
                    )
                if item is not None:
                    found.append(item)
        except (OSError, KeyError, UnicodeError):
            continue  # a metadata directory without readable metadata is not an installed distribution
    return found


def top_level_modules(copy: Copy) -> list[str]:
    """Importable top-level names of an installed copy: top_level.txt, else its file list."""
    location = Path(copy.location)
    top_level = location / "top_level.txt"
    if top_level.is_file():
        names = [line.strip().split("/")[0] for line in top_level.read_text(encoding="utf-8", errors="replace").splitlines()]
        return sorted({name for name in names if name.isidentifier()})
    record = location / "RECORD"
    if record.is_file():
        rows = csv.reader(io.StringIO(record.read_text(encoding="utf-8", errors="replace")))
        return modules_from_files(row[0] for row in rows if row)
    from importlib.metadata import PathDistribution

    files = PathDistribution(location).files or []
    return modules_from_files(str(path) for path in files)


# --------------------------------------------------------------------------------------------------
# Putting it together


def editable_source(location: str, layer: Layer, inside: str) -> Optional[str]:
    """The source directory of an editable install in the overlay, None for anything else.

    pip records editables in the dist-info's ``direct_url.json`` (PEP 610); an ``.egg-info`` in a
    directory that the overlay's ``.pth`` files added, outside the overlay, is a ``setup.py develop``
    (``.egg-link``) checkout: that directory is its source.
    """
    if layer.kind != OVERLAY:
        return None
    if location.endswith(".dist-info"):
        try:
            with open(os.path.join(location, "direct_url.json"), encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return None
        url = data.get("url") if isinstance(data, dict) else None
        dir_info = data.get("dir_info") if isinstance(data, dict) else None
        if not (isinstance(dir_info, dict) and dir_info.get("editable") is True and isinstance(url, str)):
            return None
        if url.startswith("file://"):
            from urllib.parse import unquote, urlsplit

            return unquote(urlsplit(url).path)
        return url
    if location.endswith(".egg-info") and not os.path.join(os.path.realpath(layer.path), "").startswith(inside):
        return layer.path
    return None


def without_build_leftovers(copies: list[Copy]) -> list[Copy]:
    """Copies less the metadata a build backend leaves in an editable's source tree (setuptools writes
    ``NAME.egg-info`` beside the code of a src/ layout): on sys.path through the editable's own
    ``.pth``, it is that same install, not a second copy shadowed by the first."""
    sources = {
        (copy.name, os.path.join(os.path.realpath(copy.source), ""))
        for copy in copies
        if copy.source and copy.location.endswith(".dist-info")
    }

    def leftover(copy: Copy) -> bool:
        if not copy.location.endswith(".egg-info"):
            return False
        where = os.path.realpath(copy.location)
        return any(name == copy.name and where.startswith(source) for name, source in sources)

    return [copy for copy in copies if not leftover(copy)] if sources else copies


def copy_of(item: Found, layer: Layer, inside: str) -> Copy:
    """A scanned metadata directory as a copy in ``layer``; ``inside`` is the overlay's real path + "/"."""
    source = editable_source(item.location, layer, inside)
    return Copy(canonical_name(item.display_name), item.display_name, item.version, layer, item.location, item.requires, source)


def overlay_python(overlay: Path, bin_dir: str) -> str:
    return str(overlay / bin_dir / "python")


def load_layering(overlay: Path, environ: Optional[Mapping[str, str]] = None, *, requirements: bool = False) -> Layering:
    """Read an overlay's layers as a job would see them; one interpreter start, then files only.

    ``requirements=True`` says the caller will evaluate requirements next: packaging's specifier and
    marker modules are then imported while the interpreter starts, rather than after.
    """
    from .metadata import read_record

    environ = dict(os.environ if environ is None else environ)
    record = read_record(overlay)
    pythonpath, source = job_pythonpath(environ, overlay, record.base.pythonpath)
    env = dict(environ)
    env.pop("PYTHONPATH", None)
    if pythonpath is not None:
        pythonpath = _absolute_pythonpath(pythonpath)
        env["PYTHONPATH"] = pythonpath
    python = overlay_python(overlay, record.bin_dir)
    running = start_probe(python, env)
    # While the interpreter starts, scan the directories that are surely on its sys.path (the overlay's
    # site-packages, the PYTHONPATH entries): on two cores that hides most of the wait.
    real = os.path.realpath
    scans: dict[str, list[Found]] = {}
    try:
        canonical_name("warm-up")  # imports packaging.utils meanwhile, too
        if requirements:
            import packaging.markers  # noqa: F401
            import packaging.specifiers  # noqa: F401
        for directory in [*(str(overlay / rel) for rel in record.site_packages), *(pythonpath or "").split(SEPARATOR)]:
            if directory and real(directory) not in scans:
                scans[real(directory)] = scan_entry(directory)
    finally:
        info = finish_probe(running)

    # Classified as given, and by real path when that says nothing: an overlay or release reached
    # through a symlink is still itself, and a release may link its stdlib in from elsewhere.
    base_prefixes = sorted({*info.base_prefixes, *map(real, info.base_prefixes)})
    overlay_dirs = {str(overlay), real(overlay)}
    if real(info.prefix) not in map(real, info.base_prefixes):
        overlay_dirs |= {info.prefix, real(info.prefix)}
    raw_entries = [item for item in (pythonpath or "").split(SEPARATOR) if item]
    user_site = info.user_site
    by_name = classify_entries(info.sys_path, overlay_dirs, raw_entries, base_prefixes, user_site, info.own_entries)
    by_real = classify_entries(
        [real(entry) for entry in info.sys_path],
        overlay_dirs,
        [real(entry) for entry in raw_entries],
        base_prefixes,
        real(user_site) if user_site else None,
        [real(entry) for entry in info.own_entries],
    )
    layers = [
        named if named.kind != OTHER else Layer(found.kind, named.path, found.index) for named, found in zip(by_name, by_real)
    ]
    scanned: list[tuple[Layer, list[Found]]] = []
    seen_dirs = set()
    for layer in layers:
        directory = real(layer.path)
        if directory in seen_dirs:  # lib64 -> lib and friends: the same directory is one layer
            continue
        seen_dirs.add(directory)
        found = scans[directory] if directory in scans else scan_entry(layer.path)
        scanned.append((layer, found))
    labelled = label_layers([layer for layer, _ in scanned], [layer.path for layer, items in scanned if items])
    inside = os.path.join(real(overlay), "")
    copies = without_build_leftovers(
        [copy_of(item, layer, inside) for layer, (_, items) in zip(labelled, scanned) for item in items]
    )
    return Layering(
        overlay=overlay,
        python=python,
        environ=env,
        pythonpath=pythonpath,
        pythonpath_source=source,
        layers=labelled,
        distributions=resolve(copies),
        marker_environment=info.marker_environment,
    )


def effective_distributions(overlay: Path, environ: Optional[Mapping[str, str]] = None) -> list[Distribution]:
    """The distributions the overlay's interpreter imports, each with its layer, its requirements
    (``.requires``, unparsed; see :func:`parse_requirement`) and the copies it shadows."""
    return load_layering(overlay, environ).distributions


# --------------------------------------------------------------------------------------------------
# I/O: import checks

# Imports one module by name in a fresh interpreter. The `-c` entry (the current directory) is dropped
# first: a source checkout in the caller's directory must not stand in for the installed module.
_IMPORT = (
    "import importlib, sys\nif not getattr(sys.flags, 'safe_path', False): del sys.path[0]\nimportlib.import_module(sys.argv[1])"
)


@dataclass(frozen=True)
class ImportResult:
    distribution: Distribution
    module: str
    ok: bool
    error: str  # the exception's last line, or why the interpreter stopped; "" when ok
    timed_out: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "distribution": {"name": self.distribution.name, **copy_json(self.distribution.effective)},
            "error": self.error,
            "timed_out": self.timed_out,
        }


def _import_one(python: str, environ: Mapping[str, str], dist: Distribution, module: str, timeout: float) -> ImportResult:
    try:
        result = subprocess.run(
            [python, "-c", _IMPORT, module],
            env=dict(environ),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return ImportResult(dist, module, False, f"timed out after {timeout:g} s", timed_out=True)
    except OSError as exc:
        return ImportResult(dist, module, False, f"cannot run {python}: {exc}")
    if result.returncode == 0:
        return ImportResult(dist, module, True, "")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if result.returncode < 0:
        import signal

        try:
            why = f"killed by {signal.Signals(-result.returncode).name}"
        except ValueError:
            why = f"killed by signal {-result.returncode}"
        return ImportResult(dist, module, False, why)
    return ImportResult(dist, module, False, lines[-1].strip() if lines else f"exit status {result.returncode}")


def import_targets(layering: Layering) -> list[tuple[Distribution, str]]:
    """(distribution, module) pairs for ``check --imports``: the top-level modules of every effective
    distribution outside the overlay whose dependencies the overlay shadows."""
    targets = []
    for dist, _deps in shadowed_dependents(layering.distributions, layering.marker_environment):
        for module in top_level_modules(dist.effective):
            targets.append((dist, module))
    return targets


def run_imports(
    layering: Layering, targets: list[tuple[Distribution, str]], timeout: float, jobs: Optional[int] = None
) -> list[ImportResult]:
    """Import each module in its own fresh interpreter of the overlay, ``jobs`` at a time; in order."""
    if not targets:
        return []
    from concurrent.futures import ThreadPoolExecutor  # here: it imports logging, which list never needs

    jobs = jobs or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=min(jobs, len(targets))) as pool:
        futures = [pool.submit(_import_one, layering.python, layering.environ, dist, module, timeout) for dist, module in targets]
        return [future.result() for future in futures]
