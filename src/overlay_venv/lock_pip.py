"""The I/O half of locks: finding the artifacts an overlay was installed from, and installing a lock.

pip records where a distribution came from (``direct_url.json``) only for URL and path installs. For
the rest (an index, or a ``--find-links`` location) ``lock`` asks pip again, with the overlay's own
interpreter so it picks the same wheel for the same platform: ``pip install --dry-run --report`` says
which URL it would use, ``pip download --no-deps`` fetches the file (from pip's HTTP cache when it is
there, so a package installed from an index earlier usually needs no new download). Each file is then
checked against what is installed, file by file through the two RECORDs, so a lock never pins an
artifact other than the one the overlay holds (a rebuilt wheel with the same version is caught).

Installing a lock is two steps, so that nothing changes before every artifact is known to be right:

1. :func:`gather` puts every artifact in one private directory and checks its sha256 itself (files from
   the wheelhouse or a local path are copied; remote ones are fetched by ``pip download
   --require-hashes``, which checks them too). A mismatch stops here, with the file named.
2. :func:`pip_install` runs ``pip install --require-hashes --no-deps --no-index --only-binary :all:
   --find-links DIR``: no resolution, no index, no build, every hash checked again by pip. ``sync``
   removes what the lock does not hold only after that succeeded.

A lock pins wheels only: building an sdist needs its build backend from an index, which installing a
lock never uses. ``lock`` refuses a distribution installed from an sdist, and a lock from another tool
whose only fitting artifact is an sdist is refused before anything changes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Optional
from urllib.parse import unquote, urlsplit

from . import __version__
from .atomic import private_tmp
from .errors import OverlayError
from .lock import (
    UNLOCKED,
    Artifact,
    BaseInfo,
    Lock,
    LockedPackage,
    Target,
    artifact_name_problem,
    environment_marker,
    minor_of,
    redact_lock,
    size_problem,
)
from .sources import Sources

# Asks an interpreter what a wheel must fit. The tags come from the packaging copy pip vendors (every
# overlay has pip), else a packaging the interpreter has; None when neither is there.
_TARGET_PROBE = """\
import json, platform, sysconfig
try:
    from pip._vendor.packaging import tags
except Exception:
    try:
        from packaging import tags
    except Exception:
        tags = None
print(json.dumps({
    "implementation": platform.python_implementation(),
    "version": platform.python_version(),
    "platform": sysconfig.get_platform(),
    "tags": [str(tag) for tag in tags.sys_tags()] if tags else None,
}))
"""

PIP_QUIET = ["--disable-pip-version-check", "--no-input"]


def target_of(layering: Any) -> Target:
    """What a wheel must fit, from the probe :func:`overlay_venv.layers.load_layering` ran with
    ``tags=True``: one interpreter start serves the layers and the artifacts."""
    info = layering.interpreter
    environment = info.marker_environment
    tags = info.tags
    return Target(
        environment["platform_python_implementation"],
        environment["python_full_version"],
        info.platform,
        frozenset(tags) if tags is not None else None,
        tuple(tags or ()),
    )


def probe_target(python: str, environ: Mapping[str, str]) -> Target:
    # -I: the base's PYTHONPATH and sitecustomize have no say in what the interpreter itself supports.
    result = subprocess.run([python, "-I", "-c", _TARGET_PROBE], env=dict(environ), capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        raise OverlayError(f"cannot ask {python} about itself: {last}")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    tags = data["tags"]
    return Target(
        data["implementation"],
        data["version"],
        data["platform"],
        frozenset(tags) if tags is not None else None,
        tuple(tags or ()),
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_pip(python: str, environ: Mapping[str, str], args: Sequence[str], what: str, cwd: Optional[Path] = None) -> str:
    """Run the overlay's pip; its output is kept and shown only when it fails."""
    from .overlay_lock import guarded, inherited_fds

    cmd = [python, "-m", "pip", *args]
    if shutil.which(python) is None:
        raise OverlayError(f"cannot run {python}: it is missing or not executable")
    try:
        # Guarded and holding our lock, as install's pip (backends.run_streaming); subprocess.run
        # kills it when we are interrupted, before the install is rolled back.
        result = subprocess.run(
            guarded(cmd),
            pass_fds=inherited_fds(),
            env=dict(environ),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise OverlayError(f"cannot run {python}: {exc}") from None
    if result.returncode != 0:
        output = result.stdout + result.stderr
        raise OverlayError(f"{what} failed: {pip_failure(output) or f'pip exit status {result.returncode}'}")
    return result.stdout + result.stderr


def pip_failure(output: str) -> str:
    """The lines of pip's output that say what went wrong, joined."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if any("DO NOT MATCH THE HASHES" in line for line in lines):
        found = [
            line for line in lines if line.startswith(("Expected sha256", "Got ")) or line.endswith(".whl:") or "from " in line
        ]
        return "hash mismatch (tampered or a different build of the same version): " + " ".join(found[:6])
    errors = [line for line in lines if line.startswith("ERROR:")]
    return " ".join(errors[:3]) or (lines[-1] if lines else "")


# --------------------------------------------------------------------------------------------------
# What the overlay holds


def overlay_versions(overlay: Path, site_packages: Iterable[str]) -> dict[str, str]:
    """canonical name -> version of the distributions in the overlay's own site-packages (files only)."""
    from .layers import canonical_name, scan_entry

    found: dict[str, str] = {}
    for rel in site_packages:
        for item in scan_entry(str(overlay / rel)):
            found.setdefault(canonical_name(item.display_name), item.version)
    return found


def overlay_copies(layering: Any) -> dict[str, Any]:
    """canonical name -> the overlay's own copy (a layers.Copy), pip excluded."""
    from .layers import OVERLAY

    own: dict[str, Any] = {}
    for dist in layering.distributions:
        for copy in (dist.effective, *dist.shadowed):
            if copy.layer.kind == OVERLAY and copy.name not in own and copy.name not in UNLOCKED:
                own[copy.name] = copy
    return own


def base_distributions(layering: Any) -> tuple[str, ...]:
    """``name==version`` of every copy in the base (PYTHONPATH) and the interpreter's own site-packages,
    shadowed ones included: they are what the overlay sits on."""
    from .layers import BASE, INTERPRETER

    items = set()
    for dist in layering.distributions:
        for copy in (dist.effective, *dist.shadowed):
            if copy.layer.kind in (BASE, INTERPRETER):
                items.add(f"{copy.name}=={copy.version}")
    return tuple(sorted(items))


def base_info(layering: Any, target: Target) -> BaseInfo:
    return BaseInfo(
        target.implementation,
        target.python_version,
        target.platform,
        target.tag_order[0] if target.tag_order else "",
        base_distributions(layering),
    )


# --------------------------------------------------------------------------------------------------
# lock: from installed distributions to artifacts


def _read_record(text: str) -> dict[str, str]:
    return {row[0]: row[1] for row in csv.reader(io.StringIO(text)) if len(row) >= 2}


_NOT_COMPARED = ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")


def record_mismatches(wheel: Path, dist_info: Path) -> list[str]:
    """Files of ``wheel`` that the installed distribution at ``dist_info`` does not have byte for byte
    (by the hashes both RECORDs carry). Files a wheel moves on install (``.data/``) and the ones the
    installer writes itself are not compared."""
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/RECORD")]
        if not names:
            return ["RECORD (the wheel has none)"]
        in_wheel = _read_record(archive.read(names[0]).decode("utf-8", "replace"))
    try:
        installed = _read_record((dist_info / "RECORD").read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return ["RECORD (the installed copy has none)"]
    differ = []
    for path, digest in sorted(in_wheel.items()):
        if not digest or ".data/" in path or path.rsplit("/", 1)[-1] in _NOT_COMPARED:
            continue
        if installed.get(path) != digest:
            differ.append(path)
    return differ


def _direct_url(copy: Any) -> Optional[dict]:
    try:
        return json.loads((Path(copy.location) / "direct_url.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _file_path(url: str) -> Optional[Path]:
    parts = urlsplit(url)
    return Path(unquote(parts.path)) if parts.scheme == "file" else None


def _artifact_kind(filename: str) -> str:
    return "wheel" if filename.endswith(".whl") else "sdist"


def _refuse_sdist(copy: Any, where: str) -> None:
    raise OverlayError(
        f"{copy.display_name} {copy.version} was installed from an sdist ({where}): a lock pins wheels only, since "
        "installing a lock builds nothing; build a wheel of it (pip wheel --no-deps), install that, then lock"
    )


def _store(wheelhouse: Path, source: Path, sha256: str) -> None:
    """Copy ``source`` into the wheelhouse; a file of that name with other bytes is an error, never
    overwritten (another lock may pin it)."""
    target = wheelhouse / source.name
    if target.exists():
        if sha256_of(target) != sha256:
            raise OverlayError(f"{target} exists with other contents than the artifact being locked; not overwriting it")
        return
    partial = wheelhouse / f".{source.name}.part-{os.getpid()}"
    shutil.copyfile(source, partial)
    os.replace(partial, target)  # a job reading the wheelhouse meanwhile never sees half a file


def make_lock(
    overlay: Path,
    sources: Sources,
    requests: Sequence[str],
    wheelhouse: Optional[Path] = None,
    environ: Optional[Mapping[str, str]] = None,
    allow_shadow: Sequence[str] = (),
) -> Lock:
    """Lock the overlay's own distributions (see the module docstring for how artifacts are found)."""
    from .layers import load_layering

    layering = load_layering(overlay, environ, tags=True)
    target = target_of(layering)
    own = overlay_copies(layering)
    if wheelhouse is not None:
        wheelhouse.mkdir(parents=True, exist_ok=True)

    direct: dict[str, str] = {}  # name -> URL it was installed from
    for name, copy in sorted(own.items()):
        info = _direct_url(copy)
        if not info:
            continue
        if "dir_info" in info or "vcs_info" in info:
            what = "an editable project" if info.get("dir_info", {}).get("editable") else "a directory or VCS checkout"
            raise OverlayError(
                f"{copy.display_name} {copy.version} was installed from {what} ({info.get('url')}): there is no artifact "
                "to pin by hash; build a wheel of it and install that, then lock"
            )
        if not urlsplit(info.get("url", "")).path.endswith(".whl"):
            _refuse_sdist(copy, info.get("url", ""))
        path = _file_path(info.get("url", ""))
        if path is None or path.is_file():
            direct[name] = info["url"]
        # A local file that is gone: found again by name and version through the sources, below.

    packages = []
    with tempfile.TemporaryDirectory(prefix="overlay-venv-lock-") as tmp:
        work = Path(tmp)
        by_index = sorted(name for name in own if name not in direct or _file_path(direct[name]) is None)
        pins = [
            f"{own[name].name}=={own[name].version}" if name not in direct else f"{name} @ {direct[name]}" for name in by_index
        ]
        urls = _resolved_urls(layering, sources, pins, work) if pins else {}
        files = _download(layering, sources, pins, work / "files") if pins else {}
        for name, copy in sorted(own.items()):
            if name in files:
                local = files[name]
                url = urls.get(name) or direct.get(name)
            else:
                url = direct[name]
                local = _file_path(url)
            if local is None:
                raise OverlayError(f"pip fetched no artifact for {copy.display_name} {copy.version}")
            if local.suffix != ".whl":
                _refuse_sdist(copy, url or local.name)
            differ = record_mismatches(local, Path(copy.location))
            if differ:
                raise OverlayError(
                    f"the artifact found for {copy.display_name} {copy.version} ({url}) is not the one installed: "
                    f"{', '.join(differ[:3])} differ{'s' if len(differ) == 1 else ''}; give the index or "
                    "--find-links it was installed from"
                )
            sha256 = sha256_of(local)
            where = _file_path(url) if url else None
            artifact = Artifact(
                _artifact_kind(local.name),
                local.name,
                sha256,
                url=None if where is not None else url,
                path=str(where) if where is not None else None,
                size=local.stat().st_size,
            )
            if wheelhouse is not None:
                _store(wheelhouse, local, sha256)
            packages.append(LockedPackage(name, copy.version, (artifact,)))

    marker = layering.marker_environment
    lock = Lock(
        packages=tuple(packages),
        base=base_info(layering, target),
        requests=tuple(requests),
        sources=sources,
        allow_shadow=tuple(allow_shadow),
        environments=(environment_marker(marker),),
        requires_python=f"=={minor_of(target.python_version)}.*",
        created_by=f"overlay-venv {__version__}",
    )
    # A lock is made to be shared: no user:password (or token) from -i or a recorded request goes in.
    return redact_lock(lock)


def _resolved_urls(layering: Any, sources: Sources, pins: Sequence[str], work: Path) -> dict[str, str]:
    """name -> the URL pip would install each pin from (``--dry-run --report``; nothing is installed)."""
    from .layers import canonical_name

    report = work / "report.json"
    args = ["install", *PIP_QUIET, "--quiet", "--dry-run", "--ignore-installed", "--no-deps", "--report", str(report)]
    run_pip(layering.python, layering.environ, [*args, *sources.pip_args(), *pins], "finding the locked artifacts")
    data = json.loads(report.read_text(encoding="utf-8"))
    return {
        canonical_name(item["metadata"]["name"]): item.get("download_info", {}).get("url", "") for item in data.get("install", [])
    }


def _download(layering: Any, sources: Sources, pins: Sequence[str], dest: Path) -> dict[str, Path]:
    """name -> the artifact file ``pip download`` put in ``dest`` for each pin."""
    dest.mkdir(parents=True, exist_ok=True)
    args = ["download", *PIP_QUIET, "--quiet", "--no-deps", "--dest", str(dest)]
    run_pip(layering.python, layering.environ, [*args, *sources.pip_args(), *pins], "downloading the locked artifacts")
    return {_name_of_file(path.name): path for path in sorted(dest.iterdir()) if not path.name.startswith(".")}


def _name_of_file(filename: str) -> str:
    from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

    if filename.endswith(".whl"):
        return parse_wheel_filename(filename)[0]
    try:
        return parse_sdist_filename(filename)[0]
    except ValueError:  # an old sdist with an odd name: its name is everything before the last dash
        return canonicalize_name(filename.rsplit("-", 1)[0])


# --------------------------------------------------------------------------------------------------
# Installing a lock


def selected(lock: Lock, target: Target, names: Optional[Iterable[str]] = None) -> list[tuple[LockedPackage, Artifact]]:
    """The artifact to install for each locked package (or those ``names``), for ``target``."""
    from .lock import select_artifact

    wanted = set(lock.by_name()) if names is None else set(names)
    chosen = []
    for package in lock.packages:
        if package.name in wanted:
            artifact = select_artifact(package, target)
            if artifact is None:  # incompatibilities() reports this first; here it is a guard
                raise OverlayError(f"no locked artifact of {package.name} {package.version} fits {target.platform}")
            chosen.append((package, artifact))
    return chosen


def gather(
    chosen: Sequence[tuple[LockedPackage, Artifact]],
    dest: Path,
    python: str,
    environ: Mapping[str, str],
    wheelhouse: Optional[Path] = None,
) -> None:
    """Put every chosen artifact into ``dest``, each checked against its sha256 before anything is
    installed. With a wheelhouse, the files come from there alone; otherwise from the recorded path,
    or the recorded URL through ``pip download --require-hashes``."""
    dest.mkdir(parents=True, exist_ok=True)
    remote: list[tuple[LockedPackage, Artifact]] = []
    for package, artifact in chosen:
        problem = artifact_name_problem(artifact.filename)
        if problem:  # parse_lock refuses these; a Lock made in code is checked here
            raise OverlayError(f"the artifact of {package.name} {package.version}: {artifact.filename!r} {problem}")
        if wheelhouse is not None:
            source = wheelhouse / artifact.filename
            if not source.is_file():
                raise OverlayError(
                    f"{artifact.filename} ({package.name} {package.version}) is not in the wheelhouse {wheelhouse}"
                )
        elif artifact.path is not None:
            source = Path(artifact.path)
            if not source.is_file():
                raise OverlayError(
                    f"{artifact.path}, locked for {package.name} {package.version}, is gone; pass --wheelhouse DIR"
                )
        elif artifact.url and _file_path(artifact.url) is not None:
            source = _file_path(artifact.url)
        else:
            remote.append((package, artifact))
            continue
        _copy_checked(source, dest / artifact.filename, artifact, package)
    if remote:
        requirements = dest.parent / "remote-requirements.txt"
        lines = [f"{package.name} @ {artifact.url} --hash=sha256:{artifact.sha256}" for package, artifact in remote]
        requirements.write_text("\n".join(lines) + "\n", encoding="utf-8")
        args = ["download", *PIP_QUIET, "--quiet", "--no-deps", "--require-hashes", "--dest", str(dest), "-r", str(requirements)]
        run_pip(python, environ, args, "fetching the locked artifacts")
        for _package, artifact in remote:
            fetched = dest / artifact.filename
            if not fetched.is_file() or sha256_of(fetched) != artifact.sha256:
                raise OverlayError(f"{artifact.url} did not give the locked {artifact.filename} (sha256 {artifact.sha256})")
            problem = size_problem(artifact, fetched.stat().st_size)
            if problem:
                raise OverlayError(f"{problem}; nothing was installed")


def _copy_checked(source: Path, target: Path, artifact: Artifact, package: LockedPackage) -> None:
    digest = hashlib.sha256()
    with open(source, "rb") as reader, open(target, "wb") as writer:
        for block in iter(lambda: reader.read(1 << 20), b""):
            digest.update(block)
            writer.write(block)
    if digest.hexdigest() != artifact.sha256:
        target.unlink()
        raise OverlayError(
            f"hash mismatch: {source} has sha256 {digest.hexdigest()}, but the lock pins {package.name} {package.version} "
            f"to {artifact.sha256}; refusing it (tampered, or a different build of the same version); nothing was installed"
        )
    problem = size_problem(artifact, target.stat().st_size)  # the sha256 matched: the size was edited
    if problem:
        target.unlink()
        raise OverlayError(f"{problem}; nothing was installed")


def pip_install(
    python: str,
    environ: Mapping[str, str],
    chosen: Sequence[tuple[LockedPackage, Artifact]],
    files: Path,
) -> None:
    """Install exactly the chosen artifacts from ``files``: hashes required, no dependencies, no index,
    nothing built (``--only-binary :all:``).

    ``--force-reinstall`` makes pip install each locked version into the overlay even when the base
    already has it (pip would otherwise call the base's copy good enough, and the overlay would lack its
    own), and replace the overlay's own copy of another version: pip uninstalls that first, and puts it
    back if the install fails. A copy in the base is outside the environment: pip leaves it alone.
    (``--ignore-installed`` would leave the overlay's old copy's files and metadata beside the new.)
    """
    from .lock import requirements_text

    requirements = files.parent / "locked-requirements.txt"
    requirements.write_text(requirements_text((p.name, p.version, a.sha256) for p, a in chosen), encoding="utf-8")
    args = ["install", *PIP_QUIET, "--quiet", "--no-warn-conflicts", "--require-hashes", "--no-deps", "--no-index"]
    args += ["--only-binary", ":all:", "--force-reinstall", "--find-links", str(files)]
    run_pip(python, environ, [*args, "-r", str(requirements)], "installing the locked artifacts")


def pip_uninstall(python: str, environ: Mapping[str, str], names: Sequence[str]) -> None:
    if names:
        run_pip(python, environ, ["uninstall", *PIP_QUIET, "--quiet", "--yes", *names], "removing distributions")


# --------------------------------------------------------------------------------------------------
# The three ways a lock is applied: into a new overlay, onto an existing one, or re-resolved


def refuse_incompatible(lock: Lock, target: Target, overlay: Path, lock_file: str) -> None:
    """Stop with what differs when ``lock`` cannot be installed for ``target``, pointing at rebuild."""
    from .lock import incompatibilities

    problems = incompatibilities(lock, target)
    if problems:
        raise OverlayError(
            f"{lock_file} does not fit this base: {'; '.join(problems)}. To resolve its requests again on this base, "
            f"run: overlay-venv rebuild {_quote(overlay)} --lock {_quote(lock_file)}"
        )


def _quote(path: Any) -> str:
    import shlex

    return shlex.quote(str(path))


def base_drift(lock: Lock, layering: Any) -> Optional[str]:
    """A warning when the base's distributions are not the ones the lock was made on (installing still
    works: the lock pins only the overlay's own distributions)."""
    from .lock import base_changes

    if lock.base is None:
        return None
    changes = base_changes(lock.base.distributions, base_distributions(layering))
    if not changes:
        return None
    shown = ", ".join(changes[:5]) + (f" and {len(changes) - 5} more" if len(changes) > 5 else "")
    return (
        f"the base differs from the one locked ({shown}); the locked versions are installed as they are "
        "(check with: overlay-venv check)"
    )


def install_lock(
    overlay: Path,
    lock: Lock,
    lock_file: str,
    environ: Mapping[str, str],
    wheelhouse: Optional[Path],
    names: Optional[Iterable[str]] = None,
    remove: Sequence[str] = (),
    warn=None,
    final: Optional[Path] = None,
    after=None,
) -> None:
    """Install the lock's artifacts (or only ``names``) into ``overlay`` (replacing the overlay's own
    copies of other versions), then remove ``remove``. Every artifact is gathered and checked first, and
    an sdist is refused: a bad artifact changes nothing. Then pip installs and removes inside a
    transaction: a failure, a kill or Ctrl-C at any point leaves the overlay as it was (rolled back),
    and the error says so. ``after`` runs inside it too (sync records the lock's requests there).
    ``final`` is the name messages use when ``overlay`` is a staging directory (thrown away on failure,
    so no transaction is needed)."""
    from .layers import load_layering

    layering = load_layering(overlay, environ)
    target = probe_target(layering.python, layering.environ)
    refuse_incompatible(lock, target, final or overlay, lock_file)
    drift = base_drift(lock, layering)
    if drift and warn is not None:
        warn(drift)
    chosen = selected(lock, target, names)
    refuse_sdists(chosen, lock_file)
    with private_tmp("artifacts") as tmp:
        files = tmp / "files"
        # pip's own temporary directories go into ours, which is removed however we end.
        environ = {**layering.environ, "TMPDIR": str(tmp)}
        gather(chosen, files, layering.python, environ, wheelhouse)
        if final is not None:  # a staging directory: thrown away whole if anything fails
            _install_files(overlay, layering.python, environ, chosen, files, remove, after)
            return
        _install_transaction(overlay, layering.python, environ, chosen, files, remove, after)


def _install_files(overlay: Path, python: str, environ: Mapping[str, str], chosen, files: Path, remove, after) -> None:
    from .record import read_record
    from .scripts_guard import secure_scripts

    if chosen:
        pip_install(python, environ, chosen, files)
    pip_uninstall(python, environ, list(remove))
    secure_scripts(overlay / read_record(overlay).bin_dir)
    if after is not None:
        after()


def _install_transaction(overlay: Path, python: str, environ: Mapping[str, str], chosen, files: Path, remove, after) -> None:
    """:func:`_install_files` on a live overlay, all or nothing (see :mod:`overlay_venv.transaction`)."""
    from .record import read_record
    from .overlay_lock import command_text
    from .transaction import UNCHANGED, Interrupted, begin, interrupted_error, scheme_dirs, space_words, terminations_interrupt

    record = read_record(overlay)
    txn = begin(overlay, scheme_dirs(record.bin_dir, record.site_packages), command_text())

    def state() -> str:
        return f"{overlay} is unchanged" if txn.rollback() == UNCHANGED else f"rolled back: {overlay} is as it was before"

    try:
        with terminations_interrupt():
            _install_files(overlay, python, environ, chosen, files, remove, after)
            txn.commit()
    except (KeyboardInterrupt, Interrupted) as exc:
        raise interrupted_error(state() if txn.open else "the install had finished", exc) from None
    except OverlayError as exc:
        if txn.open:
            raise OverlayError(f"{exc.message}; {state()}", details=exc.details) from None
        raise
    except OSError as exc:
        if txn.open:
            raise OverlayError(f"{space_words(exc)}: {state()}") from None
        raise
    finally:
        if txn.open:
            txn.rollback()


def refuse_sdists(chosen: Sequence[tuple[LockedPackage, Artifact]], lock_file: str) -> None:
    """Stop when an artifact to install is not a wheel: building it would need its build backend from an
    index, and installing a lock uses none (pip would fail part-way, after the overlay changed)."""
    sdists = [
        f"{package.name} {package.version} ({artifact.filename})" for package, artifact in chosen if artifact.kind != "wheel"
    ]
    if sdists:
        shown = ", ".join(sdists[:5]) + (f" and {len(sdists) - 5} more" if len(sdists) > 5 else "")
        raise OverlayError(
            f"{lock_file} has no wheel that fits for {shown}: installing a lock builds nothing, so it installs wheels "
            "only; build a wheel of each, install those and lock again"
        )


def remember_requests(overlay: Path, requests: Sequence[str], allow_shadow: Sequence[str] = ()) -> None:
    """Record top-level requests, and the base distributions they may shadow, as the overlay's own
    (what a later lock or rebuild uses)."""
    from .record import read_record, write_record

    if requests:
        record = read_record(overlay)
        if record.requests != list(requests) or record.allow_shadow != list(allow_shadow):
            record.requests = list(requests)
            record.allow_shadow = list(allow_shadow)
            write_record(overlay, record)


def populate_from_lock(lock: Lock, lock_file: str, wheelhouse: Optional[Path], dest: Path, warn=None):
    """The ``populate`` callback of ``create --from``: runs in the staging overlay, before the rename."""

    def populate(stage: Path, environ: dict[str, str]) -> None:
        install_lock(
            stage,
            lock,
            lock_file,
            environ,
            wheelhouse,
            warn=warn,
            final=dest,
            after=lambda: remember_requests(stage, lock.requests, lock.allow_shadow),
        )

    return populate


def populate_from_requests(
    requests: Sequence[str], sources: Sources, quiet: bool, overlay: Path, allow_shadow: Sequence[str] = ()
):
    """The ``populate`` callback of ``rebuild``: ``overlay-venv install``'s guarded install of the
    requests (base distributions others depend on held at the new base's versions, but those in
    ``allow_shadow``), in the staging overlay. A failure raises, and create_overlay then leaves the
    old overlay as it was."""

    def populate(stage: Path, environ: dict[str, str]) -> None:
        from .backends import PIP, IndexOptions, Job, get_backend
        from .install import constraints_text, derive_holds, explain_conflict, parse_conflict, read_requests
        from .layers import load_layering

        packages = [item for item in requests if not item.startswith("-e ")]
        editables = [item[3:] for item in requests if item.startswith("-e ")]
        wanted = read_requests(packages, (), editables, (), environ)
        layering = load_layering(stage, environ, requirements=True)
        holds = derive_holds(
            layering.distributions, layering.marker_environment, named=wanted.names | wanted.constrained, allowed=allow_shadow
        )
        index = IndexOptions(sources.index_url, sources.extra_index_urls, sources.find_links, sources.no_index)
        with private_tmp("rebuild") as tmp:
            constraints = tmp / "base-holds.txt"
            constraints.write_text(constraints_text(holds), encoding="utf-8")
            environ_ = {**layering.environ, "TMPDIR": str(tmp)}
            job = Job(layering.python, environ_, index, wanted.pip_args, constraints, tmp, quiet)
            outcome = get_backend(PIP).install(job)
        if not outcome.ok:
            conflict = parse_conflict(outcome.output)
            lines = explain_conflict(conflict, holds, wanted, "overlay-venv rebuild") if conflict else None
            if lines:
                raise OverlayError(f"the requests do not install on this base; {overlay} is unchanged", details=lines)
            detail = pip_failure(outcome.held_back or outcome.output)
            raise OverlayError(f"the requests do not install on this base: {detail}; {overlay} is unchanged")
        from .record import read_record
        from .scripts_guard import secure_scripts

        secure_scripts(stage / read_record(stage).bin_dir)
        remember_requests(stage, requests, allow_shadow)

    return populate


def prepare_create_from(name: Path, lock_file: str, wheelhouse: Optional[str], pip: bool, clear: bool):
    """What ``create NAME --from FILE`` hands create_overlay as ``populate``; None when NAME is already an
    overlay holding exactly the lock (a job script may run the same create twice)."""
    import click

    from .lock import plan_sync, read_lock
    from .record import is_overlay, read_record

    if not pip:
        raise OverlayError("--from installs with the overlay's pip: leave out --no-pip")
    lock = read_lock(lock_file)
    dest = Path(os.path.abspath(name))
    if is_overlay(dest) and not clear:
        if plan_sync(lock, overlay_versions(dest, read_record(dest).site_packages)).empty:
            return None
        raise OverlayError(
            f"{dest} exists and differs from {lock_file}: make it match with "
            f"`overlay-venv sync {_quote(name)} {_quote(lock_file)}`, or replace it with --clear"
        )
    return populate_from_lock(
        lock,
        lock_file,
        Path(os.path.abspath(wheelhouse)) if wheelhouse else None,
        dest,
        warn=lambda text: click.echo(f"overlay-venv: warning: {text}", err=True),
    )
