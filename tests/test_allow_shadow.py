"""An overlay made with ``install --allow-shadow`` rebuilds as it was made.

    release A / B (PYTHONPATH)   clientlib 1.4 (requires corelib==1.20.*), corelib 1.20.0 / 1.20.1
    local wheels                 tool 2.0 (requires corelib>=1.43), corelib 1.43.0

``tool==2.0`` installs only when corelib is released from its hold, so the release of it must be
recorded with the request and re-applied by ``rebuild`` (same and changed base), ``rebuild --lock``
and ``create --from``. Without it, the explanation of why arrives line by line, not squashed.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import build_release, make_base, make_read_only, overlay_venv

from overlay_venv.lock import parse_lock


def release_with(root: Path, corelib: str):
    rel = build_release(root, "3.9", base=(f"corelib=={corelib}",), wheels=())
    make_base.install_wheel(make_base.build_wheel(root / "build", "clientlib", "1.4", requires=("corelib==1.20.*",)), rel.site)
    make_base.build_wheel(rel.wheels, "tool", "2.0", requires=("corelib>=1.43",))
    make_base.build_wheel(rel.wheels, "corelib", "1.43.0")
    rel.mounted = make_read_only(rel.root)
    return rel


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    a = release_with(tmp_path_factory.mktemp("shadowA"), "1.20.0")
    b = release_with(tmp_path_factory.mktemp("shadowB"), "1.20.1")
    yield a, b
    for rel in (a, b):
        if rel.mounted:
            subprocess.run(["umount", str(rel.root)], check=False)


def env_of(release) -> dict[str, str]:
    # The machine's pip.conf adds find-links and indexes: the tests see only their own wheelhouse.
    return release.env(PIP_CONFIG_FILE=os.devnull, NO_COLOR="1")


def own(overlay: Path, release) -> dict[str, str]:
    document = json.loads(overlay_venv("list", str(overlay), "--json", env=env_of(release)).stdout)
    return {d["name"]: d["version"] for d in document["distributions"] if d["layer"] == "overlay" and d["name"] != "pip"}


def record(overlay: Path) -> dict:
    return json.loads((overlay / "overlay-venv.json").read_text())


@pytest.fixture(scope="module")
def shadowing(releases, tmp_path_factory):
    a, _ = releases
    overlay = tmp_path_factory.mktemp("shadowing") / "env"
    overlay_venv("create", str(overlay), env=env_of(a))
    overlay_venv(
        "install", "-q", "--overlay", str(overlay), "--no-index", "-f", str(a.wheels), "tool==2.0", "--allow-shadow", "Corelib",
        env=env_of(a),
    )  # fmt: skip
    return overlay


def test_the_release_of_a_hold_is_recorded_with_the_requests(shadowing):
    assert record(shadowing)["requests"] == ["tool==2.0"]
    assert record(shadowing)["allow_shadow"] == ["corelib"]


def test_rebuild_on_the_same_and_on_a_changed_base(releases, shadowing, tmp_path):
    a, b = releases
    for release in (a, b):
        result = overlay_venv("rebuild", str(shadowing), "--no-index", "-f", str(a.wheels), "-q", env=env_of(release))
        assert result.stdout.startswith(f"rebuilt {shadowing} on CPython 3.9."), result.stdout
        assert own(shadowing, release) == {"tool": "2.0", "corelib": "1.43.0"}
        assert record(shadowing)["allow_shadow"] == ["corelib"]
        assert record(shadowing)["base"]["pythonpath"] == str(release.site)


def test_lock_carries_it_to_rebuild_and_create_from(releases, shadowing, tmp_path):
    a, b = releases
    lock = tmp_path / "pylock.toml"
    overlay_venv("lock", str(shadowing), "-o", str(lock), "--no-index", "-f", str(a.wheels), env=env_of(a))
    assert parse_lock(lock.read_text()).allow_shadow == ("corelib",)

    copy = tmp_path / "copy"
    overlay_venv("create", str(copy), "--from", str(lock), "--wheelhouse", str(a.wheels), env=env_of(a))
    assert record(copy)["allow_shadow"] == ["corelib"] and record(copy)["requests"] == ["tool==2.0"]

    # A fresh record without the allowance: only the lock's can make tool==2.0 fit on release B.
    data = record(copy)
    data["allow_shadow"] = []
    (copy / "overlay-venv.json").write_text(json.dumps(data))
    overlay_venv("rebuild", str(copy), "--lock", str(lock), "--wheelhouse", str(a.wheels), "-q", env=env_of(b))
    assert own(copy, b) == {"tool": "2.0", "corelib": "1.43.0"}
    assert record(copy)["allow_shadow"] == ["corelib"]


def test_without_it_rebuild_explains_line_by_line_and_the_option_fixes_it(releases, shadowing, tmp_path):
    a, _ = releases
    target = tmp_path / "env"
    overlay_venv("create", str(target), env=env_of(a))
    data = record(target)
    data["requests"] = ["tool==2.0"]
    (target / "overlay-venv.json").write_text(json.dumps(data))

    failed = overlay_venv("rebuild", str(target), "--no-index", "-f", str(a.wheels), "-q", env=env_of(a), check=False)
    assert failed.returncode == 1
    lines = failed.stderr.splitlines()
    assert lines[-1] == f"overlay-venv: error: the requests do not install on this base; {target} is unchanged"
    assert lines[0].startswith("cannot install tool==2.0 without replacing base packages that others need:"), lines
    assert "  corelib is held at the base's 1.20.0: clientlib 1.4 (base) requires corelib==1.20.*" in lines
    assert "options:" in lines
    assert any(line.startswith("  - add --allow-shadow corelib: ") for line in lines)

    overlay_venv("rebuild", str(target), "--allow-shadow", "corelib", "--no-index", "-f", str(a.wheels), "-q", env=env_of(a))
    assert own(target, a) == {"tool": "2.0", "corelib": "1.43.0"}
    assert record(target)["allow_shadow"] == ["corelib"]


def test_install_failure_keeps_the_explanation_lines(releases, tmp_path):
    a, _ = releases
    target = tmp_path / "env"
    overlay_venv("create", str(target), env=env_of(a))
    failed = overlay_venv(
        "install", "--overlay", str(target), "--no-index", "-f", str(a.wheels), "tool==2.0", env=env_of(a), check=False
    )
    lines = failed.stderr.splitlines()
    assert failed.returncode == 1
    # Refused by install's pre-flight, before pip runs (tool 2.0's own requirement clashes with the hold).
    assert lines[-1].startswith("overlay-venv: error: no release that works with the base's held packages: nothing was installed")
    start = next(i for i, line in enumerate(lines) if line.startswith("cannot install tool==2.0"))
    assert "options:" in lines[start:] and lines[start + 1].startswith("  ")
