#!/usr/bin/env python3
"""Start-up cost of an overlay's ``.pth`` hook, which puts the overlay's site-packages ahead of the
release's PYTHONPATH entries when the overlay's interpreter runs without activation.

``NAME/bin/python -c pass`` runs with the release's PYTHONPATH set and the overlay not activated, for:
the overlay as created; a copy of it (in a scratch directory) with ``~overlay_venv_hook.pth`` removed;
the release's bare interpreter; and a copy whose ``_virtualenv.pth`` was made lazy
(``lazy_virtualenv.make_lazy``: virtualenv's distutils patch imported only with distutils or setuptools).
Runs are interleaved round by round; medians are reported, and the
overhead also as the median of per-round paired differences. ``-X importtime`` shows the hook module's
own import line. Target: the hook costs at most 3 ms.

    python benchmarks/bench_hook.py [--python 3.9] [--runs 40]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys

import _common
from _common import Scratch, build_release, median, table, timed

TARGET_MS = 3.0
HOOK_PTH = "~overlay_venv_hook.pth"


def importtime_lines(python: str, env: dict[str, str], runs: int) -> tuple[list[str], list[int], list[int]]:
    lines, selfs, cumulatives = [], [], []
    for _ in range(runs):
        err = subprocess.run(
            [python, "-X", "importtime", "-c", "pass"], env=env, capture_output=True, text=True, check=True
        ).stderr
        for line in err.splitlines():
            match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| *_overlay_venv_hook$", line)
            if match:
                lines.append(line)
                selfs.append(int(match.group(1)))
                cumulatives.append(int(match.group(2)))
    return lines, selfs, cumulatives


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _common.common_arguments(parser)
    parser.add_argument("-n", "--runs", type=int, default=40, help="measured runs per interpreter, interleaved (default 40)")
    args = parser.parse_args(argv)
    python = _common.resolve_python(args.python)

    with Scratch("bench-hook") as scratch:
        release = build_release(scratch, python)
        _common.header("start-up hook: NAME/bin/python -c pass, not activated, release PYTHONPATH set", release)
        env = release.env()
        work = scratch / "work"
        work.mkdir()
        overlay = work / "overlay"
        _common.run([sys.executable, "-m", "overlay_venv", "create", str(overlay)], env, cwd=work)
        # The comparison overlay: a copy (never the original) with the hook's .pth removed.
        nohook = work / "overlay-nohook"
        shutil.copytree(overlay, nohook, symlinks=True)
        pth = list(nohook.glob(f"lib/python*/site-packages/{HOOK_PTH}"))
        if len(pth) != 1:
            raise SystemExit(f"expected one {HOOK_PTH} in the overlay copy, found {pth}")
        pth[0].unlink()
        # For reference: a copy keeping our hook but without virtualenv's own _virtualenv.pth (a distutils patch).
        novirtualenv = work / "overlay-no-virtualenv-pth"
        shutil.copytree(overlay, novirtualenv, symlinks=True)
        for stale in novirtualenv.glob("lib/python*/site-packages/_virtualenv.pth"):
            stale.unlink()
        # And a copy with that patch made lazy (lazy_virtualenv.make_lazy), as create may write it.
        from overlay_venv.lazy_virtualenv import make_lazy

        lazy = work / "overlay-lazy-virtualenv"
        shutil.copytree(overlay, lazy, symlinks=True)
        made_lazy = any([make_lazy(site) for site in lazy.glob("lib/python*/site-packages")])

        # Sanity, not timed: the hook does its job in the original and is gone in the copy.
        probe = (
            "import sys; own = next(p for p in sys.path if p.startswith(sys.prefix) and p.endswith('site-packages'));"
            " print(sys.path.index(own) < sys.path.index(sys.argv[1]))"
        )
        for name, where, expected in (("overlay", overlay, "True"), ("copy without hook", nohook, "False")):
            got = _common.run([str(where / "bin" / "python"), "-c", probe, str(release.site)], env).stdout.strip()
            if got != expected:
                raise SystemExit(f"{name}: overlay site-packages ahead of PYTHONPATH is {got}, expected {expected}")

        commands = [
            ("overlay (hook active)", [str(overlay / "bin" / "python"), "-c", "pass"]),
            ("overlay copy, hook .pth removed", [str(nohook / "bin" / "python"), "-c", "pass"]),
            ("bare base interpreter", [str(release.python), "-c", "pass"]),
            ("(ref) overlay copy, virtualenv's _virtualenv.pth removed", [str(novirtualenv / "bin" / "python"), "-c", "pass"]),
            (
                "overlay copy, _virtualenv.pth made lazy" + ("" if made_lazy else " (nothing to do)"),
                [str(lazy / "bin" / "python"), "-c", "pass"],
            ),
        ]
        times: dict[str, list[float]] = {name: [] for name, _ in commands}
        for round_ in range(3 + args.runs):  # 3 warm-up rounds fill the bytecode cache and page cache
            shift = round_ % len(commands)
            for name, cmd in commands[shift:] + commands[:shift]:
                elapsed = timed(cmd, env)
                if round_ >= 3:
                    times[name].append(elapsed)

        hook, nohook_t, bare, _, lazy_t = (times[name] for name, _ in commands)
        paired = median([a - b for a, b in zip(hook, nohook_t)]) * 1e3
        base_ms = median(nohook_t) * 1e3
        rows = [
            [name, f"{median(values) * 1e3:.2f}", f"{min(values) * 1e3:.2f}", f"{(median(values) * 1e3 - base_ms):+.2f}"]
            for name, values in times.items()
        ]
        print(f"`python -c pass`, median of {args.runs} interleaved runs (3 warm-up rounds discarded):")
        print(table(["interpreter", "median ms", "min ms", "vs no hook ms"], rows))
        print()
        print(
            f"hook overhead: difference of medians {median(hook) * 1e3 - base_ms:+.2f} ms; "
            f"median of paired per-round differences {paired:+.2f} ms"
        )
        print()

        lines, selfs, cumulatives = importtime_lines(str(overlay / "bin" / "python"), env, runs=9)
        if lines:
            print("python -X importtime -c pass in the overlay (microseconds: self | cumulative | module):")
            print(f"  {lines[len(lines) // 2]}")
            print(
                f"  median of {len(selfs)} runs: self {median(selfs):.0f} us,"
                f" cumulative {median(cumulatives):.0f} us (warm bytecode cache)"
            )
        cold_env = {key: value for key, value in env.items() if key != "PYTHONPYCACHEPREFIX"}
        cold_env["PYTHONDONTWRITEBYTECODE"] = "1"
        _, cold_selfs, _ = importtime_lines(str(overlay / "bin" / "python"), cold_env, runs=9)
        if cold_selfs:
            print(
                "  with PYTHONDONTWRITEBYTECODE=1 and no cached .pyc (recompiled at every start):"
                f" self {median(cold_selfs):.0f} us"
            )
        print()

        overhead = max(paired, median(hook) * 1e3 - base_ms)
        print(
            f"Target: hook overhead <= {TARGET_MS:.0f} ms -> {'MET' if overhead <= TARGET_MS else 'MISSED'} ({overhead:+.2f} ms)"
        )
        print(
            f"(bare base interpreter: {median(bare) * 1e3:.2f} ms; an overlay without hook costs "
            f"{base_ms - median(bare) * 1e3:+.2f} ms over it, virtualenv's own site set-up)"
        )
        lazy_over = median([a - b for a, b in zip(lazy_t, bare)]) * 1e3
        print(
            f"with virtualenv's patch made lazy: {median(lazy_t) * 1e3:.2f} ms, {lazy_over:+.2f} ms over the bare interpreter"
            f" (median of paired differences; issue 13's target: <= +{TARGET_MS:.0f} ms)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
