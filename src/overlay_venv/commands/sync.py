from __future__ import annotations

import click


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
@click.option("--no-wait", is_flag=True, help="Fail at once if another command is changing the overlay, instead of waiting.")
def command(name: str, lock_file: str, wheelhouse: str | None, dry_run: bool, no_wait: bool) -> None:
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
    """
    from pathlib import Path

    from ..lock import parse_lock
    from ..record import find_overlay
    from ..overlay_lock import command_text, overlay_lock

    overlay = find_overlay(Path(name))
    lock = parse_lock(Path(lock_file).read_text(encoding="utf-8"), lock_file)
    if dry_run:
        from ..transaction import recover

        recover(overlay, lambda text: click.echo(text, err=True))  # show what a real sync would change
        _sync(overlay, name, lock, lock_file, wheelhouse, True)
        return
    with overlay_lock(overlay, command_text(), wait=not no_wait):
        _sync(overlay, name, lock, lock_file, wheelhouse, False)


def _sync(overlay, name: str, lock, lock_file: str, wheelhouse: str | None, dry_run: bool) -> None:
    import os
    from pathlib import Path

    from ..lock import plan_sync
    from ..lock_pip import install_lock, overlay_versions, remember_requests
    from ..record import read_record

    record = read_record(overlay)
    plan = plan_sync(lock, overlay_versions(overlay, record.site_packages))
    lines = [f"  install {name_} {lock.by_name()[name_].version}" for name_ in plan.install]
    lines += [f"  change  {name_} {old} -> {new}" for name_, old, new in plan.change]
    lines += [f"  remove  {name_} {version}" for name_, version in plan.remove]
    if plan.empty:
        if not dry_run:
            remember_requests(overlay, lock.requests, lock.allow_shadow)
        click.echo(f"{overlay} already matches {lock_file}")
        return
    if dry_run:
        click.echo(f"would change {overlay}:")
        click.echo("\n".join(lines))
        return
    install_lock(
        overlay,
        lock,
        lock_file,
        dict(os.environ),
        Path(wheelhouse).absolute() if wheelhouse else None,
        names=[*plan.install, *(item[0] for item in plan.change)],
        # Changed ones are replaced by the install itself; these go only once it succeeded.
        remove=[item[0] for item in plan.remove],
        warn=lambda text: click.echo(f"overlay-venv: warning: {text}", err=True),
        after=lambda: remember_requests(overlay, lock.requests, lock.allow_shadow),
    )
    click.echo(f"synced {overlay} to {lock_file}:")
    click.echo("\n".join(lines))
