from __future__ import annotations

import click


@click.command("publish")
@click.argument("name", type=click.Path())
@click.argument("dest", metavar="STORE/NAME", type=click.Path())
@click.option(
    "-t",
    "--tag",
    "tags",
    multiple=True,
    metavar="TAG",
    help="Point TAG at what was published (repeatable). Default: latest.",
)
def command(name: str, dest: str, tags: tuple[str, ...]) -> None:
    """Publish the overlay NAME into a store as STORE/NAME, under an id that never changes.

    The store gets a relocated, read-only copy (group-readable, others as your umask allows; a
    setgid group directory keeps its group) in STORE/NAME/ids/ID, where ID is derived from the
    overlay's distributions and its base: publishing the same content again copies nothing and says
    so. Then each TAG is pointed at ID in one step. A reader never sees half an id or a tag pointing at
    one; two publishes at once both complete; a killed one leaves nothing visible, and the next publish
    or gc clears what it left. Anyone with OVERLAY_VENV_STORES=STORE then names it team/ana:TAG or
    team/ana@ID wherever an overlay goes (run, wrap, info, list, check, lock, kernel install,
    create --from).

    \b
    Examples:
        overlay-venv publish myenv /eos/project/a/ana/store/team/ana --tag v3 --tag latest
        export OVERLAY_VENV_STORES=/eos/project/a/ana/store
        overlay-venv run team/ana:v3 -- python analyse.py
        overlay-venv wrap team/ana:v3 -o job.sh -- python analyse.py   # the job pins v3's id
    """
    from ..publish import publish
    from ..refs import stores

    result = publish(name, dest, list(tags))
    where = str(result.name_dir)
    short = next(
        (str(result.name_dir.relative_to(store)) for store in stores() if str(result.name_dir).startswith(f"{store}/")),
        None,
    )
    if result.copied:
        click.echo(f"published {where}@{result.id} at {result.path}")
    else:
        click.echo(f"{where}@{result.id} holds this content already; nothing copied")
    for change in result.changes:
        click.echo(change.text())
    if short:
        tag = result.changes[0].tag if result.changes else None
        click.echo(f"use it as: {short}:{tag}  or  {short}@{result.id}" if tag else f"use it as: {short}@{result.id}")
