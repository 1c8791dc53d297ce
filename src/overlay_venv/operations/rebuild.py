"""Rebuilding an overlay from its recorded requests on the release set up now (``rebuild``).

A new overlay is built through create's ``populate`` hook, so it replaces the old one only when
complete (:func:`rebuild`); the requests are installed with the guarded install of
:mod:`.install`, holding the new base's depended-on packages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..backends.pip import pip_failure
from ..errors import OverlayError
from ..sources import Sources
from .apply_lock import remember_requests


def populate_from_requests(
    requests: Sequence[str],
    sources: Sources,
    quiet: bool,
    overlay: Path,
    allow_shadow: Sequence[str] = (),
    installer: str = "pip",
):
    """The ``populate`` callback of ``rebuild``: ``overlay-venv install``'s guarded install of the
    requests (base distributions others depend on held at the new base's versions, but those in
    ``allow_shadow``), in the staging overlay. A failure raises, and create_overlay then leaves the
    old overlay as it was."""

    def populate(stage: Path, environ: dict[str, str]) -> None:
        from ..backends import IndexOptions, get_backend
        from ..layers import load_layering
        from ..record import read_record
        from ..requests import read_requests
        from ..scripts_guard import secure_scripts
        from .install import failure_details, run_guarded

        packages = [item for item in requests if not item.startswith("-e ")]
        editables = [item[3:] for item in requests if item.startswith("-e ")]
        wanted = read_requests(packages, (), editables, (), environ)
        backend = get_backend(installer)
        record = read_record(stage)
        # As install's: what the installer can start early runs while the layers are read.
        with backend.ahead(record.python(stage), environ) as ahead:
            layering = load_layering(stage, environ, requirements=True)
            ahead.layers_read(layering.distributions)
            index = IndexOptions(sources.index_url, sources.extra_index_urls, sources.find_links, sources.no_index)
            run = run_guarded(layering, wanted, allow_shadow, index, backend, quiet)
        if not run.outcome.ok:
            lines = failure_details(run, "overlay-venv rebuild", fallback=False)
            if lines:
                raise OverlayError(f"the requests do not install on this base; {overlay} is unchanged", details=lines)
            detail = pip_failure(run.outcome.held_back or run.outcome.output)
            raise OverlayError(f"the requests do not install on this base: {detail}; {overlay} is unchanged")
        secure_scripts(stage / record.bin_dir)
        remember_requests(stage, requests, allow_shadow)

    return populate


@dataclass(frozen=True)
class RebuildRequest:
    overlay: Path  # absolute
    lock_file: Optional[str]
    wheelhouse: Optional[str]
    python: Optional[str]
    sources: tuple  # (index_url, extra_index_urls, find_links, no_index) as given
    allow_shadow: tuple[str, ...]
    quiet: bool
    installer: str


@dataclass
class RebuildResult:
    record: Any  # the new overlay's record.OverlayRecord
    versions: list = field(default_factory=list)  # (name, before, after) of the overlay's own
    base_changes: list = field(default_factory=list)  # "name old -> new" of the base, when known


def rebuild(request: RebuildRequest) -> RebuildResult:
    """Recreate ``request.overlay`` on the current base from its requests (or the lock's); the old
    overlay is left as it was if anything fails. The caller holds the overlay's lock."""
    import os

    from ..create import CreateOptions, create_overlay
    from ..layers import canonical_name, load_layering
    from ..lock import read_lock
    from ..lock_compare import base_changes, version_changes
    from ..record import is_overlay, read_record
    from ..stack import on_argument
    from .lock import base_distributions, overlay_versions

    overlay = request.overlay
    index_url, extra_index_urls, find_links, no_index = request.sources
    exists = is_overlay(overlay)
    record = read_record(overlay) if exists else None
    lock = read_lock(request.lock_file) if request.lock_file else None
    if lock is None and record is None:
        raise OverlayError(
            f"{overlay} is not an overlay made by overlay-venv; to create it from a lock's requests, pass --lock FILE"
        )
    requests = list(lock.requests if lock is not None else record.requests)  # type: ignore[union-attr]
    recorded_allowed = lock.allow_shadow if lock is not None else record.allow_shadow  # type: ignore[union-attr]
    allowed = sorted({*recorded_allowed, *(canonical_name(item) for item in request.allow_shadow)})
    if not requests:
        where = request.lock_file if lock is not None else f"{overlay}/overlay-venv.json"
        raise OverlayError(
            f"no top-level requests recorded in {where}: rebuild re-installs what `overlay-venv install` was asked for; "
            "use `overlay-venv create --clear` and install again, or `create --from` a lock whose pins still fit"
        )
    given = Sources(
        index_url, tuple(extra_index_urls), tuple(os.path.abspath(f) if "://" not in f else f for f in find_links), no_index
    )
    sources = (lock.sources if lock is not None else Sources()).merged(given)
    if request.wheelhouse:
        sources = Sources(find_links=(os.path.abspath(request.wheelhouse),), no_index=True)

    before = overlay_versions(overlay, record.site_packages) if record is not None else {}
    old_base = lock.base.distributions if lock is not None and lock.base is not None else None
    if old_base is None and exists:
        # The base the overlay was built on: without PYTHONPATH here, the layers fall back to the
        # recorded one, while this shell already has the new release. Gone with the old release
        # (its interpreter moved), it cannot be read: then no base line is printed.
        old_env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        try:
            old_base = base_distributions(load_layering(overlay, old_env))
        except (OverlayError, OSError):
            old_base = None
    options = CreateOptions(
        dest=overlay,
        python=request.python,
        clear=exists,
        populate=populate_from_requests(requests, sources, request.quiet, overlay, allowed, request.installer),
    )
    if record is not None:
        options.prompt = record.prompt
        options.system_site_packages = record.system_site_packages
        options.setup = record.base.setup
        options.keep_setup = record.base.keep_setup
        options.on = on_argument(record)  # a stacked overlay: onto the current LOWER (stack.py)
    new_record, _ = create_overlay(options)
    result = RebuildResult(new_record, version_changes(before, overlay_versions(overlay, new_record.site_packages)))
    if old_base is not None:
        result.base_changes = base_changes(old_base, base_distributions(load_layering(overlay)))
    return result
