from __future__ import annotations

import click


@click.command("check")
@click.argument("name", required=False, type=click.Path(file_okay=False))
@click.option(
    "--imports",
    is_flag=True,
    help="Also import, in fresh interpreters, the release's packages whose dependencies the overlay shadows.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="With --imports: how long one import may take.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="With --imports: imports run at once. Default: CPUs.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (format 1, described in the README).")
def command(name: str | None, imports: bool, timeout: float, jobs: int | None, as_json: bool) -> None:
    """Find requirements the overlay breaks, and imports with --imports.

    The overlay is NAME, or the active one. Every distribution Python imports has its requirements
    (markers and extras applied) checked against the versions Python imports. Shadowed copies are not
    checked: the overlay's numpy 2 is not broken because the release's older copy, which no one
    imports, wanted something else.

    Metadata cannot show everything: a compiled package built against numpy 1 declares `numpy>=1.20`
    and still fails to import under numpy 2. --imports imports the top-level modules of every release
    package whose dependencies the overlay shadows, each in a fresh NAME/bin/python, and reports the
    ones that fail with the exception's last line.

    Exits 1 when something is broken, 0 otherwise.

    \b
    Examples:
        overlay-venv check                     # the active overlay
        overlay-venv check myenv --imports
        overlay-venv check myenv --json | jq -r '.problems[].message'
    """
    import json
    from pathlib import Path

    from ..layers import load_layering
    from ..record import find_overlay

    layering = load_layering(find_overlay(Path(name) if name else None), requirements=True)
    # Imported after the layers are read: what runs before the probe starts delays the whole command.
    from ..layers import JSON_FORMAT, check_requirements, import_targets, problem_json, run_imports

    warnings: list[str] = []
    problems = check_requirements(layering.distributions, layering.marker_environment, warnings)
    results = None
    if imports:
        results = run_imports(layering, import_targets(layering), timeout, jobs)
    failures = [result for result in results or [] if not result.ok]
    broken = bool(problems or failures)

    if as_json:
        document = {
            "format": JSON_FORMAT,
            "overlay": str(layering.overlay),
            "ok": not broken,
            "checked": len(layering.distributions),
            "problems": [problem_json(problem) for problem in problems],
            "imports": None
            if results is None
            else {
                "checked": [{"distribution": r.distribution.name, "module": r.module} for r in results],
                "failures": [r.to_json() for r in failures],
            },
            "warnings": warnings,
        }
        click.echo(json.dumps(document, indent=2))
    else:
        _report(layering, problems, results, failures, warnings)
    if broken:
        raise click.exceptions.Exit(1)


def _report(layering, problems, results, failures, warnings) -> None:
    from ..layers import colour_enabled, pythonpath_note
    from ..messages import warn_all

    colour = colour_enabled()
    note = pythonpath_note(layering)
    if note:
        click.echo(note, err=True)
    warn_all(warnings)
    for problem in problems:
        click.echo(click.style("broken: ", fg="red", bold=True) + problem.message(), color=colour)
    count = len(layering.distributions)
    if problems:
        click.echo(f"{len(problems)} broken requirement{'s' if len(problems) != 1 else ''} in {count} distributions")
    else:
        click.echo(click.style("ok: ", fg="green") + f"no broken requirements in {count} distributions", color=colour)
    if results is None:
        return
    for failure in failures:
        dist = failure.distribution
        click.echo(
            click.style("import fails: ", fg="red", bold=True)
            + f"{dist.display_name} {dist.version} ({dist.layer.name}): import {failure.module}: {failure.error}",
            color=colour,
        )
    tried = len({r.distribution.name for r in results})
    modules = f"{len(results)} module{'s' if len(results) != 1 else ''}"
    summary = f"{modules} of {tried} distribution{'s' if tried != 1 else ''} depending on shadowed copies imported"
    if failures:
        click.echo(f"{summary}, {len(failures)} failed")
    elif results:
        click.echo(click.style("ok: ", fg="green") + summary, color=colour)
    else:
        click.echo(click.style("ok: ", fg="green") + "no release package depends on a copy the overlay shadows", color=colour)
