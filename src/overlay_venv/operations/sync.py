"""``sync``: make an overlay hold exactly what a lock holds, installing before removing."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..lock import Lock
from ..lock_compare import Plan, plan_sync
from ..record import read_record
from ..stack import refuse_changed
from .apply_lock import install_lock, overlay_versions, remember_requests


@dataclass
class SyncResult:
    plan: Plan
    lock: Lock
    dry_run: bool
    changed: bool = False

    def lines(self) -> list[str]:
        """One line per change, as ``sync`` and ``sync --dry-run`` print them."""
        by_name = self.lock.by_name()
        lines = [f"  install {name} {by_name[name].version}" for name in self.plan.install]
        lines += [f"  change  {name} {old} -> {new}" for name, old, new in self.plan.change]
        lines += [f"  remove  {name} {version}" for name, version in self.plan.remove]
        return lines


def sync(
    overlay: Path,
    lock: Lock,
    lock_file: str,
    wheelhouse: Optional[str],
    dry_run: bool,
    installer: str,
) -> SyncResult:
    """Plan, and unless ``dry_run`` apply, the changes that make ``overlay`` hold exactly ``lock``.
    The caller holds the overlay's lock (see overlay_lock) for a real run."""
    record = read_record(overlay)
    refuse_changed(overlay, record.lowers, f"sync {overlay}")  # a stacked overlay's lower gone or changed
    result = SyncResult(plan_sync(lock, overlay_versions(overlay, record.site_packages)), lock, dry_run)
    if dry_run:
        return result
    if result.plan.empty:
        remember_requests(overlay, lock.requests, lock.allow_shadow)
        return result
    install_lock(
        overlay,
        lock,
        lock_file,
        dict(os.environ),
        Path(wheelhouse).absolute() if wheelhouse else None,
        names=[*result.plan.install, *(item[0] for item in result.plan.change)],
        # Changed ones are replaced by the install itself; these go only once it succeeded.
        remove=[item[0] for item in result.plan.remove],
        after=lambda: remember_requests(overlay, lock.requests, lock.allow_shadow),
        installer=installer,
    )
    result.changed = True
    return result
