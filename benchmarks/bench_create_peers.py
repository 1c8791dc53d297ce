#!/usr/bin/env python3
"""``overlay-venv create`` against the peers issue 17 names, paired round by round.

- warm ``create`` (skeleton and compiled templates cached) vs ``uv venv --seed --offline
  --system-site-packages --python BASE``, uv's cache (UV_CACHE_DIR) in the same temporary directory,
  so uv hard-links from it as the skeleton does. Target: at most 1.5x.
- warm ``create`` vs ``cp -al`` of a finished overlay: the floor of making that tree of links.
  Target: at most 3x.
- cold ``create --no-cache`` (virtualenv runs each time) vs ``python -m virtualenv --no-setuptools
  --system-site-packages --python BASE``, virtualenv's app data warm. Target: at most 1.0x.

overlay-venv runs twice: as this interpreter's console script, and installed on its own (as pipx or
the README's own venv installs it: an interpreter that sees only overlay-venv and its dependencies,
so no other package's .pth files run at its start); the cold pair then compares with virtualenv
installed on its own too.

Every command runs once per round, in an order rotated each round; one warm-up round is discarded.
Each ratio is the median of the per-round ratios of its pair, so a burst of load from elsewhere hits
both sides of a pair alike. uv's cache is warmed offline from virtualenv's embedded wheels and the
test wheelhouse (scripts/test-wheels/uv-seed.txt adds the ``wheel`` uv seeds below Python 3.12).
Nothing is asserted; figures and verdicts are printed.

    python benchmarks/bench_create_peers.py [--python 3.9] [--runs 9]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import _common
from _common import Scratch, build_release, median, table, timed

WARM = "overlay-venv create (warm)"
COLD = "overlay-venv create --no-cache"
UV = "uv venv --seed --offline --system-site-packages"
CP = "cp -al of a finished overlay"
VIRTUALENV = "virtualenv --no-setuptools --system-site-packages"
OWN = ", installed on its own"  # as pipx (or a venv of its own, README) installs it
# (ours, peer, target ratio)
PAIRS = [
    (WARM, UV, 1.5),
    (WARM, CP, 3.0),
    (COLD, VIRTUALENV, 1.0),
    (WARM + OWN, UV, 1.5),
    (WARM + OWN, CP, 3.0),
    (COLD + OWN, VIRTUALENV + OWN, 1.0),
]


def find_links() -> list[str]:
    import virtualenv.seed.wheels.embed as embed

    return ["--find-links", os.path.dirname(embed.__file__), "--find-links", str(_common.ROOT / ".test-wheels")]


def commands(base: str, work: Path, finished: Path, uv: str, isolated: Path) -> dict[str, list[str]]:
    tool = _common.tool_script()
    virtualenv = ["-m", "virtualenv", "--no-setuptools", "--system-site-packages", "--quiet", "--python", base]
    return {
        WARM: [tool, "create", str(work / "warm")],
        COLD: [tool, "create", "--no-cache", str(work / "cold")],
        UV: [
            *[uv, "venv", "--seed", "--offline", *find_links(), "--system-site-packages", "--quiet"],
            *["--python", base, str(work / "uv")],
        ],
        CP: ["cp", "-al", str(finished), str(work / "cp")],
        VIRTUALENV: [sys.executable, *virtualenv, str(work / "virtualenv")],
        WARM + OWN: [str(isolated), "create", str(work / "warm-own")],
        COLD + OWN: [str(isolated), "create", "--no-cache", str(work / "cold-own")],
        VIRTUALENV + OWN: [str(isolated.parent / "python"), *virtualenv, str(work / "virtualenv-own")],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _common.common_arguments(parser)
    parser.add_argument("-n", "--runs", type=int, default=9, help="measured rounds, after one warm-up (default 9)")
    args = parser.parse_args(argv)
    python = _common.resolve_python(args.python)
    uv = shutil.which("uv")
    if uv is None:
        raise SystemExit("uv is not on PATH (pip install uv)")

    with Scratch("bench-create-peers") as scratch:
        release = build_release(scratch, python)
        _common.header("overlay-venv create vs uv venv, cp -al and virtualenv (paired)", release)
        print(f"uv          : {subprocess.run([uv, '--version'], capture_output=True, text=True).stdout.strip()}")
        env = release.env(UV_CACHE_DIR=str(scratch / "uv-cache"))
        work = scratch / "work"
        work.mkdir()
        finished = scratch / "finished" / "env"
        finished.parent.mkdir()
        _common.run([_common.tool_script(), "create", str(finished)], env)
        cmds = commands(str(release.python), work, finished, uv, _common.isolated_tool(scratch))
        names = list(cmds)
        times: dict[str, list[float]] = {name: [] for name in names}
        for round_ in range(1 + args.runs):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                target = Path(cmds[name][-1])
                shutil.rmtree(target, ignore_errors=True)
                elapsed = timed(cmds[name], env, cwd=work)
                if round_:
                    times[name].append(elapsed)
                shutil.rmtree(target, ignore_errors=True)
            print(f"  round {round_ + 1}/{1 + args.runs}{' (warm-up, discarded)' if not round_ else ''} done", file=sys.stderr)

        print(f"Wall time over {args.runs} rounds (1 warm-up discarded), same release, same filesystem:")
        print(table(["command", "median s", "min s"], [[n, f"{median(times[n]):.3f}", f"{min(times[n]):.3f}"] for n in names]))
        print()
        rows = []
        for ours, peer, target in PAIRS:
            ratio = median([a / b for a, b in zip(times[ours], times[peer])])
            verdict = "MET" if ratio <= target else "MISSED"
            rows.append([f"{ours} / {peer}", f"{ratio:.2f}", f"<= {target:.1f}", verdict])
        print("Median of per-round ratios:")
        print(table(["pair", "ratio", "target", "verdict"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
