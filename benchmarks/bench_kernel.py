#!/usr/bin/env python3
"""What a kernel from `overlay-venv kernel install` costs to start, against a kernelspec made with
`NAME/bin/python -m ipykernel install --prefix ...` for the same overlay.

One overlay on a simulated release (3.9 by default), ipykernel installed into it with --no-index from
the wheelhouse scripts/fetch-test-wheels.sh fills (scripts/test-wheels/jupyter.txt). Both kernelspecs
are started by jupyter_client's KernelManager in an environment without the release set up, as a
Jupyter server starts them; a start is timed from `start_kernel` to the reply of a first successful
`execute` (the kernel is then shut down). Rounds are paired: each times both kernels back to back,
in alternating order, so a burst of load from elsewhere falls on both sides of a round's ratio; the
verdict is the median of the per-round ratios, the ratio of the medians is printed beside it.
The first round only warms caches and is not counted.

Target: our kernel starts in at most 1.3x the time of the plain ipykernel kernelspec's.

    python benchmarks/bench_kernel.py [--python 3.9] [--rounds 15]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import _common
from _common import ROOT, Scratch, build_release, median, table

TARGET_RATIO = 1.3
WHEELHOUSE = Path(os.environ.get("OVERLAY_VENV_TEST_WHEELS", ROOT / ".test-wheels"))


def start_and_execute(kernels: Path, name: str, env: dict[str, str]) -> float:
    """Seconds from start_kernel to the reply of a first successful execute."""
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    manager = KernelManager(kernel_name=name, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
    start = time.perf_counter()
    manager.start_kernel(env=env)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        reply = client.execute_interactive("x = 1", timeout=120)
        elapsed = time.perf_counter() - start
        if reply["content"]["status"] != "ok":
            raise SystemExit(f"{name}: execute failed: {reply['content']}")
        return elapsed
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _common.common_arguments(parser)
    parser.add_argument("--rounds", type=int, default=15, help="measured paired rounds (default 15)")
    args = parser.parse_args(argv)
    python = _common.resolve_python(args.python)
    try:
        import jupyter_client  # noqa: F401
    except ImportError:
        raise SystemExit("jupyter_client is missing: pip install -e '.[test]'") from None
    if not any(WHEELHOUSE.glob("ipykernel-*.whl")):
        raise SystemExit(f"no ipykernel wheels in {WHEELHOUSE}: run bash scripts/fetch-test-wheels.sh")

    with Scratch("bench-kernel") as scratch:
        release = build_release(scratch, python)
        _common.header("kernel start-up: overlay-venv kernel install vs ipykernel install", release)
        env = release.env()
        overlay = scratch / "ana"
        tool = [sys.executable, "-m", "overlay_venv"]
        _common.run([*tool, "create", str(overlay)], env)
        _common.run([*tool, "install", "--overlay", str(overlay), "-q", "--no-index", "-f", str(WHEELHOUSE), "ipykernel"], env)
        data = scratch / "jupyter"
        server = {**_common.clean_env(scratch), "JUPYTER_DATA_DIR": str(data)}  # no release set up
        _common.run([*tool, "kernel", "install", str(overlay), "--name", "ours"], server)
        prefix = scratch / "prefix"
        plain = [str(overlay / "bin" / "python"), "-m", "ipykernel", "install", "--prefix", str(prefix), "--name", "plain"]
        _common.run(plain, env)
        kinds = {"ours": data / "kernels", "plain": prefix / "share" / "jupyter" / "kernels"}
        for name, kernels in kinds.items():
            argv = json.loads((kernels / name / "kernel.json").read_text())["argv"]
            print(f"{name:<6} argv: {' '.join(argv)}")
        print()

        times: dict[str, list[float]] = {name: [] for name in kinds}
        for round_ in range(1 + args.rounds):
            order = list(kinds) if round_ % 2 else list(reversed(kinds))
            for name in order:
                elapsed = start_and_execute(kinds[name], name, server)
                if round_:
                    times[name].append(elapsed)

        rows = [[name, f"{median(values):.3f}", f"{min(values):.3f}", f"{max(values):.3f}"] for name, values in times.items()]
        print(f"start_kernel to first execute reply, {args.rounds} paired rounds (s):")
        print(table(["kernelspec", "median", "min", "max"], rows))
        print()
        paired = median([ours / plain for ours, plain in zip(times["ours"], times["plain"])])
        of_medians = median(times["ours"]) / median(times["plain"])
        print(f"ours / plain: median of per-round ratios {paired:.2f}x, ratio of medians {of_medians:.2f}x")
        print(
            f"Target: start-up <= {TARGET_RATIO}x the ipykernel install kernelspec's -> "
            f"{'MET' if paired <= TARGET_RATIO else 'MISSED'} ({paired:.2f}x, median of per-round ratios)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
