from __future__ import annotations

import click


@click.command("info")
@click.argument("name", required=False, type=click.Path())  # a str: pathlib is imported when info runs
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of text.")
def command(name: str | None, as_json: bool) -> None:
    """Show what the overlay NAME (default: the active one) was built on, and whether this shell
    still has that release.

    \b
    Examples:
        overlay-venv info myenv
        overlay-venv info            # the active overlay
        overlay-venv info myenv --json | python3 -m json.tool
        overlay-venv info ~/ana-personal   # a stacked overlay: each overlay under it, then the base
    """
    # Imported here, not at the top: `info --help` then costs click alone (record and release pull in
    # subprocess, json, dataclasses, archive modules: ~12 ms).
    import json
    import os

    from ..record import find_overlay, read_record
    from ..release import drift, rebuild_hint

    overlay = find_overlay(name)
    record = read_record(overlay)
    differences = drift(overlay, record, dict(os.environ))
    if as_json:
        data = {**record.info_json(overlay), "matches_this_shell": not differences, "differences": differences}
        click.echo(json.dumps(data, indent=2))
        return
    rows = [
        ("overlay", f"{overlay}  (prompt: {record.prompt})"),
        ("base", f"{record.base.implementation} {record.base.version}  {record.base.interpreter}"),
        ("PYTHONPATH", record.base.pythonpath if record.base.pythonpath is not None else "(unset)"),
    ]
    # A stacked overlay (create --on): the overlays under it, top-down, between it and the release.
    for lower in record.lowers:
        rows.insert(len(rows) - 2, (f"on {lower.label}", lower.path + (f"  ({lower.ref})" if lower.ref else "")))
    if record.base.setup:
        kept = "activation runs it" if record.base.keep_setup else "not run by activation"
        rows.append(("setup", f"{record.base.setup}  ({kept})"))
    if not differences:
        verdict = "matches the recorded base"
    else:
        verdict = "differs: " + "; ".join(differences)
        if record.base.keep_setup:
            verdict += " (activation runs the kept setup first)"
    rows.append(("this shell", verdict))
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        click.echo(f"{label:<{width}}  {value}")
    if differences:
        click.echo(rebuild_hint(overlay))
