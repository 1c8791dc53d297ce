"""`overlay-venv run` and `overlay-venv wrap`: commands and batch jobs inside an overlay, no sourcing."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from capabilities import require_shell, require_shellcheck
from conftest import ODD_NAME, clean_env, make_overlay, overlay_venv
from shells import PROBE, PosixShell

# The CLI as a job script or a shell would call it; any PATH works because the interpreter is absolute.
OV = [sys.executable, "-m", "overlay_venv"]
OV_SH = " ".join(shlex.quote(word) for word in OV)


def states(stdout: str) -> dict[str, dict]:
    """The probe lines (``@@{...}``) in some output, by label."""
    found = {}
    for line in stdout.splitlines():
        if line.startswith("@@"):
            state = json.loads(line[2:])
            found[state["label"]] = state
    return found


def entries(value: str | None) -> list[str]:
    return [] if value is None else value.split(":")


def assert_inside(state: dict, overlay: Path, release) -> None:
    """The command ran with exactly one copy of the overlay's and the release's entries, first the overlay's."""
    site = str(overlay / "lib" / "python3.9" / "site-packages")
    path = entries(state["PATH"])
    pythonpath = entries(state["PYTHONPATH"])
    assert path[0] == str(overlay / "bin") and path.count(str(overlay / "bin")) == 1
    assert pythonpath[0] == site and pythonpath.count(site) == 1
    assert pythonpath.count(str(release.site)) == 1 and path.count(str(release.bin)) == 1
    assert state["VIRTUAL_ENV"] == str(overlay)
    assert state["executable"] == str(overlay / "bin" / "python3")


@pytest.fixture(scope="module")
def kept(release39, tmp_path_factory) -> Path:
    """An overlay made from a clean shell with the release's setup.sh given to --setup and kept (as
    tests/test_release.py's), basepkg 2.0 installed."""
    dest = tmp_path_factory.mktemp("batch-kept") / "kept"
    overlay_venv("create", str(dest), "--setup", str(release39.root / "setup.sh"), "--keep-setup", env=clean_env())
    pip = [str(dest / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(release39.wheels)]
    subprocess.run([*pip, "basepkg==2.0"], env=release39.env(), check=True, capture_output=True)
    return dest


def probe(label: str) -> list[str]:
    return ["python3", str(PROBE), label]


def inherited_active(release, other: Path) -> dict[str, str]:
    """The environment a process inherits from a shell where ``other`` was activated (and exported)."""
    site = str(other / "lib" / "python3.9" / "site-packages")
    env = release.env(VIRTUAL_ENV=str(other), VIRTUAL_ENV_PROMPT=other.name)
    env["PATH"] = f"{other / 'bin'}:{env['PATH']}"
    env["PYTHONPATH"] = f"{site}:{env['PYTHONPATH']}"
    return env


# ---------------------------------------------------------------------------------------------- run


def test_run_imports_the_overlay_and_passes_the_exit_status(release39, overlay39, tmp_path):
    code = "import basepkg, sys; print(basepkg.__version__); sys.exit(7)"
    result = subprocess.run(
        [*OV, "run", str(overlay39), "--", "python", "-c", code],
        env=release39.env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert (result.returncode, result.stdout, result.stderr) == (7, "2.0\n", "")


def test_run_without_double_dash_and_with_options_in_the_command(release39, overlay39, tmp_path):
    # Options end at NAME: `-c` and `-E` belong to python, not to overlay-venv.
    result = subprocess.run(
        [*OV, "run", str(overlay39), "python", "-E", "-c", "import sys; print(sys.flags.ignore_environment)"],
        env=release39.env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert (result.returncode, result.stdout) == (0, "1\n"), result.stderr


def test_run_leaves_no_process_between_caller_and_command(release39, overlay39, tmp_path):
    """The command has overlay-venv's own pid (exec all the way), so a signal sent to what the caller
    started reaches the command itself, and the caller sees the command die of it."""
    proc = subprocess.Popen(
        [*OV, "run", str(overlay39), "--", "sh", "-c", "echo $$; exec sleep 30"],
        env=release39.env(),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
        # An ignored SIGINT is inherited through fork and exec: where pytest itself runs with SIGINT
        # ignored (`(trap "" INT; pytest)`, a nohup'd or backgrounded job), the command would never
        # see it. Start overlay-venv as an interactive caller would: SIGINT at its default.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert int(proc.stdout.readline()) == proc.pid
        proc.send_signal(signal.SIGINT)  # Python would turn it into KeyboardInterrupt and exit 1
        assert proc.wait(timeout=10) == -signal.SIGINT
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_run_command_killing_itself_looks_the_same_to_every_caller(release39, overlay39, tmp_path):
    command = [*OV, "run", str(overlay39), "--", "sh", "-c", "kill -TERM $$"]
    direct = subprocess.run(command, env=release39.env(), cwd=tmp_path)
    assert direct.returncode == -signal.SIGTERM
    shell = subprocess.run(
        ["sh", "-c", " ".join(map(shlex.quote, command)) + "; echo $?"],
        env=release39.env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert shell.stdout == "143\n"


def test_run_restores_the_signals_python_ignores(release39, overlay39, tmp_path):
    """Python ignores SIGPIPE for itself; the command must not inherit that, or `run ... | head` would
    leave it writing into a closed pipe."""
    result = subprocess.run(
        [*OV, "run", str(overlay39), "--", "grep", "^SigIgn", "/proc/self/status"],
        env=release39.env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    ignored = int(result.stdout.split()[1], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1))
    piped = subprocess.run(
        ["sh", "-c", f"{OV_SH} run {shlex.quote(str(overlay39))} -- yes | head -n 1"],
        env=release39.env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (piped.stdout, piped.stderr) == ("y\n", "")


def test_run_command_not_found(release39, overlay39, tmp_path):
    result = subprocess.run(
        [*OV, "run", str(overlay39), "--", "no-such-program-here", "x"],
        env=release39.env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 127
    assert result.stderr == (
        f"overlay-venv: error: no-such-program-here: command not found (searched PATH with the overlay {overlay39} active)\n"
    )


def test_run_refuses_what_is_not_an_overlay(release39, tmp_path):
    result = subprocess.run(
        [*OV, "run", str(tmp_path), "--", "true"], env=release39.env(), cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 1 and "not an overlay" in result.stderr


@pytest.mark.parametrize("shell", ["sh", "dash"])
def test_run_from_a_strict_job_shell(shell, release39, overlay39, tmp_path):
    """A job script under `set -eu`: run succeeds, and a failing command stops the script."""
    sh = require_shell(PosixShell(shell))
    ov = shlex.quote(str(overlay39))
    lines = [
        "set -eu",
        f"{OV_SH} run {ov} -- {' '.join(map(shlex.quote, probe('job')))}",
        f"{OV_SH} run {ov} -- false",
        "echo not reached",
    ]
    result = sh.run(lines, env=release39.env(), cwd=tmp_path, check=False)
    assert result.proc.returncode == 1 and "not reached" not in result.lines
    assert result["job"]["basepkg"] == "2.0"
    assert_inside(result["job"], overlay39, release39)


def test_run_from_sh_eu_c(release39, overlay39, tmp_path):
    command = f"{OV_SH} run {shlex.quote(str(overlay39))} -- {' '.join(map(shlex.quote, probe('c')))}"
    result = subprocess.run(["sh", "-eu", "-c", command], env=release39.env(), cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert_inside(states(result.stdout)["c"], overlay39, release39)


def test_run_applies_the_kept_setup_from_a_clean_environment(release39, kept, tmp_path):
    result = subprocess.run(
        [*OV, "run", str(kept), "--", *probe("kept")], env=clean_env(), cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    state = states(result.stdout)["kept"]
    assert state["basepkg"] == "2.0"
    assert_inside(state, kept, release39)


@pytest.mark.parametrize("active", ["other", "same"])
def test_run_with_an_overlay_active_in_the_callers_environment(active, release39, overlay39, second_overlay39, tmp_path):
    """The caller's shell had an overlay activated and exported its entries: the command sees only
    NAME's entries, once each, and nothing of the other overlay."""
    other = second_overlay39 if active == "other" else overlay39
    env = inherited_active(release39, other)
    result = subprocess.run(
        [*OV, "run", str(overlay39), "--", *probe("run")], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    state = states(result.stdout)["run"]
    assert state["basepkg"] == "2.0"
    assert_inside(state, overlay39, release39)
    if active == "other":
        assert not any(str(second_overlay39) in item for item in entries(state["PATH"]) + entries(state["PYTHONPATH"]))
    assert result.stderr == ""  # stale entries were dropped before the drift check: no warning


# --------------------------------------------------------------------------------------------- wrap


def wrap(overlay: Path, out: Path, *command: str, options: tuple[str, ...] = (), env=None) -> subprocess.CompletedProcess:
    return overlay_venv("wrap", str(overlay), "-o", str(out), *options, "--", *command, env=env or clean_env())


def test_wrapped_job_passes_shellcheck(release39, overlay39, kept, odd_overlay, tmp_path):
    require_shellcheck()
    awkward = ["python3", "-c", "import sys; print(sys.argv)", "$(touch pwned)", "it's", '"q"', "`x`", "a\nb", "!"]
    jobs = [
        (overlay39, ("--setup", str(release39.root / "setup.sh"))),
        (kept, ()),
        (odd_overlay, ("--setup", f"source {shlex.quote(str(release39.root / 'setup.sh'))}\necho ready")),
    ]
    for index, (overlay, options) in enumerate(jobs):
        out = tmp_path / f"job{index}.sh"
        wrap(overlay, out, *awkward, options=options)
        for dialect in ("sh", "dash", "bash"):
            result = subprocess.run(["shellcheck", "-s", dialect, str(out)], capture_output=True, text=True)
            assert result.returncode == 0, f"{out} as {dialect}:\n{result.stdout}"


def test_wrapped_job_runs_under_dash_set_eu_from_a_clean_environment(release39, kept, tmp_path):
    """The HTCondor/`sbatch --export=NONE` case: nothing set up; the kept setup does it. Arguments
    given to the job are appended to the command (here, the probe's label)."""
    job = tmp_path / "job.sh"
    wrap(kept, job, "python3", str(PROBE))
    assert os.access(job, os.X_OK) and job.read_text().startswith("#!/bin/sh\n")
    result = subprocess.run(["dash", "-eu", str(job), "job"], env=clean_env(), cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    state = states(result.stdout)["job"]
    assert state["basepkg"] == "2.0"
    assert_inside(state, kept, release39)
    # Run directly, as HTCondor runs its executable.
    direct = subprocess.run([str(job), "direct"], env=clean_env(), cwd=tmp_path, capture_output=True, text=True)
    assert states(direct.stdout)["direct"]["basepkg"] == "2.0", direct.stderr


def test_wrap_setup_option_makes_a_job_self_contained(release39, overlay39, tmp_path):
    job = tmp_path / "job.sh"
    notes = wrap(overlay39, job, "python3", str(PROBE), "own", options=("--setup", str(release39.root / "setup.sh")))
    assert "no release setup" not in notes.stderr
    result = subprocess.run(["dash", "-eu", str(job)], env=clean_env(), cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert_inside(states(result.stdout)["own"], overlay39, release39)
    # With the release already in the job's environment the setup is skipped: no second copy.
    again = subprocess.run(["dash", "-eu", str(job)], env=release39.env(), cwd=tmp_path, capture_output=True, text=True)
    assert_inside(states(again.stdout)["own"], overlay39, release39)


def test_wrap_runs_a_recorded_setup_that_was_not_kept(release39, tmp_path):
    overlay = tmp_path / "recorded"
    overlay_venv("create", str(overlay), "--no-pip", "--setup", str(release39.root / "setup.sh"), env=clean_env())
    job = tmp_path / "job.sh"
    wrap(overlay, job, "python3", str(PROBE), "rec")
    result = subprocess.run(["sh", "-eu", str(job)], env=clean_env(), cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    state = states(result.stdout)["rec"]
    assert state["basepkg"] == "1.0"  # the release's: nothing installed in this overlay
    assert_inside(state, overlay, release39)


def test_wrap_notes_a_missing_setup_and_the_job_then_uses_its_environment(release39, overlay39, tmp_path):
    job = tmp_path / "job.sh"
    notes = wrap(overlay39, job, "python3", str(PROBE), "env")
    assert "no release setup is recorded" in notes.stderr and "--setup" in notes.stderr
    result = subprocess.run(["dash", "-eu", str(job)], env=release39.env(), cwd=tmp_path, capture_output=True, text=True)
    assert_inside(states(result.stdout)["env"], overlay39, release39)


def test_pipeline_steps_use_their_own_overlays(release39, overlay39, second_overlay39, tmp_path):
    """Step two starts from step one's environment (overlay39 active and exported, as a job started
    with --export=ALL from inside step one would): it sees its own overlay only."""
    setup = ("--setup", str(release39.root / "setup.sh"))
    wrap(overlay39, tmp_path / "one.sh", "python3", str(PROBE), options=setup)
    wrap(second_overlay39, tmp_path / "two.sh", "python3", str(PROBE), options=setup)
    driver = [
        "set -eu",
        f"{shlex.quote(str(tmp_path / 'one.sh'))} one",
        f". {shlex.quote(str(overlay39 / 'bin' / 'activate'))}",
        f"{shlex.quote(str(tmp_path / 'two.sh'))} two",
    ]
    result = PosixShell("dash").run(driver, env=clean_env(), cwd=tmp_path)
    assert result["one"]["basepkg"] == "2.0"
    assert_inside(result["one"], overlay39, release39)
    assert result["two"]["basepkg"] == "1.0"
    assert_inside(result["two"], second_overlay39, release39)
    assert not any(str(overlay39) in item for item in entries(result["two"]["PATH"]) + entries(result["two"]["PYTHONPATH"]))


def test_wrapped_job_keeps_arguments_exactly_and_passes_the_status(release39, odd_overlay, tmp_path):
    args = ["$(touch pwned)", "it's", '"q"', "`touch pwned2`", "a\nb", "!", ""]
    job = tmp_path / "job.sh"
    code = "import json, sys; print(json.dumps(sys.argv[1:])); sys.exit(5)"
    wrap(odd_overlay, job, "python", "-c", code, *args, options=("--setup", str(release39.root / "setup.sh")))
    result = subprocess.run(["dash", "-eu", str(job), "extra arg"], env=clean_env(), cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 5, result.stderr
    assert json.loads(result.stdout) == [*args, "extra arg"]
    assert sorted(os.listdir(tmp_path)) == ["job.sh"]  # nothing ran: no pwned files


def test_wrapped_job_command_not_found_and_missing_overlay(release39, tmp_path):
    overlay = make_overlay(release39, tmp_path / "gone", "--no-pip", install=())
    job = tmp_path / "job.sh"
    wrap(overlay, job, "no-such-program-here", options=("--setup", str(release39.root / "setup.sh")))
    result = subprocess.run(["dash", str(job)], env=clean_env(), cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 127 and "no-such-program-here: command not found" in result.stderr
    shutil.rmtree(overlay)
    result = subprocess.run(["dash", str(job)], env=clean_env(), cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1 and f"the overlay {overlay} is not on this node" in result.stderr


def test_wrap_refuses_to_overwrite_without_force(release39, overlay39, tmp_path):
    job = tmp_path / "job.sh"
    job.write_text("precious\n")
    refused = overlay_venv("wrap", str(overlay39), "-o", str(job), "--", "true", env=clean_env(), check=False)
    assert refused.returncode == 1 and "--force" in refused.stderr
    assert job.read_text() == "precious\n"
    overlay_venv("wrap", str(overlay39), "-o", str(job), "--force", "--", "true", env=clean_env())
    assert job.read_text().startswith("#!/bin/sh\n")
    assert sorted(os.listdir(tmp_path)) == ["job.sh"]  # no temporary file left beside it


def test_wrap_to_stdout_and_help_has_examples(overlay39):
    text = overlay_venv("wrap", str(overlay39), "-o", "-", "--", "python", "x.py", env=clean_env()).stdout
    assert text.startswith("#!/bin/sh\n") and 'exec python x.py "$@"\n' in text
    for name in ("run", "wrap", "pack", "unpack"):
        assert "Examples:" in overlay_venv(name, "--help", env=clean_env()).stdout


def test_odd_name_is_data_in_the_job(release39, odd_overlay, tmp_path):
    """The overlay's directory name holds every character a shell might run; the job only reads it."""
    job = tmp_path / "job.sh"
    wrap(odd_overlay, job, "python3", str(PROBE), "odd", options=("--setup", str(release39.root / "setup.sh")))
    result = subprocess.run(["dash", "-eu", str(job)], env=clean_env(), cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert states(result.stdout)["odd"]["VIRTUAL_ENV"].endswith(ODD_NAME)
    assert sorted(os.listdir(tmp_path)) == ["job.sh"]


# ------------------------------------------------- the release setup gets no arguments of the command

# A release setup that, like ATLAS's, parses its own arguments: it says how many it got and fails on
# one that is not an option.
PARSING_SETUP = """\
printf 'relsetup: %s arguments\\n' "$#" >&2
case "${{1-}}" in
    '' | -*) ;;
    *) printf 'relsetup: unknown option %s\\n' "$1" >&2; return 2 ;;
esac
. {release_setup}
"""


@pytest.fixture(scope="module")
def parsing_setup(release39, tmp_path_factory) -> Path:
    script = tmp_path_factory.mktemp("relsetup") / "relsetup.sh"
    script.write_text(PARSING_SETUP.format(release_setup=shlex.quote(str(release39.root / "setup.sh"))))
    return script


@pytest.fixture(scope="module")
def parsing_kept(parsing_setup, release39, tmp_path_factory) -> Path:
    """An overlay created from a shell without the release, with the parsing setup kept; its
    bin/activate also says how many arguments it was sourced with (the kept setup runs inside it)."""
    dest = tmp_path_factory.mktemp("batch-parsing") / "eks"
    overlay_venv("create", str(dest), "--no-pip", "--keep-setup", "--setup", str(parsing_setup), env=clean_env())
    activate = dest / "bin" / "activate"
    activate.write_text("printf 'activate: %s arguments\\n' \"$#\" >&2\n" + activate.read_text())
    return dest


def test_run_sources_the_overlay_without_the_commands_arguments(parsing_kept, release39, tmp_path):
    result = subprocess.run(
        [*OV, "run", str(parsing_kept), "--", "python", "-c", "print(1)"],
        env=clean_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert (result.returncode, result.stdout) == (0, "1\n"), result.stderr
    assert result.stderr.splitlines() == ["activate: 0 arguments", "relsetup: 0 arguments"]


def test_wrapped_job_sources_the_overlay_without_the_jobs_arguments(parsing_kept, tmp_path):
    job = tmp_path / "job.sh"
    wrap(parsing_kept, job, "python", "-c", "import sys; print(sys.argv[1:])")
    result = subprocess.run(["dash", "-eu", str(job), "extra"], env=clean_env(), cwd=tmp_path, capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (0, "['extra']\n"), result.stderr
    assert result.stderr.splitlines() == ["activate: 0 arguments", "relsetup: 0 arguments"]


def test_wrapped_job_runs_its_own_setup_without_the_jobs_arguments(parsing_setup, overlay39, release39, tmp_path):
    job = tmp_path / "job.sh"
    wrap(overlay39, job, "python3", str(PROBE), options=("--setup", str(parsing_setup)))
    result = subprocess.run(["dash", "-eu", str(job), "own"], env=clean_env(), cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == "relsetup: 0 arguments\n", result.stderr
    assert_inside(states(result.stdout)["own"], overlay39, release39)
