from __future__ import annotations

from pathlib import Path

import click


@click.command("run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("name", type=click.Path(path_type=Path))
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED)
def command(name: Path, cmd: tuple[str, ...]) -> None:
    """Run CMD inside the overlay NAME, without sourcing anything.

    The overlay's bin/activate runs first in /bin/sh (and with it the release setup kept with
    --keep-setup), then the shell replaces itself with CMD: CMD gets this process's signals and its
    exit status is overlay-venv's. Options end at NAME; `--` before CMD is optional. Entries of an
    overlay active in this environment are dropped, not duplicated. A CMD not found on PATH (the
    overlay's bin/ first) exits 127.

    \b
    Examples:
        overlay-venv run myenv -- python -c 'import numpy; print(numpy.__version__)'
        overlay-venv run myenv -- pytest -x tests/
        overlay-venv run /cvmfs/.../envs/analysis -- python analyse.py --input "$FILE"   # in a job script
    """
    from ..jobs import exec_in_overlay

    # Options end at NAME, so `--` arrives here; it is optional and only the first one is ours.
    args = list(cmd[1:] if cmd[:1] == ("--",) else cmd)
    if not args:
        raise click.UsageError("no command given after NAME")
    exec_in_overlay(name, args)
