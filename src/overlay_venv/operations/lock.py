"""Making a lock: the artifacts an overlay's own distributions were installed from, pinned by sha256.

pip records where a distribution came from (``direct_url.json``) only for URL and path installs. For
the rest (an index, or a ``--find-links`` location) ``lock`` asks pip again, with the overlay's own
interpreter so it picks the same wheel for the same platform: ``pip install --dry-run --report`` says
which URL it would use, ``pip download --no-deps`` fetches the file (from pip's HTTP cache when it is
there, so a package installed from an index earlier usually needs no new download). Each file is then
checked against what is installed, file by file through the two RECORDs, so a lock never pins an
artifact other than the one the overlay holds (a rebuilt wheel with the same version is caught).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Optional
from urllib.parse import unquote, urlsplit

from .. import __version__
from ..backends.pip import PIP_QUIET, run_pip
from ..errors import OverlayError
from ..lock import UNLOCKED, Artifact, BaseInfo, Lock, LockedPackage, environment_marker, minor_of, redact_lock, sha256_of
from ..lock_compare import Target
from ..sources import Sources


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


def overlay_versions(overlay: Path, site_packages: Iterable[str]) -> dict[str, str]:
    """canonical name -> version of the distributions in the overlay's own site-packages (files only)."""
    from ..layers import canonical_name, scan_entry

    found: dict[str, str] = {}
    for rel in site_packages:
        for item in scan_entry(str(overlay / rel)):
            found.setdefault(canonical_name(item.display_name), item.version)
    return found


def overlay_copies(layering: Any) -> dict[str, Any]:
    """canonical name -> the overlay's own copy (a layers.Copy), pip excluded."""
    from ..layers import OVERLAY

    own: dict[str, Any] = {}
    for dist in layering.distributions:
        for copy in (dist.effective, *dist.shadowed):
            if copy.layer.kind == OVERLAY and copy.name not in own and copy.name not in UNLOCKED:
                own[copy.name] = copy
    return own


def base_distributions(layering: Any) -> tuple[str, ...]:
    """``name==version`` of every copy in the base (PYTHONPATH) and the interpreter's own site-packages,
    shadowed ones included: they are what the overlay sits on."""
    from ..layers import BASE, INTERPRETER

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
    from ..layers import load_layering
    from ..stack import lock_lowers

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
        lowers=lock_lowers(overlay),  # a stacked overlay: what it sits on, for create --from
        environments=(environment_marker(marker),),
        requires_python=f"=={minor_of(target.python_version)}.*",
        created_by=f"overlay-venv {__version__}",
    )
    # A lock is made to be shared: no user:password (or token) from -i or a recorded request goes in.
    return redact_lock(lock)


def _resolved_urls(layering: Any, sources: Sources, pins: Sequence[str], work: Path) -> dict[str, str]:
    """name -> the URL pip would install each pin from (``--dry-run --report``; nothing is installed)."""
    from ..layers import canonical_name

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


def check_output(output: str) -> None:
    """Refuse, before any work, a lock file that could not be written."""
    parent = Path(os.path.abspath(output)).parent
    if not parent.is_dir():
        raise OverlayError(f"cannot write the lock to {output}: {parent} is not a directory")
    if Path(output).is_dir():
        raise OverlayError(f"cannot write the lock to {output}: it is a directory")


def write_lock(target: Path, text: str) -> None:
    """Write the lock in one step: a reader (a job array starting) never sees half a lock."""
    from ..atomic import replace_file

    try:
        replace_file(target, text.encode("utf-8"))
    except OSError as exc:
        raise OverlayError(f"cannot write the lock to {target}: {exc.strerror or exc}") from None
