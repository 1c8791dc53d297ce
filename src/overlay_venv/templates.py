"""Rendering the Jinja2 templates that become an overlay's scripts.

The templates live in the top-level ``templates/`` folder of the source tree; the wheel ships them as
``overlay_venv/templates``. Rendered files are self-contained: an overlay keeps working with
overlay-venv uninstalled.

A warm ``create`` does not import Jinja2 (about 40 ms, for renderings that take a few): each template
is parsed by Jinja2 once and kept, as the plain data of template_program.py, in
``~/.cache/overlay-venv/templates/KEY.program``. KEY covers the template's bytes, overlay-venv's
version, the compiled form's format, the interpreter's marshal format and the installed Jinja2, so
an edited template, an upgrade or another Python is parsed anew. A template using what
template_program.py does not support, and any failure of that renderer, is rendered by Jinja2 as it
always was: the output is the same either way (tests/test_templates.py compares the bytes).
"""

from __future__ import annotations

import functools
import marshal
import os
import sys
from pathlib import Path

from . import __version__, template_program
from .cachedir import cache_dir, sha256

PROGRAM_SUFFIX = ".program"


def templates_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("overlay-venv's templates are missing from this installation")


def new_environment(bytecode_cache=None):
    """A Jinja2 environment with the settings every template is written for."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        bytecode_cache=bytecode_cache,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        # Shell scripts use `${#var}`; Jinja's default comment opener `{#` would swallow it.
        comment_start_string="{##",
        comment_end_string="##}",
    )


@functools.cache
def environment():
    """The Jinja2 environment of the templates the fast renderer does not take; compiled templates are
    kept between runs (Jinja checks each against the template's checksum)."""
    import jinja2

    directory = cache_dir("templates")
    return new_environment(None if directory is None else jinja2.FileSystemBytecodeCache(str(directory)))


def jinja_render(name: str, quote, **values) -> str:
    """Render template ``name`` with Jinja2, ``quote`` as its ``q`` filter."""
    env = environment().overlay()
    env.filters["q"] = quote
    return env.get_template(name).render(**values)


def render(name: str, quote, **values) -> str:
    """Render template ``name`` with ``quote`` as its ``q`` filter: each shell quotes values its own way."""
    program = template_program_of(name)
    if program is not None:
        try:
            return template_program.run(program, values, {"q": quote})
        except Exception:  # noqa: BLE001 - whatever it is, Jinja2 renders (or refuses) as it always did
            pass
    return jinja_render(name, quote, **values)


@functools.cache
def _jinja2_identity() -> bytes:
    """Which Jinja2 is installed (its lexer decides the whitespace), without importing it."""
    from importlib.util import find_spec

    try:
        spec = find_spec("jinja2")
        info = os.stat(spec.origin)
    except (ImportError, AttributeError, TypeError, OSError):
        return b"?"
    return f"{spec.origin}:{info.st_size}:{info.st_mtime_ns}".encode()


def program_key(source: bytes) -> str:
    digest = sha256(source)
    facts = [template_program.FORMAT, __version__, marshal.version, sys.version_info[:2]]
    digest.update(repr(facts).encode() + _jinja2_identity())
    return digest.hexdigest()[:32]


@functools.cache
def template_program_of(name: str) -> tuple | None:
    """The compiled program of template ``name``, from the cache or compiled (and cached) now;
    None when the template needs Jinja2 itself."""
    source = (templates_dir() / name).read_bytes()
    directory = cache_dir("templates")
    cached = None if directory is None else directory / (program_key(source) + PROGRAM_SUFFIX)
    if cached is not None:
        try:
            kind, program = marshal.loads(cached.read_bytes())
            return program if kind == "program" else None
        except (OSError, ValueError, EOFError, TypeError):
            pass  # not there yet, or damaged: compiled again below
    try:
        entry = ("program", template_program.compile_template(new_environment(), source.decode("utf-8"), name))
    except template_program.Unsupported as exc:
        entry = ("jinja2", str(exc))
    if cached is not None:
        from .atomic import replace_file

        try:
            replace_file(cached, marshal.dumps(entry))
        except (OSError, ValueError):
            pass  # only a cache: the next run compiles again
    return entry[1] if entry[0] == "program" else None
