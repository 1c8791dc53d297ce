"""virtualenv's start-up patch, imported only when the modules it patches are.

virtualenv writes ``_virtualenv.pth`` (``import _virtualenv``) into every environment: at each start of
the interpreter it imports ``_virtualenv.py``, which imports ``typing`` and ``contextlib`` to define an
import hook that patches ``distutils.dist`` and ``setuptools.dist`` (so a distutils configuration file
cannot send an install outside the environment). Measured on a 3.9 base, that import is ~8 ms of every
``NAME/bin/python -c pass``, for a patch that matters only to the rare process importing distutils or
setuptools (on 3.10+ the module installs no hook at all and only costs the import).

:func:`make_lazy` rewrites the ``.pth`` line to a stand-in finder of a few lines, standard library only
and nothing imported: when one of the patched modules is first looked up, it takes itself off
``sys.meta_path``, imports ``_virtualenv`` (which installs its own finder, as at start-up before),
puts that finder where the stand-in was (finders that later ``.pth`` files put ahead of it, such as
setuptools' ``_distutils_hack``, stay ahead) and hands it the lookup. Every later lookup meets virtualenv's finder
directly. ``_virtualenv.py`` itself is not touched, and the overlay needs nothing of overlay-venv.
"""

from __future__ import annotations

import os
from pathlib import Path

PTH = "_virtualenv.pth"
MODULE = "_virtualenv.py"
EAGER_LINE = "import _virtualenv"
MARKER = "overlay-venv lazy _virtualenv"  # in the rewritten line: says it is ours, and done

# The stand-in, run by the .pth line in a namespace of its own. `names` is filled in from
# _virtualenv.py's own list, so the stand-in wakes for exactly the modules that virtualenv patches.
# site may process the site-packages twice, and a stack's lower layers have the same line: one stand-in
# is installed, as one import of _virtualenv was.
_SHIM = """\
import sys
class _LazyVirtualenv:
    names = NAMES
    lazy_virtualenv = True
    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.names:
            return None
        try:
            place = sys.meta_path.index(self)
            del sys.meta_path[place]
        except ValueError:
            place = 0
        try:
            import _virtualenv
        except Exception:
            return None
        for finder in list(sys.meta_path):
            if type(finder).__module__ == "_virtualenv" and hasattr(finder, "find_spec"):
                sys.meta_path.remove(finder)
                sys.meta_path.insert(place, finder)
                return finder.find_spec(fullname, path, target)
        return None
sys.meta_path.insert(0, _LazyVirtualenv())
"""

# Checked before the stand-in's source is even compiled: a stacked overlay's lower layers repeat the line.
_NEEDED = '"_virtualenv" not in sys.modules and not any(getattr(f, "lazy_virtualenv", False) for f in sys.meta_path)'


def patched_modules(module_text: str) -> tuple[str, ...] | None:
    """The names in ``_virtualenv.py``'s ``_DISTUTILS_PATCH`` tuple of strings, None if it has no such
    literal (a virtualenv whose patch works some other way: then it is left eager)."""
    import ast  # here, not at the top: a warm create imports this module for the skeleton key only

    try:
        tree = ast.parse(module_text)
    except SyntaxError:
        return None
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(target, ast.Name) and target.id == "_DISTUTILS_PATCH" for target in targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return None
            if isinstance(value, tuple) and value and all(isinstance(item, str) for item in value):
                return value
            return None
    return None


def lazy_line(names: tuple[str, ...]) -> str:
    """The ``.pth`` line: site.py executes a line that starts with ``import``."""
    source = _SHIM.replace("NAMES", repr(tuple(names)))
    return f"import sys; exec({source!r}, {{'__name__': {MARKER!r}}}) if {_NEEDED} else None\n"


def make_lazy(site_packages: Path) -> bool:
    """Rewrite ``site_packages/_virtualenv.pth`` so ``_virtualenv`` is imported only when a module it
    patches is. True when the line is (now, or already) lazy; False when there is nothing to do or the
    files are not the shape this knows (then they are left exactly as they were).

    The new line is written to a new file renamed over the old one, never through the old one: an
    environment cloned from the skeleton cache shares its files with the cache by hard links."""
    pth = Path(site_packages) / PTH
    try:
        line = pth.read_text(encoding="utf-8")
        module_text = (Path(site_packages) / MODULE).read_text(encoding="utf-8")
    except (OSError, UnicodeError):
        return False
    if line.strip() != EAGER_LINE and MARKER not in line:
        return False
    names = patched_modules(module_text)
    if names is None:
        return False
    wanted = lazy_line(names)
    if line == wanted:
        return True
    # The eager line, or a stand-in written by another overlay-venv version: this version's line.
    mode = os.stat(pth).st_mode & 0o7777
    temporary = pth.with_name(f".{PTH}.{os.getpid()}.tmp")
    try:
        temporary.write_text(wanted, encoding="utf-8")
        os.chmod(temporary, mode)
        os.replace(temporary, pth)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return True
