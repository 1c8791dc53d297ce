from __future__ import annotations

import click

# The layers' colours on a terminal: what the overlay adds stands out, what it hides is a warning.
LAYER_STYLE = {"overlay": "green", "base": None, "interpreter": "blue", "user": "magenta", "other": "magenta"}


@click.command("list")
@click.argument("name", required=False, type=click.Path(file_okay=False))
@click.option("--overlay-only", is_flag=True, help="Only distributions imported from the overlay.")
@click.option("--shadowed", is_flag=True, help="Only distributions whose imported copy hides another.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (format 1, described in the README).")
def command(name: str | None, overlay_only: bool, shadowed: bool, as_json: bool) -> None:
    """List distributions by layer, with the copies they shadow.

    The overlay is NAME, or the active one. One row per distribution: the version Python imports,
    the layer it comes from (overlay, base, or the interpreter's own site-packages) and the copies it
    shadows. The layers are read the way a job sees them, activated or not: NAME/bin/python run with
    the release's PYTHONPATH. Only metadata files are read; no package is imported.

    \b
    Examples:
        overlay-venv list                      # the active overlay
        overlay-venv list myenv --shadowed     # what the overlay replaces in the release
        overlay-venv list myenv --overlay-only
        overlay-venv list myenv --json | jq '.distributions[] | select(.shadows != [])'
    """
    import json
    from pathlib import Path

    from ..layers import load_layering
    from ..record import find_overlay

    layering = load_layering(find_overlay(Path(name) if name else None))
    # Imported after the layers are read: what runs before the probe starts delays the whole command.
    from ..layers import JSON_FORMAT, align, colour_enabled, distribution_json, pythonpath_note

    rows = [
        dist
        for dist in layering.distributions
        if (not overlay_only or dist.layer.kind == "overlay") and (not shadowed or dist.shadowed)
    ]
    if as_json:
        document = {
            "format": JSON_FORMAT,
            "overlay": str(layering.overlay),
            "python": layering.python,
            "pythonpath": layering.pythonpath,
            "pythonpath_source": layering.pythonpath_source,
            "layers": [{"layer": layer.kind, "label": layer.name, "path": layer.path} for layer in layering.layers],
            "distributions": [distribution_json(dist) for dist in rows],
        }
        click.echo(json.dumps(document, indent=2))
        return

    note = pythonpath_note(layering)
    if note:
        click.echo(note, err=True)
    colour = colour_enabled()
    cells, styles = [], []
    for dist in rows:
        notes = [f"editable from {dist.effective.source}"] if dist.effective.editable else []
        if dist.shadowed:
            notes.append("shadows " + ", ".join(f"{copy.version} {copy.layer.name}" for copy in dist.shadowed))
        cells.append([dist.display_name, dist.version, dist.layer.name] + (["; ".join(notes)] if notes else []))
        styles.append([None, None, LAYER_STYLE.get(dist.layer.kind), "yellow"])
    lines = align(cells, styles, colour)
    if lines:  # one write: a release has thousands of rows, and click.echo flushes each call
        click.echo("\n".join(lines), color=colour)
    if not rows:
        what = "in the overlay " if overlay_only else ""
        click.echo(f"no distribution {what}{'shadows another' if shadowed else 'found'}", err=True)
    # Numbered base layers need their key: which PYTHONPATH entry is base[2].
    numbered = [layer for layer in layering.layers if layer.name.startswith("base[")]
    if numbered and rows:
        click.echo("")
        for line in align([[layer.name, layer.path] for layer in numbered]):
            click.echo(line)
