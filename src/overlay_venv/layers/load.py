"""Putting it together: an overlay's layers as a job sees them, from one probe and a scan of files."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ..paths import SEPARATOR, remove_under
from .probe import finish_probe, start_probe

if TYPE_CHECKING:
    from .model import Distribution, Layering

# model and scan are imported inside load_layering, once the overlay's interpreter is starting: the
# probe is the longest wait of `list` and `check`, and it overlaps whatever runs after it starts.


def job_pythonpath(
    environ: Mapping[str, str], overlay: Path, recorded: Optional[str], lowers: tuple[str, ...] = ()
) -> tuple[Optional[str], str]:
    """The PYTHONPATH a job running ``NAME/bin/python`` unactivated has, and where it came from.

    It is this shell's PYTHONPATH without the overlay's own entries (activation put them there) nor
    those of another active environment. A shell where the release is not set up has none: then the
    PYTHONPATH recorded at creation stands in for it, since an overlay is meant to run on its release.
    """
    value = environ.get("PYTHONPATH")
    if value is not None:
        value = remove_under(value, str(overlay))
        for lower in lowers:  # a stacked overlay's activation put its lower overlays there too
            value = remove_under(value, lower)
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


def load_layering(
    overlay: Path, environ: Optional[Mapping[str, str]] = None, *, requirements: bool = False, tags: bool = False
) -> Layering:
    """Read an overlay's layers as a job would see them; one interpreter start, then files only.

    ``requirements=True`` says the caller will evaluate requirements next: packaging's specifier and
    marker modules are then imported while the interpreter starts, rather than after. ``tags=True``
    asks the same interpreter start for the wheel tags it supports (``layering.interpreter.tags``),
    for commands that pick artifacts.
    """
    from ..record import read_record

    environ = dict(os.environ if environ is None else environ)
    record = read_record(overlay)
    lowers = {lower.path: lower.label for lower in record.lowers}
    pythonpath, source = job_pythonpath(environ, overlay, record.base.pythonpath, tuple(lowers))
    env = dict(environ)
    env.pop("PYTHONPATH", None)
    if pythonpath is not None:
        pythonpath = _absolute_pythonpath(pythonpath)
        env["PYTHONPATH"] = pythonpath
    python = record.python(overlay)
    running = start_probe(python, env, tags)

    # While the interpreter starts, scan the directories that are surely on its sys.path (the overlay's
    # site-packages, the PYTHONPATH entries): on two cores that hides most of the wait.
    real = os.path.realpath
    scans: dict[str, list[Found]] = {}
    try:
        from .model import OTHER, Layer, Layering, classify_entries, label_layers, resolve, without_build_leftovers
        from .scan import Found, copy_of, scan_entry

        if requirements:
            import packaging.specifiers  # noqa: F401  (packaging.markers only if a marker needs it)

            # Their patterns compile meanwhile.
            from . import markers as _  # noqa: F401
            from . import requirements as __  # noqa: F401
        own_sites = [str(overlay / rel) for rel in record.site_packages]
        lower_sites = [site for lower in record.lowers for site in lower.sites]
        for directory in [*own_sites, *lower_sites, *(pythonpath or "").split(SEPARATOR)]:
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
    # Each entry of a lower overlay by its label; the lower overlays' directories as prefixes too.
    lower_map = {entry: lowers.get(where, where) for entry, where in info.lower_entries.items()}
    lower_map.update({path: label for path, label in lowers.items()})
    by_name = classify_entries(info.sys_path, overlay_dirs, raw_entries, base_prefixes, user_site, info.own_entries, lower_map)
    by_real = classify_entries(
        [real(entry) for entry in info.sys_path],
        overlay_dirs,
        [real(entry) for entry in raw_entries],
        base_prefixes,
        real(user_site) if user_site else None,
        [real(entry) for entry in info.own_entries],
        {real(entry): label for entry, label in lower_map.items()},
    )
    layers = [
        named if named.kind != OTHER else Layer(found.kind, named.path, found.index, found.label)
        for named, found in zip(by_name, by_real)
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
        interpreter=info,
    )


def effective_distributions(overlay: Path, environ: Optional[Mapping[str, str]] = None) -> list[Distribution]:
    """The distributions the overlay's interpreter imports, each with its layer, its requirements
    (``.requires``, unparsed; see :func:`parse_requirement`) and the copies it shadows."""
    return load_layering(overlay, environ).distributions
