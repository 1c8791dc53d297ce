"""What pip's configuration adds to an install, read for uv, which reads none of it.

pip takes settings from configuration files (global, user, the environment's own ``pip.conf``,
``PIP_CONFIG_FILE``) and from ``PIP_*`` variables; uv reads neither. For uv to resolve in the world pip
would, :func:`read_pip_settings` reads the same places in pip's order (a later file wins; in each,
``[install]`` over ``[global]``; variables over files) and keeps what uv can be told: where packages
come from, pre-releases, constraints, trusted hosts and the CA bundle. A setting that changes what pip
would install and has no uv counterpart is named in ``unsupported``: the caller then lets pip resolve.
Pure apart from reading the files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..sources import Sources

# Settings that do not change what is resolved or where it comes from (pip's output, caching, timeouts).
HARMLESS = frozenset(
    """disable-pip-version-check no-input timeout default-timeout retries quiet verbose progress-bar no-color
    cache-dir no-cache-dir root-user-action no-warn-script-location no-warn-conflicts no-compile compile log
    log-file require-virtualenv break-system-packages exists-action no-python-version-warning""".split()
)
# Settings read below; any other is unsupported.
TRANSLATED = frozenset("index-url extra-index-url find-links no-index pre constraint trusted-host cert".split())
_TRUE = ("1", "y", "yes", "t", "true", "on")


@dataclass(frozen=True)
class PipSettings:
    sources: Sources = Sources()
    pre: bool = False
    constraints: tuple[str, ...] = ()
    trusted_hosts: tuple[str, ...] = ()
    cert: Optional[str] = None
    unsupported: Optional[str] = None  # "proxy (in /etc/pip.conf)": the first setting uv cannot be given

    def uv_args(self) -> list[str]:
        """The settings as uv options (the sources as ``Sources.pip_args``, which uv spells alike)."""
        args = self.sources.pip_args() + ["--prerelease", "allow"] * self.pre
        for host in self.trusted_hosts:
            args += ["--allow-insecure-host", host]
        for file in self.constraints:
            args += ["-c", file]
        return args


def config_files(environ: Mapping[str, str], prefix: Optional[str]) -> list[Path]:
    """pip's configuration files for an environment at ``prefix``, in loading order (later wins).

    ``PIP_CONFIG_FILE=os.devnull`` loads none; a ``PIP_CONFIG_FILE`` that exists replaces the user's
    files. Global: each ``$XDG_CONFIG_DIRS/pip/pip.conf``, then ``/etc/pip.conf``; user: ``~/.pip/pip.conf``,
    then ``$XDG_CONFIG_HOME/pip/pip.conf``; site: ``PREFIX/pip.conf``; last ``PIP_CONFIG_FILE``."""
    named = environ.get("PIP_CONFIG_FILE")
    if named == os.devnull:
        return []
    xdg_dirs = [d for d in (environ.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(os.pathsep) if d]
    files = [Path(d, "pip", "pip.conf") for d in xdg_dirs] + [Path("/etc/pip.conf")]
    if not (named and os.path.exists(named)):
        home = environ.get("HOME") or os.path.expanduser("~")
        config_home = environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
        files += [Path(home, ".pip", "pip.conf"), Path(config_home, "pip", "pip.conf")]
    if prefix:
        files.append(Path(prefix, "pip.conf"))
    if named:
        files.append(Path(named))
    return files


def _key(name: str) -> str:
    return name.lower().replace("_", "-").lstrip("-")


class UnreadableConfig(Exception):
    """A pip configuration file that exists and cannot be read (pip itself would stop on it)."""

    def __init__(self, path: Path, exc: BaseException) -> None:
        super().__init__(f"{path} ({exc.__class__.__name__})")
        self.path = path


def pip_values(environ: Mapping[str, str], prefix: Optional[str]) -> dict[str, tuple[str, str]]:
    """What pip's configuration sets for ``pip install``: key -> (value, where it was set), in pip's
    order (files merged, later winning; ``[install]`` over ``[global]``; ``PIP_*`` over both).
    Raises UnreadableConfig for a file pip could not read either."""
    merged: dict[str, tuple[str, str]] = {}  # "section.key" -> (value, where)
    for path in config_files(environ, prefix):
        if not path.is_file():
            continue
        import configparser  # here: with no pip.conf to read (PIP_CONFIG_FILE=/dev/null) it costs nothing

        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeError, OSError) as exc:
            raise UnreadableConfig(path, exc) from None
        for section in parser.sections():
            for key, value in parser.items(section):
                merged[f"{section}.{_key(key)}"] = (value, str(path))
    values: dict[str, tuple[str, str]] = {}
    for section in ("global", "install"):  # [install] over [global], as pip orders them
        for section_key, found in merged.items():
            where, _, key = section_key.partition(".")
            if where == section:
                values[key] = found
    for name, value in environ.items():
        if name.startswith("PIP_") and name != "PIP_CONFIG_FILE":
            values[_key(name[4:])] = (value, f"${name}")
    return values


def _listed(values: Mapping[str, tuple[str, str]], key: str) -> tuple[str, ...]:
    return tuple(values[key][0].split()) if key in values else ()


def _flag(values: Mapping[str, tuple[str, str]], key: str) -> bool:
    return key in values and values[key][0].strip().lower() in _TRUE


def sources_of(values: Mapping[str, tuple[str, str]]) -> Sources:
    """Where :func:`pip_values` says pip takes packages from."""
    index_url = values["index-url"][0].strip() if "index-url" in values else None
    return Sources(
        index_url or None, _listed(values, "extra-index-url"), _listed(values, "find-links"), _flag(values, "no-index")
    )


def read_pip_settings(environ: Mapping[str, str], prefix: str) -> PipSettings:
    """The settings pip would apply to ``pip install`` in the environment at ``prefix``."""
    try:
        values = pip_values(environ, prefix)
    except UnreadableConfig as exc:
        return PipSettings(unsupported=f"an unreadable pip configuration file {exc}")
    for key, (_, where) in sorted(values.items()):
        if key not in HARMLESS and key not in TRANSLATED:
            return PipSettings(unsupported=f"{key} ({where})")
    cert = values["cert"][0].strip() if "cert" in values else None
    return PipSettings(
        sources_of(values), _flag(values, "pre"), _listed(values, "constraint"), _listed(values, "trusted-host"), cert or None
    )
