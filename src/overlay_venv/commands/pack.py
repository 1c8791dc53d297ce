from __future__ import annotations

import shlex
from pathlib import Path

import click


@click.command("pack")
@click.argument("name", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="The .tar.gz archive to write.")
@click.option("--force", is_flag=True, help="Overwrite an existing archive.")
def command(name: Path, output: Path, force: bool) -> None:
    """Pack the overlay NAME into a gzipped tar, to unpack in another directory or on another node
    that has the same release at the same path.

    Editable installs, symlinks that would break at another place and special files are refused,
    each named. The archive holds the overlay's files relative to its top.

    \b
    Examples:
        overlay-venv pack myenv -o myenv.tar.gz
        overlay-venv unpack myenv.tar.gz /scratch/$USER/myenv              # elsewhere
        # without overlay-venv (destination: letters, digits and _ @ % + = , . / - only):
        mkdir -p /scratch/me/myenv && tar xzf myenv.tar.gz -C /scratch/me/myenv
        /scratch/me/myenv/bin/python /scratch/me/myenv/bin/overlay-venv-relocate
    """
    from ..pack import human_size, pack_overlay
    from ..record import find_overlay

    overlay = find_overlay(name)
    result = pack_overlay(overlay, output, force)
    for note in result.notes:
        click.echo(note, err=True)
    where = click.format_filename(str(output))
    click.echo(f"packed {overlay} into {where} ({human_size(result.size)}, {result.members} files and directories)")
    click.echo(f"unpack it with: overlay-venv unpack {shlex.quote(str(output))} DEST")
