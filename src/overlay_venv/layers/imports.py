"""``check --imports``: import modules in fresh interpreters of the overlay, several at a time."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

from .model import Distribution, Layering
from .present import copy_json
from .requirements import shadowed_dependents
from .scan import top_level_modules

# Imports one module by name in a fresh interpreter. The `-c` entry (the current directory) is dropped
# first: a source checkout in the caller's directory must not stand in for the installed module.
_IMPORT = (
    "import importlib, sys\nif not getattr(sys.flags, 'safe_path', False): del sys.path[0]\nimportlib.import_module(sys.argv[1])"
)


@dataclass(frozen=True)
class ImportResult:
    distribution: Distribution
    module: str
    ok: bool
    error: str  # the exception's last line, or why the interpreter stopped; "" when ok
    timed_out: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "distribution": {"name": self.distribution.name, **copy_json(self.distribution.effective)},
            "error": self.error,
            "timed_out": self.timed_out,
        }


def _import_one(python: str, environ: Mapping[str, str], dist: Distribution, module: str, timeout: float) -> ImportResult:
    try:
        result = subprocess.run(
            [python, "-c", _IMPORT, module],
            env=dict(environ),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return ImportResult(dist, module, False, f"timed out after {timeout:g} s", timed_out=True)
    except OSError as exc:
        return ImportResult(dist, module, False, f"cannot run {python}: {exc}")
    if result.returncode == 0:
        return ImportResult(dist, module, True, "")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if result.returncode < 0:
        import signal

        try:
            why = f"killed by {signal.Signals(-result.returncode).name}"
        except ValueError:
            why = f"killed by signal {-result.returncode}"
        return ImportResult(dist, module, False, why)
    return ImportResult(dist, module, False, lines[-1].strip() if lines else f"exit status {result.returncode}")


def import_targets(layering: Layering) -> list[tuple[Distribution, str]]:
    """(distribution, module) pairs for ``check --imports``: the top-level modules of every effective
    distribution outside the overlay whose dependencies the overlay shadows."""
    targets = []
    for dist, _deps in shadowed_dependents(layering.distributions, layering.marker_environment):
        for module in top_level_modules(dist.effective):
            targets.append((dist, module))
    return targets


def run_imports(
    layering: Layering, targets: list[tuple[Distribution, str]], timeout: float, jobs: Optional[int] = None
) -> list[ImportResult]:
    """Import each module in its own fresh interpreter of the overlay, ``jobs`` at a time; in order."""
    if not targets:
        return []
    from concurrent.futures import ThreadPoolExecutor  # here: it imports logging, which list never needs

    jobs = jobs or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=min(jobs, len(targets))) as pool:
        futures = [pool.submit(_import_one, layering.python, layering.environ, dist, module, timeout) for dist, module in targets]
        return [future.result() for future in futures]
