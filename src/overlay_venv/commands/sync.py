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
def command(name: str, lock_file: str, wheelhouse: str | None, dry_run: bool) -> None:
    """Make the overlay NAME hold exactly the distributions locked in FILE.

    Installs what is missing, changes what differs, then removes what FILE does not lock (pip stays);
    the base is never touched. Every artifact is fetched and checked against its sha256 before the
    overlay changes, and installed with hashes required, no dependency resolution and nothing built:
    a tampered or missing artifact, or an sdist, leaves the overlay as it was. Should pip fail later,
    the error says whether the overlay changed.

    \b
    Examples:
        overlay-venv sync myenv pylock.toml
        overlay-venv sync myenv pylock.toml --wheelhouse /shared/wheelhouse   # no index access
        overlay-venv sync myenv pylock.toml --dry-run
    """
    import os
    from pathlib import Path

    from ..lock import parse_lock, plan_sync
    from ..lock_pip import install_lock, overlay_versions, remember_requests
    from ..metadata import find_overlay, read_record

    overlay = find_overlay(Path(name))
    lock = parse_lock(Path(lock_file).read_text(encoding="utf-8"), lock_file)
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
    )
    remember_requests(overlay, lock.requests, lock.allow_shadow)
    click.echo(f"synced {overlay} to {lock_file}:")
    click.echo("\n".join(lines))
