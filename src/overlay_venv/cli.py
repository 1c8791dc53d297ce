"""The ``overlay-venv`` command group. Each command lives in its own module under ``commands/``.

A module there that defines ``command`` (a click command) is part of the CLI; ``ORDER`` sets how
``--help`` lists them. Command modules import their heavy dependencies inside the command body, so
discovering them costs almost nothing.
"""

from __future__ import annotations

import importlib
import pkgutil

import click

from . import __version__, commands

# The order of `overlay-venv --help`: the everyday flow first.
ORDER = ["create", "info", "list", "check", "install", "lock", "sync", "rebuild", "run", "wrap", "kernel", "pack", "unpack"]


class OrderedGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        names = super().list_commands(ctx)
        return sorted(names, key=lambda name: (ORDER.index(name) if name in ORDER else len(ORDER), name))


@click.group(cls=OrderedGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


for _info in pkgutil.iter_modules(commands.__path__):
    _module = importlib.import_module(f"{commands.__name__}.{_info.name}")
    if isinstance(getattr(_module, "command", None), click.Command):
        cli.add_command(_module.command)


def main() -> None:
    cli(prog_name="overlay-venv")
