"""SIGINT and SIGTERM stop a job alike; a second Ctrl-C waits for writes already under way."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
import pytest
from PIL import Image

from tr2m_cli.convert import ConvertOptions, convert, worker
from tr2m_cli.io.captions import CaptionRules
from tr2m_cli.io.manifest import read_manifest
from tr2m_cli.jobs import JobInterrupted, StopSignals
from tr2m_cli.model.inference import DepthPredictor
from tr2m_cli.model.preprocess import SizePolicy


def test_a_signal_inside_a_deferred_section_acts_when_it_ends():
    said = []
    before = signal.getsignal(signal.SIGTERM)
    with StopSignals(said.append) as signals:
        with pytest.raises(JobInterrupted) as stopped:
            with signals.deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)
                finished = True  # the section was not cut
        assert finished and stopped.value.exit_code == 143
        os.kill(os.getpid(), signal.SIGINT)  # later signals only say what is going on
        time.sleep(0.05)
    assert said and "still saving" in said[0]
    assert signal.getsignal(signal.SIGTERM) is before  # the handlers are the caller's again


def test_an_interrupt_that_code_swallowed_stops_the_job_at_the_next_finished_photo():
    with StopSignals(lambda line: None) as signals:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
        except JobInterrupted:
            pass  # as a failing `finally` or a library catching too much would lose it
        with pytest.raises(JobInterrupted) as stopped:
            with signals.deferred():
                finished = True
        assert finished and stopped.value.exit_code == 143
        signals.interrupt(stopped.value.signal_number)  # the job caught it: saving now
        with signals.deferred():  # and is not interrupted again while it saves
            pass


def test_an_interrupt_while_a_photo_is_opened_stays_an_interrupt(tmp_path, monkeypatch):
    """A signal that lands just after a file object took the descriptor must reach the job as
    the interrupt (with fdopen and our own cleanup, the descriptor was closed twice and EBADF
    replaced the interrupt: the job ran on), and no later open may be hurt by it."""
    import gc

    from tr2m_cli.io import files

    photo = tmp_path / "a.png"
    photo.write_bytes(b"x" * 10)

    def open_then_interrupted(*args, **kwargs):
        handle = open(*args, **kwargs)  # the file object owns the descriptor now ...
        del handle
        raise KeyboardInterrupt  # ... and the handler's exception lands

    monkeypatch.setattr(os, "fdopen", open_then_interrupted)
    monkeypatch.setattr(files, "open", open_then_interrupted, raising=False)
    with pytest.raises(KeyboardInterrupt):
        files.open_regular(photo)
    monkeypatch.undo()
    gc.collect()
    for _ in range(50):  # every later open works (no descriptor was closed twice)
        with files.open_regular(photo) as handle:
            assert handle.read() == b"x" * 10


def test_a_second_ctrl_c_waits_for_the_writes_under_way(tmp_path, tiny_model, monkeypatch):
    folder = tmp_path / "photos"
    rng = np.random.default_rng(0)
    folder.mkdir()
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    written = []
    real_write, real_run = worker.write_photo, DepthPredictor.run_batch

    def slow_write(photo, depth, context, **kwargs):
        time.sleep(0.4)  # a big file on a slow disk
        record = real_write(photo, depth, context, **kwargs)
        written.append(record["input"])
        return record

    batches = []

    def run(self, photos):
        batches.append(len(photos))
        if len(batches) == 4:
            # Ctrl-C now, and again while the writes of the first batches are still going.
            threading.Timer(0.15, os.kill, (os.getpid(), signal.SIGINT)).start()
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)
        return real_run(self, photos)

    monkeypatch.setattr(worker, "write_photo", slow_write)
    monkeypatch.setattr(DepthPredictor, "run_batch", run)
    options = ConvertOptions(progress=False, decode_workers=1, write_workers=4, batch_size=1, size=SizePolicy(token_budget=60),
                             captions=CaptionRules(caption="A room."), outputs=("npy",))  # fmt: skip
    with pytest.raises(KeyboardInterrupt) as stopped:
        convert([folder], tmp_path / "out", options, model=tiny_model)
    assert isinstance(stopped.value, JobInterrupted) and stopped.value.summary.interrupted
    records = read_manifest(tmp_path / "out" / "manifest.jsonl")
    assert len(written) == 3 and sorted(records) == sorted(written)  # every finished photo recorded
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["interrupted"] and summary["signal"] == "SIGINT" and summary["converted"] == 3
    assert summary["exit_code"] == 130
