"""What uv's installs start ahead (backends.uv.UvAhead), with real uv behind a logging wrapper.

An install with uv asks the overlay's interpreter through ``uv python find`` as soon as it knows
the overlay, and makes its view of the layers in a thread as soon as the layers are read. The uv
runs that name the interpreter wait for that query; a query that hangs is stopped at the end and the
install goes on; a view that failed ahead is made by the install itself. Each case installs
basepkg 2.0 (shadowing the release's 1.0) into a new overlay (the first install: nothing cached for it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest
from capabilities import require_uv
from conftest import make_overlay

# Runs in the release's environment: the install operation with a UvBackend on the wrapper, then the
# thread each view_for ran in and the overlay's changes, as JSON on the last line.
DRIVER = textwrap.dedent(
    """\
    import json, sys, threading
    from pathlib import Path

    from overlay_venv.backends import IndexOptions, uv, uv_resolve
    from overlay_venv.operations.install import install
    from overlay_venv.overlay_lock import overlay_lock
    from overlay_venv.requests import read_requests

    wrapper, overlay, wheels, mode = sys.argv[1:5]
    uv.ASKING_SECONDS = float(sys.argv[5])
    calls, real_view_for = [], uv_resolve.view_for

    def view_for(*args):
        calls.append(threading.current_thread() is threading.main_thread())
        if mode == "view-fails" and len(calls) == 1:
            raise OSError(28, "No space left on device")
        return real_view_for(*args)

    uv_resolve.view_for = view_for
    index = IndexOptions(find_links=(wheels,), no_index=True)
    with overlay_lock(Path(overlay), "test", wait=True):
        result = install(Path(overlay), uv.UvBackend(wrapper), read_requests(["basepkg==2.0"]), index, (), True)
    changes = {change.display_name: [change.before, change.after] for change in result.changes}
    print(json.dumps({"view_in_main": calls, "changes": changes}))
    """
)

# uv itself, each run logged as it starts and ends, and whether the `python find` run was still there
# when it started (LOG.alive); `python find` hangs when the hang file exists.
WRAPPER = """\
#!/bin/sh
finder=$(awk '$4 == "python" {{ print $2; exit }}' "{log}" 2>/dev/null)
if [ -n "$finder" ] && [ -e "/proc/$finder" ]; then echo "$finder" >> "{log}.alive"; fi
echo "start $$ $(date +%s%N) $1 $2" >> "{log}"
export AHEAD_WHO="$1 $2 $3"  # the overlay's interpreter notes which uv run started it
if [ "$1 $2" = "python find" ] && [ -e "{hang}" ]; then exec sleep 600; fi
"{uv}" "$@"
status=$?
echo "end $$ $(date +%s%N) $1 $2" >> "{log}"
exit $status
"""


@pytest.fixture
def case(release39, tmp_path):
    uv = require_uv()
    log, hang = tmp_path / "uv.log", tmp_path / "hang"
    wrapper = tmp_path / "uv"
    wrapper.write_text(WRAPPER.format(log=log, hang=hang, uv=uv))
    wrapper.chmod(0o755)
    overlay = make_overlay(release39, tmp_path / "env", install=())
    started = tmp_path / "python-started-by"
    note = f"import os; os.environ.get('AHEAD_WHO') and open({str(started)!r}, 'a').write(os.environ['AHEAD_WHO'] + '\\n')\n"
    (next((overlay / "lib").glob("python3.*")) / "site-packages" / "zz_ahead_note.pth").write_text(note)
    env = release39.env(
        PIP_CONFIG_FILE=os.devnull, UV_NO_CONFIG="1", UV_CACHE_DIR=str(tmp_path / "uv-cache"), OVERLAY_VENV_PREFLIGHT="0"
    )

    def run(mode: str = "", asking_seconds: float = 10.0, cwd=None):
        args = [str(wrapper), str(overlay), str(release39.wheels), mode, str(asking_seconds)]
        result = subprocess.run([sys.executable, "-c", DRIVER, *args], env=env, capture_output=True, text=True, cwd=cwd)
        assert result.returncode == 0, result.stdout + result.stderr
        runs = [line.split(maxsplit=4) for line in log.read_text().splitlines()]
        return json.loads(result.stdout.splitlines()[-1]), runs

    return SimpleNamespace(run=run, hang=hang, alive=tmp_path / "uv.log.alive", started=started)


def events(runs, what: str) -> list[tuple[str, int]]:
    """(start|end, time in ns) of the uv runs whose first two words are ``what``."""
    return [(event, int(when)) for event, _, when, *words in runs if " ".join(words) == what]


def started_by(case) -> set[str]:
    """The uv runs (first two words) that started the overlay's interpreter."""
    return {" ".join(line.split()[:2]) for line in case.started.read_text().splitlines()}


def test_the_interpreter_is_asked_ahead_and_the_dry_run_waits_for_it(case):
    outcome, runs = case.run()
    assert outcome["changes"] == {"basepkg": [None, "2.0"]}
    assert runs[0][0] == "start" and runs[0][3:] == ["python", "find"], runs  # the first uv run of all
    ((_, asked_end),) = [e for e in events(runs, "python find") if e[0] == "end"]
    starts = [when for event, when in events(runs, "pip install") if event == "start"]
    assert len(starts) == 2  # the dry run and the install
    assert asked_end <= min(starts), runs
    assert not case.alive.exists()  # and gone (reaped) by then
    # Only the query started the overlay's interpreter: the dry run and the install found uv's answer cached.
    assert started_by(case) == {"python find"}, case.started.read_text()  # (uv's query starts it twice)
    # The view was made ahead, in a thread, and the install used it rather than making its own.
    assert outcome["view_in_main"] == [False]


def test_a_hanging_query_is_stopped_and_the_install_goes_on(case):
    case.hang.write_text("")
    outcome, runs = case.run(asking_seconds=0.5)
    assert outcome["changes"] == {"basepkg": [None, "2.0"]}
    (pid,) = [int(p) for event, p, _, *words in runs if words == ["python", "find"]]
    # Killed and reaped by the install: no such process (nor a zombie) once it is over.
    assert not os.path.exists(f"/proc/{pid}")
    # The dry run asked for itself, and no more uv runs than usual were made.
    assert len([1 for event, *_ in runs if event == "start"]) == 3
    # Stopped when the dry run gave up waiting, before it started: the install's run has none to wait for.
    assert not case.alive.exists(), case.alive.read_text()
    # The dry run asked the interpreter itself (the query never got to), and the install found that cached.
    assert started_by(case) == {"pip install"}, case.started.read_text()


def test_a_project_in_the_current_directory_does_not_change_the_query(case, tmp_path):
    """A project here whose requires-python no interpreter meets: the query is about the interpreter
    only (it runs with --no-project), and is still the only uv run that starts it."""
    here = tmp_path / "project"
    here.mkdir()
    (here / "pyproject.toml").write_text('[project]\nname = "elsewhere"\nversion = "1"\nrequires-python = ">=4"\n')
    outcome, _ = case.run(cwd=here)
    assert outcome["changes"] == {"basepkg": [None, "2.0"]}
    assert started_by(case) == {"python find"}, case.started.read_text()


def test_a_view_that_failed_ahead_is_made_by_the_install(case):
    outcome, _ = case.run(mode="view-fails")
    assert outcome["changes"] == {"basepkg": [None, "2.0"]}
    assert outcome["view_in_main"] == [False, True]


def test_without_a_cache_nothing_is_made_ahead(tmp_path, monkeypatch):
    """With no cache directory a view lives in the install's own temporary directory, which the
    thread does not have: it makes none, and the install makes it there."""
    from overlay_venv.backends import uv_resolve

    monkeypatch.setattr("overlay_venv.cachedir.cache_dir", lambda *parts: None)
    assert uv_resolve.view_for(str(tmp_path / "bin" / "python"), [], None) is None
    assert uv_resolve.view_for(str(tmp_path / "bin" / "python"), [], tmp_path) == tmp_path / "uv-view"


# The CLI, with each interpreter UvAhead starts for and each view it is told of printed to stderr.
CLI_NOTING_AHEAD = textwrap.dedent(
    """\
    import sys
    from overlay_venv.backends import uv

    enter, told = uv.UvAhead.__enter__, uv.UvAhead.layers_read

    def noted_enter(self):
        sys.stderr.write(f"ahead for {self.python}\\n")
        return enter(self)

    def noted_told(self, provided):
        sys.stderr.write(f"layers for {self.python}: {len(provided)}\\n")
        return told(self, provided)

    uv.UvAhead.__enter__, uv.UvAhead.layers_read = noted_enter, noted_told
    sys.argv[0] = "overlay-venv"
    from overlay_venv.cli import main
    main()
    """
)


def test_rebuild_with_uv_starts_ahead_too(release39, tmp_path):
    """rebuild installs into a staging overlay (an interpreter uv has not met) through the same
    ahead as install, and ends as install does."""
    require_uv()
    from conftest import overlay_venv

    env = release39.env(PIP_CONFIG_FILE=os.devnull, UV_NO_CONFIG="1", UV_CACHE_DIR=str(tmp_path / "uv-cache"))
    overlay = make_overlay(release39, tmp_path / "env", install=())
    sources = ["--no-index", "-f", str(release39.wheels)]
    overlay_venv("install", "--overlay", str(overlay), "--installer", "uv", "-q", *sources, "basepkg==2.0", env=env)
    cmd = [sys.executable, "-c", CLI_NOTING_AHEAD, "rebuild", str(overlay), "--installer", "uv", *sources]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    noted = [line for line in result.stderr.splitlines() if line.startswith(("ahead for", "layers for"))]
    assert len(noted) == 2 and noted[0].startswith("ahead for ") and noted[1].startswith("layers for "), result.stderr
    staged = noted[0].removeprefix("ahead for ")
    assert staged != str(overlay / "bin" / "python") and staged.endswith("/bin/python")  # the staging overlay's
    listed = json.loads(overlay_venv("list", str(overlay), "--json", env=env).stdout)
    assert ("basepkg", "2.0", "overlay") in {(d["name"], d["version"], d["label"]) for d in listed["distributions"]}
