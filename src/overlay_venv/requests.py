"""What the user asked ``install`` for: requirements, ``-r`` files, ``-e`` projects and ``-c`` files,
read with packaging's rules (what pip itself uses), and how they are recorded for ``lock`` and
``rebuild`` (:func:`merge_requests`)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .errors import OverlayError


@dataclass
class Requests:
    """The user's requests, as pip gets them and as overlay-venv understands them."""

    pip_args: list[str] = field(default_factory=list)  # requirements, -r, -e, -c, in the user's order
    names: set[str] = field(default_factory=set)  # canonical names asked for (exempt from holds)
    constrained: set[str] = field(default_factory=set)  # canonical names in the user's own -c files
    specifiers: dict[str, str] = field(default_factory=dict)  # name -> the specifier the user gave, "" for none
    record: list[str] = field(default_factory=list)  # what to remember in overlay-venv.json
    unnamed: list[str] = field(default_factory=list)  # requests whose project name could not be read


_WHEEL = re.compile(r"^(?P<name>[^-]+)-[^-]+(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")


_SDIST = re.compile(r"^(?P<name>.+)-[^-]+\.(tar\.gz|zip|tar\.bz2|tgz)$")


_EGG = re.compile(r"[#&]egg=(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)")


_PROJECT_NAME = re.compile(r"""^\s*name\s*=\s*["']([^"']+)["']""", re.M)


_SETUP_PY_NAME = re.compile(r"""\bname\s*=\s*["']([A-Za-z0-9][A-Za-z0-9._-]*)["']""")


def looks_like_path(text: str) -> bool:
    """pip's rule of thumb: a separator, a leading dot, an archive suffix, or an existing path."""
    return (
        os.sep in text
        or text.startswith(".")
        or text.endswith((".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz"))
        or os.path.exists(text)
    )


def _pyproject_name(text: str) -> Optional[str]:
    try:
        import tomllib  # Python 3.11+
    except ImportError:
        tomllib = None
    if tomllib is not None:
        try:
            name = tomllib.loads(text).get("project", {}).get("name")
            return name if isinstance(name, str) else None
        except ValueError:
            return None
    # Older Pythons: the `name = "..."` line of the [project] table, read by hand.
    match = re.search(r"^\[project\]\s*$(?P<body>.*?)(?=^\[|\Z)", text, re.M | re.S)
    if match:
        found = _PROJECT_NAME.search(match["body"])
        return found.group(1) if found else None
    return None


def project_name(location: str) -> Optional[str]:
    """The project name of a local path or URL, when it is cheap to read: a wheel's or sdist's file
    name, an ``#egg=`` fragment, or a source tree's pyproject.toml / setup.cfg / setup.py. None otherwise
    (pip still installs it; it is just not exempt from holds)."""
    egg = _EGG.search(location)
    if egg:
        return egg["name"]
    if "://" in location:
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(location)
        if parts.scheme != "file":
            filename = unquote(parts.path.rsplit("/", 1)[-1])
            match = _WHEEL.match(filename) or _SDIST.match(filename)
            return match["name"] if match else None
        location = unquote(parts.path)
    path = Path(location)
    match = _WHEEL.match(path.name) or _SDIST.match(path.name)
    if match and path.is_file():
        return match["name"]
    if not path.is_dir():
        return None
    import configparser  # here: only a local project directory needs it (~2 ms of every install)

    try:
        if (path / "pyproject.toml").is_file():
            name = _pyproject_name((path / "pyproject.toml").read_text(encoding="utf-8"))
            if name:
                return name
        if (path / "setup.cfg").is_file():
            parser = configparser.ConfigParser(interpolation=None)
            parser.read(path / "setup.cfg", encoding="utf-8")
            name = parser.get("metadata", "name", fallback=None)
            if name:
                return name
        if (path / "setup.py").is_file():
            found = _SETUP_PY_NAME.search((path / "setup.py").read_text(encoding="utf-8"))
            return found.group(1) if found else None
    except (OSError, UnicodeError, configparser.Error):
        return None
    return None


def _expand(text: str, environ: Mapping[str, str]) -> str:
    # pip expands ${VAR} (only this form, only upper case, digits and underscores) in requirement files.
    return re.sub(r"\$\{([A-Z0-9_]+)\}", lambda m: environ.get(m.group(1), m.group(0)), text)


def requirement_lines(path: Path, environ: Mapping[str, str], seen: Optional[set] = None) -> Iterable[tuple[str, str, Path]]:
    """``(kind, text, file)`` for each entry of a pip requirements file, nested files followed: kind is
    "requirement", "editable" or "constraint" (a requirement line of a -c file). Options pip alone
    cares about (--index-url, --hash, ...) are skipped."""
    seen = set() if seen is None else seen
    text = _read_once(path, seen, "requirements")
    if text is not None:
        yield from _file_entries(text, path, environ, seen, "requirement")


def _read_once(path: Path, seen: set, what: str) -> Optional[str]:
    """The text of a requirements or constraints file, or None if it was read already (files that
    include each other)."""
    real = os.path.realpath(path)
    if real in seen:
        return None
    seen.add(real)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise OverlayError(f"cannot read the {what} file {path}: {exc.strerror or exc}") from None


def _file_entries(text: str, path: Path, environ: Mapping[str, str], seen: set, kind: str) -> Iterable[tuple[str, str, Path]]:
    logical = re.sub(r"\\\r?\n", "", text)  # continuation lines
    for raw in logical.splitlines():
        line = re.sub(r"(^|\s+)#.*$", "", raw).strip()
        if not line:
            continue
        line = _expand(line, environ)
        option = re.match(r"^(-r|--requirement|-c|--constraint|-e|--editable)(?:\s*=\s*|\s+|(?=[^-\s]))(?P<value>\S.*)$", line)
        if option:
            flag, value = option.group(1), option["value"].strip()
            if flag in ("-e", "--editable"):
                yield ("editable" if kind == "requirement" else kind, value, path)
                continue
            nested = Path(value) if os.path.isabs(value) else path.parent / value
            if "://" in value:
                continue  # a remote file: pip reads it; its names are not exempt
            nested_kind = "constraint" if flag in ("-c", "--constraint") else kind
            if nested_kind == "constraint":
                nested_text = _read_once(nested, seen, "constraints")
                if nested_text is not None:
                    yield from _file_entries(nested_text, nested, environ, seen, "constraint")
            else:
                yield from requirement_lines(nested, environ, seen)
            continue
        if line.startswith("-"):
            continue  # --index-url, --find-links, --pre, ...: pip applies them; they name nothing
        # Per-requirement options (--hash=..., --config-settings ...) follow the requirement.
        yield (kind, re.split(r"\s+--?[A-Za-z]", line, maxsplit=1)[0].strip(), path)


def _absolute(location: str) -> str:
    return location if "://" in location else os.path.abspath(location)


def read_requests(
    packages: Sequence[str],
    requirement_files: Sequence[str] = (),
    editables: Sequence[str] = (),
    constraint_files: Sequence[str] = (),
    environ: Optional[Mapping[str, str]] = None,
) -> Requests:
    """Everything the user asked for, read with packaging's rules (what pip itself uses)."""
    from .layers import canonical_name, parse_requirement

    environ = dict(os.environ if environ is None else environ)
    requests = Requests()

    def add(kind: str, text: str) -> None:
        name: Optional[str] = None
        specifier = ""
        recorded = text
        if kind == "editable":
            name = project_name(text)
            recorded = f"-e {_absolute(text)}"
        else:
            parsed = None
            if not looks_like_path(text) or "@" in text:
                try:
                    parsed = parse_requirement(text)
                except Exception:  # packaging's InvalidRequirement: maybe a path or URL after all
                    parsed = None
            if parsed is not None:
                name = parsed.name
                specifier = "" if parsed.specifier is None else str(parsed.specifier)
            else:
                name = project_name(text)
                recorded = _absolute(text)
        if kind == "constraint":
            if name:
                requests.constrained.add(canonical_name(name))
            return
        requests.record.append(recorded)
        if name is None:
            requests.unnamed.append(text)
            return
        name = canonical_name(name)
        requests.names.add(name)
        if name not in requests.specifiers or specifier:
            requests.specifiers[name] = specifier

    for text in packages:
        requests.pip_args.append(text)
        add("requirement", text)
    for location in editables:
        requests.pip_args += ["-e", location]
        add("editable", location)
    for file in requirement_files:
        requests.pip_args += ["-r", file]
        for kind, text, _ in requirement_lines(Path(file), environ):
            add(kind, text)
    for file in constraint_files:
        requests.pip_args += ["-c", file]
        try:
            text = Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            raise OverlayError(f"cannot read the constraints file {file}: {exc.strerror or exc}") from None
        for kind, line, _ in _file_entries(text, Path(file), environ, set(), "constraint"):
            add(kind, line)
    return requests


def merge_requests(old: Sequence[str], new: Sequence[str]) -> list[str]:
    """The overlay's recorded requests after an install: a new request replaces an older one for the
    same project (``tool`` then ``tool==2.0`` leaves ``tool==2.0``); the rest keep their order."""

    def key(entry: str) -> str:
        from .layers import canonical_name, parse_requirement

        text = entry[3:] if entry.startswith("-e ") else entry
        if entry.startswith("-e ") or (looks_like_path(text) and "@" not in text):
            name = project_name(text)
            return f"name:{canonical_name(name)}" if name else f"text:{text}"
        try:
            return f"name:{parse_requirement(text).name}"
        except Exception:
            return f"text:{text}"

    new_keys = {key(entry) for entry in new}
    merged = [entry for entry in old if key(entry) not in new_keys]
    for entry in new:
        if entry not in merged:
            merged.append(entry)
    return merged
