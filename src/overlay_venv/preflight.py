"""Pre-flight: the releases of a request that cannot install because of a hold, found before pip runs.

pip meets a hold only while resolving: when the newest ``tool`` pins ``corelib==1.320.0`` and the base's
corelib 1.20.0 is held, pip backtracks to the next older ``tool``, one release at a time, downloading
each to read its requirements. Through hundreds of releases that takes minutes and, when it reaches an
old sdist that no longer builds, ends on that build error and never says which hold stood in the way.

The pre-flight reads the same index pip will (:mod:`overlay_venv.index_client` does the reading: PEP 658/
714 metadata files, a local wheel's METADATA) and walks each requested project's releases newest first,
checking the release's own requirements against the holds. A release whose requirement excludes a held
version can never install while that hold applies, so leaving it out changes nothing pip could have
found. The walk stops at the first release it cannot rule out: one that fits, or one whose requirements
are not cheaply known (an sdist, a remote wheel without a metadata file, the budget spent). pip is then
given ``tool<=THAT`` as a constraint and resolves as it would have, minus the releases already ruled out.
When every release the user's specifier allows is ruled out, nothing runs: the answer is a refusal that
says which held package, held for whom, and the newest release that does fit.

What it does not catch: a conflict through a dependency of the request (tool needs midlib, midlib pins
corelib), between two requests, or in requirements under an extra the user did not ask for. pip still
finds those, backtracking as before; the holds are named when it fails (:func:`overlay_venv.holds.holds_summary`).

Pure: files and metadata come in through the ``fetch`` callable; :func:`parse_html` and
:func:`parse_json` read the simple API's two formats (PEP 503, PEP 691).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional
from urllib.parse import unquote, urldefrag, urljoin

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from .metadata_headers import parse_headers

WHEEL, SDIST = "wheel", "sdist"


@dataclass(frozen=True)
class File:
    """One distribution file an index or a find-links location offers."""

    name: str  # canonical project name
    version: Version
    kind: str  # WHEEL or SDIST
    url: str  # where it is: a URL, or a local path for a find-links directory
    tags: frozenset = frozenset()  # a wheel's tags, as strings
    requires_python: Optional[str] = None  # data-requires-python
    yanked: bool = False
    metadata_url: Optional[str] = None  # a PEP 658/714 metadata file, when the index offers one


@dataclass(frozen=True)
class Metadata:
    """What the walk needs of a release's core metadata."""

    requires: tuple[str, ...]
    requires_python: Optional[str] = None


def parse_filename(filename: str, url: str, **extra) -> Optional[File]:
    """The File a link or directory entry names, or None when it is no distribution pip would use."""
    try:
        if filename.endswith(".whl"):
            name, version, _, tags = parse_wheel_filename(filename)
            return File(name, version, WHEEL, url, frozenset(str(tag) for tag in tags), **extra)
        if filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
            return File(name, version, SDIST, url, **extra)
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return None


def parse_metadata(text: str) -> Metadata:
    headers = parse_headers(text)
    requires_python = headers.get("requires-python")
    return Metadata(tuple(headers.get("requires-dist", ())), requires_python[0] if requires_python else None)


def _links_parser():
    return _links_class()()


@functools.cache
def _links_class() -> type:
    """The parser class that collects a page's anchors and its <base>, made once. html.parser is
    imported here: ~2.5 ms that an install from a local wheelhouse (directories, not pages) never needs."""
    from html.parser import HTMLParser

    class Links(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.base: Optional[str] = None
            self.anchors: list[dict] = []

        def handle_starttag(self, tag, attrs):
            if tag == "base" and self.base is None:
                self.base = dict(attrs).get("href")
            elif tag == "a":
                self.anchors.append(dict(attrs))

    return Links


def _metadata_url(url: str, flag) -> Optional[str]:
    # PEP 658/714: "true", a hash ("sha256=..."), or for JSON a dict of hashes; absent or false: none.
    if flag in (None, False, "false") or flag == {}:
        return None
    return url + ".metadata"


def _file_of(filename: str, url: str, requires_python, yanked, flag) -> Optional[File]:
    return parse_filename(
        filename, url, requires_python=requires_python or None, yanked=bool(yanked), metadata_url=_metadata_url(url, flag)
    )


def parse_html(text: str, page_url: str) -> list[File]:
    """The files a PEP 503 page (an index's project page, or a find-links page) links to."""
    parser = _links_parser()
    parser.feed(text)
    base = urljoin(page_url, parser.base) if parser.base else page_url
    files = []
    for anchor in parser.anchors:
        if not anchor.get("href"):
            continue
        url = urldefrag(urljoin(base, anchor["href"])).url
        # PEP 714's name first, PEP 658's after. A bare attribute (no value) means present: HTMLParser
        # gives None for it, as for a missing one, so presence is asked of the keys.
        key = next((k for k in ("data-core-metadata", "data-dist-info-metadata") if k in anchor), None)
        flag = None if key is None else (anchor[key] or "true")
        filename = unquote(url.rsplit("/", 1)[-1])  # "tool-1.0%2Bcern-py3-none-any.whl": a local version
        found = _file_of(filename, url, anchor.get("data-requires-python"), "data-yanked" in anchor, flag)
        if found is not None:
            files.append(found)
    return files


def parse_json(text: str, page_url: str) -> list[File]:
    """The files of a PEP 691 JSON project page."""
    files = []
    for entry in json.loads(text).get("files", []):
        url = urldefrag(urljoin(page_url, entry["url"])).url
        flag = entry.get("core-metadata", entry.get("dist-info-metadata"))
        found = _file_of(entry["filename"], url, entry.get("requires-python"), entry.get("yanked"), flag)
        if found is not None:
            files.append(found)
    return files


def _python_ok(requires_python: Optional[str], python_full_version: str) -> bool:
    if not requires_python:
        return True
    try:
        return SpecifierSet(requires_python).contains(python_full_version, prereleases=True)
    except InvalidSpecifier:
        return True  # pip ignores what it cannot read, too


def compatible(file: File, tags: Optional[Sequence[str]], python_full_version: str) -> Optional[bool]:
    """Whether pip could install ``file`` on this interpreter; None when that is not known (a binary
    wheel and no tag list: only pure-Python wheels are judged then)."""
    if file.yanked or not _python_ok(file.requires_python, python_full_version):
        return False
    if file.kind == SDIST:
        return True
    if tags is not None:
        return bool(file.tags.intersection(tags))
    major, minor = python_full_version.split(".")[:2]
    pure = {f"py{major}-none-any", f"py{major}{minor}-none-any"}
    return True if file.tags & pure else None


def _rank(file: File, tags: Optional[Sequence[str]]) -> tuple:
    # pip's preference among one version's files: the best-tagged wheel, an sdist last.
    if file.kind == SDIST:
        return (1, 0)
    order = {tag: i for i, tag in enumerate(tags or ())}
    return (0, min((order.get(tag, len(order)) for tag in file.tags), default=0))


@dataclass(frozen=True)
class Clash:
    """A release's requirement that excludes a held version."""

    requirement: str  # as the release's metadata says it, marker left out
    held: str  # canonical name of the held distribution


@dataclass(frozen=True)
class Release:
    version: str
    clashes: tuple[Clash, ...] = ()  # empty: fits (as far as its own requirements go)
    other: str = ""  # ruled out for another reason ("requires Python >=3.12")


@dataclass
class Verdict:
    """What the walk found for one requested project."""

    name: str  # canonical
    request: str  # as the user wrote it
    ruled_out: list[Release] = field(default_factory=list)  # newest first, releases that cannot install
    bound: Optional[str] = None  # pip gets `name<=bound`; None when nothing was ruled out above it
    fits: Optional[str] = None  # the newest release the user's specifier allows that fits, when known
    newest_fit: Optional[str] = None  # the newest release that fits, whatever the user's specifier
    refused: bool = False  # every release the user's specifier allows is ruled out by a hold

    @property
    def clashing(self) -> list[Release]:
        return [release for release in self.ruled_out if release.clashes]

    def constraint(self) -> Optional[str]:
        return f"{self.name}<={self.bound}" if self.bound and self.ruled_out and not self.refused else None


@dataclass
class Budget:
    """How much the walk may read: a number of releases and a deadline on ``time.monotonic``."""

    deadline: float
    candidates: int = 2000

    def spent(self) -> bool:
        import time

        self.candidates -= 1
        return self.candidates < 0 or time.monotonic() > self.deadline


def clashes(metadata: Metadata, holds: Mapping[str, str], environment: Mapping[str, str], extras: Iterable[str]) -> tuple:
    """The requirements in ``metadata`` that exclude a held version (``holds``: name -> version)."""
    found = []
    for text in metadata.requires:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        name = canonicalize_name(requirement.name)
        if name not in holds or requirement.url:
            continue
        if requirement.marker is not None and not any(
            requirement.marker.evaluate({**environment, "extra": extra}) for extra in ("", *extras)
        ):
            continue
        try:
            if requirement.specifier.contains(Version(holds[name]), prereleases=True):
                continue
        except InvalidVersion:
            continue  # a held version PEP 440 cannot compare: pip holds it by string, the walk cannot judge
        shown = f"{requirement.name}{'[' + ','.join(sorted(requirement.extras)) + ']' if requirement.extras else ''}"
        found.append(Clash(f"{shown}{requirement.specifier}", name))
    return tuple(found)


def candidates(files: Iterable[File], tags: Optional[Sequence[str]], python: str) -> list[tuple[Version, Optional[File]]]:
    """Each version pip could pick, newest first, with the file pip would use (None: a file pip might
    use whose fitness is not known, see :func:`compatible`)."""
    by_version: dict[Version, list[tuple[Optional[bool], File]]] = {}
    for file in files:
        by_version.setdefault(file.version, []).append((compatible(file, tags, python), file))
    found = []
    for version in sorted(by_version, reverse=True):
        usable = sorted((file for ok, file in by_version[version] if ok), key=lambda f: _rank(f, tags))
        if usable:
            found.append((version, usable[0]))
        elif any(ok is None for ok, _ in by_version[version]):
            found.append((version, None))
    return found


def judge(
    request: Requirement,
    files: Iterable[File],
    holds: Mapping[str, str],
    environment: Mapping[str, str],
    fetch: Callable[[File], Optional[Metadata]],
    budget: Budget,
    tags: Optional[Sequence[str]] = None,
    pre: bool = False,
) -> Verdict:
    """Walk ``request``'s releases newest first against ``holds`` (name -> held version), as the module
    docstring says. ``fetch`` gives a file's metadata, None where it is not cheap to have."""
    python = environment.get("python_full_version", "3")
    verdict = Verdict(canonicalize_name(request.name), str(request))
    offered = candidates(files, tags, python)
    prereleases = True if pre else None  # None: packaging's rule, pip's too (pre-releases only if nothing else)
    allowed = set(request.specifier.filter([version for version, _ in offered], prereleases=prereleases))
    anything = set(SpecifierSet().filter([version for version, _ in offered], prereleases=prereleases))
    seen: dict[Version, Optional[Release]] = {}

    def look(version: Version, file: Optional[File]) -> Optional[Release]:
        if version not in seen:
            known = None if file is None or budget.spent() else fetch(file)
            seen[version] = _release(str(version), known, holds, environment, request.extras, python)
        return seen[version]

    for version, file in offered:
        if version not in allowed:
            continue
        release = look(version, file)
        if release is None or not (release.clashes or release.other):
            verdict.bound = str(version)
            verdict.fits = None if release is None else release.version
            break
        verdict.ruled_out.append(release)
    else:
        verdict.refused = bool(verdict.clashing)
    if verdict.fits is None and verdict.ruled_out:
        # For the answer: the newest release that fits, whatever the user asked (bounded as the rest).
        for version, file in offered:
            if version in anything and budget.candidates > 0:
                release = look(version, file)
                if release is not None and not (release.clashes or release.other):
                    verdict.newest_fit = release.version
                    break
    else:
        verdict.newest_fit = verdict.fits
    return verdict


def _release(version, known, holds, environment, extras, python) -> Optional[Release]:
    if known is None:
        return None
    if not _python_ok(known.requires_python, python):
        return Release(version, other=f"requires Python {known.requires_python}")
    return Release(version, clashes(known, holds, environment, extras))
