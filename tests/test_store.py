"""Published overlays: publish, tag, resolve, run, wrap and create through references, gc; another user
who may read the store but not write it; concurrent and killed publishes.

The other user is ``nobody``. Plain ``runuser -u nobody`` reads the store the way a group member
does. overlay-venv and the test release's interpreter live under /root (mode 0700 here), so where
nobody must *run* them the tests use ``setpriv`` with CAP_DAC_READ_SEARCH alone: every file readable,
still nothing writable that the modes forbid, which is what matters for a store.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from capabilities import require_capability, require_executable
from conftest import make_overlay, overlay_venv

from overlay_venv import refs
from overlay_venv.errors import OverlayError
from overlay_venv.record import overlay_problem
from overlay_venv.relocate import files_naming
from overlay_venv.store import INFO_FILE

PROBE = "import basepkg, sys; print(basepkg.__version__, sys.prefix)"
NOBODY = "nobody"


def traversable(path: Path) -> None:
    """Let other users reach ``path``: pytest makes its temporary directories 0700."""
    for parent in [*reversed(path.parents), path]:
        if str(parent).startswith("/tmp/") and parent.owner() == "root":
            parent.chmod(parent.stat().st_mode | 0o755)


@pytest.fixture(scope="module")
def two_overlays(release39, tmp_path_factory):
    """Two overlays with different content: basepkg 2.0 installed (``a``), and none (``b``)."""
    root = tmp_path_factory.mktemp("sources")
    return make_overlay(release39, root / "a"), make_overlay(release39, root / "b", install=())


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "store"
    path.mkdir()
    traversable(path)
    return path


def env_for(release39, store: Path, **extra) -> dict:
    return release39.env(OVERLAY_VENV_STORES=str(store), **extra)


def published_id(output: str) -> str:
    return output.split("@", 1)[1].split()[0].rstrip(";")


def test_references_parse_or_say_why():
    assert refs.parse_reference("team/ana:v3") == refs.Reference("team/ana:v3", "team/ana", tag="v3")
    assert refs.parse_reference("team/ana@0123abcd").id == "0123abcd"
    assert refs.parse_reference("/s/team/ana:v3").where == "/s/team/ana"
    for bad, why in [
        ("team/ana@xyz", "not an id"),
        ("team/ana:v 3", "not a valid tag"),
        ("team/ids:v1", "store's own layout"),
        ("-x/ana:v1", "not a valid name"),
    ]:
        with pytest.raises(OverlayError, match=why):
            refs.parse_reference(bad)
    assert not refs.looks_like_reference("some/dir") and refs.looks_like_reference("some/dir:tag")


def test_publish_tag_retag_resolve_run_create_gc(release39, two_overlays, store, tmp_path):
    a, b = two_overlays
    env = env_for(release39, store)
    first = overlay_venv("publish", str(a), str(store / "team" / "ana"), "--tag", "v3", env=env).stdout
    id_a = published_id(first)
    tree = store / "team" / "ana" / "ids" / id_a
    assert overlay_problem(tree) is None
    # Read-only and group-readable everywhere; relocated: no file names the source any more.
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in [*dirnames, *filenames]:
            mode = os.lstat(os.path.join(dirpath, name)).st_mode
            if not stat.S_ISLNK(mode):
                assert mode & 0o222 == 0 and mode & stat.S_IRGRP, os.path.join(dirpath, name)
    assert [f for f in files_naming(tree, str(a)) if f != INFO_FILE] == []

    again = overlay_venv("publish", str(a), str(store / "team" / "ana"), "--tag", "v3", env=env).stdout
    assert "holds this content already; nothing copied" in again and published_id(again) == id_a

    run = overlay_venv("run", "team/ana:v3", "--", "python", "-c", PROBE, env=env).stdout.split()
    assert run == ["2.0", str(tree)]

    id_b = published_id(overlay_venv("publish", str(b), str(store / "team" / "ana"), "--tag", "v4", env=env).stdout)
    assert id_b != id_a
    moved = overlay_venv("tag", f"team/ana@{id_b[:6]}", "v3", env=env).stdout
    assert f"moved @{id_a} -> @{id_b}" in moved
    assert os.readlink(store / "team" / "ana" / "tags" / "v3") == f"../ids/{id_b}"
    assert overlay_venv("run", "team/ana:v3", "--", "python", "-c", PROBE, env=env).stdout.split()[0] == "1.0"
    path_ref = f"{store}/team/ana@{id_a}"
    assert overlay_venv("info", path_ref, "--json", env=env).stdout.count(str(tree)) >= 1

    listed = json.loads(overlay_venv("envs", "--json", env=env).stdout)
    assert {(row["id"], tuple(row["tags"])) for row in listed} == {(id_a, ()), (id_b, ("v3", "v4"))}

    # A private copy of a published one: writable, relocated, runs from its own place.
    copy = tmp_path / "mine"
    overlay_venv("create", str(copy), "--from", f"team/ana@{id_a}", env=env)
    assert os.access(copy / "bin", os.W_OK) and stat.S_IMODE(copy.stat().st_mode) & stat.S_IWUSR
    assert subprocess.run([copy / "bin" / "python", "-c", PROBE], env=env, capture_output=True, text=True).stdout.split() == [
        "2.0",
        str(copy),
    ]

    assert json.loads(overlay_venv("list", f"team/ana@{id_a}", "--json", env=env).stdout)["distributions"]
    assert "no broken requirements" in overlay_venv("check", "team/ana:v4", env=env).stdout

    assert "nothing to remove" in overlay_venv("gc", str(store), "--older-than", "1", env=env).stdout  # too new
    gc = overlay_venv("gc", str(store), env=env).stdout
    assert f"removed team/ana@{id_a}" in gc and "1 untagged id" in gc
    assert not tree.exists() and (store / "team" / "ana" / "ids" / id_b).is_dir()
    assert "nothing to remove" in overlay_venv("gc", str(store), env=env).stdout
    missing = overlay_venv("run", f"team/ana@{id_a}", "--", "true", env=env, check=False)
    assert missing.returncode == 1 and f"has no id '{id_a}'" in missing.stderr


def test_the_same_content_twice_is_one_id(release39, two_overlays, store, tmp_path):
    twin = make_overlay(release39, tmp_path / "twin")  # built apart from `a`, the same distributions
    env = env_for(release39, store)
    first = published_id(overlay_venv("publish", str(two_overlays[0]), str(store / "x"), env=env).stdout)
    second = overlay_venv("publish", str(twin), str(store / "x"), env=env).stdout
    assert published_id(second) == first and "nothing copied" in second


def test_a_read_only_overlay_is_published_as_it_is(release39, store, tmp_path):
    """A team overlay on a read-only mount (a group area others may not write) can still be published:
    its lock is taken for reading only, and nothing is written into it."""
    from conftest import fingerprint, make_read_only

    source = make_overlay(release39, tmp_path / "team")
    before = fingerprint(source)
    mounted = make_read_only(source)
    try:
        env = env_for(release39, store)
        published = overlay_venv("publish", str(source), str(store / "team" / "ro"), env=env)
        run = overlay_venv("run", f"team/ro@{published_id(published.stdout)}", "--", "python", "-c", PROBE, env=env)
        assert run.stdout.split()[0] == "2.0"
    finally:
        if mounted:
            subprocess.run(["umount", str(source)], check=False)
    assert fingerprint(source) == before


SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin"


def as_nobody(*cmd, env: dict, read_everything: bool = False) -> subprocess.CompletedProcess:
    if read_everything:
        prefix = [require_executable("setpriv", "runs overlay-venv as another user", SBIN_PATH)]
        prefix += ["--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        prefix += ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search", "--"]
    else:
        prefix = [require_executable("runuser", "reads the store as another user", SBIN_PATH), "-u", NOBODY, "--"]
    return subprocess.run([*prefix, *map(str, cmd)], env=env, capture_output=True, text=True)


def test_another_user_reads_and_runs_but_cannot_write(release39, two_overlays, store, tmp_path):
    if os.geteuid() != 0:
        require_capability("root", "acts as another user (nobody) on the store")
    env = env_for(release39, store)
    tree = store / "team" / "ana" / "ids"
    id_a = published_id(overlay_venv("publish", str(two_overlays[0]), str(store / "team" / "ana"), "-t", "v3", env=env).stdout)
    tree = tree / id_a
    home = tmp_path / "nobody-home"
    home.mkdir()
    shutil.chown(home, NOBODY)
    traversable(home)
    theirs = dict(env, HOME=str(home), XDG_CACHE_HOME=str(home / "cache"))

    # A plain group member: reads, activates, cannot write a thing.
    assert as_nobody("cat", tree / "overlay-venv.json", env=theirs).returncode == 0
    activated = as_nobody("sh", "-c", f". {tree}/bin/activate && echo $VIRTUAL_ENV", env=theirs)
    assert activated.stdout.strip() == str(tree), activated.stderr
    for target in (tree / "new", tree / "bin" / "new", store / "team" / "ana" / "tags" / "new"):
        assert as_nobody("touch", target, env=theirs).returncode != 0

    # overlay-venv itself, as that user: runs through the reference, copies it, cannot publish or tag.
    cli = [sys.executable, "-m", "overlay_venv"]
    run = as_nobody(*cli, "run", "team/ana:v3", "--", "python", "-c", PROBE, env=theirs, read_everything=True)
    assert run.stdout.split() == ["2.0", str(tree)], run.stderr
    copy = home / "copy"
    made = as_nobody(*cli, "create", copy, "--from", "team/ana:v3", env=theirs, read_everything=True)
    assert made.returncode == 0 and copy.owner() == NOBODY, made.stderr
    for args in (("publish", copy, store / "team" / "other"), ("tag", f"team/ana@{id_a}", "v9")):
        refused = as_nobody(*cli, *args, env=theirs, read_everything=True)
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 1 and len(lines) == 1 and "you cannot write there" in lines[0], refused.stderr
    assert sorted(os.listdir(store / "team" / "ana" / "tags")) == ["v3"]
    assert os.listdir(store / "team" / "ana" / "ids") == [id_a]


def test_setgid_group_directory_and_umask_are_kept(release39, two_overlays, store):
    group = next(g for g in ("users", "staff", "nogroup") if _gid(g) is not None)
    os.chown(store, -1, _gid(group))
    store.chmod(0o2775)
    env = env_for(release39, store)
    cmd = [sys.executable, "-m", "overlay_venv", "publish", str(two_overlays[0]), str(store / "team" / "ana")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, preexec_fn=lambda: os.umask(0o027))
    assert done.returncode == 0, done.stderr
    tree = store / "team" / "ana" / "ids" / published_id(done.stdout)
    for path in [tree, tree / "bin", tree / "overlay-venv.json", tree / "bin" / "activate"]:
        info = path.lstat()
        assert info.st_gid == _gid(group), path
        assert info.st_mode & 0o007 == 0 and info.st_mode & stat.S_IRGRP and not info.st_mode & 0o222, path
        if path.is_dir():
            assert info.st_mode & stat.S_ISGID, path
    assert (store / "team" / "ana" / "tags").stat().st_mode & 0o027 == 0  # store directories: the umask


def _gid(name: str) -> int | None:
    import grp

    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def test_wrap_pins_the_id_and_follow_tag_follows(release39, two_overlays, store, tmp_path):
    a, b = two_overlays
    env = env_for(release39, store)
    id_a = published_id(overlay_venv("publish", str(a), str(store / "team" / "ana"), "-t", "v3", env=env).stdout)
    id_b = published_id(overlay_venv("publish", str(b), str(store / "team" / "ana"), "-t", "v4", env=env).stdout)
    pinned, follows = tmp_path / "job.sh", tmp_path / "follow.sh"
    overlay_venv("wrap", "team/ana:v3", "-o", str(pinned), "--setup", "", "--", "python", "-c", PROBE, env=env)
    overlay_venv("wrap", "team/ana:v3", "--follow-tag", "-o", str(follows), "--setup", "", "--", "python", "-c", PROBE, env=env)
    overlay_venv("tag", f"team/ana@{id_b}", "v3", env=env)  # v3 moves after the jobs were written
    job_env = dict(release39.env())
    assert subprocess.run(["sh", pinned], env=job_env, capture_output=True, text=True).stdout.split() == [
        "2.0",
        str(store / "team" / "ana" / "ids" / id_a),
    ]
    followed = subprocess.run(["sh", follows], env=job_env, capture_output=True, text=True).stdout.split()
    assert followed == ["1.0", str(store / "team" / "ana" / "ids" / id_b)]


def _publish(overlay: Path, dest: Path, env: dict, *tags: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "overlay_venv", "publish", str(overlay), str(dest)]
    for tag in tags:
        cmd += ["--tag", tag]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_publishes_at_once_both_complete_with_consistent_tags(release39, two_overlays, store):
    env = env_for(release39, store)
    dest = store / "team" / "ana"
    for _round in range(3):
        running = [_publish(overlay, dest, env, "latest", "prod") for overlay in two_overlays]
        for proc in running:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
        ids = refs.list_ids(dest)
        assert len(ids) == 2 and all(overlay_problem(dest / "ids" / id_) is None for id_ in ids)
        tags = refs.list_tags(dest)
        assert set(tags) == {"latest", "prod"} and tags["latest"] == tags["prod"]  # one publish's tags, together
        assert not [name for name in os.listdir(dest / "ids") if name.startswith(".")]


def visible_state_is_whole(dest: Path) -> None:
    """Every id a reader can see is a complete read-only overlay; every tag leads to one."""
    if not (dest / "ids").is_dir():
        return
    for id_ in refs.list_ids(dest):
        tree = dest / "ids" / id_
        assert overlay_problem(tree) is None and (tree / INFO_FILE).is_file(), tree
        assert not tree.stat().st_mode & 0o222
    for tag in os.listdir(dest / "tags"):
        if not tag.startswith("."):
            assert refs.tag_target(dest, tag) in refs.list_ids(dest), tag


def test_a_publish_killed_at_random_moments_leaves_nothing_visible(release39, two_overlays, store):
    env = env_for(release39, store)
    # Kill moments spread over the publish's own work, not the interpreter's start-up before it.
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "overlay_venv", "--version"], env=env, check=True, capture_output=True)
    startup = time.monotonic() - start
    start = time.monotonic()
    probe = _publish(two_overlays[0], store / "probe", env, "v1")
    assert probe.wait(timeout=120) == 0
    duration = time.monotonic() - start
    chance = random.Random(14)
    for round_ in range(20):
        dest = store / "killed" / f"n{round_}"
        proc = _publish(two_overlays[0], dest, env, "v1")
        time.sleep(chance.uniform(startup, duration))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        visible_state_is_whole(dest)
    for round_ in range(20):
        dest = store / "killed" / f"n{round_}"
        again = _publish(two_overlays[0], dest, env, "v1")
        out, err = again.communicate(timeout=120)
        assert again.returncode == 0, err
        visible_state_is_whole(dest)
        assert refs.list_tags(dest) == {"v1": published_id(out)}
        # What the killed one left (its pid is gone) was removed by this publish.
        assert not [name for name in os.listdir(dest / "ids") if name.startswith(".")], os.listdir(dest / "ids")


def test_what_pack_refuses_publish_refuses_leaving_nothing(release39, store, tmp_path):
    editable = make_overlay(release39, tmp_path / "editable", install=())
    (next((editable / "lib").glob("python3*/site-packages")) / "__editable__.mine-1.0.pth").write_text("/src/mine\n")
    refused = overlay_venv("publish", str(editable), str(store / "team" / "ana"), env=env_for(release39, store), check=False)
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 1 and len(lines) == 1 and "editable install" in lines[0], refused.stderr
    assert os.listdir(store / "team" / "ana" / "ids") == [] and os.listdir(store / "team" / "ana" / "tags") == []


def test_the_content_id_of_a_stacked_overlay_depends_on_its_lowers(overlay39):
    """Two overlays with the same distributions on different lowers are different content."""
    from overlay_venv.publish import content_id
    from overlay_venv.record import read_record
    from overlay_venv.stack import Lower

    record = read_record(overlay39)
    team = Lower(path="/group/team", prompt="team", bin_dir="bin", fingerprint="a" * 16)
    other = team.replace(path="/group/other")
    ids = {content_id(overlay39, record.replace(lowers=lowers)) for lowers in ([], [team], [other])}
    assert len(ids) == 3
