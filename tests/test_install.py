"""`overlay-venv install`: pip (and uv) held to the base's versions of what the base depends on.

The pure parts (``overlay_venv.requests``, ``.holds``, ``.changes``) are tested on hand-made data; the command on a read-only
release, with no network (local wheels, ``--no-index --find-links``):

    release (PYTHONPATH)   clientlib 1.4 (requires corelib==1.20.*), corelib 1.20.0
    local wheels           tool 2.0 (requires corelib>=1.43), tool 1.5 (requires corelib>=1.20,<1.21),
                           corelib 1.43.0

Each scenario of the issue runs with pip and with --uv on fresh overlays, and the two must end with the
same `overlay-venv list --json`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from capabilities import require_uv
from conftest import build_release, make_base, make_overlay, make_read_only, overlay_venv
from hypothesis import given, settings
from hypothesis import strategies as st

from overlay_venv.backends import IndexOptions
from overlay_venv.backends import uv as uv_backend
from overlay_venv.changes import overlay_changes
from overlay_venv.errors import OverlayError
from overlay_venv.holds import Conflict, Demand, Hold, Reason, constraints_text, derive_holds, explain_conflict, parse_conflict
from overlay_venv.layers import BASE, INTERPRETER, OVERLAY, Copy, Distribution, Layer
from overlay_venv.record import OverlayRecord
from overlay_venv.requests import Requests, merge_requests, project_name, read_requests

ENV39 = {"python_version": "3.9", "python_full_version": "3.9.18", "sys_platform": "linux", "os_name": "posix"}
OV = Layer(OVERLAY, "/ov/lib/python3.9/site-packages", label="overlay")
B = Layer(BASE, "/rel/lib/python3.9/site-packages", 1, "base")
INTERP = Layer(INTERPRETER, "/rel/python/lib/python3.9/site-packages", label="interpreter")


def dist(name: str, version: str, layer: Layer, *requires: str, shadows: tuple = ()) -> Distribution:
    copy = Copy(name, name, version, layer, f"{layer.path}/{name}-{version}.dist-info", tuple(requires))
    hidden = tuple(Copy(name, name, v, lay, f"{lay.path}/{name}-{v}.dist-info") for v, lay in shadows)
    return Distribution(copy, hidden)


# The base, as layers sees it.
BASE_DISTS = [dist("clientlib", "1.4", B, "corelib==1.20.*"), dist("corelib", "1.20.0", B)]

# What pip 26 prints for `install tool==2.0` with corelib held (stdout and stderr interleaved).
PIP_CONFLICT = """\
Looking in links: /wheels
Processing /wheels/tool-2.0-py3-none-any.whl
INFO: pip is looking at multiple versions of tool to determine which version is compatible with other requirements.
ERROR: Cannot install tool==2.0 because these package versions have conflicting dependencies.

The conflict is caused by:
    tool 2.0 depends on corelib>=1.43
    The user requested (constraint) corelib==1.20.0

Additionally, some packages in these conflicts have no matching distributions available for your environment:
    corelib

To fix this you could try to:
1. loosen the range of package versions you've specified
2. remove package versions to allow pip to attempt to solve the dependency conflict

ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/dependency-resolution/#dealing-with-dependency-conflicts
"""


# --------------------------------------------------------------------------------------------------
# Holds


def test_a_base_dependency_is_held_at_its_base_version():
    (hold,) = derive_holds(BASE_DISTS, ENV39)
    assert (hold.name, hold.version, hold.layer) == ("corelib", "1.20.0", "base")
    assert [r.text() for r in hold.reasons] == ["clientlib 1.4 (base) requires corelib==1.20.*"]
    assert constraints_text([hold]).splitlines()[1:] == ["corelib==1.20.0"]


def test_named_and_allowed_distributions_are_not_held():
    assert derive_holds(BASE_DISTS, ENV39, named=["Corelib"]) == []
    assert derive_holds(BASE_DISTS, ENV39, allowed=["corelib"]) == []
    # Naming the dependent puts its requirements into pip's own resolution: nothing left to hold.
    assert derive_holds(BASE_DISTS, ENV39, named=["clientlib"]) == []
    # --allow-shadow releases the target only; clientlib's other requirement still holds.
    dists = [
        dist("clientlib", "1.4", B, "corelib==1.20.*", "otherlib>=1"),
        dist("corelib", "1.20.0", B),
        dist("otherlib", "3", B),
    ]
    assert [h.name for h in derive_holds(dists, ENV39, allowed=["corelib"])] == ["otherlib"]


def test_overlay_copies_markers_extras_and_self_requirements():
    dists = [
        dist("app", "1", OV, "corelib>=1", 'winlib; sys_platform == "win32"', "extras-user[fast]"),
        dist("corelib", "2.0", OV, shadows=(("1.20.0", B),)),  # the overlay's own copy: never held
        dist("winlib", "1", B),  # its only requirement does not apply on linux
        dist("extras-user", "1", B, 'speedy; extra == "fast"', 'extras-user[fast]; extra == "all"'),
        dist("speedy", "0.9", INTERP),  # the interpreter's own site-packages is part of the base too
    ]
    holds = {h.name: h for h in derive_holds(dists, ENV39)}
    assert set(holds) == {"extras-user", "speedy"}
    assert holds["speedy"].layer == "interpreter"
    assert [r.requirer for r in holds["speedy"].reasons] == ["extras-user"]


def test_versions_that_are_not_pep440_are_held_by_string():
    hold = Hold("oddlib", "oddlib", "1.0-cern-patched", "base", ())
    assert hold.constraint == "oddlib===1.0-cern-patched"


NAMES = ["a", "b", "c", "d", "e"]


@settings(max_examples=150, deadline=None)
@given(
    layers=st.lists(st.sampled_from([OV, B, INTERP]), min_size=5, max_size=5),
    edges=st.sets(st.tuples(st.sampled_from(NAMES), st.sampled_from(NAMES))),
    named=st.sets(st.sampled_from(NAMES)),
    allowed=st.sets(st.sampled_from(NAMES)),
)
def test_holds_property(layers, edges, named, allowed):
    dists = [dist(n, "1.0", layer, *sorted(f"{t}>=1" for s, t in edges if s == n)) for n, layer in zip(NAMES, layers)]
    holds = derive_holds(dists, ENV39, named=named, allowed=allowed)
    held = {h.name for h in holds}
    layer_of = dict(zip(NAMES, layers))
    expected = {t for s, t in edges if s != t and s not in named and t not in named | allowed and layer_of[t].kind != OVERLAY}
    assert held == expected
    for hold in holds:
        assert hold.version == "1.0" and all(r.requirer not in named for r in hold.reasons)


# --------------------------------------------------------------------------------------------------
# Explaining a failure


def test_parse_pip_conflict():
    conflict = parse_conflict(PIP_CONFLICT)
    assert conflict.requested == ["tool==2.0"]
    assert conflict.demands == [
        Demand("tool", "2.0", "corelib>=1.43", "corelib"),
        Demand("", "", "corelib==1.20.0", "corelib", constraint=True),
    ]
    assert parse_conflict("ERROR: Could not find a version that satisfies the requirement nope") is None


def test_explanation_names_the_pinning_base_package_and_the_options():
    holds = derive_holds(BASE_DISTS, ENV39, named=["tool"])
    requests = Requests(names={"tool"}, specifiers={"tool": "==2.0"})
    lines = explain_conflict(parse_conflict(PIP_CONFLICT), holds, requests)
    text = "\n".join(lines)
    assert "tool 2.0 requires corelib>=1.43" in text
    assert "corelib is held at the base's 1.20.0: clientlib 1.4 (base) requires corelib==1.20.*" in text
    assert "older tool" in text and "'tool<2.0'" in text
    assert "--allow-shadow corelib" in text
    assert "add clientlib to the packages" in text
    assert len(lines) <= 8


def test_no_older_version_advice_for_an_unpinned_request_and_no_explanation_without_holds():
    holds = derive_holds(BASE_DISTS, ENV39, named=["tool"])
    lines = explain_conflict(
        parse_conflict(PIP_CONFLICT.replace("tool==2.0", "tool")), holds, Requests(names={"tool"}, specifiers={"tool": ""})
    )
    assert not any("older" in line for line in lines)
    between_requests = Conflict(["a", "b"], [Demand("a", "1", "c<2", "c"), Demand("b", "1", "c>=2", "c")])
    assert explain_conflict(between_requests, holds, Requests(names={"a", "b"})) is None


def test_many_reasons_are_summarised():
    reasons = tuple(Reason(f"user{i}", "1", "base", "numpy<2") for i in range(7))
    hold = Hold("numpy", "numpy", "1.26.4", "base", reasons)
    conflict = Conflict(["x"], [Demand("x", "1", "numpy>=2", "numpy")])
    lines = explain_conflict(conflict, [hold], Requests(names={"x"}))
    assert any(line.endswith("and 4 more") for line in lines)


# --------------------------------------------------------------------------------------------------
# Reading requests


def test_read_requests_follows_files_and_reads_project_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text('[build-system]\nrequires = []\n[project]\nname = "My_Proj"\nversion = "1"\n')
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "setup.cfg").write_text("[metadata]\nname = legacy-thing\n")
    wheel = make_base.build_wheel(tmp_path / "w", "wheelpkg", "1.0")
    (tmp_path / "more.txt").write_text("extra-pkg[fast]>=2 ; python_version >= '3'\n")
    (tmp_path / "cons.txt").write_text("pinned-by-user==1.0\n")
    (tmp_path / "reqs.txt").write_text(
        "# a comment\n--index-url https://example.invalid/simple\nalpha==1.0 --hash=sha256:abc  # pinned\n"
        "-r more.txt\n-c cons.txt\n-e ./legacy\nbeta \\\n  >=3\n${NOT_SET_ANYWHERE}\n"
    )
    requests = read_requests(
        ["tool==2.0", str(wheel), "git+https://example.invalid/x.git#egg=vcs_pkg", "./unknown-dir"],
        requirement_files=["reqs.txt"],
        editables=["proj"],
    )
    assert requests.names == {"tool", "wheelpkg", "vcs-pkg", "alpha", "extra-pkg", "legacy-thing", "beta", "my-proj"}
    assert requests.constrained == {"pinned-by-user"}
    assert requests.specifiers["tool"] == "==2.0" and requests.specifiers["beta"] == ">=3"
    assert requests.unnamed == ["./unknown-dir", "${NOT_SET_ANYWHERE}"]
    assert requests.pip_args[:4] == ["tool==2.0", str(wheel), "git+https://example.invalid/x.git#egg=vcs_pkg", "./unknown-dir"]
    assert requests.pip_args[4:] == ["-e", "proj", "-r", "reqs.txt"]
    assert f"-e {project}" in requests.record and f"-e {legacy}" in requests.record
    assert str(tmp_path / "unknown-dir") in requests.record and "alpha==1.0" in requests.record


def test_project_name_of_archives_and_urls(tmp_path):
    sdist = tmp_path / "some_pkg-1.2.tar.gz"
    sdist.write_bytes(b"")
    assert project_name(str(sdist)) == "some_pkg"
    assert project_name("https://example.invalid/files/pkg_x-2.0-py3-none-any.whl") == "pkg_x"
    assert project_name(str(tmp_path / "missing")) is None


def test_a_missing_requirements_file_is_one_error(tmp_path):
    with pytest.raises(OverlayError, match="cannot read the requirements file"):
        read_requests([], requirement_files=[str(tmp_path / "nope.txt")])


def test_merge_requests_keeps_the_newest_per_project():
    assert merge_requests(["tool", "other>=1", "-e /src/thing"], ["tool==2.0", "new"]) == [
        "other>=1",
        "-e /src/thing",
        "tool==2.0",
        "new",
    ]
    assert merge_requests(["Tool_X>=1"], ["tool-x<3"]) == ["tool-x<3"]
    assert merge_requests([], []) == []


def test_old_records_without_requests_still_read():
    record = json.loads(
        OverlayRecord.from_json(
            json.dumps(
                {
                    "prompt": "p",
                    "bin_dir": "bin",
                    "site_packages": ["lib/python3.9/site-packages"],
                    "system_site_packages": True,
                    "base": {
                        "interpreter": "/x",
                        "executable": "/x",
                        "version": "3.9",
                        "implementation": "CPython",
                        "pythonpath": None,
                    },
                    "created_by": "overlay-venv 0.1",
                    "format": 1,
                    "extra": {},
                }
            )
        ).to_json()
    )
    assert record["requests"] == []


# --------------------------------------------------------------------------------------------------
# Changes and backends


def test_overlay_changes():
    before = [dist("tool", "1.5", OV), dist("corelib", "1.20.0", B), dist("gone", "1", OV)]
    after = [dist("tool", "2.0", OV), dist("corelib", "1.43.0", OV, shadows=(("1.20.0", B),))]
    changes = {c.name: (c.before, c.after, c.shadows) for c in overlay_changes(before, after)}
    assert changes == {"corelib": (None, "1.43.0", (("1.20.0", "base"),)), "gone": ("1", None, ()), "tool": ("1.5", "2.0", ())}


def test_relayer_rereads_only_the_overlay_and_gives_up_on_new_pth_files(tmp_path):
    from overlay_venv.changes import pth_files_of, relayer
    from overlay_venv.layers import Layering

    ov_dir, base_dir = tmp_path / "ov", tmp_path / "base"
    ov_dir.mkdir()
    make_base.install_wheel(make_base.build_wheel(tmp_path / "w", "corelib", "1.20.0"), base_dir)
    ov_layer, base_layer = Layer(OVERLAY, str(ov_dir), label="overlay"), Layer(BASE, str(base_dir), 1, "base")
    base_copy = Copy("corelib", "corelib", "1.20.0", base_layer, str(base_dir / "corelib-1.20.0.dist-info"))
    before = Layering(tmp_path, "python", {}, None, "none", [ov_layer, base_layer], [Distribution(base_copy)], ENV39)
    pth = pth_files_of(before)
    make_base.install_wheel(make_base.build_wheel(tmp_path / "w", "corelib", "1.43.0"), ov_dir)
    (after,) = relayer(before, pth)
    assert (after.version, after.layer.kind, [c.version for c in after.shadowed]) == ("1.43.0", OVERLAY, ["1.20.0"])
    (ov_dir / "__editable__.proj.pth").write_text("/src/proj\n")  # may add a sys.path entry: reload
    assert relayer(before, pth) is None


def test_uv_gets_exact_pins_from_the_report():
    report = {
        "install": [
            {
                "metadata": {"name": "tool", "version": "1.5"},
                "is_direct": False,
                "download_info": {"url": "file:///w%20x/tool-1.5-py3-none-any.whl", "archive_info": {}},
            },
            {
                "metadata": {"name": "remote", "version": "3.1"},
                "is_direct": False,
                "download_info": {"url": "https://files.example/remote-3.1-py3-none-any.whl"},
            },
            {
                "metadata": {"name": "mine", "version": "0.1"},
                "is_direct": True,
                "download_info": {"url": "file:///src/mine", "dir_info": {"editable": True}},
            },
            {
                "metadata": {"name": "tree", "version": "0.2"},
                "is_direct": True,
                "download_info": {"url": "file:///src/tree", "dir_info": {}},
            },
            {
                "metadata": {"name": "vcs", "version": "1"},
                "is_direct": True,
                "download_info": {"url": "https://git.example/vcs.git", "vcs_info": {"vcs": "git", "commit_id": "abc123"}},
            },
            {
                "metadata": {"name": "arch", "version": "2"},
                "is_direct": True,
                "download_info": {"url": "https://files.example/arch-2.tar.gz", "archive_info": {}},
            },
        ]
    }
    arguments, find_links = uv_backend.uv_requirements(report)
    assert arguments == [
        "tool==1.5",
        # From an index only pip knows (pip.conf): uv gets the very file, not a name to look up.
        "remote @ https://files.example/remote-3.1-py3-none-any.whl",
        "-e",
        "/src/mine",
        "tree @ file:///src/tree",
        "vcs @ git+https://git.example/vcs.git@abc123",
        "arch @ https://files.example/arch-2.tar.gz",
    ]
    assert find_links == ["/w x"]
    assert uv_backend.uv_requirements({"install": []}) == ([], [])


def test_index_options_for_each_tool():
    options = IndexOptions("https://i.example/simple", ("https://e.example",), ("./w",), True, True, True)
    assert options.pip_args() == [
        "--index-url", "https://i.example/simple", "--extra-index-url", "https://e.example", "--find-links", "./w",
        "--no-index", "--pre", "--upgrade",
    ]  # fmt: skip
    assert options.uv_args()[-3:] == ["--no-index", "--prerelease", "allow"] and "--upgrade" not in options.uv_args()


def test_a_missing_uv_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "uv", None)  # the uv package is not installed
    monkeypatch.setattr(uv_backend.shutil, "which", lambda name: None)
    assert uv_backend.find_uv() is None
    with pytest.raises(OverlayError) as info:
        uv_backend.UvBackend()
    assert "uv, which is not installed" in info.value.message and "pip install uv" in info.value.message


# --------------------------------------------------------------------------------------------------
# The command on a real read-only release

BACKENDS = ["pip", "uv"]


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("install")
    rel = build_release(root, "3.9", base=("corelib==1.20.0",), wheels=())
    clientlib = make_base.build_wheel(root / "build", "clientlib", "1.4", requires=("corelib==1.20.*",))
    make_base.install_wheel(clientlib, rel.site)
    make_base.build_wheel(rel.wheels, "tool", "2.0", requires=("corelib>=1.43",))
    make_base.build_wheel(rel.wheels, "tool", "1.5", requires=("corelib>=1.20,<1.21",))
    make_base.build_wheel(rel.wheels, "corelib", "1.43.0")
    rel.mounted = make_read_only(rel.root)
    yield rel
    if rel.mounted:
        subprocess.run(["umount", str(rel.root)], check=False)


def job_env(release, **extra) -> dict[str, str]:
    # The machine's pip.conf adds find-links and indexes: tests see only their own wheelhouse.
    return release.env(PIP_CONFIG_FILE=os.devnull, UV_NO_CONFIG="1", NO_COLOR="1", **extra)


def overlay_state(overlay: Path) -> dict[str, tuple]:
    """Every file of the overlay with size, mtime and mode; bytecode caches aside (running pip may write
    those for pip's own modules: they are Python's cache, not the overlay's content)."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(overlay):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames + dirnames:
            stat = os.lstat(os.path.join(dirpath, name))
            state[os.path.relpath(os.path.join(dirpath, name), overlay)] = (stat.st_size, stat.st_mtime_ns, stat.st_mode)
    return state


def install(
    release, overlay: Path, *args: str, backend: str = "pip", check: bool = True, env: dict | None = None
) -> subprocess.CompletedProcess:
    uv = ["--uv"] if backend == "uv" else []
    return overlay_venv(
        "install",
        "--overlay",
        str(overlay),
        "--no-index",
        "-f",
        str(release.wheels),
        *uv,
        *args,
        env=job_env(release, **(env or {})),
        check=check,
    )


def listing(release, overlay: Path) -> dict[str, tuple]:
    document = json.loads(overlay_venv("list", str(overlay), "--json", env=job_env(release)).stdout)
    return {
        d["name"]: (d["version"], d["label"], [(s["version"], s["label"]) for s in d["shadows"]])
        for d in document["distributions"]
    }


def check(release, overlay: Path) -> subprocess.CompletedProcess:
    return overlay_venv("check", str(overlay), env=job_env(release), check=False)


SCENARIOS = {
    "tool": ("tool",),
    "tool-2.0": ("tool==2.0",),
    "allow-shadow": ("tool==2.0", "--allow-shadow", "corelib"),
    "named-corelib": ("corelib==1.43.0",),
    # The pre-flight off: pip meets the hold itself, and its conflict is explained from its output.
    "tool-2.0-no-preflight": ("tool==2.0",),
}
SCENARIO_ENV = {"tool-2.0-no-preflight": {"OVERLAY_VENV_PREFLIGHT": "0"}}


@pytest.fixture(scope="module")
def outcomes(release, tmp_path_factory):
    """Each scenario on a fresh overlay per backend, run once: (overlay, result, state before)."""
    cache: dict = {}

    def run(scenario: str, backend: str):
        if backend == "uv":
            require_uv()
        if (scenario, backend) not in cache:
            overlay = make_overlay(release, tmp_path_factory.mktemp(f"{scenario}-{backend}") / "env", install=())
            before = overlay_state(overlay)
            result = install(release, overlay, *SCENARIOS[scenario], backend=backend, check=False, env=SCENARIO_ENV.get(scenario))
            cache[scenario, backend] = (overlay, result, before)
        return cache[scenario, backend]

    return run


@pytest.mark.parametrize("backend", BACKENDS)
def test_install_picks_the_version_that_works_with_the_base(release, outcomes, backend):
    overlay, result, _ = outcomes("tool", backend)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = listing(release, overlay)
    assert rows["tool"] == ("1.5", "overlay", [])
    assert rows["corelib"] == ("1.20.0", "base", [])  # nothing copied: the base's corelib serves
    assert rows["clientlib"] == ("1.4", "base", [])
    assert check(release, overlay).returncode == 0
    assert "tool  1.5" in result.stdout and "nothing newly broken" in result.stdout
    assert json.loads((overlay / "overlay-venv.json").read_text())["requests"] == ["tool"]


@pytest.mark.parametrize("scenario", ["tool-2.0", "tool-2.0-no-preflight"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_conflict_with_the_base_is_explained_and_changes_nothing(release, outcomes, backend, scenario):
    overlay, result, before = outcomes(scenario, backend)
    assert result.returncode == 1
    err = result.stderr
    assert "tool 2.0 requires corelib>=1.43" in err
    assert "corelib is held at the base's 1.20.0: clientlib 1.4 (base) requires corelib==1.20.*" in err
    assert "--allow-shadow corelib" in err and "add clientlib" in err
    if scenario == "tool-2.0":
        # The pre-flight read tool 2.0's requirements and refused before pip ran; it knows what fits.
        assert "'tool==1.5'" in err and "Processing" not in err
        last = "no release that works with the base's held packages: nothing was installed; the overlay is unchanged"
    else:
        assert "'tool<2.0'" in err
        last = "failed (exit status 1): nothing was installed; the overlay is unchanged"
    # Which installer failed (pip's resolver, or uv's) is the backend's business.
    assert err.rstrip().splitlines()[-1].startswith("overlay-venv: error: ") and err.rstrip().endswith(last)
    # pip's own conflict block is replaced by the explanation, not repeated after it.
    assert "ResolutionImpossible" not in err and "The conflict is caused by" not in err
    assert overlay_state(overlay) == before
    assert "tool" not in listing(release, overlay)


@pytest.mark.parametrize("backend", BACKENDS)
def test_allow_shadow_installs_and_check_reports_the_broken_dependent(release, outcomes, backend):
    overlay, result, _ = outcomes("allow-shadow", backend)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = listing(release, overlay)
    assert rows["tool"] == ("2.0", "overlay", [])
    assert rows["corelib"] == ("1.43.0", "overlay", [("1.20.0", "base")])
    assert "broken: clientlib 1.4 (base) requires corelib==1.20.*" in result.stdout
    assert "1 requirement newly broken (allowed with --allow-shadow corelib)" in result.stdout
    checked = check(release, overlay)
    assert checked.returncode == 1 and "clientlib 1.4 (base) requires corelib==1.20.*" in checked.stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_named_base_package_may_be_shadowed(release, outcomes, backend):
    overlay, result, _ = outcomes("named-corelib", backend)
    assert result.returncode == 0, result.stdout + result.stderr
    assert listing(release, overlay)["corelib"] == ("1.43.0", "overlay", [("1.20.0", "base")])
    assert "corelib  1.43.0  shadows 1.20.0 base" in result.stdout


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_uv_ends_with_the_same_overlay_as_pip(release, outcomes, scenario):
    pip_overlay, pip_result, _ = outcomes(scenario, "pip")
    uv_overlay, uv_result, _ = outcomes(scenario, "uv")
    assert pip_result.returncode == uv_result.returncode
    assert listing(release, pip_overlay) == listing(release, uv_overlay)


def test_requests_accumulate_and_the_active_overlay_is_used(release, tmp_path):
    overlay = make_overlay(release, tmp_path / "env", install=())
    site = next((overlay / "lib").glob("python3.*")) / "site-packages"
    activated = job_env(
        release, VIRTUAL_ENV=str(overlay), PYTHONPATH=f"{site}:{release.site}", PATH=f"{overlay}/bin:{release.env()['PATH']}"
    )
    first = overlay_venv("install", "-q", "--no-index", "-f", str(release.wheels), "tool", env=activated)
    # --quiet: no pip progress, and nothing on stdout when nothing broke.
    assert first.stdout == "" and "Processing" not in first.stderr
    overlay_venv("install", "-q", "--no-index", "-f", str(release.wheels), "corelib==1.43.0", env=activated)
    assert json.loads((overlay / "overlay-venv.json").read_text())["requests"] == ["tool", "corelib==1.43.0"]
    # Already there: nothing to do, and the record is not rewritten with a duplicate.
    again = overlay_venv("install", "--no-index", "-f", str(release.wheels), "corelib==1.43.0", env=activated)
    assert "nothing to install" in again.stdout
    assert json.loads((overlay / "overlay-venv.json").read_text())["requests"] == ["tool", "corelib==1.43.0"]


def test_plain_pip_in_the_overlay_is_not_guarded(release, tmp_path):
    """Plain pip keeps behaving as pip: the same request overlay-venv refuses goes through."""
    overlay = make_overlay(release, tmp_path / "env", install=("tool==2.0",))
    assert listing(release, overlay)["corelib"] == ("1.43.0", "overlay", [("1.20.0", "base")])


@pytest.mark.parametrize(
    "args, words",
    [
        ((), "nothing to install"),
        (("--overlay", "/nonexistent-overlay", "tool"), "is not an overlay"),
        (("--overlay", "{overlay}", "-r", "/nonexistent/reqs.txt"), "cannot read the requirements file"),
    ],
)
def test_errors_are_one_line(release, tmp_path, args, words):
    overlay = make_overlay(release, tmp_path / "env", install=())
    env = job_env(release, VIRTUAL_ENV=str(overlay))
    result = overlay_venv("install", *(a.format(overlay=overlay) for a in args), env=env, check=False)
    assert result.returncode != 0 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("overlay-venv: error: "), result.stderr
    assert words in result.stderr


def test_help_has_examples():
    result = subprocess.run(
        [sys.executable, "-m", "overlay_venv", "install", "--help"], capture_output=True, text=True, check=True
    )
    assert "Examples:" in result.stdout and "overlay-venv install --overlay myenv" in result.stdout
    for option in ("--allow-shadow", "--uv", "--no-index", "--find-links", "--requirement", "--editable", "--pre", "--quiet"):
        assert option in result.stdout


def test_recorded_requests_hold_no_credentials(release, tmp_path):
    """A URL with user:token, typed or from a ${VAR} pip expands in a requirements file, is used for
    the install but never reaches overlay-venv.json. The wheels come from a server on localhost that
    notes the credentials pip sent, so the test knows they were really in play."""
    import base64
    import http.server
    import threading

    served = tmp_path / "served"
    for name in ("typedcred", "filecred"):
        make_base.build_wheel(served, name, "1.0")
    seen: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def do_GET(self):
            seen.append(self.headers.get("Authorization", ""))
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"127.0.0.1:{server.server_address[1]}"
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"filecred @ http://bot:${{OV_TEST_TOKEN}}@{host}/filecred-1.0-py3-none-any.whl\n")
    overlay = make_overlay(release, tmp_path / "env", install=())
    try:
        typed = f"typedcred @ http://bot:hunter2@{host}/typedcred-1.0-py3-none-any.whl"
        env = job_env(release, OV_TEST_TOKEN="s3cr3t")
        overlay_venv("install", "--overlay", str(overlay), "--quiet", typed, "-r", str(requirements), env=env)
    finally:
        server.shutdown()
        server.server_close()
    sent = {base64.b64decode(value.split()[1]).decode() for value in seen if value.startswith("Basic ")}
    assert sent == {"bot:hunter2", "bot:s3cr3t"}
    assert {"typedcred", "filecred"} <= set(listing(release, overlay))
    text = (overlay / "overlay-venv.json").read_text()
    assert "hunter2" not in text and "s3cr3t" not in text and "bot:" not in text
    assert json.loads(text)["requests"] == [
        f"typedcred @ http://{host}/typedcred-1.0-py3-none-any.whl",
        f"filecred @ http://{host}/filecred-1.0-py3-none-any.whl",
    ]
