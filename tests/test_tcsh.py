"""Activation in real tcsh: the shared scenarios of activation_cases.py, plus the csh prompt.

``CshCases`` is shared with test_csh.py (plain BSD csh runs the same script)."""

from __future__ import annotations

import subprocess
import sys

from activation_cases import ActivationCases
from conftest import ODD_NAME
from shells import CshShell


class CshCases(ActivationCases):
    shell_class = CshShell

    def test_prompt_is_prefixed_and_restored(self, shell, release39, odd_overlay, tmp_path):
        # A non-interactive shell has no prompt; setting one makes the script treat it as interactive.
        result = shell.run(
            [
                "set prompt = '%n> '",
                shell.source(odd_overlay / "bin" / shell.activate_script),
                'echo "$prompt:q"',
                "deactivate",
                'echo "$prompt:q"',
            ],
            env=release39.env(),
            cwd=tmp_path,
        )
        shown, restored = result.lines
        # The stored text is escaped for prompt expansion: `!` (the history number) as `\!`, and in
        # tcsh `%` as `%%`, so the name shows as typed.
        escaped = ODD_NAME.replace("!", "\\!")
        if shell.name == "tcsh":
            escaped = escaped.replace("%", "%%").replace("^", "\\^")
        assert shown == f"({escaped}) %n> "
        assert restored == "%n> "
        assert list(tmp_path.iterdir()) == []  # nothing in the name ran

    def test_no_prompt_in_a_non_interactive_shell(self, shell, release39, overlay39, tmp_path):
        result = shell.run(
            [
                shell.source(overlay39 / "bin" / shell.activate_script),
                # Block form: csh substitutes a one-line `if` whole, $prompt included, before testing.
                "if ( $?prompt ) then",
                'echo "prompt: $prompt:q"',
                "endif",
                "echo done",
            ],
            env=release39.env(),
            cwd=tmp_path,
        )
        assert result.lines == ["done"]

    def test_prompt_can_be_disabled(self, shell, release39, overlay39, tmp_path):
        result = shell.run(
            ["set prompt = '> '", shell.source(overlay39 / "bin" / shell.activate_script), 'echo "$prompt:q"'],
            env=release39.env(VIRTUAL_ENV_DISABLE_PROMPT="1"),
            cwd=tmp_path,
        )
        assert result.lines == ["> "]

    def test_plain_virtualenv_is_deactivated_first(self, shell, release39, overlay39, tmp_path):
        """virtualenv's own activate.csh active in this shell: ours calls its `deactivate` first, so
        deactivating the overlay returns to the state before both."""
        venv = tmp_path / "plain"
        # The virtualenv overlay-venv itself runs on writes the scripts; --python builds on the release.
        subprocess.run(
            [
                sys.executable,
                "-m",
                "virtualenv",
                "--quiet",
                "--no-seed",
                "--activators",
                "cshell",
                "--python",
                str(release39.python),
                str(venv),
            ],
            check=True,
            capture_output=True,
        )
        result = shell.run(
            [
                shell.probe("before"),
                shell.source(venv / "bin" / "activate.csh"),
                shell.source(overlay39 / "bin" / shell.activate_script),
                shell.probe("overlay"),
                "deactivate",
                shell.probe("after"),
            ],
            env=release39.env(),
            cwd=tmp_path,
        )
        before, overlay, after = result["before"], result["overlay"], result["after"]
        assert overlay["PATH"] == f"{overlay39}/bin:{before['PATH']}"
        assert overlay["VIRTUAL_ENV"] == str(overlay39)
        assert overlay["basepkg"] == "2.0"
        assert (after["PATH"], after["PYTHONPATH"], after["VIRTUAL_ENV"]) == (before["PATH"], before["PYTHONPATH"], None)


class TestTcsh(CshCases):
    shell_name = "tcsh"
