"""virtualenv runs with its own plugins only, and of those only the ones create uses.

virtualenv builds its command line from every plugin any installed distribution registers (entry
point groups ``virtualenv.*``), importing each: ~50 ms of a cold create on an interpreter with a
hundred distributions, to offer choices create never makes. It also lets a distribution installed
beside overlay-venv change what an overlay is (another activator, another seeder), which is what
``create.virtualenv_environ`` already refuses to a user's VIRTUALENV_* settings and virtualenv.ini.

So, while create runs virtualenv, virtualenv's plugin loader is handed virtualenv's own entry
points, with the groups create chooses from cut to its choices (``--activators python``, the app-data
seeder, the built-in discovery); every creator stays, for virtualenv to pick as always. Anything
unexpected (another virtualenv layout, a choice it no longer has) leaves virtualenv as it is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

# group -> the names create relies on (create.run_virtualenv's arguments); other groups: all of virtualenv's own.
CHOSEN = {
    "virtualenv.activate": ("python",),
    "virtualenv.seed": ("app-data",),
    "virtualenv.discovery": ("builtin",),
}


class EntryPoints:
    """The two ways virtualenv asks importlib.metadata for a group (``select`` from Python 3.10,
    a mapping's ``get`` before), over a fixed list."""

    def __init__(self, entries: list):
        self.entries = entries

    def select(self, group: str) -> list:
        return [entry for entry in self.entries if entry.group == group]

    def get(self, group: str, default=None) -> list:
        return self.select(group) or ([] if default is None else default)


def chosen_entry_points(entries: list) -> list:
    """``entries`` (virtualenv's own) cut to :data:`CHOSEN`; a group keeps all its entries when one
    of the chosen names is missing from it, so that virtualenv, not this cut, says what is wrong."""
    names_in: dict[str, set] = {}
    for entry in entries:
        names_in.setdefault(entry.group, set()).add(entry.name)

    def kept(entry) -> bool:
        chosen = CHOSEN.get(entry.group)
        return chosen is None or not set(chosen) <= names_in[entry.group] or entry.name in chosen

    return [entry for entry in entries if kept(entry)]


def own_entry_points() -> list | None:
    """virtualenv's own entry points, from the distribution its imported package came from; None
    when that cannot be read (no metadata, an unusual install)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        entries = list(distribution("virtualenv").entry_points)
    except (PackageNotFoundError, OSError, ValueError):
        return None
    return entries if any(entry.group.startswith("virtualenv.") for entry in entries) else None


@contextlib.contextmanager
def only_chosen_plugins() -> Iterator[None]:
    """While inside, virtualenv's plugin loader sees :func:`chosen_entry_points` of its own. The
    loader keeps what it loaded per process (``_OPTIONS`` of each selector class): emptied on the way
    in and put back on the way out, so a virtualenv run elsewhere in this process sees its usual set."""
    try:
        from virtualenv.run.plugin.base import PluginLoader
    except ImportError:
        yield
        return
    entries = own_entry_points()
    if entries is None or not hasattr(PluginLoader, "_ENTRY_POINTS"):
        yield
        return
    saved = {loader: loader.__dict__["_OPTIONS"] for loader in _subclasses(PluginLoader) if "_OPTIONS" in loader.__dict__}
    saved_entries = PluginLoader._ENTRY_POINTS
    _forget(PluginLoader)
    PluginLoader._ENTRY_POINTS = EntryPoints(chosen_entry_points(entries))
    try:
        yield
    finally:
        # Every class below the loader now: one first imported inside (lazily) filled its cache too.
        _forget(PluginLoader)
        for loader, options in saved.items():
            loader._OPTIONS = options
        PluginLoader._ENTRY_POINTS = saved_entries


def _subclasses(cls: type) -> list[type]:
    found = [cls]
    for sub in cls.__subclasses__():
        found += _subclasses(sub)
    return found


def _forget(root: type) -> None:
    """Empty the per-process plugin cache of ``root`` and of every class below it (which then read
    ``root``'s, None)."""
    for loader in _subclasses(root)[1:]:
        if "_OPTIONS" in loader.__dict__:
            delattr(loader, "_OPTIONS")
    root._OPTIONS = None
