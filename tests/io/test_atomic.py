"""Outputs appear whole or not at all."""

from __future__ import annotations

import pytest

from tr2m_cli.io.atomic import TEMP_PREFIX, atomic_path, remove_stale_temporaries, write_json


def test_success_replaces_and_leaves_no_temporary(tmp_path):
    dest = tmp_path / "sub" / "depth.tiff"
    with atomic_path(dest) as temp:
        assert temp.parent == dest.parent and temp.suffix == ".tiff" and temp.name.startswith(TEMP_PREFIX)
        temp.write_bytes(b"complete")
    assert dest.read_bytes() == b"complete"
    assert [p.name for p in dest.parent.iterdir()] == ["depth.tiff"]


def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    dest = tmp_path / "manifest.json"
    write_json(dest, {"ok": True})
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as temp:
            temp.write_bytes(b"half a fi")
            raise RuntimeError("disk full")
    assert dest.read_text() == '{\n  "ok": true\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_stale_temporaries_are_swept(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / f"{TEMP_PREFIX}1234-x.png").write_bytes(b"partial")
    (tmp_path / "a" / "x.png").write_bytes(b"whole")
    assert remove_stale_temporaries(tmp_path) == 1
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["x.png"]
