"""What ``create`` does once its options are parsed, and what it prints: shared by the click command
(commands/create.py) and by _entry.py, which answers a plain ``create NAME`` without loading click.
Nothing here imports click, so both print the same bytes.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from ..create import CreateOptions, create_overlay
from ..messages import write_line as say
from ..release import container_hint


def display_path(path: Path | str) -> str:
    """A path as click.format_filename shows one: bytes that are not UTF-8 (kept by Python as
    surrogate escapes) become U+FFFD, so printing never fails on a strange name."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def activate_line(name: Path) -> str:
    return f"activate it with: source {shlex.quote(str(name) + '/bin/activate')}"


def note_container() -> None:
    """Inside an ATLAS container with no --setup given: say how to build on its release."""
    hint = container_hint()
    if hint:
        say(hint, err=True)


def create_and_report(options: CreateOptions) -> None:
    """Build the overlay ``options`` describe, then say what was made and how to activate it."""
    record, built = create_overlay(options)
    where = display_path(options.dest)
    base = record.base
    if not built:
        say(f"overlay {where} already exists on {base.implementation} {base.version}; nothing to do")
        return
    say(f"created overlay {where} on {base.implementation} {base.version} ({base.interpreter})")
    say(activate_line(options.dest))


def plain_create(options: CreateOptions) -> None:
    """``overlay-venv create NAME`` with no option but _entry.PLAIN_FLAGS, answered without click
    (whose import is a third of a warm create): what the click command runs for that command line,
    under the same guard and with the same one-line errors. tests/test_quick_create.py holds the two
    to the same options, output and exit status."""
    from ..errors import OverlayError
    from ..guard import guarded_call

    def create() -> None:
        note_container()  # no --setup given
        create_and_report(options)

    try:
        guarded_call(create)
    except OverlayError as error:
        error.show()
        sys.exit(error.exit_code)
