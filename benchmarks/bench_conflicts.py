#!/usr/bin/env python3
"""Time `overlay-venv install tool` against plain constrained pip when holds conflict (issue 17).

Run on demand (not part of the tests):

    python benchmarks/bench_conflicts.py [--releases 300] [--payload-kb 512] [--latency 0.05] [--rounds 2]
                                         [--timeout 300] [--python 3.9]

The index is scripts/make_conflict_index.py's: the base holds corelib 1.20.0 for clientlib 1.4; tool
has 8 old releases that fit and RELEASES newer ones, each pinning a newer corelib; gizmo has the same
RELEASES above an old sdist that no longer builds. Two shapes of it:

- ``file``: a file:// index with PEP 658 metadata files and tiny wheels (the cheapest case for pip);
- ``remote``: the index without metadata files, as many mirrors serve one, over http from a local
  server that waits LATENCY seconds before each reply, with PAYLOAD_KB wheels: pip downloads each
  release it backtracks through, whole (the issue's "hundreds of wheels one at a time").

Rows, each into a fresh overlay (made beforehand, not timed), release set up, pip's cache off (as the
first time): `overlay-venv install tool`; the same with the pre-flight off (OVERLAY_VENV_PREFLIGHT=0),
which is plain pip plus overlay-venv's holds; plain `pip install -c holds.txt tool` in the overlay;
`overlay-venv install --installer uv tool` when uv is there; and `gizmo` for overlay-venv and plain
pip (both end on the old sdist's build error; overlay-venv's error names the hold). Interleaved
rounds; the figure is the median wall time, with the peak resident memory of the largest process
(the installer); a run past TIMEOUT is stopped and shown as "> TIMEOUT s". Ratios are per round, then
the median. Target: overlay-venv answers in at most 60 s (issue 17).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, Scratch, clean_env, make_base, median, resolve_python, table, tool_script

sys.path.insert(0, str(ROOT / "scripts"))
import make_conflict_index as index_script  # noqa: E402

TARGET = 60.0  # seconds: overlay-venv's answer (issue 17)


def build_release(scratch: Path, python: str) -> tuple[Path, Path]:
    release = make_base.make_base(scratch / "base", python, base=(), wheels=())
    exe = next((release / "python" / "bin").glob("python3.*"))
    site = release / "lib" / exe.name / "site-packages"
    index_script.add_base(site, scratch / "base-build")
    return exe.parent, site


def measured(cmd: list[str], env: dict[str, str], timeout: float) -> tuple[float, int, int, str]:
    """(wall seconds or inf past the timeout, peak RSS in MB of the largest process, exit status, output)."""
    # The peak is read in a child of our own, so each run's figure is its own (RUSAGE_CHILDREN keeps
    # the largest process ever waited for).
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "try:\n"
        "    r = subprocess.run(sys.argv[2:], capture_output=True, text=True, timeout=float(sys.argv[1]))\n"
        "    code, out = r.returncode, r.stdout + r.stderr\n"
        "except subprocess.TimeoutExpired:\n"
        "    code, out = -1, 'timeout'\n"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)\n"
        "sys.stdout.write(out)\n"
    )
    result = subprocess.run([sys.executable, "-c", wrapper, str(timeout), *cmd], env=env, capture_output=True, text=True)
    first, _, output = result.stdout.partition("\n")
    wall, rss, code = first.split()
    return (float("inf") if int(code) == -1 else float(wall)), int(rss) // 1024, int(code), output


def shown(seconds: float, timeout: float) -> str:
    return f"> {timeout:.0f} s" if seconds == float("inf") else f"{seconds:.1f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=None, help="base interpreter: a version (3.9 .. 3.13) or a path")
    parser.add_argument("--releases", type=int, default=index_script.RELEASES, help="conflicting releases of tool and gizmo")
    parser.add_argument("--payload-kb", type=int, default=512, help="size of each tool and gizmo wheel of the remote shape")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds the remote shape's server waits before each reply")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds after which a run is stopped")
    args = parser.parse_args()
    python = resolve_python(args.python)
    cli = tool_script()
    from overlay_venv.backends.uv import find_uv

    uv = find_uv()

    with Scratch("conflicts") as scratch:
        release_bin, site = build_release(scratch, python)
        started = time.perf_counter()
        small = index_script.build_index(scratch / "small", args.releases)
        big = index_script.build_index(scratch / "big", args.releases, args.payload_kb)
        print(f"built the indexes in {time.perf_counter() - started:.1f} s ({args.releases} conflicting releases each)")
        server, url = index_script.serve(big, latency=args.latency)
        shapes = {"file": (small / "simple").as_uri(), "remote": f"{url}/plain/"}
        holds = scratch / "holds.txt"
        holds.write_text(f"corelib=={index_script.HELD}\n")

        env = clean_env(scratch)
        env.update(PATH=f"{release_bin}:{env['PATH']}", PYTHONPATH=str(site), PIP_CONFIG_FILE=os.devnull)
        env.update(PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1", UV_NO_CACHE="1", UV_NO_CONFIG="1", NO_COLOR="1")
        count = [0]

        def fresh() -> Path:
            count[0] += 1
            overlay = scratch / f"ov{count[0]}"
            subprocess.run([cli, "create", str(overlay)], env=env, check=True, capture_output=True)
            return overlay

        def ov(index: str, *extra: str, **more: str):
            return lambda overlay: ([cli, "install", "--overlay", str(overlay), "--index-url", index, *extra], more)

        def pip(index: str, project: str):
            return lambda overlay: (
                [str(overlay / "bin" / "python"), "-m", "pip", "install", "-c", str(holds), "--index-url", index, project],
                {},
            )

        rows = {}
        for shape, index in shapes.items():
            rows[f"{shape}: overlay-venv install tool"] = ov(index, "tool")
            rows[f"{shape}: overlay-venv install tool, pre-flight off"] = ov(index, "tool", OVERLAY_VENV_PREFLIGHT="0")
            rows[f"{shape}: pip install -c holds.txt tool"] = pip(index, "tool")
            if uv:
                rows[f"{shape}: overlay-venv install --installer uv tool"] = ov(index, "--installer", "uv", "tool")
            rows[f"{shape}: overlay-venv install gizmo"] = ov(index, "gizmo")
            rows[f"{shape}: pip install -c holds.txt gizmo"] = pip(index, "gizmo")

        results: dict[str, list[tuple[float, int, int, str]]] = {name: [] for name in rows}
        for round_ in range(args.rounds):
            order = list(rows) if round_ % 2 == 0 else list(reversed(rows))
            for name in order:
                cmd, extra = rows[name](fresh())
                results[name].append(measured(cmd, {**env, **extra}, args.timeout))
                wall, rss, code, _ = results[name][-1]
                print(f"  round {round_ + 1}: {name}: {shown(wall, args.timeout)}, {rss} MB, exit {code}", flush=True)
        server.shutdown()

    print()
    print(
        f"== overlay-venv install when holds conflict: {args.releases} releases, remote {args.payload_kb} KB wheels, "
        f"{args.latency * 1000:.0f} ms a request, {args.rounds} rounds =="
    )
    print(f"tool python: {sys.executable}; base python: {python}; load average at end {os.getloadavg()[0]:.2f}")
    table_rows = []
    for name, runs in results.items():
        shape = name.split(":")[0]
        versus = f"{shape}: pip install -c holds.txt {'gizmo' if name.endswith('gizmo') else 'tool'}"
        ratios = [a[0] / b[0] for a, b in zip(runs, results[versus]) if b[0] not in (0, float("inf")) and a[0] != float("inf")]
        ratio = f"{median(ratios):.2f}x" if ratios and name != versus else ""
        if name != versus and any(b[0] == float("inf") for b in results[versus]):
            ratio = f"< {median([a[0] for a in runs]) / args.timeout:.2f}x"
        answer = runs[-1][3].strip().splitlines()
        said = next((line for line in reversed(answer) if line.startswith(("overlay-venv: error", "ERROR", "Successfully"))), "")
        table_rows.append(
            [
                name,
                shown(median([r[0] for r in runs]), args.timeout),
                f"{max(r[1] for r in runs)} MB",
                ratio,
                str(runs[-1][2]),
                said[:70],
            ]
        )
    print(table(["run", "median", "peak RSS", "vs plain pip", "exit", "last words"], table_rows))
    worst = max(
        max(r[0] for r in runs)
        for name, runs in results.items()
        if "overlay-venv install" in name and "pre-flight off" not in name
    )
    print(f"\ntarget: overlay-venv answers within {TARGET:.0f} s: slowest overlay-venv run {shown(worst, args.timeout)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
