from __future__ import annotations

import click

from .options import installer_options


@click.command("sync")
@click.argument("name", type=click.Path(file_okay=False))
@click.argument("lock_file", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--wheelhouse",
    type=click.Path(exists=True, file_okay=False),
    metavar="DIR",
    help="Take every artifact from DIR; no index is used.",
)
@click.option("--dry-run", is_flag=True, help="Only show what would change.")
@installer_options
@click.option("--no-wait", is_flag=True, help="Fail at once if another command is changing the overlay, instead of waiting.")
def command(
    name: str, lock_file: str, wheelhouse: str | None, dry_run: bool, installer: str | None, use_uv: bool, no_wait: bool
) -> None:
    """Make the overlay NAME hold exactly the distributions locked in FILE.

    Installs what is missing, changes what differs, then removes what FILE does not lock (pip stays);
    the base is never touched. Every artifact is fetched and checked against its sha256 before the
    overlay changes, and installed with hashes required, no dependency resolution and nothing built:
    a tampered or missing artifact, or an sdist, leaves the overlay as it was. Should pip fail later,
    be interrupted or the disk fill up, the overlay is rolled back (a killed sync is rolled back by the
    next command). One change at a time: a second sync or install waits (or fails with --no-wait).

    \b
    Examples:
        overlay-venv sync myenv pylock.toml
        overlay-venv sync myenv pylock.toml --wheelhouse /shared/wheelhouse   # no index access
        overlay-venv sync myenv pylock.toml --dry-run
        overlay-venv sync myenv pylock.toml --no-wait                         # fail if myenv is busy
        overlay-venv sync myenv pylock.toml --installer uv
    """
    from pathlib import Path

    from ..backends import chosen_backend
    from ..lock import read_lock
    from ..operations.sync import sync
    from ..overlay_lock import command_text, overlay_lock
    from ..record import find_overlay

    overlay = find_overlay(Path(name))
    lock = read_lock(lock_file)
    chosen = chosen_backend(installer, use_uv).name
    if dry_run:
        from ..transaction import recover

        recover(overlay, lambda text: click.echo(text, err=True))  # show what a real sync would change
        result = sync(overlay, lock, lock_file, wheelhouse, True, chosen)
    else:
        with overlay_lock(overlay, command_text(), wait=not no_wait):
            result = sync(overlay, lock, lock_file, wheelhouse, False, chosen)
    if result.plan.empty:
        click.echo(f"{overlay} already matches {lock_file}")
        return
    click.echo(f"would change {overlay}:" if dry_run else f"synced {overlay} to {lock_file}:")
    click.echo("\n".join(result.lines()))
