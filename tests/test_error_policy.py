"""One error policy: options that do not go together (usage) exit 2, failures exit 1; both one line."""

from __future__ import annotations

import pytest
from conftest import overlay_venv


@pytest.mark.parametrize(
    "args, words",
    [
        (["install", "--overlay", "{ov}"], "nothing to install"),
        (["install", "--overlay", "{ov}", "--installer", "conda", "six"], "unknown installer 'conda'"),
        (["create", "{tmp}/new", "--keep-setup"], "--keep-setup needs --setup"),
        (["create", "{tmp}/new", "--from", "{tmp}/pylock.toml", "--no-pip"], "leave out --no-pip"),
        (["wrap", "{ov}", "--jobs", "3", "-o", "{tmp}/job.sh", "--", "true"], "--jobs goes with --condor"),
        (["wrap", "{ov}", "--ship", "-o", "-", "--", "true"], "give -o a file name"),
    ],
)
def test_usage_errors_exit_2_in_one_line(overlay39, release39, tmp_path, args, words):
    (tmp_path / "pylock.toml").write_text('lock-version = "1.0"\n')
    args = [arg.format(ov=overlay39, tmp=tmp_path) for arg in args]
    result = overlay_venv(*args, env=release39.env(), check=False)
    assert result.returncode == 2, (args, result.stderr)
    (line,) = result.stderr.splitlines()
    assert line.startswith("overlay-venv: error: ") and words in line


def test_a_failure_exits_1(release39, tmp_path):
    result = overlay_venv("info", str(tmp_path / "missing"), env=release39.env(), check=False)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
