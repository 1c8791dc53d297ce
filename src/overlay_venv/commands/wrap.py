from __future__ import annotations

import shlex
from pathlib import Path

import click


@click.command("wrap")
@click.argument("name", type=click.Path(path_type=Path))
@click.option(
    "-o", "--output", required=True, type=click.Path(path_type=Path), help="Job script to write ('-': standard output)."
)
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option(
    "--setup",
    metavar="COMMAND",
    help="Release setup the job runs first (a path to a file is sourced). Default: the one recorded by "
    "create --setup; activation runs a --keep-setup one anyway. --setup '' runs none.",
)
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED)
def command(name: Path, output: Path, force: bool, setup: str | None, cmd: tuple[str, ...]) -> None:
    """Write a job script that runs CMD inside the overlay NAME on a batch worker.

    The script is plain POSIX sh and needs no overlay-venv on the worker, only the release and the
    overlay at the same paths: it sets up the release (if one is recorded, and the job's environment
    lacks it), activates the overlay and replaces itself with CMD. Arguments given to the script are
    appended to CMD. Submit it as it is: `sbatch job.sh`, or `executable = job.sh` for HTCondor.
    Each step of a pipeline can use its own overlay.

    \b
    Examples:
        overlay-venv wrap myenv -o job.sh -- python analyse.py --year 2024
        sbatch --array=1-100 job.sh                     # $SLURM_ARRAY_TASK_ID is in the environment
        overlay-venv wrap myenv -o job.sh \\
            --setup 'source /cvmfs/sft.cern.ch/lcg/views/LCG_105/x86_64-el9-gcc12-opt/setup.sh' -- python fit.py
        overlay-venv wrap plots -o plot.sh --force -- python plot.py    # another step, another overlay
    """
    from ..batch import render_job, write_job
    from ..metadata import find_overlay

    overlay = find_overlay(name)
    text, notes = render_job(overlay, list(cmd), setup)
    for note in notes:
        click.echo(note, err=True)
    if str(output) == "-":
        click.echo(text, nl=False)
        return
    write_job(text, output, force)
    click.echo(f"wrote {click.format_filename(str(output))}: runs {shlex.join(cmd)} in {overlay}")
