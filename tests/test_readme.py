"""The README says what the commands offer: every option of `overlay-venv create` is in its table."""

from __future__ import annotations

import re

import click
from conftest import ROOT

from overlay_venv.commands.create import command as create


def table_after(text: str, header: str) -> list[str]:
    """The first cell of each row of the Markdown table that starts with ``header``."""
    lines = text[text.index(header) :].splitlines()[2:]
    end = next((i for i, line in enumerate(lines) if not line.startswith("|")), len(lines))
    return [row.split("|")[1].strip() for row in lines[:end]]


def test_the_create_table_lists_every_option():
    cells = table_after((ROOT / "README.md").read_text(), "| option | meaning |")
    documented = {name for cell in cells for name in re.findall(r"--[a-z][a-z-]*", cell)}
    options = [param for param in create.params if isinstance(param, click.Option) and "--help" not in param.opts]
    missing = [param.opts[0] for param in options if not documented & set(param.opts + param.secondary_opts)]
    assert missing == [], f"README's create table lacks {missing}"
    assert len(cells) == len(options)  # and lists nothing create does not have
