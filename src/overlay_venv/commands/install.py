from __future__ import annotations

import click


@click.command("install")
@click.argument("packages", nargs=-1, metavar="[REQUIREMENT]...")
@click.option(
    "--overlay",
    "overlay_path",
    type=click.Path(file_okay=False),
    metavar="PATH",
    help="The overlay to install into. Default: the active one.",
)
@click.option(
    "-r",
    "--requirement",
    "requirement_files",
    multiple=True,
    metavar="FILE",
    help="Install from a requirements file (repeatable).",
)
@click.option(
    "-e", "--editable", "editables", multiple=True, metavar="PATH", help="Install a local project in editable mode (repeatable)."
)
@click.option(
    "-c",
    "--constraint",
    "constraint_files",
    multiple=True,
    metavar="FILE",
    help="Your own constraints file; the packages it names are not held.",
)
@click.option("--pre", is_flag=True, help="Include pre-release and development versions.")
@click.option("-U", "--upgrade", is_flag=True, help="Upgrade the named packages to the newest allowed versions.")
@click.option("-i", "--index-url", metavar="URL", help="Base URL of the package index.")
@click.option("--extra-index-url", "extra_index_urls", multiple=True, metavar="URL", help="Another index to use (repeatable).")
@click.option("-f", "--find-links", multiple=True, metavar="PATH|URL", help="A directory or page of distributions (repeatable).")
@click.option("--no-index", is_flag=True, help="Use no index, only --find-links locations.")
@click.option(
    "--allow-shadow",
    multiple=True,
    metavar="NAME",
    help="Let the overlay get its own NAME even though base packages depend on the base's (repeatable).",
)
@click.option("--uv", "use_uv", is_flag=True, help="Install with uv (pip still resolves, with the base visible).")
@click.option("-q", "--quiet", is_flag=True, help="No progress output; only problems and errors.")
@click.option("--no-wait", is_flag=True, help="Fail at once if another command is changing the overlay, instead of waiting.")
def command(
    packages: tuple[str, ...],
    overlay_path: str | None,
    requirement_files: tuple[str, ...],
    editables: tuple[str, ...],
    constraint_files: tuple[str, ...],
    pre: bool,
    upgrade: bool,
    index_url: str | None,
    extra_index_urls: tuple[str, ...],
    find_links: tuple[str, ...],
    no_index: bool,
    allow_shadow: tuple[str, ...],
    use_uv: bool,
    quiet: bool,
    no_wait: bool,
) -> None:
    """Install packages into the overlay without breaking the base.

    Takes what pip takes (requirements, -r, -e, -c and the index options) and runs pip in the overlay,
    with the base visible, so nothing the base already has is copied. Every base package that another
    package depends on is held at the base's version: a new package gets a version that works with
    the base, or nothing is installed. Packages you name are not held (asking for 'numpy>=2' means:
    shadow the base's numpy); --allow-shadow NAME releases one you did not name.

    When no version set fits, it says which base packages pin what and what you can do, and leaves the
    overlay exactly as it was. Afterwards it shows what the overlay now shadows and runs the check of
    `overlay-venv check`. The requests are recorded in NAME/overlay-venv.json.

    All or nothing: if pip fails, is interrupted (Ctrl-C) or the disk fills up, the overlay is rolled
    back to what it was; if overlay-venv is killed, pip dies with it and the next command rolls back.
    One install at a time: a second one waits for the first (or fails with --no-wait).

    Plain `pip install` in an activated overlay still works, unguarded.

    \b
    Examples:
        overlay-venv install tool                            # the active overlay
        overlay-venv install --overlay myenv -r requirements.txt
        overlay-venv install --overlay myenv 'numpy>=2'      # named: shadows the base's numpy
        overlay-venv install tool==2.0 --allow-shadow corelib
        overlay-venv install --overlay myenv --uv tool       # uv installs what pip resolved
        overlay-venv install --no-index -f ./wheels tool
        overlay-venv install --overlay myenv --no-wait tool  # fail, not wait, if myenv is busy
    """
    from pathlib import Path

    from ..backends import PIP, UV, get_backend
    from ..errors import OverlayError
    from ..install import read_requests
    from ..record import find_overlay
    from ..overlay_lock import command_text, overlay_lock

    if not (packages or requirement_files or editables):
        raise OverlayError("nothing to install: name packages, or give -r FILE or -e PATH")
    overlay = find_overlay(Path(overlay_path) if overlay_path else None)
    backend = get_backend(UV if use_uv else PIP)  # a missing uv is reported before any work
    requests = read_requests(packages, requirement_files, editables, constraint_files)
    options = (index_url, extra_index_urls, find_links, no_index, pre, upgrade, allow_shadow, quiet)
    with overlay_lock(overlay, command_text(), wait=not no_wait):
        report = _install(overlay, backend, requests, options)
    report()


def _install(overlay, backend, requests, options):
    """The install proper, under the overlay's lock and inside a transaction; returns what prints the
    outcome (called after the lock is released: a waiting install need not wait for our output)."""
    from ..atomic import private_tmp
    from ..backends import IndexOptions, Job, run_in_background
    from ..errors import OverlayError
    from ..install import constraints_text, derive_holds, pth_files_of
    from ..layers import check_requirements, load_layering
    from ..record import read_record
    from ..overlay_lock import command_text
    from ..scripts_guard import secure_scripts
    from ..transaction import Interrupted, begin, interrupted_error, scheme_dirs, space_words, terminations_interrupt

    index_url, extra_index_urls, find_links, no_index, pre, upgrade, allow_shadow, quiet = options
    record = read_record(overlay)
    layering = load_layering(overlay, requirements=True)
    warnings: list[str] = []
    holds = derive_holds(
        layering.distributions,
        layering.marker_environment,
        named=requests.names | requests.constrained,
        allowed=allow_shadow,
        warnings=warnings,
    )
    pth_files = pth_files_of(layering)
    # What was already broken, computed while the installer runs: only new breakage is reported after.
    broken_before = run_in_background(check_requirements, layering.distributions, layering.marker_environment, [])

    with private_tmp("install") as workdir:
        constraints = workdir / "base-holds.txt"
        constraints.write_text(constraints_text(holds), encoding="utf-8")
        index = IndexOptions(index_url, tuple(extra_index_urls), tuple(find_links), no_index, pre, upgrade)
        # pip's own temporary directories go into ours, which is removed however we end.
        environ = {**layering.environ, "TMPDIR": str(workdir)}
        job = Job(layering.python, environ, index, requests.pip_args, constraints, workdir, quiet)
        txn = begin(overlay, scheme_dirs(record.bin_dir, record.site_packages), command_text())
        try:
            with terminations_interrupt():
                outcome = backend.install(job)
                if not outcome.ok:
                    _failed(outcome, holds, requests, txn.rollback(), backend.name)
                secure_scripts(overlay / record.bin_dir)
                return _succeeded(overlay, layering, pth_files, requests, allow_shadow, broken_before(), warnings, quiet, txn)
        except (KeyboardInterrupt, Interrupted) as exc:
            raise interrupted_error(txn.rollback() if txn.open else "the install had finished", exc) from None
        except OverlayError as exc:
            if txn.open:
                raise OverlayError(f"{exc.message}; {txn.rollback()}", details=exc.details) from None
            raise
        except OSError as exc:
            if txn.open:
                raise OverlayError(f"{space_words(exc)}: {txn.rollback()}") from None
            raise
        finally:
            if txn.open:
                txn.rollback()


def _failed(outcome, holds, requests, state: str, tool: str) -> None:
    from ..errors import OverlayError
    from ..install import explain_conflict, parse_conflict

    conflict = parse_conflict(outcome.output)
    lines = explain_conflict(conflict, holds, requests) if conflict else None
    if not lines and outcome.held_back:
        lines = outcome.held_back.rstrip("\n").splitlines()
    who = "uv" if tool == "uv" and outcome.stage == "install" else "pip"
    raise OverlayError(f"{who} failed (exit status {outcome.returncode}): {state}", details=lines or ())


def _succeeded(overlay, before, pth_files, requests, allow_shadow, broken_before, warnings, quiet: bool, txn):
    from ..install import merge_requests, overlay_changes, problem_key, relayer
    from ..layers import canonical_name, check_requirements, load_layering
    from ..record import read_record, write_record
    from ..sources import redact_url

    distributions = relayer(before, pth_files)
    environment = before.marker_environment
    if distributions is None:
        after = load_layering(overlay, requirements=True)
        distributions, environment = after.distributions, after.marker_environment
    changes = overlay_changes(before.distributions, distributions)
    problems = check_requirements(distributions, environment, warnings)
    old = {problem_key(problem) for problem in broken_before}
    new = [problem for problem in problems if problem_key(problem) not in old]

    record = read_record(overlay)
    # Credentials from ${VAR}s or typed in a URL stay out of the record (and so out of locks), as
    # pip keeps them out of direct_url.json.
    merged = merge_requests(record.requests, [redact_url(entry) for entry in requests.record])
    # What --allow-shadow released is part of the intent: rebuild must release it again.
    allowed = sorted({*record.allow_shadow, *(canonical_name(name) for name in allow_shadow)})
    if merged != record.requests or allowed != record.allow_shadow:
        record.requests = merged
        record.allow_shadow = allowed
        write_record(overlay, record)
    txn.commit()  # from here the install counts as done: what follows only reports it
    return lambda: _report(changes, problems, new, allow_shadow, distributions, warnings, quiet)


def _report(changes, problems, new, allow_shadow, distributions, warnings, quiet: bool) -> None:
    from ..layers import align, colour_enabled

    colour = colour_enabled()
    for warning in dict.fromkeys(warnings):
        click.echo(f"overlay-venv: warning: {warning}", err=True)
    if not quiet:
        if changes:
            click.echo("the overlay now has:")
            rows, styles = [], []
            for change in changes:
                if change.after is None:
                    rows.append(["  " + change.display_name, f"{change.before} removed"])
                    styles.append([None, "yellow"])
                    continue
                version = change.after if change.before is None else f"{change.after} (was {change.before})"
                hidden = ", ".join(f"{version_} {label}" for version_, label in change.shadows)
                rows.append(["  " + change.display_name, version] + ([f"shadows {hidden}"] if hidden else []))
                styles.append([None, "green", "yellow"])
            for line in align(rows, styles, colour):
                click.echo(line, color=colour)
        else:
            click.echo("nothing to install: the overlay and the base already have it")
    for problem in new:
        click.echo(click.style("broken: ", fg="red", bold=True) + problem.message(), color=colour)
    if new:
        allowed = f" (allowed with --allow-shadow {' '.join(allow_shadow)})" if allow_shadow else ""
        click.echo(f"{len(new)} requirement{'s' if len(new) != 1 else ''} newly broken{allowed}; details: overlay-venv check")
    elif not quiet:
        earlier = f"; {len(problems)} broken before, unchanged (overlay-venv check)" if problems else ""
        click.echo(
            click.style("ok: ", fg="green") + f"nothing newly broken in {len(distributions)} distributions{earlier}", color=colour
        )
