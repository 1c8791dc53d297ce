from __future__ import annotations

import click

from .options import index_options


@click.command("lock")
@click.argument("name", required=False, type=click.Path(file_okay=False))
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    default="-",
    help="Write the lock to FILE (pylock.toml or pylock.NAME.toml). Default: stdout.",
)
@click.option("--wheelhouse", type=click.Path(file_okay=False), metavar="DIR", help="Also save every locked artifact into DIR.")
@index_options
def command(
    name: str | None,
    output: str,
    wheelhouse: str | None,
    index_url: str | None,
    extra_index_urls: tuple[str, ...],
    find_links: tuple[str, ...],
    no_index: bool,
) -> None:
    """Lock the overlay NAME (default: the active one) to the exact artifacts it holds.

    Writes a PEP 751 pylock.toml with exactly the overlay's own distributions (pip aside), each with
    the file it was installed from, its sha256 and where it came from; and, in [tool.overlay-venv],
    the top-level requests given to `overlay-venv install`, the index options below, and what the
    overlay sits on: interpreter, platform and a fingerprint of the base's distributions.

    pip records where a package came from only for URL and path installs. For the others the same
    files are fetched again with the overlay's pip (from pip's cache when it has them) from the index
    options given here, and checked file by file against what is installed. Give the options you
    installed with; the lock records them for `rebuild`.

    \b
    Examples:
        overlay-venv lock myenv -o pylock.myenv.toml
        overlay-venv lock myenv -o pylock.toml --no-index -f ./wheels
        overlay-venv lock myenv -o pylock.toml --wheelhouse /shared/wheelhouse   # artifacts for batch jobs
        overlay-venv lock > pylock.toml                                          # the active overlay
    """
    import os
    from pathlib import Path

    from ..lock import render_lock
    from ..operations.lock import check_output, make_lock, write_lock
    from ..record import find_overlay, read_record
    from ..sources import Sources

    if output != "-":
        check_output(output)  # before any work: finding and fetching every artifact can take minutes
    overlay = find_overlay(Path(name) if name else None)
    record = read_record(overlay)
    sources = Sources(
        index_url, tuple(extra_index_urls), tuple(os.path.abspath(f) if "://" not in f else f for f in find_links), no_index
    )
    lock = make_lock(
        overlay,
        sources,
        record.requests,
        Path(os.path.abspath(wheelhouse)) if wheelhouse else None,
        allow_shadow=record.allow_shadow,
    )
    text = render_lock(lock)
    if output == "-":
        click.echo(text, nl=False)
    else:
        write_lock(Path(output), text)
    count = len(lock.packages)
    saved = f"; artifacts in {wheelhouse}" if wheelhouse else ""
    where = "" if output == "-" else f" to {output}"
    click.echo(f"locked {count} distribution{'s' if count != 1 else ''} of {overlay}{where}{saved}", err=True)
