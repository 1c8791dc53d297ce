"""The scripts that activate an overlay: one template per shell family beside a tiny class.

Every value a template needs is computed here, at creation, and quoted once by the shell's own rules
(``q`` in the templates), so activation itself runs no program and a path can hold any character but
a colon or a newline.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .templates import render

# Characters that ksh and dash would expand or reinterpret inside PS1.
_PROMPT_SPECIAL = set("$`\\!%")


@dataclass(frozen=True)
class ActivationValues:
    overlay_dir: str
    bin_dir: str
    site_packages: list[str]  # absolute
    site_packages_rel: list[str]  # relative to overlay_dir
    prompt: str


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
        return {**values.__dict__, "version": __version__}

    def generate(self, values: ActivationValues, bin_dir: Path) -> Path:
        target = bin_dir / self.filename
        target.write_text(render(self.template, self.quote, **self.context(values)), encoding="utf-8")
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
        }


class PythonActivator(Activator):
    """``bin/activate_this.py``, for activating inside a running interpreter."""

    template = "activate_this.py.j2"
    filename = "activate_this.py"
    quote = staticmethod(repr)


ACTIVATORS: tuple[Activator, ...] = (PosixActivator(), PythonActivator())


def write_activation_scripts(values: ActivationValues, bin_dir: Path) -> list[Path]:
    return [activator.generate(values, bin_dir) for activator in ACTIVATORS]
