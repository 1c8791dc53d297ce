"""`overlay-venv lock`, `create --from`, `sync` and `rebuild`, with local wheels only.

The pure half of ``overlay_venv.lock`` (writing, reading, comparing) is tested on hand-made data, with
hypothesis for the round trip; the commands on two read-only releases that differ in one package,
the way LCG_105 and LCG_106 would:

    release A (PYTHONPATH)  basepkg 1.0, corelib 1.20, clientlib 1.4 (requires corelib>=1.20,<1.21)
    release B (PYTHONPATH)  basepkg 1.0, corelib 1.21, clientlib 1.5 (requires corelib>=1.21,<1.22)
    wheels                  alpha 1.0 and 1.1, beta 2.0 (requires alpha), gamma 1.0, basepkg 2.0,
                            tool 1.0 (requires corelib>=1.20,<1.21), tool 1.1 (requires corelib>=1.21,<1.22)

An overlay on A gets `overlay-venv install tool beta basepkg==2.0`: corelib is held at A's 1.20 (clientlib
needs it), so pip picks tool 1.0. Rebuilt on B, the hold is B's 1.21 and tool becomes 1.1.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from capabilities import require_capability
from conftest import build_release, make_base, make_read_only, overlay_venv
from hypothesis import given, settings
from hypothesis import strategies as st

from overlay_venv.errors import OverlayError
from overlay_venv.lock import (
    Artifact,
    BaseInfo,
    Lock,
    LockedPackage,
    Sources,
    environment_marker,
    fingerprint,
    parse_lock,
    redact_lock,
    render_lock,
)
from overlay_venv.lock_compare import (
    Target,
    base_changes,
    incompatibilities,
    plan_sync,
    requirements_text,
    select_artifact,
    version_changes,
)
from overlay_venv.operations.lock import record_mismatches
from overlay_venv.sources import redact_url

SHA = "a" * 64
CP39 = frozenset({"cp39-cp39-manylinux_2_17_x86_64", "cp39-abi3-manylinux_2_17_x86_64", "py3-none-any", "py39-none-any"})


def package(name: str, version: str = "1.0", filename: str | None = None, sha: str = SHA) -> LockedPackage:
    filename = filename or f"{name}-{version}-py3-none-any.whl"
    return LockedPackage(name, version, (Artifact("wheel", filename, sha, path=f"/wheels/{filename}", size=10),))


def base(version: str = "3.9.18", dists=("basepkg==1.0", "corelib==1.20")) -> BaseInfo:
    return BaseInfo("CPython", version, "linux-x86_64", "cp39-cp39-manylinux_2_17_x86_64", tuple(dists))


# --------------------------------------------------------------------------------------------------
# Writing and reading

names = st.from_regex(r"[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,3})?", fullmatch=True)
texts = st.text(max_size=20)
# Any characters but a path's: an artifact's name is a plain file name.
filenames = st.builds(
    lambda stem, suffix: stem + suffix,
    texts.filter(lambda t: not any(c in t for c in "/\\\0")),
    st.sampled_from([".whl", ".tar.gz", ".zip"]),
)
artifacts = st.builds(
    Artifact,
    kind=st.just("wheel"),
    filename=filenames,
    sha256=st.binary(min_size=32, max_size=32).map(bytes.hex),
    url=st.one_of(st.none(), texts.map(lambda t: "https://example.org/" + t)),
    path=st.one_of(st.none(), texts.map(lambda t: "/w/" + t)),
    size=st.one_of(st.none(), st.integers(0, 2**40)),
).filter(lambda a: a.url or a.path)
sdists = artifacts.map(lambda a: Artifact("sdist", a.filename, a.sha256, a.url, a.path, a.size))


@st.composite
def locks(draw) -> Lock:
    chosen = sorted(draw(st.sets(names, max_size=5)))
    packages = tuple(
        LockedPackage(
            name,
            draw(st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,3}){0,2}", fullmatch=True)),
            tuple(draw(st.lists(artifacts, min_size=1, max_size=3))) + tuple(draw(st.lists(sdists, max_size=1))),
            draw(st.one_of(st.none(), texts)),
        )
        for name in chosen
    )
    return Lock(
        packages=packages,
        base=draw(st.one_of(st.none(), st.builds(BaseInfo, texts, texts, texts, texts, st.lists(texts, max_size=4).map(tuple)))),
        requests=tuple(draw(st.lists(texts, max_size=4))),
        sources=draw(
            st.builds(
                Sources,
                st.one_of(st.none(), texts),
                st.lists(texts, max_size=2).map(tuple),
                st.lists(texts, max_size=2).map(tuple),
                st.booleans(),
            )
        ),
        environments=tuple(draw(st.lists(texts, max_size=2))),
        requires_python=draw(st.one_of(st.none(), texts)),
        created_by=draw(texts),
        allow_shadow=tuple(draw(st.lists(texts, max_size=2))),
    )


@settings(max_examples=100, deadline=None)
@given(locks())
def test_round_trip(lock):
    text = render_lock(lock)
    assert parse_lock(text) == lock
    # Stable: writing what was read gives the same bytes.
    assert render_lock(parse_lock(text)) == text


@settings(max_examples=50, deadline=None)
@given(locks(), st.randoms(use_true_random=False))
def test_order_of_packages_does_not_change_the_text(lock, rnd):
    shuffled = list(lock.packages)
    rnd.shuffle(shuffled)
    assert render_lock(
        Lock(
            tuple(shuffled),
            lock.base,
            lock.requests,
            lock.sources,
            lock.environments,
            lock.requires_python,
            lock.created_by,
            lock.allow_shadow,
        )
    ) == render_lock(lock)


def test_text_is_diff_friendly_and_valid_pep_751():
    lock = Lock(
        (package("beta", "2.0"), package("alpha")),
        base(),
        ("beta", 'tool>=1; python_version >= "3.9"'),
        Sources(find_links=("/w",), no_index=True),
    )
    text = render_lock(lock)
    # One value a line: a changed version or hash is a one-line diff.
    assert '    "beta",\n' in text and 'version = "2.0"\n' in text
    assert text.index('name = "alpha"') < text.index('name = "beta"')
    try:
        from packaging import pylock  # packaging >= 25: an independent PEP 751 validator
    except ImportError:
        require_capability("packaging>=25", "packaging.pylock validates the lock as PEP 751 text")
    # tomllib is standard from 3.11; before, the tomli dependency reads TOML (as overlay-venv does).
    tomllib = importlib.import_module("tomllib" if sys.version_info >= (3, 11) else "tomli")
    parsed = pylock.Pylock.from_dict(tomllib.loads(text))
    assert [p.name for p in parsed.packages] == ["alpha", "beta"]
    assert parsed.packages[0].wheels[0].hashes == {"sha256": SHA}


def test_strings_with_quotes_backslashes_and_control_characters():
    odd = 'a "quoted" \\ path\twith\x7fcontrol\x01 ünï'
    lock = Lock((package("alpha"),), requests=(odd,))
    assert parse_lock(render_lock(lock)).requests == (odd,)
    with pytest.raises(OverlayError, match="not valid UTF-8"):
        render_lock(Lock((), requests=("bad\udcff",)))


@pytest.mark.parametrize(
    "text, words",
    [
        ("lock-version = '2.0'\ncreated-by = 'x'\n", "lock-version '2.0'"),
        ("this is = not toml [", "not valid TOML"),
        (
            "lock-version = '1.0'\n[[packages]]\nname = 'a'\nversion = '1'\n"
            "[[packages.wheels]]\nname = 'a-1-py3-none-any.whl'\npath = '/a.whl'\nhashes = {md5 = 'x'}\n",
            "no sha256",
        ),
        (
            "lock-version = '1.0'\n[[packages]]\nname = 'a'\n[packages.vcs]\ntype = 'git'\nurl = 'u'\ncommit-id = 'c'\n",
            "only wheels and sdists",
        ),
        ("lock-version = '1.0'\n[[packages]]\nname = 'a'\nversion = '1'\n", "no wheel and no sdist"),
        ("lock-version = '1.0'\n[tool.overlay-venv]\nformat = 99\n", "upgrade it"),
    ],
)
def test_unusable_locks_are_refused_in_one_line(text, words):
    with pytest.raises(OverlayError, match=words) as caught:
        parse_lock(text, "lock.toml")
    assert "\n" not in caught.value.format_message()


def test_an_edited_base_list_is_caught_by_its_fingerprint():
    text = render_lock(Lock((package("alpha"),), base()))
    with pytest.raises(OverlayError, match="fingerprint does not match"):
        parse_lock(text.replace('"corelib==1.20"', '"corelib==1.21"'))


def test_a_pylock_from_another_tool_is_read():
    # The shape `pip lock` writes: no [tool.overlay-venv] table, a wheel with a URL and no name.
    text = (
        "lock-version = '1.0'\ncreated-by = 'pip'\n[[packages]]\nname = 'Alpha_Lib'\nversion = '1.0'\n"
        "[[packages.wheels]]\nurl = 'https://files.example.org/a/alpha_lib-1.0-py3-none-any.whl'\n"
        "hashes = {sha256 = '" + SHA + "'}\n"
    )
    lock = parse_lock(text)
    assert lock.base is None and lock.requests == ()
    (only,) = lock.packages
    assert only.name == "alpha-lib" and only.artifacts[0].filename == "alpha_lib-1.0-py3-none-any.whl"


def sdist_lock(name: str, version: str, filename: str, path: str, sha: str = SHA, kind: str = "sdist") -> str:
    """A lock with one package and one artifact, as a hand-edited (or hostile) file would have it."""
    table = "[packages.sdist]" if kind == "sdist" else "[[packages.wheels]]"
    return (
        f"lock-version = '1.0'\n[[packages]]\nname = '{name}'\nversion = '{version}'\n"
        f"{table}\nname = {json.dumps(filename)}\npath = {json.dumps(path)}\nhashes = {{sha256 = '{sha}'}}\n"
    )


@pytest.mark.parametrize(
    "filename",
    [
        "../../../../../../tmp/x/victim2.whl",
        "/tmp/x/victim.whl",
        "sub/evil-1.0.tar.gz",
        "..\\evil-1.0.zip",
        "..",
        ".",
        "evil-1.0.txt",
        "evil\u00001.0.whl",
    ],
)
def test_an_artifact_name_that_is_a_path_is_refused(filename):
    # Installing a lock writes each artifact under its name, and deletes it on a hash mismatch: a name
    # that climbs out of the private directory would overwrite or delete any file the user can write.
    for kind in ("sdist", "wheel"):
        with pytest.raises(OverlayError, match=r"evil sdist name|evil wheels\[0\] name") as caught:
            parse_lock(sdist_lock("evil", "1.0", filename, "/etc/hostname", kind=kind), "evil.toml")
        assert "\n" not in caught.value.format_message() and "evil.toml" in caught.value.format_message()
    # A name taken from the path or URL (PEP 751 allows leaving it out) is checked the same way.
    nameless = sdist_lock("evil", "1.0", "x.whl", "/x.whl").replace('name = "x.whl"\n', "").replace("/x.whl", "/w/..")
    with pytest.raises(OverlayError, match="not a plain file name"):
        parse_lock(nameless)


def test_redact_url_takes_credentials_out():
    assert redact_url("https://user:pass@host/simple") == "https://host/simple"
    assert redact_url("https://user:p@ss@host:8443/simple/") == "https://host:8443/simple/"
    assert redact_url("https://ghp_token@host/simple") == "https://host/simple"
    assert redact_url("tool @ git+https://me:tok@github.com/o/tool@v1") == "tool @ git+https://github.com/o/tool@v1"
    # Not secrets, kept as pip keeps them (PEP 610): ${VAR} references and git's ssh user.
    assert redact_url("https://${USER}:${TOKEN}@host/simple") == "https://${USER}:${TOKEN}@host/simple"
    assert redact_url("tool @ git+ssh://git@github.com/o/tool") == "tool @ git+ssh://git@github.com/o/tool"
    for text in ("/local/wheels", "tool>=1", "https://host/a@b", "alpha==1.0"):
        assert redact_url(text) == text


def test_a_lock_carries_no_credentials():
    artifact = Artifact(
        "wheel", "alpha-1.0-py3-none-any.whl", SHA, url="https://u:p@files.example.org/alpha-1.0-py3-none-any.whl"
    )
    lock = Lock(
        (LockedPackage("alpha", "1.0", (artifact,), index="https://u:p@example.org/simple"),),
        requests=("alpha", "tool @ https://me:token@example.org/tool-1.0.tar.gz"),
        sources=Sources(
            "https://u:p@example.org/simple", ("https://tok@extra.example.org/simple",), ("https://a:b@links/",), False
        ),
    )
    text = render_lock(redact_lock(lock))
    assert "u:p@" not in text and "me:token" not in text and "tok@" not in text and "a:b@" not in text
    clean = parse_lock(text)
    assert clean.sources == Sources("https://example.org/simple", ("https://extra.example.org/simple",), ("https://links/",))
    assert clean.requests == ("alpha", "tool @ https://example.org/tool-1.0.tar.gz")
    assert clean.packages[0].artifacts[0].url == "https://files.example.org/alpha-1.0-py3-none-any.whl"
    assert clean.packages[0].index == "https://example.org/simple"


# --------------------------------------------------------------------------------------------------
# Comparing


def test_fingerprint_ignores_order_and_duplicates():
    assert fingerprint(["b==1", "a==2"]) == fingerprint(["a==2", "b==1", "a==2"])
    assert fingerprint(["a==2"]) != fingerprint(["a==3"])


def test_plan_sync_installs_changes_and_removes_but_leaves_pip():
    lock = Lock((package("alpha"), package("beta", "2.0"), package("delta")))
    plan = plan_sync(lock, {"alpha": "1.1", "beta": "2.0", "gamma": "1.0", "pip": "26.0.1"})
    assert plan.install == ("delta",)
    assert plan.change == (("alpha", "1.1", "1.0"),)
    assert plan.remove == (("gamma", "1.0"),)
    assert plan.same == ("beta",) and not plan.empty
    assert plan_sync(lock, {"alpha": "1.0", "beta": "2.0", "delta": "1.0", "pip": "25"}).empty


def test_incompatible_python_and_platform_are_explained():
    lock = Lock((package("alpha"), package("native", filename="native-1.0-cp39-cp39-macosx_11_0_arm64.whl")), base())
    fits = Target("CPython", "3.9.2", "linux-x86_64", CP39 | {"cp39-cp39-macosx_11_0_arm64"})
    assert incompatibilities(lock, fits) == []
    other_minor = Target("CPython", "3.13.0", "linux-x86_64", frozenset({"py3-none-any"}))
    assert incompatibilities(lock, other_minor) == ["the lock is for Python 3.9 (3.9.18), this base has Python 3.13 (3.13.0)"]
    pypy = Target("PyPy", "3.9.18", "linux-x86_64", CP39)
    assert "the lock is for CPython, this base is PyPy" in incompatibilities(lock, pypy)
    linux = Target("CPython", "3.9.18", "linux-x86_64", CP39, ("cp39-cp39-manylinux_2_17_x86_64",))
    (problem,) = incompatibilities(lock, linux)
    assert "do not fit this platform (linux-x86_64, best tag cp39-cp39-manylinux_2_17_x86_64)" in problem
    assert "native-1.0-cp39-cp39-macosx_11_0_arm64.whl" in problem and "alpha" not in problem


def test_the_first_fitting_wheel_is_chosen_then_the_sdist():
    wheels = (
        Artifact("wheel", "x-1.0-cp39-cp39-macosx_11_0_arm64.whl", SHA, path="/a"),
        Artifact("wheel", "x-1.0-cp39-cp39-manylinux_2_17_x86_64.whl", SHA, path="/b"),
        Artifact("sdist", "x-1.0.tar.gz", SHA, path="/c"),
    )
    target = Target("CPython", "3.9.18", "linux-x86_64", CP39)
    assert select_artifact(LockedPackage("x", "1.0", wheels), target).path == "/b"
    assert select_artifact(LockedPackage("x", "1.0", (wheels[0], wheels[2])), target).kind == "sdist"
    assert select_artifact(LockedPackage("x", "1.0", (wheels[0],)), target) is None


def test_requirements_require_a_hash_on_every_line():
    text = requirements_text([("beta", "2.0", "b" * 64), ("alpha", "1.0", SHA)])
    assert text.splitlines()[1:] == [f"alpha==1.0 --hash=sha256:{SHA}", f"beta==2.0 --hash=sha256:{'b' * 64}"]


def test_version_and_base_changes():
    assert version_changes({"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "2.1", "d": "4"}) == [
        ("b", "2", "2.1"),
        ("c", "3", "-"),
        ("d", "-", "4"),
    ]
    assert base_changes(["corelib==1.20", "Old_Lib==1"], ["corelib==1.21", "new==2"]) == [
        "corelib 1.20 -> 1.21",
        "+new 2",
        "-old-lib 1",
    ]


def test_environment_marker_names_this_interpreter():
    env = {"implementation_name": "cpython", "python_version": "3.9", "sys_platform": "linux", "platform_machine": "x86_64"}
    marker = environment_marker(env)
    assert marker == (
        "implementation_name == 'cpython' and python_version == '3.9' "
        "and sys_platform == 'linux' and platform_machine == 'x86_64'"
    )
    from packaging.markers import Marker

    assert Marker(marker).evaluate(env) and not Marker(marker).evaluate({**env, "python_version": "3.13"})


def test_record_mismatches_tells_a_rebuilt_wheel_from_the_installed_one(tmp_path):
    wheel = make_base.build_wheel(tmp_path / "a", "alpha", "1.0")
    site = tmp_path / "site"
    make_base.install_wheel(wheel, site)
    assert record_mismatches(wheel, site / "alpha-1.0.dist-info") == []
    rebuilt = make_base.build_wheel(tmp_path / "b", "alpha", "1.0", modules={"alpha/__init__.py": "__version__ = 'patched'\n"})
    assert record_mismatches(rebuilt, site / "alpha-1.0.dist-info") == ["alpha/__init__.py"]


# --------------------------------------------------------------------------------------------------
# The commands on real releases

WHEELS = ("alpha==1.0", "alpha==1.1", "beta==2.0", "gamma==1.0", "basepkg==2.0")


def release_with(root: Path, corelib: str, clientlib: str, clientlib_needs: str):
    rel = build_release(root, "3.9", base=("basepkg==1.0", f"corelib=={corelib}"), wheels=WHEELS)
    make_base.install_wheel(make_base.build_wheel(root / "build", "clientlib", clientlib, requires=(clientlib_needs,)), rel.site)
    wheels = rel.wheels
    make_base.build_wheel(wheels, "beta", "2.0", requires=("alpha",))  # replaces the plain one
    make_base.build_wheel(wheels, "tool", "1.0", requires=("corelib>=1.20,<1.21",))
    make_base.build_wheel(wheels, "tool", "1.1", requires=("corelib>=1.21,<1.22",))
    rel.mounted = make_read_only(rel.root)
    return rel


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    a = release_with(tmp_path_factory.mktemp("relA"), "1.20", "1.4", "corelib>=1.20,<1.21")
    b = release_with(tmp_path_factory.mktemp("relB"), "1.21", "1.5", "corelib>=1.21,<1.22")
    yield a, b
    for rel in (a, b):
        if rel.mounted:
            subprocess.run(["umount", str(rel.root)], check=False)


def offline(env: dict[str, str]) -> dict[str, str]:
    """An environment in which any index access fails fast: the index is a closed port on loopback."""
    return {**env, "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_RETRIES": "0", "PIP_TIMEOUT": "2"}


def listing(overlay: Path, env) -> dict:
    return json.loads(overlay_venv("list", str(overlay), "--json", env=env).stdout)


def own(document: dict) -> dict[str, str]:
    return {d["name"]: d["version"] for d in document["distributions"] if d["layer"] == "overlay"}


@pytest.fixture(scope="module")
def locked(releases, tmp_path_factory):
    """An overlay on release A with tool, beta and basepkg installed, its lock and the lock's wheelhouse."""
    a, _ = releases
    work = tmp_path_factory.mktemp("locked")
    overlay = work / "myenv"
    env = a.env()
    overlay_venv("create", str(overlay), env=env)
    overlay_venv(
        "install", "-q", "--overlay", str(overlay), "--no-index", "-f", str(a.wheels), "tool", "beta", "basepkg==2.0", env=env
    )
    lock = work / "pylock.toml"
    wheelhouse = work / "wheelhouse"
    result = overlay_venv(
        "lock", str(overlay), "-o", str(lock), "--no-index", "-f", str(a.wheels), "--wheelhouse", str(wheelhouse), env=env
    )
    assert "locked 4 distributions" in result.stderr, result.stderr
    return overlay, lock, wheelhouse, listing(overlay, env)


def test_lock_holds_exactly_the_overlays_own_distributions(releases, locked):
    a, _ = releases
    overlay, lock_file, wheelhouse, before = locked
    assert own(before) == {"alpha": "1.1", "basepkg": "2.0", "beta": "2.0", "tool": "1.0", "pip": own(before)["pip"]}
    lock = parse_lock(lock_file.read_text())
    assert [(p.name, p.version) for p in lock.packages] == [
        ("alpha", "1.1"),
        ("basepkg", "2.0"),
        ("beta", "2.0"),
        ("tool", "1.0"),
    ]
    assert lock.requests == ("tool", "beta", "basepkg==2.0")
    assert lock.sources == Sources(find_links=(str(a.wheels),), no_index=True)
    assert lock.base.python_version.startswith("3.9.") and lock.base.implementation == "CPython"
    assert lock.base.distributions == ("basepkg==1.0", "clientlib==1.4", "corelib==1.20")
    for pkg in lock.packages:
        (artifact,) = pkg.artifacts
        assert artifact.path == str(a.wheels / artifact.filename)
        saved = wheelhouse / artifact.filename
        assert saved.read_bytes() == Path(artifact.path).read_bytes()
        assert artifact.size == saved.stat().st_size
    # Stable: locking again writes the same bytes.
    again = overlay_venv("lock", str(overlay), "--no-index", "-f", str(a.wheels), env=a.env()).stdout
    assert again == lock_file.read_text()


def test_create_from_the_lock_gives_the_same_overlay(releases, locked, tmp_path):
    a, _ = releases
    overlay, lock_file, wheelhouse, before = locked
    copy = tmp_path / "myenv"
    shutil.copytree(overlay, copy, symlinks=True)  # the original stays for the other tests
    shutil.rmtree(overlay)
    try:
        result = overlay_venv("create", str(overlay), "--from", str(lock_file), env=offline(a.env()))
        assert "created overlay" in result.stdout
        assert listing(overlay, a.env()) == before
        # Its record keeps the requests, so a later lock or rebuild still has them.
        assert json.loads((overlay / "overlay-venv.json").read_text())["requests"] == ["tool", "beta", "basepkg==2.0"]
        # A job script may run the same create again.
        again = overlay_venv("create", str(overlay), "--from", str(lock_file), "--wheelhouse", str(wheelhouse), env=a.env())
        assert "already matches" in again.stdout
    finally:
        shutil.rmtree(overlay, ignore_errors=True)
        shutil.move(str(copy), str(overlay))


def test_create_from_a_wheelhouse_needs_no_index(releases, locked, tmp_path):
    a, _ = releases
    _, lock_file, wheelhouse, before = locked
    target = tmp_path / "myenv"
    env = offline(a.env())
    overlay_venv("create", str(target), "--from", str(lock_file), "--wheelhouse", str(wheelhouse), env=env)
    assert own(listing(target, env)) == own(before)


def test_a_tampered_wheel_is_refused_and_nothing_is_left(releases, locked, tmp_path):
    a, _ = releases
    _, lock_file, wheelhouse, _ = locked
    bad = tmp_path / "bad-wheelhouse"
    shutil.copytree(wheelhouse, bad)
    wheel = bad / "beta-2.0-py3-none-any.whl"
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    target = tmp_path / "myenv"
    result = overlay_venv("create", str(target), "--from", str(lock_file), "--wheelhouse", str(bad), env=a.env(), check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("overlay-venv: error: hash mismatch: ") and len(result.stderr.splitlines()) == 1
    assert str(wheel) in result.stderr and "beta 2.0" in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["bad-wheelhouse"]  # no overlay, no staging debris


def test_sync_removes_an_extra_and_restores_a_changed_version(releases, locked, tmp_path):
    a, _ = releases
    _, lock_file, wheelhouse, before = locked
    target = tmp_path / "myenv"
    env = a.env()
    overlay_venv("create", str(target), "--from", str(lock_file), "--wheelhouse", str(wheelhouse), env=env)
    pip = [str(target / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "-f", str(a.wheels)]
    subprocess.run([*pip, "gamma==1.0", "alpha==1.0"], env=env, check=True, capture_output=True)
    assert own(listing(target, env))["alpha"] == "1.0"

    preview = overlay_venv("sync", str(target), str(lock_file), "--dry-run", env=env).stdout
    assert "change  alpha 1.0 -> 1.1" in preview and "remove  gamma 1.0" in preview
    assert own(listing(target, env))["gamma"] == "1.0"  # a dry run changes nothing

    # A tampered artifact stops sync before it removes or installs anything.
    bad = tmp_path / "bad"
    shutil.copytree(wheelhouse, bad)
    (bad / "alpha-1.1-py3-none-any.whl").write_bytes(b"not a wheel")
    refused = overlay_venv("sync", str(target), str(lock_file), "--wheelhouse", str(bad), env=env, check=False)
    assert refused.returncode == 1 and "hash mismatch" in refused.stderr
    assert own(listing(target, env))["gamma"] == "1.0" and own(listing(target, env))["alpha"] == "1.0"

    result = overlay_venv("sync", str(target), str(lock_file), "--wheelhouse", str(wheelhouse), env=offline(env))
    assert "change  alpha 1.0 -> 1.1" in result.stdout and "remove  gamma 1.0" in result.stdout
    assert own(listing(target, env)) == own(before)
    # The base keeps its own basepkg underneath the overlay's.
    basepkg = next(d for d in listing(target, env)["distributions"] if d["name"] == "basepkg")
    assert [(s["version"], s["layer"]) for s in basepkg["shadows"]] == [("1.0", "base")]
    assert "already matches" in overlay_venv("sync", str(target), str(lock_file), env=env).stdout


def test_a_lock_for_another_python_is_refused_with_a_pointer_to_rebuild(locked, tmp_path_factory):
    _, lock_file, wheelhouse, _ = locked
    newer = build_release(tmp_path_factory.mktemp("rel313"), "3.13")
    target = tmp_path_factory.mktemp("ov313") / "myenv"
    result = overlay_venv(
        "create", str(target), "--from", str(lock_file), "--wheelhouse", str(wheelhouse), env=newer.env(), check=False
    )
    assert result.returncode == 1
    assert "does not fit this base: the lock is for Python 3.9" in result.stderr and "this base has Python 3.13" in result.stderr
    assert f"overlay-venv rebuild {target} --lock {lock_file}" in result.stderr
    assert not target.exists()


def test_rebuild_onto_a_new_base_reports_the_changes(releases, locked, tmp_path):
    a, b = releases
    _, lock_file, wheelhouse, before = locked
    target = tmp_path / "myenv"
    overlay_venv("create", str(target), "--from", str(lock_file), "--wheelhouse", str(wheelhouse), env=a.env())
    on_a = listing(target, a.env())

    # The lock's wheelhouse has tool 1.0 only, which needs corelib 1.20: on release B pip fails part-way
    # through the new overlay, and the old one stays exactly as it was, still on release A.
    failed = overlay_venv("rebuild", str(target), "--wheelhouse", str(wheelhouse), "-q", env=offline(b.env()), check=False)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert f"{target} is unchanged" in failed.stderr
    assert listing(target, a.env()) == on_a and own(on_a) == own(before)
    assert json.loads((target / "overlay-venv.json").read_text())["base"]["pythonpath"] == str(a.site)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["myenv"]

    # With every wheel, and no index: tool moves to 1.1, which fits B's corelib 1.21.
    result = overlay_venv(
        "rebuild", str(target), "--lock", str(lock_file), "--wheelhouse", str(b.wheels), "-q", env=offline(b.env())
    )
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"rebuilt {target} on CPython 3.9.")
    assert [line.split() for line in lines[1:3]] == [["package", "before", "after"], ["tool", "1.0", "1.1"]]
    assert lines[3] == "base: clientlib 1.4 -> 1.5, corelib 1.20 -> 1.21", result.stdout
    after = listing(target, b.env())
    assert own(after) == {**own(before), "tool": "1.1"}
    assert json.loads((target / "overlay-venv.json").read_text())["base"]["pythonpath"] == str(b.site)


def test_sync_never_writes_outside_its_directory(releases, locked, tmp_path):
    a, _ = releases
    overlay, _, _, before = locked
    victim = tmp_path / "x" / "victim2.tar.gz"
    victim.parent.mkdir()
    victim.write_text("precious")
    # The artifact's file is some other file, so its hash does not match: gather would truncate the
    # victim copying it there, then delete the "copy".
    (tmp_path / "x" / "other.tar.gz").write_text("other")
    climbing = "../" * 30 + str(victim).lstrip("/")
    for name in (climbing, str(victim)):
        evil = tmp_path / "evil.toml"
        evil.write_text(sdist_lock("evil", "1.0", name, str(tmp_path / "x" / "other.tar.gz")))
        result = overlay_venv("sync", str(overlay), str(evil), env=a.env(), check=False)
        assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, result.stderr
        assert "evil sdist name" in result.stderr and "not a plain file name" in result.stderr
        assert victim.read_text() == "precious"
    assert listing(overlay, a.env()) == before


def test_lock_leaves_credentials_out(releases, locked):
    a, _ = releases
    overlay, _, _, _ = locked
    secret = "https://user:s3cret@127.0.0.1:9/simple"  # ignored for fetching: --no-index
    extra = "https://tok3n@127.0.0.1:9/x"
    result = overlay_venv(
        "lock", str(overlay), "-i", secret, "--extra-index-url", extra, "--no-index", "-f", str(a.wheels), env=a.env()
    )
    assert "s3cret" not in result.stdout and "tok3n" not in result.stdout
    assert parse_lock(result.stdout).sources == Sources(
        "https://127.0.0.1:9/simple", ("https://127.0.0.1:9/x",), (str(a.wheels),), no_index=True
    )


def test_lock_into_a_missing_directory_fails_before_any_work(locked, tmp_path, releases):
    a, _ = releases
    overlay, _, _, _ = locked
    wheelhouse = tmp_path / "wheelhouse"
    for output in (tmp_path / "missing" / "pylock.toml", tmp_path):
        args = ["-o", str(output), "--wheelhouse", str(wheelhouse), "--no-index", "-f", str(a.wheels)]
        result = overlay_venv("lock", str(overlay), *args, env=a.env(), check=False)
        assert result.returncode == 1 and result.stderr.startswith(f"overlay-venv: error: cannot write the lock to {output}: ")
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert not wheelhouse.exists()  # nothing was fetched nor saved


def test_a_lock_that_cannot_be_put_in_place_leaves_no_partial_file(locked, tmp_path, monkeypatch):
    from click.testing import CliRunner

    import overlay_venv.operations.lock
    from overlay_venv.cli import cli

    overlay, _, _, _ = locked
    monkeypatch.setattr(overlay_venv.operations.lock, "make_lock", lambda *args, **kwargs: Lock((package("alpha"),)))

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    result = CliRunner().invoke(cli, ["lock", str(overlay), "-o", str(tmp_path / "pylock.toml")])
    assert result.exit_code == 1 and "cannot write the lock to" in result.output and "Permission denied" in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def two_extra(releases, tmp_path):
    """An overlay on release A holding alpha 1.0 and gamma 1.0 of its own."""
    a, _ = releases
    target = tmp_path / "myenv"
    overlay_venv("create", str(target), env=a.env())
    pip = [str(target / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "-f", str(a.wheels)]
    subprocess.run([*pip, "alpha==1.0", "gamma==1.0"], env=a.env(), check=True, capture_output=True)
    assert own(listing(target, a.env())) == {"alpha": "1.0", "gamma": "1.0", "pip": own(listing(target, a.env()))["pip"]}
    return target


def fake_file(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def test_a_lock_with_only_an_sdist_is_refused_before_sync_changes_anything(releases, two_extra, tmp_path):
    a, _ = releases
    before = listing(two_extra, a.env())
    sdist = tmp_path / "alpha-1.1.tar.gz"
    lock_file = tmp_path / "pylock.toml"
    lock_file.write_text(sdist_lock("alpha", "1.1", sdist.name, str(sdist), fake_file(sdist, b"an sdist")))
    # Planned: change alpha 1.0 -> 1.1, remove gamma. Building the sdist would need setuptools from an index.
    result = overlay_venv("sync", str(two_extra), str(lock_file), env=offline(a.env()), check=False)
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, result.stderr
    assert "has no wheel that fits for alpha 1.1 (alpha-1.1.tar.gz)" in result.stderr and "builds nothing" in result.stderr
    assert listing(two_extra, a.env()) == before


def test_sync_installs_before_it_removes_so_a_failed_install_changes_nothing(releases, two_extra, tmp_path):
    a, _ = releases
    before = listing(two_extra, a.env())
    # Its hash is right (the lock pins these bytes), but pip cannot install it.
    broken = tmp_path / "alpha-1.1-py3-none-any.whl"
    lock_file = tmp_path / "pylock.toml"
    lock_file.write_text(sdist_lock("alpha", "1.1", broken.name, str(broken), fake_file(broken, b"not a zip"), kind="wheel"))
    result = overlay_venv("sync", str(two_extra), str(lock_file), env=offline(a.env()), check=False)
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, result.stderr
    assert "installing the locked artifacts failed" in result.stderr and result.stderr.rstrip().endswith(
        f"{two_extra} is unchanged"
    )
    assert listing(two_extra, a.env()) == before


def test_a_distribution_installed_from_an_sdist_is_not_locked(releases, two_extra, tmp_path):
    a, _ = releases
    # What pip records for `pip install ./gamma-1.0.tar.gz` (building one needs setuptools from an index).
    sdist = tmp_path / "gamma-1.0.tar.gz"
    fake_file(sdist, b"an sdist")
    dist_info = two_extra / "lib" / f"python{a.minor}" / "site-packages" / "gamma-1.0.dist-info"
    (dist_info / "direct_url.json").write_text(json.dumps({"url": sdist.as_uri(), "archive_info": {}}))
    result = overlay_venv("lock", str(two_extra), "--no-index", "-f", str(a.wheels), env=a.env(), check=False)
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, result.stderr
    assert f"gamma 1.0 was installed from an sdist ({sdist.as_uri()})" in result.stderr and "build a wheel" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("cmd", ["lock", "sync", "rebuild"])
def test_help_has_examples(cmd):
    result = subprocess.run([sys.executable, "-m", "overlay_venv", cmd, "--help"], capture_output=True, text=True, check=True)
    assert "Examples:" in result.stdout and f"overlay-venv {cmd} myenv" in result.stdout
