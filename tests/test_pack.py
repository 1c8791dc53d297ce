"""`overlay-venv pack` / `unpack` and the self-contained `bin/overlay-venv-relocate`: an overlay moved
to another directory works there in every shell, with the original gone."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import make_base
import pytest
from capabilities import require_shell
from conftest import ODD_NAME, clean_env, make_overlay, overlay_venv
from shells import CshShell, FishShell, PosixShell

from overlay_venv.pack import human_size

STAGING = ".overlay-venv-tmp-"
TOOL_OUTPUT = "tooly sees basepkg 2.0"


# Every shell activation is written for.
SHELLS = [pytest.param(PosixShell(name), id=name) for name in ("bash", "dash", "zsh", "ksh")]
SHELLS += [pytest.param(CshShell(name), id=name) for name in ("tcsh", "csh")] + [pytest.param(FishShell("fish"), id="fish")]


def install_tool(release, overlay: Path, wheels: Path) -> None:
    """pip installs a distribution with a console script, `tooly`, into the overlay."""
    pip = [str(overlay / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheels), "toolpkg"]
    subprocess.run(pip, env=release.env(), check=True, capture_output=True)


@pytest.fixture(scope="module")
def tool_wheels(tmp_path_factory) -> Path:
    wheels = tmp_path_factory.mktemp("tool-wheels")
    code = "def main():\n    import basepkg\n    print('tooly sees basepkg', basepkg.__version__)\n"
    make_base.build_wheel(
        wheels, "toolpkg", "1.0", modules={"toolpkg/__init__.py": code}, console_scripts={"tooly": "toolpkg:main"}
    )
    return wheels


def names_of(root: Path, old: str) -> list[str]:
    """Files under ``root`` that still contain the path ``old`` (bytecode aside: the import system
    replaces the file name a .pyc recorded with the real one)."""
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.suffix != ".pyc" and old.encode() in path.read_bytes():
            found.append(str(path.relative_to(root)))
    return found


def assert_works_at(dest: Path, release, record_before: str) -> None:
    """Imports, console scripts, pip, info and the record at the new place, without activation."""
    env = release.env()
    code = "import basepkg, sys; print(basepkg.__version__, sys.prefix)"
    out = subprocess.run([str(dest / "bin" / "python"), "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out == f"2.0 {dest}\n"  # the start-up hook at the new place puts the overlay first
    tool = subprocess.run([str(dest / "bin" / "tooly")], env=env, capture_output=True, text=True)
    assert (tool.returncode, tool.stdout.strip()) == (0, TOOL_OUTPUT), tool.stderr
    pip = subprocess.run([str(dest / "bin" / "pip"), "--version"], env=env, capture_output=True, text=True)
    assert pip.returncode == 0 and str(dest) in pip.stdout, pip.stderr
    info = json.loads(overlay_venv("info", str(dest), "--json", env=env).stdout)
    assert info["overlay"] == str(dest) and info["matches_this_shell"] is True
    assert info["site_packages"] == [str(dest / "lib" / "python3.9" / "site-packages")]
    assert (dest / "overlay-venv.json").read_text() == record_before
    # activate_this.py in the release's own interpreter.
    script = dest / "bin" / "activate_this.py"
    code = (
        f"p = {str(script)!r}; exec(open(p).read(), {{'__file__': p}}); "
        "import basepkg, os; print(basepkg.__version__, os.environ['VIRTUAL_ENV'])"
    )
    out = subprocess.run([str(release.python), "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out == f"2.0 {dest}\n"


def assert_activates(sh, dest: Path, release, tmp_path: Path) -> None:
    require_shell(sh)
    lines = [sh.source(dest / "bin" / sh.activate_script), sh.probe("on"), "tooly", "deactivate", sh.probe("off")]
    result = sh.run(lines, env=release.env(), cwd=tmp_path)
    on = result["on"]
    assert on["basepkg"] == "2.0" and on["VIRTUAL_ENV"] == str(dest)
    assert on["PYTHONPATH"] == f"{dest}/lib/python3.9/site-packages:{release.site}"
    assert on["PATH"].split(":")[0] == str(dest / "bin")
    assert TOOL_OUTPUT in result.lines
    assert result["off"]["basepkg"] == "1.0" and result["off"]["PYTHONPATH"] == str(release.site)


# ------------------------------------------------------------------------ overlay-venv pack / unpack


@pytest.fixture(scope="module")
def unpacked(release39, tool_wheels, tmp_path_factory) -> tuple:
    """An overlay in a directory with a blank (so its console scripts have sh trampolines), packed,
    deleted, and unpacked into a directory whose name holds every character a shell might run."""
    work = tmp_path_factory.mktemp("pack")
    (work / "src dir").mkdir()
    original = make_overlay(release39, work / "src dir" / "env")
    install_tool(release39, original, tool_wheels)
    record = (original / "overlay-venv.json").read_text()
    archive = work / "env.tar.gz"
    packed = overlay_venv("pack", str(original), "-o", str(archive), env=clean_env())
    shutil.rmtree(work / "src dir")
    (work / ODD_NAME).mkdir()
    dest = work / ODD_NAME / "env"
    unpacked = overlay_venv("unpack", str(archive), str(dest), env=clean_env())
    return dest, record, packed, unpacked, str(original), archive


def test_pack_reports_the_archive_size_and_unpack_reports_the_source(unpacked):
    dest, _, packed, result, original, archive = unpacked
    size = human_size(archive.stat().st_size)
    assert f"into {archive} ({size}," in packed.stdout
    # A blank in the old path is fine for unpack, but the stdlib script could not move it: said once.
    assert "overlay-venv unpack" in packed.stderr and "' '" in packed.stderr
    assert f"into {dest} (packed from {original})" in result.stdout and f"({size})" in result.stdout
    assert result.stderr == ""
    assert not [name for name in os.listdir(dest.parent) if name.startswith(STAGING)]


def test_unpacked_overlay_works_at_the_new_place(release39, unpacked):
    dest, record, _, _, original, _ = unpacked
    assert not Path(original).exists()
    assert names_of(dest, original) == []
    assert_works_at(dest, release39, record)
    # Console scripts got a trampoline that quotes the new path once for sh; the file runs nothing else.
    assert (dest / "bin" / "tooly").read_bytes().startswith(b"#!/bin/sh\n'''exec' ")
    assert sorted(os.listdir(dest.parent)) == ["env"]


@pytest.mark.parametrize("sh", SHELLS)
def test_unpacked_overlay_activates(sh, release39, unpacked, tmp_path):
    assert_activates(sh, unpacked[0], release39, tmp_path)


def test_unpacked_overlay_can_be_packed_and_moved_again(release39, unpacked, tmp_path):
    """Unpack works more than once (conda-pack#106): the archive names the latest place."""
    dest = unpacked[0]
    overlay_venv("pack", str(dest), "-o", str(tmp_path / "again.tar.gz"), env=clean_env())
    second = tmp_path / "second"
    overlay_venv("unpack", str(tmp_path / "again.tar.gz"), str(second), env=clean_env())
    assert names_of(second, str(dest)) == []
    assert_works_at(second, release39, unpacked[1])


# ----------------------------------------------------------- the self-contained path: tar + script


@pytest.fixture(scope="module")
def plain_archive(release39, tool_wheels, tmp_path_factory) -> tuple[Path, str, str]:
    work = tmp_path_factory.mktemp("plain")
    (work / "src").mkdir()
    original = make_overlay(release39, work / "src" / "env")
    install_tool(release39, original, tool_wheels)
    record = (original / "overlay-venv.json").read_text()
    archive = work / "env.tar.gz"
    overlay_venv("pack", str(original), "-o", str(archive), env=clean_env())
    shutil.rmtree(work / "src")
    return archive, record, str(original)


def untar_and_relocate(archive: Path, dest: Path) -> subprocess.CompletedProcess:
    """What a node without overlay-venv does: GNU tar and the overlay's own interpreter, clean env."""
    dest.mkdir(parents=True)
    subprocess.run(["tar", "xzf", str(archive), "-C", str(dest)], check=True)
    return subprocess.run(
        [str(dest / "bin" / "python"), str(dest / "bin" / "overlay-venv-relocate")],
        env=clean_env(),
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def relocated(plain_archive, tmp_path_factory) -> Path:
    archive, _, original = plain_archive
    dest = tmp_path_factory.mktemp("moved") / "new-place" / "env"
    result = untar_and_relocate(archive, dest)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("overlay-venv-relocate: ") and f"refer to {dest} (were {original})" in result.stdout
    return dest


def test_relocate_script_moves_the_overlay(release39, plain_archive, relocated):
    _, record, original = plain_archive
    assert names_of(relocated, original) == []
    assert_works_at(relocated, release39, record)
    again = subprocess.run(
        [str(relocated / "bin" / "python"), str(relocated / "bin" / "overlay-venv-relocate")],
        env=clean_env(),
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0 and "nothing to do" in again.stdout


@pytest.mark.parametrize("sh", SHELLS)
def test_relocated_overlay_activates(sh, release39, relocated, tmp_path):
    assert_activates(sh, relocated, release39, tmp_path)


def test_relocate_script_to_a_long_path_writes_trampolines(release39, plain_archive, tmp_path):
    """A destination whose python path exceeds the 127 bytes the kernel reads of a #! line."""
    archive, record, _ = plain_archive
    dest = tmp_path / ("d" * 60) / ("e" * 60) / "env"
    result = untar_and_relocate(archive, dest)
    assert result.returncode == 0, result.stderr
    assert (dest / "bin" / "tooly").read_bytes().startswith(b"#!/bin/sh\n'''exec' ")
    assert_works_at(dest, release39, record)


@pytest.mark.parametrize("name", ["with space", "dollar$x", "colon:x", "quote'x", "bang!x", "back\\slash", "star*x"])
def test_relocate_script_refuses_paths_it_cannot_rewrite_as_text(plain_archive, tmp_path, name):
    archive, _, original = plain_archive
    dest = tmp_path / name / "env"
    result = untar_and_relocate(archive, dest)
    assert result.returncode == 1
    assert result.stderr.startswith("overlay-venv-relocate: error: the new place") and "overlay-venv unpack" in result.stderr
    # Nothing was rewritten: the scripts still name the place the archive was packed from.
    assert f"VIRTUAL_ENV={original}\n" in (dest / "bin" / "activate").read_text()


# --------------------------------------------------------------------------------------- refusals


@pytest.fixture(scope="module")
def small(release39, tmp_path_factory) -> Path:
    return make_overlay(release39, tmp_path_factory.mktemp("small") / "env", "--no-pip", install=())


def _editable_direct_url(site: Path) -> list[Path]:
    # What pip writes for `pip install -e /src/foo` (PEP 660): metadata that points at the source tree.
    dist = site / "foo-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n")
    (dist / "direct_url.json").write_text(json.dumps({"url": "file:///src/foo", "dir_info": {"editable": True}}))
    return [dist]


def _editable_pth(site: Path) -> list[Path]:
    path = site / "__editable__.foo-1.0.pth"
    path.write_text("/src/foo\n")
    return [path]


def _egg_link(site: Path) -> list[Path]:
    path = site / "foo.egg-link"
    path.write_text("/src/foo\n.\n")
    return [path]


def _absolute_symlink(site: Path) -> list[Path]:
    link = site.parent.parent.parent / "lib-abs"
    link.symlink_to(site.parent.parent)
    return [link]


def _escaping_symlink(site: Path) -> list[Path]:
    link = site / "outside"
    link.symlink_to("../../../../elsewhere")
    return [link]


def _absolute_symlink_out(site: Path) -> list[Path]:
    # Only bin/python* may lead out by absolute path: unpack refuses others, which it would write through.
    link = site / "outside-abs"
    link.symlink_to("/usr/share")
    return [link]


def _pth_naming_the_overlay(site: Path) -> list[Path]:
    path = site / "extra.pth"
    path.write_text(f"{site.parent.parent.parent}/extra\n")
    return [path]


@pytest.mark.parametrize(
    "make, expected",
    [
        (_editable_direct_url, "foo-1.0 is an editable install"),
        (_editable_pth, "__editable__.foo-1.0.pth belongs to an editable install"),
        (_egg_link, "foo.egg-link belongs to an editable install"),
        (_absolute_symlink, "lib-abs is a symlink to"),
        (_escaping_symlink, "leads out of the overlay"),
        (_absolute_symlink_out, "outside-abs is a symlink to /usr/share by absolute path, which only bin/python* may be"),
        (_pth_naming_the_overlay, "extra.pth names the overlay's absolute path"),
    ],
    ids=["direct_url", "editable_pth", "egg_link", "absolute_symlink", "escaping_symlink", "absolute_symlink_out", "pth"],
)
def test_pack_refuses_what_cannot_move(small, tmp_path, make, expected):
    site = small / "lib" / "python3.9" / "site-packages"
    made = make(site)
    try:
        result = overlay_venv("pack", str(small), "-o", str(tmp_path / "x.tar.gz"), env=clean_env(), check=False)
    finally:
        for path in made:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"overlay-venv: error: cannot pack {small}") and expected in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_pack_refuses_to_overwrite_without_force(small, tmp_path):
    archive = tmp_path / "x.tar.gz"
    archive.write_text("precious")
    refused = overlay_venv("pack", str(small), "-o", str(archive), env=clean_env(), check=False)
    assert refused.returncode == 1 and "--force" in refused.stderr and archive.read_text() == "precious"
    overlay_venv("pack", str(small), "-o", str(archive), "--force", env=clean_env())
    with tarfile.open(archive) as tar:
        assert "overlay-venv.json" in tar.getnames() and "bin/overlay-venv-relocate" in tar.getnames()
    assert sorted(os.listdir(tmp_path)) == ["x.tar.gz"]


def test_unpack_refuses_a_non_empty_destination(small, tmp_path):
    archive = tmp_path / "x.tar.gz"
    overlay_venv("pack", str(small), "-o", str(archive), env=clean_env())
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep").write_text("mine")
    result = overlay_venv("unpack", str(archive), str(dest), env=clean_env(), check=False)
    assert result.returncode == 1 and "not empty" in result.stderr
    assert os.listdir(dest) == ["keep"]
    # An empty directory is fine (a job's prepared scratch directory).
    empty = tmp_path / "empty"
    empty.mkdir()
    overlay_venv("unpack", str(archive), str(empty), env=clean_env())
    assert (empty / "bin" / "activate").is_file()


def test_unpack_creates_missing_parent_directories_with_the_overlay(small, small_archive, tmp_path):
    """The missing parents are made in the staging directory and appear with the overlay's one
    rename; an unpack that fails leaves none of them behind."""
    dest = tmp_path / "scratch" / "job 1" / "env"
    result = overlay_venv("unpack", str(small_archive), str(dest), env=clean_env())
    assert f"into {dest}" in result.stdout
    assert os.listdir(tmp_path) == ["scratch"] and os.listdir(tmp_path / "scratch") == ["job 1"]
    prefix = subprocess.run([str(dest / "bin" / "python"), "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True)
    assert prefix.stdout == f"{dest}\n", prefix.stderr
    assert json.loads(overlay_venv("info", str(dest), "--json", env=clean_env()).stdout)["overlay"] == str(dest)

    # Fails after extraction (no relocate script): nothing, no parent included, is left.
    record = (small / "overlay-venv.json").read_bytes()
    foreign = _archive(tmp_path / "scratch" / "foreign.tar.gz", {"overlay-venv.json": record, "bin/activate": b""})
    failed = overlay_venv(
        "unpack", str(foreign), str(tmp_path / "scratch" / "new" / "deeper" / "env"), env=clean_env(), check=False
    )
    assert failed.returncode == 1 and "the place it was packed from is unknown" in failed.stderr
    assert sorted(os.listdir(tmp_path / "scratch")) == ["foreign.tar.gz", "job 1"]


def test_unpack_refuses_a_file_among_the_parents(small_archive, tmp_path):
    (tmp_path / "plain").write_text("a file\n")
    result = overlay_venv("unpack", str(small_archive), str(tmp_path / "plain" / "sub" / "env"), env=clean_env(), check=False)
    lines = result.stderr.splitlines()
    assert result.returncode == 1 and len(lines) == 1 and "is not a directory" in lines[0], result.stderr
    assert os.listdir(tmp_path) == ["plain"]


def _archive(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_unpack_refuses_hostile_or_foreign_archives_and_leaves_nothing(small, tmp_path):
    record = (small / "overlay-venv.json").read_bytes()
    cases = {
        "escape": ({"overlay-venv.json": record, "../evil": b"x"}, "outside the destination"),
        "no-record": ({"bin/activate": b""}, "does not hold an overlay"),
        # A plain tar of an overlay without the relocate script: the old place is unknown. This one
        # fails after extraction, inside the staging directory, which must vanish.
        "no-script": ({"overlay-venv.json": record, "bin/activate": b""}, "the place it was packed from is unknown"),
    }
    for name, (files, message) in cases.items():
        archive = _archive(tmp_path / f"{name}.tar.gz", files)
        result = overlay_venv("unpack", str(archive), str(tmp_path / f"dest-{name}"), env=clean_env(), check=False)
        assert result.returncode == 1 and message in result.stderr, (name, result.stderr)
    assert sorted(os.listdir(tmp_path)) == sorted(f"{name}.tar.gz" for name in cases)
    assert not (tmp_path.parent / "evil").exists()


# ------------------------------------------------------- archives that would write outside DEST


def _doctor(archive: Path, out: Path, changes: list[tuple[str, str, str]]) -> Path:
    """A copy of ``archive`` in which each ``(kind, name, value)`` of ``changes`` replaces the member
    ``name`` (or is added), after the others and in the order given: ("symlink", name, target),
    ("hardlink", name, target) or ("file", name, text)."""
    replaced = {name for _, name, _ in changes}
    with tarfile.open(archive) as src, tarfile.open(out, "w:gz", format=tarfile.PAX_FORMAT) as dst:
        for member in src.getmembers():
            if member.name not in replaced:
                dst.addfile(member, src.extractfile(member) if member.isreg() else None)
        for kind, name, value in changes:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = value.encode()
                info.size = len(data)
                dst.addfile(info, io.BytesIO(data))
                continue
            info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
            info.linkname = value
            dst.addfile(info)
    return out


@pytest.fixture(scope="module")
def small_archive(small, tmp_path_factory) -> Path:
    archive = tmp_path_factory.mktemp("small-archive") / "small.tar.gz"
    overlay_venv("pack", str(small), "-o", str(archive), env=clean_env())
    return archive


def _victim(tmp_path: Path) -> Path:
    (tmp_path / "x").mkdir()
    victim = tmp_path / "x" / "victim.txt"
    victim.write_text("precious\n")
    return victim


def _assert_refused(result: subprocess.CompletedProcess, *expected: str) -> None:
    lines = result.stderr.splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith("overlay-venv: error: refusing to unpack"), lines[0]
    for text in expected:
        assert text in lines[0]


def test_unpack_refuses_an_absolute_symlink_and_leaves_its_target_alone(small_archive, tmp_path):
    """The review's repro: bin/activate.fish replaced by a symlink out of DEST. Unpack would write the
    fish script through it; only bin/python* may be absolute symlinks."""
    victim = _victim(tmp_path)
    evil = _doctor(small_archive, tmp_path / "evil.tar.gz", [("symlink", "bin/activate.fish", str(victim))])
    dest = tmp_path / "dest"
    result = overlay_venv("unpack", str(evil), str(dest), env=clean_env(), check=False)
    _assert_refused(result, "'bin/activate.fish' is a symlink to", "only bin/python* may be")
    assert victim.read_text() == "precious\n"
    assert sorted(os.listdir(tmp_path)) == ["evil.tar.gz", "x"]


def test_unpack_refuses_a_hard_link_to_a_symlink(small_archive, tmp_path):
    """Extracting a hard link to a symlink member links the symlink's target (outside DEST), which
    relocation would then rewrite in place."""
    victim = _victim(tmp_path)
    changes = [("symlink", "bin/python3.9", str(victim)), ("hardlink", "bin/activate.csh", "bin/python3.9")]
    evil = _doctor(small_archive, tmp_path / "evil.tar.gz", changes)
    result = overlay_venv("unpack", str(evil), str(tmp_path / "dest"), env=clean_env(), check=False)
    _assert_refused(result, "'bin/activate.csh' is a hard link to 'bin/python3.9'")
    assert victim.read_text() == "precious\n"


def test_unpack_refuses_a_link_that_leads_out_through_an_interpreter_link(small_archive, tmp_path):
    """bin/python* may be absolute symlinks; another link may not lead out through one (writing
    bin/activate.fish would write what bin/python3.9 points at)."""
    victim = _victim(tmp_path)
    changes = [("symlink", "bin/python3.9", str(victim)), ("symlink", "bin/activate.fish", "python3.9")]
    evil = _doctor(small_archive, tmp_path / "evil.tar.gz", changes)
    dest = tmp_path / "dest"
    result = overlay_venv("unpack", str(evil), str(dest), env=clean_env(), check=False)
    _assert_refused(result, "'bin/activate.fish' is a symlink to 'python3.9', which leads out of the overlay through")
    assert victim.read_text() == "precious\n"
    assert sorted(os.listdir(tmp_path)) == ["evil.tar.gz", "x"]


# A symlink member and a member under it: written outside DEST by a tarfile without extraction
# filters; the "tar" filter stops it with a traceback. Absolute, and relative by a chain of links
# that each stay inside (p/q/b is the top; p/q/a is b/../.., two levels above it).
UNDER_A_SYMLINK = {
    "absolute": lambda outside: [("symlink", "share", str(outside)), ("file", "share/planted.txt", "x")],
    "chain": lambda _outside: [
        ("symlink", "p/q/b", "../.."),
        ("symlink", "p/q/a", "b/../.."),
        ("file", "p/q/a/planted.txt", "x"),
    ],
}


def _under_a_symlink(small_archive: Path, tmp_path: Path, case: str) -> tuple[Path, Path, Path]:
    """The archive, DEST, and where it would plant its file (both cases: tmp_path/a/planted.txt)."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    evil = _doctor(small_archive, tmp_path / "evil.tar.gz", UNDER_A_SYMLINK[case](tmp_path / "a"))
    return evil, tmp_path / "a" / "b" / "dest", tmp_path / "a" / "planted.txt"


@pytest.mark.parametrize("case", sorted(UNDER_A_SYMLINK))
def test_unpack_refuses_members_under_a_symlink(small_archive, tmp_path, case):
    evil, dest, planted = _under_a_symlink(small_archive, tmp_path, case)
    result = overlay_venv("unpack", str(evil), str(dest), env=clean_env(), check=False)
    _assert_refused(result, "planted.txt' lies under the symlink")
    assert not planted.exists() and os.listdir(dest.parent) == []


@pytest.mark.parametrize("case", sorted(UNDER_A_SYMLINK))
def test_unpack_is_safe_on_a_python_without_extraction_filters(small_archive, tmp_path, monkeypatch, case):
    """3.9.0-3.9.16, 3.10.0-3.10.11 and 3.11.0-3.11.3 have no tarfile.tar_filter: our checks alone."""
    from overlay_venv.errors import OverlayError
    from overlay_venv.pack import unpack_overlay

    evil, dest, planted = _under_a_symlink(small_archive, tmp_path, case)
    monkeypatch.delattr(tarfile, "tar_filter", raising=False)
    with pytest.raises(OverlayError, match="lies under the symlink"):
        unpack_overlay(evil, dest)
    assert not planted.exists() and os.listdir(dest.parent) == []


@pytest.mark.skipif(not hasattr(tarfile, "tar_filter"), reason="this Python has no tarfile extraction filters")
def test_unpack_reports_what_the_tar_filter_refuses_in_one_line(small_archive, tmp_path, monkeypatch):
    """Should the filter ever refuse a member our checks let through: one line, not a traceback."""
    import overlay_venv.pack as pack
    from overlay_venv.errors import OverlayError

    evil, dest, planted = _under_a_symlink(small_archive, tmp_path, "chain")
    monkeypatch.setattr(pack, "_archive_problems", lambda members, bin_dir: [], raising=False)
    with pytest.raises(OverlayError) as caught:
        pack.unpack_overlay(evil, dest)
    message = caught.value.format_message()
    assert message.startswith(f"cannot unpack {str(evil)!r}: ") and "planted.txt" in message
    assert not planted.exists() and os.listdir(dest.parent) == []


def test_relocation_writes_new_files_and_never_through_links(small, tmp_path):
    """Every file relocation writes (activation scripts, the relocate script, pyvenv.cfg, a script's
    shebang) replaces what is at its name: a symlink or a hard link there, to a file outside the
    overlay, leaves that file as it was."""
    from overlay_venv.record import read_record
    from overlay_venv.relocate import relocate_tree

    root = tmp_path / "root"
    shutil.copytree(small, root, symlinks=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    bin_dir = root / "bin"
    script = f"#!{small}/bin/python\nprint('tool')\n"
    kept = {}
    for name, text in {"script": script, "cfg": (small / "pyvenv.cfg").read_text(), "relocate": "", "sh": ""}.items():
        kept[name] = outside / name
        kept[name].write_text(text)
    (bin_dir / "tool").unlink(missing_ok=True)
    os.link(kept["script"], bin_dir / "tool")
    (root / "pyvenv.cfg").unlink()
    os.link(kept["cfg"], root / "pyvenv.cfg")
    (bin_dir / "overlay-venv-relocate").unlink()
    os.link(kept["relocate"], bin_dir / "overlay-venv-relocate")
    (bin_dir / "activate").unlink()
    os.link(kept["sh"], bin_dir / "activate")
    (bin_dir / "activate.fish").unlink()
    (bin_dir / "activate.fish").symlink_to(outside / "fish")
    before = {name: path.read_text() for name, path in kept.items()}

    new = tmp_path / "new"
    relocate_tree(root, str(small), new, read_record(root))
    assert {name: path.read_text() for name, path in kept.items()} == before
    assert not (outside / "fish").exists()
    assert (bin_dir / "tool").read_text() == f"#!{new}/bin/python\nprint('tool')\n"
    for name in ("activate", "activate.fish", "overlay-venv-relocate", "../pyvenv.cfg"):
        path = bin_dir / name
        assert not path.is_symlink() and path.stat().st_nlink == 1 and str(new) in path.read_text(), name
    assert os.access(bin_dir / "overlay-venv-relocate", os.X_OK)


def test_relocate_script_makes_its_temporary_files_new(plain_archive, tmp_path):
    """The stdlib script writes each file beside it first: a symlink already at that name (the
    archive can hold one) is replaced, not written through."""
    archive, _, original = plain_archive
    victim = _victim(tmp_path)
    evil = _doctor(archive, tmp_path / "evil.tar.gz", [("symlink", "bin/activate.relocating", str(victim))])
    dest = tmp_path / "new" / "env"
    result = untar_and_relocate(evil, dest)
    assert result.returncode == 0, result.stderr
    assert victim.read_text() == "precious\n"
    assert f"VIRTUAL_ENV={dest}\n" in (dest / "bin" / "activate").read_text()
    assert not os.path.lexists(dest / "bin" / "activate.relocating")
