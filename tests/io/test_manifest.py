"""The manifest survives a killed run and ends with one record per photo."""

from __future__ import annotations

import json

from tr2m_cli.io.manifest import ManifestLog, read_manifest


def test_records_are_appended_as_they_come_and_compacted_at_the_end(tmp_path):
    path = tmp_path / "manifest.jsonl"
    log = ManifestLog(path)
    log.append({"input": "b.jpg", "status": "failed"})
    log.append({"input": "a.jpg", "status": "ok"})
    assert len(path.read_text().splitlines()) == 2  # on disk before the run ends
    log.append({"input": "b.jpg", "status": "ok"})
    log.close()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert records == [{"input": "a.jpg", "status": "ok"}, {"input": "b.jpg", "status": "ok"}]


def test_a_half_line_from_a_killed_run_is_ignored_and_old_records_kept(tmp_path):
    path = tmp_path / "manifest.jsonl"
    path.write_text('{"input": "a.jpg", "status": "ok"}\n{"input": "c.jpg", "sta', encoding="utf-8")
    assert list(read_manifest(path)) == ["a.jpg"]
    with ManifestLog(path) as log:
        assert list(log.previous) == ["a.jpg"]
        log.append({"input": "c.jpg", "status": "ok"})
    assert [json.loads(line)["input"] for line in path.read_text().splitlines()] == ["a.jpg", "c.jpg"]


def test_two_logs_on_one_file_merge_and_lose_nothing(tmp_path):
    """Two runs sharing an output folder: each compacts in turn, the other keeps appending."""
    path = tmp_path / "manifest.jsonl"
    first, second = ManifestLog(path), ManifestLog(path)
    first.append({"input": "a.jpg", "status": "ok"})
    second.append({"input": "b.jpg", "status": "ok"})
    first.close()  # compacts: a new file under the name
    second.append({"input": "c.jpg", "status": "ok"})  # goes to the new file
    second.close()
    assert sorted(read_manifest(path)) == ["a.jpg", "b.jpg", "c.jpg"]
    assert len(path.read_text().splitlines()) == 3


def test_a_record_that_could_not_be_appended_is_written_at_the_end(tmp_path, monkeypatch):
    import errno

    path = tmp_path / "manifest.jsonl"
    log = ManifestLog(path)

    def full(data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(log, "_write", full)
    log.append({"input": "a.jpg", "status": "ok"})
    assert log.append_error is not None and log.append_error.errno == errno.ENOSPC
    monkeypatch.undo()
    log.close()
    assert list(read_manifest(path)) == ["a.jpg"]


def test_names_that_are_not_utf8_round_trip(tmp_path):
    import os

    key = os.fsdecode(b"caf\xe9.jpg")
    with ManifestLog(tmp_path / "manifest.jsonl") as log:
        log.append({"input": key, "status": "ok"})
    text = (tmp_path / "manifest.jsonl").read_bytes().decode("utf-8")
    assert "\\udce9" in text and list(read_manifest(tmp_path / "manifest.jsonl")) == [key]
