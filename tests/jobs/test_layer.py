"""The job layer's parts, one by one: decode-ahead, fingerprints, the summary, discovery."""

from __future__ import annotations

import json
import os
import threading

import pytest

from tr2m_cli.errors import InputError
from tr2m_cli.jobs import JobSummary, changed_settings, decode_ahead, discover_photos, fingerprint, is_current


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_decode_ahead_keeps_order_and_hands_back_errors(workers):
    threads = set()

    def decode(item: int) -> int:
        threads.add(threading.current_thread().name)
        if item == 3:
            raise ValueError("odd file")
        return item * 10

    results = list(decode_ahead(range(7), decode, workers=workers, prefetch=2))
    assert [item for item, _ in results] == list(range(7))
    assert [r for _, r in results if not isinstance(r, Exception)] == [0, 10, 20, 40, 50, 60]
    assert isinstance(results[3][1], ValueError)
    assert (threads == {threading.current_thread().name}) == (workers == 0)


def test_fingerprints_depend_on_values_not_key_order():
    a = {"model": "m", "caption": "A room.", "input_file": {"bytes": 3, "mtime_ns": 1}}
    b = dict(reversed(list(a.items())))
    assert fingerprint(a) == fingerprint(b) and len(fingerprint(a)) == 24
    assert fingerprint({**a, "caption": "A kitchen."}) != fingerprint(a)
    assert changed_settings(a, {**a, "caption": "x"}) == ["caption"]
    assert changed_settings(None, a) == sorted(a)
    ok = {"status": "ok", "fingerprint": fingerprint(a)}
    assert is_current(ok, fingerprint(a), True)
    assert not is_current(ok, fingerprint(a), False)  # a file is missing
    assert not is_current({**ok, "status": "failed"}, fingerprint(a), True)
    assert not is_current(ok, fingerprint(b | {"model": "n"}), True)


def test_summaries_carry_counts_exit_status_command_line_and_options(tmp_path):
    summary = JobSummary(command="convert", verb="converted", photos=5, done=3, skipped=1, redone=2, options={"batch_size": 4})
    summary.fail("x.jpg", "x.jpg: unreadable")
    assert summary.exit_code == 1
    assert summary.line().startswith("3 of 5 photos converted (2 redone: settings changed), 1 already done, 1 failed in ")
    one = JobSummary(verb="captioned", photos=1, done=1)
    assert one.line().startswith("1 of 1 photo captioned in ")
    summary.write(tmp_path / "summary.json")
    data = json.loads((tmp_path / "summary.json").read_text())
    assert (data["converted"], data["redone"], data["failed"], data["exit_code"]) == (3, 2, 1, 1)
    assert data["options"] == {"batch_size": 4} and isinstance(data["command_line"], list)
    summary.signal = "SIGTERM"
    assert summary.exit_code == 143 and summary.line().startswith("interrupted: ")


def test_a_summary_that_cannot_be_written_says_so_in_words(tmp_path):
    summary = JobSummary()
    (tmp_path / "blocker").write_text("")
    summary.write(tmp_path / "blocker" / "summary.json")
    assert summary.write_errors and "not a directory" in summary.write_errors[0] and summary.exit_code == 1


def test_no_photos_names_what_was_skipped(tmp_path):
    os.mkfifo(tmp_path / "a.jpg")
    (tmp_path / "b.depth16.png").write_bytes(b"")
    with pytest.raises(InputError) as info:
        discover_photos([tmp_path])
    message = str(info.value)
    assert message.startswith(f"no photos found in {tmp_path}") and "a.jpg" in message and "tr2m outputs (b.depth16.png)" in message
