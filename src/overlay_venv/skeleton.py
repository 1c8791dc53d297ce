"""Skeletons: what virtualenv built for an interpreter, kept so that a warm ``create`` needs neither
virtualenv nor a fresh copy of pip.

The first ``create`` on an interpreter (with given options) runs virtualenv as always. Right after,
before anything overlay-specific is written, the staged tree is saved under
``~/.cache/overlay-venv/skeletons/KEY``. A later ``create`` with the same key rebuilds the same tree
from there:

- files under the site-packages directories (pip, virtualenv's and our start-up modules, their
  bytecode) are hard-linked, as uv installs from its cache; pip never writes into an installed file
  (it removes and writes anew), nor does overlay-venv, so a link is as good as a copy and 20 times
  cheaper. Where linking is impossible (another filesystem, AFS), or where a new file would get
  another group than the skeleton's (a setgid directory of a group), they are copied. A linked file
  shares its mode with the skeleton, so the umask is part of the key; `chmod -R` on one overlay
  reaches the others (the README says so);
- everything else (``bin/``, ``pyvenv.cfg``) is copied, and the scripts and ``pyvenv.cfg`` that name
  the directory the skeleton was built in are pointed, as they are copied, at the overlay's final
  place (``create`` builds in a staging directory and moves it there): each file is written once.
  Files ``create`` writes itself anyway (``bin/activate_this.py``) are not kept.

The key covers everything the tree depends on: overlay-venv's and virtualenv's versions, the
interpreter (its path, and the identity, size and time of the file behind it) and the options. A
skeleton that is damaged (a file missing) is dropped and virtualenv runs instead. Nothing here is
needed for correctness: with no cache, or ``--no-cache``, every create runs virtualenv.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import stat
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from . import __version__
from .atomic import remove_tree
from .cachedir import cache_dir, sha256
from .lazy_virtualenv import lazy_line
from .relocate import files_naming, repointed_cfg, repointed_script
from .templates import templates_dir
from .values import Value

MANIFEST_FORMAT = 3  # 3: without the files create writes itself
HOOK_FILES = ("_overlay_venv_hook.py.j2", "_overlay_venv_hook.pth")
MANIFEST = "skeleton.json"
KEEP = 8  # skeletons kept, most recently used first: one per release a user works with, roughly
TMP_PREFIX = ".tmp-"
STALE_TMP_SECONDS = 3600


class Built(Value, frozen=True):
    """What ``create`` needs to know of a freshly built environment; paths relative to it."""

    bin_dir: str
    libs: list[str]  # platlib first, then purelib, as virtualenv lists them
    executable: str  # the real interpreter behind the one given
    version: str  # e.g. "3.9.18"
    implementation: str  # e.g. "CPython"


def skeletons_dir() -> Path | None:
    return cache_dir("skeletons")


def _virtualenv_version() -> bytes:
    """The text of virtualenv's version module, read without importing virtualenv (a slow import)."""
    spec = importlib.util.find_spec("virtualenv")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("virtualenv is not installed")
    return Path(list(spec.submodule_search_locations)[0], "version.py").read_bytes()


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def skeleton_key(interpreter: str, system_site_packages: bool, pip: bool) -> str | None:
    """The cache key of what virtualenv builds for these inputs; None when it cannot be known.
    The umask is part of it: linked files keep the modes they were made with."""
    digest = sha256()
    try:
        real = os.path.realpath(interpreter)
        info = os.stat(real)
        digest.update(_virtualenv_version())
        # The start-up hook is part of the skeleton: a changed hook must not be cloned as the old one.
        for name in HOOK_FILES:
            digest.update((templates_dir() / name).read_bytes())
        # So is the lazy _virtualenv line: skeletons cached with the eager (or an older) line are not cloned.
        digest.update(lazy_line(()).encode())
    except (OSError, ImportError):
        return None
    facts = [MANIFEST_FORMAT, __version__, interpreter, real, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns]
    facts += [system_site_packages, pip, current_umask()]
    digest.update(repr(facts).encode())
    return digest.hexdigest()[:32]


def _tmp_name() -> str:
    return f"{TMP_PREFIX}{os.getpid()}-{os.urandom(4).hex()}"


def _under(relative: str, directories: list[str]) -> bool:
    return any(relative == d or relative.startswith(d.rstrip("/") + "/") for d in directories)


def _copy(source: str, target: str, umask: int) -> None:
    """A copy with the times kept (bytecode checks its source's mtime) and the mode a new file gets
    under ``umask``, as if virtualenv had written it now. Written here rather than by shutil.copy2:
    a warm create copies a few small scripts, and shutil is a ~1.4 ms import it needs for nothing else."""
    info = os.stat(source)
    with open(source, "rb") as handle:
        _write_new(target, handle.read(), info.st_mode, umask)
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))


def _write_new(target: str, data: bytes, source_mode: int, umask: int) -> None:
    """``data`` in the new file ``target``, executable if ``source_mode`` is, less ``umask``."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(fd, "wb") as handle:
        os.fchmod(fd, (0o777 if source_mode & stat.S_IXUSR else 0o666) & ~umask)
        handle.write(data)


class _Linker:
    """Hard-links files, falling back to copies once the filesystem refuses a link."""

    def __init__(self, umask: int, linking: bool = True) -> None:
        self.umask = umask
        self.linking = linking

    def __call__(self, source: str, target: str) -> None:
        if self.linking:
            try:
                os.link(source, target)
                return
            except FileNotFoundError:
                raise
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
                    raise
                self.linking = False
        _copy(source, target, self.umask)


def _copy_tree(
    source: Path, target: Path, entries: list[list[str]], shared: list[str], link: bool = True, edit: Callable | None = None
) -> None:
    """Recreate ``entries`` (from :func:`_list_tree`) of ``source`` in ``target``, which exists.
    Files under the ``shared`` directories are linked (with ``link``), others copied; ``edit``
    (relative path, bytes) returns what to write instead of a copied file's bytes, or None."""
    umask = current_umask()
    linker = _Linker(umask, link)
    # The loop of a warm create (some 600 entries): plain string work, no os.path calls.
    source_root, target_root = os.path.join(source, ""), os.path.join(target, "")
    shared_dirs, shared_prefixes = set(shared), tuple(d.rstrip("/") + "/" for d in shared)
    for kind, relative, *extra in entries:
        src, dst = source_root + relative, target_root + relative
        if kind == "d":
            os.mkdir(dst)
        elif kind == "l":
            os.symlink(extra[0], dst)
        elif relative.startswith(shared_prefixes) or relative in shared_dirs:
            linker(src, dst)
        elif edit is None:
            _copy(src, dst, umask)
        else:
            _write_edited(src, dst, umask, edit(relative, Path(src).read_bytes()))


def _write_edited(source: str, target: str, umask: int, data: bytes | None) -> None:
    """``data`` at ``target``, with the mode a copy of ``source`` gets; a plain copy when None."""
    if data is None:
        _copy(source, target, umask)
        return
    _write_new(target, data, os.stat(source).st_mode, umask)


def _same_group(skeleton_tree: Path, entries: list[list[str]], shared: list[str], target: Path) -> bool:
    """Would a file made in ``target`` get the group the skeleton's shared files have? Not in a
    setgid directory of another group (a group's shared area): a link there would keep the owner's
    group, and the group might not read it."""
    sample = next((e[1] for e in entries if e[0] == "f" and _under(e[1], shared)), None)
    if sample is None:
        return True
    directory = os.stat(target)
    group = directory.st_gid if directory.st_mode & stat.S_ISGID else os.getegid()
    return os.stat(skeleton_tree / sample).st_gid == group


def _list_tree(root: Path) -> list[list[str]]:
    """Every entry under ``root``, parents before children: ["d", path], ["l", path, target] or ["f", path]."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in dirnames + sorted(filenames):
            path = os.path.join(dirpath, name)
            relative = os.path.relpath(path, root)
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                entries.append(["l", relative, os.readlink(path)])
            elif stat.S_ISDIR(mode):
                entries.append(["d", relative])
            elif stat.S_ISREG(mode):
                entries.append(["f", relative])
            else:
                raise OSError(errno.EINVAL, "not a file, directory or symlink", path)
    return entries


def store(key: str, built_dir: Path, built: Built, leave_out: Iterable[str] = ()) -> None:
    """Save the tree virtualenv just built in ``built_dir`` as the skeleton ``key``, less the files
    ``leave_out`` (relative paths: what ``create`` writes itself). Best effort: any failure leaves
    the cache as it was."""
    root = skeletons_dir()
    if root is None:
        return
    if (root / key).exists():
        if (root / key / MANIFEST).exists():
            return
        remove_tree(root / key)  # half removed: make it anew
    naming = set(files_naming(built_dir, str(built_dir)))
    if not naming <= {"pyvenv.cfg"} | {f for f in naming if _under(f, [built.bin_dir])}:
        return  # a file we would not know how to point elsewhere: do not keep this one
    tmp = root / _tmp_name()
    try:
        tmp.mkdir()
        (tmp / "tree").mkdir()
        left_out = set(leave_out)
        entries = [entry for entry in _list_tree(built_dir) if entry[1] not in left_out]
        _copy_tree(built_dir, tmp / "tree", entries, built.libs)
        manifest = {"format": MANIFEST_FORMAT, "origin": str(built_dir), "built": built.as_dict(), "entries": entries}
        (tmp / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
        os.rename(tmp, root / key)  # fails if a concurrent create stored the same key first: fine
    except OSError:
        pass
    finally:
        remove_tree(tmp)
    prune(root)


def clone(key: str, target: Path, final: str | None = None, edit_cfg: Callable[[bytes], bytes] | None = None) -> Built | None:
    """Rebuild skeleton ``key`` in the empty directory ``target``, as if virtualenv had built it at
    ``final`` (default: ``target``); ``edit_cfg`` changes pyvenv.cfg further. None when there is no
    usable skeleton; ``target`` is then empty again."""
    root = skeletons_dir()
    if root is None:
        return None
    skeleton = root / key
    try:
        manifest = json.loads((skeleton / MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("format") != MANIFEST_FORMAT:
            raise ValueError("another format")
        built = Built(**manifest["built"])
        origin = manifest["origin"]
    except (OSError, ValueError, TypeError, KeyError):
        # None, one that lost its manifest, or one of another format: nothing to keep.
        remove_tree(skeleton)
        return None
    try:
        entries = manifest["entries"]
        link = _same_group(skeleton / "tree", entries, built.libs, target)
        # The copied scripts and pyvenv.cfg name the directory the skeleton was built in.
        where = final or str(target)

        def edit(relative: str, data: bytes) -> bytes | None:
            if relative == "pyvenv.cfg":
                moved = repointed_cfg(data, origin, where)
                return edit_cfg(moved) if edit_cfg is not None else moved
            return repointed_script(data, origin, where) if _under(relative, [built.bin_dir]) else None

        _copy_tree(skeleton / "tree", target, entries, built.libs, link, edit)
    except (OSError, ValueError, TypeError, KeyError):
        # Damaged (a file removed by hand, a cache cleaner): forget it. A failure on our side (a
        # full disk, a quota, no permission where the overlay goes) says nothing about the
        # skeleton: keep it. Either way leave target empty.
        if not _intact(skeleton / "tree", manifest.get("entries")):
            remove_tree(skeleton)
        import shutil

        for child in target.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        return None
    try:
        os.utime(skeleton / MANIFEST)  # most recently used: kept longest by prune()
    except OSError:
        pass
    prune(root)  # also clears what a killed store left
    return built


def _intact(tree: Path, entries) -> bool:
    """Is every entry of the manifest in the skeleton's tree, as the kind it was stored as?"""
    kinds = {"d": stat.S_ISDIR, "l": stat.S_ISLNK, "f": stat.S_ISREG}
    try:
        for kind, relative, *_extra in entries:
            if not kinds[kind](os.lstat(tree / relative).st_mode):
                return False
    except (OSError, ValueError, TypeError, KeyError):
        return False
    return True


def prune(root: Path) -> None:
    """Keep the KEEP most recently used skeletons, and remove leftovers of interrupted stores."""
    used = []
    now = time.time()
    for child in root.iterdir():
        try:
            if child.name.startswith(TMP_PREFIX):
                if now - child.stat().st_mtime > STALE_TMP_SECONDS:
                    remove_tree(child)
                continue
            used.append(((child / MANIFEST).stat().st_mtime, child))
        except OSError:
            remove_tree(child)  # no manifest: not a skeleton (any more)
    for _mtime, child in sorted(used, reverse=True)[KEEP:]:
        remove_tree(child)
