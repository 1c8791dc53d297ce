"""Console-script entry point. Imports nothing but the standard library before it has cleaned sys.path.

overlay-venv is run right after a release was set up, so PYTHONPATH points at the release's
site-packages, which may hold its own (older, or other-Python) click, jinja2 or virtualenv. Those
entries are dropped from this process's sys.path before any dependency is imported; the environment
itself is left alone, so interpreters we start still see the release.
"""

from __future__ import annotations

import atexit
import os
import sys


def _drop_pythonpath_entries() -> None:
    pythonpath = os.environ.get("PYTHONPATH")
    if not pythonpath or sys.flags.ignore_environment:
        return
    from_env = {os.path.abspath(item) for item in pythonpath.split(os.pathsep) if item}
    sys.path[:] = [item for item in sys.path if not item or os.path.abspath(item) not in from_env]


# What click's version_option prints for `--version` (cli.py: prog_name and __version__), written here
# without importing click: the answer costs a bare interpreter start instead of ~60 ms of imports.
# tests/test_cli.py checks both paths print the same bytes with the same exit status.
VERSION_LINE = "overlay-venv, version {version}\n"


def _version_fast_path() -> bool:
    """``overlay-venv --version`` alone, and no shell asking for completions (click answers those)."""
    if sys.argv[1:] != ["--version"] or "_OVERLAY_VENV_COMPLETE" in os.environ:
        return False
    from . import __version__

    if sys.stdout is None:  # stdout closed: click.echo writes nothing, and the status stays 0
        return True
    try:
        sys.stdout.write(VERSION_LINE.format(version=__version__))
        sys.stdout.flush()
    except BrokenPipeError:
        # As click's main: a reader gone is exit 1 without a word; what is still buffered goes to
        # /dev/null, so the interpreter's last flush does not complain either (Python's advice).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    return True


# The options of `create` that take no value and mean something alone, as the CreateOptions field
# each sets (the click command's own mapping; tests/test_quick_create.py holds them to it).
PLAIN_FLAGS = {
    "--clear": ("clear", True),
    "--no-cache": ("cache", False),
    "--no-pip": ("pip", False),
    "--system-site-packages": ("system_site_packages", True),
    "--no-system-site-packages": ("system_site_packages", False),
}


def plain_create_fields(args: list[str]) -> dict | None:
    """For ``create ARGS`` of one NAME (not empty, not starting with "-") and flags of
    :data:`PLAIN_FLAGS` before or after it: the CreateOptions fields they set (the last of two
    contrary flags wins, as in click). None for anything else, which click parses and explains."""
    names = [arg for arg in args if arg not in PLAIN_FLAGS]
    if len(names) != 1 or names[0][:1] in ("", "-"):
        return None
    if os.path.exists(names[0]) and not os.access(names[0], os.R_OK):
        return None  # click refuses an unreadable NAME as a usage error: its words, its status
    return {"dest": names[0], **dict(PLAIN_FLAGS[arg] for arg in args if arg in PLAIN_FLAGS)}


def _plain_create() -> bool:
    """``overlay-venv create NAME``, the everyday form (with the flags of :data:`PLAIN_FLAGS` too),
    and no shell asking for completions: answered by commands/created.py without importing click.
    Any other option, a NAME that looks like one, or anything else goes to click, which parses and
    explains it."""
    args = sys.argv[1:]
    if not args or args[0] != "create" or "_OVERLAY_VENV_COMPLETE" in os.environ:
        return False
    fields = plain_create_fields(args[1:])
    if fields is None:
        return False
    from pathlib import Path

    from .commands.created import plain_create
    from .create import CreateOptions

    plain_create(CreateOptions(**{**fields, "dest": Path(fields["dest"])}))
    return True


def main() -> None:
    """The console script (and ``python -m overlay_venv``): the command, then a quick exit."""
    try:
        run()
    except SystemExit as done:
        _exit_now(done.code)
        raise
    _exit_now(None)


def _exit_now(code: object) -> None:
    """End the process at once with ``code``, skipping the interpreter's teardown of every module
    (~12 ms of a warm create, ~26 ms once virtualenv is loaded, for nothing: the command is over).
    Python's own exit first joins the threads it waits for, then runs the atexit callbacks (logging's,
    which virtualenv imports, flushes its handlers), then flushes stdout and stderr; so does this: with
    a thread that Python would wait for, it leaves the exit to Python; the callbacks run here, in
    Python's order and once (atexit forgets them); the streams are flushed, and if that fails (a reader
    gone, a full disk) the usual exit says what it always said. Every file we write is closed by a
    ``with`` before a command returns, and the janitor ends with our pipe, as after any exit.
    """
    if code is not None and not isinstance(code, int):
        return  # SystemExit("message"): Python prints it
    threading = sys.modules.get("threading")
    if threading is not None and any(not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        return
    run_callbacks = getattr(atexit, "_run_exitfuncs", None)
    if run_callbacks is None:  # not CPython: leave the exit to the interpreter
        return
    try:
        run_callbacks()
    except BaseException:  # noqa: BLE001 - Python 3.9 re-raises a callback's error after reporting it;
        pass  # Python's own exit reports it too and goes on (3.10 on only report)
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return
    os._exit(code or 0)


def run() -> None:
    """The command, returning or raising SystemExit as click does (tests drive this in-process)."""
    if _version_fast_path():
        return
    _drop_pythonpath_entries()
    try:
        if _plain_create():
            return
        from .cli import main as cli_main

        cli_main()
    except KeyboardInterrupt:
        # Ctrl-C while the CLI is still being imported (once a command runs, cli's group turns it
        # into the same line); OVERLAY_VENV_DEBUG=1 keeps the traceback.
        if os.environ.get("OVERLAY_VENV_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off"):
            raise
        sys.stderr.write("overlay-venv: error: interrupted (Ctrl-C)\n")
        sys.exit(130)
    finally:
        # The command is over and its exit status decided: a Ctrl-C now, while the interpreter
        # shuts down, would otherwise end the process by SIGINT with no word (CPython re-raises an
        # interrupt during finalization as the signal), turning a finished command into a failure.
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)
