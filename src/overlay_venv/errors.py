"""The one error type commands raise: printed as a single line, with a non-zero exit."""

from __future__ import annotations

import click


class OverlayError(click.ClickException):
    """A user-facing failure: bad input or a state we refuse to touch. Printed as one line."""

    exit_code = 1

    def format_message(self) -> str:
        # One line, whatever the cause carried: a multi-line message breaks `2>&1 | tail -1` habits.
        return " ".join(self.message.split("\n"))

    def show(self, file=None) -> None:
        click.echo(f"overlay-venv: error: {self.format_message()}", err=True)
