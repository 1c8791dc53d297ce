"""The base interpreter during a cold ``create``: one process that first proves it starts, then
compiles the start-up modules.

virtualenv runs the interpreter with no time limit, so a hung one (a stale NFS or CVMFS mount) would
hang ``create`` for ever: it is started first, and must say it runs code within the probe timeout.
Meanwhile ``create`` imports virtualenv (its slowest import). The same process then waits for the
start-up modules to compile: where bytecode is never written at run time (PYTHONDONTWRITEBYTECODE,
an overlay on a read-only or shared filesystem) every start would otherwise compile them again. One
interpreter start instead of two, and neither waited for alone.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from .errors import OverlayError
from .oserrors import describe_os_error

PROBE_TIMEOUT_VARIABLE = "OVERLAY_VENV_PROBE_TIMEOUT"
DEFAULT_PROBE_TIMEOUT = 60.0
_READY = b"overlay-venv: ready\n"
# Says it runs, then compiles the (source, name to record in the bytecode) pairs it is sent: the
# name is the module's final path, not the staging path it is compiled at.
# py_compile is imported before it says so: while create still imports virtualenv.
_SERVE = (
    "import os, sys, py_compile\n"
    f"sys.stdout.buffer.write({_READY!r}); sys.stdout.flush()\n"
    "items = [os.fsdecode(item) for item in sys.stdin.buffer.read().split(b'\\0') if item]\n"
    "for source, shown in zip(items[::2], items[1::2]):\n"
    "    py_compile.compile(source, dfile=shown)\n"
    # Written and closed: no interpreter teardown for create to wait through (a few ms).
    "os._exit(0)\n"
)


def probe_timeout() -> float:
    try:
        value = float(os.environ.get(PROBE_TIMEOUT_VARIABLE, DEFAULT_PROBE_TIMEOUT))
    except ValueError:
        raise OverlayError(f"{PROBE_TIMEOUT_VARIABLE} must be a number of seconds") from None
    return value if value > 0 else DEFAULT_PROBE_TIMEOUT


def last_error_line(text: str) -> str:
    """The line of a (possibly flattened, repr-escaped) traceback that says what went wrong:
    ``OSError: [Errno 28] No space left on device``; else the text's first line."""
    lines = [line.strip(" '\"") for line in text.replace("\\n", "\n").splitlines() if line.strip(" '\"")]
    for line in reversed(lines):
        head = line.split(":", 1)[0].rsplit(".", 1)[-1]
        if head.endswith(("Error", "Exception", "Exit", "Interrupt")) and head.isidentifier():
            return line
    return lines[0] if lines else "no message"


class BaseInterpreter:
    """``with BaseInterpreter(python, environ, meanwhile) as base: ...; base.compile(pairs)``.
    Entering fails in one line, within the probe timeout, unless ``python`` starts and runs code;
    ``meanwhile`` runs while it starts. Leaving ends the process whatever happened."""

    def __init__(self, interpreter: str, environ: dict[str, str], meanwhile: Callable[[], object] = lambda: None):
        self.interpreter, self.environ, self.meanwhile = interpreter, environ, meanwhile
        self.timeout = probe_timeout()
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> BaseInterpreter:
        try:
            self._proc = subprocess.Popen(
                [self.interpreter, "-I", "-c", _SERVE],
                env=self.environ,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:
            raise OverlayError(f"cannot run the interpreter {self.interpreter}: {describe_os_error(exc)}") from None
        try:
            self.meanwhile()
            self._wait_ready()
        except BaseException:
            self._end()
            raise
        return self

    def _wait_ready(self) -> None:
        import selectors

        deadline = time.monotonic() + self.timeout
        got = b""
        with selectors.DefaultSelector() as selector:
            selector.register(self._proc.stdout, selectors.EVENT_READ)
            while len(got) < len(_READY):
                if not selector.select(max(0.0, deadline - time.monotonic())):
                    raise OverlayError(
                        f"the interpreter {self.interpreter} did not start within {self.timeout:g} s (a hung filesystem?); "
                        f"set {PROBE_TIMEOUT_VARIABLE}=SECONDS to wait longer"
                    )
                chunk = os.read(self._proc.stdout.fileno(), len(_READY) - len(got))
                if not chunk:  # it ended without running our code
                    self._proc.stdin.close()
                    stderr = self._proc.stderr.read()
                    code = self._proc.wait()
                    cause = last_error_line(stderr.decode("utf-8", "replace")) if stderr.strip() else f"exit {code}"
                    raise OverlayError(f"the interpreter {self.interpreter} does not run: {cause}")
                got += chunk

    def compile(self, pairs: list[tuple[Path, Path]]) -> None:
        """Compile each (source, final path) pair; waits for it. A failure only costs the time the
        modules take to compile at each start, so it is ignored."""
        data = b"".join(os.fsencode(str(path)) + b"\0" for pair in pairs for path in pair)
        try:
            self._proc.communicate(data, timeout=self.timeout)
        except (subprocess.TimeoutExpired, OSError):
            pass

    def _end(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                stream.close()
            except OSError:
                pass
        proc.wait()

    def __exit__(self, *exc_info) -> None:
        self._end()
