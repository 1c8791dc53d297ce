"""`overlay-venv list` and `check`: which copy of each distribution an overlay imports, and what breaks.

The pure functions of ``overlay_venv.layers`` are tested on hand-made data (with hypothesis where a
property says more than an example); the commands on a read-only release built here:

    release (PYTHONPATH)   basepkg 1.0, clientlib 1.4 (requires corelib>=1.20,<1.21 and refuses to
                           import without corelib 1.20.x), corelib 1.20, shadowme 1.0 (requires the
                           absent missingdep), markerlib 1.0 (markers for Python 3.9 vs 3.10+),
                           slowlib 1.0 (requires basepkg; sleeps $SLOWLIB_SECONDS at import),
                           interplib 0.2
    interpreter's own      interplib 0.1
    overlays               broken: corelib 1.43, shadowme 2.0, basepkg 2.0
                           healthy: corelib 1.20.5, shadowme 2.0
                           bare: nothing
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import build_release, make_base, make_overlay, make_read_only, overlay_venv
from hypothesis import given, settings
from hypothesis import strategies as st

from overlay_venv import layers
from overlay_venv.layers import (
    BASE,
    INTERPRETER,
    OTHER,
    OVERLAY,
    USER,
    Copy,
    Layer,
    align,
    check_requirements,
    classify_entries,
    colour_enabled,
    job_pythonpath,
    label_layers,
    modules_from_files,
    parse_requirement,
    read_headers,
    resolve,
    shadowed_dependents,
)

ENV39 = {"python_version": "3.9", "python_full_version": "3.9.18", "sys_platform": "linux", "os_name": "posix"}


# --------------------------------------------------------------------------------------------------
# The JSON documents, as JSON Schema (the README shows the same). Checked by `conforms` below, a small
# validator for the keywords used here, so the tests need no jsonschema package.

COPY = {
    "type": "object",
    "required": ["version", "layer", "label", "path", "editable", "source"],
    "additionalProperties": False,
    "properties": {
        "version": {"type": "string"},
        "layer": {"enum": ["overlay", "base", "interpreter", "user", "other"]},
        "label": {"type": "string"},
        "path": {"type": "string"},
        "editable": {"type": "boolean"},
        "source": {"oneOf": [{"type": "null"}, {"type": "string"}]},
    },
}
NAMED_COPY = {**COPY, "required": ["name", *COPY["required"]], "properties": {"name": {"type": "string"}, **COPY["properties"]}}

LIST_SCHEMA = {
    "type": "object",
    "required": ["format", "overlay", "python", "pythonpath", "pythonpath_source", "layers", "distributions"],
    "additionalProperties": False,
    "properties": {
        "format": {"const": 1},
        "overlay": {"type": "string"},
        "python": {"type": "string"},
        "pythonpath": {"type": ["string", "null"]},
        "pythonpath_source": {"enum": ["environment", "record", "none"]},
        "layers": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["layer", "label", "path"],
                "additionalProperties": False,
                "properties": {"layer": COPY["properties"]["layer"], "label": {"type": "string"}, "path": {"type": "string"}},
            },
        },
        "distributions": {
            "type": "array",
            "items": {
                **NAMED_COPY,
                "required": [*NAMED_COPY["required"], "display_name", "shadows"],
                "properties": {
                    **NAMED_COPY["properties"],
                    "display_name": {"type": "string"},
                    "shadows": {"type": "array", "items": COPY},
                },
            },
        },
    },
}

CHECK_SCHEMA = {
    "type": "object",
    "required": ["format", "overlay", "ok", "checked", "problems", "imports", "warnings"],
    "additionalProperties": False,
    "properties": {
        "format": {"const": 1},
        "overlay": {"type": "string"},
        "ok": {"type": "boolean"},
        "checked": {"type": "integer"},
        "problems": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["kind", "message", "distribution", "requirement", "extra", "found", "shadowed"],
                "additionalProperties": False,
                "properties": {
                    "kind": {"enum": ["missing", "conflict"]},
                    "message": {"type": "string"},
                    "distribution": NAMED_COPY,
                    "requirement": {"type": "string"},
                    "extra": {"type": ["string", "null"]},
                    "found": {"oneOf": [{"type": "null"}, NAMED_COPY]},
                    "shadowed": {
                        "type": "array",
                        "items": {
                            **COPY,
                            "required": [*COPY["required"], "satisfies"],
                            "properties": {**COPY["properties"], "satisfies": {"type": "boolean"}},
                        },
                    },
                },
            },
        },
        "imports": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["checked", "failures"],
                    "additionalProperties": False,
                    "properties": {
                        "checked": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["distribution", "module"],
                                "additionalProperties": False,
                                "properties": {"distribution": {"type": "string"}, "module": {"type": "string"}},
                            },
                        },
                        "failures": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["module", "distribution", "error", "timed_out"],
                                "additionalProperties": False,
                                "properties": {
                                    "module": {"type": "string"},
                                    "distribution": NAMED_COPY,
                                    "error": {"type": "string"},
                                    "timed_out": {"type": "boolean"},
                                },
                            },
                        },
                    },
                },
            ]
        },
        "warnings": {"type": "array", "items": {"type": "string"}},
    },
}

_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def conforms(value, schema, where="$") -> list[str]:
    """Errors of ``value`` against ``schema`` (type, const, enum, oneOf, properties, required,
    additionalProperties: false, items)."""
    if "oneOf" in schema:
        matching = [s for s in schema["oneOf"] if not conforms(value, s, where)]
        return [] if len(matching) == 1 else [f"{where}: matches {len(matching)} of oneOf"]
    if "const" in schema and value != schema["const"]:
        return [f"{where}: {value!r} != {schema['const']!r}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} not in {schema['enum']}"]
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        ok = any(
            (isinstance(value, int) and not isinstance(value, bool)) if kind == "integer" else isinstance(value, _TYPES[kind])
            for kind in kinds
        )
        if not ok:
            return [f"{where}: {type(value).__name__} is not {kinds}"]
    errors = []
    if isinstance(value, dict):
        errors += [f"{where}: missing {key}" for key in schema.get("required", []) if key not in value]
        props = schema.get("properties", {})
        if schema.get("additionalProperties") is False:
            errors += [f"{where}: unexpected {key}" for key in value if key not in props]
        for key, sub in props.items():
            if key in value:
                errors += conforms(value[key], sub, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += conforms(item, schema["items"], f"{where}[{i}]")
    return errors


def test_the_validator_rejects_what_it_should():
    """The schema tests below mean something only if `conforms` can fail."""
    assert conforms({"format": 1}, LIST_SCHEMA)  # required keys missing
    good = {"version": "1", "layer": "base", "label": "base", "path": "/p", "editable": False, "source": None}
    assert conforms(good, COPY) == []
    assert conforms({**good, "layer": "elsewhere"}, COPY)
    assert conforms({**good, "extra": 1}, COPY)
    assert conforms(True, {"type": "integer"})


# --------------------------------------------------------------------------------------------------
# Pure functions


def copy(name: str, version: str, layer: Layer, *requires: str) -> Copy:
    return Copy(name, name, version, layer, f"{layer.path}/{name}-{version}.dist-info", tuple(requires))


OV = Layer(OVERLAY, "/ov/lib/python3.9/site-packages", label="overlay")
B = Layer(BASE, "/rel/lib/python3.9/site-packages", 1, "base")
INTERP = Layer(INTERPRETER, "/rel/python/lib/python3.9/site-packages", label="interpreter")


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.integers(0, 3)), max_size=25))
def test_resolve_first_copy_on_sys_path_wins(placed):
    entries = [Layer(OTHER, f"/entry{i}", label="other") for i in range(4)]
    # Copies in import order: by sys.path entry, then as listed within one entry.
    ordered = [copy(name, f"{i}.{n}", entries[i]) for n, (name, i) in sorted(enumerate(placed), key=lambda item: item[1][1])]
    dists = resolve(ordered)
    assert [d.name for d in dists] == sorted({name for name, _ in placed})
    for dist in dists:
        mine = [c for c in ordered if c.name == dist.name]
        assert dist.effective == mine[0]
        assert list(dist.shadowed) == mine[1:]
    assert sum(1 + len(d.shadowed) for d in dists) == len(placed)


def test_classify_entries():
    sys_path = [
        "/ov/lib/python3.9/site-packages",
        "/rel/lib/python3.9/site-packages",
        "/extra/lib",
        "/rel/python/lib/python3.9",
        "/home/u/.local/lib/python3.9/site-packages",
        "/rel/python/lib/python3.9/site-packages",
        "/somewhere/else",
    ]
    found = classify_entries(
        sys_path,
        ["/ov"],
        ["/extra/lib/", "/nonexistent", "/rel/lib/python3.9/site-packages"],
        ["/rel/python"],
        "/home/u/.local/lib/python3.9/site-packages",
    )
    assert [(layer.kind, layer.index) for layer in found] == [
        (OVERLAY, 0),
        (BASE, 3),  # its place in PYTHONPATH, not on sys.path
        (BASE, 1),
        (INTERPRETER, 0),
        (USER, 0),
        (INTERPRETER, 0),
        (OTHER, 0),
    ]
    assert [layer.path for layer in found] == sys_path
    # An activated overlay's site-packages on PYTHONPATH is still the overlay; an LCG view's own
    # site-packages on PYTHONPATH is the base, though it is inside the interpreter's prefix.
    both = classify_entries(["/ov/site", "/view/lib/site"], ["/ov"], ["/ov/site", "/view/lib/site"], ["/view"], None)
    assert [layer.kind for layer in both] == [OVERLAY, BASE]


def test_base_layers_are_numbered_only_when_several_carry_packages():
    layers_ = [OV, Layer(BASE, "/a", 1), Layer(BASE, "/b", 2), Layer(BASE, "/c", 3), INTERP]
    assert [layer.name for layer in label_layers(layers_, ["/ov/lib/python3.9/site-packages", "/b"])] == [
        "overlay", "base", "base", "base", "interpreter"
    ]  # fmt: skip
    assert [layer.name for layer in label_layers(layers_, ["/a", "/c"])] == [
        "overlay",
        "base[1]",
        "base[2]",
        "base[3]",
        "interpreter",
    ]


def test_check_names_requirer_requirement_and_both_versions():
    # The case from issue 4, word for word.
    dists = resolve(
        [
            copy("botocore", "1.43.64", OV),
            copy("aiobotocore", "1.4.2", B, "botocore<1.20.107,>=1.20.106"),
            copy("botocore", "1.20.106", B),
        ]
    )
    (problem,) = check_requirements(dists, ENV39)
    assert problem.kind == "conflict"
    assert problem.message() == (
        "aiobotocore 1.4.2 (base) requires botocore<1.20.107,>=1.20.106, "
        "but botocore 1.43.64 from the overlay shadows the base's 1.20.106"
    )
    assert problem.satisfied_by(problem.found.shadowed[0])


def test_shadowed_copies_are_not_checked():
    # The base's old numpy wanted something absent; the overlay's copy, the one imported, does not.
    dists = resolve([copy("numpy", "2.0", OV), copy("numpy", "1.26", B, "absent>=1")])
    assert check_requirements(dists, ENV39) == []
    # The same copy, effective, is reported: the check above is not empty by accident.
    (problem,) = check_requirements(resolve([copy("numpy", "1.26", B, "absent>=1")]), ENV39)
    assert problem.message() == "numpy 1.26 (base) requires absent>=1, but absent is not installed"


def test_markers_use_the_overlay_interpreters_environment():
    dists = resolve(
        [copy("tool", "1", B, 'absent; python_version >= "3.10"', 'lib>=2; python_version < "3.10"'), copy("lib", "1", B)]
    )
    (problem,) = check_requirements(dists, ENV39)
    assert problem.requirement.name == "lib"
    (problem,) = check_requirements(dists, {**ENV39, "python_version": "3.11", "python_full_version": "3.11.7"})
    assert problem.requirement.name == "absent"


def test_extras_apply_only_when_requested_and_propagate():
    client = copy("client", "1", B, 'boto>=9; extra == "s3"', 'client[aws]; extra == "s3"', 'awslib; extra == "aws"')
    alone = resolve([client])
    assert check_requirements(alone, ENV39) == []
    # app asks for client[s3]; s3 asks for client[aws]: both extras' requirements now apply.
    app = copy("app", "1", OV, "client[S3]>=1")
    problems = check_requirements(resolve([client, app]), ENV39)
    assert [(p.requirer.name, p.requirement.name, p.extra, p.kind) for p in problems] == [
        ("client", "awslib", "aws", "missing"),
        ("client", "boto", "s3", "missing"),
    ]
    assert problems[1].message() == "client 1 (base) requires boto>=9 for its extra [s3], but boto is not installed"


def test_unparseable_metadata_warns_instead_of_failing():
    warnings: list[str] = []
    dists = resolve([copy("odd", "1", B, "this is not a requirement", "fine")])
    problems = check_requirements(dists, ENV39, warnings)
    assert [p.requirement.name for p in problems] == ["fine"]
    assert len(warnings) == 1 and "this is not a requirement" in warnings[0]


def test_invalid_versions_and_urls():
    dists = resolve(
        [copy("a", "1", B, "b>=1", "c @ https://example.org/c.whl"), copy("b", "not-a-version", B), copy("c", "0.1", B)]
    )
    (problem,) = check_requirements(dists, ENV39)
    assert problem.requirement.name == "b"
    assert "'not-a-version' (not a PEP 440 version)" in problem.message()


def test_numbered_base_layers_in_messages():
    first, second = Layer(BASE, "/a", 1, "base[1]"), Layer(BASE, "/b", 2, "base[2]")
    dists = resolve([copy("lib", "3", OV), copy("lib", "2", first), copy("lib", "1", second), copy("app", "1", second, "lib<2")])
    (problem,) = check_requirements(dists, ENV39)
    assert problem.message() == "app 1 (base[2]) requires lib<2, but lib 3 from the overlay shadows base[1]'s 2 and base[2]'s 1"


def test_shadowed_dependents():
    dists = resolve(
        [
            copy("numpy", "2.0", OV),
            copy("fresh", "1", OV, "numpy"),  # in the overlay: built against what it got
            copy("numpy", "1.26", B),
            copy("awkward", "1", B, "numpy>=1.20"),  # depends on a shadowed numpy: import it
            copy("plain", "1", B, "six"),  # depends on a base-only copy: nothing to fear
            copy("six", "1", B),
            copy("gated", "1", B, 'numpy; python_version >= "3.10"'),  # inactive requirement
        ]
    )
    found = shadowed_dependents(dists, ENV39)
    assert [(dist.name, [dep.name for dep in deps]) for dist, deps in found] == [("awkward", ["numpy"])]


_NAMES = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,6}[A-Za-z0-9])?", fullmatch=True)
_VERSIONS = st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,3}){0,2}(\.\*|rc1|\.post1|\.dev0)?", fullmatch=True)
_OPS = st.sampled_from(["==", "!=", ">=", "<=", ">", "<", "~=", "==="])
_MARKERS = st.sampled_from(
    [
        "",
        'python_version >= "3.8"',
        "extra == 'S3'",
        'sys_platform == "win32" and extra == "x"',
        '(os_name=="nt") or python_full_version<"3.10"',
    ]
)
_SPACE = st.sampled_from(["", " ", "  "])


@st.composite
def requirement_lines(draw) -> str:
    name = draw(_NAMES)
    extras = draw(st.lists(_NAMES, max_size=2))
    specs = [f"{draw(_OPS)}{draw(_SPACE)}{draw(_VERSIONS)}" for _ in range(draw(st.integers(0, 3)))]
    joined = f"{draw(_SPACE)},{draw(_SPACE)}".join(specs)
    if joined and draw(st.booleans()):
        joined = f"({joined})"
    marker = draw(_MARKERS)
    text = name + draw(_SPACE) + (f"[{', '.join(extras)}]" if extras else "") + draw(_SPACE) + joined
    return text + (f"{draw(_SPACE)};{draw(_SPACE)}{marker}" if marker else "")


@settings(max_examples=400)
@given(st.text(alphabet=st.sampled_from("aZz09-_.~ É"), max_size=12) | st.text(max_size=12))
def test_canonical_name_is_packagings(name):
    # layers normalises names itself (packaging.utils costs ~15 ms to import); it must not differ.
    from packaging.utils import canonicalize_name

    assert layers.canonical_name(name) == canonicalize_name(name)


def _packaging_view(text: str):
    """The parts that matter, as packaging's own Requirement parses them (None if it rejects the text)."""
    from packaging.requirements import InvalidRequirement
    from packaging.requirements import Requirement as PackagingRequirement
    from packaging.utils import canonicalize_name

    try:
        req = PackagingRequirement(text)
    except InvalidRequirement:
        return None
    return (
        canonicalize_name(req.name),
        frozenset(map(canonicalize_name, req.extras)),
        str(req.specifier),
        None if req.marker is None else str(req.marker),
        req.url,
    )


def _our_view(text: str):
    try:
        req = parse_requirement(text)
    except Exception:
        return None
    return req.name, req.extras, str(req.specifier), None if req.marker is None else str(req.marker), req.url


@settings(max_examples=400)
@given(requirement_lines())
def test_fast_requirement_parser_agrees_with_packaging(text):
    assert _our_view(text) == _packaging_view(text)


@settings(max_examples=400)
@given(st.text(alphabet="ab1.[]()<>=!~,;' \"@-_:/*", max_size=30))
def test_fast_requirement_parser_agrees_with_packaging_on_junk(text):
    assert _our_view(text) == _packaging_view(text)


def test_modules_from_files():
    record = [
        "pkg/__init__.py",
        "pkg/sub/mod.py",
        "single.py",
        "_speedups.cpython-39-x86_64-linux-gnu.so",
        "pkg-1.0.dist-info/METADATA",
        "pkg-1.0.data/scripts/tool",
        "../../../bin/tool",
        "__pycache__/single.cpython-39.pyc",
        "pkg-nspkg.pth",
        "README.txt",
        "not-a-name/x.py",
    ]
    assert modules_from_files(record) == ["_speedups", "pkg", "single"]


def test_read_headers_reads_only_the_header_block(tmp_path):
    meta = tmp_path / "METADATA"
    meta.write_bytes(
        b"Metadata-Version: 2.1\r\nName: Foo_Bar\r\nVersion: 1.0\r\nLicense: line one\r\n  line two\r\n"
        b"Requires-Dist: a>=1\r\nRequires-Dist: b; extra == 'x'\r\n\r\nRequires-Dist: not-a-header\r\n"
    )
    headers = read_headers(str(meta))
    assert headers["name"] == ["Foo_Bar"]
    assert headers["license"] == ["line one line two"]
    assert headers["requires-dist"] == ["a>=1", "b; extra == 'x'"]


@pytest.mark.parametrize("pad", [0, 16384 - 60, 16384 - 1, 16384, 40000])
def test_read_headers_past_the_first_chunk(tmp_path, pad):
    # Headers longer than the first read (many classifiers), and a blank line on either side of the
    # chunk boundary: the same headers whatever the size.
    classifiers = b"".join(b"Classifier: Topic :: %05d\n" % i for i in range(pad // 26))
    head = b"Name: big\nVersion: 2\n" + classifiers + b"Requires-Dist: late>=1\n"
    meta = tmp_path / "METADATA"
    meta.write_bytes(head + b"\n" + b"x" * pad + b"\nRequires-Dist: body\n")
    headers = read_headers(str(meta))
    assert headers["name"] == ["big"] and headers["requires-dist"] == ["late>=1"]
    meta.write_bytes(head)  # no body at all
    assert read_headers(str(meta))["requires-dist"] == ["late>=1"]


def test_job_pythonpath():
    overlay = Path("/w/myenv")
    activated = {"PYTHONPATH": "/w/myenv/lib/python3.9/site-packages:/rel/site", "VIRTUAL_ENV": "/w/myenv"}
    assert job_pythonpath(activated, overlay, "/recorded") == ("/rel/site", "environment")
    # Another overlay active in this shell: its entries are not what a job of myenv sees.
    other = {"PYTHONPATH": "/w/other/lib/site:/rel/site", "VIRTUAL_ENV": "/w/other"}
    assert job_pythonpath(other, overlay, None) == ("/rel/site", "environment")
    assert job_pythonpath({}, overlay, "/recorded") == ("/recorded", "record")
    assert job_pythonpath({"PYTHONPATH": "/w/myenv/lib/site"}, overlay, None) == (None, "none")


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert colour_enabled(FakeTTY())
    assert not colour_enabled(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not colour_enabled(FakeTTY())


def test_align_pads_before_colouring():
    rows = [["corelib", "1.43", "overlay", "shadows 1.20 base"], ["pip", "24.0", "overlay"]]
    plain = align(rows)
    assert plain == ["corelib  1.43  overlay  shadows 1.20 base", "pip      24.0  overlay"]
    coloured = align(rows, [[None, None, "green", "yellow"], [None, None, "green"]], colour=True)
    assert [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in coloured] == plain
    assert "\x1b[" in coloured[0]


# --------------------------------------------------------------------------------------------------
# The commands on a real release and real overlays

CLIENTLIB = """\
import corelib
if not corelib.__version__.startswith("1.20"):
    raise ImportError("clientlib needs corelib 1.20.x, found " + corelib.__version__)
"""
SLOWLIB = "import os, time\ntime.sleep(float(os.environ.get('SLOWLIB_SECONDS', '0')))\n"


@pytest.fixture(scope="module")
def layered(tmp_path_factory):
    """The release of the module docstring, read-only."""
    root = tmp_path_factory.mktemp("layered")
    rel = build_release(root, "3.9", base=("basepkg==1.0", "corelib==1.20"), wheels=("basepkg==2.0",))
    build = root / "build"
    base_wheels = [
        make_base.build_wheel(
            build, "clientlib", "1.4", requires=("corelib>=1.20,<1.21",), modules={"clientlib/__init__.py": CLIENTLIB}
        ),
        make_base.build_wheel(build, "shadowme", "1.0", requires=("missingdep>=1",)),
        make_base.build_wheel(
            build, "markerlib", "1.0", requires=('absentlib>=1; python_version >= "3.10"', 'basepkg>=1; python_version < "3.10"')
        ),
        make_base.build_wheel(build, "slowlib", "1.0", requires=("basepkg",), modules={"slowlib.py": SLOWLIB}),
        make_base.build_wheel(build, "interplib", "0.2"),
    ]
    for wheel in base_wheels:
        make_base.install_wheel(wheel, rel.site)
    interpreter_site = next((rel.root / "python" / "lib").glob("python3.*")) / "site-packages"
    make_base.install_wheel(make_base.build_wheel(build / "interp", "interplib", "0.1"), interpreter_site)
    for name, version in [("corelib", "1.43"), ("corelib", "1.20.5"), ("shadowme", "2.0")]:
        make_base.build_wheel(rel.wheels, name, version)
    rel.mounted = make_read_only(rel.root)
    yield rel
    if rel.mounted:
        subprocess.run(["umount", str(rel.root)], check=False)


@pytest.fixture(scope="module")
def broken(layered, tmp_path_factory) -> Path:
    return make_overlay(
        layered, tmp_path_factory.mktemp("broken") / "env", install=("corelib==1.43", "shadowme==2.0", "basepkg==2.0")
    )


@pytest.fixture(scope="module")
def healthy(layered, tmp_path_factory) -> Path:
    return make_overlay(layered, tmp_path_factory.mktemp("healthy") / "env", install=("corelib==1.20.5", "shadowme==2.0"))


@pytest.fixture(scope="module")
def bare(layered, tmp_path_factory) -> Path:
    return make_overlay(layered, tmp_path_factory.mktemp("bare") / "env", install=())


def activated_env(release, overlay: Path) -> dict[str, str]:
    """What `source NAME/bin/activate` leaves (the activation scripts have their own tests)."""
    site = next((overlay / "lib").glob("python3.*")) / "site-packages"
    return release.env(
        PYTHONPATH=f"{site}:{release.site}", VIRTUAL_ENV=str(overlay), PATH=f"{overlay}/bin:{release.env()['PATH']}"
    )


def list_json(overlay, env, *args) -> dict:
    document = json.loads(overlay_venv("list", *([str(overlay)] if overlay else []), "--json", *args, env=env).stdout)
    assert conforms(document, LIST_SCHEMA) == []
    return document


def rows(document) -> dict[str, tuple]:
    return {
        d["name"]: (d["version"], d["label"], [(s["version"], s["label"]) for s in d["shadows"]])
        for d in document["distributions"]
    }


def test_check_reports_the_broken_base_package(layered, broken):
    result = overlay_venv("check", str(broken), env=layered.env(NO_COLOR="1"), check=False)
    assert result.returncode == 1, result.stderr
    assert (
        "clientlib 1.4 (base) requires corelib<1.21,>=1.20, but corelib 1.43 from the overlay shadows the base's 1.20"
        in result.stdout
    )
    # shadowme 1.0 (base) requires an absent package, but the overlay's 2.0 is what Python imports.
    assert "shadowme" not in result.stdout
    # markerlib's Python 3.10+ requirement does not apply to this 3.9 overlay, though the CLI runs on
    # whatever Python it was installed with.
    assert "absentlib" not in result.stdout
    assert "\x1b[" not in result.stdout


def test_list_shows_layers_and_shadowed_copies(layered, broken):
    text = overlay_venv("list", str(broken), env=layered.env()).stdout
    assert re.search(r"^corelib\s+1\.43\s+overlay\s+shadows 1\.20 base$", text, re.M), text
    assert re.search(r"^basepkg\s+2\.0\s+overlay\s+shadows 1\.0 base$", text, re.M), text
    assert re.search(r"^interplib\s+0\.2\s+base\s+shadows 0\.1 interpreter$", text, re.M), text
    assert re.search(r"^clientlib\s+1\.4\s+base$", text, re.M), text
    # Aligned: the version column starts at the same place on every row.
    starts = {line.index(line.split()[1], len(line.split()[0])) for line in text.splitlines()}
    assert len(starts) == 1, text


def test_list_is_what_python_imports_activated_or_not(layered, broken):
    unactivated = list_json(broken, layered.env())
    activated = list_json(None, activated_env(layered, broken))
    assert rows(unactivated) == rows(activated)
    assert unactivated["pythonpath"] == str(layered.site) and unactivated["pythonpath_source"] == "environment"
    shown = rows(unactivated)
    for env in (layered.env(), activated_env(layered, broken)):
        for module in ("corelib", "basepkg", "shadowme", "interplib"):
            code = f"import importlib.metadata as m; print(m.version({module!r}))"
            imported = subprocess.run(
                [str(broken / "bin" / "python"), "-c", code], env=env, capture_output=True, text=True, check=True
            )
            assert imported.stdout.strip() == shown[module][0], module


def test_list_without_pythonpath_uses_the_recorded_one(layered, broken):
    env = layered.env()
    del env["PYTHONPATH"]
    document = list_json(broken, env)
    assert document["pythonpath_source"] == "record"
    assert rows(document) == rows(list_json(broken, layered.env()))


def test_list_filters(layered, broken):
    only = rows(list_json(broken, layered.env(), "--overlay-only"))
    assert set(only) == {"corelib", "basepkg", "shadowme", "pip"}
    shadowing = rows(list_json(broken, layered.env(), "--shadowed"))
    assert set(shadowing) == {"corelib", "basepkg", "shadowme", "interplib"}
    both = overlay_venv("list", str(broken), "--overlay-only", "--shadowed", env=layered.env()).stdout
    assert {line.split()[0] for line in both.splitlines()} == {"corelib", "basepkg", "shadowme"}


def test_several_base_entries_are_numbered(layered, broken, tmp_path):
    extra = tmp_path / "extra-site"
    make_base.install_wheel(make_base.build_wheel(tmp_path / "w", "corelib", "1.19"), extra)
    env = layered.env(PYTHONPATH=f"{extra}:{layered.site}")
    text = overlay_venv("list", str(broken), env=env).stdout
    assert re.search(r"^corelib\s+1\.43\s+overlay\s+shadows 1\.19 base\[1\], 1\.20 base\[2\]$", text, re.M), text
    assert re.search(rf"^base\[1\]\s+{re.escape(str(extra))}$", text, re.M), text
    document = list_json(broken, env)
    assert rows(document)["corelib"][2] == [("1.19", "base[1]"), ("1.20", "base[2]")]
    assert [s["path"] for s in next(d for d in document["distributions"] if d["name"] == "corelib")["shadows"]] == [
        str(extra),
        str(layered.site),
    ]
    check = overlay_venv("check", str(broken), env=env, check=False).stdout
    assert "but corelib 1.43 from the overlay shadows base[1]'s 1.19 and base[2]'s 1.20" in check


def test_check_healthy_overlay_exits_0(layered, healthy):
    result = overlay_venv("check", str(healthy), env=layered.env(), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no broken requirements" in result.stdout


def test_base_problems_show_when_nothing_shadows_them(layered, bare):
    # Without the overlay's shadowme 2.0, the release's own broken copy is the effective one.
    result = overlay_venv("check", str(bare), env=layered.env(), check=False)
    assert result.returncode == 1
    assert "shadowme 1.0 (base) requires missingdep>=1, but missingdep is not installed" in result.stdout


def test_check_json(layered, broken, healthy):
    result = overlay_venv("check", str(broken), "--json", env=layered.env(), check=False)
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert conforms(document, CHECK_SCHEMA) == []
    assert document["ok"] is False and document["imports"] is None
    (problem,) = document["problems"]
    assert problem["distribution"]["name"] == "clientlib" and problem["distribution"]["layer"] == "base"
    assert problem["found"]["version"] == "1.43" and problem["found"]["layer"] == "overlay"
    assert problem["shadowed"] == [
        {
            "version": "1.20",
            "layer": "base",
            "label": "base",
            "path": str(layered.site),
            "editable": False,
            "source": None,
            "satisfies": True,
        }
    ]
    good = json.loads(overlay_venv("check", str(healthy), "--json", "--imports", env=layered.env()).stdout)
    assert conforms(good, CHECK_SCHEMA) == []
    assert good["ok"] is True and good["problems"] == [] and good["imports"]["failures"] == []


def test_check_imports_reports_a_module_broken_by_a_shadowing_dependency(layered, broken):
    result = overlay_venv("check", str(broken), "--imports", env=layered.env(), check=False)
    assert result.returncode == 1
    assert "clientlib 1.4 (base): import clientlib: ImportError: clientlib needs corelib 1.20.x, found 1.43" in result.stdout
    document = json.loads(overlay_venv("check", str(broken), "--imports", "--json", env=layered.env(), check=False).stdout)
    assert conforms(document, CHECK_SCHEMA) == []
    # Every release package depending on a shadowed copy was tried; only clientlib failed.
    tried = {(item["distribution"], item["module"]) for item in document["imports"]["checked"]}
    assert tried == {("clientlib", "clientlib"), ("slowlib", "slowlib"), ("markerlib", "markerlib")}
    assert [(f["module"], f["timed_out"]) for f in document["imports"]["failures"]] == [("clientlib", False)]


def test_check_imports_on_a_healthy_overlay_reports_nothing(layered, healthy):
    result = overlay_venv("check", str(healthy), "--imports", env=layered.env())
    assert "import fails" not in result.stdout
    assert re.search(r"1 module of 1 distribution depending on shadowed copies imported$", result.stdout, re.M), result.stdout


def test_check_imports_times_out(layered, broken):
    started = time.monotonic()
    result = overlay_venv("check", str(broken), "--imports", "--timeout", "2", env=layered.env(SLOWLIB_SECONDS="60"), check=False)
    assert time.monotonic() - started < 30
    assert "slowlib 1.0 (base): import slowlib: timed out after 2 s" in result.stdout


@pytest.mark.parametrize("cmd", ["list", "check"])
def test_errors_are_one_line(layered, tmp_path, cmd):
    env = layered.env()
    env.pop("VIRTUAL_ENV", None)
    no_overlay = overlay_venv(cmd, env=env, check=False)
    not_overlay = overlay_venv(cmd, str(tmp_path), env=env, check=False)
    for result, words in [(no_overlay, "no overlay is active"), (not_overlay, "is not an overlay")]:
        assert result.returncode != 0 and result.stdout == ""
        assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("overlay-venv: error: "), result.stderr
        assert words in result.stderr


@pytest.mark.parametrize("cmd", ["list", "check"])
def test_help_has_examples(cmd):
    result = subprocess.run([sys.executable, "-m", "overlay_venv", cmd, "--help"], capture_output=True, text=True, check=True)
    assert "Examples:" in result.stdout and f"overlay-venv {cmd} myenv" in result.stdout


def test_effective_distributions_for_other_commands(layered, broken):
    """The entry point `install` builds on: layer and requirements of each imported copy."""
    env = {**layered.env(), "PATH": os.environ["PATH"]}
    dists = {d.name: d for d in layers.effective_distributions(broken, env)}
    assert dists["clientlib"].layer.kind == BASE and dists["clientlib"].requires == ("corelib>=1.20,<1.21",)
    assert dists["corelib"].layer.kind == OVERLAY and [c.version for c in dists["corelib"].shadowed] == ["1.20"]


def test_scan_entry_reads_every_metadata_layout(tmp_path):
    site = tmp_path / "site"
    make_base.install_wheel(make_base.build_wheel(tmp_path / "w", "Wheel_Dist", "1.0", requires=("dep>=1",)), site)
    egg = site / "old_dist-2.0-py3.9.egg-info"
    egg.mkdir()
    (egg / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: old-dist\nVersion: 2.0\n")
    (egg / "requires.txt").write_text("plain>=1\n\n[fast]\nspeedy\n")
    (site / "distutils_thing-0.5.egg-info").write_text("Metadata-Version: 1.0\nName: distutils-thing\nVersion: 0.5\n")
    (site / "empty-1.0.dist-info").mkdir()  # no METADATA: a leftover, not an installed distribution
    found = {item.display_name: (item.version, item.requires) for item in layers.scan_entry(str(site))}
    assert found == {
        "Wheel_Dist": ("1.0", ("dep>=1",)),
        "old-dist": ("2.0", ("plain>=1", 'speedy; extra == "fast"')),
        "distutils-thing": ("0.5", ()),
    }
    assert layers.scan_entry(str(tmp_path / "missing")) == []


def test_top_level_modules_prefers_top_level_txt(tmp_path):
    site = tmp_path / "site"
    modules = {"pkg_a/__init__.py": "", "helper.py": ""}
    make_base.install_wheel(make_base.build_wheel(tmp_path / "w", "two-mods", "1.0", modules=modules), site)
    info = next(site.glob("two_mods-*.dist-info"))
    as_copy = copy("two-mods", "1.0", B)
    assert layers.top_level_modules(replace(as_copy, location=str(info))) == ["helper", "pkg_a"]
    (info / "top_level.txt").write_text("pkg_a\n")
    assert layers.top_level_modules(replace(as_copy, location=str(info))) == ["pkg_a"]


def test_text_output_says_when_the_recorded_pythonpath_stands_in(tmp_path):
    """Without a release set up in the shell, list and check read the layers with the PYTHONPATH
    recorded at creation, and say so on stderr (the JSON's pythonpath_source says it too)."""
    from conftest import build_release, clean_env, make_overlay, overlay_venv

    release = build_release(tmp_path / "rel", "3.9")
    overlay = make_overlay(release, tmp_path / "env")
    for command in ("list", "check"):
        result = overlay_venv(command, str(overlay), env=clean_env())
        assert "recorded at creation" in result.stderr
        assert "recorded at creation" not in overlay_venv(command, str(overlay), env=release.env()).stderr


# --------------------------------------------------------------------------------------------------
# The probe: one start of the overlay's interpreter, without json or platform (layers/probe.py).

PACKAGING_ENVIRONMENT = "from pip._vendor.packaging.markers import default_environment; print(repr(default_environment()))"


def test_the_probes_marker_environment_is_packagings_on_each_base(release, overlay):
    from overlay_venv.layers.probe import probe as run_probe

    info = run_probe(str(overlay / "bin" / "python"), release.env())
    ask = [str(overlay / "bin" / "python"), "-c", PACKAGING_ENVIRONMENT]
    shown = subprocess.run(ask, env=release.env(), capture_output=True, text=True, check=True)
    import ast

    assert info.marker_environment == ast.literal_eval(shown.stdout.strip())


def test_the_probe_brings_back_any_path_in_any_locale(release, overlay, tmp_path):
    from overlay_venv.layers.probe import probe as run_probe

    # A non-ASCII name and one that is not even UTF-8 (surrogateescape), with an ASCII-only locale.
    odd = [tmp_path / "r\u00e9lease-\u6f22", Path(os.fsdecode(bytes(tmp_path / "raw") + b"-\xff\xfe"))]
    for directory in odd:
        directory.mkdir()
    env = release.env(PYTHONPATH=os.pathsep.join([*map(str, odd), str(release.site)]), LANG="C", LC_ALL="C")
    info = run_probe(str(overlay / "bin" / "python"), env)
    assert [entry for entry in info.sys_path if entry in map(str, odd)] == [str(d) for d in odd]


# --------------------------------------------------------------------------------------------------
# Markers of the common shapes, evaluated without packaging.markers (layers/markers.py): the same
# answers as packaging on generated markers and environments.

_MARKER_VARIABLES = [
    "extra", "python_version", "python_full_version", "sys_platform", "platform_system", "os_name",
    "implementation_name", "platform_python_implementation", "platform_machine", "platform_release",
]  # fmt: skip
_MARKER_OPS = ["==", "!=", "<", "<=", ">", ">=", "~=", "===", "in", "not in"]
_MARKER_VALUES = [
    "docs", "Docs_X", "docs-x", "v1", "1", "3", "3.6", "3.9", "3.10", "3.9.18", "3.13.0rc1", "3.*", "3.9.*",
    "linux", "win32", "Linux", "Windows", "cpython", "CPython", "PyPy", "x86_64", "posix", "", "a b", "1.0.post1",
]  # fmt: skip
_MARKER_ENVIRONMENTS = [
    {**ENV39, "python_full_version": full, "python_version": short, "sys_platform": platform, "extra": extra,
     "platform_system": "Linux", "implementation_name": "cpython", "platform_python_implementation": "CPython",
     "platform_machine": "x86_64", "platform_release": "6.1.0", "platform_version": "#1 SMP",
     "implementation_version": full.rstrip("+")}
    for short, full in (("3.9", "3.9.18"), ("3.13", "3.13.0rc1"), ("3.11", "3.11.7+"))
    for platform in ("linux", "win32")
    for extra in ("", "docs", "Docs.X")
]  # fmt: skip


_VERSIONS_ONLY = [value for value in _MARKER_VALUES if value[:1].isdigit()]
_NAMES_ONLY = [value for value in _MARKER_VALUES if not value[:1].isdigit() and value != "v1"]


@st.composite
def _marker_texts(draw, depth=0, common=False):
    """Markers of any of the pieces above; ``common``: only the shapes markers.py evaluates itself."""
    if depth < 2 and draw(st.integers(0, 2)) == 0:
        left, right = draw(_marker_texts(depth + 1, common)), draw(_marker_texts(depth + 1, common))
        joined = f"{left}{draw(_SPACE)} {draw(st.sampled_from(['and', 'or']))} {draw(_SPACE)}{right}"
        return f"({joined})" if draw(st.booleans()) else joined
    quote = draw(st.sampled_from(["'", '"']))
    if common:
        variable = draw(st.sampled_from(_MARKER_VARIABLES[:-1]))
        if variable.startswith("python_"):
            op, value = draw(st.sampled_from(_MARKER_OPS[:7])), draw(st.sampled_from(_VERSIONS_ONLY))
        else:
            op, value = draw(st.sampled_from(["==", "!="])), draw(st.sampled_from(_NAMES_ONLY))
    else:
        variable, op, value = (draw(st.sampled_from(options)) for options in (_MARKER_VARIABLES, _MARKER_OPS, _MARKER_VALUES))
    text = f"{variable}{draw(_SPACE)} {op} {draw(_SPACE)}{quote}{value}{quote}"
    return f"({text})" if draw(st.booleans()) else text


def _outcome(marker, environment):
    try:
        return marker.evaluate(environment)
    except Exception as exc:
        return type(exc).__name__


@settings(max_examples=300, deadline=None)
@given(_marker_texts() | _marker_texts(common=True))
def test_simple_markers_evaluate_as_packaging_does(text):
    from packaging.markers import Marker

    from overlay_venv.layers.markers import simple_marker

    ours = simple_marker(text)
    if ours is None:
        return  # packaging's Marker evaluates it
    theirs = Marker(text)  # what this module accepts, packaging parses
    assert str(ours) == str(theirs)
    for environment in _MARKER_ENVIRONMENTS:
        assert _outcome(ours, environment) == _outcome(theirs, environment), environment


@pytest.mark.parametrize(
    "text",
    [
        'extra == "docs"',
        "extra == 'test'",
        'python_version < "3.10"',
        'sys_platform == "win32" and python_version >= "3.8"',
        "(platform_python_implementation != \"PyPy\") and extra == 'testing'",
        'python_version >= "3.6" or (os_name == "nt" and extra == "win")',
    ],
)
def test_the_common_markers_take_the_simple_path(text):
    from overlay_venv.layers.markers import simple_marker

    assert simple_marker(text) is not None


@pytest.mark.parametrize(
    "text", ['"3.6" <= python_version', 'extra == "1"', 'platform_release >= "5"', 'os_name in "posix"', "extra == 'a' and", ""]
)
def test_other_markers_are_left_to_packaging(text):
    from overlay_venv.layers.markers import simple_marker

    assert simple_marker(text) is None
