from __future__ import annotations

import shlex
from pathlib import Path

import click


@click.command("wrap")
@click.argument("name", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="Job script to write ('-': standard output); with --condor, the submit description FILE.sub "
    "(the job script is FILE.sh).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option(
    "--setup",
    metavar="COMMAND",
    help="Release setup the job runs first (a path to a file is sourced). Default: the one recorded by "
    "create --setup; activation runs a --keep-setup one anyway. --setup '' runs none.",
)
@click.option("--ship", is_flag=True, help="Ship the overlay with the job: a pack beside the script, unpacked on the worker.")
@click.option("--embed", is_flag=True, help="Like --ship, with the pack carried inside the job script itself.")
@click.option(
    "--ship-dir",
    metavar="DIR",
    help="Where on the worker the shipped overlay is cached. Default: $_CONDOR_SCRATCH_DIR, $SLURM_TMPDIR, $TMPDIR, /tmp.",
)
@click.option("--condor", is_flag=True, help="Also write an HTCondor submit description (-o FILE.sub).")
@click.option("--jobs", type=click.IntRange(min=1), metavar="N", help="With --condor: queue N jobs, each given its number.")
@click.option(
    "--follow-tag",
    is_flag=True,
    help="NAME is a published team/ana:TAG: each job takes the id the tag points at when it starts, "
    "instead of the id it points at now.",
)
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED)
def command(
    name: Path,
    output: Path,
    force: bool,
    setup: str | None,
    ship: bool,
    embed: bool,
    ship_dir: str | None,
    condor: bool,
    jobs: int | None,
    follow_tag: bool,
    cmd: tuple[str, ...],
) -> None:
    """Write a job script that runs CMD inside the overlay NAME on a batch worker.

    The script is plain POSIX sh and needs no overlay-venv on the worker, only the release and the
    overlay at the same paths: it sets up the release (if one is recorded, and the job's environment
    lacks it), activates the overlay and replaces itself with CMD. Arguments given to the script are
    appended to CMD. Submit it as it is: `sbatch job.sh`, or `executable = job.sh` for HTCondor.
    Each step of a pipeline can use its own overlay.

    With --ship the worker needs only the release: the overlay is packed beside the script (or, with
    --embed, inside it), and the first job on a node unpacks it into a cache in the node's scratch
    directory, which later jobs on that node reuse. --condor also writes the HTCondor submit
    description, with the pack among the transferred files and the submitter's environment left out.

    A published NAME (team/ana:v3) is pinned to the id v3 points at now, so every job of an array runs
    the same overlay even if v3 moves meanwhile; --follow-tag writes the tag instead.

    \b
    Examples:
        overlay-venv wrap myenv -o job.sh -- python analyse.py --year 2024
        sbatch --array=1-100 job.sh                     # $SLURM_ARRAY_TASK_ID is in the environment
        overlay-venv wrap myenv -o job.sh \\
            --setup 'source /cvmfs/sft.cern.ch/lcg/views/LCG_105/x86_64-el9-gcc12-opt/setup.sh' -- python fit.py
        overlay-venv wrap plots -o plot.sh --force -- python plot.py    # another step, another overlay
        overlay-venv wrap myenv --ship -o job.sh -- python analyse.py   # the overlay travels with the job
        overlay-venv wrap myenv --condor --ship --jobs 100 -o job.sub -- python analyse.py --part
        condor_submit job.sub                           # job N runs: python analyse.py --part N
        overlay-venv wrap team/ana:v3 -o job.sh -- python analyse.py    # runs v3's id of today
    """
    from ..errors import OverlayError, UsageError
    from ..jobs import render_job, write_job
    from ..oserrors import os_errors_as
    from ..pack import human_size
    from ..record import find_overlay, read_record
    from ..ship import (
        SBATCH_SCRIPT_LIMIT,
        make_shipment,
        render_submit,
        ship_dir_problem,
        ship_problem,
        ship_values,
    )

    ship = ship or embed
    to_stdout = str(output) == "-"
    if ship_dir is not None and not ship:
        raise UsageError("--ship-dir goes with --ship or --embed")
    if jobs is not None and not condor:
        raise UsageError("--jobs goes with --condor (under Slurm, submit with sbatch --array=1-N)")
    if to_stdout and (ship or condor):
        raise UsageError("--ship, --embed and --condor write files: give -o a file name")
    overlay = find_overlay(name)
    if follow_tag:  # the tag's symlink: each job's activation resolves it once (refs.py)
        from ..refs import tag_path

        if ship:
            raise UsageError("--follow-tag cannot go with --ship or --embed, which carry one id")
        overlay = tag_path(name)
    job, submit = output, None
    if condor:
        if output.suffix != ".sub":
            raise OverlayError(f"with --condor, -o names the submit description, FILE.sub (not {str(output)!r})")
        submit = Path(output).absolute()
        job = submit.with_suffix(".sh")
    # A full disk, an unwritable directory, a name too long: one line, nothing half-written.
    with os_errors_as(f"cannot write the job script {str(job)!r}"):
        if not to_stdout:
            job = Path(job).absolute()
            for path in (job, submit):
                if path is not None and (path.exists() or path.is_symlink()) and not force:
                    raise OverlayError(f"{str(path)!r} exists; pass --force to overwrite it")
                if path is not None and not path.parent.is_dir():
                    raise OverlayError(f"directory {str(path.parent)!r} does not exist (create it first)")

        shipment, values = None, None
        if ship:
            for problem in (ship_problem(overlay), ship_dir_problem(ship_dir) if ship_dir is not None else None):
                if problem:
                    raise OverlayError(problem)
            shipment, pack_notes = make_shipment(overlay, job, embed)
            for note in pack_notes:
                click.echo(note, err=True)
            values = ship_values(shipment, read_record(overlay).base.interpreter, ship_dir)
        try:
            text, notes = render_job(overlay, list(cmd), setup, values)
            submit_text = render_submit(submit, job, shipment, jobs or 1) if submit else None
            for note in notes:
                click.echo(note, err=True)
            if to_stdout:
                click.echo(text, nl=False)
                return
            write_job(text, job, force)
            if submit_text is not None:
                write_job(submit_text, submit, force, mode=0o644)
        except BaseException:
            if shipment is not None and shipment.pack is not None:
                shipment.pack.unlink(missing_ok=True)
            raise

    where = click.format_filename(str(output))
    if shipment is None:
        how = f"in {overlay}"
    elif shipment.pack is not None:
        how = f"in {overlay}, shipped as {shipment.pack.name} beside it ({human_size(shipment.pack.stat().st_size)})"
    else:
        how = f"in {overlay}, carried inside it ({human_size(len(text))})"
    click.echo(f"wrote {click.format_filename(str(job))}: runs {shlex.join(cmd)} {how}")
    if shipment is not None and shipment.pack is None and len(text.encode()) > SBATCH_SCRIPT_LIMIT:
        click.echo(
            "note: sbatch refuses batch scripts over 4 MiB unless the site raised max_script_size; "
            "for Slurm, use --ship (a pack beside the script) instead of --embed",
            err=True,
        )
    if submit is not None:
        click.echo(f"wrote {where}: submit it with: condor_submit {shlex.quote(str(output))}")
