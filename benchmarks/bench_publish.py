#!/usr/bin/env python3
"""What `overlay-venv publish` costs against `cp -a` of the same overlay, and what resolving a store
reference adds to `overlay-venv run`.

One overlay on a simulated release, filled like a notebook environment: ipykernel and its dependencies
(IPython, jedi, ... some thousands of files) from the test wheelhouse (`bash scripts/fetch-test-wheels.sh`),
or, without it, a generated wheel of 3000 small modules. Each round times, in alternating order:

- `overlay-venv publish OVERLAY STORE/team/ana` into a new store (a real copy: relocation, read-only
  modes, the id, the tag), the console script as a user runs it;
- `cp -a OVERLAY DIR` into a new directory (the removals of earlier copies are not timed);

and then `overlay-venv run team/ana:v1 -- true` against `overlay-venv run STORE/team/ana/ids/ID -- true`
(the same overlay by path). Verdicts use the median of the per-round ratios (publish) and of the
per-round differences (run).

Targets: publish <= 1.5x `cp -a`; a reference adds <= 5 ms to `run`.

    python benchmarks/bench_publish.py [--python 3.9] [--repeats 9]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import _common
from _common import Scratch, build_release, median, run, table, tool_script
from bench_ship import timed_run

PUBLISH_TARGET = 1.5
RESOLVE_TARGET_MS = 5.0


def wheelhouse() -> Path | None:
    path = Path(os.environ.get("OVERLAY_VENV_TEST_WHEELS", _common.ROOT / ".test-wheels"))
    return path if any(path.glob("ipykernel-*.whl")) else None


def fill(overlay: Path, env: dict, scratch: Path) -> str:
    pip = [str(overlay / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index"]
    found = wheelhouse()
    if found is not None:
        run([*pip, "--find-links", str(found), "ipykernel"], env=env)
        return f"ipykernel and its dependencies from {found}"
    import make_base

    modules = {f"bulk/m{i:04d}.py": f"VALUE = {i}\n" + "# padding\n" * 200 for i in range(3000)}
    modules["bulk/__init__.py"] = "__version__ = '1.0'\n"
    wheel = make_base.build_wheel(scratch / "generated", "bulk", "1.0", modules=modules)
    run([*pip, str(wheel)], env=env)
    return "a generated wheel of 3000 modules (no test wheelhouse)"


def timed(cmd: list[str], env: dict, cwd: Path, cpu: list[float] | None = None) -> float:
    """Wall time of one run; its CPU time (user + system, children included) appended to ``cpu``:
    CPU time moves less with load from elsewhere on a shared machine."""
    wall, used = timed_run(cmd, env, cwd)
    if cpu is not None:
        cpu.append(used)
    return wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _common.common_arguments(parser)
    parser.add_argument("--repeats", type=int, default=9, help="measured rounds (default 9)")
    args = parser.parse_args(argv)
    python = _common.resolve_python(args.python)
    tool = tool_script()

    with Scratch("bench-publish") as scratch:
        release = build_release(scratch, python)
        _common.header("publish against cp -a, and a reference's cost in run", release)
        env = release.env()
        work = scratch / "work"
        work.mkdir()
        overlay = work / "ana"
        run([tool, "create", str(overlay)], env=env)
        what = fill(overlay, env, scratch)
        files = sum(1 for _ in overlay.rglob("*"))
        size = sum(path.lstat().st_size for path in overlay.rglob("*"))
        print(f"overlay: {what}; {files} files and directories, {size / 1048576:.1f} MiB")
        print(f"{args.repeats} paired rounds after a warm-up")
        print()

        cpu: dict[str, list[float]] = {"publish": [], "cp -a": []}

        def publish(round_: int) -> float:
            store = work / f"store{round_}"
            store.mkdir()
            cmd = [tool, "publish", str(overlay), str(store / "team" / "ana"), "--tag", "v1"]
            return timed(cmd, env, work, cpu["publish"] if round_ >= 0 else None)

        def copy(round_: int) -> float:
            return timed(
                ["cp", "-a", str(overlay), str(work / f"copy{round_}")], env, work, cpu["cp -a"] if round_ >= 0 else None
            )

        publish(-1), copy(-1)  # warm-ups: page cache, bytecode
        times: dict[str, list[float]] = {"publish": [], "cp -a": []}
        for round_ in range(args.repeats):
            order = [("publish", publish), ("cp -a", copy)]
            for name, step in order if round_ % 2 == 0 else reversed(order):
                times[name].append(step(round_))
            for leftover in (work / f"store{round_ - 1}", work / f"copy{round_ - 1}"):
                if leftover.exists():
                    run(["chmod", "-R", "u+w", str(leftover)], env=env)
                    shutil.rmtree(leftover)

        store = work / f"store{args.repeats - 1}"  # the last round's, still there
        run_env = dict(env, OVERLAY_VENV_STORES=str(store))
        (id_,) = os.listdir(store / "team" / "ana" / "ids")
        by_path = [tool, "run", str(store / "team" / "ana" / "ids" / id_), "--", "true"]
        by_reference = [tool, "run", "team/ana:v1", "--", "true"]
        timed(by_path, run_env, work), timed(by_reference, run_env, work)
        runs: dict[str, list[float]] = {"run by path": [], "run by reference": []}
        for round_ in range(args.repeats * 3):
            pair = [("run by path", by_path), ("run by reference", by_reference)]
            for name, cmd in pair if round_ % 2 == 0 else reversed(pair):
                runs[name].append(timed(cmd, run_env, work))

        sys.path.insert(0, str(_common.ROOT / "src"))
        from overlay_venv import refs

        os.environ[refs.STORES_VARIABLE] = str(store)
        os.chdir(work)
        calls = 2000
        start = time.perf_counter()
        for _ in range(calls):
            refs.overlay_argument("team/ana:v1")
        in_process = (time.perf_counter() - start) / calls

        rows = [
            [
                name,
                f"{median(values) * 1e3:.1f}",
                f"{min(values) * 1e3:.1f}",
                f"{median(cpu[name]) * 1e3:.1f}" if name in cpu else "",
            ]
            for name, values in {**times, **runs}.items()
        ]
        print(table(["what", "wall median ms", "wall min ms", "CPU median ms"], rows))
        print()
        ratio = median([p / c for p, c in zip(times["publish"], times["cp -a"])])
        cpu_ratio = median([p / c for p, c in zip(cpu["publish"], cpu["cp -a"])])
        added = median([r - p for r, p in zip(runs["run by reference"], runs["run by path"])]) * 1e3
        verdict = "ok" if ratio <= PUBLISH_TARGET else "OVER TARGET"
        print(
            f"publish / cp -a (median of paired ratios): {ratio:.2f}x wall, {cpu_ratio:.2f}x CPU  "
            f"(target <= {PUBLISH_TARGET}x wall: {verdict})"
        )
        verdict = "ok" if added <= RESOLVE_TARGET_MS else "OVER TARGET"
        print(
            f"run by reference - run by path (median of paired differences): {added:+.1f} ms  "
            f"(target <= {RESOLVE_TARGET_MS:.0f} ms: {verdict})"
        )
        print(f"refs.overlay_argument('team/ana:v1') in process: {in_process * 1e6:.0f} us a call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
