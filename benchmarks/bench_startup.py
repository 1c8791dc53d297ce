#!/usr/bin/env python3
"""Start-up of the ``overlay-venv`` command itself: ``--version``, ``--help`` and each command's
``--help`` against ``python -c pass`` of the same interpreter (issue 17).

overlay-venv runs as a user installs it (``_common.isolated_tool``: a venv that sees only overlay-venv
and its dependencies, so no other ``.pth`` file of this interpreter runs at start); ``python -c pass``
is that venv's interpreter. Rounds are interleaved; each row gives the median wall and CPU (user +
system, of the child) time and the median of per-round CPU ratios against ``python -c pass``.
Target: ``--version`` at most 2x ``python -c pass``. Asserts nothing.

    python benchmarks/bench_startup.py [--rounds 25]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import _common
from _common import Scratch, median, table

TARGET_RATIO = 2.0


def timed_cpu(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``cmd``, output discarded; CPU from the child's own rusage."""
    start = time.perf_counter()
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    error = process.stderr.read()
    process.stderr.close()
    if process.returncode != 0:
        raise SystemExit(f"command failed ({process.returncode}): {' '.join(cmd)}\n{error.decode(errors='replace')}")
    return wall, usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--rounds", type=int, default=25, help="interleaved rounds (default 25)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(_common.ROOT / "src"))
    from overlay_venv.cli import COMMANDS

    with Scratch("bench-startup") as scratch:
        tool = _common.isolated_tool(scratch)
        python = str(tool.parent / "python")
        env = _common.clean_env(scratch)
        load = os.getloadavg()
        print("== overlay-venv start-up: the command installed on its own, against python -c pass ==")
        print(f"python  : {python} -> {sys.executable}")
        print(f"machine : {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in load)} at start")
        print()
        rows = [("python -c pass", [python, "-c", "pass"]), ("--version", [str(tool), "--version"])]
        rows.append(("--help", [str(tool), "--help"]))
        rows += [(f"{name} --help", [str(tool), name, "--help"]) for name in COMMANDS]
        for _, cmd in rows:  # warm-up: bytecode cache filled
            timed_cpu(cmd, env)
        walls: dict[str, list[float]] = {label: [] for label, _ in rows}
        cpus: dict[str, list[float]] = {label: [] for label, _ in rows}
        ratios: dict[str, list[float]] = {label: [] for label, _ in rows}
        for round_number in range(args.rounds):
            order = rows if round_number % 2 == 0 else rows[::-1]
            this_round = {}
            for label, cmd in order:
                wall, cpu = timed_cpu(cmd, env)
                walls[label].append(wall)
                cpus[label].append(cpu)
                this_round[label] = cpu
            for label in this_round:
                ratios[label].append(this_round[label] / max(this_round["python -c pass"], 1e-6))
        print(f"{args.rounds} interleaved rounds; medians")
        print(
            table(
                ["command", "wall ms", "CPU ms", "CPU / python -c pass"],
                [
                    [
                        label,
                        f"{median(walls[label]) * 1000:.1f}",
                        f"{median(cpus[label]) * 1000:.1f}",
                        f"{median(ratios[label]):.2f}x",
                    ]
                    for label, _ in rows
                ],
            )
        )
        ratio = median(ratios["--version"])
        verdict = "meets" if ratio <= TARGET_RATIO else "misses"
        print(f"\n--version: {ratio:.2f}x python -c pass (CPU, median of per-round ratios): {verdict} the {TARGET_RATIO}x target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
