"""Reading installed distributions' metadata from disk, never importing a package."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..metadata_headers import parse_headers
from .model import OVERLAY, Copy, Layer, canonical_name

_HEADER_END = re.compile(rb"\r?\n\r?\n")


_CHUNK = 16384  # most header blocks fit; a long description after them is not read at all


def read_headers(path: str) -> dict[str, list[str]]:
    """The header block of a METADATA/PKG-INFO file, keys lower-cased. The body (often a long
    description) is not parsed, nor read when the headers end within the first chunk: email.parser
    would cost more than the whole scan of a release. os.open/os.read: a file object per file costs
    a release of 1000 distributions several ms."""
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.read(fd, _CHUNK)
        end = _HEADER_END.search(data)
        if end is None:  # no blank line yet: the headers may go on (or the file has no body)
            more = os.read(fd, 1 << 20)  # b"" at the end of the file, read by nothing but its length
            if more:
                parts = [data, more]
                while more:
                    more = os.read(fd, 1 << 20)
                    parts.append(more)
                data = b"".join(parts)
                end = _HEADER_END.search(data)
    finally:
        os.close(fd)
    return parse_headers((data[: end.start()] if end else data).decode("utf-8", "replace"))


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
    prefix = os.path.join(entry, "")  # joined by hand below: os.path.join is most of the loop's own time
    for name in names:
        location = prefix + name
        try:
            if name.endswith(".dist-info"):
                headers = read_headers(location + "/METADATA")
                names, versions = headers.get("name"), headers.get("version")
                if not (names and versions):  # the directory's name says what the headers do not
                    fallback_name, fallback_version = _from_dirname(name)
                    names, versions = names or [fallback_name], versions or [fallback_version]
                found.append(Found(names[0], versions[0], location, tuple(headers.get("requires-dist", ()))))
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


def top_level_modules(copy: Copy) -> list[str]:
    """Importable top-level names of an installed copy: top_level.txt, else its file list."""
    location = Path(copy.location)
    top_level = location / "top_level.txt"
    if top_level.is_file():
        names = [line.strip().split("/")[0] for line in top_level.read_text(encoding="utf-8", errors="replace").splitlines()]
        return sorted({name for name in names if name.isidentifier()})
    record = location / "RECORD"
    if record.is_file():
        import csv  # here: only `check --imports` reads file lists, and csv costs every `list` ~1 ms
        import io

        rows = csv.reader(io.StringIO(record.read_text(encoding="utf-8", errors="replace")))
        return modules_from_files(row[0] for row in rows if row)
    from importlib.metadata import PathDistribution

    files = PathDistribution(location).files or []
    return modules_from_files(str(path) for path in files)


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


def copy_of(item: Found, layer: Layer, inside: str) -> Copy:
    """A scanned metadata directory as a copy in ``layer``; ``inside`` is the overlay's real path + "/"."""
    source = editable_source(item.location, layer, inside)
    return Copy(canonical_name(item.display_name), item.display_name, item.version, layer, item.location, item.requires, source)
