"""`unpack` of hostile archives, and `pack` of trees that lead out: nothing is ever written outside
DEST, whatever the chain of links, and every refusal is one line, exit 1, with nothing left behind.

Each archive is a genuine `overlay-venv pack` archive plus hostile members (chains of symlinks that
each stay inside but lead out together, `..`, absolute links, hard links, devices, duplicate names,
huge member counts, a damaged record, truncated or corrupted compression). DEST lies three levels
down a sentinel tree whose every file is fingerprinted before and after. The archives are run
through the CLI in-process (CliRunner: a traceback shows as an exception), and a sample through the
real console command.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import clean_env, make_overlay, overlay_venv

from overlay_venv.cli import cli

SP = "lib/python3.9/site-packages"
DEPTH = 3  # DEST is world/o/i/dest: a member at depth k climbs to world with k + DEPTH "../"


def ups(count: int) -> str:
    return "../" * count


# --------------------------------------------------------------------------------------------------
# The cases: (id, members to add, where to add them, compression). A member is (kind, name, value):
# kind "file" (value: text), "dir", "symlink"/"hardlink" (value: target), "chr", "blk", "fifo".


def _absolute(world: str) -> list:
    cases = []
    names = ["bin/activate", "bin/x", f"{SP}/evil", "share/x", "lib64", "pyvenv.cfg", "a/b/c/d", "include/x", "e"]
    for name in names:
        for target in (f"{world}/victim.txt", f"{world}/o/victimdir", "/"):
            members = [("symlink", name, target)]
            if not target.endswith(".txt"):
                members.append(("file", f"{name}/planted.txt", "x"))
            cases.append((f"abs-{name}-{Path(target).name or 'root'}", members))
    return cases


def _relative(rng: random.Random) -> list:
    cases = []
    for n in range(24):
        depth = n % 5
        where = "/".join(rng.choice(["a", "b", "bin", "lib", "sp"]) for _ in range(depth))
        name = f"{where}/evil{n}" if where else f"evil{n}"
        climb = depth + DEPTH - rng.randint(0, 2) if n % 2 else depth + 1 + rng.randint(0, 3)
        tail = rng.choice(["", "victim.txt", "o/victimdir", "o/i"])
        members = [("symlink", name, ups(climb) + tail)]
        if n % 3 == 0:
            members.append(("file", f"{name}/planted.txt", "x"))
        cases.append((f"rel-{n}", members))
    return cases


def _rel(path: str, start_dir: str) -> str:
    return os.path.relpath(path, start_dir or ".")


def _chains(rng: random.Random) -> list:
    """Links that each resolve inside (every one leads to DEST's top), then one that climbs above the
    last: lexically inside, outside in fact. The issue's reproducer is the first."""
    cases = [("chain-issue", [("symlink", f"{SP}/p", "../../.."), ("symlink", f"{SP}/evilpkg", "p/../../victim")])]
    dirs = ["", "a", "a/b", "bin", SP, f"{SP}/pkg", "share/x/y", "lib"]
    for n in range(48):
        length = 1 + n % 6
        links = []
        for j in range(length):
            where = rng.choice(dirs)
            name = f"{where}/l{n}_{j}" if where else f"l{n}_{j}"
            if j == 0:
                target = ups(name.count("/")) or "."
            else:
                target = _rel(links[-1][1], os.path.dirname(name))
            links.append(("symlink", name, target))
        where = rng.choice(dirs)
        final = f"{where}/e{n}" if where else f"e{n}"
        climb = rng.randint(1, 3)
        target = _rel(links[-1][1], os.path.dirname(final)) + "/" + ups(climb) + rng.choice(["victim.txt", "x", ""])
        members = [*links, ("symlink", final, target.rstrip("/"))]
        if n % 2:
            rng.shuffle(members)  # a link may lead through one that comes later in the archive
        if n % 4 == 1:
            members.append(("file", f"{final}/planted.txt", "x"))
        cases.append((f"chain-{n}", members))
    return cases


def _interpreter(world: str) -> list:
    out = f"{world}/o/victimdir"
    return [
        ("interp-write-through", [("symlink", "bin/python", out), ("symlink", "bin/activate", "python")]),
        ("interp-via-sp", [("symlink", "bin/python", out), ("symlink", f"{SP}/x", "../../../bin/python")]),
        ("interp-under", [("symlink", "bin/python", out), ("file", "bin/python/planted.txt", "x")]),
        ("interp-climb", [("symlink", "bin/python", out), ("symlink", f"{SP}/y", "../../../bin/python/../victim.txt")]),
        ("interp-pip", [("symlink", "bin/pip", "python3")]),
        ("interp-sub", [("symlink", "bin/python", out), ("symlink", "bin/python4", "python/sub")]),
        ("interp-dirlink", [("symlink", "b2", "bin"), ("symlink", "evil", "b2/python")]),
        ("interp-fake", [("symlink", "lib/python", "/usr/bin/python3")]),
        ("interp-nested", [("symlink", "bin/sub/python", f"{world}/victim.txt")]),
        ("interp-record", [("symlink", "overlay-venv.json", f"{world}/victim.txt")]),
    ]


def _hardlinks(world: str) -> list:
    cases = [
        ("hard-abs", [("hardlink", "bin/h", f"{world}/victim.txt")]),
        ("hard-up", [("hardlink", "bin/h", "../../../../victim.txt")]),
        ("hard-to-symlink", [("symlink", "s", f"{world}/victim.txt"), ("hardlink", "h", "s")]),
        ("hard-to-inside-symlink", [("symlink", "s", "pyvenv.cfg"), ("hardlink", "h", "s")]),
        ("hard-to-later", [("hardlink", "h", "later.txt"), ("file", "later.txt", "x")]),
        ("hard-to-dir", [("hardlink", "h", "bin")]),
        ("hard-to-missing", [("hardlink", "h", "nothing-here")]),
        ("hard-through-link", [("symlink", "d", "bin"), ("hardlink", "h", "d/activate")]),
        ("hard-over-file", [("hardlink", "pyvenv.cfg", "bin/activate")]),
        ("hard-to-device", [("fifo", "f", ""), ("hardlink", "h", "f")]),
        ("hard-self", [("hardlink", "h", "h")]),
        ("hard-to-dot", [("hardlink", "h", ".")]),
    ]
    for n, where in enumerate(["", "a", SP, "bin/x/y"]):
        name = f"{where}/h{n}" if where else f"h{n}"
        cases.append((f"hard-up-{n}", [("hardlink", name, ups(name.count("/") + DEPTH) + "victim.txt")]))
        cases.append((f"hard-abs-dir-{n}", [("hardlink", name, f"{world}/o/victimdir")]))
    return cases


def _devices() -> list:
    cases = []
    for kind in ("chr", "blk", "fifo"):
        for name in ("bin/x", f"{SP}/dev", "dev", "a/b/c", "bin/python9"):
            cases.append((f"{kind}-{name}", [(kind, name, "")]))
    return cases


def _duplicates(world: str) -> list:
    specs = [
        ("dup-file-then-link", [("file", "x", "1"), ("symlink", "x", f"{world}/victim.txt")]),
        ("dup-link-then-file", [("symlink", "x", f"{world}/victim.txt"), ("file", "x", "overwritten")]),
        ("dup-inside-link-then-file", [("symlink", "x", "pyvenv.cfg"), ("file", "x", "overwritten")]),
        ("dup-genuine-activate", [("file", "bin/activate", "echo hi")]),
        ("dup-dot-slash", [("file", "./pyvenv.cfg", "home = /x")]),
        ("dup-double-slash", [("file", "bin//activate", "x")]),
        ("dup-dir-then-file", [("dir", "d", ""), ("file", "d", "x")]),
        ("dup-file-then-dir", [("file", "d", "x"), ("dir", "d", "")]),
        ("dup-record", [("file", "overlay-venv.json", "{}")]),
        ("dup-hardlink", [("file", "f", "x"), ("hardlink", "f", "pyvenv.cfg")]),
        ("dup-link-link", [("symlink", "l", "bin"), ("symlink", "l", ups(DEPTH + 1))]),
        ("dup-trailing-slash", [("dir", "bin/", ""), ("symlink", "bin", ups(DEPTH))]),
        ("dup-dir-link", [("symlink", "share", ups(DEPTH)), ("dir", "share", ""), ("file", "share/planted.txt", "x")]),
    ]
    cases = []
    for name, members in specs:
        cases.append((f"{name}-end", members, "end"))
        cases.append((f"{name}-start", members, "start"))
    return cases


def _names() -> list:
    names = ["/tmp/overlay-venv-hostile-abs.txt", "../x", "a/../../x", "bin/../../x", "./../x", "x/../..", "a/./../../y"]
    names += ["", ".", "..", "../", "../../../victim.txt", "a/b/../../../victim.txt"]
    cases = []
    for n, name in enumerate(names):
        cases.append((f"name-file-{n}", [("file", name, "x")]))
        if name not in ("", "."):
            cases.append((f"name-dir-{n}", [("dir", name, "")]))
    return cases


def _under(world: str) -> list:
    return [
        ("under-inside-link", [("symlink", "l", "bin"), ("file", "l/planted", "x")]),
        ("under-file", [("file", "pyvenv.cfg/x", "x")]),
        ("under-genuine-link", [("file", "bin/python3/x", "x")]),
        ("under-link-dir", [("symlink", "d", "lib"), ("dir", "d/x", "")]),
        ("under-link-first", [("file", "l/planted", "x"), ("symlink", "l", f"{world}/o/victimdir")]),
        ("under-deep", [("symlink", "a/b/c", ups(2 + DEPTH)), ("file", "a/b/c/o/victimdir/planted", "x")]),
        ("under-hardlink", [("file", "f", "x"), ("hardlink", "g", "f"), ("file", "g/x", "x")]),
        ("under-record", [("file", "overlay-venv.json/x", "x")]),
        ("under-abs-sibling", [("symlink", "lib64", f"{world}/o/victimdir"), ("symlink", "lib64x", "lib64/planted")]),
        ("under-chain", [("symlink", "p/q/b", "../.."), ("symlink", "p/q/a", "b/../.."), ("file", "p/q/a/planted.txt", "x")]),
    ]


def _loops() -> list:
    chain = [("symlink", f"c{j}", f"c{j + 1}") for j in range(45)] + [("symlink", "c45", ups(DEPTH + 1))]
    return [
        ("loop-two", [("symlink", "a", "b"), ("symlink", "b", "a"), ("symlink", "e", "a/../..")]),
        ("loop-self", [("symlink", "a", "a")]),
        ("loop-self-sub", [("symlink", "a", "a/x")]),
        ("loop-dir", [("symlink", "d/l", "../d/l/x")]),
        ("loop-long-chain", chain),
        ("loop-three", [("symlink", "x", "y/.."), ("symlink", "y", "z/.."), ("symlink", "z", "x/..")]),
        ("long-target", [("symlink", "t", "a/" * 50000 + ups(50000 + DEPTH + 1))]),
        ("long-chain-targets", [("symlink", f"t{j}", "x/" * 2000 + ups(2000) + f"t{j + 1}") for j in range(300)]),
    ]


def _records(world: str) -> list:
    return [
        ("rec-symlink", [("symlink", "overlay-venv.json", f"{world}/victim.txt")], "replace"),
        ("rec-dir", [("dir", "overlay-venv.json", "")], "replace"),
        ("rec-missing", [], "drop-record"),
        ("rec-garbage", [("file", "overlay-venv.json", "garbage")], "replace"),
        ("rec-bin-up", [("file", "overlay-venv.json", "RECORD:../..")], "replace"),
        ("rec-bin-abs", [("file", "overlay-venv.json", f"RECORD:{world}/o/victimdir")], "replace"),
        ("rec-bin-link", [("file", "overlay-venv.json", "RECORD:b2"), ("symlink", "b2", ups(DEPTH + 1))], "replace"),
        ("rec-types", [("file", "overlay-venv.json", "RECORD-TYPES")], "replace"),
        ("rec-deep", [("file", "overlay-venv.json", "[" * 100000 + "]" * 100000)], "replace"),
        ("rec-bin-file", [("file", "overlay-venv.json", "RECORD:pyvenv.cfg")], "replace"),
    ]


def hostile_cases(world: str) -> list:
    rng = random.Random(12)
    cases = [(*case, "end") for case in _absolute(world) + _relative(rng) + _chains(rng)]
    cases += [(*case, "end") for case in _interpreter(world) + _hardlinks(world) + _devices()]
    cases += _duplicates(world)
    cases += [(*case, "end") for case in _names() + _under(world) + _loops()]
    cases += _records(world)
    cases += [("huge-end", [("many", "", "")], "end"), ("huge-middle", [("many", "", "escape-middle")], "end")]
    return cases


# --------------------------------------------------------------------------------------------------
# Building archives


def _info(kind: str, name: str, value: str, genuine_record: str | None) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.mtime = 1_700_000_000
    data = None
    if kind == "file":
        if value.startswith("RECORD"):
            value = _doctored_record(genuine_record, value)
        data = value.encode()
        info.size = len(data)
    elif kind == "dir":
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    elif kind in ("symlink", "hardlink"):
        info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
        info.linkname = value
    else:
        info.type = {"chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE}[kind]
        info.devmajor, info.devminor = (1, 3) if kind != "fifo" else (0, 0)
    return info, data


def _doctored_record(genuine: str, how: str) -> str:
    import json

    record = json.loads(genuine)
    if how == "RECORD-TYPES":
        record.update(site_packages=5, prompt=5, bin_dir=None, base="x")
    else:
        record["bin_dir"] = how.partition(":")[2]
    return json.dumps(record)


def _many(position: str) -> list:
    """20,000 harmless members; the escaping link last or in the middle."""
    members = [("file", f"many/{n // 1000}/f{n}", "") for n in range(20000)]
    escape = ("symlink", "many/esc", ups(1 + DEPTH) + "victim.txt")
    members.insert(10000 if position == "escape-middle" else len(members), escape)
    return members


def build_archive(genuine: list, out: Path, added: list, position: str) -> Path:
    record = next(data for member, data in genuine if member.name == "overlay-venv.json")
    replaced = {posixpath_norm(name) for _, name, _ in added} if position == "replace" else set()
    expanded = []
    for kind, name, value in added:
        expanded += _many(value) if kind == "many" else [(kind, name, value)]
    mode = "w:gz" if len(out.suffixes) > 1 else "w"
    with tarfile.open(out, mode, format=tarfile.PAX_FORMAT) as tar:

        def add_hostile():
            for kind, name, value in expanded:
                info, data = _info(kind, name, value, record.decode())
                tar.addfile(info, io.BytesIO(data) if data is not None else None)

        if position == "start":
            add_hostile()
        for member, data in genuine:
            if member.name in replaced or (position == "drop-record" and member.name == "overlay-venv.json"):
                continue
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
        if position != "start":
            add_hostile()
    return out


def posixpath_norm(name: str) -> str:
    import posixpath

    return posixpath.normpath(name)


# --------------------------------------------------------------------------------------------------
# The world around DEST


def make_world(root: Path) -> Path:
    """A sentinel tree: files beside and above DEST's parent, and the empty parent world/o/i."""
    (root / "o" / "victimdir").mkdir(parents=True)
    (root / "o" / "i").mkdir()
    (root / "victim.txt").write_text("precious\n")
    (root / "o" / "victimdir" / "keep.txt").write_text("precious too\n")
    (root / "o" / "i.txt").write_text("beside\n")
    return root


def snapshot(root: Path) -> dict:
    """Every path under ``root`` with its type, mode, size, mtime, link target and content hash."""
    seen = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            extra = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
            if stat.S_ISREG(st.st_mode):
                extra = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            # A directory's mtime changes when the staging directory is made and removed in it;
            # what it holds is in the listing itself.
            mtime = None if stat.S_ISDIR(st.st_mode) else st.st_mtime_ns
            seen[os.path.relpath(path, root)] = (st.st_mode, st.st_size if mtime else None, mtime, st.st_nlink, extra)
    return seen


@pytest.fixture(scope="module")
def genuine(release39, tmp_path_factory) -> tuple[list, Path]:
    """The members of a real packed overlay (no pip: small), with their contents, and the archive."""
    overlay = make_overlay(release39, tmp_path_factory.mktemp("hostile-src") / "env", "--no-pip", install=())
    archive = overlay.parent / "genuine.tar.gz"
    overlay_venv("pack", str(overlay), "-o", str(archive), env=clean_env())
    with tarfile.open(archive) as tar:
        members = [(m, tar.extractfile(m).read() if m.isreg() else None) for m in tar.getmembers()]
    return members, archive


def run_unpack(archive: Path, dest: Path):
    result = CliRunner().invoke(cli, ["unpack", str(archive), str(dest)], prog_name="overlay-venv")
    return result


def assert_refused_cleanly(result, world: Path, before: dict, dest: Path, case: str) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), (case, result.exc_info)
    lines = result.stderr.splitlines()
    assert result.exit_code == 1, (case, result.exit_code, result.output)
    assert len(lines) == 1 and lines[0].startswith("overlay-venv: error: "), (case, result.stderr)
    assert "Traceback" not in result.output
    assert snapshot(world) == before, case  # nothing written, moved or removed around DEST
    assert not os.path.lexists(dest) and os.listdir(dest.parent) == [], (case, os.listdir(dest.parent))


def test_at_least_200_hostile_archives_each_refused_in_one_line_and_nothing_outside(genuine, tmp_path):
    members, _ = genuine
    world = make_world(tmp_path / "world")
    cases = hostile_cases(str(world))
    assert len(cases) >= 200 and len({case[0] for case in cases}) == len(cases)
    before = snapshot(world)
    dest = world / "o" / "i" / "dest"
    archives = tmp_path / "archives"
    archives.mkdir()
    for n, (case, added, position) in enumerate(cases):
        suffix = ".tar.gz" if n % 3 == 0 else ".tar"  # tarfile's gzip and plain readers both
        archive = build_archive(members, archives / f"{n}{suffix}", added, position)
        assert_refused_cleanly(run_unpack(archive, dest), world, before, dest, case)
        archive.unlink()


def test_the_console_command_refuses_a_sample_the_same_way(genuine, tmp_path):
    """The real console command (its entry point and exit path), for one case of each kind."""
    members, _ = genuine
    world = make_world(tmp_path / "world")
    before = snapshot(world)
    dest = world / "o" / "i" / "dest"
    wanted = {"chain-issue", "chain-7", "abs-bin/activate-victim.txt", "interp-write-through", "hard-to-symlink"}
    wanted |= {"chr-dev", "dup-link-then-file-start", "name-file-1", "loop-two", "rec-types", "huge-end"}
    cases = [case for case in hostile_cases(str(world)) if case[0] in wanted]
    assert len(cases) == len(wanted)
    for case, added, position in cases:
        archive = build_archive(members, tmp_path / "a.tar.gz", added, position)
        result = overlay_venv("unpack", str(archive), str(dest), env=clean_env(), check=False)
        lines = result.stderr.splitlines()
        assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith("overlay-venv: error: "), (case, result.stderr)
        assert snapshot(world) == before and os.listdir(dest.parent) == [], case


@pytest.mark.parametrize("cut", [0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99, -8, -1])
def test_a_truncated_archive_is_one_line_not_aborted(genuine, tmp_path, cut):
    """A truncated .tgz ended in EOFError, which click turned into a bare "Aborted!"."""
    _, archive = genuine
    data = archive.read_bytes()
    end = int(len(data) * cut) if cut > 0 else len(data) + cut
    damaged = tmp_path / "cut.tar.gz"
    damaged.write_bytes(data[:end])
    world = make_world(tmp_path / "world")
    before = snapshot(world)
    dest = world / "o" / "i" / "dest"
    assert_refused_cleanly(run_unpack(damaged, dest), world, before, dest, f"cut {cut}")


@pytest.mark.parametrize("seed", range(8))
def test_a_corrupted_archive_is_one_line(genuine, tmp_path, seed):
    _, archive = genuine
    data = bytearray(archive.read_bytes())
    rng = random.Random(seed)
    for _ in range(4):
        data[rng.randrange(20, len(data) - 8)] ^= 1 << rng.randrange(8)
    damaged = tmp_path / "flipped.tar.gz"
    damaged.write_bytes(bytes(data))
    world = make_world(tmp_path / "world")
    before = snapshot(world)
    dest = world / "o" / "i" / "dest"
    assert_refused_cleanly(run_unpack(damaged, dest), world, before, dest, f"seed {seed}")


def test_links_that_stay_inside_unpack(genuine, tmp_path):
    """The rule is not "no links": chains that end inside, and the interpreter links, unpack."""
    members, _ = genuine
    inside = [
        ("symlink", f"{SP}/p", "../../.."),  # the top of DEST: harmless on its own
        ("symlink", f"{SP}/q", "p/bin/../lib"),
        ("symlink", "lib64", "lib"),
        ("symlink", "share/a/b", "../../lib/python3.9/site-packages/q/python3.9/.."),
        ("symlink", "dangling", "no/such/file"),
    ]
    world = make_world(tmp_path / "world")
    before = snapshot(world)
    dest = world / "o" / "i" / "dest"
    archive = build_archive(members, tmp_path / "ok.tar", inside, "end")
    result = run_unpack(archive, dest)
    assert result.exit_code == 0, result.output
    assert os.path.realpath(dest / SP / "q") == str(dest / "lib")
    after = snapshot(world)
    unchanged = [key for key in before if key != "o/i"]  # DEST's parent now holds DEST
    assert {key: after[key] for key in unchanged} == {key: before[key] for key in unchanged}


# --------------------------------------------------------------------------------------------------
# pack: the same rule on the tree on disk

PACK_CASES = {
    "issue-chain": [(f"{SP}/p", "../../.."), (f"{SP}/evilpkg", "p/../../victim")],
    "through-interpreter": [("bin/activate-x", "python3")],
    "through-interpreter-dir": [("share-link", "bin/python/..")],
    "loop": [("a", "b"), ("b", "a")],
    "two-hop": [("x/y", "../z"), ("z", "../..")],
    "dir-then-climb": [("l1", "lib/python3.9"), ("l2", "l1/../../..")],
}


def extract_genuine(tar: tarfile.TarFile, dest) -> None:
    """Unpack an archive pack wrote (trusted): with the tar filter where this Python has filters
    (3.12, and 3.8-3.11 from their 2023 security releases), plainly where it has none (Debian 12's 3.11.2)."""
    if hasattr(tarfile, "tar_filter"):
        tar.extractall(dest, filter="tar")
    else:
        tar.extractall(dest)


@pytest.mark.parametrize("case", sorted(PACK_CASES))
def test_pack_refuses_links_that_lead_out_whatever_the_chain(genuine, tmp_path, case):
    _, archive = genuine
    overlay = tmp_path / "env"
    overlay.mkdir()
    with tarfile.open(archive) as tar:
        extract_genuine(tar, overlay)
    for name, target in PACK_CASES[case]:
        (overlay / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, overlay / name)
    output = tmp_path / "out.tar.gz"
    result = CliRunner().invoke(cli, ["pack", str(overlay), "-o", str(output)], prog_name="overlay-venv")
    lines = result.stderr.splitlines()
    assert result.exit_code == 1 and len(lines) == 1, (result.output, result.exc_info)
    assert lines[0].startswith(f"overlay-venv: error: cannot pack {overlay}") and ("leads out" in lines[0] or "loops" in lines[0])
    assert sorted(os.listdir(tmp_path)) == ["env"]  # no archive, no temporary beside it
    shutil.rmtree(overlay)


def test_pack_then_unpack_of_a_tree_with_inside_links_round_trips(genuine, tmp_path):
    _, archive = genuine
    overlay = tmp_path / "env"
    overlay.mkdir()
    with tarfile.open(archive) as tar:
        extract_genuine(tar, overlay)
    os.symlink("../../..", overlay / SP / "top")
    os.symlink("top/bin", overlay / SP / "bins")
    output = tmp_path / "out.tar.gz"
    overlay_venv("pack", str(overlay), "-o", str(output), env=clean_env())
    dest = tmp_path / "there"
    overlay_venv("unpack", str(output), str(dest), env=clean_env())
    assert os.path.realpath(dest / SP / "bins") == str(dest / "bin")
    subprocess.run(["rm", "-rf", str(dest)], check=True)
