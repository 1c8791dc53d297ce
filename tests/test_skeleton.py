"""The skeleton cache: a warm create rebuilds what virtualenv built before, without virtualenv, and
the result is the same overlay."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from capabilities import require_capability
from conftest import overlay_venv

from overlay_venv import skeleton
from overlay_venv.stack import STAMP_PREFIX


def cache_env(release, cache: Path, **extra: str) -> dict[str, str]:
    return release.env(XDG_CACHE_HOME=str(cache), **extra)


def skeletons(cache: Path) -> list[Path]:
    root = cache / "overlay-venv" / "skeletons"
    return sorted(p for p in root.iterdir() if not p.name.startswith(".")) if root.is_dir() else []


def tree(root: Path) -> dict[str, str]:
    """Every entry under ``root``: kind, and a symlink's target."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            if rel.startswith(STAMP_PREFIX):  # each overlay's own identity, new with every record (stack.py)
                rel = STAMP_PREFIX + "*"
            found[rel] = f"link {os.readlink(path)}" if path.is_symlink() else ("dir" if path.is_dir() else "file")
    return found


def pyvenv_cfg(overlay: Path) -> dict[str, str]:
    text = (overlay / "pyvenv.cfg").read_text().replace(str(overlay), "OVERLAY")
    return dict(line.split(" = ", 1) for line in text.splitlines() if line)


def run(cmd: list, env: dict[str, str]) -> str:
    return subprocess.run([str(c) for c in cmd], env=env, check=True, capture_output=True, text=True).stdout


def test_a_warm_create_is_the_same_overlay(release39, tmp_path):
    cache = tmp_path / "cache"
    env = cache_env(release39, cache)
    cold = tmp_path / "cold"
    overlay_venv("create", str(cold), env=env)
    [kept] = skeletons(cache)
    warm = tmp_path / "warm"
    overlay_venv("create", str(warm), "--prompt", "analysis", env=env)
    assert skeletons(cache) == [kept]

    assert tree(warm) == tree(cold)
    cold_cfg, warm_cfg = pyvenv_cfg(cold), pyvenv_cfg(warm)
    assert (cold_cfg.pop("prompt"), warm_cfg.pop("prompt")) == ("cold", "analysis")
    assert warm_cfg == cold_cfg
    assert "OVERLAY" in warm_cfg["command"]  # virtualenv's record of itself names this overlay
    assert (warm / "bin" / "pip").read_text().splitlines()[0] == f"#!{warm}/bin/python"
    assert str(warm / "lib") in run([warm / "bin" / "pip", "--version"], env)

    # pip's files are shared with the skeleton, not copied; what names a path is the overlay's own.
    init = next(warm.glob("lib/python3.*/site-packages/pip/__init__.py"))
    assert init.stat().st_nlink >= 3  # the skeleton, cold and warm
    assert (warm / "bin" / "pip").stat().st_nlink == 1
    assert (warm / "pyvenv.cfg").stat().st_nlink == 1

    # The overlay works: its packages win over the release's, through the start-up hook.
    pip = [warm / "bin" / "python", "-m", "pip", "install", "-q", "--no-index", "--find-links", release39.wheels]
    run([*pip, "basepkg==2.0"], env)
    assert run([warm / "bin" / "python", "-c", "import basepkg; print(basepkg.__version__)"], env).strip() == "2.0"
    assert run([cold / "bin" / "python", "-c", "import basepkg; print(basepkg.__version__)"], env).strip() == "1.0"


def test_shared_files_survive_changes_in_one_overlay(release39, tmp_path):
    """pip replacing or removing itself in one overlay leaves the others and the skeleton whole."""
    cache = tmp_path / "cache"
    env = cache_env(release39, cache)
    first, second = tmp_path / "first", tmp_path / "second"
    overlay_venv("create", str(first), env=env)
    overlay_venv("create", str(second), env=env)
    run([second / "bin" / "python", "-m", "pip", "uninstall", "-y", "-q", "pip"], env)
    assert not list(second.glob("lib/python3.*/site-packages/pip"))
    assert "pip" in run([first / "bin" / "pip", "--version"], env)
    third = tmp_path / "third"
    overlay_venv("create", str(third), env=env)
    assert "pip" in run([third / "bin" / "pip", "--version"], env)


@pytest.mark.parametrize("how", ["option", "environment"])
def test_no_cache_runs_virtualenv_and_keeps_nothing(release39, tmp_path, how):
    cache = tmp_path / "cache"
    if how == "option":
        overlay_venv("create", str(tmp_path / "env"), "--no-cache", env=cache_env(release39, cache))
    else:
        overlay_venv("create", str(tmp_path / "env"), env=cache_env(release39, cache, OVERLAY_VENV_NO_CACHE="1"))
    assert skeletons(cache) == []
    assert "pip" in run([tmp_path / "env" / "bin" / "pip", "--version"], release39.env())


def test_a_damaged_skeleton_is_dropped_and_virtualenv_runs(release39, tmp_path):
    cache = tmp_path / "cache"
    env = cache_env(release39, cache)
    overlay_venv("create", str(tmp_path / "first"), env=env)
    [kept] = skeletons(cache)
    victim = next((kept / "tree").glob("lib/python3.*/site-packages/pip/__main__.py"))
    victim.unlink()  # a cache cleaner, or a user tidying up
    overlay_venv("create", str(tmp_path / "second"), env=env)
    assert next((tmp_path / "second").glob("lib/python3.*/site-packages/pip/__main__.py")).is_file()
    assert "pip" in run([tmp_path / "second" / "bin" / "pip", "--version"], env)
    [renewed] = skeletons(cache)
    assert next((renewed / "tree").glob("lib/python3.*/site-packages/pip/__main__.py")).is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_cache_on_another_filesystem_gives_copies(release39, tmp_path):
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        require_capability("a second filesystem at /dev/shm", "where hard links are impossible the skeleton's files are copied")
    cache = shm / f"overlay-venv-test-{os.getpid()}"
    try:
        env = cache_env(release39, cache)
        for name in ("first", "second"):
            overlay_venv("create", str(tmp_path / name), env=env)
        init = next((tmp_path / "second").glob("lib/python3.*/site-packages/pip/__init__.py"))
        assert init.stat().st_nlink == 1
        assert "pip" in run([tmp_path / "second" / "bin" / "pip", "--version"], env)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def test_a_kept_overlay_path_with_spaces_is_pointed_at_correctly(release39, tmp_path):
    """The skeleton was built under one staging path, the clone goes to a path the kernel cannot
    put in a shebang: the scripts get the /bin/sh trampoline."""
    cache = tmp_path / "cache"
    env = cache_env(release39, cache)
    overlay_venv("create", str(tmp_path / "plain"), env=env)
    spaced = tmp_path / "with space" / "env"
    spaced.parent.mkdir()
    overlay_venv("create", str(spaced), env=env)
    assert (spaced / "bin" / "pip").read_text().startswith("#!/bin/sh\n")
    assert "pip" in run([spaced / "bin" / "pip", "--version"], env)


def test_key_follows_every_input(tmp_path):
    python = tmp_path / "python3"
    shutil.copy2(shutil.which("true"), python)
    key = skeleton.skeleton_key(str(python), True, True)
    assert key == skeleton.skeleton_key(str(python), True, True)
    assert key != skeleton.skeleton_key(str(python), False, True)
    assert key != skeleton.skeleton_key(str(python), True, False)
    link = tmp_path / "python"
    link.symlink_to(python)
    assert key != skeleton.skeleton_key(str(link), True, True)  # the path is recorded as given
    os.utime(python, ns=(time.time_ns(), time.time_ns() + 10**9))  # a release updated in place
    assert key != skeleton.skeleton_key(str(python), True, True)
    assert skeleton.skeleton_key(str(tmp_path / "missing"), True, True) is None


def test_prune_keeps_the_most_recently_used(tmp_path):
    for index in range(skeleton.KEEP + 3):
        entry = tmp_path / f"key{index:02d}"
        entry.mkdir()
        (entry / skeleton.MANIFEST).write_text(json.dumps({"format": skeleton.MANIFEST_FORMAT}))
        os.utime(entry / skeleton.MANIFEST, (1000 + index, 1000 + index))
    fresh_tmp, stale_tmp = tmp_path / (skeleton.TMP_PREFIX + "1-a"), tmp_path / (skeleton.TMP_PREFIX + "2-b")
    fresh_tmp.mkdir()
    stale_tmp.mkdir()
    os.utime(stale_tmp, (1000, 1000))
    (tmp_path / "no-manifest").mkdir()
    skeleton.prune(tmp_path)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([fresh_tmp.name] + [f"key{index:02d}" for index in range(3, skeleton.KEEP + 3)])


def test_fixture_overlays_come_from_one_skeleton(release39, overlay39, second_overlay39):
    """The session's overlays on one release share one skeleton: the cache is used by default."""
    pip_init = next(overlay39.glob("lib/python3.*/site-packages/pip/__init__.py"))
    other = second_overlay39 / pip_init.relative_to(overlay39)
    assert os.path.samefile(pip_init, other)


def test_a_cloned_overlay_installs_as_usual(release, tmp_path):
    """Both base interpreters: a cloned overlay takes a pip install and shadows the release."""
    cache = tmp_path / "cache"
    env = cache_env(release, cache)
    overlay_venv("create", str(tmp_path / "first"), env=env)
    second = tmp_path / "second"
    overlay_venv("create", str(second), env=env)
    run([second / "bin" / "pip", "install", "-q", "--no-index", "--find-links", release.wheels, "basepkg==2.0"], env)
    assert run([second / "bin" / "python", "-c", "import basepkg; print(basepkg.__version__)"], env).strip() == "2.0"


def create_with_umask(release, dest: Path, cache: Path, umask: int) -> None:
    env = cache_env(release, cache)
    result = subprocess.run(
        [sys.executable, "-m", "overlay_venv", "create", str(dest)],
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=lambda: os.umask(umask),
    )
    assert result.returncode == 0, result.stderr


def test_each_umask_gets_its_own_skeleton(release39, tmp_path):
    """Linked files share their mode: an overlay made under umask 022 must not get the 0600 files of
    one made under 077, and copies take the umask of the create that makes them."""
    cache = tmp_path / "cache"
    create_with_umask(release39, tmp_path / "private", cache, 0o077)
    create_with_umask(release39, tmp_path / "shared", cache, 0o022)
    create_with_umask(release39, tmp_path / "shared2", cache, 0o022)
    assert len(skeletons(cache)) == 2
    for name, mode in (("private", 0o600), ("shared", 0o644), ("shared2", 0o644)):
        overlay = tmp_path / name
        init = next(overlay.glob("lib/python3.*/site-packages/pip/__init__.py"))
        assert stat.S_IMODE(init.stat().st_mode) == mode, name
        assert stat.S_IMODE((overlay / "pyvenv.cfg").stat().st_mode) == mode, name
    assert stat.S_IMODE((tmp_path / "shared2" / "bin" / "pip").stat().st_mode) == 0o755


def test_a_setgid_group_directory_gets_copies_of_its_group(release39, tmp_path):
    if os.geteuid() != 0:
        require_capability("root", "to give a directory another group, as a group's shared area has")
    cache = tmp_path / "cache"
    env = cache_env(release39, cache)
    overlay_venv("create", str(tmp_path / "mine"), env=env)
    area = tmp_path / "group-area"
    area.mkdir()
    other_group = 65534  # nogroup
    os.chown(area, -1, other_group)
    area.chmod(0o2775)
    overlay_venv("create", str(area / "shared"), env=env)
    init = next((area / "shared").glob("lib/python3.*/site-packages/pip/__init__.py"))
    assert init.stat().st_nlink == 1
    assert init.stat().st_gid == other_group
    assert "pip" in run([area / "shared" / "bin" / "pip", "--version"], env)


def test_key_covers_the_start_up_hook(tmp_path, monkeypatch):
    python = tmp_path / "python3"
    shutil.copy2(shutil.which("true"), python)
    key = skeleton.skeleton_key(str(python), True, True)
    templates = tmp_path / "templates"
    shutil.copytree(skeleton.templates_dir(), templates)
    with open(templates / "_overlay_venv_hook.py.j2", "a") as hook:
        hook.write("# changed\n")
    monkeypatch.setattr(skeleton, "templates_dir", lambda: templates)
    assert skeleton.skeleton_key(str(python), True, True) != key


def test_a_skeleton_that_lost_its_manifest_is_made_anew(release39, tmp_path):
    cache = tmp_path / "cache"
    env = cache_env(release39, cache)
    overlay_venv("create", str(tmp_path / "first"), env=env)
    [kept] = skeletons(cache)
    (kept / skeleton.MANIFEST).unlink()
    overlay_venv("create", str(tmp_path / "second"), env=env)
    assert (kept / skeleton.MANIFEST).is_file()
    overlay_venv("create", str(tmp_path / "third"), env=env)
    init = next((tmp_path / "third").glob("lib/python3.*/site-packages/pip/__init__.py"))
    assert init.stat().st_nlink > 1


def test_rebuild_honours_the_no_cache_environment(release39, tmp_path):
    cache = tmp_path / "cache"
    env, no_cache = cache_env(release39, cache), cache_env(release39, cache, OVERLAY_VENV_NO_CACHE="1")
    overlay = str(tmp_path / "env")
    overlay_venv("create", overlay, "--no-cache", env=env)
    overlay_venv("install", "-q", "--overlay", overlay, "--no-index", "-f", str(release39.wheels), "basepkg==2.0", env=env)
    overlay_venv("rebuild", overlay, "--wheelhouse", str(release39.wheels), "-q", env=no_cache)
    assert skeletons(cache) == []
    assert "pip" in run([tmp_path / "env" / "bin" / "pip", "--version"], release39.env())
