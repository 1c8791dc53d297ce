"""Asking the overlay's interpreter, once per command, for its ``sys.path`` and marker environment."""

from __future__ import annotations

import json
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


# Run by the overlay's own interpreter (any Python 3.6+, nothing imported but the standard library).
# sys.path[0] is the `-c` entry (the current directory) unless safe_path is on: not a layer. The marker
# environment is packaging's default_environment(), written out so the overlay needs no packaging.
_PROBE = r"""
import json, os, platform, site, sys
def fmt(info):
    version = "%d.%d.%d" % (info.major, info.minor, info.micro)
    if info.releaselevel != "final":
        version += info.releaselevel[0] + str(info.serial)
    return version
path = sys.path[0 if getattr(sys.flags, "safe_path", False) else 1:]
user = site.USER_SITE if getattr(site, "ENABLE_USER_SITE", False) else None
env = {
    "implementation_name": sys.implementation.name,
    "implementation_version": fmt(sys.implementation.version),
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}
hook = sys.modules.get("_overlay_venv_hook")
print(json.dumps({"path": path, "prefix": sys.prefix, "base_prefixes": sorted({sys.base_prefix, sys.base_exec_prefix}),
                  "user_site": user, "env": env, "own": list(getattr(hook, "OWN_ENTRIES", None) or [])}))
"""


PROBE_TIMEOUT = 120  # seconds; a cold CVMFS cache can make the first start of an interpreter slow


def start_probe(python: str, environ: Mapping[str, str]) -> subprocess.Popen:
    """Start asking the overlay's interpreter for its sys.path and marker environment; the caller
    works meanwhile (an interpreter start is most of the wait) and then calls :func:`finish_probe`."""
    try:
        return subprocess.Popen(
            [python, "-c", _PROBE],
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
    data = json.loads(out.strip().splitlines()[-1])
    return Probe(data["path"], data["prefix"], data["base_prefixes"], data["user_site"], data["env"], data.get("own", []))


def probe(python: str, environ: Mapping[str, str]) -> Probe:
    """Ask the overlay's interpreter, once, for its sys.path and marker environment."""
    return finish_probe(start_probe(python, environ))
