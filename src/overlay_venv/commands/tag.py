from __future__ import annotations

import click


@click.command("tag")
@click.argument("ref", metavar="REF")
@click.argument("tags", nargs=-1, required=True, metavar="TAG...")
def command(ref: str, tags: tuple[str, ...]) -> None:
    """Point the tags TAG... of a published name at the id REF resolves to.

    REF is team/ana@ID, or a tag (team/ana:v3) whose current id is taken. Each tag moves in one
    rename: a reader resolves the old id or the new one, never neither. Jobs written by `wrap` keep
    the id they were written with (unless --follow-tag).

    \b
    Examples:
        overlay-venv tag team/ana@3f2a9c0d1e4b5a67 latest
        overlay-venv tag team/ana:v3 stable prod          # stable and prod: wherever v3 points now
        overlay-venv tag /eos/project/a/ana/store/team/ana@3f2a latest
    """
    from ..errors import OverlayError
    from ..refs import looks_like_reference, resolve, tag_problem
    from ..store import set_tags

    if not looks_like_reference(ref):
        raise OverlayError(f"{ref!r} is no reference: name an id (team/ana@ID) or a tag (team/ana:v3)")
    for tag in tags:
        problem = tag_problem(tag)
        if problem:
            raise OverlayError(problem)
    resolved = resolve(ref)
    for change in set_tags(resolved.name_dir, resolved.id, list(dict.fromkeys(tags))):
        click.echo(f"{resolved.reference.name}: {change.text()}")
