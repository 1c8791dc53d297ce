from __future__ import annotations

import click

from .options import index_options, installer_options


@click.command("install")
@click.argument("packages", nargs=-1, metavar="[REQUIREMENT]...")
@click.option(
    "--overlay",
    "overlay_path",
    type=click.Path(file_okay=False),
    metavar="PATH",
    help="The overlay to install into. Default: the active one.",
)
@click.option(
    "-r",
    "--requirement",
    "requirement_files",
    multiple=True,
    metavar="FILE",
    help="Install from a requirements file (repeatable).",
)
@click.option(
    "-e", "--editable", "editables", multiple=True, metavar="PATH", help="Install a local project in editable mode (repeatable)."
)
@click.option(
    "-c",
    "--constraint",
    "constraint_files",
    multiple=True,
    metavar="FILE",
    help="Your own constraints file; the packages it names are not held.",
)
@click.option("--pre", is_flag=True, help="Include pre-release and development versions.")
@click.option("-U", "--upgrade", is_flag=True, help="Upgrade the named packages to the newest allowed versions.")
@index_options
@click.option(
    "--allow-shadow",
    multiple=True,
    metavar="NAME",
    help="Let the overlay get its own NAME even though base packages depend on the base's (repeatable).",
)
@installer_options
@click.option("-q", "--quiet", is_flag=True, help="No progress output; only problems and errors.")
@click.option("--no-wait", is_flag=True, help="Fail at once if another command is changing the overlay, instead of waiting.")
def command(
    packages: tuple[str, ...],
    overlay_path: str | None,
    requirement_files: tuple[str, ...],
    editables: tuple[str, ...],
    constraint_files: tuple[str, ...],
    pre: bool,
    upgrade: bool,
    index_url: str | None,
    extra_index_urls: tuple[str, ...],
    find_links: tuple[str, ...],
    no_index: bool,
    allow_shadow: tuple[str, ...],
    installer: str | None,
    use_uv: bool,
    quiet: bool,
    no_wait: bool,
) -> None:
    """Install packages into the overlay without breaking the base.

    Takes what pip takes (requirements, -r, -e, -c and the index options) and runs pip in the overlay,
    with the base visible, so nothing the base already has is copied. Every base package that another
    package depends on is held at the base's version: a new package gets a version that works with
    the base, or nothing is installed. Packages you name are not held (asking for 'numpy>=2' means:
    shadow the base's numpy); --allow-shadow NAME releases one you did not name.

    Before pip runs, the releases of a requested package whose own requirements exclude a held version
    are left out of pip's way (one note line says so), so pip does not backtrack through them; when
    nothing you allow fits, it refuses at once. When no version set fits, it says which base packages
    pin what and what you can do, and leaves the overlay exactly as it was. Afterwards it shows what
    the overlay now shadows and runs the check of `overlay-venv check`. The requests are recorded in NAME/overlay-venv.json.

    All or nothing: if pip fails, is interrupted (Ctrl-C) or the disk fills up, the overlay is rolled
    back to what it was; if overlay-venv is killed, pip dies with it and the next command rolls back.
    One install at a time: a second one waits for the first (or fails with --no-wait).

    Plain `pip install` in an activated overlay still works, unguarded.

    \b
    Examples:
        overlay-venv install tool                            # the active overlay
        overlay-venv install --overlay myenv -r requirements.txt
        overlay-venv install --overlay myenv 'numpy>=2'      # named: shadows the base's numpy
        overlay-venv install tool==2.0 --allow-shadow corelib
        overlay-venv install --overlay myenv --installer uv tool   # uv resolves, all layers in view
        overlay-venv install --no-index -f ./wheels tool
        overlay-venv install --overlay myenv --no-wait tool  # fail, not wait, if myenv is busy
    """
    from pathlib import Path

    from ..backends import IndexOptions, chosen_backend
    from ..errors import UsageError
    from ..operations.install import install
    from ..overlay_lock import command_text, overlay_lock
    from ..record import find_overlay
    from ..requests import read_requests

    if not (packages or requirement_files or editables):
        raise UsageError("nothing to install: name packages, or give -r FILE or -e PATH")
    overlay = find_overlay(Path(overlay_path) if overlay_path else None)
    backend = chosen_backend(installer, use_uv)
    requests = read_requests(packages, requirement_files, editables, constraint_files)
    index = IndexOptions(index_url, tuple(extra_index_urls), tuple(find_links), no_index, pre, upgrade)
    with overlay_lock(overlay, command_text(), wait=not no_wait):
        result = install(overlay, backend, requests, index, allow_shadow, quiet)
    # Shown after the lock is released: a waiting install need not wait for our output.
    _report(result, quiet)


def _report(result, quiet: bool) -> None:
    from ..layers import align, colour_enabled
    from ..messages import warn_all

    changes, problems, new, allow_shadow = result.changes, result.problems, result.new, result.allow_shadow
    colour = colour_enabled()
    warn_all(result.warnings)
    # Shown even with --quiet: the user gets an older release than asked for and should know why.
    for note in result.notes:
        click.echo(note, err=True)
    if not quiet:
        if changes:
            click.echo("the overlay now has:")
            rows, styles = [], []
            for change in changes:
                if change.after is None:
                    rows.append(["  " + change.display_name, f"{change.before} removed"])
                    styles.append([None, "yellow"])
                    continue
                version = change.after if change.before is None else f"{change.after} (was {change.before})"
                hidden = ", ".join(f"{version_} {label}" for version_, label in change.shadows)
                rows.append(["  " + change.display_name, version] + ([f"shadows {hidden}"] if hidden else []))
                styles.append([None, "green", "yellow"])
            for line in align(rows, styles, colour):
                click.echo(line, color=colour)
        else:
            click.echo("nothing to install: the overlay and the base already have it")
    for problem in new:
        click.echo(click.style("broken: ", fg="red", bold=True) + problem.message(), color=colour)
    if new:
        allowed = f" (allowed with --allow-shadow {' '.join(allow_shadow)})" if allow_shadow else ""
        click.echo(f"{len(new)} requirement{'s' if len(new) != 1 else ''} newly broken{allowed}; details: overlay-venv check")
    elif not quiet:
        earlier = f"; {len(problems)} broken before, unchanged (overlay-venv check)" if problems else ""
        click.echo(
            click.style("ok: ", fg="green") + f"nothing newly broken in {len(result.distributions)} distributions{earlier}",
            color=colour,
        )
