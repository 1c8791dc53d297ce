#!/usr/bin/env python3
"""Time `overlay-venv install` against plain `pip install` (and `overlay-venv install --uv`) in one run.

Run on demand (not part of the tests):

    python benchmarks/bench_install.py [--dists 400] [--packages 25] [--repeat 5] [--python 3.9]

It builds, with no network, a release of DISTS distributions (each requiring up to three others) and a
local wheelhouse of PACKAGES new distributions, each requiring a few release distributions (ranges the
release satisfies) and some a new helper, so every tool installs the same set: the new packages and
their helpers, nothing from the release. Each timed run installs that set into a fresh overlay (made
beforehand, not timed) with `--no-index --find-links WHEELS`, release set up and overlay not
activated, as a job would. Runs are interleaved, after one discarded warm-up of each command.

Rows: plain pip in the overlay; `overlay-venv install` (holds derived from the release, pip, the
check afterwards); `overlay-venv install --uv`; and, for reference, `pip install --dry-run` alone: what
a "resolve first, then install" safety step would add to the pip path. Target: overlay-venv install at
most 1.2x plain pip (issue 5).

Then one wheel (issue 17): `uv pip install` of one dependency-free wheel from the same wheelhouse into
a plain venv (`python -m venv --without-pip` on the release's interpreter, release not on its path:
what uv does at its fastest) against `overlay-venv install --installer uv` of it into an overlay on the
release, as this interpreter's console script and installed on its own (as pipx or the README's venv
installs it: an interpreter that sees only overlay-venv and its dependencies, so no other package's
.pth files run at its start), and `overlay-venv install` (pip) for reference: paired rounds in alternating order after one
warm-up, twice: on fresh targets made untimed (an overlay's first install), and on the same targets
with the wheel removed between rounds, untimed (a later install: uv's view of the layers is kept).
The verdict is the median of the per-round ratios. Target: at most 2x. `--profile` adds a cProfile of
one `install --installer uv` (the whole command in-process, top entries by cumulative time), to see
what overlay-venv's part costs.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import Scratch, clean_env, isolated_tool, make_base, resolve_python, table, timed, tool_script

TARGET = 1.2  # overlay-venv install / plain pip, median wall time
ONE_TARGET = 2.0  # overlay-venv install --installer uv / uv pip install into a plain venv, one wheel
OWN_UV = "overlay-venv install --installer uv, installed on its own"


def base_name(i: int) -> str:
    return f"bench-base-{i:04d}"


def build(scratch: Path, python: str, count: int, packages: int) -> tuple[Path, Path, Path, list[str]]:
    """The release (its site-packages), the wheelhouse, and the requirement list every tool installs."""
    rng = random.Random(5)
    release = make_base.make_base(scratch / "base", python, base=(), wheels=())
    exe = next((release / "python" / "bin").glob("python3.*"))
    site = release / "lib" / exe.name / "site-packages"
    build_dir = scratch / "build"
    for i in range(count):
        requires = tuple(f"{base_name(j)}>=1.0,<2" for j in rng.sample(range(i), min(i, rng.randint(0, 3))))
        make_base.install_wheel(make_base.build_wheel(build_dir, base_name(i), "1.0", requires=requires), site)
    shutil.rmtree(build_dir)

    wheels = scratch / "wheels"
    wanted = []
    for k in range(packages):
        requires = [f"{base_name(j)}>=1.0" for j in rng.sample(range(count), 3)]
        if k % 3 == 0:
            helper = f"bench-helper-{k:02d}"
            make_base.build_wheel(wheels, helper, "1.0", requires=(f"{base_name(rng.randrange(count))}>=1.0",))
            requires.append(f"{helper}>=1")
        name = f"bench-new-{k:02d}"
        make_base.build_wheel(wheels, name, "1.0", requires=tuple(requires))
        wanted.append(name)
    # Newer copies of some release distributions sit in the wheelhouse too, as on a real index: pip
    # must keep the release's (already satisfied), overlay-venv must hold them.
    for j in range(0, count, max(1, count // 10)):
        make_base.build_wheel(wheels, base_name(j), "1.5")
    return site, exe, wheels, wanted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dists", type=int, default=400, help="distributions in the release (default 400)")
    parser.add_argument("--packages", type=int, default=25, help="new distributions requested (default 25)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per command (default 5)")
    parser.add_argument("--python", default=None, help="base interpreter: a version (3.9 .. 3.13) or a path")
    parser.add_argument("--one-rounds", type=int, default=9, help="paired rounds of the one-wheel rows (default 9)")
    parser.add_argument("--only-one", action="store_true", help="only the one-wheel rows")
    parser.add_argument("--profile", action="store_true", help="also a cProfile of one `install --installer uv`")
    args = parser.parse_args(argv)
    python = resolve_python(args.python)
    cli = tool_script()
    uv_available = subprocess.run(
        [sys.executable, "-c", "from overlay_venv.backends.uv import find_uv; print(find_uv() or '')"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    if args.only_one and not uv_available:
        raise SystemExit("--only-one needs uv (pip install uv)")

    with Scratch("install") as scratch:
        started = time.perf_counter()
        site, exe, wheels, wanted = build(scratch, python, args.dists, args.packages)
        env = clean_env(scratch)
        env.update(
            PATH=f"{exe.parent}:{env['PATH']}",
            PYTHONPATH=str(site),
            PIP_CONFIG_FILE=os.devnull,  # this machine's pip.conf adds find-links; keep every tool on the wheelhouse
            PIP_DISABLE_PIP_VERSION_CHECK="1",  # no PyPI query from either side
            UV_NO_CONFIG="1",
            UV_CACHE_DIR=str(scratch / "uv-cache"),
        )
        sources = ["--no-index", "--find-links", str(wheels)]
        one_ok = True
        if uv_available:
            one_ok = one_wheel(scratch, env, exe, wheels, cli, uv_available, args.one_rounds, args.profile)
        if args.only_one:
            return 0 if one_ok else 1

        def commands(overlay: Path) -> dict[str, list[str]]:
            pip = [str(overlay / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", *sources]
            found = {
                "pip install": [*pip, *wanted],
                "overlay-venv install": [cli, "install", "--overlay", str(overlay), *sources, *wanted],
                "pip install --dry-run": [*pip, "--dry-run", *wanted],
            }
            if uv_available:
                found["overlay-venv install --uv"] = [cli, "install", "--uv", "--overlay", str(overlay), *sources, *wanted]
            return found

        labels = list(commands(Path("x")))
        runs = args.repeat + 1  # the first is a warm-up
        overlays = {}
        for run in range(runs):
            for label in labels:
                overlay = scratch / f"ov-{run}-{labels.index(label)}"
                subprocess.run([cli, "create", str(overlay)], env=env, check=True, capture_output=True)
                overlays[run, label] = overlay
        print(
            f"built a release of {args.dists} distributions, a wheelhouse of {len(list(wheels.iterdir()))} wheels "
            f"and {len(overlays)} overlays in {time.perf_counter() - started:.1f} s"
        )
        load = os.getloadavg()
        print(
            f"base python {exe.name}; {os.cpu_count()} CPUs, load average {load[0]:.2f} at start; "
            f"installing {len(wanted)} requested distributions\n"
        )

        times: dict[str, list[float]] = {label: [] for label in labels}
        installed: dict[str, int] = {}
        for run in range(runs):
            order = labels[run % len(labels) :] + labels[: run % len(labels)]  # interleaved, rotating
            for label in order:
                overlay = overlays[run, label]
                elapsed = timed(commands(overlay)[label], env)
                if run:
                    times[label].append(elapsed)
                site_dir = next((overlay / "lib").glob("python3.*")) / "site-packages"
                installed[label] = len([d for d in site_dir.iterdir() if d.name.endswith(".dist-info")]) - 1  # less pip

        def med(label: str) -> float:
            return statistics.median(times[label])

        rows = [
            [
                label,
                f"{med(label):.3f} s",
                f"{min(times[label]):.3f} s",
                f"{med(label) / med('pip install'):.2f}x",
                str(installed[label]),
            ]
            for label in labels
        ]
        print(table(["command", "median", "best", "vs pip", "installed"], rows))
        ratio = med("overlay-venv install") / med("pip install")
        print(
            f"\noverlay-venv install: {ratio:.2f}x plain pip ({'within' if ratio <= TARGET else 'OVER'} the {TARGET}x target; "
            f"median of {args.repeat}, {args.dists} release distributions)"
        )
        same = len({installed[label] for label in labels if label != "pip install --dry-run"}) == 1
        print(f"same set installed by every tool: {'yes' if same else 'NO'}")
        return 0 if ratio <= TARGET and same and one_ok else 1


def one_wheel(scratch: Path, env: dict, exe: Path, wheels: Path, cli: str, uv: str, rounds: int, profile: bool) -> bool:
    """The one-wheel rows (see the module docstring); True when within ONE_TARGET both times."""
    wheel = make_base.build_wheel(wheels, "bench-one", "1.0")
    sources = ["--no-index", "--find-links", str(wheels)]
    plain_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}  # a plain venv: no release on its path
    own = str(isolated_tool(scratch))  # as pipx or the README's venv installs it: no other .pth files at start
    labels = [
        "uv pip install (plain venv)",
        "overlay-venv install --installer uv",
        OWN_UV,
        "overlay-venv install (pip)",
    ]

    def make(label: str, name: str) -> Path:
        target = scratch / name
        if label == labels[0]:
            subprocess.run([str(exe), "-m", "venv", "--without-pip", str(target)], env=plain_env, check=True)
        else:
            subprocess.run([cli, "create", str(target)], env=env, check=True, capture_output=True)
        return target

    def command(label: str, target: Path) -> tuple[list[str], dict]:
        if label == labels[0]:
            return [uv, "pip", "install", "--python", str(target / "bin" / "python"), *sources, "bench-one"], plain_env
        installer = ["--installer", "uv"] if "uv" in label else []
        tool = own if label == OWN_UV else cli
        return [tool, "install", "--overlay", str(target), *installer, *sources, "bench-one"], env

    def remove(label: str, target: Path) -> None:  # untimed, between rounds on the same target
        python = str(target / "bin" / "python")
        if label == labels[0]:
            cmd, cmd_env = [uv, "pip", "uninstall", "--python", python, "bench-one"], plain_env
        else:
            cmd, cmd_env = [python, "-m", "pip", "uninstall", "-q", "-y", "bench-one"], env
        subprocess.run(cmd, env=cmd_env, check=True, capture_output=True)

    verdicts = []
    # "first": a fresh target each round (an overlay's first install makes uv's view of its layers);
    # "again": the same target each round, the wheel removed in between (the view is kept).
    for mode in ("first", "again"):
        targets = {}
        for run in range(rounds + 1):
            for index, label in enumerate(labels):
                if mode == "first" or run == 0:
                    targets[run, label] = make(label, f"one-{mode}-{run}-{index}")
                else:
                    targets[run, label] = targets[0, label]
        times: dict[str, list[float]] = {label: [] for label in labels}
        for run in range(rounds + 1):
            order = labels if run % 2 == 0 else labels[::-1]  # paired, alternating
            for label in order:
                target = targets[run, label]
                elapsed = timed(*command(label, target))
                if run:
                    times[label].append(elapsed)
                if mode == "again":
                    remove(label, target)
        ratios = {label: [t / base for t, base in zip(times[label], times[labels[0]])] for label in labels}
        rows = [
            [
                label,
                f"{statistics.median(times[label]) * 1000:.1f} ms",
                f"{min(times[label]) * 1000:.1f} ms",
                f"{statistics.median(ratios[label]):.2f}x",
            ]
            for label in labels
        ]
        what = "a fresh target each round" if mode == "first" else "the same target each round, the wheel removed between"
        print(f"\none wheel ({wheel.name}) from the wheelhouse of {len(list(wheels.iterdir()))}: {what}, {rounds} paired rounds")
        print(table(["command", "median", "best", "median of per-round ratios"], rows))
        for label in labels[1:3]:
            ratio = statistics.median(ratios[label])
            verdicts.append(ratio <= ONE_TARGET)
            verdict = "within" if verdicts[-1] else "OVER"
            print(f"{label} ({mode}): {ratio:.2f}x uv pip install ({verdict} the {ONE_TARGET}x target)")
    if profile:
        overlay = make(labels[1], "one-profile")
        cmd = [
            sys.executable,
            "-m",
            "cProfile",
            "-s",
            "cumtime",
            "-m",
            "overlay_venv",
            "install",
            "-q",
            "--overlay",
            str(overlay),
        ]
        result = subprocess.run([*cmd, "--installer", "uv", *sources, "bench-one"], env=env, capture_output=True, text=True)
        print("\ncProfile of one `overlay-venv install --installer uv` (first; top 40 by cumulative time):")
        print("\n".join(result.stdout.splitlines()[:48]))
    print()
    return all(verdicts)


if __name__ == "__main__":
    sys.exit(main())
