"""The one error type commands raise: printed as a single line, with a non-zero exit.

Plain exceptions, not click's: the operations below the commands raise them, and a command answered
without click (``create NAME``, see _entry.py) prints them the same way. The click group hands them to
click as they pass (cli.py), so click's own exit handling and CliRunner see the usual shape.
"""

from __future__ import annotations

from collections.abc import Sequence


class OverlayError(Exception):
    """A user-facing failure: bad input or a state we refuse to touch. Printed as one line.

    ``details`` are lines of explanation that only make sense as lines (which held package pins what,
    and the ways out): printed before the error line, each on its own, so the error itself stays the
    last line (``2>&1 | tail -1``) and stays one line, whatever its cause carried.
    """

    exit_code = 1

    def __init__(self, message: str, details: Sequence[str] = ()):
        super().__init__(message)
        self.message = message
        self.details = tuple(details)

    def __str__(self) -> str:
        return self.message

    def format_message(self) -> str:
        # One line, whatever the cause carried: a multi-line message breaks `2>&1 | tail -1` habits.
        return " ".join(self.message.split("\n"))

    def show(self) -> None:
        """Write the details and the error line to stderr, as click.echo would (messages.write_line)."""
        from .messages import write_line

        for line in self.details:
            write_line(line, err=True)
        write_line(f"overlay-venv: error: {self.format_message()}", err=True)


class UsageError(OverlayError):
    """Options that do not go together, or a command given nothing to do: the same one line as any
    error, with click's usage exit status 2 (a failure while doing the work exits 1)."""

    exit_code = 2
