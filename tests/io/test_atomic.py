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


def test_removing_the_temporaries_of_some_destinations_spares_the_others(tmp_path):
    from tr2m_cli.io.atomic import remove_stale_temporaries_of, temp_path_for

    mine, theirs = tmp_path / "a.depth.tiff", tmp_path / "b.depth.tiff"
    for dest in (mine, theirs, tmp_path / "sub" / "a.depth.tiff"):
        dest.parent.mkdir(exist_ok=True)
        temp_path_for(dest).write_bytes(b"half")
    assert remove_stale_temporaries_of([mine]) == 1
    left = sorted(p.name for p in tmp_path.rglob(".tr2m-tmp-*"))
    assert len(left) == 2 and all(name.endswith("-b.depth.tiff") or name.endswith("-a.depth.tiff") for name in left)
    assert not any(p.parent == tmp_path and p.name.endswith("-a.depth.tiff") for p in tmp_path.rglob(".tr2m-tmp-*"))
