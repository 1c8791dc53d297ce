"""What an install changed in the overlay: its own distributions before and after
(:func:`overlay_changes`), and the layering after it read again cheaply (:func:`relayer`)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional


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
