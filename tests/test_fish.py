"""Activation in real fish: the shared scenarios of activation_cases.py, plus fish's prompt."""

from __future__ import annotations

from activation_cases import ActivationCases
from conftest import ODD_NAME
from shells import FishShell


class TestFish(ActivationCases):
    shell_name = "fish"
    shell_class = FishShell

    def test_prompt_shows_the_name_and_comes_back(self, shell, release39, odd_overlay, tmp_path):
        # A prompt that shows the last status, as many do: the wrapper must hand the status on.
        result = shell.run(
            [
                "function fish_prompt; printf 'user[%s]> ' $status; end",
                "false; fish_prompt; echo",
                shell.source(odd_overlay / "bin" / shell.activate_script),
                "false; fish_prompt; echo",
                "deactivate",
                "false; fish_prompt; echo",
                "functions --all --names | string match -e overlay_venv; or echo none",
            ],
            env=release39.env(),
            cwd=tmp_path,
        )
        assert result.lines == ["user[1]> ", f"({ODD_NAME}) user[1]> ", "user[1]> ", "none"]
        assert list(tmp_path.iterdir()) == []  # nothing in the name ran

    def test_default_prompt_is_restored(self, shell, release39, overlay39, tmp_path):
        result = shell.run(
            [
                "functions fish_prompt | string collect > before",
                shell.source(overlay39 / "bin" / shell.activate_script),
                "fish_prompt | string match -q '(myenv) *'; and echo prefixed",
                "deactivate",
                "functions fish_prompt | string collect > after",
                "fish_prompt | string match -q '(myenv) *'; or echo plain",
            ],
            env=release39.env(),
            cwd=tmp_path,
        )
        assert result.lines == ["prefixed", "plain"]
        # The same definition is back (functions -c keeps the body; only the header line may differ).
        before = (tmp_path / "before").read_text().splitlines()
        after = (tmp_path / "after").read_text().splitlines()
        assert [line for line in before if not line.startswith("#")][1:] == [line for line in after if not line.startswith("#")][
            1:
        ]

    def test_prompt_can_be_disabled(self, shell, release39, overlay39, tmp_path):
        result = shell.run(
            [
                "function fish_prompt; echo -n 'user> '; end",
                shell.source(overlay39 / "bin" / shell.activate_script),
                "fish_prompt; echo",
            ],
            env=release39.env(VIRTUAL_ENV_DISABLE_PROMPT="1"),
            cwd=tmp_path,
        )
        assert result.lines == ["user> "]
