from __future__ import annotations

import click


@click.command("envs")
@click.argument("stores", nargs=-1, metavar="[STORE]...", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def command(stores: tuple[str, ...], as_json: bool) -> None:
    """List the overlays published in the stores: names, tags, ids, base, Python, date and size.

    The stores are STORE... (a store, or one name's directory in it), else those OVERLAY_VENV_STORES
    names. Ids no tag points at are listed too (gc removes them).

    \b
    Examples:
        overlay-venv envs
        overlay-venv envs /eos/project/a/ana/store --json | jq '.[] | select(.tags != [])'
    """
    import json
    from pathlib import Path

    from ..errors import OverlayError
    from ..pack import human_size
    from ..refs import STORES_VARIABLE
    from ..refs import stores as configured
    from ..store import entries

    paths = [Path(store).absolute() for store in stores] or configured()
    if not paths:
        raise OverlayError(f"no store given and {STORES_VARIABLE} names none: overlay-venv envs STORE")
    rows = []
    for store in paths:
        if not store.is_dir():
            raise OverlayError(f"{store} is not a directory")
        rows += [(store, entry) for entry in entries(store)]
    if as_json:
        click.echo(json.dumps([{"store": str(store), **entry.as_json()} for store, entry in rows], indent=2))
        return
    if not rows:
        click.echo(f"nothing published in {', '.join(map(str, paths))}")
        return
    table = [("NAME", "TAGS", "ID", "PYTHON", "BASE", "PUBLISHED", "SIZE")]
    for _store, entry in rows:
        data = entry.as_json()
        size = data["size"]
        table.append(
            (
                entry.name,
                ",".join(entry.tags) or "-",
                entry.id,
                data["python"] or "?",
                data["base"] or "?",
                (data["published"] or "?")[:16].replace("T", " "),
                human_size(size) if isinstance(size, int) else "?",
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
