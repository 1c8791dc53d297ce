from __future__ import annotations

import shlex
from pathlib import Path

import click


@click.command("unpack")
@click.argument("archive", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.argument("dest", type=click.Path(path_type=Path))
def command(archive: Path, dest: Path) -> None:
    """Unpack an archive made by `overlay-venv pack` into DEST and point the overlay there.

    Every activation script and console-script shebang is written again for DEST, which may be any
    path without a colon or a newline; missing parent directories are created. The overlay is unpacked
    beside DEST (or beside its outermost missing parent) and moved into place, parents and all, when
    complete. The release must be at the same path as where the overlay was packed.

    \b
    Examples:
        overlay-venv unpack myenv.tar.gz /scratch/$USER/myenv
        overlay-venv unpack myenv.tar.gz "$TMPDIR/env" && . "$TMPDIR/env/bin/activate"
    """
    from ..pack import human_size, unpack_overlay

    result = unpack_overlay(archive, dest)
    for note in result.notes:
        click.echo(note, err=True)
    size = human_size(archive.stat().st_size)
    click.echo(f"unpacked {click.format_filename(str(archive))} ({size}) into {result.dest} (packed from {result.source})")
    click.echo(f"activate it with: source {shlex.quote(str(result.dest / 'bin' / 'activate'))}")
