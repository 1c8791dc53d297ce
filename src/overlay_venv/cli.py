"""The ``overlay-venv`` command group. Each command lives in its own module under ``commands/``."""

from __future__ import annotations

import click

from . import __version__
from .commands.create import create


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="overlay-venv")
def cli() -> None:
    """Virtual environments layered on top of a read-only release.

    Set up the release first (an LCG view, an ATLAS release, a container's /release_setup.sh), then
    build an overlay whose packages win over the release's while the rest of it stays importable:

    \b
        source /cvmfs/sft.cern.ch/lcg/views/LCG_105/x86_64-el9-gcc12-opt/setup.sh
        overlay-venv create myenv
        source myenv/bin/activate
        pip install --upgrade numpy        # the overlay's numpy now shadows the release's
        deactivate                         # back to the release, exactly
    """


cli.add_command(create)


def main() -> None:
    cli(prog_name="overlay-venv")
