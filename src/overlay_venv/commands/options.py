"""Options several commands share, declared once: where packages come from, and which installer."""

from __future__ import annotations

import click

# Applied bottom-up by click, so listed here in the order --help shows them.
_INDEX = (
    click.option("-i", "--index-url", metavar="URL", help="Base URL of the package index."),
    click.option(
        "--extra-index-url", "extra_index_urls", multiple=True, metavar="URL", help="Another index to use (repeatable)."
    ),
    click.option(
        "-f", "--find-links", multiple=True, metavar="PATH|URL", help="A directory or page of distributions (repeatable)."
    ),
    click.option("--no-index", is_flag=True, help="Use no index, only --find-links locations."),
)


def index_options(function):
    """-i/--index-url, --extra-index-url, -f/--find-links, --no-index: as pip spells them."""
    for option in reversed(_INDEX):
        function = option(function)
    return function


def installer_options(function):
    """--installer pip|uv (default: $OVERLAY_VENV_INSTALLER, else pip) and --uv, its old alias."""
    function = click.option("--uv", "use_uv", is_flag=True, help="The same as --installer uv.")(function)
    return click.option(
        "--installer",
        metavar="pip|uv",
        help="What installs: pip, or uv (it resolves with every layer in view). Default: $OVERLAY_VENV_INSTALLER, else pip.",
    )(function)
