from __future__ import annotations

from pathlib import Path

import click


@click.group("kernel")
def command() -> None:
    """Jupyter kernels that run an overlay on its release.

    A Jupyter server starts kernels in its own environment, where the release is not set up. The
    kernel `kernel install` writes runs the overlay's bin/overlay-venv-kernel, which sets up the
    release (or puts back the release's PYTHONPATH, LD_LIBRARY_PATH and PATH recorded at creation),
    activates the overlay and becomes `python -m ipykernel_launcher`.

    \b
    Examples:
        overlay-venv install --overlay myenv ipykernel    # unless the release has ipykernel
        overlay-venv kernel install myenv
        overlay-venv kernel list
        overlay-venv kernel remove myenv
    """


@command.command("install")
@click.argument("name", required=False, type=click.Path(path_type=Path))
@click.option("--name", "kernel_name", metavar="KERNEL", help="Kernel name. Default: the overlay's directory name.")
@click.option("--display-name", metavar="TEXT", help="Name shown in Jupyter. Default: like 'ana (LCG_105, Python 3.11)'.")
@click.option("--user", is_flag=True, help="Write to your Jupyter data directory (the default).")
@click.option("--prefix", metavar="DIR", help="Write to DIR/share/jupyter/kernels (a shared or an environment's prefix).")
@click.option(
    "--setup",
    metavar="COMMAND",
    help="Release setup the kernel runs first (a path to a file is sourced). Default: the one recorded by create --setup.",
)
def install(name: Path | None, kernel_name: str | None, display_name: str | None, user: bool, prefix: str | None, setup) -> None:
    """Write a Jupyter kernelspec that runs the overlay NAME (default: the active one).

    The kernel needs ipykernel from the overlay or the release; this is checked by starting the
    launcher the way a Jupyter server would. The kernelspec goes to $JUPYTER_DATA_DIR/kernels, else
    ~/.local/share/jupyter/kernels (or $XDG_DATA_HOME/jupyter/kernels), or with --prefix DIR to
    DIR/share/jupyter/kernels. Installing again replaces the kernel of the same overlay.

    \b
    Examples:
        overlay-venv kernel install myenv
        overlay-venv kernel install myenv --name ana-lcg105 --display-name 'Analysis (LCG 105)'
        overlay-venv kernel install myenv \\
            --setup 'source /cvmfs/sft.cern.ch/lcg/views/LCG_105/x86_64-el9-gcc12-opt/setup.sh'
        overlay-venv kernel install myenv --prefix /eos/project/ana/jupyter   # JUPYTER_PATH=/eos/.../share/jupyter
    """
    from ..kernel import install_kernel

    if user and prefix:
        raise click.UsageError("--user and --prefix exclude each other")
    result = install_kernel(name, kernel_name, display_name, prefix, setup)
    for note in result.notes:
        click.echo(note, err=True)
    kernel = result.kernel
    click.echo(f"installed kernel {kernel.name!r} ({kernel.display_name}) in {kernel.spec_dir}")
    click.echo(f"it runs {kernel.overlay} with ipykernel from {result.ipykernel}")


@command.command("list")
@click.option("--prefix", "prefixes", multiple=True, metavar="DIR", help="Also look in DIR/share/jupyter/kernels (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of text.")
def list_(prefixes: tuple[str, ...], as_json: bool) -> None:
    """List the kernels written by overlay-venv that Jupyter finds, flagging those that cannot start
    (their overlay is gone or was moved) with what to run.

    Jupyter's search path is read: $JUPYTER_PATH, your data directory, /usr/local/share/jupyter and
    /usr/share/jupyter. `--json` prints objects with name, spec_dir, display_name, overlay, setup,
    ok and problem.

    \b
    Examples:
        overlay-venv kernel list
        overlay-venv kernel list --prefix /eos/project/ana/jupyter --json
    """
    import json
    import os

    from ..kernel import find_kernels, search_dirs

    kernels = find_kernels(search_dirs(dict(os.environ), os.path.expanduser("~"), prefixes))
    if as_json:
        click.echo(json.dumps([kernel.to_json() for kernel in kernels], indent=2))
        return
    if not kernels:
        click.echo("no kernels written by overlay-venv", err=True)
        return
    rows = [(k.name, "ok" if k.problem is None else "broken", k.overlay or "", k.display_name) for k in kernels]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for kernel, row in zip(kernels, rows):
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
        if kernel.problem:
            click.echo(f"  {kernel.name}: {kernel.problem}")


@command.command("remove")
@click.argument("kernel_name", metavar="KERNEL")
@click.option("--prefix", "prefixes", multiple=True, metavar="DIR", help="Also look in DIR/share/jupyter/kernels (repeatable).")
def remove(kernel_name: str, prefixes: tuple[str, ...]) -> None:
    """Remove the kernelspec KERNEL written by overlay-venv (the one Jupyter finds first). The
    overlay is not touched; kernels written by other tools are refused.

    \b
    Examples:
        overlay-venv kernel remove myenv
        overlay-venv kernel remove ana-lcg105 --prefix /eos/project/ana/jupyter
    """
    import os

    from ..kernel import remove_kernel, search_dirs

    dirs = search_dirs(dict(os.environ), os.path.expanduser("~"), prefixes)
    kernel = remove_kernel(kernel_name, dirs)
    click.echo(f"removed kernel {kernel.name!r} ({kernel.spec_dir})")
