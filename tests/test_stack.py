"""Stacked overlays (``create NAME --on LOWER``, issue 13).

    release (read-only)        basepkg 1.0; wheels: basepkg 2.0/3.0, teamlib, teamdep 1.0/2.0, midpkg, tool (teamdep>=2.0)
    team    (read-only mount)  basepkg 2.0, teamlib 1.0 (requires teamdep==1.0, console script teamtool), teamdep 1.0
    mid     (read-only mount)  midpkg 1.0                          --on team
    top                        basepkg 3.0                         --on mid

Each layer's view imports its own basepkg, activated (every shell, round trip byte-exact) or not;
``list`` labels each layer; ``install`` holds what the team layer needs; ``check`` names both sides'
layers; a rebuilt lower makes activation warn until the upper one is rebuilt; bad stacks are refused
in one line with nothing made.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from activation_cases import exported, site_packages
from capabilities import require_shell
from conftest import BASE_PYTHONS, ODD_NAME, build_release, make_base, make_read_only, overlay_venv
from shells import CshShell, FishShell, PosixShell

TEAMLIB = {"teamlib/__init__.py": "def main():\n    import basepkg\n    print('teamtool', basepkg.__version__)\n"}


@pytest.fixture(scope="module", params=BASE_PYTHONS, ids=lambda minor: f"py{minor}")
def release(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"stack-release{request.param}")
    rel = build_release(root, request.param, base=("basepkg==1.0",), wheels=("basepkg==2.0", "basepkg==3.0"))
    make_base.build_wheel(rel.wheels, "teamlib", "1.0", requires=("teamdep==1.0",), modules=TEAMLIB,
                          console_scripts={"teamtool": "teamlib:main"})  # fmt: skip
    for name, version in (("teamdep", "1.0"), ("teamdep", "2.0"), ("midpkg", "1.0")):
        make_base.build_wheel(rel.wheels, name, version)
    make_base.build_wheel(rel.wheels, "tool", "1.0", requires=("teamdep>=2.0",))
    rel.mounted = make_read_only(rel.root)
    yield rel
    if rel.mounted:
        subprocess.run(["umount", str(rel.root)], check=False)


def env_of(release, **extra) -> dict[str, str]:
    # The machine's pip.conf adds find-links and indexes: the tests see only their own wheelhouse.
    return release.env(PIP_CONFIG_FILE=os.devnull, NO_COLOR="1", **extra)


def install(release, overlay: Path, *args: str, check: bool = True):
    return overlay_venv(
        "install",
        "-q",
        "--overlay",
        str(overlay),
        "--no-index",
        "-f",
        str(release.wheels),
        *args,
        env=env_of(release),
        check=check,
    )


@pytest.fixture(scope="module")
def stack(release, tmp_path_factory):
    """team <- mid <- top; team and mid mounted read-only once filled."""
    where = tmp_path_factory.mktemp("stack")
    team, mid, top = where / "team", where / "mid", where / "top"
    mounted = []
    overlay_venv("create", str(team), env=env_of(release))
    install(release, team, "basepkg==2.0", "teamlib==1.0")
    mounted.append(make_read_only(team))
    overlay_venv("create", str(mid), "--on", str(team), env=env_of(release))
    install(release, mid, "midpkg==1.0")
    # A .pth path line in a lower layer (what a lenient editable install writes): its directory is
    # on the upper layers' sys.path too.
    checkout = where / "checkout"
    checkout.mkdir()
    (checkout / "midextra.py").write_text("WHERE = 'checkout'\n")
    (Path(site_packages(mid)) / "midextra.pth").write_text(f"{checkout}\n")
    mounted.append(make_read_only(mid))
    overlay_venv("create", str(top), "--on", str(mid), env=env_of(release))
    install(release, top, "basepkg==3.0")
    yield team, mid, top
    for path, was_mounted in zip((mid, team), reversed(mounted)):
        if was_mounted:
            subprocess.run(["umount", str(path)], check=False)


def imported(python: Path, env: dict[str, str], code: str = "import basepkg; print(basepkg.__version__)") -> str:
    return subprocess.run([str(python), "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip()


def test_each_layer_imports_its_own_copy_unactivated(release, stack):
    team, mid, top = stack
    env = env_of(release)
    assert [imported(o / "bin" / "python", env) for o in (team, mid, top)] == ["2.0", "2.0", "3.0"]
    path = json.loads(imported(top / "bin" / "python", env, "import json, sys; print(json.dumps(sys.path))"))
    order = [site_packages(top), site_packages(mid), site_packages(team), str(release.site)]
    assert [entry for entry in path if entry in order] == order
    # A subprocess of the top layer's interpreter sees the same stack; the lower's packages import.
    inner = "import basepkg, midpkg, teamlib; print(basepkg.__version__)"
    code = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {inner!r}])"
    assert imported(top / "bin" / "python", env, code) == "3.0"
    assert imported(top / "bin" / "python", env, "import midextra; print(midextra.WHERE)") == "checkout"


def test_pip_uninstall_in_the_top_layer_leaves_the_lower_alone(release, stack):
    team, _, top = stack
    before = sorted(p.name for p in Path(site_packages(team)).iterdir())
    subprocess.run(
        [str(top / "bin" / "python"), "-m", "pip", "uninstall", "-y", "teamlib"], env=env_of(release), capture_output=True
    )
    assert sorted(p.name for p in Path(site_packages(team)).iterdir()) == before
    assert imported(top / "bin" / "python", env_of(release), "import teamlib; print('still')") == "still"


def test_the_record_names_the_lowers_top_down(stack):
    team, mid, top = stack
    lowers = json.loads((top / "overlay-venv.json").read_text())["lowers"]
    assert [lower["path"] for lower in lowers] == [str(mid), str(team)]
    assert all(lower["stamp"] and len(lower["fingerprint"]) == 16 for lower in lowers)


SHELLS = [
    (PosixShell, "bash"),
    (PosixShell, "dash"),
    (PosixShell, "zsh"),
    (PosixShell, "ksh"),
    (CshShell, "tcsh"),
    (FishShell, "fish"),
]


@pytest.mark.parametrize(("kind", "name"), SHELLS, ids=[name for _, name in SHELLS])
def test_activated_stack_in_every_shell_and_exact_round_trip(release, stack, tmp_path, kind, name):
    shell = require_shell(kind(name))
    team, mid, top = stack
    lines = [shell.strict()] if shell.strict() else []
    lines += [shell.probe("before"), shell.source(top / "bin" / shell.activate_script), shell.probe("active")]
    lines += ["teamtool", "deactivate", shell.probe("after")]
    lines += [shell.source(mid / "bin" / shell.activate_script), shell.probe("mid"), "deactivate", shell.probe("end")]
    result = shell.run(lines, env=env_of(release), cwd=tmp_path)
    before, active, after = result["before"], result["active"], result["after"]
    assert not result.stderr  # no drift warning: every lower carries the stamp top recorded
    assert (before["basepkg"], active["basepkg"], after["basepkg"]) == ("1.0", "3.0", "1.0")
    assert result["mid"]["basepkg"] == "2.0"
    bins = ":".join(f"{o}/bin" for o in (top, mid, team))
    assert active["PATH"] == f"{bins}:{before['PATH']}"
    sites = ":".join(site_packages(o) for o in (top, mid, team))
    assert active["PYTHONPATH"] == f"{sites}:{before['PYTHONPATH']}"
    # The team layer's console script, found on PATH after top's bin/, imports from the top layer.
    assert "teamtool 3.0" in result.lines
    assert exported(after) == exported(before)
    assert exported(result["end"]) == exported(before)


def test_activate_this_puts_the_stack_first(release, stack):
    team, mid, top = stack
    script = top / "bin" / "activate_this.py"
    code = (
        f"exec(open({str(script)!r}).read(), {{'__file__': {str(script)!r}}}); import basepkg, midpkg; print(basepkg.__version__)"
    )
    assert imported(release.python, env_of(release), code) == "3.0"


def test_list_labels_each_layer(release, stack):
    team, mid, top = stack
    for env in (env_of(release), None):  # unactivated, and with top activated (its entries on PYTHONPATH)
        if env is None:
            env = env_of(
                release,
                VIRTUAL_ENV=str(top),
                PYTHONPATH=":".join([site_packages(top), site_packages(mid), site_packages(team), str(release.site)]),
            )
        document = json.loads(overlay_venv("list", str(top), "--json", env=env).stdout)
        layers = [(layer["label"], layer["path"]) for layer in document["layers"] if layer["label"] != "interpreter"]
        checkout = str(mid.parent / "checkout")  # added by a .pth file of mid: mid's layer too
        assert layers == [("overlay", site_packages(top)), ("overlay:mid", site_packages(mid)), ("overlay:mid", checkout),
                          ("overlay:team", site_packages(team)), ("base", str(release.site))]  # fmt: skip
        dists = {d["name"]: d for d in document["distributions"]}
        assert (dists["basepkg"]["label"], dists["basepkg"]["version"]) == ("overlay", "3.0")
        assert [(s["label"], s["version"]) for s in dists["basepkg"]["shadows"]] == [("overlay:team", "2.0"), ("base", "1.0")]
        assert dists["midpkg"]["label"] == "overlay:mid" and dists["teamlib"]["label"] == "overlay:team"


def test_install_holds_the_team_layer_and_check_names_both_layers(release, stack, tmp_path):
    _, mid, _ = stack
    holder = tmp_path / "holder"
    overlay_venv("create", str(holder), "--on", str(mid), env=env_of(release))
    # tool needs teamdep>=2.0; teamlib in the team layer needs the team layer's teamdep 1.0: held.
    refused = install(release, holder, "tool==1.0", check=False)
    assert refused.returncode != 0
    out = refused.stdout + refused.stderr
    assert "teamlib" in out and "overlay:team" in out, out
    install(release, holder, "tool==1.0", "--allow-shadow", "teamdep")
    assert imported(holder / "bin" / "python", env_of(release), "import teamdep; print(teamdep.__version__)") == "2.0"
    check = overlay_venv("check", str(holder), env=env_of(release), check=False)
    assert check.returncode != 0
    assert (
        "teamlib 1.0 (overlay:team) requires teamdep==1.0, but teamdep 2.0 from the overlay shadows overlay:team's 1.0"
        in check.stdout
    )


def activation_warnings(shell, overlay: Path, env, cwd) -> list[str]:
    result = shell.run([shell.source(overlay / "bin" / shell.activate_script), "deactivate"], env=env, cwd=cwd)
    return [line for line in result.stderr.splitlines() if "lower overlay" in line]


DRIFT_SHELLS = [(PosixShell, "bash"), (PosixShell, "dash"), (CshShell, "tcsh"), (FishShell, "fish")]


def test_a_rebuilt_lower_warns_until_the_upper_is_rebuilt(release, tmp_path):
    shells = [require_shell(kind(name)) for kind, name in DRIFT_SHELLS]
    env = env_of(release)
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    overlay_venv("create", str(lower), env=env)
    install(release, lower, "midpkg==1.0")
    overlay_venv("create", str(upper), "--on", str(lower), env=env)
    install(release, upper, "basepkg==3.0")
    assert all(activation_warnings(shell, upper, env, tmp_path) == [] for shell in shells)
    lock = tmp_path / "pylock.toml"
    overlay_venv("lock", str(upper), "-o", str(lock), "--no-index", "-f", str(release.wheels), env=env)
    # create --from a stacked overlay's lock goes on the same LOWER.
    copy = tmp_path / "copy"
    overlay_venv("create", str(copy), "--from", str(lock), env=env)
    assert [item["path"] for item in json.loads((copy / "overlay-venv.json").read_text())["lowers"]] == [str(lower)]
    assert imported(copy / "bin" / "python", env, "import basepkg, midpkg; print(basepkg.__version__)") == "3.0"
    overlay_venv("rebuild", str(lower), "--no-index", "-f", str(release.wheels), "-q", env=env)
    for shell in shells:
        assert activation_warnings(shell, upper, env, tmp_path) == [
            f"overlay-venv: warning: the lower overlay {lower} changed since this overlay was built on it; "
            f"rebuild with: overlay-venv rebuild {upper}"
        ], shell.name
    # The lower's content changed (a rebuild alone installs the same files: the same fingerprint):
    # sync of the stack is refused, with the command that fixes it.
    install(release, lower, "teamdep==1.0")
    sync = overlay_venv("sync", str(upper), str(lock), env=env, check=False)
    assert sync.returncode != 0
    assert sync.stderr.strip().splitlines() == [
        f"overlay-venv: error: cannot sync {upper}: the lower overlay {lower} changed since this overlay was built; "
        f"rebuild it with: overlay-venv rebuild {upper}"
    ]
    again = overlay_venv("create", str(tmp_path / "again"), "--from", str(lock), env=env, check=False)
    assert again.returncode != 0 and not (tmp_path / "again").exists()
    assert again.stderr.startswith(f"overlay-venv: error: {lock} was locked on the lower overlay {lower}, which changed since")
    overlay_venv("rebuild", str(upper), "--no-index", "-f", str(release.wheels), "-q", env=env)
    assert all(activation_warnings(shell, upper, env, tmp_path) == [] for shell in shells)
    assert json.loads((upper / "overlay-venv.json").read_text())["lowers"][0]["path"] == str(lower)
    shutil.move(lower, tmp_path / "away")
    for shell in shells:
        warnings = activation_warnings(shell, upper, env, tmp_path)
        assert warnings == [
            f"overlay-venv: warning: the lower overlay {lower} this overlay is stacked on is gone; "
            f"rebuild with: overlay-venv rebuild {upper}"
        ], shell.name


def refused(release, tmp_path, *args, env=None) -> str:
    dest = tmp_path / "new"
    result = overlay_venv("create", str(dest), *args, env=env or env_of(release), check=False)
    assert result.returncode != 0
    assert not dest.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_refusals_in_one_line_with_nothing_made(release, stack, tmp_path):
    team, mid, top = stack
    plain = tmp_path / "plain"
    plain.mkdir()
    assert "not an overlay made by overlay-venv" in refused(release, tmp_path, "--on", str(plain))
    other = sys.executable  # an interpreter that is not the release's
    assert f"is not the interpreter {release.bin}/python3 that {top}" in refused(
        release, tmp_path, "--on", str(top), "--python", other
    )
    elsewhere = env_of(release, PYTHONPATH="/opt/other/site-packages")
    line = refused(release, tmp_path, "--on", str(top), env=elsewhere)
    assert "is not the one" in line and str(release.site) in line
    # A cycle: an overlay re-created on an overlay stacked on it.
    cycle = overlay_venv("create", str(top), "--clear", "--on", str(top), env=env_of(release), check=False)
    assert cycle.returncode != 0 and "a cycle" in cycle.stderr
    assert imported(top / "bin" / "python", env_of(release)) == "3.0"  # untouched


def test_run_and_a_wrapped_job_get_the_stack(release, stack, tmp_path):
    team, mid, top = stack
    code = "import basepkg, midpkg, teamlib; print(basepkg.__version__)"
    assert overlay_venv("run", str(top), "--", "python", "-c", code, env=env_of(release)).stdout.strip() == "3.0"
    job = tmp_path / "job.sh"
    overlay_venv("wrap", str(top), "-o", str(job), "--", "python", "-c", code, env=env_of(release))
    clean = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # a worker's job: no release, no overlay set up
    out = subprocess.run(["/bin/sh", str(job)], env=clean, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "3.0"


def test_on_a_published_reference_records_the_pinned_id(release, tmp_path):
    env = env_of(release, OVERLAY_VENV_STORES=str(tmp_path / "store"))
    (tmp_path / "store").mkdir()
    team = tmp_path / "team"
    overlay_venv("create", str(team), env=env)
    install(release, team, "basepkg==2.0")
    overlay_venv("publish", str(team), str(tmp_path / "store" / "team" / "ana"), "--tag", "v1", env=env)
    mine = tmp_path / "mine"
    overlay_venv("create", str(mine), "--on", "team/ana:v1", "--no-pip", env=env)
    (lower,) = json.loads((mine / "overlay-venv.json").read_text())["lowers"]
    assert lower["ref"].startswith("team/ana@") and lower["path"].endswith("/ids/" + lower["ref"].split("@")[1])
    assert imported(mine / "bin" / "python", env) == "2.0"


def test_a_kept_setup_is_inherited(release, tmp_path):
    """LOWER made with --keep-setup: NAME, created in a shell without the release, runs the same setup."""
    clean = env_of(release)
    clean["PATH"], _ = "/usr/local/bin:/usr/bin:/bin", clean.pop("PYTHONPATH")
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    setup = f"source {release.root / 'setup.sh'}"
    overlay_venv("create", str(lower), "--no-pip", "--setup", setup, "--keep-setup", env=clean)
    overlay_venv("create", str(upper), "--on", str(lower), "--no-pip", env=clean)
    base = json.loads((upper / "overlay-venv.json").read_text())["base"]
    assert (base["setup"], base["keep_setup"]) == (f". {release.root / 'setup.sh'}", True)
    script = f". {upper}/bin/activate; python -c 'import basepkg; print(basepkg.__version__)'"
    out = subprocess.run(["sh", "-c", script], env=clean, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1.0" and "warning" not in out.stderr


def test_the_kernel_launcher_gets_the_stack(release, stack, tmp_path):
    """What Jupyter starts (bin/overlay-venv-kernel), from a server's clean environment: the release
    comes from the record, and the stack from the overlay's activation. A stand-in ipykernel_launcher
    in the top layer reports what it imports."""
    _, mid, _ = stack
    kern = tmp_path / "kern"
    overlay_venv("create", str(kern), "--on", str(mid), "--no-pip", env=env_of(release))
    stand_in = "import basepkg, midpkg, sys; print('kernel', basepkg.__version__, sys.argv[1:])\n"
    (Path(site_packages(kern)) / "ipykernel_launcher.py").write_text(stand_in)
    server = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    launcher = kern / "bin" / "overlay-venv-kernel"
    out = subprocess.run([str(launcher), "-f", "conn.json"], env=server, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "kernel 2.0 ['-f', 'conn.json']"


@pytest.mark.parametrize(("kind", "name"), SHELLS, ids=[name for _, name in SHELLS])
def test_a_lower_in_an_odd_directory_is_safe(release, tmp_path_factory, kind, name):
    """A lower overlay's path holding every character a shell might run, in every activation script."""
    shell = require_shell(kind(name))
    where = tmp_path_factory.mktemp("odd-stack")
    lower, upper = where / ODD_NAME / "lower", where / "upper"
    lower.parent.mkdir()
    overlay_venv("create", str(lower), "--no-pip", env=env_of(release))
    overlay_venv("create", str(upper), "--on", str(lower), "--no-pip", env=env_of(release))
    cwd = where / "cwd"
    cwd.mkdir()
    lines = [shell.probe("before"), shell.source(upper / "bin" / shell.activate_script), shell.probe("active")]
    lines += ["deactivate", shell.probe("after")]
    result = shell.run(lines, env=env_of(release), cwd=cwd)
    assert result["active"]["PATH"].split(":")[:2] == [f"{upper}/bin", f"{lower}/bin"]
    assert result["active"]["PYTHONPATH"].split(":")[1] == site_packages(lower)
    assert exported(result["after"]) == exported(result["before"])
    assert list(cwd.iterdir()) == [] and not result.stderr
    shutil.move(lower, where / "gone")  # the drift warning names it, quoted as data
    gone = shell.run([shell.source(upper / "bin" / shell.activate_script)], env=env_of(release), cwd=cwd)
    assert f"the lower overlay {lower} this overlay is stacked on is gone" in gone.stderr
    assert list(cwd.iterdir()) == []
