"""The overlay record is versioned: newer formats refused with the upgrade to run, older ones migrated,
unknown keys kept where they were."""

from __future__ import annotations

import json

import pytest
from conftest import overlay_venv

from overlay_venv.errors import OverlayError
from overlay_venv.record import RECORD_FORMAT, UPGRADE, OverlayRecord, read_record, write_record


def data_of(overlay) -> dict:
    return json.loads((overlay / "overlay-venv.json").read_text())


def test_a_new_overlay_writes_the_current_format(overlay):
    data = data_of(overlay)
    assert data["format"] == RECORD_FORMAT == 2
    assert "extra" not in data and data["allow_shadow"] == [] and "environment" in data["base"]


def test_unknown_keys_stay_where_they_were_on_rewrite(overlay, tmp_path):
    data = data_of(overlay)
    data["future_key"] = {"x": 1}
    data["base"]["future_base_key"] = "y"
    target = tmp_path / "ov"
    target.mkdir()
    write_record(target, OverlayRecord.from_json(json.dumps(data)))
    again = data_of(target)
    assert again["future_key"] == {"x": 1} and again["base"]["future_base_key"] == "y"
    assert again == data


def test_format_1_is_migrated(overlay):
    """What overlay-venv 0.1.0 wrote: no allow_shadow nor base.environment, the keys it did not know
    nested under "extra"."""
    data = data_of(overlay)
    del data["allow_shadow"]
    del data["base"]["environment"]
    data["format"] = 1
    data["extra"] = {"from_a_newer_one": [1, 2]}
    record = OverlayRecord.from_json(json.dumps(data))
    assert record.allow_shadow == [] and record.base.environment is None
    assert record.to_data()["from_a_newer_one"] == [1, 2] and record.to_data()["format"] == RECORD_FORMAT
    assert "extra" not in record.to_data()


@pytest.mark.parametrize("version", [RECORD_FORMAT + 1, 99])
def test_a_newer_format_is_refused_with_the_upgrade_in_every_command(overlay, tmp_path, release, version):
    import shutil

    copy = tmp_path / "ov"
    shutil.copytree(overlay, copy, symlinks=True)
    data = data_of(copy)
    data["format"] = version
    (copy / "overlay-venv.json").write_text(json.dumps(data))
    with pytest.raises(OverlayError) as info:
        read_record(copy)
    assert f"record format {version}" in info.value.message and UPGRADE in info.value.message
    for args in (["info", str(copy)], ["list", str(copy)], ["check", str(copy)], ["lock", str(copy), "-o", "-"]):
        result = overlay_venv(*args, env=release.env(), check=False)
        assert result.returncode == 1, result
        (line,) = result.stderr.splitlines()
        assert line.startswith("overlay-venv: error: ") and "newer overlay-venv" in line and UPGRADE in line
    assert json.loads((copy / "overlay-venv.json").read_text())["format"] == version  # never rewritten


def test_info_json_is_rendered_by_the_record(overlay, release):
    shown = json.loads(overlay_venv("info", str(overlay), "--json", env=release.env()).stdout)
    record = read_record(overlay)
    assert {key: shown[key] for key in record.info_json(overlay)} == record.info_json(overlay)
    assert shown["matches_this_shell"] is True
