"""Activation scenarios written once, run in every shell: each ``test_<shell>.py`` subclasses
``ActivationCases`` and names its shell. Every script runs in the real shell, non-interactively, with
the release set up the way a login shell would have it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from capabilities import require_shell
from conftest import ODD_NAME, overlay_venv
from shells import LIBRARY_SOURCED, Shell, watch_library

# PYTHONPATH values the release may leave: unset, empty, a trailing colon (an empty entry Python reads
# as the current directory), spaces, non-ASCII.
PYTHONPATH_CASES = {
    "unset": None,
    "empty": "",
    "trailing-colon": "{site}:",
    "leading-colon": ":{site}",
    "spaces": "/opt/with space/lib:{site}",
    "non-ascii": "/opt/ünïcødé/lib:{site}",
    "glob-chars": "/opt/[ab]*?/lib:{site}",
    "only-colon": ":",
}

# Values each shell's quote function must hand to the shell unchanged: every quoting and expansion
# character.
NASTY = [
    "a'b",
    "!",
    "a!b",
    "\\",
    "end\\",
    "\\'",
    "\\!",
    "$HOME",
    "`true`",
    "$(true)",
    "*",
    "~",
    "a b",
    "%n",
    "ünï",
    "'!'",
    "",
    "{a,b}",
    "#x",
    ";&|<>",
]

EXPORTS_ALLOWED = {"PATH", "PYTHONPATH", "VIRTUAL_ENV", "VIRTUAL_ENV_PROMPT", "PS1"}


class ActivationCases:
    shell_name: str
    shell_class: type[Shell]

    # Function-scoped (it only looks the shell up): pytest 9 deprecates class-scoped fixtures defined
    # on the instance, and a classmethod fixture does not work with Python 3.9's pytest.
    @pytest.fixture
    def shell(self) -> Shell:
        return require_shell(self.shell_class(self.shell_name))

    def script(self, shell: Shell, *lines: str) -> list[str]:
        prefix = [shell.strict()] if shell.strict() else []
        return prefix + list(lines)

    def round_trip(self, shell, overlay: Path, env: dict, cwd: Path, setup: tuple[str, ...] = ()):
        """Probe the state before activating, while active, and after deactivate."""
        lines = [*setup, shell.probe("before"), shell.source(overlay / "bin" / shell.activate_script)]
        lines += [shell.probe("active"), "deactivate", shell.probe("after")]
        return shell.run(self.script(shell, *lines), env=env, cwd=cwd)

    # --- quoting and parsing ---------------------------------------------------------------------------

    def test_quote_gives_values_back_unchanged(self, shell, tmp_path):
        lines = shell.quoting_stress()
        for value in NASTY:
            lines += [shell.set("OVQ", value), "printenv OVQ"]
        result = shell.run(lines, env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}, cwd=tmp_path)
        assert result.stdout == "".join(value + "\n" for value in NASTY)
        assert list(tmp_path.iterdir()) == []

    def test_script_parses(self, shell, overlay39, odd_overlay):
        if shell.syntax_check(overlay39) is None:
            pytest.skip(f"{shell.name} has no usable parse-only mode")
        for overlay in (overlay39, odd_overlay):
            script = overlay / "bin" / shell.activate_script
            result = subprocess.run(shell.syntax_check(script), capture_output=True, text=True)
            assert result.returncode == 0 and result.stderr == "", result.stderr

    # --- the basic promise -------------------------------------------------------------------------

    def test_overlay_wins_while_active_and_base_returns_after(self, shell, release39, overlay39, tmp_path):
        result = self.round_trip(shell, overlay39, release39.env(), tmp_path)
        before, active, after = result["before"], result["active"], result["after"]
        assert before["basepkg"] == "1.0"
        assert active["basepkg"] == "2.0"
        assert active["VIRTUAL_ENV"] == str(overlay39)
        assert active["VIRTUAL_ENV_PROMPT"] == overlay39.name
        assert active["PATH"] == f"{overlay39}/bin:{before['PATH']}"
        assert active["PYTHONPATH"] == f"{site_packages(overlay39)}:{before['PYTHONPATH']}"
        assert active["executable"].startswith(str(overlay39))
        assert after["basepkg"] == "1.0"
        assert exported(after) == exported(before)
        assert set(exported(active)) - set(exported(before)) <= EXPORTS_ALLOWED

    @pytest.mark.parametrize("case", list(PYTHONPATH_CASES))
    def test_round_trip_is_exact(self, shell, release39, overlay39, tmp_path, case):
        value = PYTHONPATH_CASES[case]
        value = None if value is None else value.format(site=release39.site)
        path = f"/opt/bin with space:{release39.bin}:/usr/bin:/bin:"  # PATH with an odd entry and a trailing colon
        setup = (shell.set("PYTHONPATH", value), shell.set("PATH", path))
        result = self.round_trip(shell, overlay39, release39.env(), tmp_path, setup)
        before, active, after = result["before"], result["active"], result["after"]
        assert before["PYTHONPATH"] == value
        # What the shell itself makes of PATH (fish turns an empty entry into "."), before activating.
        path = shell.exported_path(path)
        assert before["PATH"] == path
        expected = site_packages(overlay39) + (f":{value}" if value else "")
        assert active["PYTHONPATH"] == expected  # no empty entry added, none of the user's lost
        assert active["PATH"] == f"{overlay39}/bin:{path}"
        assert after["PYTHONPATH"] == value  # byte for byte, unset stays unset
        assert after["PATH"] == path
        assert exported(after) == exported(before)

    def test_additions_made_while_active_survive_deactivate(self, shell, release39, overlay39, tmp_path):
        result = shell.run(
            self.script(
                shell,
                shell.probe("before"),
                shell.source(overlay39 / "bin" / shell.activate_script),
                shell.prepend("PYTHONPATH", "/opt/rucio/lib"),
                shell.prepend("PATH", "/opt/rucio/bin"),
                shell.probe("changed"),
                "overlay_venv_rebase",
                shell.probe("rebased"),
                "deactivate",
                shell.probe("after"),
            ),
            env=release39.env(),
            cwd=tmp_path,
        )
        before, rebased, after = result["before"], result["rebased"], result["after"]
        sp = site_packages(overlay39)
        assert result["changed"]["PYTHONPATH"] == f"/opt/rucio/lib:{sp}:{before['PYTHONPATH']}"
        assert rebased["PYTHONPATH"] == f"{sp}:/opt/rucio/lib:{before['PYTHONPATH']}"
        assert rebased["PATH"] == f"{overlay39}/bin:/opt/rucio/bin:{before['PATH']}"
        assert rebased["basepkg"] == "2.0"
        assert after["PYTHONPATH"] == f"/opt/rucio/lib:{before['PYTHONPATH']}"
        assert after["PATH"] == f"/opt/rucio/bin:{before['PATH']}"
        assert after["VIRTUAL_ENV"] is None

    def test_double_activation_and_switching_overlays(self, shell, release39, overlay39, second_overlay39, tmp_path):
        result = shell.run(
            self.script(
                shell,
                shell.probe("before"),
                shell.source(overlay39 / "bin" / shell.activate_script),
                shell.source(overlay39 / "bin" / shell.activate_script),
                shell.probe("twice"),
                shell.source(second_overlay39 / "bin" / shell.activate_script),
                shell.probe("second"),
                "deactivate",
                shell.probe("after"),
            ),
            env=release39.env(),
            cwd=tmp_path,
        )
        before = result["before"]
        twice, second = result["twice"], result["second"]
        assert twice["PYTHONPATH"] == f"{site_packages(overlay39)}:{before['PYTHONPATH']}"
        assert twice["PATH"] == f"{overlay39}/bin:{before['PATH']}"
        assert second["PYTHONPATH"] == f"{site_packages(second_overlay39)}:{before['PYTHONPATH']}"
        assert second["PATH"] == f"{second_overlay39}/bin:{before['PATH']}"
        assert second["VIRTUAL_ENV"] == str(second_overlay39)
        assert exported(result["after"]) == exported(before)

    def test_nothing_left_behind(self, shell, release39, overlay39, tmp_path):
        result = shell.run(
            self.script(
                shell,
                shell.source(overlay39 / "bin" / shell.activate_script),
                "deactivate",
                shell.leftovers(),
            ),
            env=release39.env(),
            cwd=tmp_path,
        )
        names = [line.strip() for line in result.lines if line.strip()]
        assert names, "the leftovers command listed nothing: it is not listing variables"
        leftover = [
            name
            for name in names
            if "overlay_venv" in name.lower() or name in ("deactivate", "VIRTUAL_ENV", "VIRTUAL_ENV_PROMPT")
        ]
        assert leftover == []

    def test_inherited_activated_environment_is_cleaned(self, shell, release39, overlay39, second_overlay39, tmp_path):
        """A batch job started with the submitter's activated environment: VIRTUAL_ENV and its entries
        are inherited, its `deactivate` is not. Activating drops every entry at or below $VIRTUAL_ENV."""
        outer = shell.run(
            self.script(shell, shell.source(second_overlay39 / "bin" / shell.activate_script), shell.probe("outer")),
            env=release39.env(),
        )
        inherited = exported(outer["outer"])
        assert inherited["VIRTUAL_ENV"] == str(second_overlay39)
        result = shell.run(
            self.script(
                shell,
                shell.source(overlay39 / "bin" / shell.activate_script),
                shell.probe("job"),
                "deactivate",
                shell.probe("after"),
            ),
            env=inherited,
            cwd=tmp_path,
        )
        job, after = result["job"], result["after"]
        assert str(second_overlay39) not in job["PATH"] and str(second_overlay39) not in job["PYTHONPATH"]
        assert job["PATH"] == f"{overlay39}/bin:{release39.env()['PATH']}"
        assert job["PYTHONPATH"] == f"{site_packages(overlay39)}:{release39.site}"
        assert job["basepkg"] == "2.0"
        # Deactivating returns to the cleaned state: the stale entries do not come back.
        assert (after["PATH"], after["PYTHONPATH"], after["VIRTUAL_ENV"]) == (release39.env()["PATH"], str(release39.site), None)

    def test_odd_directory_name_is_safe(self, shell, release39, odd_overlay, tmp_path):
        assert odd_overlay.name == ODD_NAME
        result = self.round_trip(shell, odd_overlay, release39.env(), tmp_path)
        assert result["active"]["basepkg"] == "2.0"
        assert result["active"]["VIRTUAL_ENV"] == str(odd_overlay)
        assert result["active"]["VIRTUAL_ENV_PROMPT"] == ODD_NAME
        assert exported(result["after"]) == exported(result["before"])
        assert list(tmp_path.iterdir()) == []  # no `pwned` file: nothing in the name ran
        assert not (odd_overlay.parent / "pwned").exists()

    # --- a release set up twice (drift is judged on what Python sees) ------------------------------

    @pytest.fixture
    def two_entry_overlay(self, release39, tmp_path_factory) -> tuple[Path, dict[str, str]]:
        """An overlay on a release whose setup puts two entries on PYTHONPATH (a: its site-packages,
        b: a second directory), its library watched; made once for every shell."""
        if not _TWO_ENTRY:
            extra = tmp_path_factory.mktemp("second-entry")
            dest = tmp_path_factory.mktemp("ov-two") / "twoenv"
            overlay_venv("create", str(dest), "--no-pip", env=release39.env(PYTHONPATH=f"{release39.site}:{extra}"))
            watch_library(dest)
            _TWO_ENTRY.update(overlay=dest, entries={"a": str(release39.site), "b": str(extra), "c": "/opt/other/lib"})
        return _TWO_ENTRY["overlay"], _TWO_ENTRY["entries"]

    def drift_round_trip(self, shell, overlay: Path, entries: dict[str, str], shape: str, env: dict, cwd: Path):
        """Activate and deactivate with PYTHONPATH as ``shape`` says ("a:b:a:b"; "" for an empty entry);
        `overlay-venv info` asked in the same environment."""
        value = ":".join(entries.get(name, name) for name in shape.split(":"))
        result = self.round_trip(shell, overlay, env, cwd, (shell.set("PYTHONPATH", value),))
        info = json.loads(overlay_venv("info", str(overlay), "--json", env={**env, "PYTHONPATH": value}).stdout)
        assert result["before"]["PYTHONPATH"] == value
        assert result["active"]["PYTHONPATH"] == f"{site_packages(overlay)}:{value}"
        assert result["after"]["PYTHONPATH"] == value  # byte for byte, the repeats included
        assert exported(result["after"]) == exported(result["before"])
        return result, info

    @pytest.mark.parametrize("shape", ["a:b:a:b", "a:a:b", "a:b:b:a", "a:b:a"])
    def test_release_set_up_twice_is_the_same_release(self, shell, release39, two_entry_overlay, tmp_path, shape):
        """Repeated entries change nothing Python finds: no warning, the fast path (the library is
        never sourced), and `info` says it matches."""
        overlay, entries = two_entry_overlay
        result, info = self.drift_round_trip(shell, overlay, entries, shape, release39.env(), tmp_path)
        assert result.stderr == "", result.stderr
        assert info["matches_this_shell"] is True and info["differences"] == []
        # What Python sees is what it sees with the release set up once.
        set_up_once = shell.set("PYTHONPATH", f"{entries['a']}:{entries['b']}")
        once = self.round_trip(shell, overlay, release39.env(), tmp_path, (set_up_once,))
        assert result["before"]["sys_path"] == once["before"]["sys_path"]
        assert result["active"]["sys_path"] == once["active"]["sys_path"]

    @pytest.mark.parametrize("shape", ["a:b:c", "a:b:", "a:b:a:b:", ":a:b", "b:a", "a:b:a:c"])
    def test_other_entries_still_warn(self, shell, release39, two_entry_overlay, tmp_path, shape):
        """An entry more, another order, or an empty entry (the current directory) is another release:
        one warning line, from the library, and `info` agrees."""
        overlay, entries = two_entry_overlay
        result, info = self.drift_round_trip(shell, overlay, entries, shape, release39.env(), tmp_path)
        warnings = [line for line in result.stderr.splitlines() if line.startswith("overlay-venv: warning:")]
        assert len(warnings) == 1 and warnings[0].startswith("overlay-venv: warning: PYTHONPATH is "), result.stderr
        if shell.family == "posix":
            assert result.stderr.count(LIBRARY_SOURCED) == 1
        assert info["matches_this_shell"] is False and "PYTHONPATH" in info["differences"][0]


# The overlay of two_entry_overlay, made by the first shell's test that asks for it.
_TWO_ENTRY: dict = {}


def exported(state: dict) -> dict:
    """The environment a program sees, less the shell's own bookkeeping (``_`` is the last argument;
    ksh adds its pid to it)."""
    return {key: value for key, value in state["env"].items() if key not in ("_", "A__z")}


def site_packages(overlay: Path) -> str:
    return str(next((overlay / "lib").glob("python3.*")) / "site-packages")
