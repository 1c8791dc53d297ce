"""uv as the installer, with pip's resolver deciding what to install.

uv does not see distributions reached through PYTHONPATH (uv issues #2500, #4466): left to resolve on its
own it would install every dependency into the overlay, base ones included. So pip resolves with the
base visible (``pip install --dry-run --report``), and uv installs exactly the distributions pip would
have installed, pinned, with ``--no-deps``. The overlay ends up with the same set either way; uv makes
the installing part faster and does not compile bytecode (Python does that on first import).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional
from urllib.parse import unquote, urlsplit

from ..errors import OverlayError
from . import UV, Backend, Job, Outcome, run_captured, run_streaming

HOW_TO_GET_UV = (
    "install it beside overlay-venv with `python -m pip install uv` (or `pipx install uv`; see "
    "https://docs.astral.sh/uv/getting-started/installation/), or leave out --uv to install with pip"
)


def find_uv() -> Optional[str]:
    """The uv binary: the one the ``uv`` package installed beside overlay-venv (the test extra), else
    ``uv`` on PATH. None if there is neither."""
    try:
        from uv import find_uv_bin

        found = find_uv_bin()
        if os.path.isfile(found) and os.access(found, os.X_OK):
            return found
    except (ImportError, FileNotFoundError):
        pass
    return shutil.which("uv")


def _path_of(url: str) -> str:
    return unquote(urlsplit(url).path)


def uv_requirements(report: dict[str, Any]) -> tuple[list[str], list[str]]:
    """What uv must install, from a pip installation report (format 1): ``(arguments, find_links)``.

    Distributions pip found on an index or a find-links location become ``name==version``; a local
    file among them also adds its directory as a find-links location, so uv finds that very file even
    when pip found it through pip's own configuration (pip.conf, PIP_FIND_LINKS), which uv does not
    read. Direct references keep their URL (a VCS one pinned to the commit pip resolved), and editable
    projects stay editable.
    """
    arguments: list[str] = []
    find_links: list[str] = []
    for item in report.get("install", []):
        name = item["metadata"]["name"]
        version = item["metadata"]["version"]
        info = item.get("download_info") or {}
        url = info.get("url", "")
        if "dir_info" in info:
            if info["dir_info"].get("editable"):
                arguments += ["-e", _path_of(url)]
            else:
                arguments.append(f"{name} @ {url}")
        elif "vcs_info" in info:
            vcs = info["vcs_info"]
            arguments.append(f"{name} @ {vcs['vcs']}+{url}@{vcs['commit_id']}")
        elif item.get("is_direct"):
            arguments.append(f"{name} @ {url}")
        elif not url.startswith("file:"):
            # From an index pip was configured with (pip.conf, PIP_INDEX_URL), which uv does not
            # read: name the very file pip chose, or uv would look for name==version on its own
            # default index (another file, or a same-named package there).
            arguments.append(f"{name} @ {url}")
        else:  # a local file
            arguments.append(f"{name}=={version}")
            directory = os.path.dirname(_path_of(url))
            if directory not in find_links:
                find_links.append(directory)
    return arguments, find_links


class UvBackend(Backend):
    name = UV

    def __init__(self, binary: Optional[str] = None) -> None:
        binary = binary or find_uv()
        if not binary:
            raise OverlayError(
                "the uv installer (--installer uv, --uv) needs uv, which is not installed "
                f"(no uv package beside overlay-venv, no uv on PATH): {HOW_TO_GET_UV}"
            )
        self.binary = binary

    def install(self, job: Job) -> Outcome:
        report_file = job.workdir / "report.json"
        resolved = run_streaming(self.pip_command(job, "--dry-run", "--report", str(report_file)), job.environ, job.quiet)
        if not resolved.ok:
            resolved.stage = "resolve"
            return resolved
        try:
            report = json.loads(report_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise OverlayError(f"pip's resolver left no readable report ({exc}); nothing was installed") from None
        arguments, find_links = uv_requirements(report)
        if not arguments:
            return resolved  # everything asked for is already installed, in the overlay or the base
        # uv needs neither PYTHONPATH (it installs into the interpreter's own site-packages) nor
        # VIRTUAL_ENV (--python names the target).
        environ = {k: v for k, v in job.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        cmd = [self.binary, "pip", "install", "--python", job.python, "--no-deps", *job.index.uv_args()]
        for place in find_links:
            cmd += ["--find-links", place]
        cmd += ["--quiet"] * job.quiet + arguments
        installed = run_streaming(cmd, environ, job.quiet, hold_failure=False)
        installed.output = resolved.output + installed.output
        return installed

    @staticmethod
    def _environ(environ: Mapping[str, str]) -> dict[str, str]:
        # uv needs neither PYTHONPATH (it installs into the interpreter's own site-packages, and with
        # exact pins and --no-deps there is nothing to resolve) nor VIRTUAL_ENV (--python names it).
        return {k: v for k, v in environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}

    def install_locked(self, python: str, environ: Mapping[str, str], requirements: Path, files: Path) -> None:
        """As pip's: hashes required, no dependencies, no index, wheels only; ``--reinstall`` replaces
        the overlay's own copy of another version (uv does not see the base, so it never skips one)."""
        cmd = [self.binary, "pip", "install", "--python", python, "--quiet", "--require-hashes", "--no-deps", "--no-index"]
        cmd += ["--no-build", "--reinstall", "--find-links", str(files), "-r", str(requirements)]
        run_captured(cmd, self._environ(environ), "installing the locked artifacts with uv")

    def uninstall(self, python: str, environ: Mapping[str, str], names: Sequence[str]) -> None:
        if names:
            cmd = [self.binary, "pip", "uninstall", "--python", python, "--quiet", *names]
            run_captured(cmd, self._environ(environ), "removing distributions with uv")
