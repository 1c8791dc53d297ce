from __future__ import annotations

import click


@click.command("gc")
@click.argument("store", type=click.Path(file_okay=False, exists=True))
@click.option(
    "--older-than",
    "days",
    type=click.FloatRange(min=0),
    default=0,
    metavar="DAYS",
    help="Only ids published more than DAYS ago. Default: 0 (every untagged id).",
)
@click.option("-n", "--dry-run", is_flag=True, help="Say what would go; remove nothing.")
def command(store: str, days: float, dry_run: bool) -> None:
    """Remove the ids of STORE that no tag points at, and say what that freed.

    A tagged id is never removed; nor is one you did not publish (its owner or root can). An id is
    renamed away in one step before it is deleted, so no one resolves half of it; jobs already
    running from an untagged id lose it, which --older-than guards against. What killed publishes
    left behind goes too. STORE may be a whole store or one name's directory in it.

    \b
    Examples:
        overlay-venv gc /eos/project/a/ana/store --older-than 30
        overlay-venv gc /eos/project/a/ana/store/team/ana --dry-run
    """
    from pathlib import Path

    from ..pack import human_size
    from ..store import collect

    removed, notes = collect(Path(store).absolute(), days, dry_run)
    for note in notes:
        click.echo(note, err=True)
    verb = "would remove" if dry_run else "removed"
    for item in removed:
        click.echo(f"{verb} {item.name}@{item.id} ({human_size(item.size)})")
    total = sum(item.size for item in removed)
    if removed:
        click.echo(f"{verb} {len(removed)} untagged id{'s' if len(removed) != 1 else ''}, {human_size(total)}")
    else:
        click.echo("nothing to remove: every id is tagged" + (f" or newer than {days:g} days" if days else ""))
