"""uv resolving with every layer of the overlay in view, then installing only what the overlay lacks.

uv does not look through PYTHONPATH (uv issues #2500, #4466): in the overlay itself it sees neither the
release nor a lower overlay, and would install their distributions again. So uv resolves against a
*view*: a scratch directory with one ``NAME-VERSION.dist-info`` per distribution the overlay's
interpreter imports (every layer: overlay, lower overlays, release, interpreter; from
``layers.load_layering``), each holding only a link to that copy's ``METADATA`` (and
``direct_url.json``). ``uv pip install --dry-run --target VIEW --python OVERLAY/bin/python`` then
decides as pip in the overlay does: an installed version that satisfies a requirement is kept, the holds
are constraints (``===`` for a non-PEP 440 version), markers and wheel tags are the overlay
interpreter's, ``--upgrade`` upgrades the named packages only (pip's ``only-if-needed``: uv's
``--upgrade-package`` for each). The plan it prints (`` + six==1.17.0``, `` + proj @ file:///...``) is
what the overlay must get; ``uv pip install --no-deps`` installs exactly that. Nothing is written to any
layer by the dry run. The view is links only, one per distribution, kept in overlay-venv's cache between
installs and brought up to date by what changed (:func:`view_for`): on a release of a thousand
distributions an install writes a few links, not a thousand, and removes none.

Not ``uv pip compile``: it ignores installed distributions, so a release's version missing from the
index (the usual case) is no candidate and a hold on it cannot be met; preferences (``-o``) only reorder
candidates that exist.

Pure functions but :func:`sync_view` and :func:`view_for`, which write the view.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional
from urllib.parse import unquote, urlsplit

# " + name==version", " + name @ url", " - name==version", " ~ name==version": uv's dry-run plan.
_STEP = re.compile(r"^ (?P<action>[-+~]) (?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:==(?P<version>\S+)| @ (?P<url>\S+))$")
_WOULD = re.compile(r"^Would (?:install|reinstall) (?P<count>\d+) packages?$")


@dataclass(frozen=True)
class Step:
    """One line of uv's plan."""

    action: str  # "+" install, "~" reinstall, "-" remove (from the view: the overlay keeps other layers)
    name: str
    version: str = ""  # registry distributions
    url: str = ""  # direct references (paths, URLs, editables)

    @property
    def installs(self) -> bool:
        return self.action in "+~"


def _version_text(version: str) -> Optional[str]:
    from packaging.version import InvalidVersion, Version

    try:
        return str(Version(version))
    except InvalidVersion:
        return None


def why_not_uv(provided: Iterable[Any]) -> Optional[str]:
    """Why uv cannot decide as pip would for these distributions, or None. A version that is not PEP
    440 cannot be named in uv's installed-distribution layout."""
    for distribution in provided:
        if _version_text(distribution.version) is None:
            return f"{distribution.display_name} {distribution.version} is not a PEP 440 version, which uv cannot compare"
    return None


def _metadata_file(location: str) -> str:
    if location.endswith(".dist-info"):
        return os.path.join(location, "METADATA")
    if os.path.isdir(location):  # NAME.egg-info directory
        return os.path.join(location, "PKG-INFO")
    return location  # NAME.egg-info file: the metadata itself


def view_entries(provided: Iterable[Any]) -> dict[str, tuple[str, Optional[str]]]:
    """What the view holds: entry name -> (metadata file, direct_url.json or None), one entry per
    distribution, for the copy the interpreter imports. Mostly ``NAME-VERSION.egg-info``, a link to the
    metadata (uv reads a link to a file, not a link to a directory): one system call a distribution. A
    URL or editable install is a ``.dist-info`` directory with its ``direct_url.json`` too, so uv tells
    it from an index install as pip does."""
    entries = {}
    for distribution in provided:
        copy = distribution.effective
        # A "-" in a version would read as the end of the name: PEP 440's normal form has none.
        version = copy.version if "-" not in copy.version else _version_text(copy.version)
        stem = f"{copy.name.replace('-', '_')}-{version}"
        metadata = os.path.abspath(_metadata_file(copy.location))
        direct = os.path.join(copy.location, "direct_url.json")
        if copy.location.endswith(".dist-info") and os.path.exists(direct):
            entries[f"{stem}.dist-info"] = (metadata, os.path.abspath(direct))
        else:
            entries[f"{stem}.egg-info"] = (metadata, None)
    return entries


def seed_view(view: Path, sibling: str, wanted: dict[str, tuple[str, Optional[str]]]) -> None:
    """Fill a new, empty ``view`` with hard links to the entries of ``sibling`` (another overlay's view,
    mostly of the same release) that are already what ``wanted`` needs: linking a symlink that exists
    costs less than making one, whose long target takes a disk block of its own (400 entries: ~6 ms
    against ~15 ms here). Best effort: the first refusal ends it, and :func:`sync_view` makes the rest."""
    try:
        with os.scandir(sibling) as found:
            names = [entry.name for entry in found if entry.name in wanted and wanted[entry.name][1] is None]
        for name in names:
            source = os.path.join(sibling, name)
            if os.readlink(source) == wanted[name][0]:
                os.link(source, view / name, follow_symlinks=False)
    except OSError:
        pass


def sync_view(provided: Iterable[Any], view: Path, sibling: Optional[str] = None) -> None:
    """Bring ``view`` to exactly :func:`view_entries`, changing only what differs from what it holds
    (a kept view changes by the few distributions an install changed); a new one is first seeded from
    ``sibling`` (:func:`seed_view`). Entries starting with "." are not distributions (uv's ``.lock``,
    the view's owner link) and are left alone."""
    import shutil

    wanted = view_entries(provided)
    view.mkdir(parents=True, exist_ok=True)
    if sibling is not None:
        seed_view(view, sibling, wanted)
    with os.scandir(view) as found:
        present = {entry.name: entry for entry in found if not entry.name.startswith(".")}
    kept = set()
    for name, entry in present.items():
        # Directories are few (URL and editable installs): made again rather than compared.
        if entry.is_symlink() and name in wanted and wanted[name][1] is None and os.readlink(entry.path) == wanted[name][0]:
            kept.add(name)
        elif entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)
    for name, (metadata, direct) in wanted.items():
        if name in kept:
            continue
        if direct is None:
            os.symlink(metadata, view / name)
            continue
        (view / name).mkdir()
        os.symlink(metadata, view / name / "METADATA")
        os.symlink(direct, view / name / "direct_url.json")


def view_for(python: str, provided: Sequence[Any], workdir: Optional[Path]) -> Optional[Path]:
    """The view for the overlay of ``python``, up to date: kept between installs in overlay-venv's
    cache (one a overlay, named by its real path's digest; an install holds the overlay's lock, so one
    writer at a time), else in ``workdir`` (None without one). Views whose overlay is gone (a
    rebuild's staging copy, a removed overlay) are removed on the way."""
    from ..atomic import remove_tree
    from ..cachedir import cache_dir, sha256

    overlay = os.path.realpath(os.path.dirname(os.path.dirname(python)))
    root = cache_dir("uv-views")
    if root is None:
        if workdir is None:
            return None
        view = workdir / "uv-view"
        sync_view(provided, view)
        return view
    view = root / sha256(overlay.encode()).hexdigest()[:20]
    newest: tuple[float, Optional[str]] = (0.0, None)  # the view whose entries changed last: a new one is seeded from it
    with os.scandir(root) as views:
        for entry in views:
            if not entry.is_dir(follow_symlinks=False) or entry.name == view.name:
                continue
            if not os.path.exists(os.path.join(entry.path, ".overlay")):
                remove_tree(entry.path)
                continue
            try:
                changed = entry.stat(follow_symlinks=False).st_mtime
            except OSError:  # pruned by another install meanwhile
                continue
            if changed > newest[0]:
                newest = (changed, entry.path)
    try:
        view.mkdir()
        sibling = newest[1]
    except FileExistsError:
        sibling = None  # kept from this overlay's last install: only what changed is synced
    if not os.path.islink(view / ".overlay"):  # first: another install prunes a view without one
        os.symlink(overlay, view / ".overlay")
    sync_view(provided, view, sibling)
    return view


def read_plan(output: str) -> Optional[list[Step]]:
    """uv's dry-run plan, or None when its output does not read as one (another uv's wording): the lines
    counted by "Would install N packages" must all be there."""
    steps, expected = [], 0
    for line in output.splitlines():
        would = _WOULD.match(line)
        if would:
            expected += int(would["count"])
            continue
        step = _STEP.match(line)
        if step:
            steps.append(Step(step["action"], step["name"], step["version"] or "", step["url"] or ""))
    return steps if sum(step.installs for step in steps) == expected else None


def editable_paths(requirement_args: Sequence[str], environ) -> set[str]:
    """The real paths of every ``-e`` project asked for, on the command line or in ``-r`` files (relative
    to the current directory, as pip and uv both read them)."""
    from ..requests import requirement_lines

    found: set[str] = set()
    args = list(requirement_args)
    for flag, value in zip(args, args[1:]):
        if flag in ("-e", "--editable"):
            found.add(os.path.realpath(value))
        elif flag in ("-r", "--requirement"):
            for kind, text, _ in requirement_lines(Path(value), environ):
                if kind == "editable" and "://" not in text:
                    found.add(os.path.realpath(text))
    return found


def hash_checked(requirement_args: Sequence[str]) -> bool:
    """Whether a ``-r`` file (or one it includes) pins hashes (``--hash=sha256:...``)."""
    args = list(requirement_args)
    pending = [Path(value) for flag, value in zip(args, args[1:]) if flag in ("-r", "--requirement")]
    seen: set[str] = set()
    while pending:
        path = pending.pop()
        if os.path.realpath(path) in seen:
            continue
        seen.add(os.path.realpath(path))
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeError):
            continue  # the resolver says so, in its words
        if "--hash" in text:
            return True
        for found in re.finditer(r"^\s*(?:-r|--requirement)(?:\s*=\s*|\s+)(\S+)", text, re.M):
            nested = found.group(1)
            if "://" not in nested:
                pending.append(Path(nested) if os.path.isabs(nested) else path.parent / nested)
    return False


def install_arguments(plan: Sequence[Step], editables: set[str]) -> list[str]:
    """What ``uv pip install --no-deps`` gets for the plan: pins for index distributions, the URL for
    direct references, ``-e`` for the editable projects asked for, ``--reinstall-package`` for "~"."""
    arguments: list[str] = []
    for step in plan:
        if not step.installs:
            continue
        if step.action == "~":
            arguments += ["--reinstall-package", step.name]
        if not step.url:
            arguments.append(f"{step.name}=={step.version}")
            continue
        parts = urlsplit(step.url)
        path = unquote(parts.path) if parts.scheme == "file" else None
        if path is not None and os.path.realpath(path) in editables:
            arguments += ["-e", path]
        else:
            arguments.append(f"{step.name} @ {step.url}")
    return arguments
