"""The pre-flight's pure parts (overlay_venv.preflight), its index reader (overlay_venv.index_client) on
local files and a local server, and the words it says (overlay_venv.holds), without pip."""

from __future__ import annotations

import json
import time
from pathlib import Path

import make_conflict_index as index_script
import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from overlay_venv.holds import Hold, Reason, holds_summary, preflight_note, refusal
from overlay_venv.index_client import IndexClient, Unreadable, all_sources, configured_sources
from overlay_venv.preflight import SDIST, WHEEL, Budget, File, Metadata, compatible, judge, parse_html, parse_json
from overlay_venv.requests import Requests
from overlay_venv.sources import Sources

ENV = {"python_version": "3.9", "python_full_version": "3.9.18", "sys_platform": "linux", "os_name": "posix"}
HELD = {"corelib": "1.20.0"}
HOLD = Hold("corelib", "corelib", "1.20.0", "base", (Reason("clientlib", "1.4", "base", "corelib==1.20"),))


def wheel(name: str, version: str, tags=("py3-none-any",), **extra) -> File:
    return File(name, Version(version), WHEEL, f"/w/{name}-{version}.whl", frozenset(tags), **extra)


def index_of(releases: dict[str, tuple[str, ...] | None], name: str = "tool"):
    """Files and a fetch for ``releases``: version -> requirements (None: an sdist, metadata unknown)."""
    files, known = [], {}
    for version, requires in releases.items():
        if requires is None:
            files.append(File(name, Version(version), SDIST, f"/w/{name}-{version}.tar.gz"))
        else:
            files.append(wheel(name, version))
            known[files[-1].url] = Metadata(tuple(requires))
    reads: list[str] = []

    def fetch(file: File):
        reads.append(str(file.version))
        return known.get(file.url)

    return files, fetch, reads


def walk(request: str, releases, budget: Budget | None = None, **kwargs):
    files, fetch, reads = index_of(releases)
    verdict = judge(Requirement(request), files, HELD, ENV, fetch, budget or Budget(time.monotonic() + 60), **kwargs)
    return verdict, reads


RELEASES = {"2.1": ("corelib==1.22",), "2.0": ("corelib==1.21",), "1.5": ("corelib>=1.10,<1.21",), "1.0": ("corelib",)}


def test_the_newest_release_that_fits_bounds_pip():
    verdict, reads = walk("tool", RELEASES)
    assert [r.version for r in verdict.ruled_out] == ["2.1", "2.0"]
    assert verdict.ruled_out[0].clashes[0].requirement == "corelib==1.22" and verdict.ruled_out[0].clashes[0].held == "corelib"
    assert (verdict.bound, verdict.fits, verdict.newest_fit, verdict.refused) == ("1.5", "1.5", "1.5", False)
    assert verdict.constraint() == "tool<=1.5"
    assert reads == ["2.1", "2.0", "1.5"]  # newest first, stopping at the first that fits


def test_nothing_is_bound_when_the_newest_fits():
    verdict, reads = walk("tool", {"3.0": ("corelib>=1",), **RELEASES})
    assert verdict.ruled_out == [] and verdict.constraint() is None and reads == ["3.0"]


def test_a_pinned_release_that_clashes_is_refused_with_the_newest_that_fits():
    verdict, _ = walk("tool==2.1", RELEASES)
    assert verdict.refused and verdict.constraint() is None
    assert verdict.newest_fit == "1.5"
    verdict, _ = walk("tool>=2", RELEASES)
    assert verdict.refused and [r.version for r in verdict.clashing] == ["2.1", "2.0"]


def test_an_unknown_release_stops_the_walk_but_the_newest_fit_is_still_found():
    # An sdist between: pip would try it, so pip gets it (tool<=1.8); 1.5 is named for the answer.
    verdict, _ = walk("tool", {"2.0": ("corelib==1.21",), "1.8": None, **{k: v for k, v in RELEASES.items() if k < "2"}})
    assert (verdict.bound, verdict.fits, verdict.newest_fit) == ("1.8", None, "1.5")
    assert verdict.constraint() == "tool<=1.8" and not verdict.refused


def test_the_budget_ends_the_walk_at_the_release_it_could_not_read():
    verdict, reads = walk("tool", RELEASES, Budget(time.monotonic() + 60, candidates=1))
    assert reads == ["2.1"] and verdict.bound == "2.0" and verdict.constraint() == "tool<=2.0"
    verdict, reads = walk("tool", RELEASES, Budget(time.monotonic() - 1))
    assert reads == [] and verdict.ruled_out == [] and verdict.constraint() is None


def test_markers_extras_and_python():
    releases = {
        "3.0": ('corelib==1.30; sys_platform == "win32"', 'corelib==1.31; extra == "fast"'),
        "2.0": ("corelib==1.21",),
    }
    verdict, _ = walk("tool", releases)
    assert verdict.ruled_out == [] and verdict.bound == "3.0"  # neither requirement applies
    verdict, _ = walk("tool[fast]", releases)
    assert [r.version for r in verdict.ruled_out] == ["3.0", "2.0"] and verdict.refused
    # A release for another Python is ruled out without being a hold's doing: no refusal for it alone.
    files = [wheel("tool", "2.0")]
    verdict = judge(Requirement("tool"), files, HELD, ENV, lambda file: Metadata((), ">=3.12"), Budget(time.monotonic() + 60))
    assert verdict.ruled_out[0].other == "requires Python >=3.12" and not verdict.refused


def test_pre_releases_only_when_asked_or_nothing_else():
    releases = {"3.0rc1": ("corelib==1.30",), **RELEASES}
    assert walk("tool", releases)[1][0] == "2.1"
    assert walk("tool", releases, pre=True)[1][0] == "3.0rc1"
    assert walk("tool", {"3.0rc1": ("corelib==1.30",)})[0].refused


def test_which_files_pip_could_use():
    assert compatible(wheel("t", "1"), None, "3.9.18") is True
    assert compatible(wheel("t", "1", tags=("cp39-cp39-manylinux_2_17_x86_64",)), None, "3.9.18") is None  # unknown
    assert compatible(wheel("t", "1", tags=("cp39-cp39-manylinux_2_17_x86_64",)), ["cp39-cp39-manylinux_2_17_x86_64"], "3.9.18")
    assert compatible(wheel("t", "1", tags=("cp312-cp312-linux_x86_64",)), ["cp39-cp39-linux_x86_64"], "3.9.18") is False
    assert compatible(wheel("t", "1", yanked=True), None, "3.9.18") is False
    assert compatible(wheel("t", "1", requires_python=">=3.10"), None, "3.9.18") is False
    # A version with only a binary wheel of unknown fitness stops the walk (it is not skipped).
    files = [wheel("tool", "3.0", tags=("cp39-cp39-linux_x86_64",)), wheel("tool", "2.0")]
    verdict = judge(Requirement("tool"), files, HELD, ENV, {}.get, Budget(time.monotonic() + 60))
    assert verdict.bound == "3.0" and verdict.ruled_out == []


def test_parse_simple_pages():
    html = """<html><head><base href="https://files.example/"></head><body>
    <a href="packages/tool-1.0-py3-none-any.whl#sha256=ab" data-core-metadata="sha256=cd"
       data-requires-python="&gt;=3.8">tool-1.0-py3-none-any.whl</a>
    <a href="packages/tool-0.9-py3-none-any.whl" data-dist-info-metadata data-yanked="">x</a>
    <a href="packages/tool-0.8.tar.gz">tool-0.8.tar.gz</a>
    <a href="packages/not-a-dist.txt">no</a>
    </body></html>"""
    files = parse_html(html, "https://index.example/simple/tool/")
    assert [(str(f.version), f.kind) for f in files] == [("1.0", WHEEL), ("0.9", WHEEL), ("0.8", SDIST)]
    assert files[0].url == "https://files.example/packages/tool-1.0-py3-none-any.whl"
    assert files[0].metadata_url == files[0].url + ".metadata" and files[0].requires_python == ">=3.8"
    assert files[1].metadata_url and files[1].yanked and files[2].metadata_url is None
    document = {
        "files": [
            {
                "filename": "tool-1.0-py3-none-any.whl",
                "url": "../../f/tool-1.0-py3-none-any.whl",
                "core-metadata": {"sha256": "x"},
            },
            {"filename": "tool-0.9-py3-none-any.whl", "url": "/f/tool-0.9-py3-none-any.whl", "dist-info-metadata": False},
        ]
    }
    files = parse_json(json.dumps(document), "https://index.example/simple/tool/")
    assert files[0].url == "https://index.example/f/tool-1.0-py3-none-any.whl" and files[0].metadata_url
    assert files[1].metadata_url is None


def test_pip_configuration_is_read_as_pip_reads_it(tmp_path):
    config = tmp_path / "pip.conf"
    config.write_text("[global]\nindex-url = https://mirror.example/simple\n[install]\nfind-links =\n  /a\n  /b\n")
    environ = {
        "HOME": str(tmp_path),
        "PIP_CONFIG_FILE": str(config),
        "PIP_EXTRA_INDEX_URL": "https://x.example https://y.example",
    }
    found = configured_sources(environ)
    assert found == Sources("https://mirror.example/simple", ("https://x.example", "https://y.example"), ("/a", "/b"), False)
    assert configured_sources({"HOME": str(tmp_path), "PIP_CONFIG_FILE": "/dev/null"}) == Sources()
    # Given and configured together: more places only stop the walk sooner; fewer could rule out what pip finds.
    merged = all_sources(Sources("https://given.example/simple"), environ, None)
    assert merged.extra_index_urls[:2] == ("https://given.example/simple", "https://mirror.example/simple")
    assert all_sources(Sources(), {"PIP_CONFIG_FILE": "/dev/null"}, None).extra_index_urls == ("https://pypi.org/simple/",)
    assert all_sources(Sources(no_index=True), {"PIP_CONFIG_FILE": "/dev/null"}, None).extra_index_urls == ()


@pytest.fixture(scope="module")
def small_index(tmp_path_factory) -> Path:
    return index_script.build_index(tmp_path_factory.mktemp("small-index") / "index", releases=5)


def test_the_client_reads_every_shape_of_the_index(small_index):
    server, url = index_script.serve(small_index)
    try:
        shapes = {
            "file": Sources(None, ((small_index / "simple").as_uri(),), (), True),
            "find-links": Sources(None, (), (str(small_index / "wheels"),), True),
            "http": Sources(None, (f"{url}/simple/",), (), True),
            "http ranges": Sources(None, (f"{url}/plain/",), (), True),
        }
        for shape, sources in shapes.items():
            client = IndexClient(sources)
            try:
                files = client.files("gizmo")
                assert sorted(str(f.version) for f in files) == ["0.9", "1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"], shape
                newest = max((f for f in files if f.kind == WHEEL), key=lambda f: f.version)
                assert client.metadata(newest).requires == ("corelib==1.25.0",), shape
                assert client.metadata(next(f for f in files if f.kind == SDIST)) is None, shape
                assert client.files("no-such-project") == [], shape
            finally:
                client.close()
    finally:
        server.shutdown()
        server.server_close()


def test_an_unreadable_index_gives_up(tmp_path):
    client = IndexClient(Sources(None, ("http://127.0.0.1:9/simple/",), (), True), timeout=2)
    with pytest.raises(Unreadable):
        client.files("tool")


def test_what_it_says():
    verdict, _ = walk("tool", RELEASES)
    note = preflight_note(verdict, [HOLD])
    assert note == (
        "note: 2 releases of tool (2.0 to 2.1) cannot use the base's corelib 1.20.0 (held: clientlib 1.4 (base) requires "
        "corelib==1.20): tool 2.1 requires corelib==1.22; installing tool 1.5, the newest that fits "
        "(--allow-shadow corelib for tool 2.1)"
    )
    refused, _ = walk("tool>=2", RELEASES)
    lines = refusal([refused], [HOLD], Requests(names={"tool"}, specifiers={"tool": ">=2"}))
    assert lines[:4] == [
        "cannot install tool>=2 without replacing base packages that others need:",
        "  tool 2.1 requires corelib==1.22",
        "  and so does the older tool 2.0: it requires another version of a held package",
        "  corelib is held at the base's 1.20.0: clientlib 1.4 (base) requires corelib==1.20",
    ]
    assert "  - ask for tool 1.5, the newest that works with the held versions: 'tool==1.5'" in lines
    summary = holds_summary([HOLD], [verdict], "error: metadata-generation-failed")
    assert summary[:2] == [
        "pip ran with these base packages held at the base's versions:",
        "  corelib==1.20.0: clientlib 1.4 (base) requires corelib==1.20",
    ]
    assert "2 releases of tool (2.0 to 2.1) left out" in summary[2]
    many = [Hold(f"h{i}", f"h{i}", "1", "base", ()) for i in range(10)]
    assert holds_summary(many, [], "unrelated")[0].endswith("h6==1, h7==1, ...")
    assert holds_summary([], [verdict]) == []


def test_which_requests_the_pre_flight_judges():
    from types import SimpleNamespace

    from overlay_venv.operations.install import _index_requests

    layering = SimpleNamespace(distributions=[SimpleNamespace(name="have", version="1.0")], marker_environment=ENV)
    record = [
        "tool>=1",
        "have>=0.5",
        "-e /src/proj",
        "./local.whl",
        "x @ https://e.example/x.whl",
        'win; sys_platform == "win32"',
    ]
    requests = Requests(record=[*record, "mine", "tool<3"], constrained={"mine"})
    # Not: what is installed and satisfies it (pip keeps it), paths, URLs, editables, markers that do
    # not apply, names in the user's -c files; a name twice is judged once.
    assert [str(r) for r in _index_requests(layering, requests, upgrade=False)] == ["tool>=1"]
    assert [str(r) for r in _index_requests(layering, requests, upgrade=True)] == ["tool>=1", "have>=0.5"]
