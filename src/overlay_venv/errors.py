"""The one error type commands raise: printed as a single line, with a non-zero exit."""

from __future__ import annotations

from collections.abc import Sequence

import click


class OverlayError(click.ClickException):
    """A user-facing failure: bad input or a state we refuse to touch. Printed as one line.

    ``details`` are lines of explanation that only make sense as lines (which held package pins what,
    and the ways out): printed before the error line, each on its own, so the error itself stays the
    last line (``2>&1 | tail -1``) and stays one line, whatever its cause carried.
    """

    exit_code = 1

    def __init__(self, message: str, details: Sequence[str] = ()):
        super().__init__(message)
        self.details = tuple(details)

    def format_message(self) -> str:
        # One line, whatever the cause carried: a multi-line message breaks `2>&1 | tail -1` habits.
        return " ".join(self.message.split("\n"))

    def show(self, file=None) -> None:
        for line in self.details:
            click.echo(line, err=True)
        click.echo(f"overlay-venv: error: {self.format_message()}", err=True)


class UsageError(OverlayError):
    """Options that do not go together, or a command given nothing to do: the same one line as any
    error, with click's usage exit status 2 (a failure while doing the work exits 1)."""

    exit_code = 2
