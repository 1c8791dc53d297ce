"""The layers of an overlay: what each ``sys.path`` entry is, and which copy of a distribution wins.

An overlay stacks site directories on ``sys.path``: its own site-packages and the directories its
``.pth`` files add ("overlay"), the release's PYTHONPATH entries ("base") and the base interpreter's
own site-packages ("interpreter"). A distribution installed in several of them is imported from the
first; the others are *shadowed*. Everything here is pure: plain data in, plain data out.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

OVERLAY = "overlay"
BASE = "base"
INTERPRETER = "interpreter"
USER = "user"
OTHER = "other"
KINDS = (OVERLAY, BASE, INTERPRETER, USER, OTHER)


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
    interpreter: Any = None  # the layers.probe.Probe it was read with: platform and wheel tags when asked for


# PEP 503 normalisation, as packaging.utils.canonicalize_name does it (a test holds the two equal):
# importing packaging.utils pulls in packaging.tags and logging, ~15 ms of every `list`.
_SEPARATORS = re.compile(r"[-_.]+")


def canonical_name(name: str) -> str:
    return _SEPARATORS.sub("-", name).lower()


def classify_entries(
    sys_path: Iterable[str],
    overlay_dirs: Iterable[str],
    pythonpath_entries: Iterable[str],
    base_prefixes: Iterable[str],
    user_site: Optional[str],
    own_entries: Iterable[str] = (),
    lower_entries: Optional[dict[str, str]] = None,
) -> list[Layer]:
    """The layer of each ``sys.path`` entry, without labels.

    Paths are compared as given, normalised (callers pass real paths where symlinks matter). Overlay
    directories win over PYTHONPATH entries (an activated shell has them on PYTHONPATH), PYTHONPATH
    entries over the interpreter's prefix (an LCG view's interpreter lives in the very prefix whose
    site-packages is on PYTHONPATH, and its setup script is what makes it a layer of the release).
    ``own_entries`` are directories outside the overlay that its ``.pth`` files put on sys.path (an
    editable checkout): they belong to the overlay too. ``lower_entries`` maps the entries of a stacked
    overlay's lower overlays (create --on; theirs and their ``.pth`` files' directories, and each lower
    overlay's directory as a prefix) to the lower's label (``overlay:team``): base-like layers, read
    only, labelled already; they come before the PYTHONPATH entries, which an activated shell shares.
    """
    overlays = [os.path.join(os.path.normpath(d), "") for d in overlay_dirs]
    own = {os.path.normpath(entry) for entry in own_entries}
    positions: dict[str, int] = {}
    for position, entry in enumerate(pythonpath_entries, 1):
        positions.setdefault(os.path.normpath(entry), position)
    prefixes = [os.path.join(os.path.normpath(p), "") for p in base_prefixes]
    user = os.path.normpath(user_site) if user_site else None
    lowers = {os.path.normpath(entry): label for entry, label in (lower_entries or {}).items()}
    lower_prefixes = [(os.path.join(entry, ""), label) for entry, label in lowers.items()]
    layers = []
    for entry in sys_path:
        norm = os.path.join(os.path.normpath(entry), "")
        lower = lowers.get(os.path.normpath(entry))
        if lower is None:
            lower = next((label for prefix, label in lower_prefixes if norm.startswith(prefix)), None)
        if any(norm.startswith(d) for d in overlays) or os.path.normpath(entry) in own:
            layers.append(Layer(OVERLAY, entry))
        elif lower is not None:
            layers.append(Layer(BASE, entry, 0, lower))
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
    carries packages (paths in ``carrying``); then each is "base[N]", N its place in PYTHONPATH. A layer
    labelled already (a lower overlay's, ``overlay:team``) keeps its label and is not counted."""
    layers = list(layers)
    carrying = set(carrying)
    release = [layer for layer in layers if layer.kind == BASE and not layer.label]
    numbered = len({layer.path for layer in release if layer.path in carrying}) > 1
    labelled = []
    for layer in layers:
        if layer.label:
            labelled.append(layer)
            continue
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
