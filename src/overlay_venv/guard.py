"""The last line of defence between a failure and the user: Ctrl-C and unexpected exceptions as one
line, like every other error.

Real failures are turned into :class:`OverlayError` where they happen, with what was being done;
this guard only catches what slipped through, so a user never reads a traceback. The traceback is
one variable away: ``OVERLAY_VENV_DEBUG=1`` lets it through untouched. No click here: the click group
(cli.py) and the command answered without it (``create NAME``, _entry.py) share this one guard.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from .errors import OverlayError
from .oserrors import describe_os_error

DEBUG_VARIABLE = "OVERLAY_VENV_DEBUG"


class Interrupted(OverlayError):
    """Ctrl-C: exit 130 (128 + SIGINT), as a shell reports a command killed by SIGINT."""

    exit_code = 130


def debugging() -> bool:
    return os.environ.get(DEBUG_VARIABLE, "").strip().lower() not in ("", "0", "false", "no", "off")


def interrupted() -> Interrupted:
    return Interrupted("interrupted (Ctrl-C)")


def guarded_call(work: Callable[..., object], *args: object, passthrough: tuple[type[BaseException], ...] = ()):
    """``work(*args)``, with Ctrl-C as :class:`Interrupted` and any unexpected exception as one
    OverlayError line; OverlayError, SystemExit and the ``passthrough`` types (click's own exits)
    pass as they are."""
    try:
        return work(*args)
    except (OverlayError, SystemExit, *passthrough):
        raise
    except KeyboardInterrupt:
        if debugging():
            raise
        # Staging directories were removed as the exception passed (their `with` blocks).
        raise interrupted() from None
    except Exception as exc:
        if debugging():
            raise
        what = describe_os_error(exc)
        raise OverlayError(
            f"unexpected {type(exc).__name__}: {what} (a bug in overlay-venv; run again with "
            f"{DEBUG_VARIABLE}=1 to see where, and report it)"
        ) from None
