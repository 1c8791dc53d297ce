"""The last line of defence between a failure and the user: Ctrl-C and unexpected exceptions as one
line, like every other error.

Real failures are turned into :class:`OverlayError` where they happen, with what was being done;
this guard only catches what slipped through, so a user never reads a traceback. The traceback is
one variable away: ``OVERLAY_VENV_DEBUG=1`` lets it through untouched.
"""

from __future__ import annotations

import os

import click

from .errors import OverlayError
from .oserrors import describe_os_error

DEBUG_VARIABLE = "OVERLAY_VENV_DEBUG"


class Interrupted(OverlayError):
    """Ctrl-C: exit 130 (128 + SIGINT), as a shell reports a command killed by SIGINT."""

    exit_code = 130


def debugging() -> bool:
    return os.environ.get(DEBUG_VARIABLE, "").strip().lower() not in ("", "0", "false", "no", "off")


class GuardedGroup(click.Group):
    """A click group whose commands end in one line whatever they raise (click itself prints a bare
    "Aborted!" for Ctrl-C, and a traceback for anything else)."""

    def make_context(self, *args, **kwargs) -> click.Context:
        try:  # parsing the command line: Ctrl-C here is as early as it gets once click runs
            return super().make_context(*args, **kwargs)
        except KeyboardInterrupt:
            if debugging():
                raise
            raise Interrupted("interrupted (Ctrl-C)") from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            if debugging():
                raise
            # Staging directories were removed as the exception passed (their `with` blocks).
            raise Interrupted("interrupted (Ctrl-C)") from None
        except Exception as exc:
            if debugging():
                raise
            what = describe_os_error(exc)
            raise OverlayError(
                f"unexpected {type(exc).__name__}: {what} (a bug in overlay-venv; run again with "
                f"{DEBUG_VARIABLE}=1 to see where, and report it)"
            ) from None
