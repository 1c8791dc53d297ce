#!/usr/bin/env python3
"""Time `overlay-venv list` and `check` against `pip list` and `pip check` on a large generated release.

Run on demand (not part of the tests):

    python benchmarks/bench_layers.py [--dists 1000] [--repeat 7] [--python PYTHON] [--keep DIR]

It builds, with no network, a release of DISTS distributions (each requiring up to three others, some
through markers and extras) with scripts/make_base.py, an overlay on it with a few dozen of them
upgraded (two of them breaking their dependents), then runs each command REPEAT times after one
warm-up, interleaved round by round, in the same environment a job has (release set up, overlay not
activated), and prints median and best wall times with the ratio to pip's. overlay-venv runs as a
user installs it (``_common.isolated_tool``: a venv that sees only overlay-venv and its dependencies,
so no other ``.pth`` file of the interpreter running this script costs anything). The target for
overlay-venv is 0.15 s for 1000 (issue 17; 0.5 s before, issue 4).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import _common  # noqa: E402  (beside this script)
import make_base  # noqa: E402

TARGET = 0.15  # seconds, for 1000 distributions (issue 17)


def name(i: int) -> str:
    return f"bench-pkg-{i:04d}"


def requirements(i: int, rng: random.Random) -> tuple[str, ...]:
    """Up to three earlier distributions, as real metadata writes them: version ranges, a marker that
    holds, one that does not, and extras that are or are not requested."""
    reqs = [f"{name(j)}>=1.0,<2" for j in rng.sample(range(i), min(i, rng.randint(0, 3)))]
    if i % 7 == 0 and i:
        reqs.append(f'{name(i - 1)}>=1.0; python_version >= "3.6"')
    if i % 11 == 0:
        reqs.append('not-installed-anywhere>=1; python_version < "3.0"')  # never applies
    if i % 13 == 0:
        reqs.append('not-installed-either; extra == "docs"')  # nobody asks for [docs]
    if i % 17 == 0 and i > 1:
        reqs.append(f"{name(i - 2)}[fast]>=1")  # asks for an extra of another distribution
    return tuple(reqs)


def build(dest: Path, python: str, count: int, upgraded: int) -> tuple[Path, Path, dict[str, str]]:
    rng = random.Random(4)
    release = make_base.make_base(dest, python, base=(), wheels=())
    exe = next((release / "python" / "bin").glob("python3.*"))
    site = release / "lib" / exe.name / "site-packages"

    wheels = dest / "build"
    for i in range(count):
        requires = requirements(i, rng)
        if i % 17 == 15:
            requires += ('bench-fast-helper>=1; extra == "fast"',)  # an extra someone requests
        make_base.install_wheel(make_base.build_wheel(wheels, name(i), "1.0", requires=requires), site)
    make_base.install_wheel(make_base.build_wheel(wheels, "bench-fast-helper", "1.0"), site)
    shutil.rmtree(wheels)

    overlay_wheels = dest / "wheels"
    installs = []
    for k, i in enumerate(range(0, count, max(1, count // upgraded))):
        version = "2.0" if k < 2 else "1.5"  # two upgrades break their dependents' `<2`
        make_base.build_wheel(overlay_wheels, name(i), version)
        installs.append(f"{name(i)}=={version}")

    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")}
    env["PATH"] = f"{exe.parent}:{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(site)
    overlay = dest / "overlay"
    subprocess.run([sys.executable, "-m", "overlay_venv", "create", str(overlay)], env=env, check=True, capture_output=True)
    pip = [str(overlay / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--find-links"]
    subprocess.run([*pip, str(overlay_wheels), *installs], env=env, check=True, capture_output=True)
    return release, overlay, env


def timed(
    commands: dict[str, list[str]], env: dict[str, str], repeat: int
) -> dict[str, tuple[list[float], subprocess.CompletedProcess]]:
    """Each command once to warm caches and bytecode, then ``repeat`` rounds, every command once a round
    in an order that rotates: a load that comes and goes hits all of them alike."""
    results = {label: ([], subprocess.run(cmd, env=env, capture_output=True, text=True)) for label, cmd in commands.items()}
    labels = list(commands)
    for round_ in range(repeat):
        shift = round_ % len(labels)
        for label in labels[shift:] + labels[:shift]:
            started = time.perf_counter()
            result = subprocess.run(commands[label], env=env, capture_output=True, text=True)
            results[label][0].append(time.perf_counter() - started)
            results[label] = (results[label][0], result)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dists", type=int, default=1000, help="distributions in the release (default 1000)")
    parser.add_argument("--upgraded", type=int, default=40, help="of them upgraded in the overlay (default 40)")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per command (default 7)")
    parser.add_argument("--python", default=sys.executable, help="interpreter the release is built on")
    parser.add_argument("--keep", type=Path, help="build here and keep it (must not exist)")
    args = parser.parse_args(argv)

    dest = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="bench-layers-"))
    if args.keep:
        dest.mkdir(parents=True)
    try:
        started = time.perf_counter()
        release, overlay, env = build(dest, args.python, args.dists, args.upgraded)
        print(
            f"built a release of {args.dists + 1} distributions and an overlay upgrading {args.upgraded} "
            f"in {time.perf_counter() - started:.1f} s ({dest})"
        )
        ov = [str(_common.isolated_tool(dest))]
        pip = [str(overlay / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--no-input"]
        commands = {
            "overlay-venv --version": [*ov, "--version"],
            "overlay-venv list": [*ov, "list", str(overlay)],
            "overlay-venv check": [*ov, "check", str(overlay)],
            "pip list": [*pip, "list"],
            "pip check": [*pip, "check"],
        }
        results = timed(commands, env, args.repeat)
    finally:
        if not args.keep:
            shutil.rmtree(dest, ignore_errors=True)

    def median(label: str) -> float:
        return statistics.median(results[label][0])

    print(f"\n{'command':<24}{'median':>9}{'best':>9}  {'vs pip':>7}  output")
    pairs = {"overlay-venv list": "pip list", "overlay-venv check": "pip check"}
    for label, (times, result) in results.items():
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        if label.endswith("list"):
            what = f"{len(lines) - (2 if label == 'pip list' else 0)} rows"
        elif label.endswith("check"):
            broken = [line for line in lines if "requires" in line or "has requirement" in line]
            what = f"{len(broken)} broken, exit {result.returncode}"
        else:
            what = "CLI start-up alone"
        ratio = f"{median(label) / median(pairs[label]):.2f}x" if label in pairs else ""
        print(f"{label:<24}{median(label):>8.3f}s{min(times):>8.3f}s  {ratio:>7}  {what}")
    print()
    ok = True
    for label in pairs:
        verdict = "within" if median(label) <= TARGET else "OVER"
        ok &= median(label) <= TARGET
        print(f"{label}: {verdict} the {TARGET} s target ({args.dists} distributions, median of {args.repeat})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
