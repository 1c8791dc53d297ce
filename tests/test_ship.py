"""`overlay-venv wrap --ship/--embed/--condor`: jobs that carry their overlay to a node where it is not
mounted, unpack it once per node into a cache, and HTCondor submit descriptions.

The overlay each test ships is removed after wrapping, so only the shipped copy can work. Jobs run
the way a batch system starts them: under dash -eu from an empty environment, and as an HTCondor
starter would (a fresh scratch directory holding only the transferred files, the environment
HTCondor sets and nothing else). The Slurm array is in tests/test_slurm.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from capabilities import require_capability
from conftest import clean_env, overlay_venv
from shells import PROBE

from overlay_venv.ship import tree_size


def missing(what: str) -> None:
    """Fail under CI=true, skip otherwise (tests/capabilities.py), naming what is missing."""
    require_capability(what, "needed by the wrap --ship/--condor tests")


def states(stdout: str) -> dict[str, dict]:
    return {state["label"]: state for state in (json.loads(line[2:]) for line in stdout.splitlines() if line.startswith("@@"))}


def make_kept(release, dest: Path) -> Path:
    """An overlay that sets the release up itself (--keep-setup), basepkg 2.0 over the release's 1.0."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    overlay_venv("create", str(dest), "--setup", str(release.root / "setup.sh"), "--keep-setup", env=clean_env())
    pip = [str(dest / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(release.wheels)]
    subprocess.run([*pip, "basepkg==2.0"], env=release.env(), check=True, capture_output=True)
    return dest


def wrap(overlay: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return overlay_venv("wrap", str(overlay), *args, env=clean_env(), check=check)


@pytest.fixture(scope="module")
def shipped(release39, tmp_path_factory) -> dict:
    """Jobs of one overlay, written and then the overlay removed: a condor job with its pack beside
    it (2 jobs queued), an embedded one, and one caching in a --ship-dir."""
    where = tmp_path_factory.mktemp("shipped")
    overlay = make_kept(release39, where / "ov" / "shipme")
    jobs = where / "jobs"
    jobs.mkdir()
    wrapped = wrap(overlay, "--condor", "--ship", "--jobs", "2", "-o", str(jobs / "job.sub"), "--", "python3", str(PROBE))
    wrap(overlay, "--embed", "-o", str(jobs / "embedded.sh"), "--", "python3", str(PROBE))
    cache = where / "node-cache"
    wrap(overlay, "--ship", "--ship-dir", str(cache), "-o", str(jobs / "cached.sh"), "--", "python3", str(PROBE))
    size = tree_size(overlay)
    shutil.rmtree(overlay)
    packs = sorted(jobs.glob("shipme-*.tar.gz"))
    return {"jobs": jobs, "packs": packs, "cache": cache, "overlay": overlay, "stdout": wrapped.stdout, "size": size}


def pack_of(shipped: dict, job: Path) -> Path:
    """The pack a file-shipping job script names."""
    (pack,) = [p for p in shipped["packs"] if p.name in job.read_text()]
    return pack


def condor_run(job: Path, transferred: list[Path], scratch: Path, *args: str) -> subprocess.CompletedProcess:
    """Run ``job`` as an HTCondor starter does: a new scratch directory holding the executable (as
    condor_exec.exe) and the transferred input files, that directory as the working directory, and
    only the environment HTCondor sets when getenv is false."""
    scratch.mkdir()
    executable = scratch / "condor_exec.exe"
    shutil.copy2(job, executable)
    for path in transferred:
        shutil.copy2(path, scratch / path.name)
    (scratch / ".job.ad").write_text("ProcId = 0\n")
    (scratch / ".machine.ad").write_text("Cpus = 1\n")
    env = {
        "_CONDOR_SCRATCH_DIR": str(scratch),
        "_CONDOR_SLOT": "slot1_1",
        "_CONDOR_JOB_AD": str(scratch / ".job.ad"),
        "_CONDOR_MACHINE_AD": str(scratch / ".machine.ad"),
        "_CONDOR_JOB_IWD": str(scratch),
        "_CONDOR_JOB_PIDS": "",
        "BATCH_SYSTEM": "HTCondor",
        "TMPDIR": str(scratch),
        "TMP": str(scratch),
        "TEMP": str(scratch),
        "OMP_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",  # not HTCondor's: keeps the release's bytecode caches unwritten
    }
    return subprocess.run([str(executable), *args], env=env, cwd=scratch, capture_output=True, text=True, timeout=120)


def assert_shipped_state(state: dict, entry: Path, release) -> None:
    """The command ran in the unpacked copy, which shadows the release's basepkg."""
    assert state["basepkg"] == "2.0"
    assert state["VIRTUAL_ENV"] == str(entry)
    assert state["executable"] == str(entry / "bin" / "python3")
    assert state["PYTHONPATH"].split(":") == [f"{entry}/lib/python{release.minor}/site-packages", str(release.site)]


def entries(cache_root: Path) -> list[str]:
    return sorted(os.listdir(cache_root)) if cache_root.is_dir() else []


def unpacks(cache_root: Path) -> list[str]:
    """The keys unpacked.log records, one per unpack."""
    log = cache_root / "unpacked.log"
    return [line.split()[1] for line in log.read_text().splitlines()] if log.is_file() else []


def cache_root_in(base: Path) -> Path:
    (root,) = base.glob("overlay-venv-ship-*")
    return root


# ------------------------------------------------------------------------------------------ HTCondor


def test_submit_description_is_accepted_by_htcondor(shipped):
    try:
        import htcondor2
    except ImportError:
        missing("the htcondor wheel (pip install -e '.[test]'), whose htcondor2.Submit checks the description")
    jobs = shipped["jobs"]
    submit = htcondor2.Submit((jobs / "job.sub").read_text())
    pack = pack_of(shipped, jobs / "job.sh")
    assert submit.getQArgs() == "2"
    assert submit.expand("executable") == str(jobs / "job.sh")
    assert submit.expand("transfer_input_files") == str(pack)
    assert submit.expand("should_transfer_files") == "YES"
    assert submit.expand("getenv") == "false"
    assert submit["arguments"] == "$(ProcId)"
    assert submit.expand("initialdir") == str(jobs)
    for key in ("output", "error", "log"):
        assert submit[key].startswith("job.$(ClusterId)")
    assert int(submit.expand("request_disk")) * 1024 >= shipped["size"]
    assert f"condor_submit {jobs / 'job.sub'}" in shipped["stdout"]


def test_condor_job_runs_in_a_fresh_scratch_with_only_the_transferred_files(shipped, release39, tmp_path):
    job = shipped["jobs"] / "job.sh"
    pack = pack_of(shipped, job)
    result = condor_run(job, [pack], tmp_path / "scratch", "1")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    short_hash = pack.name[len("shipme-") : -len(".tar.gz")]
    (entry,) = cache_root_in(tmp_path / "scratch").glob(short_hash + "*")
    assert_shipped_state(states(result.stdout)["1"], entry, release39)
    assert len(unpacks(entry.parent)) == 1


def test_shipped_job_on_each_base(release, tmp_path):
    """The unpack helper and the relocator run on the release's own interpreter: 3.9 and the newest."""
    overlay = make_kept(release, tmp_path / "ov" / "base")
    job = tmp_path / "job.sh"
    wrap(overlay, "--ship", "-o", str(job), "--", "python3", str(PROBE))
    (pack,) = tmp_path.glob("base-*.tar.gz")
    shutil.rmtree(overlay)
    result = condor_run(job, [pack], tmp_path / "scratch", "base")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    (entry,) = [p for p in cache_root_in(tmp_path / "scratch").iterdir() if p.is_dir()]
    assert_shipped_state(states(result.stdout)["base"], entry, release)


def test_embedded_job_needs_no_transferred_file(shipped, release39, tmp_path):
    result = condor_run(shipped["jobs"] / "embedded.sh", [], tmp_path / "scratch", "emb")
    assert result.returncode == 0, result.stderr
    (entry,) = [p for p in cache_root_in(tmp_path / "scratch").iterdir() if p.is_dir()]
    assert_shipped_state(states(result.stdout)["emb"], entry, release39)


def test_condor_job_without_its_pack_says_so(shipped, tmp_path):
    result = condor_run(shipped["jobs"] / "job.sh", [], tmp_path / "scratch", "x")
    # Not transferred, but still where it was written (a shared file system): found there.
    assert result.returncode == 0, result.stderr
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    job = shutil.copy2(shipped["jobs"] / "job.sh", moved / "job.sh")
    pack = pack_of(shipped, Path(job))
    hidden = pack.with_name(pack.name + ".hidden")
    pack.rename(hidden)
    try:
        result = condor_run(Path(job), [], tmp_path / "scratch2", "x")
    finally:
        hidden.rename(pack)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "the packed overlay is neither among the job's files" in result.stderr
    assert [p for p in cache_root_in(tmp_path / "scratch2").iterdir() if not p.name.endswith(".lock")] == []


def test_a_pack_that_is_not_the_jobs_own_is_refused(shipped, tmp_path, release39):
    job = shipped["jobs"] / "job.sh"
    pack = pack_of(shipped, job)
    fake = tmp_path / "fake" / pack.name
    fake.parent.mkdir()
    fake.write_bytes(pack.read_bytes()[:-100] + b"\0" * 100)
    result = condor_run(job, [fake], tmp_path / "scratch", "x")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "is not the pack this job script was written with" in result.stderr
    assert [p for p in cache_root_in(tmp_path / "scratch").iterdir() if not p.name.endswith(".lock")] == []


# ----------------------------------------------------------------------------------- the node cache


def run_cached(job: Path, tmp_path: Path, *args: str, path: str | None = None, **popen) -> subprocess.Popen:
    env = clean_env()
    if path:
        env["PATH"] = path
    return subprocess.Popen(
        ["dash", "-eu", str(job), *args],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def test_concurrent_jobs_on_one_node_unpack_once(shipped, release39, tmp_path):
    """Eight jobs started at once on an empty cache: one unpacks, the others wait and reuse it; a
    later job finds it ready."""
    job = shipped["jobs"] / "cached.sh"
    cache = shipped["cache"]
    shutil.rmtree(cache, ignore_errors=True)
    procs = [run_cached(job, tmp_path, f"job{index}") for index in range(8)]
    results = [(proc.wait(timeout=120), *proc.communicate()) for proc in procs]
    root = cache_root_in(cache)
    (entry,) = [p for p in root.iterdir() if p.is_dir()]
    for index, (status, out, err) in enumerate(results):
        assert status == 0 and err == "", err
        assert_shipped_state(states(out)[f"job{index}"], entry, release39)
    assert unpacks(root) == [entry.name]
    assert sorted(entries(root)) == sorted([entry.name, f".{entry.name}.lock", "unpacked.log"])
    later = run_cached(job, tmp_path, "later")
    assert later.wait(timeout=60) == 0
    assert_shipped_state(states(later.communicate()[0])["later"], entry, release39)
    assert len(unpacks(root)) == 1


def test_a_job_killed_during_unpack_leaves_nothing_used(shipped, release39, tmp_path):
    """A `tar` that stops after extracting stands for a job killed mid-unpack: the whole job (its
    process group, as batch systems kill) dies there; the next job neither uses nor trips over what
    it left, and unpacks afresh."""
    job = shipped["jobs"] / "cached.sh"
    cache = shipped["cache"]
    shutil.rmtree(cache, ignore_errors=True)
    fake = tmp_path / "fakebin"
    fake.mkdir()
    marker = tmp_path / "extracted"
    real_tar = shutil.which("tar")
    (fake / "tar").write_text(f'#!/bin/sh\n{real_tar} "$@" || exit\n: > {marker}\nexec sleep 120\n')
    (fake / "tar").chmod(0o755)
    proc = run_cached(job, tmp_path, "killed", path=f"{fake}:{clean_env()['PATH']}", start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the unpack never got to tar"
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.communicate()
    root = cache_root_in(cache)
    left = entries(root)
    assert any(name.startswith(".") and ".tmp-" in name for name in left), left
    assert not any(not name.startswith(".") and (root / name).is_dir() for name in left), left
    assert unpacks(root) == []
    after = run_cached(job, tmp_path, "after")
    out, err = after.communicate(timeout=120)
    assert after.returncode == 0 and err == "", err
    (entry,) = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert_shipped_state(states(out)["after"], entry, release39)
    assert not any(".tmp-" in name for name in entries(root))  # the leftovers were removed
    assert len(unpacks(root)) == 1


def small_disk_run(job: Path, mount: Path, size: int, cwd: Path) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run ``job`` with a tmpfs of ``size`` bytes mounted at ``mount`` (its --ship-dir), in a mount
    namespace of its own (no root needed, nothing left mounted); also what the job left in its
    cache directory there."""
    unshare = shutil.which("unshare")
    if unshare is None:
        missing("unshare (util-linux), to give a job a full disk")
    # Root makes a mount namespace outright; anyone else needs a user namespace for it.
    namespace = [unshare, "--mount"] if os.geteuid() == 0 else [unshare, "--user", "--map-root-user", "--mount"]
    tried = subprocess.run([*namespace, "true"], capture_output=True, text=True)
    if tried.returncode != 0:
        missing(f"a mount namespace for a small tmpfs ({tried.stderr.strip()})")
    mount.mkdir(parents=True, exist_ok=True)
    listing = cwd / "left.txt"
    program = (
        'mount -t tmpfs -o size="$1" overlay-venv-test "$2" || exit 99; m=$2; l=$3; shift 3; "$@"; s=$?; '
        'ls -A "$m"/overlay-venv-ship-* > "$l"; exit "$s"'
    )
    argv = [*namespace, "sh", "-c", program, "sh", str(size), str(mount), str(listing)]
    result = subprocess.run([*argv, "dash", "-eu", str(job), "full"], env=clean_env(), cwd=cwd, capture_output=True, text=True)
    if result.returncode == 99:
        missing(f"a tmpfs mount in a mount namespace ({result.stderr.strip()})")
    return result, listing.read_text().split()


@pytest.mark.parametrize("room", ["far-too-little", "a-little-too-little"])
def test_full_disk_is_one_clear_line(room, shipped, release39, tmp_path):
    """Too little space: found before unpacking, or met by tar halfway (each file takes whole pages on
    a tmpfs, so a disk as big as the files and a little more is full before the end). Either way one line, a
    non-zero exit, and no cache entry."""
    mount = tmp_path / "small"
    job = tmp_path / "job.sh"
    overlay_dir = tmp_path / "ov" / "tiny"
    overlay = make_kept(release39, overlay_dir)
    wrap(overlay, "--ship", "--ship-dir", str(mount), "-o", str(job), "--", "python3", str(PROBE))
    needed = tree_size(overlay)  # what the job checks it has room for
    shutil.rmtree(overlay)
    result, left = small_disk_run(job, mount, 256 * 1024 if room == "far-too-little" else needed + 64 * 1024, tmp_path)
    assert result.returncode == 1, result
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("overlay-venv job: error: no space left in ") and "--ship-dir" in result.stderr
    assert [name for name in left if not name.endswith(".lock")] == []  # no entry, no half-unpacked copy


# ----------------------------------------------------------------------------------- the job script


def test_shipped_jobs_pass_shellcheck(shipped):
    if shutil.which("shellcheck") is None:
        missing("shellcheck (scripts/install-test-deps.sh installs it)")
    for name in ("job.sh", "embedded.sh", "cached.sh"):
        for dialect in ("sh", "dash", "bash"):
            result = subprocess.run(["shellcheck", "-s", dialect, str(shipped["jobs"] / name)], capture_output=True, text=True)
            assert result.returncode == 0, f"{name} as {dialect}:\n{result.stdout}"


def test_cache_directory_of_someone_else_is_refused(shipped, tmp_path):
    """A cache directory this user does not own alone (here: writable by others) could hold an
    overlay someone planted: the job neither uses it nor writes into it."""
    job = shipped["jobs"] / "job.sh"
    scratch = tmp_path / "scratch"
    root = scratch / f"overlay-venv-ship-{os.getuid()}"
    root.mkdir(parents=True)
    root.chmod(0o777)
    env = {"PATH": clean_env()["PATH"], "_CONDOR_SCRATCH_DIR": str(scratch), "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(["dash", "-eu", str(job)], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "only they can write" in result.stderr
    assert os.listdir(root) == []


def test_wrap_refuses_what_it_cannot_ship(release39, overlay39, odd_overlay, tmp_path):
    job = str(tmp_path / "job.sh")
    cases = [
        ((odd_overlay, "--ship", "-o", job), "cannot ship"),
        ((overlay39, "--ship", "-o", "-"), "give -o a file name"),
        ((overlay39, "--jobs", "3", "-o", job), "--jobs goes with --condor"),
        ((overlay39, "--ship-dir", "/scratch", "-o", job), "--ship-dir goes with --ship"),
        ((overlay39, "--ship", "--ship-dir", "scratch", "-o", job), "must be an absolute path"),
        ((overlay39, "--condor", "-o", job), "FILE.sub"),
    ]
    for (overlay, *args), expected in cases:
        result = wrap(overlay, *args, "--", "true", check=False)
        assert result.returncode != 0 and expected in result.stderr, (args, result.stderr)
        assert result.stderr.strip().count("\n") == 0, result.stderr
    assert os.listdir(tmp_path) == []  # no pack, no script, no temporary file


def test_wrap_help_shows_shipping(overlay39):
    text = overlay_venv("wrap", "--help", env=clean_env()).stdout
    assert "--ship" in text and "--condor --ship --jobs 100" in text and "condor_submit job.sub" in text


def test_condor_without_ship_uses_the_mounted_overlay(release39, tmp_path):
    overlay = make_kept(release39, tmp_path / "mounted")
    wrap(overlay, "--condor", "-o", str(tmp_path / "run.sub"), "--", "python3", str(PROBE))
    text = (tmp_path / "run.sub").read_text()
    assert "transfer_input_files" not in text and "getenv                  = false" in text
    result = condor_run(tmp_path / "run.sh", [], tmp_path / "scratch", "mounted")
    assert result.returncode == 0, result.stderr
    state = states(result.stdout)["mounted"]
    assert state["basepkg"] == "2.0" and state["VIRTUAL_ENV"] == str(overlay)
    # Nothing unpacked: the overlay is mounted.
    assert sorted(os.listdir(tmp_path / "scratch")) == [".job.ad", ".machine.ad", "condor_exec.exe"]
