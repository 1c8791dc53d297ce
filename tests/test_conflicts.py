"""`overlay-venv install` when every recent release of a request pins a held package (issue 17).

On the index scripts/make_conflict_index.py builds (built once per session): the base has corelib 1.20.0
and clientlib 1.4, which requires corelib==1.20; tool has 8 old releases that fit and 300 newer ones
that each pin a newer corelib; gizmo has the same 300 above an old sdist that no longer builds. The
pre-flight reads the index before pip runs, so pip never backtracks through the 300 (the benchmark,
benchmarks/bench_conflicts.py, times that against plain pip); here only the answers are checked, on the
3.9 and the 3.13 base, from a file:// index, an index over http, and a find-links directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import make_conflict_index as index_script
import pytest
from capabilities import require_uv
from conftest import BASE_PYTHONS, build_release, make_overlay, make_read_only, overlay_venv
from test_install import job_env, overlay_state

NEWEST = f"1.{index_script.RELEASES - 1}.0"
NEWEST_CORELIB = index_script.conflicting(index_script.RELEASES - 1)
FITTING = index_script.NEWEST_FITTING
HOLDER = "clientlib 1.4 (base) requires corelib==1.20"


@pytest.fixture(scope="session")
def conflict_index(tmp_path_factory) -> Path:
    return index_script.build_index(tmp_path_factory.mktemp("conflict-index") / "index")


@pytest.fixture(scope="session", params=BASE_PYTHONS, ids=lambda minor: f"py{minor}")
def conflict_release(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"conflict-release{request.param}")
    rel = build_release(root, request.param, base=(), wheels=())
    index_script.add_base(rel.site, root / "scratch")
    rel.mounted = make_read_only(rel.root)
    yield rel
    if rel.mounted:
        subprocess.run(["umount", str(rel.root)], check=False)


@pytest.fixture(scope="session")
def served_index(conflict_index):
    """The same index over http, from a server on localhost in a thread (kept-alive, Range answered)."""
    server, url = index_script.serve(conflict_index)
    yield url
    server.shutdown()
    server.server_close()


def sources(kind: str, conflict_index: Path, served_index: str = "") -> list[str]:
    if kind == "file":
        return ["--index-url", (conflict_index / "simple").as_uri()]
    if kind == "http":
        return ["--index-url", f"{served_index}/simple/"]
    if kind == "http-no-metadata":  # no metadata files: the pre-flight reads each wheel's METADATA by ranges
        return ["--index-url", f"{served_index}/plain/"]
    return ["--no-index", "--find-links", str(conflict_index / "wheels")]


def run_install(release, overlay: Path, *args: str) -> subprocess.CompletedProcess:
    return overlay_venv("install", "--overlay", str(overlay), *args, env=job_env(release), check=False)


def versions(release, overlay: Path) -> dict[str, tuple[str, str]]:
    document = json.loads(overlay_venv("list", str(overlay), "--json", env=job_env(release)).stdout)
    return {d["name"]: (d["version"], d["label"]) for d in document["distributions"]}


@pytest.fixture
def fresh_overlay(conflict_release, tmp_path) -> Path:
    return make_overlay(conflict_release, tmp_path / "env", install=())


@pytest.mark.parametrize("kind", ["file", "http", "http-no-metadata", "find-links"])
def test_installs_the_newest_release_that_fits_and_says_why(conflict_release, conflict_index, served_index, fresh_overlay, kind):
    result = run_install(conflict_release, fresh_overlay, *sources(kind, conflict_index, served_index), "tool")
    assert result.returncode == 0, result.stdout + result.stderr
    assert versions(conflict_release, fresh_overlay)["tool"] == (FITTING, "overlay")
    assert versions(conflict_release, fresh_overlay)["corelib"] == (index_script.HELD, "base")
    (note,) = [line for line in result.stderr.splitlines() if line.startswith("note: ")]
    assert f"300 releases of tool (1.0.0 to {NEWEST})" in note
    assert f"the base's corelib 1.20.0 (held: {HOLDER})" in note
    assert f"tool {NEWEST} requires corelib=={NEWEST_CORELIB}" in note
    assert f"installing tool {FITTING}, the newest that fits" in note
    assert f"--allow-shadow corelib for tool {NEWEST}" in note
    # pip was handed the bound, so it looked at no release the pre-flight had ruled out.
    assert f"tool-{NEWEST}" not in result.stderr and "tool-1.0.0" not in result.stderr


def test_a_pinned_release_that_does_not_fit_is_refused_before_pip_runs(conflict_release, conflict_index, fresh_overlay):
    before = overlay_state(fresh_overlay)
    result = run_install(conflict_release, fresh_overlay, *sources("file", conflict_index), f"tool=={NEWEST}")
    assert result.returncode == 1 and result.stdout == ""
    err = result.stderr
    assert f"cannot install tool=={NEWEST} without replacing base packages that others need:" in err
    assert f"tool {NEWEST} requires corelib=={NEWEST_CORELIB}" in err
    assert f"corelib is held at the base's 1.20.0: {HOLDER}" in err
    assert f"ask for tool {FITTING}, the newest that works with the held versions: 'tool=={FITTING}'" in err
    assert "--allow-shadow corelib" in err
    refused = "no release that works with the base's held packages: nothing was installed; the overlay is unchanged"
    assert err.rstrip().splitlines()[-1] == f"overlay-venv: error: {refused}"
    assert "Looking in indexes" not in err  # pip never ran
    assert overlay_state(fresh_overlay) == before


def test_nothing_that_fits_is_refused_with_the_count(conflict_release, conflict_index, fresh_overlay):
    before = overlay_state(fresh_overlay)
    result = run_install(conflict_release, fresh_overlay, *sources("find-links", conflict_index), "tool>=1")
    assert result.returncode == 1
    assert "and so do the 299 older releases of tool (1.0.0 to 1.298.0)" in result.stderr
    assert f"'tool=={FITTING}'" in result.stderr
    assert overlay_state(fresh_overlay) == before


def test_allow_shadow_gets_the_newest_release_and_its_corelib(conflict_release, conflict_index, fresh_overlay):
    result = run_install(conflict_release, fresh_overlay, *sources("file", conflict_index), "tool", "--allow-shadow", "corelib")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = versions(conflict_release, fresh_overlay)
    assert rows["tool"] == (NEWEST, "overlay") and rows["corelib"] == (NEWEST_CORELIB, "overlay")
    assert "note: " not in result.stderr
    assert f"broken: {HOLDER}" in result.stdout


def test_a_build_error_after_the_holds_names_them(conflict_release, conflict_index, fresh_overlay):
    """gizmo's 300 releases are ruled out; pip is left the old sdist, which fails to build: the error
    says which holds pip ran with, and that the newer releases were left out because of them."""
    before = overlay_state(fresh_overlay)
    result = run_install(conflict_release, fresh_overlay, *sources("file", conflict_index), "gizmo")
    assert result.returncode == 1
    err = result.stderr
    assert "gizmo 0.9 no longer builds" in err  # pip's own words, shown as it ran
    assert "pip ran with these base packages held at the base's versions:" in err
    assert f"  corelib==1.20.0: {HOLDER}" in err
    assert f"300 releases of gizmo (1.0.0 to {NEWEST}) left out" in err and "--allow-shadow corelib allows them" in err
    assert err.rstrip().endswith("failed (exit status 1): nothing was installed; the overlay is unchanged")
    assert overlay_state(fresh_overlay) == before


def test_with_the_pre_flight_off_pip_backtracks_to_the_same_release(conflict_release, conflict_index, tmp_path):
    """What the pre-flight hands pip is what pip finds given time: on a smaller index (30 releases, so
    pip's backtracking stays quick), both end with the same tool."""
    small = index_script.build_index(tmp_path / "small", releases=30)
    results = {}
    for preflight in ("1", "0"):
        overlay = make_overlay(conflict_release, tmp_path / f"env{preflight}", install=())
        env = job_env(conflict_release, OVERLAY_VENV_PREFLIGHT=preflight)
        args = ("install", "--overlay", str(overlay), "--no-index", "-f", str(small / "wheels"), "tool")
        result = overlay_venv(*args, env=env, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        results[preflight] = versions(conflict_release, overlay)["tool"]
    assert results["1"] == results["0"] == (FITTING, "overlay")


def test_the_uv_installer_gets_the_same_answer(conflict_release, conflict_index, fresh_overlay):
    require_uv()
    result = run_install(conflict_release, fresh_overlay, *sources("file", conflict_index), "--installer", "uv", "tool")
    assert result.returncode == 0, result.stdout + result.stderr
    assert versions(conflict_release, fresh_overlay)["tool"] == (FITTING, "overlay")
    assert any(line.startswith("note: ") for line in result.stderr.splitlines())


# The install operation with a backend: a UvBackend on a wrapper (below), or a plugged-in one ("plain",
# "claims"). Prints when the pre-flight started and ended (ns), the constraints "plain" was given, and
# the overlay's changes, the one-line error or the bug reported, as JSON on the last line.
UV_DRIVER = """\
import json, sys, time
from pathlib import Path

from overlay_venv.backends import IndexOptions, uv
from overlay_venv.backends.pip import PipBackend
from overlay_venv.errors import OverlayError
from overlay_venv.operations import install as operation
from overlay_venv.overlay_lock import overlay_lock
from overlay_venv.requests import read_requests

wrapper, overlay, index_url, request = sys.argv[1:5]
judged, real_preflight, seen = [], operation.preflight, []


class Plain(PipBackend):  # a plugged-in installer that leaves the pre-flight to the caller
    def install(self, job):
        seen.append(job.constraints.read_text())
        return super().install(job)


class Claims(PipBackend):  # one that says it judges while resolving, and does not
    judges_while_resolving = True


backend = {"plain": Plain, "claims": Claims}.get(wrapper, lambda: uv.UvBackend(wrapper))()

def preflight(*args):
    judged.append(time.time_ns())
    try:
        return real_preflight(*args)
    finally:
        judged.append(time.time_ns())

operation.preflight = preflight
outcome = {}
with overlay_lock(Path(overlay), "test", wait=True):
    try:
        index = IndexOptions(index_url=index_url)
        result = operation.install(Path(overlay), backend, read_requests([request]), index, (), True)
        outcome["changes"] = {change.display_name: change.after for change in result.changes}
    except OverlayError as exc:
        outcome["error"] = exc.message
    except RuntimeError as exc:
        outcome["bug"] = str(exc)
print(json.dumps({"preflight": judged, "seen": seen, **outcome}))
"""

# uv itself (exec'd: a kill reaches uv), each run logged as it starts; a dry run's first -c file (the
# holds, and the pre-flight's bounds once it has added them) is copied beside the log.
UV_WRAPPER = """\
#!/bin/sh
dry=""; previous=""; holds=""
for arg in "$@"; do
    [ "$arg" = "--dry-run" ] && dry="dry"
    [ "$previous" = "-c" ] && [ -z "$holds" ] && holds="$arg"
    previous="$arg"
done
[ -n "$dry" ] && cp "$holds" "{log}.$$"
echo "$$ $(date +%s%N) $1 $2 $dry" >> "{log}"
exec "{uv}" "$@"
"""


def drive(backend: str, overlay: Path, conflict_index: Path, request: str, env: dict) -> dict:
    """UV_DRIVER's outcome for one install."""
    args = [backend, str(overlay), (conflict_index / "simple").as_uri(), request]
    result = subprocess.run([sys.executable, "-c", UV_DRIVER, *args], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.fixture
def uv_logged(conflict_release, conflict_index, fresh_overlay, tmp_path):
    uv = require_uv()
    log, wrapper = tmp_path / "uv.log", tmp_path / "uv"
    wrapper.write_text(UV_WRAPPER.format(log=log, uv=uv))
    wrapper.chmod(0o755)

    def run(request: str):
        env = job_env(conflict_release, UV_CACHE_DIR=str(tmp_path / "uv-cache"))
        outcome = drive(str(wrapper), fresh_overlay, conflict_index, request, env)
        runs = [line.split() for line in log.read_text().splitlines()]
        dry = [(int(pid), int(when)) for pid, when, *words in runs if words[-1:] == ["dry"]]
        dry_runs = [(pid, when, Path(f"{log}.{pid}").read_text()) for pid, when in dry]
        installs = [int(when) for pid, when, *words in runs if words == ["pip", "install"]]
        return outcome, dry_runs, installs

    return run


def test_uv_resolves_while_the_pre_flight_reads_the_index(uv_logged):
    """A request the pre-flight lets through as it is: one dry run, started before the pre-flight ended."""
    outcome, dry_runs, installs = uv_logged(f"tool=={FITTING}")
    assert outcome["changes"] == {"tool": FITTING}
    ((_, started, holds),) = dry_runs
    _, judged_end = outcome["preflight"]
    assert started < judged_end and "corelib==1.20.0" in holds and "tool<" not in holds
    assert len(installs) == 1 and installs[0] > judged_end


def test_uv_resolves_again_with_the_bounds_the_pre_flight_added(uv_logged):
    """The newest tool releases clash with the held corelib: the dry run started without the pre-flight's
    bound is stopped and made again with it, and the install follows the second one."""
    outcome, dry_runs, installs = uv_logged("tool")
    assert outcome["changes"] == {"tool": FITTING}
    (first_pid, first, first_holds), (_, second, second_holds) = dry_runs
    _, judged_end = outcome["preflight"]
    assert first < judged_end < second
    assert "tool<" not in first_holds and f"tool<={FITTING}" in second_holds.replace(" ", ""), second_holds
    assert not os.path.exists(f"/proc/{first_pid}")  # stopped and reaped
    assert len(installs) == 1 and installs[0] > second


def test_a_refusal_stops_uvs_dry_run_and_installs_nothing(uv_logged, fresh_overlay):
    before = overlay_state(fresh_overlay)
    outcome, dry_runs, installs = uv_logged(f"tool=={NEWEST}")
    assert outcome["error"].startswith("no release that works with the base's held packages: nothing was installed")
    ((pid, _, _),) = dry_runs
    assert not os.path.exists(f"/proc/{pid}") and installs == []
    assert overlay_state(fresh_overlay) == before


def test_an_installer_that_does_not_judge_gets_the_bounds_before_it_runs(conflict_release, conflict_index, fresh_overlay):
    """The Backend contract for plugged-in installers: one that leaves the pre-flight to the caller is
    given constraints that already hold its bound; one that says it judges and does not is a bug,
    said so, and the install is rolled back."""
    env = job_env(conflict_release)
    outcome = drive("plain", fresh_overlay, conflict_index, "tool", env)
    assert outcome["changes"] == {"tool": FITTING}, outcome
    (constraints,) = outcome["seen"]
    assert "corelib==1.20.0" in constraints and f"tool<={FITTING}" in constraints.replace(" ", "")

    other = make_overlay(conflict_release, fresh_overlay.parent / "other", install=())
    outcome = drive("claims", other, conflict_index, "tool", env)
    assert outcome["bug"] == "the pip backend installed without running the pre-flight", outcome
    assert "tool" not in versions(conflict_release, other)  # rolled back
    assert not (other / ".overlay-venv-txn").exists()
