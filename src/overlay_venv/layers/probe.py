"""Asking the overlay's interpreter, once per command, for its ``sys.path`` and marker environment,
and for the wheel tags it supports when the command installs or locks artifacts."""

from __future__ import annotations

import ast
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Optional

from ..errors import OverlayError


@dataclass(frozen=True)
class Probe:
    """What the overlay's interpreter reports about itself (see ``_PROBE``)."""

    sys_path: list[str]
    prefix: str
    base_prefixes: list[str]
    user_site: Optional[str]
    marker_environment: dict[str, str]
    own_entries: list[str] = field(default_factory=list)  # what the overlay's start-up hook counted as its own
    platform: str = ""  # sysconfig.get_platform(); with tags only
    tags: Optional[list[str]] = None  # supported wheel tags, best first; None when not asked or not known
    lower_entries: dict = field(default_factory=dict)  # a stacked overlay's: entry -> its lower overlay's directory


# Run by the overlay's own interpreter (any Python 3.6+). sys.path[0] is the `-c` entry (the current
# directory) unless safe_path is on: not a layer. The marker environment is packaging's
# default_environment(), written out so the overlay needs no packaging, and without `platform` and
# `json`, which both import `re`: on a 3.9 overlay that took the probe from ~45 ms to ~31 ms, the cost
# of `python -c pass` (the probe is the longest wait of `list` and `check`). What `platform` reads on
# POSIX is os.uname() and sys.version. The answer is a Python literal written by ascii() (any path
# survives any locale), read back with ast.literal_eval. tests/test_layers.py holds the environment
# equal to packaging's default_environment() on every base.
_PROBE = r"""
import os, site, sys
def fmt(info):
    version = "%d.%d.%d" % (info.major, info.minor, info.micro)
    if info.releaselevel != "final":
        version += info.releaselevel[0] + str(info.serial)
    return version
def implementation():
    if "IronPython" in sys.version:
        return "IronPython"
    if sys.platform.startswith("java"):
        return "Jython"
    return "PyPy" if "PyPy" in sys.version else "CPython"
path = sys.path[0 if getattr(sys.flags, "safe_path", False) else 1:]
user = site.USER_SITE if getattr(site, "ENABLE_USER_SITE", False) else None
uname = os.uname()
full = sys.version.split()[0]
env = {
    "implementation_name": sys.implementation.name,
    "implementation_version": fmt(sys.implementation.version),
    "os_name": os.name,
    "platform_machine": uname.machine,
    "platform_release": uname.release,
    "platform_system": uname.sysname,
    "platform_version": uname.version,
    "python_full_version": full,
    "platform_python_implementation": implementation(),
    "python_version": ".".join(full.split(".")[:2]),
    "sys_platform": sys.platform,
}
hook = sys.modules.get("_overlay_venv_hook")
out = {"path": path, "prefix": sys.prefix, "base_prefixes": sorted({sys.base_prefix, sys.base_exec_prefix}),
       "user_site": user, "env": env, "own": list(getattr(hook, "OWN_ENTRIES", None) or []),
       "lower": dict(getattr(hook, "LOWER_ENTRIES", None) or {})}
if "--tags" in sys.argv:
    # What a wheel must fit. The tags come from the packaging copy pip vendors (every overlay has pip),
    # else a packaging the interpreter has; None when neither is there.
    import sysconfig
    try:
        from pip._vendor.packaging import tags
    except Exception:
        try:
            from packaging import tags
        except Exception:
            tags = None
    out["platform"] = sysconfig.get_platform()
    out["tags"] = [str(tag) for tag in tags.sys_tags()] if tags else None
print(ascii(out))
"""


PROBE_TIMEOUT = 120  # seconds; a cold CVMFS cache can make the first start of an interpreter slow


def start_probe(python: str, environ: Mapping[str, str], tags: bool = False) -> subprocess.Popen:
    """Start asking the overlay's interpreter for its sys.path and marker environment (and wheel
    tags); the caller works meanwhile (an interpreter start is most of the wait) and then calls
    :func:`finish_probe`. Tags are asked for only when wanted: computing them costs ~30 ms."""
    try:
        return subprocess.Popen(
            [python, "-c", _PROBE, *(["--tags"] if tags else [])],
            env=dict(environ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    except OSError as exc:
        raise OverlayError(f"cannot run the overlay's interpreter {python}: {exc}") from None


def finish_probe(process: subprocess.Popen) -> Probe:
    python = process.args[0]
    try:
        out, err = process.communicate(timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise OverlayError(f"the overlay's interpreter {python} did not answer in {PROBE_TIMEOUT} s") from None
    if process.returncode != 0:
        last = (err.strip().splitlines() or [f"exit status {process.returncode}"])[-1]
        raise OverlayError(f"the overlay's interpreter {python} failed to start: {last}")
    try:
        data = ast.literal_eval(out.strip().splitlines()[-1])
    except (ValueError, SyntaxError, IndexError, MemoryError, RecursionError):
        raise OverlayError(f"the overlay's interpreter {python} gave an answer that is not its sys.path") from None
    return Probe(
        data["path"],
        data["prefix"],
        data["base_prefixes"],
        data["user_site"],
        data["env"],
        data.get("own", []),
        data.get("platform", ""),
        data.get("tags"),
        data.get("lower", {}),
    )


def probe(python: str, environ: Mapping[str, str], tags: bool = False) -> Probe:
    """Ask the overlay's interpreter, once, for its sys.path and marker environment (and wheel tags)."""
    return finish_probe(start_probe(python, environ, tags))
