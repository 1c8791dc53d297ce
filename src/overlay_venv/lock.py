"""Lock files: exactly the overlay's own distributions, and what they sit on, in PEP 751 ``pylock.toml``.

A lock names each distribution in the overlay's own site-packages (never the base's) with the one
artifact it was installed from: file name, sha256, size and where it came from (``path`` for a local
file, ``url`` otherwise, ``index`` when an index served it). What the overlay sits on, and what the user
asked for, go in the ``[tool.overlay-venv]`` table that PEP 751 reserves for tools:

- ``requests``: the top-level requests recorded by ``overlay-venv install``, so ``rebuild`` can resolve
  again from intent on a new base;
- ``sources``: the index options the artifacts were found with (``rebuild`` reuses them);
- ``base``: interpreter implementation and version, platform, the most specific wheel tag, and the
  base's distributions (name==version, sorted) with their sha256 fingerprint.

The standard fields also say where the lock applies (``requires-python``, ``environments``), so pip 26.3+
and uv refuse it on another interpreter even without overlay-venv.

This module is pure: the data model, a small TOML writer for exactly this shape (tomllib is read-only,
and new only in 3.11), the reader (tomllib, or tomli before 3.11), and the comparisons ``create --from``,
``sync`` and ``rebuild`` make. Making and applying locks lives in :mod:`overlay_venv.operations.lock` and :mod:`.apply_lock`.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from .errors import OverlayError
from .sources import Sources, redact_url

LOCK_VERSION = "1.0"  # PEP 751's lock-version
TOOL = "overlay-venv"
TOOL_TABLE_FORMAT = 1  # of our [tool.overlay-venv] table
# pip itself is not locked: every overlay gets pip from virtualenv's embedded wheels, and a lock that
# carried it would need the index (or the wheelhouse) to hold that exact pip.
UNLOCKED = frozenset({"pip"})

# --------------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class Artifact:
    """One file a distribution can be installed from."""

    kind: str  # "wheel" or "sdist"
    filename: str
    sha256: str  # hex
    url: Optional[str] = None  # where it came from when that is not a local file
    path: Optional[str] = None  # absolute path when it came from a local file
    size: Optional[int] = None


@dataclass(frozen=True)
class LockedPackage:
    name: str  # canonical (PEP 503)
    version: str
    artifacts: tuple[Artifact, ...]  # wheels first, in the order written; at most one sdist
    index: Optional[str] = None  # the index that served it, when one did


@dataclass(frozen=True)
class BaseInfo:
    """What the overlay sat on when it was locked."""

    implementation: str  # "CPython"
    python_version: str  # "3.9.18"
    platform: str  # sysconfig.get_platform(): "linux-x86_64"
    tag: str  # the interpreter's most specific wheel tag: "cp39-cp39-manylinux_2_36_x86_64"
    distributions: tuple[str, ...]  # "name==version" of every base distribution, sorted

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.distributions)

    @property
    def minor(self) -> str:
        return minor_of(self.python_version)


@dataclass(frozen=True)
class Lock:
    packages: tuple[LockedPackage, ...]  # sorted by name
    base: Optional[BaseInfo] = None  # None for a pylock.toml another tool wrote
    requests: tuple[str, ...] = ()
    sources: Sources = field(default_factory=Sources)
    environments: tuple[str, ...] = ()
    requires_python: Optional[str] = None
    created_by: str = TOOL
    allow_shadow: tuple[str, ...] = ()  # what `install --allow-shadow` released, re-applied by rebuild
    # A stacked overlay's lower overlays (create --on), top-down, each "FINGERPRINT PATH" (stack.py).
    lowers: tuple[str, ...] = ()

    def by_name(self) -> dict[str, LockedPackage]:
        return {package.name: package for package in self.packages}


def redact_lock(lock: Lock) -> Lock:
    """``lock`` with no credentials in its URLs (:func:`overlay_venv.sources.redact_url`): a lock file is
    made to be shared, and ``-i https://user:token@host/simple`` or a request with a token in its URL
    must not travel with it. The index, keyring or netrc supply them again where the lock is used."""

    def artifact(item: Artifact) -> Artifact:
        return replace(item, url=redact_url(item.url)) if item.url else item

    packages = tuple(
        replace(
            package,
            artifacts=tuple(artifact(item) for item in package.artifacts),
            index=redact_url(package.index) if package.index else package.index,
        )
        for package in lock.packages
    )
    return replace(
        lock, packages=packages, requests=tuple(redact_url(item) for item in lock.requests), sources=lock.sources.redacted()
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def minor_of(version: str) -> str:
    return ".".join(version.split(".")[:2])


def fingerprint(distributions: Iterable[str]) -> str:
    """sha256 of the sorted, deduplicated ``name==version`` lines: equal bases, equal fingerprints."""
    text = "".join(f"{item}\n" for item in sorted(set(distributions)))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def environment_marker(marker_environment: Mapping[str, str]) -> str:
    """The PEP 508 marker that says "this interpreter": implementation, minor version, OS and machine."""
    keys = ("implementation_name", "python_version", "sys_platform", "platform_machine")
    return " and ".join(f"{key} == {_marker_string(marker_environment.get(key, ''))}" for key in keys)


def _marker_string(value: str) -> str:
    # PEP 508 strings have no escapes: pick the quote the value does not contain.
    return f"'{value}'" if "'" not in value else f'"{value}"'


# --------------------------------------------------------------------------------------------------
# Writing: TOML for exactly this shape, stable in order


def _toml_string(value: str) -> str:
    out = ['"']
    for char in value:
        code = ord(char)
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        elif 0xD800 <= code <= 0xDFFF:
            # A lone surrogate: a file name that is not UTF-8. TOML cannot carry it.
            raise OverlayError(f"cannot write {value!r} into a lock: it is not valid UTF-8 text")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key} = {_toml_value(item)}" for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        # One item a line: a changed item is a one-line diff.
        return "[\n" + "".join(f"    {_toml_value(item)},\n" for item in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def _lines(table: Mapping[str, Any]) -> list[str]:
    return [f"{key} = {_toml_value(value)}" for key, value in table.items() if value is not None]


def render_lock(lock: Lock) -> str:
    """The lock as pylock.toml text. Same lock, same bytes: keys in a fixed order, packages by name."""
    out = ["# Written by overlay-venv lock: the overlay's own distributions, pinned to their artifacts by sha256."]
    out.append("# Install with: overlay-venv create NAME --from FILE  (or: overlay-venv sync NAME FILE)")
    out += _lines(
        {
            "lock-version": LOCK_VERSION,
            "environments": list(lock.environments) if lock.environments else None,
            "requires-python": lock.requires_python,
            "created-by": lock.created_by,
        }
    )
    out += ["", f"[tool.{TOOL}]"]
    out += _lines(
        {
            "format": TOOL_TABLE_FORMAT,
            "requests": list(lock.requests),
            "allow-shadow": list(lock.allow_shadow) or None,
            "lowers": list(lock.lowers) or None,
        }
    )
    sources = lock.sources
    out += ["", f"[tool.{TOOL}.sources]"]
    out += _lines(
        {
            "index-url": sources.index_url,
            "extra-index-urls": list(sources.extra_index_urls),
            "find-links": list(sources.find_links),
            "no-index": sources.no_index,
        }
    )
    if lock.base is not None:
        base = lock.base
        out += ["", f"[tool.{TOOL}.base]"]
        out += _lines(
            {
                "implementation": base.implementation,
                "python-version": base.python_version,
                "platform": base.platform,
                "tag": base.tag,
                "fingerprint": base.fingerprint,
                "distributions": list(base.distributions),
            }
        )
    for package in sorted(lock.packages, key=lambda p: p.name):
        out += ["", "[[packages]]"]
        out += _lines({"name": package.name, "version": package.version, "index": package.index})
        for artifact in package.artifacts:
            entry = {
                "name": artifact.filename,
                "url": artifact.url,
                "path": artifact.path,
                "size": artifact.size,
                "hashes": {"sha256": artifact.sha256},
            }
            out += ["", "[[packages.wheels]]" if artifact.kind == "wheel" else "[packages.sdist]"]
            out += _lines(entry)
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------------
# Reading


def _toml_loads(text: str) -> dict:
    try:
        import tomllib  # Python 3.11+
    except ImportError:
        try:
            import tomli as tomllib  # the same parser, for Python 3.9 and 3.10
        except ImportError:
            raise OverlayError(
                "reading a lock on Python < 3.11 needs the tomli package: pip install tomli (beside overlay-venv)"
            ) from None
    return tomllib.loads(text)


def _get(table: Mapping[str, Any], key: str, kind: type, where: str, default: Any = None) -> Any:
    value = table.get(key, default)
    if value is not default and not isinstance(value, kind):
        raise ValueError(f"{where}{key} should be a {kind.__name__}, not {type(value).__name__}")
    return value


def _strings(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    items = _get(table, key, list, where, [])
    if not all(isinstance(item, str) for item in items):
        raise ValueError(f"{where}{key} should be a list of strings")
    return tuple(items)


def _artifact(kind: str, table: Any, where: str) -> Artifact:
    if not isinstance(table, dict):
        raise ValueError(f"{where} should be a table")
    hashes = _get(table, "hashes", dict, where + ".", {})
    sha256 = hashes.get("sha256")
    if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        # pip's hash checking needs sha256; other algorithms alone are not enough for us.
        raise ValueError(f"{where} has no sha256 hash")
    url = _get(table, "url", str, where + ".")
    path = _get(table, "path", str, where + ".")
    if not url and not path:
        raise ValueError(f"{where} has neither url nor path")
    filename = _get(table, "name", str, where + ".")
    if filename is None:
        from urllib.parse import unquote, urlsplit

        # PEP 751: without a name, the file name is the last part of the path, or of the URL's path.
        filename = path.replace("\\", "/").rsplit("/", 1)[-1] if path else unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    problem = artifact_name_problem(filename)
    if problem:
        raise ValueError(f"{where} name {filename!r} {problem}")
    size = _get(table, "size", int, where + ".")
    if isinstance(size, bool) or (size is not None and size < 0):  # TOML true is no size, nor is -1
        raise ValueError(f"{where}.size should be a number of bytes, not {size!r}")
    return Artifact(kind, filename, sha256.lower(), url, path, size)


def size_problem(artifact: Artifact, actual: int) -> Optional[str]:
    """Why a file of ``actual`` bytes cannot be ``artifact``, or None. A lock whose size disagrees
    with its own sha256 was edited (or damaged) after it was written: refused, not half-believed."""
    if artifact.size is not None and artifact.size != actual:
        return (
            f"the lock records {artifact.filename} as {artifact.size} bytes, but the file with its sha256 has "
            f"{actual}; the lock was changed after it was written"
        )
    return None


ARTIFACT_SUFFIXES = (".whl", ".tar.gz", ".zip")


def artifact_name_problem(filename: str) -> Optional[str]:
    """Why ``filename`` cannot be an artifact's file name, or None. Installing a lock writes each
    artifact under its name into a private directory (and deletes it there when its hash is wrong),
    so the name must be a plain file name: no directory part, nothing a path could climb out with."""
    if (
        "/" in filename
        or "\\" in filename
        or "\0" in filename
        or filename in (".", "..")
        or os.path.basename(filename) != filename
    ):
        return "is not a plain file name"
    if not filename.endswith(ARTIFACT_SUFFIXES):
        return f"does not end in {', '.join(ARTIFACT_SUFFIXES[:-1])} or {ARTIFACT_SUFFIXES[-1]}"
    return None


def read_lock(path: str | os.PathLike) -> Lock:
    """:func:`parse_lock` of the file ``path``, whose reading fails in one line too (unreadable,
    a directory, not UTF-8)."""
    origin = os.fspath(path)
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise OverlayError(f"{origin} is not a lock overlay-venv can use: it is not UTF-8 text") from None
    except OSError as exc:
        raise OverlayError(f"cannot read the lock {origin}: {exc.strerror or exc}") from None
    return parse_lock(text, origin)


def parse_lock(text: str, origin: str = "the lock") -> Lock:
    """Read a pylock.toml written by ``overlay-venv lock`` (or, without our tool table, by another tool
    whose packages are wheels and sdists). Raises OverlayError saying what is wrong."""
    try:
        data = _toml_loads(text)
    except OverlayError:
        raise
    except ValueError as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise OverlayError(f"{origin} is not valid TOML: {exc}") from None
    except RecursionError:
        raise OverlayError(f"{origin} is not a lock overlay-venv can use: it is nested too deeply") from None
    try:
        return _lock_from(data)
    except ValueError as exc:
        raise OverlayError(f"{origin} is not a lock overlay-venv can use: {exc}") from None
    except (TypeError, AttributeError, KeyError) as exc:  # a table where a list belongs, or the reverse
        raise OverlayError(f"{origin} is not a lock overlay-venv can use: a value has the wrong type ({exc})") from None


def _lock_from(data: dict) -> Lock:
    version = data.get("lock-version")
    if not isinstance(version, str) or version.split(".")[0] != "1":
        raise ValueError(f"lock-version {version!r} (need 1.x)")
    from .layers import canonical_name

    packages = []
    for number, table in enumerate(_get(data, "packages", list, "", [])):
        where = f"packages[{number}]"
        if not isinstance(table, dict):
            raise ValueError(f"{where} should be a table")
        name = _get(table, "name", str, where + ".")
        if not name:
            raise ValueError(f"{where} has no name")
        for direct in ("vcs", "directory", "archive"):
            if direct in table:
                raise ValueError(f"{name} is locked as a {direct}; only wheels and sdists can be installed by hash")
        artifacts = [
            _artifact("wheel", item, f"{name} wheels[{i}]") for i, item in enumerate(_get(table, "wheels", list, where + ".", []))
        ]
        if "sdist" in table:
            artifacts.append(_artifact("sdist", table["sdist"], f"{name} sdist"))
        if not artifacts:
            raise ValueError(f"{name} has no wheel and no sdist")
        pkg_version = _get(table, "version", str, where + ".")
        if not pkg_version:
            raise ValueError(f"{name} has no version")
        packages.append(
            LockedPackage(canonical_name(name), pkg_version, tuple(artifacts), _get(table, "index", str, where + "."))
        )
    names = [package.name for package in packages]
    if len(set(names)) != len(names):
        # PEP 751 allows one name several times under different markers; an overlay has one copy each.
        raise ValueError(f"{sorted({n for n in names if names.count(n) > 1})} locked more than once")

    tool = _get(_get(data, "tool", dict, "", {}), TOOL, dict, "tool.", {})
    fmt = _get(tool, "format", int, f"tool.{TOOL}.", TOOL_TABLE_FORMAT)
    if fmt > TOOL_TABLE_FORMAT:
        raise ValueError(
            f"its [tool.{TOOL}] table has format {fmt}; this overlay-venv reads format {TOOL_TABLE_FORMAT}: upgrade it"
        )
    src = _get(tool, "sources", dict, f"tool.{TOOL}.", {})
    sources = Sources(
        _get(src, "index-url", str, "sources."),
        _strings(src, "extra-index-urls", "sources."),
        _strings(src, "find-links", "sources."),
        bool(_get(src, "no-index", bool, "sources.", False)),
    )
    base = None
    if "base" in tool:
        table = _get(tool, "base", dict, f"tool.{TOOL}.")
        values = {}
        for key in ("implementation", "python-version", "platform", "tag"):
            value = _get(table, key, str, "base.")
            if value is None:
                raise ValueError(f"[tool.{TOOL}.base] has no {key}")
            values[key] = value
        base = BaseInfo(
            values["implementation"],
            values["python-version"],
            values["platform"],
            values["tag"],
            _strings(table, "distributions", "base."),
        )
        recorded = _get(table, "fingerprint", str, "base.")
        if recorded is not None and recorded != base.fingerprint:
            # Someone edited the list (or the fingerprint): the two would disagree about the base.
            raise ValueError("the base fingerprint does not match its list of distributions")
    return Lock(
        packages=tuple(sorted(packages, key=lambda p: p.name)),
        base=base,
        requests=_strings(tool, "requests", f"tool.{TOOL}."),
        sources=sources,
        allow_shadow=_strings(tool, "allow-shadow", f"tool.{TOOL}."),
        lowers=_strings(tool, "lowers", f"tool.{TOOL}."),
        environments=_strings(data, "environments", ""),
        requires_python=_get(data, "requires-python", str, ""),
        created_by=_get(data, "created-by", str, "", "") or "",
    )
