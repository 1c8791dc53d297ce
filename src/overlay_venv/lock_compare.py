"""A lock against the world: the interpreter it is to be installed for (:class:`Target`, the wheels
that fit it), the base it was made on, and the overlay it is applied to (:func:`plan_sync`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

from .lock import UNLOCKED, Artifact, Lock, LockedPackage, minor_of


@dataclass(frozen=True)
class Target:
    """The interpreter a lock is to be installed for."""

    implementation: str  # "CPython"
    python_version: str  # "3.9.18"
    platform: str
    tags: Optional[frozenset[str]]  # supported wheel tags ("py3-none-any", ...); None if unknown
    tag_order: tuple[str, ...] = ()  # the same, most specific first


def wheel_tags(filename: str) -> frozenset[str]:
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    try:
        _, _, _, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return frozenset()  # fits nothing: incompatibilities() then names the file
    return frozenset(str(tag) for tag in tags)


def select_artifact(package: LockedPackage, target: Target) -> Optional[Artifact]:
    """The artifact to install for ``target``: the first wheel that fits (the lock's order), else the
    sdist; None when nothing fits. Unknown target tags: the first wheel."""
    for artifact in package.artifacts:
        if artifact.kind == "wheel" and (target.tags is None or wheel_tags(artifact.filename) & target.tags):
            return artifact
    return next((artifact for artifact in package.artifacts if artifact.kind == "sdist"), None)


def incompatibilities(lock: Lock, target: Target) -> list[str]:
    """Why ``lock`` cannot be installed for ``target``, in words; [] when it can."""
    problems = []
    if lock.base is not None:
        if lock.base.implementation.lower() != target.implementation.lower():
            problems.append(f"the lock is for {lock.base.implementation}, this base is {target.implementation}")
        elif lock.base.minor != minor_of(target.python_version):
            problems.append(
                f"the lock is for Python {lock.base.minor} ({lock.base.python_version}), "
                f"this base has Python {minor_of(target.python_version)} ({target.python_version})"
            )
    elif lock.requires_python:
        from packaging.specifiers import SpecifierSet

        if not SpecifierSet(lock.requires_python).contains(target.python_version, prereleases=True):
            problems.append(f"the lock requires Python {lock.requires_python}, this base has {target.python_version}")
    if problems:
        return problems  # wheels for another Python would all be reported too; the first reason says it
    unfit = [package for package in lock.packages if select_artifact(package, target) is None]
    if unfit:
        names = ", ".join(p.artifacts[0].filename for p in unfit[:5]) + (f" and {len(unfit) - 5} more" if len(unfit) > 5 else "")
        where = f"{target.platform}" + (f", best tag {target.tag_order[0]}" if target.tag_order else "")
        recorded = f" (locked on {lock.base.platform})" if lock.base is not None and lock.base.platform != target.platform else ""
        problems.append(f"locked wheels do not fit this platform ({where}){recorded}: {names}")
    return problems


def base_changes(locked: Sequence[str], current: Sequence[str]) -> list[str]:
    """How the base's distributions differ, one "name old -> new" (or "+name v", "-name v") each."""
    from .layers import canonical_name

    def versions(items: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in items:
            name, _, version = item.partition("==")
            out.setdefault(canonical_name(name), version)
        return out

    old, new = versions(locked), versions(current)
    changes = []
    for name in sorted(set(old) | set(new)):
        if name not in new:
            changes.append(f"-{name} {old[name]}")
        elif name not in old:
            changes.append(f"+{name} {new[name]}")
        elif old[name] != new[name]:
            changes.append(f"{name} {old[name]} -> {new[name]}")
    return changes


@dataclass(frozen=True)
class Plan:
    """What ``sync`` does to make an overlay match a lock."""

    install: tuple[str, ...]  # locked, not in the overlay
    change: tuple[tuple[str, str, str], ...]  # (name, overlay's version, locked version)
    remove: tuple[tuple[str, str], ...]  # (name, version) in the overlay, not locked
    same: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not (self.install or self.change or self.remove)


def plan_sync(lock: Lock, overlay_versions: Mapping[str, str]) -> Plan:
    """Compare the lock with the overlay's own distributions (canonical name -> version). pip and the
    other unlocked ones are left alone."""
    locked = lock.by_name()
    install, change, same = [], [], []
    for name in sorted(locked):
        have = overlay_versions.get(name)
        if have is None:
            install.append(name)
        elif have != locked[name].version:
            change.append((name, have, locked[name].version))
        else:
            same.append(name)
    remove = [(name, overlay_versions[name]) for name in sorted(overlay_versions) if name not in locked and name not in UNLOCKED]
    return Plan(tuple(install), tuple(change), tuple(remove), tuple(same))


def version_changes(before: Mapping[str, str], after: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(name, before, after) for every distribution whose version differs, "-" where absent; by name."""
    rows = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name, "-"), after.get(name, "-")
        if old != new:
            rows.append((name, old, new))
    return rows


def requirements_text(pins: Iterable[tuple[str, str, str]]) -> str:
    """A pip requirements file of ``name==version --hash=sha256:...`` lines for (name, version, sha256):
    with a hash on every line pip checks them all and resolves nothing it is not given."""
    lines = ["# Written by overlay-venv from a lock; every artifact is checked against its sha256."]
    lines += [f"{name}=={version} --hash=sha256:{sha256}" for name, version, sha256 in sorted(pins)]
    return "\n".join(lines) + "\n"
