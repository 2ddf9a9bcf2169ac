"""The training loop end to end on synthetic scenes with the tiny model (CPU, fp32)."""

from __future__ import annotations

import json
import types

import pytest
import torch

from tr2m_cli.errors import OutputError, WeightsError
from tr2m_cli.losses import LossOptions
from tr2m_cli.train import AugmentOptions, TrainOptions, export_model, resume, train
from tr2m_cli.train import loop as training_loop
from tr2m_cli.train import validation
from tr2m_cli.train.state import read_checkpoint, write_checkpoint
from tr2m_cli.train.synthetic import SyntheticScenes


def _config(root, model_dir, name="run", **changes) -> TrainOptions:
    base = dict(
        out=str(root / name), datasets=("a", "b"), model=str(model_dir), input_size=(42, 56), epochs=2,
        batch_size=4, learning_rate=1e-3, num_workers=0, device="cpu", progress=False, log_every=1,
    )  # fmt: skip
    return TrainOptions(**{**base, **changes})


def _datasets():
    # Different native sizes per dataset: each is resized to the network input.
    return {"a": SyntheticScenes(12, size=(42, 56)), "b": SyntheticScenes(8, size=(48, 64), seed=1, name="b")}


def _records(run, event="train"):
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("event") == event]


def _same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def trained_run(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    threads = torch.get_num_threads()  # set up before the per-test single_thread fixture
    torch.set_num_threads(1)
    try:
        return train(_config(root, tiny_model_dir, epochs=3), datasets=_datasets())
    finally:
        torch.set_num_threads(threads)


def test_a_short_run_lowers_the_loss_substantially_and_leaves_encoders_frozen(trained_run, tiny_model):
    run = trained_run.run_dir
    totals = [r["loss"]["total"] for r in _records(run)]
    assert len(totals) == 3 * 6  # 3 epochs × (3 rounds × 2 datasets)
    first, last = sum(totals[:4]) / 4, sum(totals[-4:]) / 4
    assert last < 0.4 * first, totals
    lrs = sorted({r["lr"] for r in _records(run)}, reverse=True)
    assert lrs == pytest.approx([1e-3, 0.9e-3, 0.81e-3])  # ×0.9 per epoch
    model = trained_run.model
    assert not any(p.requires_grad for p in model.image_encoder.parameters())
    loaded = dict(tiny_model.image_encoder.state_dict())
    assert _same_state(dict(model.image_encoder.state_dict()), loaded)
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["epoch-001.safetensors", "epoch-002.safetensors", "epoch-003.safetensors"]
    record = json.loads((run / "run.json").read_text())
    assert record["units"] == "metres" and record["progress"]["epoch"] == 3


def test_export_gives_a_model_folder_that_loads_and_answers_in_metres(trained_run, tiny_model_dir, tiny_data_root, tmp_path):
    from tr2m_cli import load_model
    from tr2m_cli.weights.folder import read_model_folder

    with pytest.raises(WeightsError, match="no best checkpoint"):
        export_model(trained_run.run_dir, tmp_path / "best")
    folder = export_model(trained_run.run_dir, tmp_path / "last", which="last")
    spec = read_model_folder(folder)
    assert spec.units == "metres" and spec.domain_units == {}
    assert spec.provenance["trained_with"] == "tr2m train" and spec.provenance["global_step"] == 18
    assert spec.encoders.image == str((tiny_model_dir / "encoders" / "dinov2").resolve())
    model = load_model(folder, device="cpu", precision="fp32")
    assert _same_state(model.head.state_dict(), trained_run.model.head.state_dict())
    image = SyntheticScenes(1, size=(42, 56))[0]
    depth = model.predict(image.image, image.captions[0])
    assert depth.shape == (42, 56) and (depth > 0).all()

    from click.testing import CliRunner

    from tr2m_cli.cli import cli

    root, _ = tiny_data_root  # `tr2m eval --model FOLDER` takes the exported folder as it is
    args = ["eval", "--datasets", "nyu", "--data-root", str(root), "--captions", str(root / "captions"), "--model",
            str(folder), "--device", "cpu", "--input-size", "28x42", "--limit", "1", "--out", str(tmp_path / "eval"), "-q"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "eval" / "results.json").is_file()


def test_resume_after_an_interruption_matches_an_uninterrupted_run(tiny_model_dir, tmp_path, monkeypatch):
    config = dict(epochs=2, checkpoint_every_steps=4, steps_per_epoch=6)
    straight = train(_config(tmp_path, tiny_model_dir, "straight", **config), datasets=_datasets())

    real_loss, calls = training_loop.training_loss, {"n": 0}

    def crash_on_step_9(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 9:
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(training_loop, "training_loss", crash_on_step_9)
    with pytest.raises(KeyboardInterrupt):
        train(_config(tmp_path, tiny_model_dir, "interrupted", **config), datasets=_datasets())
    monkeypatch.setattr(training_loop, "training_loss", real_loss)
    run = tmp_path / "interrupted"
    # Last checkpoint before the crash: step 8, part-way through epoch 2.
    part_way = run / "checkpoints" / "epoch-002-step-00000008.safetensors"
    state = read_checkpoint(part_way)
    state["progress"]["processes"] = 2  # as if taken by a 2-process DDP run
    with pytest.raises(OutputError, match="part-way through an epoch with 2 process"):
        resume(write_checkpoint(tmp_path / "two-processes.safetensors", state), datasets=_datasets())
    resumed = resume(run, datasets=_datasets())

    assert resumed.global_step == straight.global_step == 12
    a, b = read_checkpoint(straight.last_checkpoint), read_checkpoint(resumed.last_checkpoint)
    for part in ("head", "projector", "key_branch"):
        assert _same_state(a[part], b[part]), part
    for index, state in a["optimizer"]["state"].items():
        assert _same_state(state, b["optimizer"]["state"][index])
    assert a["scheduler"] == b["scheduler"]
    assert [r["global_step"] for r in _records(run)] == list(range(1, 13))  # replayed steps not doubled


def test_validation_picks_the_best_checkpoint_through_the_eval_module(tiny_model_dir, tmp_path, monkeypatch):
    scores = iter([0.5, 0.3, 0.4])  # abs_rel after epochs 1, 2, 3: epoch 2 is the best
    calls = []

    def evaluate_dataset(model, dataset, *, protocol=None, batch_size=4, limit=None, progress=True):
        calls.append((dataset, limit))
        return types.SimpleNamespace(means={"abs_rel": next(scores), "d1": 0.5})

    monkeypatch.setattr(validation, "evaluate_dataset", evaluate_dataset)
    val = SyntheticScenes(2, size=(42, 56), seed=7, name="val")
    losses = LossOptions(contrast_weight=0.0)  # also: the contrast switched off entirely
    config = _config(tmp_path, tiny_model_dir, epochs=3, steps_per_epoch=2, keep_checkpoints=1, val_limit=5, losses=losses)
    result = train(config, datasets=_datasets(), val_datasets={"val": val})

    assert [(d is val, limit) for d, limit in calls] == [(True, 5)] * 3
    assert result.best_checkpoint == result.run_dir / "best.safetensors"
    best, last = read_checkpoint(result.best_checkpoint), read_checkpoint(result.last_checkpoint)
    assert best["progress"]["epoch"] == 2 and last["progress"]["epoch"] == 3
    assert "projector" not in best and "key_branch" not in best
    assert sorted(p.name for p in (result.run_dir / "checkpoints").iterdir()) == ["epoch-003.safetensors"]
    record = json.loads((result.run_dir / "run.json").read_text())
    assert record["best"]["checkpoint"] == "epoch-002.safetensors" and record["best"]["value"] == 0.3
    assert [r["value"] for r in _records(result.run_dir, "validation")] == [0.5, 0.3, 0.4]
    folder = export_model(result.run_dir, tmp_path / "model")  # which="best" by default
    from tr2m_cli.weights.folder import read_model_folder

    assert read_model_folder(folder).provenance["validation"] == {"metric": "abs_rel", "value": 0.3}


def test_feature_cache_skips_the_encoders_later_and_matches_an_uncached_run(tiny_model_dir, tmp_path, monkeypatch):
    from tr2m_cli.model.tr2m import TR2M

    with pytest.raises(ValueError, match="colour augmentation"):
        _config(tmp_path, tiny_model_dir, cache_features=str(tmp_path / "cache"))
    settings = dict(augment=AugmentOptions.off(), epochs=2)
    plain = train(_config(tmp_path, tiny_model_dir, "plain", **settings), datasets=_datasets())

    calls_per_epoch: list[int] = []
    real_encode = TR2M.encode_image

    def counting(self, pixels):
        calls_per_epoch[-1] += pixels.shape[0]
        return real_encode(self, pixels)

    real_schedule = training_loop.epoch_schedule

    def schedule(*args, **kwargs):
        calls_per_epoch.append(0)
        return real_schedule(*args, **kwargs)

    monkeypatch.setattr(TR2M, "encode_image", counting)
    monkeypatch.setattr(training_loop, "epoch_schedule", schedule)
    cache = tmp_path / "cache"
    cached = train(_config(tmp_path, tiny_model_dir, "cached", cache_features=str(cache), **settings), datasets=_datasets())
    assert calls_per_epoch == [20, 0]  # all 12 + 8 samples encoded once, then read back
    assert len(list(cache.rglob("*.safetensors"))) == 20 and (cache / "cache.json").is_file()
    for key, value in plain.model.head.state_dict().items():
        torch.testing.assert_close(cached.model.head.state_dict()[key], value, rtol=1e-4, atol=1e-5)


def test_runs_do_not_overwrite_each_other_and_resume_keeps_the_recipe(trained_run, tiny_model_dir):
    with pytest.raises(OutputError, match="already holds a training run"):
        train(_config(trained_run.run_dir.parent, tiny_model_dir, trained_run.run_dir.name), datasets=_datasets())
    with pytest.raises(OutputError, match="cannot change learning_rate"):
        resume(trained_run.run_dir, datasets=_datasets(), learning_rate=1.0)


def test_validation_every_n_steps_checkpoints_a_new_best_part_way(tiny_model_dir, tmp_path, monkeypatch):
    scores = iter([0.2, 0.9])

    def evaluate_dataset(model, dataset, **kwargs):
        return types.SimpleNamespace(means={"abs_rel": next(scores)})

    monkeypatch.setattr(validation, "evaluate_dataset", evaluate_dataset)
    config = _config(tmp_path, tiny_model_dir, epochs=1, steps_per_epoch=2, val_every_steps=1, input_size=(28, 42))
    result = train(config, datasets=_datasets(), val_datasets={"val": SyntheticScenes(1)})
    best = read_checkpoint(result.best_checkpoint)["progress"]
    assert (best["epoch"], best["batches_done"], best["global_step"]) == (0, 1, 1)
    names = sorted(p.name for p in (result.run_dir / "checkpoints").iterdir())
    assert names == ["epoch-001-step-00000001.safetensors", "epoch-001.safetensors"]


def test_trains_on_the_dataset_readers_and_validates_with_the_eval_module(tiny_data_root, tiny_model_dir, tmp_path):
    """Native-layout fixtures (their test splits stand in for training data): NYU, KITTI (its
    benchmark crop via the eval protocol) and C3VD (millimetre TIFFs read as metres)."""
    from tr2m_cli.data import open_dataset
    from tr2m_cli.train.batches import TrainingExamples, epoch_schedule, make_sources

    root, _ = tiny_data_root

    def opened(name):
        return open_dataset(name, "test", data_root=root, captions=root / "captions")

    datasets = {name: opened(name) for name in ("nyu", "kitti", "c3vd")}
    config = _config(tmp_path, tiny_model_dir, datasets=tuple(datasets), input_size=(28, 84), epochs=1, batch_size=2, val_limit=1)
    result = train(config, datasets=datasets, val_datasets={"nyu": opened("nyu")})

    assert result.global_step == 3  # one batch of each set
    (entry,) = result.validation
    assert set(entry["results"]) == {"nyu"} and 0 < entry["results"]["nyu"]["abs_rel"] < float("inf")
    assert result.best_checkpoint.is_file() and result.model.head.training  # eval mode undone
    sources = make_sources(datasets, input_size=(28, 84), augment_settings=config.augment)
    assert [s.colour_jitter for s in sources] == [False, False, True]  # C3VD's own jitter
    c3vd = TrainingExamples(sources, config.augment)[epoch_schedule([2, 2, 2], 2, epoch=0, seed=0)[2][0]]
    colon = c3vd["depth"][c3vd["valid"]]
    assert colon.numel() > 0 and colon.max() <= 0.1  # metres: colon depth is under 10 cm


# -- stopping, restarting, refusing --------------------------------------------------------------------


def _failing_loss(monkeypatch, on_call, action):
    real_loss, calls = training_loop.training_loss, {"n": 0}

    def loss(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == on_call:
            action()
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(training_loop, "training_loss", loss)
    return real_loss


def test_checkpoints_come_early_by_default_and_a_folder_without_one_can_be_started_again(tiny_model_dir, tmp_path, monkeypatch, capsys):
    assert TrainOptions(out="x").checkpoint_every_steps == 1000
    config = _config(tmp_path, tiny_model_dir, epochs=1)

    def crash():
        raise RuntimeError("out of memory (simulated)")

    real_loss = _failing_loss(monkeypatch, 1, crash)
    with pytest.raises(RuntimeError, match="out of memory"):
        train(config, datasets=_datasets())
    run = tmp_path / "run"
    assert (run / "run.json").is_file() and not list((run / "checkpoints").glob("*"))  # the crash left no checkpoint
    monkeypatch.setattr(training_loop, "training_loss", real_loss)
    again = train(config, datasets=_datasets())  # the same command works again
    assert again.global_step == 6 and "an earlier start left no checkpoint" in capsys.readouterr().err
    assert [r["global_step"] for r in _records(run)] == list(range(1, 7))

    _failing_loss(monkeypatch, 1, crash)
    with pytest.raises(RuntimeError):
        train(_config(tmp_path, tiny_model_dir, "second", epochs=1), datasets=_datasets())
    monkeypatch.setattr(training_loop, "training_loss", real_loss)
    notices = []
    resumed = resume(tmp_path / "second", datasets=_datasets(), notify=notices.append)  # --resume works too
    assert resumed.global_step == 6 and "wrote no checkpoint before it stopped" in notices[0]


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_a_stop_signal_checkpoints_then_stops_and_resume_finishes_exactly(tiny_model_dir, tmp_path, monkeypatch, signal_name):
    import os
    import signal

    from tr2m_cli.train.loop import TrainingInterrupted

    number = getattr(signal, signal_name)
    settings = dict(epochs=2, steps_per_epoch=4, checkpoint_every_steps=None)
    straight = train(_config(tmp_path, tiny_model_dir, "straight", **settings), datasets=_datasets())
    real_loss = _failing_loss(monkeypatch, 3, lambda: os.kill(os.getpid(), number))  # during step 3
    with pytest.raises(TrainingInterrupted) as info:
        train(_config(tmp_path, tiny_model_dir, "stopped", **settings), datasets=_datasets())
    assert info.value.exit_code == 128 + number
    assert info.value.checkpoint.name == "epoch-001-step-00000003.safetensors"  # step 3 finished, then saved
    assert signal.getsignal(number) is not None and signal.getsignal(number) != training_loop._StopSignals._handle
    monkeypatch.setattr(training_loop, "training_loss", real_loss)
    resumed = resume(tmp_path / "stopped", datasets=_datasets())
    a, b = read_checkpoint(straight.last_checkpoint), read_checkpoint(resumed.last_checkpoint)
    assert all(_same_state(a[part], b[part]) for part in ("head", "projector", "key_branch"))


def test_a_run_of_non_finite_steps_stops_with_a_clear_message(tiny_model_dir, tmp_path, monkeypatch):
    from tr2m_cli.train.loop import TrainingStopped

    real_loss = training_loop.training_loss

    def nan_loss(*args, **kwargs):
        terms = real_loss(*args, **kwargs)
        terms["total"] = terms["total"] * float("nan")
        return terms

    monkeypatch.setattr(training_loop, "training_loss", nan_loss)
    config = _config(tmp_path, tiny_model_dir, epochs=3, max_nonfinite_steps=4)
    with pytest.raises(TrainingStopped, match=r"stopped at step 4: the last 4 steps all had a non-finite loss or gradient"):
        train(config, datasets=_datasets())
    assert [r["skipped_steps"] for r in _records(tmp_path / "run")] == [1, 1, 1, 1]


def test_resume_refuses_another_run_and_other_encoders_and_falls_back_to_a_readable_checkpoint(trained_run, tiny_model_dir, tmp_path):
    import shutil

    # Another run's checkpoint dropped into this run's folder (newer than its own): refused.
    other = train(_config(tmp_path, tiny_model_dir, "other", epochs=1, steps_per_epoch=2), datasets=_datasets())
    shutil.copy(trained_run.last_checkpoint, other.run_dir / "checkpoints" / "epoch-009.safetensors")
    with pytest.raises(OutputError, match=r"a checkpoint of another run \(run [0-9a-f]+\); .*other holds run"):
        resume(other.run_dir, datasets=_datasets())
    # Other encoders than the model has now: refused in one line.
    state = read_checkpoint(trained_run.last_checkpoint)
    state["encoders"] = {**state["encoders"], "image": "/elsewhere/dinov2"}
    moved = write_checkpoint(tmp_path / "moved" / "checkpoints" / "epoch-003.safetensors", state)
    with pytest.raises(OutputError, match=r"trained with other encoders .*image: /elsewhere/dinov2 → "):
        resume(moved.parent.parent, datasets=_datasets())
    # A damaged newest checkpoint: skipped, and said so.
    copy = shutil.copytree(trained_run.run_dir, tmp_path / "copy")
    newest = copy / "checkpoints" / "epoch-003.safetensors"
    newest.write_bytes(newest.read_bytes()[:1000])
    notices = []
    resumed = resume(copy, datasets=_datasets(), notify=notices.append, epochs=3)
    assert resumed.global_step == 18  # from epoch 2, through epoch 3 again
    assert f"skipping an unreadable checkpoint: {newest}" in notices[0] and "epoch-002.safetensors (step 12)" in notices[1]


def test_losses_are_logged_per_dataset_and_warm_up_and_a_late_contrast_are_options(tiny_model_dir, tmp_path):
    config = _config(tmp_path, tiny_model_dir, epochs=2, steps_per_epoch=4, log_every=2, warmup_steps=4, contrast_start_epoch=1)
    result = train(config, datasets=_datasets())
    records = _records(result.run_dir)
    for record in records:  # two steps per record: one batch of each dataset
        by_dataset = record["loss_by_dataset"]
        assert set(by_dataset) == {"a", "b"}
        assert record["loss"]["total"] == pytest.approx((by_dataset["a"]["total"] + by_dataset["b"]["total"]) / 2, rel=1e-5)
    lrs = [r["lr"] for r in records]  # logged at steps 2, 4 (epoch 1), 6, 8 (×0.9)
    assert lrs == pytest.approx([0.5e-3, 1e-3, 0.9e-3, 0.9e-3])
    settings = config.losses
    for record in records:
        loss = record["loss"]
        expected = settings.si_weight * loss["si"] + settings.pseudo_weight * loss["pseudo"] + settings.smoothness_weight * loss["smoothness"]
        if record["epoch"] == 2:  # the contrast pulls from epoch index 1 on
            expected += settings.contrast_weight * loss["contrast"]
        assert loss["total"] == pytest.approx(expected, rel=1e-4)


def test_samples_with_missing_files_are_left_out_of_training_with_a_notice(tiny_model_dir, tmp_path, capsys):
    from tr2m_cli.data import open_dataset
    from tr2m_cli.data.fixtures import write_tiny_dataset

    tiny = write_tiny_dataset("c3vd", tmp_path / "c3vd", frames=5, size=(28, 42), split="train")
    (tmp_path / "c3vd" / tiny.keys[2].replace("_color", "_depth.tiff")).unlink()
    dataset = open_dataset("c3vd", "train", root=tmp_path / "c3vd")
    config = _config(tmp_path, tiny_model_dir, datasets=("c3vd",), epochs=1, batch_size=2, input_size=(28, 42))
    result = train(config, datasets={"c3vd": dataset})
    assert result.global_step == 2  # 4 usable samples, batches of 2
    assert f"c3vd: left out 1 of 5 training samples whose files cannot be read (first: {tiny.keys[2]}" in capsys.readouterr().err
