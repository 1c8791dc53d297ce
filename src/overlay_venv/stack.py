"""Stacked overlays (``create NAME --on LOWER``): which overlays lie under NAME, and whether they changed.

NAME's import order is NAME, then LOWER, then LOWER's own lower layers, then the release. NAME's record
lists the lower overlays top-down (``lowers``), each with what NAME needs at run time without reading
LOWER's record: its absolute path (a lower overlay stays at its path, as the release does), its
site-packages and bin directory, its label for ``list``, and two identities:

- ``stamp``: the token in the name of LOWER's ``overlay-venv.stamp-TOKEN`` when NAME was built. Every
  write of an overlay's record writes a new stamp (record.write_record), so a rebuilt or re-created
  LOWER has another; the activation scripts test that NAME's recorded file exists (``test -e``, built
  in everywhere), so drift is seen without starting a program. ``pip install`` run by hand in LOWER
  writes no record and so no stamp: the fingerprint catches that, not activation.
- ``fingerprint``: a digest of LOWER's distributions (name, version and RECORD hashes, as publish's
  content id): precise, computed in Python by ``lock``, ``sync`` and ``create --from``.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from .errors import OverlayError
from .values import Value, fresh

# The stamp is in the file's name (an empty file), so the activation scripts check it with one `test -e`:
# no file to open and read, and the same built-in in sh, csh and fish.
STAMP_PREFIX = "overlay-venv.stamp-"
LABEL_PREFIX = "overlay:"


class Lower(Value, frozen=True):
    """One overlay under NAME, as NAME's record keeps it."""

    path: str  # absolute
    prompt: str
    bin_dir: str  # relative to path
    site_packages: list[str] = fresh(list)  # relative to path
    stamp: str | None = None  # LOWER's stamp token at NAME's build; None: LOWER had none (older overlay-venv)
    fingerprint: str = ""
    ref: str | None = None  # the pinned reference (team/ana@ID) NAME was built on, if given as one

    @property
    def label(self) -> str:
        return LABEL_PREFIX + self.prompt

    @property
    def sites(self) -> list[str]:
        return [os.path.join(self.path, rel) for rel in self.site_packages]

    @property
    def bin_path(self) -> str:
        return os.path.join(self.path, self.bin_dir)

    @property
    def stamp_path(self) -> str:
        return os.path.join(self.path, STAMP_PREFIX + (self.stamp or ""))


def lowers_from_data(items: list[dict] | None) -> list[Lower]:
    return [Lower(**item) for item in items or []]


def new_stamp() -> str:
    return os.urandom(12).hex()


def stamp_names(overlay: Path | str) -> list[str]:
    try:
        return sorted(name for name in os.listdir(overlay) if name.startswith(STAMP_PREFIX))
    except OSError:
        return []


def read_stamp(overlay: Path | str) -> str | None:
    """The overlay's stamp token; None when it has none. Two (a write that died between creating the
    new one and removing the old) count as a changed overlay: the token is then neither."""
    names = stamp_names(overlay)
    if len(names) != 1:
        return None if not names else "+".join(name[len(STAMP_PREFIX) :] for name in names)
    return names[0][len(STAMP_PREFIX) :]


def write_stamp(overlay: Path) -> None:
    """A new stamp, then the old ones gone (record.write_record calls this before the record)."""
    old = stamp_names(overlay)
    with open(overlay / (STAMP_PREFIX + new_stamp()), "x"):
        pass
    for name in old:
        try:
            os.unlink(overlay / name)
        except FileNotFoundError:
            pass


def fingerprint(overlay: Path) -> str:
    """What ``overlay`` holds, as publish's content id digests it (16 hex digits)."""
    from .publish import content_id
    from .record import read_record

    return content_id(overlay, read_record(overlay))


def resolve_lower(value: str) -> tuple[Path, str | None]:
    """``--on VALUE``: the lower overlay's directory and, for a published reference, its pinned form
    (``team/ana@ID``) so that NAME never follows a tag moved later."""
    from .publish import is_reference_argument
    from .record import overlay_problem

    pinned = None
    if is_reference_argument(value):
        from .refs import resolve

        resolved = resolve(value)
        path, pinned = resolved.path, resolved.pinned
    else:
        path = Path(os.path.abspath(value))
    problem = overlay_problem(path)
    if problem:
        raise OverlayError(f"--on {value}: not an overlay made by overlay-venv: {problem}")
    return path, pinned


def chain_of(lower: Path, pinned: str | None) -> list[Lower]:
    """LOWER and the overlays under it, top-down, with their current stamps and fingerprints."""
    from .record import read_record

    record = read_record(lower)
    top = Lower(
        path=str(lower),
        prompt=record.prompt,
        bin_dir=record.bin_dir,
        site_packages=list(record.site_packages),
        stamp=read_stamp(lower),
        fingerprint=fingerprint(lower),
        ref=pinned,
    )
    below = []
    for item in record.lowers:
        if not os.path.isdir(item.path):
            raise OverlayError(f"{lower} is stacked on {item.path}, which is gone; {rebuild_command(lower)}")
        below.append(
            Lower(
                path=item.path,
                prompt=item.prompt,
                bin_dir=item.bin_dir,
                site_packages=list(item.site_packages),
                stamp=read_stamp(item.path),
                fingerprint=fingerprint(Path(item.path)),
                ref=item.ref,
            )
        )
    return [top, *below]


def rebuild_command(overlay: Path | str) -> str:
    return f"rebuild it with: overlay-venv rebuild {shlex.quote(str(overlay))}"


def check_stack(dest: Path, lowers: list[Lower], interpreter: str | None, lower_interpreter: str) -> None:
    """Refuse, in one line, a stack that cannot work: NAME under itself (a cycle), or another
    interpreter than LOWER's asked for with --python."""
    real_dest = os.path.realpath(dest)
    for lower in lowers:
        real = os.path.realpath(lower.path)
        if real == real_dest or real.startswith(os.path.join(real_dest, "")):
            raise OverlayError(f"--on {lowers[0].path}: a cycle, {dest} would lie under itself")
    if interpreter is not None and os.path.realpath(interpreter) != os.path.realpath(lower_interpreter):
        raise OverlayError(
            f"--python {interpreter} is not the interpreter {lower_interpreter} that {lowers[0].path} is built on; "
            "a stacked overlay uses its lower's (leave out --python)"
        )


def changed_lowers(lowers: list[Lower]) -> list[str]:
    """How the recorded lower overlays differ from what is at their paths now, in words; [] if not."""
    problems = []
    for lower in lowers:
        if not os.path.isdir(lower.path):
            problems.append(f"the lower overlay {lower.path} is gone")
            continue
        try:
            now = fingerprint(Path(lower.path))
        except OverlayError as exc:
            problems.append(f"the lower overlay {lower.path} is unreadable: {exc.message}")
            continue
        if now != lower.fingerprint:
            problems.append(f"the lower overlay {lower.path} changed since this overlay was built")
    return problems


def refuse_changed(overlay: Path, lowers: list[Lower], doing: str) -> None:
    """For sync and create --from: a missing or changed lower overlay stops ``doing``, with the fix."""
    problems = changed_lowers(lowers)
    if problems:
        raise OverlayError(f"cannot {doing}: {problems[0]}; {rebuild_command(overlay)}")


def stamp_drift(lowers: list[Lower]) -> list[str]:
    """What the activation scripts see, in words: a lower overlay gone or carrying another stamp."""
    problems = []
    for lower in lowers:
        if not os.path.isdir(lower.path):
            problems.append(f"the lower overlay {lower.path} is gone")
        elif read_stamp(lower.path) != lower.stamp:
            problems.append(f"the lower overlay {lower.path} was rebuilt or changed since this overlay was built")
    return problems


def plan_stack(dest: Path, on: str, python: str | None) -> tuple[list[Lower], object]:
    """``create DEST --on ON``: the lower overlays, top-down, and LOWER's base (a record.Base), after
    every refusal that needs no release: ON not an overlay, a cycle, another --python."""
    from .record import read_record

    lower, pinned = resolve_lower(on)
    record = read_record(lower)
    lowers = chain_of(lower, pinned)
    if python is not None:
        from .create import find_interpreter

        python = find_interpreter(python, dict(os.environ))
    check_stack(dest, lowers, python, record.base.interpreter)
    return lowers, record.base


def inherit_setup(options, base):
    """A stacked overlay runs LOWER's kept --setup when none is given: the same release, one step."""
    if options.setup is None and base.setup:
        return options.replace(setup=base.setup, keep_setup=base.keep_setup)
    return options


def check_release(lower_path: str, base, environ: dict[str, str]) -> None:
    from .paths import same_for_python
    from .release import base_pythonpath

    current = base_pythonpath(environ)
    if current is None or same_for_python(current, base.pythonpath):
        return
    how = f"run `{base.setup}` first" if base.setup else f"set up its release (PYTHONPATH={base.pythonpath or '(unset)'})"
    raise OverlayError(
        f"this shell's release (PYTHONPATH={current}) is not the one {lower_path} is built on; {how}, or use a fresh shell"
    )


def on_argument(record) -> str | None:
    """What ``rebuild`` passes as ``--on`` to build onto the current LOWER: its pinned reference, else
    its path; None for an overlay on the release."""
    if not record.lowers:
        return None
    top = record.lowers[0]
    return top.ref or top.path


def lower_pack_problem(overlay: Path, lowers: list[Lower]) -> str | None:
    """Why ``pack`` refuses a stacked overlay: a lower overlay gone or changed here means the
    archive would carry an overlay that does not work even at home."""
    problems = changed_lowers(lowers)
    if problems:
        return f"cannot pack {overlay}: {problems[0]}; {rebuild_command(overlay)} first"
    return None


def lock_lowers(overlay: Path) -> tuple[str, ...]:
    """What ``lock`` records of a stacked overlay's lower overlays: "FINGERPRINT PATH", top-down, as
    they are now (the lock pins NAME's distributions as they sit on these)."""
    from .record import read_record

    return tuple(f"{fingerprint(Path(lower.path))} {lower.path}" for lower in read_record(overlay).lowers)


def on_from_lock(lowers: tuple[str, ...], on: str | None, lock_file: str) -> str | None:
    """``create --from FILE`` of a stacked overlay's lock: it goes on the lock's LOWER, which must be
    there and hold what it held when locked; returns what --on is then."""
    if not lowers:
        return on
    entries = [line.partition(" ") for line in lowers]
    top = entries[0][2]
    if on is not None and os.path.abspath(on) != top:
        raise OverlayError(f"{lock_file} was locked on {top}, not on {on}: leave out --on, or lock the overlay on {on}")
    for digest, _, path in entries:
        if not os.path.isdir(path):
            raise OverlayError(f"{lock_file} was locked on the lower overlay {path}, which is gone; create it there first")
        if fingerprint(Path(path)) != digest:
            raise OverlayError(
                f"{lock_file} was locked on the lower overlay {path}, which changed since; to resolve its requests on it "
                f"as it is now, run: overlay-venv create NAME --on {shlex.quote(top)} and overlay-venv install the requests"
            )
    return top
