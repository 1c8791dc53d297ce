#!/usr/bin/env python3
"""What shipping an overlay with its jobs (`wrap --ship`) costs at job start, against a job on a
mounted overlay, and what the first unpack on a node costs, against `tar xzf` of the same pack.

One overlay on a simulated release, basepkg 2.0 installed over the release's 1.0. Two job scripts run
`python3 -c 'import basepkg'` (checking it got 2.0) under `dash -eu` from a clean environment (each sets the release up
itself): one written by `wrap` for the overlay where it is, one by `wrap --ship --ship-dir` with the
overlay removed after packing. Each round times, back to back:

- the mounted job;
- the shipped job on a warm node cache (the entry is there: no unpack);
- the shipped job on a cold cache (the cache directory removed first: the job unpacks);
- `tar xzf PACK -C DIR` into a new directory (the removal of the previous one not timed).

"First unpack" is the cold job's time minus the warm job's in the same round: what the first job on
a node does beyond what every job does. Verdicts use the median of the per-round ratios.

Targets: warm shipped start-up <= 1.2x the mounted job's; first unpack <= 1.5x `tar xzf`.

    python benchmarks/bench_ship.py [--python 3.9] [--repeats 15]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import _common
from _common import Scratch, build_release, median, run, table, tool_script

WARM_TARGET = 1.2
UNPACK_TARGET = 1.5
# The overlay's basepkg, not the release's: the job fails (and the benchmark stops) otherwise.
COMMAND = ["python3", "-c", "import basepkg; assert basepkg.__version__ == '2.0', basepkg.__file__"]


def timed_run(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall time and CPU time (user + system, of the command and its children) of one run. CPU time
    moves less with load from elsewhere on a shared machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"command failed ({result.returncode}): {' '.join(cmd)}\n{result.stderr.decode(errors='replace')}")
    return elapsed, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _common.common_arguments(parser)
    parser.add_argument("--repeats", type=int, default=15, help="measured rounds (default 15)")
    args = parser.parse_args(argv)
    python = _common.resolve_python(args.python)
    tool = tool_script()

    with Scratch("bench-ship") as scratch:
        release = build_release(scratch, python)
        _common.header("shipped jobs: start-up on a warm node cache, and the first unpack", release)
        env = release.env()
        work = scratch / "work"
        work.mkdir()
        setup = str(release.root / "setup.sh")
        mounted_overlay = work / "mounted"
        shipped_overlay = work / "shipped"
        for overlay in (mounted_overlay, shipped_overlay):
            run([tool, "create", str(overlay), "--setup", setup], env=env)
            wheels = str(scratch / "base" / "wheels")
            pip = [str(overlay / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--find-links", wheels]
            run([*pip, "basepkg==2.0"], env=env)
        mounted = work / "mounted.sh"
        shipped = work / "shipped.sh"
        cache = scratch / "node-cache"
        run([tool, "wrap", str(mounted_overlay), "-o", str(mounted), "--", *COMMAND], env=env)
        run([tool, "wrap", str(shipped_overlay), "--ship", "--ship-dir", str(cache), "-o", str(shipped), "--", *COMMAND], env=env)
        (pack,) = work.glob("shipped-*.tar.gz")
        files = sum(1 for _ in shipped_overlay.rglob("*"))
        shutil.rmtree(shipped_overlay)
        # Slurm sets USER in a job; HTCondor (getenv = false) does not, and the job then asks `id -u`.
        slurm_like = dict(_common.clean_env(scratch), USER="overlay-venv-bench")
        condor_like = _common.clean_env(scratch)
        mounted_job = ["dash", "-eu", str(mounted)]
        shipped_job = ["dash", "-eu", str(shipped)]
        probe = subprocess.run(shipped_job, env=slurm_like, cwd=work, capture_output=True, text=True)
        if probe.returncode != 0:
            raise SystemExit(f"the shipped job fails:\n{probe.stderr}")
        print(f"pack {pack.name}: {pack.stat().st_size / 1048576:.1f} MiB, {files} files and directories unpacked")
        print(f"job command: {' '.join(COMMAND)}; the release set up by each job script; {args.repeats} rounds")
        print()

        runs = {
            "mounted": (mounted_job, slurm_like, False),
            "shipped, warm cache": (shipped_job, slurm_like, False),
            "shipped, warm, no $USER": (shipped_job, condor_like, False),
            "shipped, cold cache": (shipped_job, slurm_like, True),
        }
        wall: dict[str, list[float]] = {name: [] for name in [*runs, "tar xzf"]}
        cpu: dict[str, list[float]] = {name: [] for name in wall}
        for cmd, env_, _cold in runs.values():
            timed_run(cmd, env_, work)  # warm-ups: page cache, bytecode, the node cache
        target = scratch / "tar-target"
        for _ in range(args.repeats):
            for name, (cmd, env_, cold) in runs.items():
                if cold:  # this user's cache only: the no-$USER job's (named by the uid) stays warm
                    shutil.rmtree(cache / f"overlay-venv-ship-{slurm_like['USER']}")
                w, c = timed_run(cmd, env_, work)
                wall[name].append(w)
                cpu[name].append(c)
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            w, c = timed_run(["tar", "xzf", str(pack), "-C", str(target)], slurm_like, work)
            wall["tar xzf"].append(w)
            cpu["tar xzf"].append(c)
        for series in (wall, cpu):
            series["first unpack (cold - warm)"] = [
                cold - warm for cold, warm in zip(series["shipped, cold cache"], series["shipped, warm cache"])
            ]

        rows = [
            [name, f"{median(wall[name]) * 1e3:.1f}", f"{min(wall[name]) * 1e3:.1f}", f"{median(cpu[name]) * 1e3:.1f}"]
            for name in wall
        ]
        print(table(["what", "wall median ms", "wall min ms", "CPU median ms"], rows))
        print()

        def paired(series: dict[str, list[float]], top: str, bottom: str) -> float:
            return median([a / b for a, b in zip(series[top], series[bottom])])

        warm, warm_cpu = paired(wall, "shipped, warm cache", "mounted"), paired(cpu, "shipped, warm cache", "mounted")
        bare = paired(wall, "shipped, warm, no $USER", "mounted")
        first, first_cpu = (
            paired(wall, "first unpack (cold - warm)", "tar xzf"),
            paired(cpu, "first unpack (cold - warm)", "tar xzf"),
        )
        print(f"warm shipped / mounted: wall {warm:.2f}x, CPU {warm_cpu:.2f}x; without $USER (HTCondor) wall {bare:.2f}x")
        print(f"first unpack / tar xzf: wall {first:.2f}x, CPU {first_cpu:.2f}x")
        print(
            f"Target: warm shipped start-up <= {WARM_TARGET}x a mounted overlay's -> "
            f"{'MET' if warm <= WARM_TARGET else 'MISSED'} ({warm:.2f}x wall, median of per-round ratios)"
        )
        print(
            f"Target: first unpack on a node <= {UNPACK_TARGET}x tar xzf -> "
            f"{'MET' if first <= UNPACK_TARGET else 'MISSED'} ({first:.2f}x wall, median of per-round ratios)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
