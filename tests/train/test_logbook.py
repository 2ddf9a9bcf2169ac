"""The metrics log: JSON Lines, trimmed back to a checkpoint on resume."""

from __future__ import annotations

import json

import pytest

from tr2m_cli.errors import InputError
from tr2m_cli.train import logbook
from tr2m_cli.train.logbook import Logbook


def test_records_are_json_lines_and_resume_trims_later_ones(tmp_path):
    log = Logbook(tmp_path, tensorboard=False)
    for step in (1, 2, 3):
        log.write({"event": "train", "global_step": step, "loss": {"total": 1.0 / step}})
    with (tmp_path / "metrics.jsonl").open("a") as handle:
        handle.write('{"event": "train", "global_st')  # a line cut short by a crash
    log.truncate_after(2)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["global_step"] for r in records] == [1, 2] and records[1]["loss"]["total"] == 0.5
    Logbook(tmp_path / "other", enabled=False).write({"global_step": 1})
    assert not (tmp_path / "other").exists()  # processes other than rank 0 write nothing


def test_asking_for_tensorboard_without_the_package_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(logbook, "tensorboard_available", lambda: False)
    with pytest.raises(InputError, match="pip install tensorboard"):
        Logbook(tmp_path, tensorboard=True)
