"""`overlay-venv kernel install/list/remove`: Jupyter kernels that carry the release, started by a real
jupyter_client.KernelManager (and a notebook run by nbclient) in an environment where no release is set
up, on a 3.9 and a 3.13 base.

The release here is the simulated one of scripts/make_base.py plus what a kernel needs from a real
release: a package only the release has (relonly), a compiled library in a directory only the
release's environment puts on LD_LIBRARY_PATH (built with gcc, loaded through ctypes in the kernel),
and a setup script that also points JUPYTER_CONFIG_DIR and JUPYTER_PATH into the read-only release,
as ROOT's thisroot.sh does. ipykernel and its dependencies come from the wheelhouse that
scripts/fetch-test-wheels.sh fills (scripts/test-wheels/jupyter.txt), installed with --no-index.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from capabilities import require_capability, require_executable, require_shellcheck
from conftest import BASE_PYTHONS, ROOT, Release, build_release, clean_env, fingerprint, make_read_only, overlay_venv

from overlay_venv import kernel as K
from overlay_venv import launcher as L
from overlay_venv.record import OverlayRecord

WHEELHOUSE = Path(os.environ.get("OVERLAY_VENV_TEST_WHEELS", ROOT / ".test-wheels"))
TINY_C = "int ovtiny_answer(void) { return 42; }\n"
# Executed in the kernel: which copies it imports, the release's library, and what it runs as.
PROBE = """\
import ctypes, json, os, sys
import basepkg, relonly
print(json.dumps({
    "basepkg": basepkg.__version__,
    "relonly": relonly.__version__,
    "tiny": ctypes.CDLL("libovtiny.so").ovtiny_answer(),
    "executable": sys.executable,
    "first_path": [entry for entry in sys.path if entry][0],
    "JUPYTER_CONFIG_DIR": os.environ.get("JUPYTER_CONFIG_DIR"),
    "JUPYTER_PATH": os.environ.get("JUPYTER_PATH"),
}))
"""


def require_jupyter() -> None:
    try:
        import jupyter_client  # noqa: F401
        import nbclient  # noqa: F401
    except ImportError:
        require_capability("jupyter_client", "drives the kernels and runs notebooks (nbclient); the test extra installs both")
    if not any(WHEELHOUSE.glob("ipykernel-*.whl")):
        require_capability(
            "ipykernel wheels", f"installed into overlays from {WHEELHOUSE}: run bash scripts/fetch-test-wheels.sh"
        )


def kernel_release(dest: Path, minor: str):
    """A release whose setup (kernel-setup.sh) also exports LD_LIBRARY_PATH to its own compiled
    library and Jupyter variables into itself; made read-only and checked unwritten at the end."""
    require_jupyter()
    gcc = require_executable("gcc", "builds the test release's small shared library the kernel loads")
    rel = build_release(dest, minor, base=("basepkg==1.0", "relonly==1.0"))
    extlib = rel.root / "extlib"
    extlib.mkdir()
    (dest / "tiny.c").write_text(TINY_C)
    subprocess.run([gcc, "-shared", "-fPIC", "-o", str(extlib / "libovtiny.so"), str(dest / "tiny.c")], check=True)
    notebook = rel.root / "etc" / "notebook"
    notebook.mkdir(parents=True)
    (rel.root / "kernel-setup.sh").write_text(
        f". {shlex.quote(str(rel.root / 'setup.sh'))}\n"
        f'LD_LIBRARY_PATH={shlex.quote(str(extlib))}${{LD_LIBRARY_PATH:+":$LD_LIBRARY_PATH"}}\n'
        f"JUPYTER_CONFIG_DIR={shlex.quote(str(notebook))}\n"
        f"JUPYTER_PATH={shlex.quote(str(notebook))}\n"
        "export LD_LIBRARY_PATH JUPYTER_CONFIG_DIR JUPYTER_PATH\n"
    )
    rel.mounted = make_read_only(rel.root)
    before = fingerprint(rel.root)
    yield rel
    if rel.mounted:
        after = fingerprint(rel.root)
        subprocess.run(["umount", str(rel.root)], check=False)
    else:
        after = fingerprint(rel.root)
    assert after == before, "the read-only release was modified"


def set_up_env(rel: Release, **extra: str) -> dict[str, str]:
    """A shell right after sourcing kernel-setup.sh."""
    return rel.env(LD_LIBRARY_PATH=str(rel.root / "extlib"), **extra)


def install_ipykernel(overlay: Path, rel: Release) -> None:
    overlay_venv(
        "install", "--overlay", str(overlay), "-q", "--no-index", "-f", str(WHEELHOUSE), "-f", str(rel.wheels),
        "ipykernel", "basepkg==2.0", env=set_up_env(rel),
    )  # fmt: skip


@pytest.fixture(scope="module", params=BASE_PYTHONS, ids=lambda minor: f"py{minor}")
def krel(request, tmp_path_factory) -> Release:
    yield from kernel_release(tmp_path_factory.mktemp(f"kernel-release{request.param}"), request.param)


@pytest.fixture(scope="module")
def kov(krel, tmp_path_factory) -> Path:
    """An overlay with a space in its path, created where the release was set up (so the record
    holds its PYTHONPATH, LD_LIBRARY_PATH and PATH), with basepkg 2.0 shadowing the release's 1.0
    and ipykernel installed."""
    dest = tmp_path_factory.mktemp("kernel-ov") / "my env"
    overlay_venv("create", str(dest), env=set_up_env(krel))
    install_ipykernel(dest, krel)
    return dest


def jupyter_env(data: Path, **extra: str) -> dict[str, str]:
    """What a Jupyter server gives a kernel here: no release set up."""
    return {**clean_env(), "JUPYTER_DATA_DIR": str(data), **extra}


@contextlib.contextmanager
def running_kernel(data: Path, name: str, env: dict[str, str]):
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    manager = KernelManager(kernel_name=name, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(data / "kernels")]))
    manager.start_kernel(env=env)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        yield manager, client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def execute(client, code: str) -> str:
    out: list[str] = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append("\n".join(msg["content"]["traceback"]))

    reply = client.execute_interactive(code, output_hook=hook, timeout=120)
    assert reply["content"]["status"] == "ok", "".join(out)
    return "".join(out)


def probe(data: Path, name: str, env: dict[str, str]) -> dict:
    with running_kernel(data, name, env) as (_, client):
        return json.loads(execute(client, PROBE))


def assert_carries_release(state: dict, overlay: Path) -> None:
    assert state["basepkg"] == "2.0"  # the overlay's copy shadows the release's 1.0
    assert state["relonly"] == "1.0"  # only in the release
    assert state["tiny"] == 42  # the release's library, found through its LD_LIBRARY_PATH
    assert state["executable"] == str(overlay / "bin" / "python")
    assert state["first_path"] == str(next((overlay / "lib").glob("python3.*")) / "site-packages")


@pytest.fixture(scope="module")
def installed(kov, tmp_path_factory) -> Path:
    """The Jupyter data directory with the kernel of ``kov`` installed under its default name."""
    data = tmp_path_factory.mktemp("jupyter-data")
    result = overlay_venv("kernel", "install", str(kov), env=jupyter_env(data))
    assert "installed kernel 'my-env'" in result.stdout
    return data


def test_kernel_restores_the_recorded_release_environment(krel, kov, installed):
    spec = json.loads((installed / "kernels" / "my-env" / "kernel.json").read_text())
    assert spec["argv"] == [str(kov / "bin" / "overlay-venv-kernel"), "-f", "{connection_file}"]
    assert spec["interrupt_mode"] == "signal" and spec["language"] == "python"
    assert spec["display_name"] == f"my env (Python {krel.minor})"
    assert (installed / "kernels" / "my-env" / "logo-64x64.png").is_file()  # ipykernel's, as its install copies
    assert_carries_release(probe(installed, "my-env", jupyter_env(installed)), kov)


def test_kernel_install_setup_sets_up_the_release_and_drops_its_jupyter_variables(krel, kov, tmp_path):
    data = tmp_path / "data"
    setup = str(krel.root / "kernel-setup.sh")
    overlay_venv("kernel", "install", str(kov), "--name", "with-setup", "--display-name", "Mine", env=jupyter_env(data))
    overlay_venv("kernel", "install", str(kov), "--name", "with-setup", "--setup", setup, env=jupyter_env(data))
    spec = json.loads((data / "kernels" / "with-setup" / "kernel.json").read_text())
    assert spec["argv"][1:3] == ["--setup", f". {setup}"]  # a file is sourced, with `.` for dash
    server_config = str(tmp_path / "server-config")
    state = probe(data, "with-setup", jupyter_env(data, JUPYTER_CONFIG_DIR=server_config))
    assert_carries_release(state, kov)
    assert state["JUPYTER_CONFIG_DIR"] == server_config  # the server's, not the release's
    assert state["JUPYTER_PATH"] is None  # unset as the server had it


def test_interrupt_reaches_a_running_cell(kov, installed):
    with running_kernel(installed, "my-env", jupyter_env(installed)) as (manager, client):
        msg_id = client.execute("import time\nfor _ in range(600): time.sleep(0.1)")
        time.sleep(1.0)
        manager.interrupt_kernel()
        while True:
            reply = client.get_shell_msg(timeout=30)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
        assert execute(client, "print(6 * 7)").strip() == "42"  # the same kernel lives on


def test_a_notebook_run_with_nbclient_gives_the_same_results(kov, installed):
    import nbformat
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PROBE)])
    manager = KernelManager(kernel_name="my-env", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(installed / "kernels")]))
    try:
        NotebookClient(notebook, km=manager, timeout=120).execute(env=jupyter_env(installed))
    finally:
        manager.shutdown_kernel(now=True)  # a client given its manager leaves the kernel running
    assert_carries_release(json.loads(notebook.cells[0].outputs[0]["text"]), kov)


def test_jupyter_kernelspec_list_shows_the_kernel(kov, installed):
    jupyter = require_executable("jupyter-kernelspec", "jupyter_client's console script", str(Path(sys.executable).parent))
    result = subprocess.run([str(jupyter), "list", "--json"], env=jupyter_env(installed), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    specs = json.loads(result.stdout)["kernelspecs"]
    assert specs["my-env"]["resource_dir"] == str(installed / "kernels" / "my-env")
    assert specs["my-env"]["spec"]["metadata"]["overlay_venv"]["overlay"] == str(kov)


def test_kernel_list_shows_ours_only(kov, installed):
    (installed / "kernels" / "foreign").mkdir()
    (installed / "kernels" / "foreign" / "kernel.json").write_text(json.dumps({"argv": ["python"], "display_name": "x"}))
    listed = json.loads(overlay_venv("kernel", "list", "--json", env=jupyter_env(installed)).stdout)
    assert [(k["name"], k["overlay"], k["ok"]) for k in listed] == [("my-env", str(kov), True)]
    refused = overlay_venv("kernel", "remove", "foreign", env=jupyter_env(installed), check=False)
    assert refused.returncode == 1 and "jupyter kernelspec remove foreign" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert (installed / "kernels" / "foreign" / "kernel.json").exists()
    shutil.rmtree(installed / "kernels" / "foreign")


def test_kernel_install_refuses_without_ipykernel_in_one_line(krel, tmp_path):
    bare = tmp_path / "bare"
    overlay_venv("create", str(bare), "--no-pip", env=set_up_env(krel))
    result = overlay_venv("kernel", "install", str(bare), env=jupyter_env(tmp_path / "data"), check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"overlay-venv: error: neither the overlay {bare} nor its release provides ipykernel; "
        f"install it with: overlay-venv install --overlay {bare} ipykernel"
    ]
    assert not (tmp_path / "data" / "kernels").exists() or not any((tmp_path / "data" / "kernels").iterdir())


def test_kernel_install_refuses_another_overlays_kernel_and_bad_names(kov, installed, tmp_path):
    other = tmp_path / "other"
    overlay_venv("create", str(other), "--no-pip", env=clean_env())
    result = overlay_venv("kernel", "install", str(other), "--name", "my-env", env=jupyter_env(installed), check=False)
    assert result.returncode == 1 and f"runs the overlay {kov}" in result.stderr
    result = overlay_venv("kernel", "install", str(other), "--name", "a b", env=jupyter_env(installed), check=False)
    assert result.returncode == 1 and "not a kernel name" in result.stderr
    result = overlay_venv("kernel", "install", str(kov), "--setup", "x=${prefix}", env=jupyter_env(installed), check=False)
    assert result.returncode == 1 and "{prefix}" in result.stderr
    assert sorted(p.name for p in (installed / "kernels").iterdir()) == ["my-env"]


def test_rebuild_and_unpack_keep_the_kernel_working_or_say_what_to_run(krel, kov, tmp_path):
    data = tmp_path / "data"
    work = tmp_path / "work"
    work.mkdir()
    env = set_up_env(krel)
    # Built from a clean shell with the release setup kept: the kernel runs it through bin/activate.
    first = work / "first"
    overlay_venv("create", str(first), "--setup", str(krel.root / "kernel-setup.sh"), "--keep-setup", env=clean_env())
    install_ipykernel(first, krel)
    overlay_venv("kernel", "install", str(first), "--name", "flow", env=jupyter_env(data))
    state = probe(data, "flow", jupyter_env(data))
    assert_carries_release(state, first)
    assert state["JUPYTER_CONFIG_DIR"] is None and state["JUPYTER_PATH"] is None  # the release's dropped

    # rebuild: a new overlay at the same place, launcher rendered by create; kernel.json unchanged.
    spec = (data / "kernels" / "flow" / "kernel.json").read_text()
    overlay_venv("rebuild", str(first), "-q", "--no-index", "-f", str(WHEELHOUSE), "-f", str(krel.wheels), env=clean_env())
    assert (data / "kernels" / "flow" / "kernel.json").read_text() == spec
    assert_carries_release(probe(data, "flow", jupyter_env(data)), first)

    # unpack elsewhere: the launcher is rendered for the new place; the old kernel is named.
    archive = work / "first.tar.gz"
    overlay_venv("pack", str(first), "-o", str(archive), env=env)
    plain = work / "plain"  # moved with tar and the stdlib script instead: the launcher follows
    plain.mkdir()
    subprocess.run(["tar", "xzf", str(archive), "-C", str(plain)], check=True)
    subprocess.run([str(plain / "bin" / "python"), str(plain / "bin" / "overlay-venv-relocate")], check=True, capture_output=True)
    assert L.launcher_location(plain / "bin" / "overlay-venv-kernel") == str(plain)
    moved = work / "moved copy"
    result = overlay_venv("unpack", str(archive), str(moved), env=jupyter_env(data))
    assert "the Jupyter kernel 'flow' still runs" in result.stderr and "overlay-venv kernel install" in result.stderr
    overlay_venv("kernel", "install", str(moved), "--name", "moved", env=jupyter_env(data))
    assert_carries_release(probe(data, "moved", jupyter_env(data)), moved)

    # the first overlay gone: its kernel is flagged, and removing it leaves the other.
    shutil.rmtree(first)
    listed = {k["name"]: k for k in json.loads(overlay_venv("kernel", "list", "--json", env=jupyter_env(data)).stdout)}
    assert listed["moved"]["ok"] and not listed["flow"]["ok"]
    assert listed["flow"]["problem"] == f"the overlay {first} is gone (moved or removed)"
    text = overlay_venv("kernel", "list", env=jupyter_env(data)).stdout
    assert f"flow: the overlay {first} is gone" in text
    overlay_venv("kernel", "remove", "flow", env=jupyter_env(data))
    assert sorted(p.name for p in (data / "kernels").iterdir()) == ["moved"]


def test_an_overlay_copied_without_relocating_is_flagged(kov, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(kov, copy, symlinks=True)
    record = OverlayRecord.from_json((copy / "overlay-venv.json").read_text())
    spec = K.kernel_spec(copy, record, "copy", None)
    problem = K.kernel_problem(copy, spec)
    assert problem is not None and f"moved here from {kov}" in problem and "overlay-venv-relocate" in problem


def test_launcher_passes_shellcheck(kov, odd_overlay):
    require_shellcheck()
    for overlay in (kov, odd_overlay):
        for dialect in ("sh", "dash", "bash", "ksh"):
            launcher = overlay / "bin" / "overlay-venv-kernel"
            result = subprocess.run(["shellcheck", "-s", dialect, str(launcher)], capture_output=True, text=True)
            assert result.returncode == 0, f"{dialect}: {result.stdout}"


# ---- the pure rules -----------------------------------------------------------------------------


def test_jupyter_data_directory_rules():
    home = "/home/u"
    assert K.user_data_dir({}, home, "linux") == Path("/home/u/.local/share/jupyter")
    assert K.user_data_dir({"XDG_DATA_HOME": "/x"}, home, "linux") == Path("/x/jupyter")
    assert K.user_data_dir({"JUPYTER_DATA_DIR": "/j", "XDG_DATA_HOME": "/x"}, home, "linux") == Path("/j")
    assert K.user_data_dir({}, home, "darwin") == Path("/home/u/Library/Jupyter")
    assert K.kernels_dir({}, home, "/opt/p") == Path("/opt/p/share/jupyter/kernels")
    dirs = K.search_dirs({"JUPYTER_PATH": "/a:/b", "JUPYTER_DATA_DIR": "/j"}, home, ("/opt/p",))
    assert dirs[:4] == [Path("/a/kernels"), Path("/b/kernels"), Path("/j/kernels"), Path("/opt/p/share/jupyter/kernels")]
    assert dirs[4:] == [Path("/usr/local/share/jupyter/kernels"), Path("/usr/share/jupyter/kernels")]


def _record(interpreter: str, setup: str | None = None, pythonpath: str | None = None, environment=None) -> OverlayRecord:
    base = {"interpreter": interpreter, "executable": interpreter, "version": "3.11.9", "implementation": "CPython"}
    base.update(pythonpath=pythonpath, setup=setup)
    if environment is not None:  # absent, as in records written before it was kept
        base["environment"] = environment
    site = ["lib/python3.11/site-packages"]
    data = {"prompt": "ana", "bin_dir": "bin", "site_packages": site, "system_site_packages": True, "created_by": "t"}
    data["base"] = base
    return OverlayRecord.from_json(json.dumps(data))


@pytest.mark.parametrize(
    ("interpreter", "setup", "expected"),
    [
        ("/cvmfs/sft.cern.ch/lcg/views/LCG_105/x86_64-el9-gcc12-opt/bin/python3", None, "ana (LCG_105, Python 3.11)"),
        ("/cvmfs/sft.cern.ch/lcg/views/LCG_105a/x86_64-el9-gcc12-opt/bin/python3", None, "ana (LCG_105a, Python 3.11)"),
        ("/usr/bin/python3", "asetup AnalysisBase,25.2.15", "ana (AnalysisBase 25.2.15, Python 3.11)"),
        ("/cvmfs/atlas.cern.ch/repo/sw/software/25.2/AnalysisBase/25.2.15/InstallArea/bin/python", None,
         "ana (AnalysisBase 25.2.15, Python 3.11)"),
        ("/cvmfs/cms.cern.ch/el9_amd64_gcc12/cms/cmssw/CMSSW_14_0_7/external/bin/python3", None,
         "ana (CMSSW_14_0_7, Python 3.11)"),
        ("/usr/bin/python3", None, "ana (Python 3.11)"),
    ],
)  # fmt: skip
def test_display_name_names_the_release(interpreter, setup, expected):
    assert K.default_display_name(_record(interpreter, setup)) == expected


def test_kernel_names():
    assert K.default_kernel_name(Path("/w/My Env!")) == "my-env"
    assert K.default_kernel_name(Path("/w/???")) == "overlay"
    assert K.check_kernel_name("Ana-1.0_x") == "ana-1.0_x"
    with pytest.raises(Exception, match="not a kernel name"):
        K.check_kernel_name("a/b")


def test_an_older_record_restores_pythonpath_and_the_interpreters_directory():
    old = _record("/rel/bin/python3", pythonpath="/rel/site")  # no "environment": written before it existed
    assert old.base.environment is None
    assert L.restore_values(old) == [("PYTHONPATH", "/rel/site"), ("PATH", "/rel/bin")]
    assert "PYTHONPATH=/rel/site" in L.render_launcher(Path("/ov"), old)
    new = _record("/rel/bin/python3", pythonpath="/rel/site", environment={"LD_LIBRARY_PATH": None, "PATH": "/rel/bin:/bin"})
    assert L.restore_values(new) == [("PYTHONPATH", "/rel/site"), ("PATH", "/rel/bin:/bin")]
    active = {"PATH": "/ov/bin:/rel/bin", "VIRTUAL_ENV": "/ov"}
    assert L.recorded_environment(active) == {"LD_LIBRARY_PATH": None, "PATH": "/rel/bin"}


def test_the_readme_lists_every_kernel_install_option():
    import click

    from overlay_venv.commands.kernel import install

    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Jupyter notebooks") :]
    lines = section[section.index("| option | meaning |") :].splitlines()[2:]
    cells = [line.split("|")[1] for line in lines[: next(i for i, line in enumerate(lines) if not line.startswith("|"))]]
    documented = {word for cell in cells for word in cell.replace("`", " ").split() if word.startswith("--")}
    options = [p.opts[0] for p in install.params if isinstance(p, click.Option) and "--help" not in p.opts]
    assert sorted(options) == sorted(documented)
