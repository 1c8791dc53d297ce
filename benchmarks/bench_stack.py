#!/usr/bin/env python3
"""What a 3-deep stack of overlays (``create --on``) costs against its peers, measured in one run:

- activation (``. bin/activate; deactivate`` in bash, dash and zsh) of the top of a stack
  team <- mid <- top against a plain ``python -m venv`` on the same release (target <= 1.5x);
- ``TOP/bin/python -c pass`` unactivated, release PYTHONPATH set, against the bare release
  interpreter (target <= 3 ms over); and the same for a second stack whose overlays had virtualenv's
  ``_virtualenv.pth`` made lazy (``lazy_virtualenv.make_lazy``, ~8 ms of a 3.9 start) in case
  ``create`` does not do that itself yet;
- beside each, the same for one overlay that is not stacked (the bottom of the stack): what stacking
  itself adds, apart from what any overlay costs (virtualenv's own ``_virtualenv`` start-up module);
- ``overlay-venv list TOP`` and ``check TOP`` over a release of 1000 distributions (bench_layers.py
  builds it; target <= 0.15 s, issue 17), beside the same for a plain overlay on the same release;
  overlay-venv runs as a user installs it (``_common.isolated_tool``).

Runs are interleaved round by round; medians are reported. Run on demand (not part of the tests):

    python benchmarks/bench_stack.py [--python 3.9] [--cycles 200] [--repeats 11] [--dists 1000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import _common
import bench_layers
from _common import Scratch, build_release, median, table, timed

TARGET_ACTIVATION = 1.5
TARGET_START_MS = 3.0
TARGET_LIST_S = 0.15

LOOP = 'i=0; while [ "$i" -lt "$2" ]; do . "$1"; deactivate; i=$((i + 1)); done'
BASELINE = 'i=0; while [ "$i" -lt "$2" ]; do :; i=$((i + 1)); done'
CHECK = 'before="$PATH|$PYTHONPATH"; . "$1"; deactivate; [ "$PATH|$PYTHONPATH" = "$before" ]'


def ov(*args: str) -> list[str]:
    return [sys.executable, "-m", "overlay_venv", *args]


def make_stack(env: dict[str, str], where: Path) -> list[Path]:
    """team <- mid <- top, no pip in the upper two (pip would only add files)."""
    team, mid, top = where / "team", where / "mid", where / "top"
    _common.run(ov("create", str(team)), env)
    _common.run(ov("create", str(mid), "--on", str(team), "--no-pip"), env)
    _common.run(ov("create", str(top), "--on", str(mid), "--no-pip"), env)
    return [team, mid, top]


def interleaved(commands: list[tuple[str, list[str]]], env: dict[str, str], repeats: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name, _ in commands}
    for round_ in range(1 + repeats):
        shift = round_ % len(commands)
        for name, cmd in commands[shift:] + commands[:shift]:
            elapsed = timed(cmd, env)
            if round_:  # the first round warms caches
                times[name].append(elapsed)
    return times


def bench_activation(release, env, top: Path, plain: Path, venv: Path, cycles: int, repeats: int) -> list[list[str]]:
    rows = []
    for shell in ("bash", "dash", "zsh"):
        run = [shell, "-c"] if shell != "zsh" else ["zsh", "-f", "-c"]
        for activate in (top / "bin" / "activate", venv / "bin" / "activate"):
            _common.run([*run, CHECK, "bench", str(activate)], env)  # the loop measures a correct round trip
        commands = [
            ("empty", [*run, BASELINE, "bench", "", str(cycles)]),
            ("stack", [*run, LOOP, "bench", str(top / "bin" / "activate"), str(cycles)]),
            ("venv", [*run, LOOP, "bench", str(venv / "bin" / "activate"), str(cycles)]),
            ("overlay", [*run, LOOP, "bench", str(plain / "bin" / "activate"), str(cycles)]),
        ]
        times = interleaved(commands, env, repeats)
        empty = median(times["empty"])
        stack, venv_net = median(times["stack"]) - empty, median(times["venv"]) - empty
        overlay = median(times["overlay"]) - empty
        ratio = stack / venv_net
        verdict = "ok" if ratio <= TARGET_ACTIVATION else "OVER"
        rows.append([f"activate+deactivate, {shell}", f"{stack / cycles * 1e3:.3f} ms", f"{venv_net / cycles * 1e3:.3f} ms",
                     f"{ratio:.2f}x", f"<= {TARGET_ACTIVATION}x {verdict}",
                     f"{overlay / cycles * 1e3:.3f} ms ({stack / overlay:.2f}x)"])  # fmt: skip
    return rows


def bench_start(release, env, tops: dict[str, Path], plain: Path, repeats: int) -> list[list[str]]:
    commands = [(name, [str(top / "bin" / "python"), "-c", "pass"]) for name, top in tops.items()]
    commands += [("bare", [str(release.python), "-c", "pass"]), ("overlay", [str(plain / "bin" / "python"), "-c", "pass"])]
    times = interleaved(commands, env, repeats * 5)
    rows = []
    for name in tops:
        over = (median(times[name]) - median(times["bare"])) * 1e3
        verdict = "ok" if over <= TARGET_START_MS else "OVER"
        of_overlay = (median(times[name]) - median(times["overlay"])) * 1e3
        rows.append([f"TOP/bin/python -c pass{'' if name == 'top' else ', ' + name}", f"{median(times[name]) * 1e3:.2f} ms",
                     f"{median(times['bare']) * 1e3:.2f} ms", f"{over:+.2f} ms", f"<= +{TARGET_START_MS} ms {verdict}",
                     f"{median(times['overlay']) * 1e3:.2f} ms ({of_overlay:+.2f} ms)"])  # fmt: skip
    return rows


def make_lazy_stack(env: dict[str, str], where: Path) -> Path:
    """A second team <- mid <- top with virtualenv's start-up patch made lazy in every layer."""
    from overlay_venv.lazy_virtualenv import make_lazy

    where.mkdir()
    stack = make_stack(env, where)
    for overlay in stack:
        for site in overlay.glob("lib/python3*/site-packages"):
            make_lazy(site)
    return stack[-1]


def bench_list(scratch: Path, python: str, dists: int, repeats: int) -> list[list[str]]:
    _, plain, env = bench_layers.build(scratch / "big", python, dists, 40)
    mid, top = scratch / "big" / "mid", scratch / "big" / "top"
    _common.run(ov("create", str(mid), "--on", str(plain), "--no-pip"), env)
    _common.run(ov("create", str(top), "--on", str(mid), "--no-pip"), env)
    tool = str(_common.isolated_tool(scratch))
    commands = []
    for what in ("list", "check"):
        commands += [(f"{what} stack", [tool, what, str(top)]), (f"{what} plain", [tool, what, str(plain)])]
    times = interleaved_any_status(commands, env, repeats)
    rows = []
    for what in ("list", "check"):
        stack, alone = median(times[f"{what} stack"]), median(times[f"{what} plain"])
        verdict = "ok" if stack <= TARGET_LIST_S else "OVER"
        rows.append([f"{what}, {dists}-distribution release", f"{stack:.3f} s", "-", "-", f"<= {TARGET_LIST_S} s {verdict}",
                     f"{alone:.3f} s ({stack / alone:.2f}x)"])  # fmt: skip
    return rows


def interleaved_any_status(commands: list[tuple[str, list[str]]], env: dict[str, str], repeats: int) -> dict[str, list[float]]:
    """As interleaved(), for commands whose exit status says something (check exits 1 on a broken release)."""
    import subprocess
    import time

    times: dict[str, list[float]] = {name: [] for name, _ in commands}
    for round_ in range(1 + repeats):
        shift = round_ % len(commands)
        for name, cmd in commands[shift:] + commands[:shift]:
            started = time.perf_counter()
            result = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            elapsed = time.perf_counter() - started
            if result.returncode not in (0, 1):
                raise SystemExit(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.decode(errors='replace')}")
            if round_:
                times[name].append(elapsed)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _common.common_arguments(parser)
    parser.add_argument("--cycles", type=int, default=200, help="activate+deactivate cycles per shell run (default 200)")
    parser.add_argument("--repeats", type=int, default=11, help="timed rounds (default 11)")
    parser.add_argument("--dists", type=int, default=1000, help="distributions in the release `list` reads (default 1000)")
    args = parser.parse_args(argv)
    python = _common.resolve_python(args.python)
    with Scratch("bench-stack") as scratch:
        release = build_release(scratch, python)
        env = release.env()
        _common.header("a 3-deep stack of overlays (create --on) against its peers", release)
        team, mid, top = make_stack(env, scratch)
        venv = scratch / "venv"
        _common.run([str(release.python), "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], env)
        rows = bench_activation(release, env, top, team, venv, args.cycles, args.repeats)
        lazy_top = make_lazy_stack(env, scratch / "lazy")
        rows += bench_start(release, env, {"top": top, "virtualenv's .pth lazy": lazy_top}, team, args.repeats)
        rows += bench_list(scratch, python, args.dists, args.repeats)
        print(table(["what", "stack", "peer", "ratio/over", "target", "one plain overlay (stack's share)"], rows))
        print("peers: a plain venv (activation), the bare release interpreter (start);")
        print("the last column: the same for an overlay that is not stacked, on the same release")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
