"""The overlay wins without activation: bin/python, console scripts, subprocesses, `python -m` kernels.

The release's PYTHONPATH is set and the overlay is NOT activated in every test here.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import make_base

SHOW = "import basepkg; print(basepkg.__version__)"


@pytest.fixture(scope="module")
def tool_wheel(tmp_path_factory) -> Path:
    """A distribution with a console script and a `python -m` entry, both printing basepkg's version."""
    body = "def main():\n    import basepkg\n    print(basepkg.__version__)\n\n\nif __name__ == '__main__':\n    main()\n"
    wheels = tmp_path_factory.mktemp("toolwheel")
    make_base.build_wheel(wheels, "showbase", "1.0", modules={"showbase.py": body}, console_scripts={"showbase": "showbase:main"})
    return wheels


@pytest.fixture(scope="module")
def hooked(release, overlay, tool_wheel) -> Path:
    pip = [str(overlay / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(tool_wheel)]
    subprocess.run([*pip, "showbase"], env=release.env(), check=True, capture_output=True)
    return overlay


def run(args, env) -> str:
    result = subprocess.run(args, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_interpreter_console_script_subprocess_and_module(release, hooked):
    env = release.env()
    python = str(hooked / "bin" / "python")
    assert run([python, "-c", SHOW], env) == "2.0"
    assert run([str(hooked / "bin" / "showbase")], env) == "2.0"
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {SHOW!r}], check=True)"
    assert run([python, "-c", child], env) == "2.0"
    # A Jupyter kernel spec's argv is [".../bin/python", "-m", "ipykernel_launcher", ...].
    assert run([python, "-m", "showbase"], env) == "2.0"


def test_base_interpreter_is_unaffected(release, hooked):
    assert run([str(release.python), "-c", SHOW], release.env()) == "1.0"


def test_order_is_overlay_then_pythonpath_then_stdlib(release, hooked):
    paths = run([str(hooked / "bin" / "python"), "-c", "import sys, json; print(json.dumps(sys.path))"], release.env())
    sys_path = json.loads(paths)
    own = next(i for i, p in enumerate(sys_path) if p.startswith(str(hooked)))
    assert own < sys_path.index(str(release.site))
    assert sum(p.startswith(str(hooked)) for p in sys_path) == 1  # moved, not copied


def test_base_sitecustomize_still_runs(release, hooked, tmp_path):
    (tmp_path / "sitecustomize.py").write_text("import builtins\nbuiltins.RELEASE_CUSTOMIZED = True\n")
    env = release.env(PYTHONPATH=f"{tmp_path}:{release.site}")
    out = run([str(hooked / "bin" / "python"), "-c", "import basepkg; print(RELEASE_CUSTOMIZED, basepkg.__version__)"], env)
    assert out == "True 2.0"


def test_order_chosen_while_active_is_respected(release, hooked, tmp_path):
    """Activated, a user's own checkout put ahead of everything keeps winning: the hook does not reorder."""
    dev = tmp_path / "dev"
    (dev / "basepkg").mkdir(parents=True)
    (dev / "basepkg" / "__init__.py").write_text("__version__ = 'dev'\n")
    site = next((hooked / "lib").glob("python3.*")) / "site-packages"
    env = release.env(PYTHONPATH=f"{dev}:{site}:{release.site}", VIRTUAL_ENV=str(hooked))
    assert run([str(hooked / "bin" / "python"), "-c", SHOW], env) == "dev"


def test_isolated_mode_is_untouched(release, hooked):
    """Under -E/-I Python ignores PYTHONPATH, and so must the hook. Here PYTHONPATH also names the
    standard library's directory, an entry sys.path has under -E too: read from PYTHONPATH, it would
    make the hook move the overlay's site-packages ahead of the standard library, as it does without
    -E; ignored, site's own order stays: the standard library first."""
    python = str(hooked / "bin" / "python")
    stdlib = run([python, "-I", "-c", "import os; print(os.path.dirname(os.__file__))"], release.env())
    env = release.env(PYTHONPATH=f"{stdlib}:{release.site}")

    def overlay_before_stdlib(*flags: str) -> bool:
        sys_path = json.loads(run([python, *flags, "-c", "import json, sys; print(json.dumps(sys.path))"], env))
        own = next(i for i, p in enumerate(sys_path) if p.startswith(str(hooked)))
        return own < sys_path.index(stdlib)

    assert overlay_before_stdlib()  # the hook at work
    assert not overlay_before_stdlib("-E") and not overlay_before_stdlib("-I")
    assert run([python, "-E", "-c", "import sys; print(sys.flags.ignore_environment)"], env) == "1"


def test_hook_is_self_contained(hooked):
    """The overlay needs nothing from overlay-venv at run time: the hook imports only os and sys."""
    hook = next((hooked / "lib").glob("python3.*")) / "site-packages" / "_overlay_venv_hook.py"
    imports = [line for line in hook.read_text().splitlines() if line.startswith(("import ", "from "))]
    assert imports == ["import os", "import sys"]
    out = subprocess.run([str(hooked / "bin" / "python"), "-c", "import overlay_venv"], capture_output=True, text=True)
    assert out.returncode != 0


def test_start_up_modules_are_compiled_at_creation(overlay):
    """Where bytecode is never written at run time (PYTHONDONTWRITEBYTECODE, read-only overlays), a
    module compiled at creation saves the compile at every start."""
    site = next((overlay / "lib").glob("python3.*")) / "site-packages"
    cached = {path.name.split(".")[0] for path in (site / "__pycache__").glob("*.pyc")}
    expected = {"_overlay_venv_hook"} | ({"_virtualenv"} if (site / "_virtualenv.py").exists() else set())
    assert expected <= cached
