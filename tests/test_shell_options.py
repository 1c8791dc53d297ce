"""Activation fuzzed under the option sets a user's shell may have.

For each shell and option set (zsh's GLOB_SUBST, SH_WORD_SPLIT, KSH_ARRAYS, each and together with
GLOB_ASSIGN, MAGIC_EQUAL_SUBST and more, `emulate sh`/`ksh`, no PROMPT_PERCENT; bash's `set -u`,
`set -e`, failglob/nullglob/extglob, posix mode, `set -f`, nocasematch; ksh's nounset and noglob;
dash's `set -eu`; tcsh with backslash_quote or noglob, csh with nonomatch, fish) one shell process
runs CASES (tests/shell_fuzz.py) generated cases back to back: PATH,
PYTHONPATH, PYTHONHOME, the prompt and sometimes VIRTUAL_ENV are set to values built from every
character a shell may expand (`=`, `~`, globs, braces, `$`, quotes, backslashes, blanks, control bytes,
non-ASCII, empty entries, stray colons, unset against empty); the overlay is activated, entries are
sometimes prepended and `overlay_venv_rebase` run, then `deactivate`. After each step the state is
dumped with builtins only (tests/shells.py) and held to the pure model in overlay_venv.paths:
activation sets PYTHONPATH and PATH as ``activate_value`` says, deactivate gives every saved variable
back byte for byte (unset stays unset), `deactivate` exists exactly while active, no name of ours is
left behind, and stderr holds exactly the drift warnings the model expects.

Cases go to one of three overlays: one whose path holds `=`, `~`, glob and brace characters under a
plain prompt name (bin/activate's common path), one whose name holds `$`, backquotes, `!`, `%` and a
backslash (each shell's prompt special case), one whose path shlex.quote leaves bare. The seed is
fixed (OVERLAY_VENV_FUZZ_SEED changes it), so a failure names a case that can be run again.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from capabilities import require_shell
from conftest import overlay_venv
from shell_fuzz import (
    BARE_NAME,
    FAMILY,
    GLOB_DIR,
    ODD_PROMPT_NAME,
    PLAIN_PROMPT,
    SEED,
    SHELL_CLASSES,
    Driver,
    check_case,
    expected_warnings,
    generate,
    own_entries,
    state,
)
from shells import CshShell, PosixShell

OPTION_SETS = [
    ("zsh", "default", [], []),
    ("zsh", "GLOB_SUBST", ["setopt GLOB_SUBST"], []),
    ("zsh", "SH_WORD_SPLIT", ["setopt SH_WORD_SPLIT"], []),
    ("zsh", "KSH_ARRAYS", ["setopt KSH_ARRAYS"], []),
    (
        "zsh",
        "all",
        ["setopt GLOB_SUBST SH_WORD_SPLIT KSH_ARRAYS GLOB_ASSIGN EXTENDED_GLOB KSH_GLOB MAGIC_EQUAL_SUBST NO_UNSET ERR_EXIT"],
        [],
    ),
    ("zsh", "emulate-sh", ["emulate sh"], []),
    ("zsh", "emulate-ksh", ["emulate ksh"], []),
    ("zsh", "NO_PROMPT_PERCENT", ["unsetopt PROMPT_PERCENT", "setopt PROMPT_SUBST"], []),
    ("bash", "default", [], []),
    ("bash", "set-u", ["set -u"], []),
    ("bash", "set-e", ["set -e"], []),
    ("bash", "globs", ["shopt -s failglob nullglob extglob"], []),
    ("bash", "set-o-posix", ["set -o posix"], []),
    ("bash", "--posix", [], ["--posix"]),
    ("bash", "set-f", ["set -f"], []),
    ("bash", "nocasematch", ["shopt -s nocasematch"], []),
    ("ksh", "default", [], []),
    ("ksh", "set-u", ["set -u"], []),
    ("ksh", "noglob", ["set -o noglob"], []),
    ("dash", "default", [], []),
    ("dash", "set-eu", ["set -eu"], []),
    ("tcsh", "default", [], []),
    ("tcsh", "backslash_quote", ["set backslash_quote"], []),
    ("tcsh", "noglob", ["set noglob"], []),
    ("csh", "default", [], []),
    ("csh", "nonomatch", ["set nonomatch"], []),
    ("fish", "default", [], []),
]


@pytest.fixture(scope="module")
def overlays(release39, tmp_path_factory) -> list[Path]:
    plain = tmp_path_factory.mktemp("fuzz") / GLOB_DIR / "plain"
    odd = tmp_path_factory.mktemp("fuzz") / ODD_PROMPT_NAME
    plain.parent.mkdir()
    overlay_venv("create", str(plain), "--no-pip", "--prompt", PLAIN_PROMPT, env=release39.env())
    overlay_venv("create", str(odd), "--no-pip", env=release39.env())
    bare = tmp_path_factory.mktemp("fuzz") / BARE_NAME
    overlay_venv("create", str(bare), "--no-pip", env=release39.env())
    return [plain, odd, bare]


@pytest.mark.parametrize(
    ("shell_name", "option_id", "options", "args"), OPTION_SETS, ids=[f"{s}-{o}" for s, o, _, _ in OPTION_SETS]
)
def test_round_trip_under_shell_options(shell_name, option_id, options, args, overlays, release39, tmp_path):
    shell = require_shell(SHELL_CLASSES[FAMILY[shell_name]](shell_name))
    driver = Driver(shell, shell_name, overlays, tuple(options))
    rng = random.Random(f"{SEED}-{shell_name}")  # the same cases for every option set of a shell
    cases = generate(rng, [own_entries(overlay)[0] + own_entries(overlay)[1] for overlay in overlays], driver.family)
    env = release39.env(HOME="/nonexistent-home")
    proc = driver.run(driver.script(options, cases, overlays), args, env, tmp_path)
    dumps = driver.read(proc.stdout)
    failures = [f"left behind after the last case: {driver.leftovers(proc.stdout)}"] if driver.leftovers(proc.stdout) else []
    for i, case in enumerate(cases):
        problems = check_case(driver, i, case, dumps, overlays, options)
        if problems:
            failures.append(f"case {i} {case}:\n    " + "\n    ".join(problems))
    stderr = proc.stderr.decode("utf-8", "surrogateescape")
    want_stderr = expected_warnings(driver, cases, overlays, str(release39.site))
    summary = f"{shell_name} {option_id}: exit {proc.returncode}, {len(failures)} of {len(cases)} cases differ (seed {SEED})"
    assert proc.returncode == 0 and not failures, summary + "\n" + "\n".join(failures[:5]) + f"\n--- stderr\n{stderr[-3000:]}"
    assert stderr == want_stderr, summary + "\nstderr is not exactly the expected drift warnings"
    assert [p.name for p in tmp_path.iterdir()] == [f"fuzz.{shell_name}"]  # nothing in a value ran


@pytest.mark.parametrize("shell_name", ["tcsh", "csh"])
def test_csh_marker_byte_keeps_a_list_whole(shell_name, overlays, release39, tmp_path):
    """README, Known behaviours: a PATH entry holding 0x01 (the byte activate.csh splits lists with)
    comes back byte for byte when untouched, but after a change the overlay's own entry stays."""
    shell = require_shell(CshShell(shell_name))
    driver = Driver(shell, shell_name, overlays)
    path = "/opt/a\x01b:/usr/bin:/bin"
    activate = overlays[0] / "bin" / "activate.csh"
    lines = ["set echo_style = bsd", shell.set("PATH", path), shell.source(activate), "deactivate", *driver.dump("untouched")]
    lines += [shell.source(activate), shell.prepend("PATH", "/opt/rucio/bin"), "deactivate", *driver.dump("changed")]
    proc = driver.run(lines, [], release39.env(), tmp_path)
    assert proc.returncode == 0, proc.stderr
    dumps = driver.read(proc.stdout)
    bin_dir = own_entries(overlays[0])[1][0]
    assert state(dumps["untouched"], driver.variables)["vars"]["PATH"] == path
    assert state(dumps["changed"], driver.variables)["vars"]["PATH"] == f"/opt/rucio/bin:{bin_dir}:{path}"


@pytest.mark.parametrize("options", ["setopt GLOB_SUBST SH_WORD_SPLIT KSH_ARRAYS NO_UNSET", "emulate ksh"])
def test_zsh_options_are_the_users_again_after_activate_and_deactivate(options, overlays, release39, tmp_path):
    """bin/activate runs under `emulate zsh -c` in zsh: the user's options come back after it, and
    after `deactivate` and `overlay_venv_rebase` (which keep that emulation while they run)."""
    shell = require_shell(PosixShell("zsh"))
    show = "print -r -- ${(j: :)${(f)$(setopt)}}"
    activate = overlays[1] / "bin" / "activate"
    lines = [options, show, shell.source(activate), show, "overlay_venv_rebase", show, "deactivate", show]
    result = shell.run(lines, env=release39.env(), cwd=tmp_path)
    before, *later = result.lines
    assert "ksharrays" in before and later == [before] * 3
