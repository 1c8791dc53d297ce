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
layer by the dry run, and links keep the view cheap (no copies).

Not ``uv pip compile``: it ignores installed distributions, so a release's version missing from the
index (the usual case) is no candidate and a hold on it cannot be met; preferences (``-o``) only reorder
candidates that exist.

Pure functions but :func:`write_view`, which writes the view.
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


def write_view(provided: Iterable[Any], view: Path) -> None:
    """One ``NAME-VERSION.dist-info`` in ``view`` per distribution, linking to its imported copy's
    metadata (uv reads only that, and ``direct_url.json`` to tell a URL install)."""
    view.mkdir()
    for distribution in provided:
        copy = distribution.effective
        entry = view / f"{copy.name.replace('-', '_')}-{_version_text(copy.version)}.dist-info"
        entry.mkdir()
        os.symlink(os.path.abspath(_metadata_file(copy.location)), entry / "METADATA")
        direct = os.path.join(copy.location, "direct_url.json")
        if copy.location.endswith(".dist-info") and os.path.exists(direct):
            os.symlink(os.path.abspath(direct), entry / "direct_url.json")


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
