"""How ``list`` and ``check`` show layers: JSON documents (format 1, in the README) and aligned text."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, Optional

from .model import Copy, Distribution, Layering

if TYPE_CHECKING:  # only annotated: `list` never imports the requirement checker
    from .requirements import Problem

JSON_FORMAT = 1  # version of the JSON documents `list --json` and `check --json` print


def copy_json(copy: Copy) -> dict[str, Any]:
    return {
        "version": copy.version,
        "layer": copy.layer.kind,
        "label": copy.layer.name,
        "path": copy.layer.path,
        "editable": copy.editable,
        "source": copy.source,
    }


def distribution_json(dist: Distribution) -> dict[str, Any]:
    return {
        "name": dist.name,
        "display_name": dist.display_name,
        **copy_json(dist.effective),
        "shadows": [copy_json(copy) for copy in dist.shadowed],
    }


def problem_json(problem: Problem) -> dict[str, Any]:
    found = problem.found
    return {
        "kind": problem.kind,
        "message": problem.message(),
        "distribution": {"name": problem.requirer.name, **copy_json(problem.requirer.effective)},
        "requirement": problem.requirement.display,
        "extra": problem.extra or None,
        "found": None if found is None else {"name": found.name, **copy_json(found.effective)},
        "shadowed": [] if found is None else [{**copy_json(c), "satisfies": problem.satisfied_by(c)} for c in found.shadowed],
    }


def colour_enabled(stream=None) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set to anything non-empty (no-color.org)."""
    stream = sys.stdout if stream is None else stream
    return not os.environ.get("NO_COLOR") and hasattr(stream, "isatty") and stream.isatty()


def align(rows: list[list[str]], styles: Optional[list[list[Optional[str]]]] = None, colour: bool = False) -> list[str]:
    """Rows as lines with each column padded to its widest cell; a cell's style (a click colour name)
    is applied after padding, so escape codes never upset the alignment."""
    import click

    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(max(map(len, rows)))]
    lines = []
    for r, row in enumerate(rows):
        cells = []
        for i, cell in enumerate(row):
            text = cell if i == len(row) - 1 else cell.ljust(widths[i])
            style = styles[r][i] if styles and i < len(styles[r]) else None
            cells.append(click.style(text, fg=style) if colour and style else text)
        lines.append("  ".join(cells).rstrip())
    return lines


def pythonpath_note(layering: Layering) -> Optional[str]:
    """A line for stderr when the layers shown are not this shell's: with no release set up here, the
    PYTHONPATH recorded at creation stood in for it (the JSON says so in ``pythonpath_source``)."""
    if layering.pythonpath_source == "record":
        return "note: no release is set up in this shell; layers read with the PYTHONPATH recorded at creation"
    return None
