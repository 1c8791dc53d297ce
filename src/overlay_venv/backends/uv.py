"""uv as the installer, deciding what to install with every layer of the overlay in view.

uv does not see distributions reached through PYTHONPATH (uv issues #2500, #4466): left to resolve in
the overlay on its own it would install every dependency into the overlay, the release's included. So
uv resolves against a view of the layers (:mod:`.uv_resolve`, a dry run), with the holds as
constraints and pip's configuration carried over (:mod:`.pip_settings`), and installs exactly the
planned distributions into the overlay with ``--no-deps``: the same set pip would install, in two uv
runs of a few milliseconds each. The install's pre-flight (``Job.preflight``) runs while the dry run
does, which writes nothing; when it adds bounds, that dry run is stopped and made again with them.

pip resolves instead (``pip install --dry-run --report``; uv then installs pip's exact set) where uv
cannot decide as pip would, and says why in one line: a pip setting with no uv counterpart, a version
that is not PEP 440 in some layer, a uv error other than an impossible resolution, a plan not readable.
An impossible resolution is uv's to report: :mod:`.uv_conflict` reads it for ``install``'s explanation.
uv does not compile bytecode (Python does on first import) and marks every distribution it installs as
REQUESTED; the ones pip would not mark lose that mark again, so both installers leave the same files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional
from urllib.parse import unquote, urlsplit

from ..errors import OverlayError
from . import UV, Ahead, Backend, Job, Outcome, run_captured, run_collected, run_in_background, run_streaming, start_collected

ASKING_SECONDS = 10.0  # the longest a uv run waits for the interpreter query started ahead (~70 ms)

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
    judges_while_resolving = True

    def __init__(self, binary: Optional[str] = None) -> None:
        binary = binary or find_uv()
        if not binary:
            raise OverlayError(
                "the uv installer (--installer uv, --uv) needs uv, which is not installed "
                f"(no uv package beside overlay-venv, no uv on PATH): {HOW_TO_GET_UV}"
            )
        self.binary = binary
        self._ahead: Optional[UvAhead] = None

    def ahead(self, python: str, environ: Mapping[str, str]) -> UvAhead:
        return UvAhead(self, python, environ)

    def _ahead_for(self, python: str) -> Optional[UvAhead]:
        """The work started ahead for ``python``, while its context lasts; else None."""
        return self._ahead if self._ahead is not None and self._ahead.python == python else None

    def install(self, job: Job) -> Outcome:
        from .pip import PipBackend
        from .pip_settings import read_pip_settings
        from .uv_resolve import hash_checked, why_not_uv

        if job.provided is None:  # a caller that did not read the layers: pip sees them for us
            return self._install_pip_resolved(job)
        if hash_checked(job.requirement_args):
            # uv would get the resolved pins without their hashes: the checking stays with pip.
            job.preflight()
            if not job.quiet:
                from ..messages import warn

                warn("pip installs this: hash-checked requirements (--hash) are checked by pip")
            return PipBackend().install(job)
        settings = read_pip_settings(job.environ, os.path.dirname(os.path.dirname(job.python)))
        if settings.unsupported:
            return self._fallback(job, f"pip's setting {settings.unsupported} has no uv counterpart")
        reason = why_not_uv(job.provided)
        return self._fallback(job, reason) if reason else self._install_uv_resolved(job, settings)

    def _fallback(self, job: Job, reason: str) -> Outcome:
        job.preflight()  # a refusal says more than why pip resolves (done already after a dry run)
        if not job.quiet:
            from ..messages import warn

            warn(f"pip resolves this install, uv installs it: {reason}")
        return self._install_pip_resolved(job)

    def _install_uv_resolved(self, job: Job, settings) -> Outcome:
        from ..layers import canonical_name
        from .uv_conflict import NO_SOLUTION, failure_block, parse_uv_conflict
        from .uv_resolve import editable_paths, install_arguments, read_plan, view_for

        sources = settings.sources.merged(job.index).pip_args() + ["--prerelease", "allow"] * (job.index.pre or settings.pre)
        for host in settings.trusted_hosts:
            sources += ["--allow-insecure-host", host]
        environ = self._environ(job.environ)
        if settings.cert and "SSL_CERT_FILE" not in environ:
            environ["SSL_CERT_FILE"] = settings.cert
        ahead = self._ahead_for(job.python)
        view = (ahead and ahead.view(job.provided)) or view_for(job.python, job.provided, job.workdir)
        if ahead:
            ahead.asked()
        cmd = [self.binary, "pip", "install", "--dry-run", "--target", str(view), "--python", job.python]
        cmd += ["-c", str(job.constraints), *(arg for file in settings.constraints for arg in ("-c", file))]
        # pip's only-if-needed: --upgrade moves the named packages, their dependencies only when needed.
        for name in sorted(job.requested) if job.index.upgrade else ():
            cmd += ["--upgrade-package", name]
        resolved = self._resolve_judged([*cmd, *sources, *job.requirement_args], environ, job)
        if not resolved.ok:
            if NO_SOLUTION in resolved.output:
                held = failure_block(resolved.output)
                return Outcome(resolved.returncode, resolved.output, held, UV, parse_uv_conflict(resolved.output))
            said = failure_block(resolved.output).partition("\n")[0] or f"exit status {resolved.returncode}"
            return self._fallback(job, f"uv could not resolve it ({said})")
        plan = read_plan(resolved.output)
        if plan is None:
            return self._fallback(job, "uv's plan did not read as one (another uv version's wording?)")
        arguments = install_arguments(plan, editable_paths(job.requirement_args, job.environ))
        if not arguments:
            return Outcome(0, resolved.output)  # everything asked for is there already, in some layer
        cmd = [self.binary, "pip", "install", "--python", job.python, "--no-deps", *sources]
        installed = run_streaming([*cmd, *["--quiet"] * job.quiet, *arguments], environ, job.quiet, hold_failure=False)
        if installed.ok:
            registry = [step.name for step in plan if step.installs and not step.url]
            unmark_requested(job.python, [name for name in registry if canonical_name(name) not in job.requested])
        installed.output = resolved.output + installed.output
        installed.tool = UV
        return installed

    @staticmethod
    def _resolve_judged(cmd: Sequence[str], environ: Mapping[str, str], job: Job) -> Outcome:
        """uv's dry run ``cmd``, with the caller's pre-flight run while it runs (uv works on the other
        core, the pre-flight mostly imports and reads the index); made again if the pre-flight added
        constraints, as the first one did not have them. Unguarded: a dry run writes to no overlay
        (only to uv's cache), so outliving us harms nothing."""
        running = start_collected(cmd, environ, guard=False)
        try:
            tightened = job.preflight()
        except BaseException:  # Refused, Ctrl-C: that dry run's answer is no longer wanted
            running.stop()
            raise
        if not tightened:
            return running.result()
        running.stop()
        return run_collected(cmd, environ, guard=False)

    def _install_pip_resolved(self, job: Job) -> Outcome:
        job.preflight()  # pip's resolution has to have the pre-flight's constraints from the start
        report_file = job.workdir / "report.json"
        resolved = run_streaming(self.pip_command(job, "--dry-run", "--report", str(report_file)), job.environ, job.quiet)
        if not resolved.ok:
            resolved.tool = "pip"  # uv never ran
            return resolved
        try:
            report = json.loads(report_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise OverlayError(f"pip's resolver left no readable report ({exc}); nothing was installed") from None
        arguments, find_links = uv_requirements(report)
        if not arguments:
            return resolved  # everything asked for is already installed, in the overlay or the base
        environ = self._environ(job.environ)
        ahead = self._ahead_for(job.python)
        if ahead:
            ahead.asked()
        # Every artifact is named: a local file by its directory, any other by its URL. No index, then:
        # uv would otherwise look on its default one too, for a same-named project.
        cmd = [self.binary, "pip", "install", "--python", job.python, "--no-deps", *job.index.uv_args()]
        cmd += [] if job.index.no_index else ["--no-index"]  # uv takes it once only
        for place in find_links:
            cmd += ["--find-links", place]
        cmd += ["--quiet"] * job.quiet + arguments
        installed = run_streaming(cmd, environ, job.quiet, hold_failure=False)
        if installed.ok:
            unmark_requested(job.python, [item["metadata"]["name"] for item in report["install"] if not item.get("requested")])
        installed.output = resolved.output + installed.output
        installed.tool = UV
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


def unmark_requested(python: str, names: Sequence[str]) -> None:
    """Take the REQUESTED mark (and its RECORD line) off ``names`` in the overlay of ``python``: uv
    marks everything it was given, pip only what the user asked for (PEP 376; tools that prune
    unrequested dependencies read it)."""
    from ..layers import canonical_name

    wanted = {canonical_name(name) for name in names}
    if not wanted:
        return
    prefix = Path(python).parent.parent
    for site in prefix.glob("lib*/python*/site-packages"):
        for entry in site.glob("*.dist-info"):
            if canonical_name(entry.name[: -len(".dist-info")].rsplit("-", 1)[0]) not in wanted:
                continue
            marker = entry / "REQUESTED"
            if not marker.exists():
                continue
            record = entry / "RECORD"
            mark = f"{entry.name}/REQUESTED,"
            try:
                lines = record.read_text(encoding="utf-8").splitlines(keepends=True)
                record.write_text("".join(line for line in lines if not line.startswith(mark)), encoding="utf-8")
            except OSError:
                continue  # no RECORD to keep true: leave the mark
            marker.unlink()


class UvAhead(Ahead):
    """What uv's installs start ahead (:meth:`Backend.ahead`), both kept out of the install's path:

    - uv asks an interpreter it has not met (a new overlay's) for its paths and tags before anything
      else: ~70 ms, the longest part of a one-wheel install into a new overlay. It keeps the answer in
      its cache (by the interpreter's path and the executable's time), so ``uv python find PYTHON``
      started at once, on another core, leaves the dry run nothing to ask. It writes only to uv's cache.
    - the view of the layers (:func:`.uv_resolve.view_for`: a link a distribution, all of them for an
      overlay's first install) is brought up to date in a thread once the layers are read, while the
      snapshot is taken; a new overlay's view starts as links to the entries of the view changed last.
    """

    def __init__(self, backend: UvBackend, python: str, environ: Mapping[str, str]) -> None:
        self.backend, self.python, self.environ = backend, python, environ
        self._asking: Optional[subprocess.Popen] = None
        self._viewing = None  # run_in_background's result callable
        self._provided: Optional[Sequence[Any]] = None

    def __enter__(self) -> UvAhead:
        try:
            self._asking = subprocess.Popen(
                # --no-project: the query is about the interpreter only, whatever pyproject.toml is here.
                [self.backend.binary, "python", "find", "--no-project", self.python],
                env=self.backend._environ(self.environ),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError:  # uv is gone or cannot run: the install itself says so
            self._asking = None
        self.backend._ahead = self
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.backend._ahead = None
        if self._asking is not None:
            if self._asking.poll() is None:
                self._asking.kill()
            self._asking.wait()
        if self._viewing is not None:  # waited for, not stopped: one link a distribution, and most often done
            try:
                self._viewing()  # a view half made is fine (the next install completes it); a thread left writing is not
            except Exception:  # noqa: BLE001 - the install made its own view, or failed for its own reason
                pass

    def layers_read(self, provided: Sequence[Any]) -> None:
        from .uv_resolve import view_for

        self._provided = provided
        self._viewing = run_in_background(view_for, self.python, provided, None)

    def view(self, provided: Sequence[Any]) -> Optional[Path]:
        """The view made ahead for exactly ``provided``, or None (made for other layers, not kept in a
        cache, or failed: the caller makes its own, which says why if it fails too)."""
        if self._viewing is None:
            return None
        try:
            made = self._viewing()  # waited for in any case: the caller's own view is the same directory
        except Exception:  # noqa: BLE001 - see above
            return None
        return made if provided is self._provided else None

    def asked(self) -> None:
        """Wait for the interpreter query: two uv runs asking the same interpreter at once would each
        pay for it. One that hangs is stopped, once; the uv run then asks for itself."""
        if self._asking is not None:
            try:
                self._asking.wait(timeout=ASKING_SECONDS)
            except subprocess.TimeoutExpired:
                self._asking.kill()
                self._asking.wait()
