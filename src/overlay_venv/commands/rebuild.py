from __future__ import annotations

import click


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
@click.option("-i", "--index-url", metavar="URL", help="Base URL of the package index.")
@click.option("--extra-index-url", "extra_index_urls", multiple=True, metavar="URL", help="Another index to use (repeatable).")
@click.option("-f", "--find-links", multiple=True, metavar="PATH|URL", help="A directory or page of distributions (repeatable).")
@click.option("--no-index", is_flag=True, help="Use no index, only --find-links locations.")
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

    from ..record import is_overlay
    from ..overlay_lock import command_text, overlay_lock

    sources_given = (index_url, extra_index_urls, find_links, no_index)
    overlay = Path(os.path.abspath(name))
    if not is_overlay(overlay):
        _rebuild(overlay, name, lock_file, wheelhouse, python, sources_given, allow_shadow, quiet)
        return
    # The old overlay stays locked until the new one replaced it: no install lands in it meanwhile.
    with overlay_lock(overlay, command_text(), wait=not no_wait):
        _rebuild(overlay, name, lock_file, wheelhouse, python, sources_given, allow_shadow, quiet)


def _rebuild(overlay, name, lock_file, wheelhouse, python, sources_given, allow_shadow, quiet) -> None:
    import os

    from ..create import CreateOptions, create_overlay
    from ..errors import OverlayError
    from ..layers import align, canonical_name, load_layering
    from ..lock import base_changes, read_lock, version_changes
    from ..lock_pip import base_distributions, overlay_versions, populate_from_requests
    from ..record import is_overlay, read_record
    from ..sources import Sources

    index_url, extra_index_urls, find_links, no_index = sources_given
    exists = is_overlay(overlay)
    record = read_record(overlay) if exists else None
    lock = read_lock(lock_file) if lock_file else None
    if lock is None and record is None:
        raise OverlayError(
            f"{overlay} is not an overlay made by overlay-venv; to create it from a lock's requests, pass --lock FILE"
        )
    requests = list(lock.requests if lock is not None else record.requests)  # type: ignore[union-attr]
    recorded_allowed = lock.allow_shadow if lock is not None else record.allow_shadow  # type: ignore[union-attr]
    allowed = sorted({*recorded_allowed, *(canonical_name(item) for item in allow_shadow)})
    if not requests:
        where = lock_file if lock is not None else f"{overlay}/overlay-venv.json"
        raise OverlayError(
            f"no top-level requests recorded in {where}: rebuild re-installs what `overlay-venv install` was asked for; "
            "use `overlay-venv create --clear` and install again, or `create --from` a lock whose pins still fit"
        )
    given = Sources(
        index_url, tuple(extra_index_urls), tuple(os.path.abspath(f) if "://" not in f else f for f in find_links), no_index
    )
    sources = (lock.sources if lock is not None else Sources()).merged(given)
    if wheelhouse:
        sources = Sources(find_links=(os.path.abspath(wheelhouse),), no_index=True)

    before = overlay_versions(overlay, record.site_packages) if record is not None else {}
    old_base = lock.base.distributions if lock is not None and lock.base is not None else None
    if old_base is None and exists:
        # The base the overlay was built on: without PYTHONPATH here, the layers fall back to the
        # recorded one, while this shell already has the new release. Gone with the old release
        # (its interpreter moved), it cannot be read: then no base line is printed.
        old_env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        try:
            old_base = base_distributions(load_layering(overlay, old_env))
        except (OverlayError, OSError):
            old_base = None
    options = CreateOptions(
        dest=overlay,
        python=python,
        clear=exists,
        populate=populate_from_requests(requests, sources, quiet, overlay, allowed),
    )
    if record is not None:
        options.prompt = record.prompt
        options.system_site_packages = record.system_site_packages
        options.setup = record.base.setup
        options.keep_setup = record.base.keep_setup
    new_record, _ = create_overlay(options)

    after = overlay_versions(overlay, new_record.site_packages)
    click.echo(f"rebuilt {name} on {new_record.base.implementation} {new_record.base.version} ({new_record.base.interpreter})")
    rows = version_changes(before, after)
    if rows:
        for line in align([["package", "before", "after"], *[list(row) for row in rows]]):
            click.echo(line)
    else:
        click.echo("no version changed")
    if old_base is not None:
        changes = base_changes(old_base, base_distributions(load_layering(overlay)))
        if changes:
            click.echo(f"base: {', '.join(changes)}")
    click.echo(f"record the new versions with: overlay-venv lock {name} -o FILE")
