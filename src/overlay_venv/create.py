"""Creating an overlay: a virtualenv on top of a release, built aside and moved into place whole."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from . import __version__, skeleton
from .activation import ACTIVATORS, activation_values, write_activation_scripts
from .atomic import Staging
from .errors import OverlayError, UsageError
from .launcher import recorded_environment, write_launcher
from .oserrors import describe_os_error, not_text_problem
from .paths import path_problem, relative_to_overlay, remove_under, which
from .record import Base, OverlayRecord, is_overlay, overlay_problem, read_record, write_record
from .release import base_pythonpath, normalize_setup, run_setup
from .relocate import repoint, write_relocate_script
from .skeleton import Built
from .templates import render, templates_dir
from .values import Value

HOOK_MODULE = "_overlay_venv_hook.py"
HOOK_PTH_TEMPLATE = "_overlay_venv_hook.pth"
# Written under a name that sorts after every other .pth file in site-packages (``site`` processes
# them in sorted order): the hook must see what editable installs' .pth files added to sys.path.
HOOK_PTH = "~overlay_venv_hook.pth"


class CreateOptions(Value):
    dest: Path
    python: str | None = None
    prompt: str | None = None
    system_site_packages: bool = True
    pip: bool = True
    clear: bool = False
    setup: str | None = None
    keep_setup: bool = False
    # Build from (and save to) the skeleton cache; see skeleton.py.
    cache: bool = True
    # Fills the overlay before it is moved into place (create --from, rebuild): called with the
    # staging directory, a working overlay there, and the release's environment. If it raises,
    # nothing is moved and the staging directory is removed, so a failed fill leaves no trace.
    populate: Callable[[Path, dict[str, str]], None] | None = None
    # create --on LOWER: an overlay (path or published reference) to stack this one on (stack.py).
    on: str | None = None


def find_interpreter(python: str | None, environ: dict[str, str]) -> str:
    """The interpreter to build on, as an absolute path with symlinks kept: a release's ``bin/python3``
    is often a link into the release, and the link is the stable name to record."""
    spec = python or "python3"
    if os.sep in spec:
        found = spec if os.access(spec, os.X_OK) else None
    else:
        # Not the python3 of an environment active in this shell: the overlay goes on the release,
        # and creating the active overlay again must find the interpreter it was built on.
        search = environ.get("PATH", os.defpath)
        if environ.get("VIRTUAL_ENV"):
            search = remove_under(search, environ["VIRTUAL_ENV"])
        found = which(spec, search)
    if not found or not os.path.isfile(found):
        where = "on PATH" if os.sep not in spec else "there"
        raise OverlayError(f"no Python interpreter {spec!r} {where}; set up the release first or pass --python PATH")
    return os.path.abspath(found)


def check_destination(dest: Path, clear: bool) -> bool:
    """Refuse, before building anything, a destination we must not or cannot write.
    Returns True when ``dest`` is an existing overlay (to be replaced with ``clear``, or compared)."""
    problem = path_problem(dest) or not_text_problem("the path", str(dest))
    if problem:
        raise OverlayError(f"cannot create an overlay there: {problem}")
    if not dest.parent.is_dir():
        raise OverlayError(f"parent directory {str(dest.parent)!r} does not exist (create it first)")
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise OverlayError(f"{str(dest)!r} exists and is not a directory")
    if dest.is_dir() and any(dest.iterdir()):
        if not is_overlay(dest):
            raise OverlayError(f"{str(dest)!r} exists and is not an overlay; refusing to touch it")
        # A file of the record's name is not enough: --clear removes the whole directory, so it must
        # be an overlay by a record that validates and by what that record describes.
        problem = overlay_problem(dest)
        if problem:
            verb = "replace" if clear else "touch"
            raise OverlayError(f"refusing to {verb} {str(dest)!r}, it is not an overlay made by overlay-venv: {problem}")
        return True
    return False


def same_overlay(dest: Path, interpreter: str, options: CreateOptions, lowers: list) -> bool:
    """Would creating ``dest`` again with these options build what is already there?"""
    record = read_record(dest)
    return (
        record.base.interpreter == interpreter
        and record.system_site_packages == options.system_site_packages
        and (dest / record.bin_dir / "pip").exists() == options.pip
        and (options.prompt is None or options.prompt == record.prompt)
        and record.base.setup == options.setup
        and record.base.keep_setup == options.keep_setup
        and [lower.path for lower in record.lowers] == [lower.path for lower in lowers]
    )


def virtualenv_environ(environ: dict[str, str]) -> dict[str, str]:
    """The environment virtualenv runs in: the release's (its interpreter may need its
    LD_LIBRARY_PATH), less a user's VIRTUALENV_* settings and virtualenv.ini, which must not silently
    change what an overlay is (say, seed setuptools that then shadows the release's). The app-data
    location is kept: on clusters it is often moved off a small home quota."""
    env = {key: value for key, value in environ.items() if not key.startswith("VIRTUALENV_")}
    if "VIRTUALENV_OVERRIDE_APP_DATA" in environ:
        env["VIRTUALENV_OVERRIDE_APP_DATA"] = environ["VIRTUALENV_OVERRIDE_APP_DATA"]
    env["VIRTUALENV_CONFIG_FILE"] = os.devnull
    return env


def run_virtualenv(target: Path, interpreter: str, options: CreateOptions, environ: dict[str, str]) -> Built:
    from virtualenv import cli_run  # imported here: it is the slowest import, and a warm create skips it

    # No --prompt: pyvenv.cfg gets ours when the overlay is finished, so the tree built here is the
    # same for every overlay on this interpreter and can be kept as a skeleton.
    args = [
        str(target),
        "--python",
        interpreter,
        "--activators",
        "python",  # ours replace it; virtualenv's shell scripts are not written at all
        "--no-setuptools",  # a seeded setuptools would shadow the release's own
        "--no-download",
        "--no-periodic-update",
        "--no-vcs-ignore",
        "--no-venv-redirect",
        "--quiet",
    ]
    if options.system_site_packages:
        args.append("--system-site-packages")
    if not options.pip:
        args.append("--no-seed")
    from .virtualenv_plugins import only_chosen_plugins

    try:
        with only_chosen_plugins():  # and not plugins of other distributions: see virtualenv_plugins
            session = cli_run(args, setup_logging=False, env=virtualenv_environ(environ))
    except SystemExit as exc:  # virtualenv reports bad arguments or interpreters this way
        raise OverlayError(f"virtualenv could not create an environment for {interpreter} (exit {exc.code})") from None
    except RuntimeError as exc:  # its message carries the interpreter's whole traceback, flattened
        from .base_python import last_error_line

        raise OverlayError(f"virtualenv failed on {interpreter}: {last_error_line(str(exc))}") from None
    except OSError as exc:
        raise OverlayError(f"virtualenv could not write the environment: {describe_os_error(exc)}") from None
    info = session.interpreter
    return Built(
        bin_dir=relative_to_overlay(target, Path(session.creator.bin_dir)),
        libs=[relative_to_overlay(target, Path(lib)) for lib in session.creator.libs],
        executable=str(info.system_executable),
        version=".".join(str(part) for part in info.version_info[:3]),
        implementation=info.implementation,
    )


def _import_virtualenv() -> None:
    import virtualenv  # noqa: F401  (the slowest import; run_virtualenv finds it loaded)


def cache_disabled_by_environment() -> bool:
    """OVERLAY_VENV_NO_CACHE set to anything but nothing, 0, false, no or off: for every command that
    creates an overlay (create, create --from, rebuild), not only `create --no-cache`."""
    return os.environ.get("OVERLAY_VENV_NO_CACHE", "").strip().lower() not in ("", "0", "false", "no", "off")


def build_environment(
    stage: Path, dest: Path, interpreter: str, options: CreateOptions, environ: dict[str, str], prompt: str
) -> Built:
    """The environment itself, in ``stage``: cloned from a skeleton when one fits (its scripts and
    pyvenv.cfg written once, for ``dest`` and ``prompt``), else built by virtualenv (and then kept
    as a skeleton for next time)."""
    use_cache = options.cache and not cache_disabled_by_environment()
    key = skeleton.skeleton_key(interpreter, options.system_site_packages, options.pip) if use_cache else None
    if key is not None:
        built = skeleton.clone(key, stage, str(dest), lambda cfg: with_prompt(cfg, prompt))
        if built is not None:
            return built
    from .base_python import BaseInterpreter
    from .lazy_virtualenv import make_lazy

    # virtualenv's own probe of the interpreter has no time limit: ours, while virtualenv imports.
    with BaseInterpreter(interpreter, environ, _import_virtualenv) as base:
        built = run_virtualenv(stage, interpreter, options, environ)
        # Before the skeleton is stored: its clones carry the lazy line (see lazy_virtualenv).
        make_lazy(stage / built.libs[-1])
        base.compile(write_startup_hook(stage / built.libs[-1], dest / built.libs[-1]))
    if key is not None:
        # Not the files create writes over what virtualenv wrote: a clone would write them twice.
        skeleton.store(key, stage, built, [os.path.join(built.bin_dir, a.filename) for a in ACTIVATORS])
    return built


def with_prompt(cfg: bytes, prompt: str) -> bytes:
    """pyvenv.cfg's text with the overlay's prompt, under virtualenv's key for it."""
    lines = cfg.decode("utf-8").splitlines()
    lines = [line for line in lines if line.partition("=")[0].strip() != "prompt"] + [f"prompt = {prompt}"]
    return ("\n".join(lines) + "\n").encode("utf-8")


def write_startup_hook(site_packages: Path, final_site_packages: Path, lowers: list = ()) -> list[tuple[Path, Path]]:
    """The start-up hook; ``lowers`` (stack.Lower, top-down) for a stacked overlay, whose hook differs
    from the skeleton's: a new file then, never written through a hard link into the skeleton cache.
    Returns the start-up modules to compile, with the paths they will have: by the base interpreter,
    where bytecode is never written at run time every start would otherwise compile them again (~2.5
    ms for the hook alone); virtualenv's own start-up module with it."""
    hook = site_packages / HOOK_MODULE
    text = render(HOOK_MODULE + ".j2", repr, version=__version__, lowers=[(lower.path, lower.sites) for lower in lowers])
    hook.unlink(missing_ok=True)
    hook.write_text(text, encoding="utf-8")
    if not (site_packages / HOOK_PTH).exists():
        import shutil

        shutil.copyfile(templates_dir() / HOOK_PTH_TEMPLATE, site_packages / HOOK_PTH)
    return [(module, final_site_packages / module.name) for module in [hook, *site_packages.glob("_virtualenv.py")]]


def compile_startup_modules(interpreter: str, pairs: list[tuple[Path, Path]]) -> None:
    """Compile ``pairs`` with ``interpreter`` in a process of its own; a failure only costs time."""
    from .base_python import BaseInterpreter

    try:
        with BaseInterpreter(interpreter, dict(os.environ)) as base:
            base.compile(pairs)
    except OverlayError:
        pass


def create_overlay(options: CreateOptions) -> tuple[OverlayRecord, bool]:
    """Build the overlay; returns its record and whether anything was built (False: it was there already).

    What the system refuses (a full disk, a read-only or unwritable directory, a name too long) is
    one line naming the cause; the staging directory is gone by then, so nothing is left."""
    try:
        return _create_overlay(options)
    except OSError as exc:
        raise OverlayError(f"cannot create the overlay {str(options.dest)!r}: {describe_os_error(exc)}") from None


def _create_overlay(options: CreateOptions) -> tuple[OverlayRecord, bool]:
    dest = Path(os.path.abspath(options.dest))
    exists = check_destination(dest, options.clear)
    prompt = options.prompt if options.prompt is not None else dest.name
    if "\n" in prompt:
        raise OverlayError("the prompt cannot contain a newline")
    problem = not_text_problem("the prompt", prompt)
    if problem:
        raise OverlayError(problem)
    if options.keep_setup and not options.setup:
        raise UsageError("--keep-setup needs --setup 'COMMAND' (the release setup to keep)")
    lowers, lower_base = [], None
    if options.on is not None:
        from .stack import inherit_setup, plan_stack

        lowers, lower_base = plan_stack(dest, options.on, options.python)
        options = inherit_setup(options, lower_base)
    setup = normalize_setup(options.setup) if options.setup else None
    # Compare with what an earlier create recorded: the normalized command.
    options = options.replace(setup=setup)
    environ = run_setup(setup, dict(os.environ)) if setup else dict(os.environ)
    if lower_base is not None:
        from .stack import check_release

        check_release(lowers[0].path, lower_base, environ)
    # A stacked overlay is built on its lower's interpreter, whatever python3 this shell finds.
    interpreter = lower_base.interpreter if lower_base is not None else find_interpreter(options.python, environ)
    if exists and not options.clear:
        # Re-running the same create (a job script, or after an interrupted run) is not an error.
        if same_overlay(dest, interpreter, options, lowers):
            return read_record(dest), False
        raise OverlayError(f"{str(dest)!r} is an overlay built otherwise; pass --clear to replace it")

    with Staging(dest) as stage:
        built = build_environment(stage.path, dest, interpreter, options, environ, prompt)
        if lowers:
            pairs = write_startup_hook(stage.path / built.libs[-1], dest / built.libs[-1], lowers)
            compile_startup_modules(interpreter, pairs)
        bin_dir = stage.path / built.bin_dir
        record = OverlayRecord(
            prompt=prompt,
            bin_dir=built.bin_dir,
            site_packages=list(built.libs),
            system_site_packages=options.system_site_packages,
            base=Base(
                interpreter=interpreter,
                executable=built.executable,
                version=built.version,
                implementation=built.implementation,
                # On LOWER, NAME's release is LOWER's (check_release refused any other in this shell).
                pythonpath=base_pythonpath(environ) if lower_base is None else lower_base.pythonpath,
                setup=setup,
                keep_setup=options.keep_setup,
                environment=recorded_environment(environ) if lower_base is None else lower_base.environment,
            ),
            created_by=f"overlay-venv {__version__}",
            lowers=lowers,
        )
        write_activation_scripts(activation_values(dest, record), bin_dir)
        write_launcher(bin_dir, dest, record)  # for Jupyter kernels (overlay-venv kernel install)
        # A copy moved with plain tools (cp -a, rsync, tar) can re-point itself with this script.
        write_relocate_script(stage.path, dest, built.bin_dir)
        write_record(stage.path, record)
        if options.populate is not None:
            # A complete overlay, but at the staging path: use its bin/python, not its activate.
            options.populate(stage.path, environ)
        # Last, so they also cover what populate installed: point scripts at the final place. What
        # a skeleton gave is there already, and is left as it is.
        repoint(stage.path, str(stage.path), str(dest), built.bin_dir, lambda cfg: with_prompt(cfg, prompt))
        try:
            stage.commit(replace=options.clear)
        except FileExistsError:
            raise OverlayError(f"{str(dest)!r} was created by another process meanwhile; left it as it is") from None
    return record, True
