"""Loading the Jinja2 templates that become an overlay's scripts.

The templates live in the top-level ``templates/`` folder of the source tree; the wheel ships them as
``overlay_venv/templates``. Rendered files are self-contained: an overlay keeps working with
overlay-venv uninstalled.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2

from .cachedir import cache_dir


def templates_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("overlay-venv's templates are missing from this installation")


def bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept between runs: compiling the templates an overlay carries is a good
    part of `create`'s time, loading them compiled almost nothing. Jinja checks each entry against
    the template's checksum, so an upgraded template is compiled again."""
    directory = cache_dir("templates")
    return None if directory is None else jinja2.FileSystemBytecodeCache(str(directory))


@functools.cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        bytecode_cache=bytecode_cache(),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        # Shell scripts use `${#var}`; Jinja's default comment opener `{#` would swallow it.
        comment_start_string="{##",
        comment_end_string="##}",
    )


def render(name: str, quote, **values) -> str:
    """Render template ``name`` with ``quote`` as its ``q`` filter: each shell quotes values its own way."""
    env = environment().overlay()
    env.filters["q"] = quote
    return env.get_template(name).render(**values)
