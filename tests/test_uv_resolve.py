"""`install --installer uv`: uv resolves with every layer in view and ends where pip ends.

The same requests go through the pip path and the uv path, each on a fresh overlay of the same
read-only release (3.9 and 3.13), from a local wheelhouse: the same distributions and versions end up
in the overlay, with the same files (RECORD-listed paths; INSTALLER, uv's uv_cache.json and uv_build.json, and bytecode
aside: pip compiles, uv leaves that to the first import), the same holds kept and the same refusals.
The pre-flight is off (OVERLAY_VENV_PREFLIGHT=0) so the installers themselves decide.

Then the pieces on real uv output: the dry-run plan and uv's "No solution found" words, and pip's
configuration carried over to uv.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import textwrap
from pathlib import Path

import make_base
import pytest
from capabilities import require_uv
from conftest import BASE_PYTHONS, build_release, make_overlay, make_read_only, overlay_venv
from test_editable import WHEELHOUSE, require_wheelhouse

from overlay_venv.backends import pip_settings, uv_conflict, uv_resolve

IGNORED = ("INSTALLER", "uv_cache.json", "uv_build.json")  # each installer's own notes


@pytest.fixture(scope="module", params=BASE_PYTHONS, ids=lambda minor: f"py{minor}")
def rel(request, tmp_path_factory):
    """A release with corelib 1.20.0 (pinned by its clientlib), six 1.16.0 (needed by nobody) and
    a wheelhouse of newer and new distributions: extras, markers, a pre-release, console scripts."""
    root = tmp_path_factory.mktemp(f"uvres{request.param}")
    rel = build_release(root, request.param, base=("corelib==1.20.0", "six==1.16.0"), wheels=())
    make_base.install_wheel(make_base.build_wheel(root / "build", "clientlib", "1.4", requires=("corelib==1.20.*",)), rel.site)
    wheel = make_base.build_wheel
    wheel(rel.wheels, "tool", "2.0", requires=("corelib>=1.43",), console_scripts={"tool-cli": "tool:main"})
    wheel(rel.wheels, "tool", "1.5", requires=("corelib>=1.20,<1.21",), console_scripts={"tool-cli": "tool:main"})
    wheel(rel.wheels, "corelib", "1.43.0")
    wheel(rel.wheels, "six", "1.17.0")
    wheel(rel.wheels, "helper", "1.0")
    wheel(rel.wheels, "oldpy", "1.0")
    # The extra declared (make_base writes Requires-Dist lines only): pip ignores an undeclared extra, uv not.
    app_requires = ("tool", "six>=1.16", 'helper; extra == "extra"\nProvides-Extra: extra', 'oldpy; python_version < "3.10"')
    wheel(rel.wheels, "app", "1.0", requires=app_requires)
    wheel(rel.wheels, "early", "1.0")
    wheel(rel.wheels, "early", "2.0rc1")
    wheel(rel.wheels, "needsix", "1.0", requires=("six>=1.17",))
    rel.mounted = make_read_only(rel.root)
    yield rel
    if rel.mounted:
        subprocess.run(["umount", str(rel.root)], check=False)


def env_of(rel, **extra) -> dict[str, str]:
    return rel.env(PIP_CONFIG_FILE=os.devnull, UV_NO_CONFIG="1", NO_COLOR="1", OVERLAY_VENV_PREFLIGHT="0", **extra)


def project(root: Path) -> Path:
    """A hatchling project, installed editable."""
    (root / "src" / "proj").mkdir(parents=True)
    (root / "src" / "proj" / "__init__.py").write_text("")
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            """\
            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"

            [project]
            name = "proj"
            version = "0.3"
            dependencies = ["six"]

            [tool.hatch.build.targets.wheel]
            packages = ["src/proj"]
            """
        )
    )
    return root


SCENARIOS = {
    "shadow-named": ["six==1.17.0"],  # a base package named: the overlay gets its own
    "held": ["tool"],  # tool 2.0 needs a newer corelib, held: tool 1.5
    "refused": ["tool==2.0"],
    "allow-shadow": ["tool==2.0", "--allow-shadow", "corelib"],
    "extras-markers": ["app[extra]"],
    "pre": ["--pre", "early"],
    "no-pre": ["early"],
    "upgrade": ["-U", "six"],  # named with --upgrade: moves; its dependents' held packages do not
    "kept": ["six"],  # the base's satisfies: nothing installed
    "requirements-file": ["-r", "{tmp}/requirements.txt", "-c", "{tmp}/constraints.txt"],
    "wheel-path": ["{wheels}/six-1.17.0-py3-none-any.whl"],
    "missing": ["nosuch"],
    "editable": ["-e", "{tmp}/proj", "-f", str(WHEELHOUSE)],
}


@pytest.fixture(scope="module")
def outcome(rel, tmp_path_factory):
    """One scenario on a fresh overlay per installer, run once: (overlay, result)."""
    cache: dict = {}

    def run(scenario: str, installer: str):
        if installer == "uv":
            require_uv()
        if scenario == "editable":
            require_wheelhouse()
        if (scenario, installer) not in cache:
            tmp = tmp_path_factory.mktemp(f"{scenario}-{installer}")
            (tmp / "requirements.txt").write_text("app\n")
            (tmp / "constraints.txt").write_text("six==1.17.0\n")
            project(tmp / "proj")
            overlay = make_overlay(rel, tmp / "env", install=())
            args = [arg.format(tmp=tmp, wheels=rel.wheels) for arg in SCENARIOS[scenario]]
            sources = ["--no-index", "-f", str(rel.wheels)]
            result = overlay_venv(
                "install", "--overlay", str(overlay), "--installer", installer, *sources, *args, env=env_of(rel), check=False
            )
            cache[scenario, installer] = (overlay, result)
        return cache[scenario, installer]

    return run


def installed_files(overlay: Path) -> dict[str, set[str]]:
    """The overlay's own distributions (pip aside), each with the paths its RECORD lists."""
    site = next((overlay / "lib").glob("python3.*")) / "site-packages"
    found = {}
    for entry in site.glob("*.dist-info"):
        if entry.name.startswith("pip-"):
            continue
        with open(entry / "RECORD", newline="", encoding="utf-8") as handle:
            paths = {row[0] for row in csv.reader(handle) if row}
        found[entry.name] = {
            path
            for path in paths
            if not path.endswith(".pyc") and "__pycache__" not in path and path.rsplit("/", 1)[-1] not in IGNORED
        }
    return found


def listing(rel, overlay: Path) -> dict[str, tuple]:
    document = json.loads(overlay_venv("list", str(overlay), "--json", env=env_of(rel)).stdout)
    return {d["name"]: (d["version"], d["label"]) for d in document["distributions"]}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_uv_installs_what_pip_installs(rel, outcome, scenario):
    pip_overlay, pip_result = outcome(scenario, "pip")
    uv_overlay, uv_result = outcome(scenario, "uv")
    assert pip_result.returncode == uv_result.returncode, pip_result.stderr + uv_result.stderr
    assert listing(rel, uv_overlay) == listing(rel, pip_overlay)
    assert installed_files(uv_overlay) == installed_files(pip_overlay)
    # uv decided: pip did not run (no fallback was announced).
    assert "pip resolves this install" not in uv_result.stderr


def test_the_scenarios_end_as_pip_decides(rel, outcome):
    """What pip's path gives, so the comparison above compares something."""
    rows = {scenario: listing(rel, outcome(scenario, "uv")[0]) for scenario in ("shadow-named", "held", "extras-markers")}
    assert rows["shadow-named"]["six"] == ("1.17.0", "overlay")
    assert rows["held"]["tool"] == ("1.5", "overlay") and rows["held"]["corelib"] == ("1.20.0", "base")
    assert ("oldpy" in rows["extras-markers"]) is (rel.minor == "3.9") and "helper" in rows["extras-markers"]
    assert listing(rel, outcome("pre", "uv")[0])["early"][0] == "2.0rc1"
    assert listing(rel, outcome("no-pre", "uv")[0])["early"][0] == "1.0"
    assert outcome("kept", "uv")[1].stdout.startswith("nothing to install")
    assert listing(rel, outcome("upgrade", "uv")[0])["six"] == ("1.17.0", "overlay")
    assert listing(rel, outcome("requirements-file", "uv")[0])["six"] == ("1.17.0", "overlay")


def explanation(stderr: str) -> list[str]:
    """The lines from "cannot install" to the error line (pip's progress comes before)."""
    lines = stderr.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("cannot install")), len(lines))
    return [line for line in lines[start:] if not line.startswith("overlay-venv: error:")]


def test_a_refusal_is_explained_by_the_holds_with_uv_too(outcome):
    _, pip_result = outcome("refused", "pip")
    _, uv_result = outcome("refused", "uv")
    assert uv_result.returncode == 1
    said = explanation(uv_result.stderr)
    assert "  tool 2.0 requires corelib>=1.43" in said
    assert "  corelib is held at the base's 1.20.0: clientlib 1.4 (base) requires corelib==1.20.*" in said
    assert "'tool<2.0'" in uv_result.stderr and "--allow-shadow corelib" in uv_result.stderr
    assert uv_result.stderr.splitlines()[-1] == (
        "overlay-venv: error: uv failed (exit status 1): nothing was installed; the overlay is unchanged"
    )
    # The same explanation as pip's path, line for line, but for the tool named in the last line.
    assert said == explanation(pip_result.stderr)


def test_a_lower_overlay_counts_as_installed(rel, tmp_path):
    """A stacked overlay: what the lower one has is not installed again by uv (create --on)."""
    require_uv()
    env = env_of(rel)
    lower = make_overlay(rel, tmp_path / "lower", install=("six==1.17.0",))
    results = {}
    for installer in ("pip", "uv"):
        upper = tmp_path / f"upper-{installer}"
        overlay_venv("create", str(upper), "--on", str(lower), env=env)
        overlay_venv(
            "install", "--overlay", str(upper), "--installer", installer, "--no-index", "-f", str(rel.wheels), "needsix", env=env
        )
        results[installer] = listing(rel, upper)
    assert results["uv"] == results["pip"]
    assert results["uv"]["six"][0] == "1.17.0" and results["uv"]["six"][1] != "overlay"


def test_pip_configuration_reaches_uv(rel, tmp_path):
    """find-links and no-index from a pip.conf (PIP_CONFIG_FILE) are uv's too; a setting uv has no
    counterpart for makes pip resolve, said in one line, and the overlay ends the same."""
    require_uv()
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\nno-index = true\nfind-links = {rel.wheels}\n")
    env = {**env_of(rel), "PIP_CONFIG_FILE": str(conf)}
    overlay = make_overlay(rel, tmp_path / "env", install=())
    result = overlay_venv("install", "--overlay", str(overlay), "--installer", "uv", "tool", env=env)
    assert "pip resolves" not in result.stderr and listing(rel, overlay)["tool"] == ("1.5", "overlay")

    conf.write_text(f"[global]\nno-index = true\nfind-links = {rel.wheels}\n[install]\nprefer-binary = true\n")
    other = make_overlay(rel, tmp_path / "other", install=())
    result = overlay_venv("install", "--overlay", str(other), "--installer", "uv", "tool", env=env)
    said = [line for line in result.stderr.splitlines() if "pip resolves" in line]
    why = f"pip's setting prefer-binary ({conf}) has no uv counterpart"
    assert said == [f"overlay-venv: warning: pip resolves this install, uv installs it: {why}"]
    assert listing(rel, other)["tool"] == ("1.5", "overlay")


def test_hash_checked_requirements_stay_with_pip(rel, tmp_path):
    """uv would get pins without their hashes: pip installs a hash-checked file, and says so."""
    require_uv()
    import hashlib

    wheel = rel.wheels / "six-1.17.0-py3-none-any.whl"
    (tmp_path / "inner.txt").write_text(f"six==1.17.0 --hash=sha256:{hashlib.sha256(wheel.read_bytes()).hexdigest()}\n")
    (tmp_path / "requirements.txt").write_text("-r inner.txt\n")
    overlay = make_overlay(rel, tmp_path / "env", install=())
    sources = ["--no-index", "-f", str(rel.wheels)]
    args = ["--installer", "uv", *sources, "-r", str(tmp_path / "requirements.txt")]
    result = overlay_venv("install", "--overlay", str(overlay), *args, env=env_of(rel))
    assert "overlay-venv: warning: pip installs this: hash-checked requirements (--hash) are checked by pip" in result.stderr
    site = next((overlay / "lib").glob("python3.*")) / "site-packages"
    assert (site / "six-1.17.0.dist-info" / "INSTALLER").read_text().strip() == "pip"


def test_what_uv_cannot_read_pip_resolves(rel, tmp_path):
    """A requirements line pip takes and uv refuses (a per-requirement --config-settings): pip
    resolves, uv installs, said in one line; the overlay ends as with pip alone."""
    require_uv()
    (tmp_path / "requirements.txt").write_text("six==1.17.0 --config-settings=editable_mode=compat\n")
    overlays = {}
    for installer in ("pip", "uv"):
        overlays[installer] = make_overlay(rel, tmp_path / installer, install=())
        args = ["--installer", installer, "--no-index", "-f", str(rel.wheels), "-r", str(tmp_path / "requirements.txt")]
        result = overlay_venv("install", "--overlay", str(overlays[installer]), *args, env=env_of(rel))
    said = [line for line in result.stderr.splitlines() if "pip resolves" in line]
    assert len(said) == 1 and "uv could not resolve it (error: " in said[0], result.stderr
    assert listing(rel, overlays["uv"]) == listing(rel, overlays["pip"])
    assert installed_files(overlays["uv"]) == installed_files(overlays["pip"])


def test_a_version_uv_cannot_compare_is_named():
    class Distribution:
        display_name, version = "oddpkg", "2.0-custom_build"

    assert uv_resolve.why_not_uv([Distribution()]) == "oddpkg 2.0-custom_build is not a PEP 440 version, which uv cannot compare"


# --------------------------------------------------------------------------------------------------
# The pieces, on real uv output


@pytest.fixture(scope="module")
def view_output(tmp_path_factory):
    """uv's dry run against a view of a small world: (plan output, conflict output)."""
    uv = require_uv()
    root = tmp_path_factory.mktemp("view")
    site, wheels = root / "site", root / "wheels"
    site.mkdir()
    for wheel in (make_base.build_wheel(root / "b", "corelib", "1.20.0"), make_base.build_wheel(root / "b", "six", "1.16.0")):
        make_base.install_wheel(wheel, site)
    make_base.build_wheel(wheels, "tool", "2.0", requires=("corelib>=1.43",))
    make_base.build_wheel(wheels, "six", "1.17.0")
    make_base.build_wheel(wheels, "corelib", "1.43.0")

    class Copy:
        def __init__(self, name, version):
            self.name, self.version, self.display_name = name, version, name
            self.location = str(site / f"{name}-{version}.dist-info")
            self.effective = self

    view = root / "view"
    uv_resolve.sync_view([Copy("corelib", "1.20.0"), Copy("tool", "1.0"), Copy("six", "1.16.0")], view)
    # Kept views change by what changed: tool is gone, and corelib's link is the one made before.
    made = os.lstat(view / "corelib-1.20.0.egg-info").st_ino
    uv_resolve.sync_view([Copy("corelib", "1.20.0"), Copy("six", "1.16.0")], view)
    assert sorted(os.listdir(view)) == ["corelib-1.20.0.egg-info", "six-1.16.0.egg-info"]
    assert os.lstat(view / "corelib-1.20.0.egg-info").st_ino == made
    (root / "holds.txt").write_text("corelib==1.20.0\n")
    env = {"PATH": os.environ["PATH"], "HOME": str(root), "UV_NO_CONFIG": "1", "UV_CACHE_DIR": str(root / "cache")}

    def dry(*requests):
        cmd = [uv, "pip", "install", "--dry-run", "--target", str(view), "--python", make_base.find_python("3.9") or "python3"]
        cmd += ["-c", str(root / "holds.txt"), "--no-index", "-f", str(wheels), *requests]
        return subprocess.run(cmd, env=env, capture_output=True, text=True)

    return dry("six==1.17.0", "corelib"), dry("tool==2.0")


def test_the_plan_is_read_from_uv(view_output):
    plan, _ = view_output
    assert plan.returncode == 0, plan.stderr
    steps = uv_resolve.read_plan(plan.stdout + plan.stderr)
    # corelib is installed (the view) and held: kept; six replaced.
    assert steps == [uv_resolve.Step("-", "six", "1.16.0"), uv_resolve.Step("+", "six", "1.17.0")]
    assert uv_resolve.install_arguments(steps, set()) == ["six==1.17.0"]
    assert uv_resolve.read_plan("Would install 2 packages\n + six==1.17.0\n") is None  # a line it did not read


def test_uvs_no_solution_reads_as_a_conflict(view_output):
    _, failed = view_output
    assert failed.returncode != 0
    conflict = uv_conflict.parse_uv_conflict(failed.stdout + failed.stderr)
    assert conflict is not None and conflict.requested == ["tool==2.0"]
    assert ("tool", "2.0", "corelib>=1.43", "corelib") in [(d.who, d.version, d.requirement, d.name) for d in conflict.demands]
    assert any(d.constraint and d.requirement == "corelib==1.20.0" for d in conflict.demands)
    assert uv_conflict.failure_block(failed.stderr).startswith("error: No solution found")
    assert uv_conflict.parse_uv_conflict("error: Failed to build `proj`") is None


def test_direct_references_and_editables_keep_their_form():
    steps = [
        uv_resolve.Step("+", "proj", url="file:///src/proj"),
        uv_resolve.Step("+", "tool", url="file:///w/tool-1.5-py3-none-any.whl"),
        uv_resolve.Step("~", "six", "1.17.0"),
        uv_resolve.Step("-", "corelib", "1.20.0"),
    ]
    assert uv_resolve.install_arguments(steps, {os.path.realpath("/src/proj")}) == [
        "-e",
        "/src/proj",
        "tool @ file:///w/tool-1.5-py3-none-any.whl",
        "--reinstall-package",
        "six",
        "six==1.17.0",
    ]


def test_pip_settings_in_pips_order(tmp_path):
    (tmp_path / "xdg" / "pip").mkdir(parents=True)
    (tmp_path / "xdg" / "pip" / "pip.conf").write_text("[global]\nindex-url = https://global/simple\nconstraint = /c.txt\n")
    (tmp_path / "home" / ".config" / "pip").mkdir(parents=True)
    (tmp_path / "home" / ".config" / "pip" / "pip.conf").write_text("[global]\nfind-links = /a /b\ntimeout = 60\n")
    (tmp_path / "prefix").mkdir()
    (tmp_path / "prefix" / "pip.conf").write_text("[install]\nindex-url = https://site/simple\n[list]\nformat = json\n")
    env = {"XDG_CONFIG_DIRS": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home"), "PIP_PRE": "yes", "PIP_TRUSTED_HOST": "h"}
    settings = pip_settings.read_pip_settings(env, str(tmp_path / "prefix"))
    assert settings.unsupported is None
    assert settings.sources.index_url == "https://site/simple" and settings.sources.find_links == ("/a", "/b")
    assert settings.pre and settings.constraints == ("/c.txt",) and settings.trusted_hosts == ("h",)
    assert (
        pip_settings.read_pip_settings({**env, "PIP_CONFIG_FILE": os.devnull}, str(tmp_path / "prefix")).sources.index_url is None
    )
    assert pip_settings.read_pip_settings({**env, "PIP_PROXY": "http://p"}, "/nonexistent").unsupported == "proxy ($PIP_PROXY)"


def test_a_new_view_is_seeded_from_the_view_changed_last(tmp_path, monkeypatch):
    """A new overlay's view starts as hard links to the entries of the view changed last that already
    point where it needs (a release's distributions, mostly); the rest are made; the result is what
    sync_view alone makes, and the sibling is left as it was."""
    monkeypatch.setattr("overlay_venv.cachedir.cache_dir", lambda *parts: tmp_path / "views")
    (tmp_path / "views").mkdir()

    class Copy:
        def __init__(self, name, version, where):
            self.name, self.version, self.display_name = name, version, name
            self.location = str(tmp_path / where / f"{name}-{version}.dist-info")
            self.effective = self

    release = [Copy(f"base{i}", "1.0", "release") for i in range(5)]
    for overlay in ("one", "two", "three"):
        (tmp_path / overlay / "bin").mkdir(parents=True)
    one = uv_resolve.view_for(str(tmp_path / "one" / "bin" / "python"), [*release, Copy("pip", "24.0", "one")], None)
    os.utime(one, (1, 1))  # synced long ago: "two" is the one to seed from
    wanted = [*release[1:], Copy("base0", "2.0", "release"), Copy("pip", "24.0", "three")]
    (tmp_path / "other-release").mkdir()
    two_provided = [Copy("base1", "1.0", "other-release"), *release[2:], Copy("pip", "24.0", "two")]
    two = uv_resolve.view_for(str(tmp_path / "two" / "bin" / "python"), two_provided, None)
    three = uv_resolve.view_for(str(tmp_path / "three" / "bin" / "python"), wanted, None)

    expected = uv_resolve.view_entries(wanted)
    assert sorted(name for name in os.listdir(three) if not name.startswith(".")) == sorted(expected)
    for name, (metadata, _) in expected.items():
        assert os.readlink(three / name) == metadata

    # Linked from "two" where it pointed to the same file; made where it did not (base1 of another
    # release, pip of another overlay) or had nothing (base0 2.0).
    def linked_from(view):
        same = [name for name in expected if (view / name).is_symlink()]
        return {name for name in same if os.path.samestat(os.lstat(three / name), os.lstat(view / name))}

    assert linked_from(two) == {f"base{i}-1.0.egg-info" for i in range(2, 5)}
    # Not from the older view, whose base1 1.0 was what "three" wants ("two" itself was seeded from it).
    assert "base1-1.0.egg-info" not in linked_from(one)
    assert os.readlink(two / "base1-1.0.egg-info") == str(tmp_path / "other-release" / "base1-1.0.dist-info" / "METADATA")
    assert os.readlink(three / ".overlay") == str(tmp_path / "three")
