"""The scripts that activate an overlay: one template per shell family beside a tiny class.

Every value a template needs is computed here, at creation, and quoted once by the shell's own rules
(``q`` in the templates), so activation itself runs no program and a path can hold any character but
a colon or a newline.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from . import __version__
from .paths import python_entries
from .record import OverlayRecord
from .release import rebuild_hint
from .templates import render
from .values import Value

# Characters that ksh and dash would expand or reinterpret inside PS1.
_PROMPT_SPECIAL = set("$`\\!%")


class ActivationValues(Value, frozen=True):
    overlay_dir: str
    bin_dir: str
    site_packages: list[str]  # absolute
    site_packages_rel: list[str]  # relative to overlay_dir
    prompt: str
    # The release the overlay was built on, for the drift warning and --keep-setup.
    base_interpreter: str = ""
    base_pythonpath: str = ""  # "" also when it was unset: both mean "no release entries"
    setup_command: str = ""  # run before activating when keep_setup
    keep_setup: bool = False
    rebuild_hint: str = ""
    # A stacked overlay (create --on): the lower overlays' bin directories, PATH after bin_dir, and
    # (path, what must exist) of each for the drift warning: its stamp file, or the directory itself
    # when it had no stamp. site_packages then also holds the lower overlays' site-packages, after
    # the overlay's own.
    lower_bins: tuple = ()
    lower_stamps: tuple = ()
    lower_sites: tuple = ()

    @property
    def path_dirs(self) -> list[str]:
        """What activation puts first on PATH: the overlay's bin/, then each lower overlay's."""
        return [self.bin_dir, *self.lower_bins]


def bash_prompt(prompt: str) -> str:
    """The prompt name escaped for bash's two prompt passes (escape decoding, then promptvars
    expansion), so it shows as typed and runs nothing: ``\\`` -> ``\\\\\\\\``, ``$`` -> ``\\\\$``, and
    a backquote -> ``\\```."""
    return "".join({"\\": "\\\\\\\\", "$": "\\\\$", "`": "\\`"}.get(char, char) for char in prompt)


class Activator:
    template: str
    filename: str

    @staticmethod
    def quote(value: str) -> str:
        raise NotImplementedError

    def context(self, values: ActivationValues) -> dict:
        # The recorded PYTHONPATH as Python sees it (repeats dropped): a shell whose PYTHONPATH differs
        # from the recorded one only by repeated entries (the release set up twice) has the same release.
        entries = list(python_entries(values.base_pythonpath))
        return {**values.__dict__, "version": __version__, "base_entries": entries, "path_dirs": values.path_dirs}

    def generate(self, values: ActivationValues, bin_dir: Path) -> Path:
        target = bin_dir / self.filename
        text = render(self.template, self.quote, **self.context(values))
        # A new file, never written through what is at that name: in an unpacked archive a symlink or
        # a hard link there may lead to a file outside the overlay.
        target.unlink(missing_ok=True)
        with open(target, "x", encoding="utf-8") as handle:
            handle.write(text)
        return target


class PosixActivator(Activator):
    """``bin/activate`` for sh, dash, bash, zsh and ksh."""

    template = "activate.sh.j2"
    filename = "activate"
    quote = staticmethod(shlex.quote)

    def context(self, values: ActivationValues) -> dict:
        return {
            **super().context(values),
            "prompt_for_bash": bash_prompt(values.prompt),
            "prompt_is_plain": not (_PROMPT_SPECIAL & set(values.prompt)),
            "base_bin_dir": os.path.dirname(values.base_interpreter),
            # What bin/activate's loop builds from a PYTHONPATH: ":" and then each entry the first
            # time it comes, followed by ":".
            "base_seen": ":" + "".join(entry + ":" for entry in python_entries(values.base_pythonpath)),
        }


class PosixLibrary(PosixActivator):
    """``bin/_overlay_venv_lib.sh``: the rarely needed parts of ``bin/activate``, sourced on demand
    (a PATH changed while active, an inherited environment, rebase), so activation stays cheap."""

    template = "_overlay_venv_lib.sh.j2"
    filename = "_overlay_venv_lib.sh"


def csh_quote(value: str) -> str:
    """``value`` as one csh/tcsh word: single quotes, with the three characters they do not protect
    written outside them. ``'`` cannot appear inside at all; ``!`` would still run history substitution
    in an interactive shell (sourced lines included), so it goes out as ``\\!``; ``\\`` goes out as
    ``\\\\`` because with tcsh's ``backslash_quote`` set a backslash quotes even inside single quotes.
    A newline cannot be quoted portably; overlay paths refuse it and so does the prompt."""
    if "\n" in value:
        raise ValueError(f"csh cannot quote a newline: {value!r}")
    escaped = {"'": "'\\''", "!": "'\\!'", "\\": "'\\\\'"}
    return "'" + "".join(escaped.get(char, char) for char in value) + "'"


def fish_quote(value: str) -> str:
    """``value`` as one fish word: in fish's single quotes only ``\\`` and ``'`` are special."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def tcsh_prompt(prompt: str) -> str:
    """The prompt name escaped for tcsh's prompt expansion: ``%`` starts a sequence, ``!`` is the
    history number, ``\\`` and ``^`` start escapes. Each is made literal by a backslash, ``%`` by
    doubling."""
    return "".join({"%": "%%", "!": "\\!", "\\": "\\\\", "^": "\\^"}.get(char, char) for char in prompt)


def csh_prompt(prompt: str) -> str:
    """The prompt name escaped for csh's prompt: only ``!`` (the history number) is special."""
    return prompt.replace("!", "\\!")


class CshActivator(Activator):
    """``bin/activate.csh`` for tcsh and csh."""

    template = "activate.csh.j2"
    filename = "activate.csh"
    quote = staticmethod(csh_quote)

    def context(self, values: ActivationValues) -> dict:
        return {
            **super().context(values),
            "prompt_for_tcsh": tcsh_prompt(values.prompt),
            "prompt_for_csh": csh_prompt(values.prompt),
            # csh splits a list at slashes (see the template): a path's own slashes are swapped for
            # this control byte meanwhile. Not \x1c-\x1e: str.splitlines() (and so Jinja's indent
            # filter) takes those for line breaks.
            "path_mark": "\x01",
        }


class FishActivator(Activator):
    """``bin/activate.fish`` for fish 3.1 and newer."""

    template = "activate.fish.j2"
    filename = "activate.fish"
    quote = staticmethod(fish_quote)


class PythonActivator(Activator):
    """``bin/activate_this.py``, for activating inside a running interpreter."""

    template = "activate_this.py.j2"
    filename = "activate_this.py"
    quote = staticmethod(repr)


ACTIVATORS: tuple[Activator, ...] = (PosixActivator(), PosixLibrary(), CshActivator(), FishActivator(), PythonActivator())


def activation_values(overlay: Path, record: OverlayRecord) -> ActivationValues:
    """The values the activation scripts of the overlay recorded in ``record`` are rendered with,
    for the overlay at ``overlay`` (create, unpack and relocation all render from the record)."""
    lowers = record.lowers
    return ActivationValues(
        overlay_dir=str(overlay),
        bin_dir=str(overlay / record.bin_dir),
        site_packages=[str(overlay / rel) for rel in record.site_packages] + [site for lower in lowers for site in lower.sites],
        site_packages_rel=list(record.site_packages),
        prompt=record.prompt,
        base_interpreter=record.base.interpreter,
        base_pythonpath=record.base.pythonpath or "",
        setup_command=record.base.setup or "",
        keep_setup=record.base.keep_setup,
        rebuild_hint=rebuild_hint(overlay),
        lower_bins=tuple(lower.bin_path for lower in lowers),
        lower_stamps=tuple((lower.path, lower.stamp_path if lower.stamp else lower.path) for lower in lowers),
        lower_sites=tuple(site for lower in lowers for site in lower.sites),
    )


def write_activation_scripts(values: ActivationValues, bin_dir: Path) -> list[Path]:
    return [activator.generate(values, bin_dir) for activator in ACTIVATORS]
