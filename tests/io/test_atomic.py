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


def test_a_link_planted_at_the_destination_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "out.json").symlink_to(victim)
    write_json(tmp_path / "out.json", {"a": 1})
    assert victim.read_text() == "precious" and not (tmp_path / "out.json").is_symlink()


def test_a_temporary_name_held_by_someone_else_is_not_written_through(tmp_path, monkeypatch):
    from tr2m_cli.io import atomic

    victim = tmp_path / "victim"
    victim.write_text("precious")
    names = iter(["planted", "ours"])
    monkeypatch.setattr(atomic.secrets, "token_hex", lambda n: next(names))
    (tmp_path / f"{TEMP_PREFIX}planted-x.png").symlink_to(victim)
    atomic.write_bytes(tmp_path / "x.png", b"image")
    assert victim.read_text() == "precious" and (tmp_path / "x.png").read_bytes() == b"image"


def test_files_follow_the_umask_whatever_the_writer_chose(tmp_path):
    import os
    import stat

    old = os.umask(0o027)
    try:
        with atomic_path(tmp_path / "w.bin") as temp:
            temp.unlink()  # a writer that recreates the file with its own mode (safetensors: 0600)
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
        write_json(tmp_path / "j.json", {})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "w.bin").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "j.json").stat().st_mode) == 0o640


def test_long_names_keep_temporaries_within_the_name_limit(tmp_path):
    import os

    name = "é" * 100 + ".preview.png"  # 212 bytes in UTF-8
    write_json(tmp_path / name, {})
    assert (tmp_path / name).is_file()
    from tr2m_cli.io.atomic import temp_path_for

    temp = temp_path_for(tmp_path / name)
    assert len(os.fsencode(temp.name)) <= 255 and temp.suffix == ".png" and temp.name.startswith(TEMP_PREFIX)
