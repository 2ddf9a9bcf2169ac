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
