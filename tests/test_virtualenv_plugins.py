"""create runs virtualenv with virtualenv's own plugins, cut to the ones it uses
(virtualenv_plugins.py): the same environment as with every plugin, and a plugin that another
distribution registers is never imported."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

from overlay_venv.virtualenv_plugins import CHOSEN, EntryPoints, chosen_entry_points, own_entry_points

Entry = namedtuple("Entry", "name group value")


def test_the_chosen_groups_are_cut_and_the_others_kept():
    entries = [
        Entry("bash", "virtualenv.activate", "a:B"),
        Entry("python", "virtualenv.activate", "a:P"),
        Entry("app-data", "virtualenv.seed", "s:A"),
        Entry("pip", "virtualenv.seed", "s:P"),
        Entry("cpython3-posix", "virtualenv.create", "c:C"),
        Entry("venv", "virtualenv.create", "c:V"),
        Entry("other", "console_scripts", "x:y"),
    ]
    kept = chosen_entry_points(entries)
    assert [entry.name for entry in kept] == ["python", "app-data", "cpython3-posix", "venv", "other"]


def test_a_group_that_lacks_a_chosen_name_is_left_whole_for_virtualenv_to_judge():
    entries = [Entry("bash", "virtualenv.activate", "a:B"), Entry("fish", "virtualenv.activate", "a:F")]
    assert chosen_entry_points(entries) == entries


def test_both_ways_virtualenv_asks_for_a_group():
    entries = EntryPoints([Entry("python", "virtualenv.activate", "a:P"), Entry("x", "other", "b:X")])
    assert [e.name for e in entries.select(group="virtualenv.activate")] == ["python"]
    assert [e.name for e in entries.get("virtualenv.activate", [])] == ["python"]
    assert entries.get("virtualenv.missing", []) == [] and entries.select(group="virtualenv.missing") == []


def test_the_installed_virtualenv_has_every_chosen_plugin():
    """Else the cut would silently be skipped for that group: virtualenv renamed one of create's choices."""
    entries = own_entry_points()
    assert entries is not None
    for group, names in CHOSEN.items():
        assert set(names) <= {entry.name for entry in entries if entry.group == group}, group


def tree(root: Path) -> dict[str, str]:
    """Relative path -> what it is (a link's target, a file's size), pyvenv.cfg by content."""
    shown = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                shown[rel] = "-> " + os.readlink(path)
            elif path.is_file():
                shown[rel] = str(path.stat().st_size)
    shown["pyvenv.cfg"] = (root / "pyvenv.cfg").read_text().replace(str(root), "ROOT")
    return shown


RUN = """\
import sys, contextlib
from pathlib import Path
import overlay_venv.virtualenv_plugins as plugins
from overlay_venv.create import CreateOptions, run_virtualenv
if sys.argv[3] == "all":
    plugins.only_chosen_plugins = contextlib.nullcontext
run_virtualenv(Path(sys.argv[1]), sys.argv[2], CreateOptions(dest=Path(sys.argv[1])), {})
"""


def test_the_environment_is_the_one_every_plugin_would_give(release39, tmp_path):
    env = release39.env()
    # Targets of one length: the scripts' shebangs name them.
    targets = {"chosen": tmp_path / "env1", "all": tmp_path / "env2"}
    for how, target in targets.items():
        cmd = [sys.executable, "-c", RUN, str(target), str(release39.python), how]
        subprocess.run(cmd, env=env, check=True, capture_output=True)
    chosen, every = tree(targets["chosen"]), tree(targets["all"])
    assert chosen == every
    assert "bin/activate" not in chosen and "bin/activate_this.py" in chosen


FOREIGN_PLUGIN = """\
import os
open(os.environ["PLUGIN_MARKER"], "w").write("imported")
from virtualenv.activation.activator import Activator


class Foreign(Activator):
    def generate(self, creator):
        return []
"""


def test_a_plugin_of_another_distribution_is_never_imported(release39, tmp_path):
    plugins = tmp_path / "plugins"
    (plugins / "foreign_plugin-1.0.dist-info").mkdir(parents=True)
    (plugins / "foreign_plugin.py").write_text(FOREIGN_PLUGIN)
    (plugins / "foreign_plugin-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: foreign-plugin\nVersion: 1.0\n"
    )
    (plugins / "foreign_plugin-1.0.dist-info" / "entry_points.txt").write_text(
        "[virtualenv.activate]\nforeign = foreign_plugin:Foreign\n"
    )
    marker = tmp_path / "imported"
    env = release39.env(PLUGIN_MARKER=str(marker))
    # Premise: plain virtualenv, with that distribution on its path, imports the plugin.
    plain = f"import sys; sys.path.insert(0, {str(plugins)!r}); import virtualenv; virtualenv.cli_run(sys.argv[1:])"
    args = [str(tmp_path / "plain"), "--python", str(release39.python), "--no-setuptools", "--quiet"]
    subprocess.run([sys.executable, "-c", plain, *args], env=env, check=True, capture_output=True)
    assert marker.read_text() == "imported"
    marker.unlink()
    ours = (
        f"import sys; sys.path.insert(0, {str(plugins)!r}); sys.argv[0] = 'overlay-venv'; "
        "from overlay_venv._entry import main; main()"
    )
    made = subprocess.run(
        [sys.executable, "-c", ours, "create", "--no-cache", str(tmp_path / "env")], env=env, capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    assert not marker.exists() and (tmp_path / "env" / "bin" / "activate").is_file()


def test_a_loader_first_imported_inside_forgets_what_it_loaded_there():
    """A selector class that virtualenv imports lazily, inside the cut, must not keep the cut set."""
    from virtualenv.run.plugin.base import PluginLoader

    from overlay_venv.virtualenv_plugins import only_chosen_plugins

    with only_chosen_plugins():

        class Late(PluginLoader):
            pass

        Late._OPTIONS = {"cut": object}
    assert "_OPTIONS" not in Late.__dict__ and Late._OPTIONS is PluginLoader._OPTIONS
