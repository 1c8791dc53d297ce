from __future__ import annotations

from pathlib import Path

import click

from .options import installer_options


@click.command("create")
@click.argument("name", type=click.Path(path_type=Path))
@click.option(
    "--python",
    "python",
    metavar="PATH",
    help="Interpreter to build on. Default: the python3 first on PATH (after setup, the release's).",
)
@click.option("--prompt", help="Name shown in the shell prompt while active. Default: the directory name.")
@click.option("--clear", is_flag=True, help="Replace an existing overlay (never a directory that is not one).")
@click.option("--no-pip", "pip", flag_value=False, default=True, help="Do not seed pip into the overlay.")
@click.option(
    "--setup",
    metavar="COMMAND",
    help="Release setup to run first (in bash); the overlay is built on the interpreter and PYTHONPATH it leaves. "
    "A path to a file is sourced.",
)
@click.option(
    "--keep-setup", is_flag=True, help="Make activation run the --setup command first, so a fresh shell needs one step."
)
@click.option(
    "--system-site-packages/--no-system-site-packages",
    default=True,
    show_default=True,
    help="Let the overlay see the interpreter's own site-packages.",
)
@click.option(
    "--no-cache",
    "no_cache",
    is_flag=True,
    help="Run virtualenv even when a skeleton of its result for this interpreter is cached "
    "(~/.cache/overlay-venv/skeletons), and keep none. Also: OVERLAY_VENV_NO_CACHE=1.",
)
@click.option(
    "--from",
    "lock_file",
    type=click.Path(dir_okay=False),
    metavar="FILE|REF",
    help="Fill the overlay with exactly the distributions locked in FILE (a pylock.toml from `overlay-venv lock`), "
    "hashes required, no dependency resolution. A published REF (team/ana:v3): a private copy of it.",
)
@click.option(
    "--on",
    "on",
    metavar="LOWER",
    help="Stack the overlay on the overlay LOWER (a path, or a published REF): imports come from NAME, then LOWER "
    "(and the overlays under it), then the release. Built on LOWER's interpreter; LOWER is only read.",
)
@click.option(
    "--wheelhouse",
    type=click.Path(exists=True, file_okay=False),
    metavar="DIR",
    help="With --from: take every artifact from DIR; no index is used.",
)
@installer_options
def command(
    name: Path,
    python: str | None,
    prompt: str | None,
    clear: bool,
    pip: bool,
    setup: str | None,
    keep_setup: bool,
    system_site_packages: bool,
    no_cache: bool,
    lock_file: str | None,
    wheelhouse: str | None,
    installer: str | None,
    use_uv: bool,
    on: str | None,
) -> None:
    """Create the overlay NAME on top of the release set up in this shell.

    The overlay is built beside NAME and moved into place only when complete; pip comes from
    virtualenv's embedded wheels, so no network is needed. The first create on an interpreter runs
    virtualenv and keeps what it built in ~/.cache/overlay-venv/skeletons; later ones start from
    that, hard-linking pip's files where the filesystem allows.

    \b
    Examples:
        overlay-venv create myenv
        overlay-venv create myenv --python /cvmfs/sft.cern.ch/lcg/views/LCG_105/x86_64-el9-gcc12-opt/bin/python3
        overlay-venv create myenv --clear --prompt analysis
        overlay-venv create myenv --no-cache                                 # always run virtualenv
        overlay-venv create myenv --keep-setup \\
            --setup 'source /cvmfs/sft.cern.ch/lcg/views/LCG_105/x86_64-el9-gcc12-opt/setup.sh'
        overlay-venv create myenv --keep-setup --setup /release_setup.sh     # in an ATLAS container
        overlay-venv create myenv --from pylock.toml                         # exactly what was locked
        overlay-venv create myenv --from pylock.toml --wheelhouse /shared/wheelhouse   # no index access
        overlay-venv create myenv --from team/ana:v3                         # a private copy of a published one
        overlay-venv create myenv --on /eos/project/a/ana/team-env           # stacked on a team overlay
        overlay-venv create myenv --on team/ana:v3                           # on a published one (pinned)

    Aliases such as setupATLAS exist only in interactive login shells; give the sourceable form:
    --setup 'source "$ATLAS_LOCAL_ROOT_BASE/user/atlasLocalSetup.sh"' and asetup on a second line.
    """
    # Imported here, once the arguments are known to be right: --help needs none of it.
    from ..create import CreateOptions
    from .created import create_and_report, note_container

    if setup is None:
        note_container()
    populate = None
    if on is not None and lock_file and _is_reference(lock_file):
        raise click.UsageError("--on goes with --from FILE (a lock), not with a published REF (a copy of it)")
    if lock_file and _copy_of_reference(name, lock_file, clear):  # --from team/ana:v3
        return
    if lock_file:
        from ..backends import chosen_backend
        from ..lock import read_lock
        from ..operations.apply_lock import prepare_create_from
        from ..stack import on_from_lock

        # A stacked overlay's lock goes on its LOWER, refused when that is gone or changed.
        on = on_from_lock(read_lock(lock_file).lowers, on, lock_file)

        chosen = chosen_backend(installer, use_uv).name
        populate = prepare_create_from(name, lock_file, wheelhouse, pip=pip, clear=clear, installer=chosen)
        if populate is None:  # the overlay is there and already holds exactly the lock
            click.echo(f"overlay {click.format_filename(str(name))} already matches {lock_file}; nothing to do")
            return
    elif wheelhouse:
        raise click.UsageError("--wheelhouse goes with --from FILE")
    create_and_report(
        CreateOptions(
            dest=name,
            python=python,
            prompt=prompt,
            system_site_packages=system_site_packages,
            pip=pip,
            clear=clear,
            setup=setup,
            keep_setup=keep_setup,
            cache=not no_cache,
            populate=populate,
            on=on,
        )
    )


def _is_reference(value: str) -> bool:
    from ..publish import is_reference_argument

    return is_reference_argument(value)


def _copy_of_reference(name: Path, value: str, clear: bool) -> bool:
    """``--from REF``: copy the published overlay REF to NAME (publish.py); False for a lock file,
    which must then exist."""
    import os

    from ..publish import is_reference_argument, private_copy

    if not is_reference_argument(value):
        if not os.path.isfile(value):
            message = f"File {value!r} does not exist (nor is it a reference team/ana:TAG)."
            raise click.BadParameter(message, param_hint="'--from'")
        return False
    from .created import activate_line

    _dest, pinned = private_copy(value, name, clear)
    click.echo(f"created overlay {click.format_filename(str(name))} as a private copy of {pinned}")
    click.echo(activate_line(name))
    return True
