from __future__ import annotations

import click

from .options import index_options, installer_options


@click.command("rebuild")
@click.argument("name", type=click.Path(file_okay=False))
@click.option(
    "--lock",
    "lock_file",
    type=click.Path(exists=True, dir_okay=False),
    metavar="FILE",
    help="Take the requests (and index options) from this lock. Default: those recorded in NAME.",
)
@click.option(
    "--wheelhouse", type=click.Path(exists=True, file_okay=False), metavar="DIR", help="Install from DIR only; no index is used."
)
@click.option("--python", metavar="PATH", help="Interpreter of the new base. Default: the python3 first on PATH, as for create.")
@index_options
@installer_options
@click.option(
    "--allow-shadow",
    multiple=True,
    metavar="NAME",
    help="As for install: let the overlay get its own NAME (repeatable). Those recorded by install are always applied.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress output from pip.")
@click.option("--no-wait", is_flag=True, help="Fail at once if another command is changing the overlay, instead of waiting.")
def command(
    name: str,
    lock_file: str | None,
    wheelhouse: str | None,
    python: str | None,
    index_url: str | None,
    extra_index_urls: tuple[str, ...],
    find_links: tuple[str, ...],
    no_index: bool,
    installer: str | None,
    use_uv: bool,
    allow_shadow: tuple[str, ...],
    quiet: bool,
    no_wait: bool,
) -> None:
    """Recreate the overlay NAME on the current base from its top-level requests.

    After the release changed (a new LCG view, another AnalysisBase), the pins of a lock may no longer
    fit. rebuild builds a new overlay on the release set up in this shell (or by the recorded --setup)
    and installs the requests recorded by `overlay-venv install` (or those of --lock FILE) as install
    does: base packages that others depend on are held at the new base's versions (except those
    `install --allow-shadow` released, which are recorded with the requests). The new overlay
    replaces the old one only when complete; if anything fails, the old one is left as it was. Then it
    prints what changed. A NAME that does not exist yet is created from --lock FILE's requests.

    \b
    Examples:
        overlay-venv rebuild myenv
        overlay-venv rebuild myenv --lock pylock.toml
        overlay-venv rebuild myenv --lock pylock.toml --wheelhouse /shared/wheelhouse
        overlay-venv rebuild myenv --allow-shadow corelib
        overlay-venv rebuild myenv --no-wait                 # fail, not wait, if myenv is busy
        overlay-venv rebuild myenv --no-index -f ./wheels && overlay-venv lock myenv -o pylock.toml
    """
    import os
    from pathlib import Path

    from ..backends import chosen_backend
    from ..layers import align
    from ..operations.rebuild import RebuildRequest, rebuild
    from ..overlay_lock import command_text, overlay_lock
    from ..record import is_overlay

    chosen = chosen_backend(installer, use_uv).name
    request = RebuildRequest(
        overlay=Path(os.path.abspath(name)),
        lock_file=lock_file,
        wheelhouse=wheelhouse,
        python=python,
        sources=(index_url, tuple(extra_index_urls), tuple(find_links), no_index),
        allow_shadow=tuple(allow_shadow),
        quiet=quiet,
        installer=chosen,
    )
    if not is_overlay(request.overlay):
        result = rebuild(request)
    else:
        # The old overlay stays locked until the new one replaced it: no install lands in it meanwhile.
        with overlay_lock(request.overlay, command_text(), wait=not no_wait):
            result = rebuild(request)
    base = result.record.base
    click.echo(f"rebuilt {name} on {base.implementation} {base.version} ({base.interpreter})")
    if result.versions:
        for line in align([["package", "before", "after"], *[list(row) for row in result.versions]]):
            click.echo(line)
    else:
        click.echo("no version changed")
    if result.base_changes:
        click.echo(f"base: {', '.join(result.base_changes)}")
    click.echo(f"record the new versions with: overlay-venv lock {name} -o FILE")
