"""The ``overlay-venv`` command group. Each command lives in its own module under ``commands/``.

Commands load lazily (as pip's ``commands_dict``): :data:`COMMANDS` names each command's module and
the one-line summary ``overlay-venv --help`` shows, so ``--help``, ``--version`` and each command import
only what they use. A new command is a module under ``commands/`` defining ``command`` plus one line
here; a test checks that the two agree.
"""

from __future__ import annotations

import importlib
import os

import click

from . import __version__
from .errors import OverlayError
from .guard import debugging, guarded_call, interrupted

# name -> summary, in the order `overlay-venv --help` lists them: the everyday flow first. The module
# is overlay_venv.commands.<name>; the summary is the first sentence of the command's own help.
COMMANDS = {
    "create": "Create the overlay NAME on top of the release set up in this shell.",
    "info": "Show what the overlay NAME (default: the active one) was built on, and whether this shell still has that release.",
    "list": "List distributions by layer, with the copies they shadow.",
    "check": "Find requirements the overlay breaks, and imports with --imports.",
    "install": "Install packages into the overlay without breaking the base.",
    "lock": "Lock the overlay NAME (default: the active one) to the exact artifacts it holds.",
    "sync": "Make the overlay NAME hold exactly the distributions locked in FILE.",
    "rebuild": "Recreate the overlay NAME on the current base from its top-level requests.",
    "run": "Run CMD inside the overlay NAME, without sourcing anything.",
    "wrap": "Write a job script that runs CMD inside the overlay NAME on a batch worker.",
    "kernel": "Jupyter kernels that run an overlay on its release.",
    "pack": (
        "Pack the overlay NAME into a gzipped tar, to unpack in another directory or on another node that has "
        "the same release at the same path."
    ),
    "unpack": "Unpack an archive made by `overlay-venv pack` into DEST and point the overlay there.",
    "publish": "Publish the overlay NAME into a store as STORE/NAME, under an id that never changes.",
    "tag": "Point the tags TAG... of a published name at the id REF resolves to.",
    "envs": "List the overlays published in the stores: names, tags, ids, base, Python, date and size.",
    "gc": "Remove the ids of STORE that no tag points at, and say what that freed.",
    "completion": "Print the shell completion script for SHELL (bash, zsh or fish).",
}


class Shown(click.ClickException):
    """An OverlayError handed to click, which prints it (our one line) and exits with its status, as
    it does for its own errors; CliRunner sees the same."""

    def __init__(self, error: OverlayError):
        super().__init__(error.format_message())
        self.error = error
        self.exit_code = error.exit_code

    def show(self, file=None) -> None:
        self.error.show()


class GuardedGroup(click.Group):
    """A click group whose commands end in one line whatever they raise (click itself prints a bare
    "Aborted!" for Ctrl-C, and a traceback for anything else): guard.py's guard, then our errors
    handed to click."""

    def make_context(self, *args, **kwargs) -> click.Context:
        try:  # parsing the command line: Ctrl-C here is as early as it gets once click runs
            return super().make_context(*args, **kwargs)
        except KeyboardInterrupt:
            if debugging():
                raise
            raise Shown(interrupted()) from None

    def invoke(self, ctx: click.Context):
        try:
            return guarded_call(super().invoke, ctx, passthrough=CLICK_EXITS)
        except OverlayError as error:
            raise Shown(error) from None


CLICK_EXITS = (click.ClickException, click.exceptions.Exit, click.exceptions.Abort)


class LazyGroup(GuardedGroup):
    """A group whose commands are imported when used, and listed in ``--help`` from :data:`COMMANDS`;
    Ctrl-C and unexpected failures end in one line (guard.py)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        return importlib.import_module(f"{__package__}.commands.{name}").command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl(list(COMMANDS.items()))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


def main() -> None:
    if "_OVERLAY_VENV_COMPLETE" in os.environ:  # a shell asking for completions: add store references
        from .completion import register

        register()
    cli(prog_name="overlay-venv")
