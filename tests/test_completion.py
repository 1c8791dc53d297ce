"""Shell completion: the script `overlay-venv completion SHELL` prints, sourced in a real bash, zsh and
fish, completes a command, an option and a store reference.

Each shell's completion function is driven directly: bash with COMP_WORDS/COMP_CWORD/COMP_LINE as
readline sets them (it splits `team/ana:v` at the colon), zsh with `words`/`CURRENT` and compsys's
compadd/_describe stood in for by functions that print what they are given (they only run inside a
completion widget), fish through `complete -C`. The store is laid out by hand (refs.py's layout):
completion reads only its names and tags.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from capabilities import require_executable

ID = "0123456789abcdef"
BIN = str(Path(sys.executable).parent)  # overlay-venv's console script


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("completion-store")
    for name, tags in (("team/ana", ("v3", "latest")), ("team/bob", ("prod",))):
        (root / name / "ids" / ID).mkdir(parents=True)
        (root / name / "tags").mkdir()
        for tag in tags:
            os.symlink(f"../ids/{ID}", root / name / "tags" / tag)
    return root


def env_for(store: Path) -> dict:
    return {
        "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(store),
        "LANG": "C.UTF-8",
        "OVERLAY_VENV_STORES": str(store),
    }


def shell(name: str) -> str:
    return require_executable(name, f"completion is tested in a real {name}")


def run(argv: list[str], store: Path, cwd: Path | None = None) -> str:
    done = subprocess.run(argv, env=env_for(store), capture_output=True, text=True, cwd=cwd, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


BASH = """\
eval "$(overlay-venv completion bash)"
complete -p overlay-venv
ask () {{  # the words as readline splits them, then the line itself
    COMP_CWORD=$1; shift
    COMP_LINE=$1; COMP_POINT=${{#COMP_LINE}}; shift
    COMP_WORDS=("$@"); COMPREPLY=()
    _overlay_venv_completion overlay-venv
    printf '%s|' "${{COMPREPLY[@]}}"; echo
}}
ask 1 'overlay-venv pub' overlay-venv pub
ask 2 'overlay-venv wrap --fol' overlay-venv wrap --fol
ask 2 'overlay-venv run te' overlay-venv run te
ask 4 'overlay-venv run team/ana:l' overlay-venv run team/ana : l
ask 4 'overlay-venv run {store}/team/bob:' overlay-venv run {store}/team/bob :
"""


def test_bash_completes_a_command_an_option_and_a_reference(store):
    out = run([shell("bash"), "--norc", "-c", BASH.format(store=store)], store).splitlines()
    assert out[0].startswith("complete -o nosort -F _overlay_venv_completion overlay-venv")
    assert out[1] == "publish|"
    assert out[2] == "--follow-tag|"
    assert out[3].split("|")[:-1] == ["team/ana:latest", "team/ana:v3", "team/bob:prod"]
    assert out[4] == "latest|"  # what follows bash's word break at ':'
    assert out[5] == "prod|"


# compadd and _describe are compsys builtins usable only inside a completion widget: stand-ins print
# the values given, so the function's answer can be read.
ZSH = """\
autoload -Uz compinit && compinit -u -d {store}/.zcompdump
eval "$(overlay-venv completion zsh)"
print -r -- "registered: ${{_comps[overlay-venv]}}"
compadd () {{ while (( $# )); do [[ $1 == -a ]] && {{ print -rl -- ${{(P)2}}; shift; }}; shift; done; }}
_describe () {{ print -rl -- ${{(P)3}}; }}
_path_files () {{ print -r -- '(paths)'; }}
ask () {{ words=("$@"); CURRENT=$#; print -r -- "== $*"; _overlay_venv_completion; }}
ask overlay-venv pub
ask overlay-venv wrap --fol
ask overlay-venv run te
ask overlay-venv run team/ana:l
"""


def test_zsh_completes_a_command_an_option_and_a_reference(store):
    out = run([shell("zsh"), "-f", "-c", ZSH.format(store=store)], store)
    blocks = dict(block.split("\n", 1) for block in out.split("== ")[1:])
    assert "registered: _overlay_venv_completion" in out
    assert blocks["overlay-venv pub"].splitlines()[0].startswith("publish:")
    assert blocks["overlay-venv wrap --fol"].splitlines()[0].startswith("--follow-tag:")
    # zsh's _describe takes `value:help`; click escapes the value's own colons
    refs = blocks["overlay-venv run te"].splitlines()
    assert refs[0] == "(paths)" and refs[1:] == [rf"team/ana\:latest:@{ID}", rf"team/ana\:v3:@{ID}", rf"team/bob\:prod:@{ID}"]
    assert blocks["overlay-venv run team/ana:l"].splitlines() == [rf"team/ana\:latest:@{ID}"]


FISH = """\
overlay-venv completion fish | source
complete -C 'overlay-venv pub'; echo ==
complete -C 'overlay-venv wrap --fol'; echo ==
complete -C 'overlay-venv run team/'; echo ==
complete -C 'overlay-venv run team/ana:v'
"""


def test_fish_completes_a_command_an_option_and_a_reference(store, tmp_path):
    fish = shell("fish")
    out = run([fish, "--no-config", "-c", FISH], store, cwd=tmp_path)
    command, option, names, tags = [[line.split("\t")[0] for line in part.strip().splitlines()] for part in out.split("==")]
    assert command == ["publish"]
    assert option == ["--follow-tag"]
    assert names == ["team/ana:latest", "team/ana:v3", "team/bob:prod"]
    assert tags == ["team/ana:v3"]


def test_a_path_still_completes_as_a_path(store, tmp_path):
    """A path-shaped word gets the shell's own file completion and no references (click's protocol,
    as the bash function calls it)."""
    env = dict(env_for(store), _OVERLAY_VENV_COMPLETE="bash_complete", COMP_LINE="overlay-venv run ./my")
    env.update(COMP_WORDS="overlay-venv\nrun\n./my", COMP_CWORD="2", COMP_POINT=str(len(env["COMP_LINE"])))
    done = subprocess.run(["overlay-venv"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.stdout.split() == ["file,./my"], done.stderr
