"""Shell completion for bash, zsh and fish, on click's own machinery, plus store references.

click completes commands (from the lazy group's registry), options, and paths for ``click.Path``
arguments. What it cannot know: an overlay argument may also be a published reference. The classes
here are click's, with one change to what they answer (references from ``OVERLAY_VENV_STORES`` for
the arguments that take an overlay) and, for bash, one to how the question is asked: bash splits a
word at ``:`` (``COMP_WORDBREAKS``), so ``team/ana:v<TAB>`` would reach us as three words. The bash
script also passes the line itself, and answers are cut back to the part after the last break, as
bash-completion's ``__ltrim_colon_completions`` does.

``cli.main`` registers these only when a shell asks (``_OVERLAY_VENV_COMPLETE`` is set), so no
other run imports this module.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
from click.shell_completion import (
    BashComplete,
    CompletionItem,
    FishComplete,
    ZshComplete,
    add_completion_class,
    split_arg_string,
)

PROG = "overlay-venv"
COMPLETE_VAR = "_OVERLAY_VENV_COMPLETE"
SHELLS = ("bash", "zsh", "fish")
# (command, parameter) pairs that take an overlay, published or not. `create NAME` and `rebuild NAME`
# make one, so they get paths only.
_OVERLAY_PARAMS = {"name", "ref"}
_NOT_OVERLAY_COMMANDS = {"create", "rebuild", "unpack"}


def takes_overlay(ctx: click.Context, param: click.Parameter) -> bool:
    if param.name == "lock_file":  # create --from: a lock file or a reference
        return True
    return param.name in _OVERLAY_PARAMS and ctx.command.name not in _NOT_OVERLAY_COMMANDS


def reference_items(incomplete: str, environ=None) -> list[CompletionItem]:
    """References that start with ``incomplete``: ``NAME:TAG`` for every published name of every
    store, and after ``:`` or ``@`` the tags or ids of that name (also in a store named by path)."""
    from .refs import is_name_dir, is_path_like, list_ids, list_names, list_tags, looks_like_reference, stores

    items = []
    if looks_like_reference(incomplete):
        head, _, last = incomplete.rpartition("/")
        cut = min(i for i in (last.find(":"), last.find("@")) if i >= 0)
        name = f"{head}/{last[:cut]}" if head else last[:cut]
        sep, partial = last[cut], last[cut + 1 :]
        if is_path_like(name):
            name_dirs = [Path(os.path.abspath(os.path.expanduser(name)))]
        else:
            name_dirs = [store / name for store in stores(environ)]
        seen = set()
        for name_dir in (path for path in name_dirs if is_name_dir(path)):
            if sep == ":":
                choices = {tag: f"@{id_}" for tag, id_ in list_tags(name_dir).items()}
            else:
                choices = {id_: "" for id_ in list_ids(name_dir)}
            for choice, help_ in choices.items():
                if choice.startswith(partial) and choice not in seen:
                    seen.add(choice)
                    items.append(CompletionItem(f"{name}{sep}{choice}", help=help_ or None))
        return items
    if is_path_like(incomplete):
        return items  # a path: the shell completes it
    seen = set()
    for store in stores(environ):
        for name in list_names(store):
            if not (name.startswith(incomplete) or incomplete.startswith(name)):
                continue
            for tag, id_ in list_tags(store / name).items():
                value = f"{name}:{tag}"
                if value.startswith(incomplete) and value not in seen:
                    seen.add(value)
                    items.append(CompletionItem(value, help=f"@{id_}"))
    return items


class _References:
    """What the three classes share: click's answer, with references added for overlay arguments."""

    def get_completions(self, args: list[str], incomplete: str) -> list[CompletionItem]:
        from click.shell_completion import _resolve_context, _resolve_incomplete  # click >= 8.0

        ctx = _resolve_context(self.cli, self.ctx_args, self.prog_name, args)
        obj, incomplete = _resolve_incomplete(ctx, args, incomplete)
        items = obj.shell_complete(ctx, incomplete)
        self.final_incomplete = incomplete
        if isinstance(obj, click.Parameter) and takes_overlay(ctx, obj):
            # Paths first: bash's script clears its list when it meets a "file" item.
            items = [item for item in items if item.type != "plain"] + reference_items(incomplete)
            if looks_like_reference_only(incomplete):
                items = [item for item in items if item.type == "plain"]
        return items


def looks_like_reference_only(incomplete: str) -> bool:
    from .refs import looks_like_reference

    return looks_like_reference(incomplete) and not os.path.lexists(incomplete)


# click's bash script, passing the line and the word breaks as well (see the module docstring).
_SOURCE_BASH = """\
%(complete_func)s() {
    local IFS=$'\\n'
    local response

    response=$(env COMP_WORDS="${COMP_WORDS[*]}" COMP_CWORD=$COMP_CWORD \\
COMP_LINE="$COMP_LINE" COMP_POINT="$COMP_POINT" COMP_WORDBREAKS="$COMP_WORDBREAKS" \\
%(complete_var)s=bash_complete $1)

    for completion in $response; do
        IFS=',' read type value <<< "$completion"

        if [[ $type == 'dir' ]]; then
            COMPREPLY=()
            compopt -o dirnames
        elif [[ $type == 'file' ]]; then
            COMPREPLY=()
            compopt -o default
        elif [[ $type == 'plain' ]]; then
            COMPREPLY+=("$value")
        fi
    done

    return 0
}

%(complete_func)s_setup() {
    complete -o nosort -F %(complete_func)s %(prog_name)s
}

%(complete_func)s_setup;
"""


class Bash(_References, BashComplete):
    source_template = _SOURCE_BASH

    def get_completion_args(self) -> tuple[list[str], str]:
        line, point = os.environ.get("COMP_LINE"), os.environ.get("COMP_POINT", "")
        if line is None or not point.isdigit():
            self.raw = None
            return super().get_completion_args()  # click's own script: its words as they are
        before = line[: int(point)]
        words = split_arg_string(before)
        if not before or before[-1].isspace() or not words:
            words.append("")
        self.raw = words[-1]
        return words[1:-1], words[-1]

    def format_completion(self, item: CompletionItem) -> str:
        value = item.value
        if item.type == "plain" and self.raw is not None:
            breaks = os.environ.get("COMP_WORDBREAKS", "\"'><=;|&(:")
            raw, incomplete = self.raw, getattr(self, "final_incomplete", self.raw)
            full = raw[: len(raw) - len(incomplete)] + value if raw.endswith(incomplete) else value
            cut = max((raw.rfind(char) for char in breaks if not char.isspace()), default=-1) + 1
            if cut and full.startswith(raw[:cut]):
                value = full[cut:]
        return f"{item.type},{value}"


class Zsh(_References, ZshComplete):
    pass


# One line per answer, `type,value<TAB>help`: fish splits a command substitution at newlines, so
# click 8.4's three-line frames (and its template's bare \n) break its own script (pallets/click#3502).
_SOURCE_FISH = """\
function %(complete_func)s;
    set -l response (env %(complete_var)s=fish_complete COMP_WORDS=(commandline -cp) \\
COMP_CWORD=(commandline -t) %(prog_name)s);

    for completion in $response;
        set -l metadata (string split -m 1 "," -- $completion);

        if test "$metadata[1]" = "dir";
            __fish_complete_directories $metadata[2];
        else if test "$metadata[1]" = "file";
            __fish_complete_path $metadata[2];
        else if test "$metadata[1]" = "plain";
            echo $metadata[2];
        end;
    end;
end;

complete --no-files --command %(prog_name)s --arguments \\
"(%(complete_func)s)";
"""


class Fish(_References, FishComplete):
    source_template = _SOURCE_FISH

    def format_completion(self, item: CompletionItem) -> str:
        value = " ".join(item.value.split("\n"))
        help_ = " ".join((item.help or "").split())
        return f"{item.type},{value}\t{help_}" if help_ else f"{item.type},{value}"


CLASSES = {"bash": Bash, "zsh": Zsh, "fish": Fish}


def register() -> None:
    """Make click answer completion requests with the classes above."""
    for name, cls in CLASSES.items():
        add_completion_class(cls, name)


def script(shell: str, cli: click.Command) -> str:
    return CLASSES[shell](cli, {}, PROG, COMPLETE_VAR).source()
