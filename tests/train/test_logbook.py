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


def test_tensorboard_shows_no_step_twice_after_a_resume(tiny_model_dir, tmp_path, monkeypatch):
    """TensorBoard's event files are append-only; a resumed run asks it (purge_step, its documented
    mechanism) to hide what the interrupted session wrote past the checkpoint. The stand-in writer
    below keeps scalars the way TensorBoard shows them."""
    import sys
    import types

    from tr2m_cli.train import TrainOptions, resume, train
    from tr2m_cli.train import loop as training_loop
    from tr2m_cli.train.synthetic import SyntheticScenes

    shown: dict[str, dict[int, float]] = {}

    class SummaryWriter:
        def __init__(self, log_dir, purge_step=None):
            if purge_step is not None:
                for series in shown.values():
                    for step in [s for s in series if s >= purge_step]:
                        del series[step]

        def add_scalar(self, tag, value, step):
            assert step not in shown.setdefault(tag, {}), f"{tag} step {step} written twice"
            shown[tag][step] = value

        def close(self):
            pass

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=SummaryWriter))
    monkeypatch.setattr(logbook, "tensorboard_available", lambda: True)
    datasets = {"a": SyntheticScenes(8, size=(28, 42)), "b": SyntheticScenes(8, size=(28, 42), seed=1, name="b")}
    config = TrainOptions(out=str(tmp_path / "run"), datasets=("a", "b"), model=str(tiny_model_dir), input_size=(28, 42), epochs=2,
                         batch_size=4, num_workers=0, device="cpu", progress=False, log_every=1, checkpoint_every_steps=2,
                         tensorboard=True)  # fmt: skip
    real_loss, calls = training_loop.training_loss, {"n": 0}

    def crash_on_step_4(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # step 3 was logged after step 2's checkpoint: resuming repeats it
            raise RuntimeError("crash")
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(training_loop, "training_loss", crash_on_step_4)
    with pytest.raises(RuntimeError):
        train(config, datasets=datasets)
    monkeypatch.setattr(training_loop, "training_loss", real_loss)
    resume(tmp_path / "run", datasets=datasets)
    assert sorted(shown["train/loss/total"]) == list(range(1, 9))
    assert sorted(shown["train/loss_by_dataset/a/total"]) == [1, 3, 5, 7]  # per dataset, too
