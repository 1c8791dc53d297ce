#!/usr/bin/env python3
"""What ``source bin/activate; deactivate`` costs in bash: an overlay against a plain venv and a
virtualenv-made venv on the same release, and how many processes activation starts.

Each environment is activated and deactivated CYCLES times (default 200) in one ``bash --norc``, with
PYTHONPATH as the release's setup.sh sets it and a PATH of ~25 entries, as after setting up a
software stack. The same loop with ``:`` instead is subtracted (bash start-up and loop overhead).
Measurements are repeated and interleaved; medians are reported. The verdict uses the median of the
per-round ratios (each round times every environment back to back, so a burst of load from elsewhere
falls on both sides of a ratio); the ratio of the medians is printed beside it. Under ``strace -f`` one activate +
deactivate is traced to count execve and fork/clone calls beyond bash's own start.

Targets: activation starts no process, and costs at most 1.5x a plain venv's activation.

    python benchmarks/bench_activation.py [--python 3.9] [--cycles 200] [--repeats 15]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import _common
from _common import Release, Scratch, build_release, median, table, timed

TARGET_RATIO = 1.5

LOOP = 'PS1="\\u@\\h:\\w\\$ "; for ((i = 0; i < $2; i++)); do . "$1"; deactivate; done'
BASELINE = 'PS1="\\u@\\h:\\w\\$ "; for ((i = 0; i < $2; i++)); do :; done'
# Correctness guard for the loop: the environment after the cycles is the one before.
CHECK = 'before="$PATH|$PYTHONPATH"; for ((i = 0; i < 3; i++)); do . "$1"; deactivate; done; [ "$PATH|$PYTHONPATH" = "$before" ]'


def realistic_path(release: Release) -> str:
    """~25 entries, as after sourcing an LCG view and a few experiment tools (they need not exist)."""
    stack = "/cvmfs/sft.cern.ch/lcg/releases/LCG_105"
    entries = [
        f"{stack}/{pkg}/x86_64-el9-gcc12-opt/bin"
        for pkg in (
            "ROOT/6.30.02-8ecef",
            "Geant4/11.2.0-f6a89",
            "gcc/13.1.0-b3d18",
            "cmake/3.26.2-6e1f9",
            "ninja/1.11.1-ed7c8",
            "git/2.39.1-0e2d4",
            "valgrind/3.22.0-0b6b5",
            "gdb/13.1-c0a5d",
            "hdf5/1.14.3-8c7d1",
            "xrootd/5.6.3-e0d8a",
            "Davix/0.8.5-2d9f2",
            "doxygen/1.9.8-0fd51",
            "graphviz/9.0.0-2d8a4",
            "swig/4.1.1-9f9b5",
            "jupyter/1.0.0-cf8b0",
        )
    ]
    entries += [f"{Path.home()}/.local/bin", "/opt/rucio/bin", "/opt/voms/bin"]
    entries += ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    return ":".join(entries)


def make_environments(release: Release, env: dict[str, str], where: Path) -> dict[str, Path]:
    """The activate script of an overlay, a venv and a virtualenv on the release."""
    base = str(release.python)
    overlay, venv, venv2 = where / "overlay", where / "venv", where / "virtualenv"
    _common.run([sys.executable, "-m", "overlay_venv", "create", str(overlay)], env, cwd=where)
    _common.run([base, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], env, cwd=where)
    _common.run(
        [sys.executable, "-m", "virtualenv", "--quiet", "--no-seed", "--system-site-packages", "--python", base, str(venv2)],
        env,
        cwd=where,
    )
    return {
        "overlay-venv": overlay / "bin" / "activate",
        "venv": venv / "bin" / "activate",
        "virtualenv": venv2 / "bin" / "activate",
    }


def bash(script: str, *args: str) -> list[str]:
    return ["bash", "--norc", "--noprofile", "-c", script, "bench", *args]


def time_cycles(activates: dict[str, Path], env: dict[str, str], cycles: int, repeats: int) -> dict[str, list[float]]:
    commands = [("(empty loop)", bash(BASELINE, "", str(cycles)))]
    commands += [(name, bash(LOOP, str(path), str(cycles))) for name, path in activates.items()]
    times: dict[str, list[float]] = {name: [] for name, _ in commands}
    for round_ in range(1 + repeats):
        shift = round_ % len(commands)
        for name, cmd in commands[shift:] + commands[:shift]:
            elapsed = timed(cmd, env)
            if round_:  # the first round warms the page cache
                times[name].append(elapsed)
    return times


def count_processes(activate: Path, env: dict[str, str], strace: str) -> dict[str, int]:
    """execve and fork-like calls made by one activate + deactivate, beyond bash's own execve."""
    with tempfile.NamedTemporaryFile(prefix="overlay-venv-strace-", suffix=".log") as log:
        subprocess.run(
            [
                strace,
                "-f",
                "-qq",
                "-e",
                "trace=execve,clone,clone3,fork,vfork",
                "-o",
                log.name,
                *bash('. "$1"; deactivate', str(activate)),
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        calls = [m.group(1) for line in Path(log.name).read_text().splitlines() if (m := re.match(r"^\d+\s+(\w+)\(", line))]
    execve = calls.count("execve") - 1  # bash itself
    forks = sum(calls.count(name) for name in ("clone", "clone3", "fork", "vfork"))
    return {"execve": execve, "fork/clone": forks}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _common.common_arguments(parser)
    parser.add_argument("--cycles", type=int, default=200, help="activate+deactivate cycles per bash (default 200)")
    parser.add_argument("--repeats", type=int, default=15, help="measured bash runs per environment (default 15)")
    args = parser.parse_args(argv)
    python = _common.resolve_python(args.python)

    with Scratch("bench-activation") as scratch:
        release = build_release(scratch, python)
        _common.header("activation: source bin/activate; deactivate in bash", release)
        path = realistic_path(release)
        env = release.env(path=path)
        work = scratch / "work"
        work.mkdir()
        activates = make_environments(release, env, work)
        for name, activate in activates.items():
            if subprocess.run(bash(CHECK, str(activate)), env=env).returncode != 0:
                raise SystemExit(f"{name}: activate + deactivate did not restore PATH/PYTHONPATH; not timing it")
        bash_version = subprocess.run(["bash", "-c", "echo $BASH_VERSION"], capture_output=True, text=True).stdout.strip()
        print(f"bash {bash_version}; PATH has {len(env['PATH'].split(':'))} entries; PYTHONPATH={env['PYTHONPATH']}")
        print("activate script lines: " + ", ".join(f"{name} {len(p.read_text().splitlines())}" for name, p in activates.items()))
        print()

        times = time_cycles(activates, env, args.cycles, args.repeats)
        empty = median(times["(empty loop)"])
        net = {name: (median(times[name]) - empty) / args.cycles for name in activates}
        rows = [["(empty loop)", f"{empty:.3f}", "", "", ""]]
        rows += [
            [
                name,
                f"{median(times[name]):.3f}",
                f"{net[name] * 1e3:.3f}",
                f"{net[name] / net['venv']:.2f}",
                f"{net[name] / net['virtualenv']:.2f}",
            ]
            for name in activates
        ]
        print(f"{args.cycles} cycles of `. activate; deactivate` per bash run; median of {args.repeats} runs:")
        print(table(["environment", "bash run s", "ms per cycle (net)", "x venv", "x virtualenv"], rows))
        print()

        strace = shutil.which("strace")
        counts: dict[str, dict[str, int]] = {}
        if strace is None:
            print("strace not found (apt-get install -y strace): subprocess count skipped")
        else:
            counts = {name: count_processes(activate, env, strace) for name, activate in activates.items()}
            print("Processes started by one `. activate; deactivate` (strace -f, beyond bash's own execve):")
            print(
                table(
                    ["environment", "execve", "fork/clone"],
                    [[name, str(c["execve"]), str(c["fork/clone"])] for name, c in counts.items()],
                )
            )
            print()

        paired = median([(ours - empty) / (venv - empty) for ours, venv in zip(times["overlay-venv"], times["venv"])])
        of_medians = net["overlay-venv"] / net["venv"]
        print(f"overlay-venv / venv: median of per-round ratios {paired:.2f}x, ratio of medians {of_medians:.2f}x")
        print(
            f"Target: cost <= {TARGET_RATIO}x a plain venv's activation -> "
            f"{'MET' if paired <= TARGET_RATIO else 'MISSED'} ({paired:.2f}x, median of per-round ratios)"
        )
        if counts:
            spawned = counts["overlay-venv"]["execve"] + counts["overlay-venv"]["fork/clone"]
            print(
                f"Target: activation starts no process -> {'MET' if spawned == 0 else 'MISSED'} "
                f"({counts['overlay-venv']['execve']} execve, {counts['overlay-venv']['fork/clone']} fork/clone)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
