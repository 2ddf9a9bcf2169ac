"""`tr2m train` and `tr2m train export` on the command line."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from tr2m_cli.cli import cli
from tr2m_cli.train import loop as training_loop
from tr2m_cli.train.synthetic import SyntheticScenes


@pytest.fixture
def synthetic_by_name(monkeypatch):
    """Datasets by name, as tr2m_cli.data would open them, without a dataset on disk."""
    opened = []

    def open_datasets(names, split, *, data_root=None, captions=None, **where):
        opened.append((tuple(names), split, data_root))
        return {name: SyntheticScenes(8, size=(28, 42), seed=i, name=name) for i, name in enumerate(names)}

    monkeypatch.setattr(training_loop, "open_datasets", open_datasets)
    return opened


def test_train_resume_and_export_from_the_command_line(tiny_model_dir, tmp_path, synthetic_by_name, single_thread):
    run = tmp_path / "run"
    common = ["--model", str(tiny_model_dir), "--device", "cpu", "--workers", "0", "-q"]
    args = ["train", "--datasets", "a", "b", "--data-root", str(tmp_path), "--out", str(run), "--epochs", "1",
            "--batch-size", "4", "--lr", "1e-3", "--input-size", "28x42", "--no-contrast", "--w-smooth", "0.5", *common]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert synthetic_by_name == [(("a", "b"), "train", str(tmp_path))]
    assert f"tr2m train export {run} --which last" in result.output
    config = json.loads((run / "run.json").read_text())["config"]
    assert config["losses"]["contrast_weight"] == 0.0 and config["losses"]["smoothness_weight"] == 0.5
    assert config["input_size"] == [28, 42] and config["datasets"] == ["a", "b"]

    result = CliRunner().invoke(cli, ["train", "--resume", str(run), "--epochs", "2", "--device", "cpu", "--workers", "0", "-q"])
    assert result.exit_code == 0, result.output
    assert (run / "checkpoints" / "epoch-002.safetensors").is_file()

    result = CliRunner().invoke(cli, ["train", "--resume", str(run), "--lr", "1"])
    assert result.exit_code == 2 and "--lr: fixed by the run being resumed" in result.output

    model = tmp_path / "model"
    result = CliRunner().invoke(cli, ["train", "export", str(run), "--which", "last", "--out", str(model)])
    assert result.exit_code == 0, result.output
    from tr2m_cli.model.checkpoint import load_head
    from tr2m_cli.train.state import read_checkpoint

    head = load_head(model / "head.safetensors")
    trained = read_checkpoint(run / "checkpoints" / "epoch-002.safetensors")["head"]
    assert all(torch.equal(head.state_dict()[k], trained[k]) for k in trained)


def test_mistakes_are_one_line_errors(tmp_path):
    result = CliRunner().invoke(cli, ["train", "--datasets", "nyu", "--data-root", str(tmp_path / "none"), "--out", str(tmp_path / "r")])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("tr2m: error: ")
    result = CliRunner().invoke(cli, ["train", "--datasets", "nyu"])
    assert result.exit_code == 2 and "--out is required" in result.output
    result = CliRunner().invoke(cli, ["train", "--out", str(tmp_path / "r"), "--cache-features", str(tmp_path / "c")])
    assert result.exit_code == 2 and "colour augmentation" in result.output
    result = CliRunner().invoke(cli, ["train", "export", str(tmp_path), "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "not a training run folder" in result.output


def test_train_on_native_layouts_by_name(tiny_model_dir, tmp_path, single_thread):
    """`tr2m train --datasets nyu kitti void c3vd` on what `write_tiny_data_root` writes (the
    README's offline try-out), with NYU and KITTI's ground truth moved elsewhere and named by
    --nyu-root and --kitti-gt-root; captions from the paper-style caption trees."""
    import shutil

    from tr2m_cli.data.fixtures import TRAINABLE, write_tiny_data_root

    data = tmp_path / "data"
    # KITTI keeps its native size (training crops the 352×1216 benchmark window) and NYU its
    # 480×640 (training masks the Kinect border); the others can be small.
    write_tiny_data_root(data, TRAINABLE, frames=1, sizes={"void": (42, 56), "c3vd": (42, 56)}, train_frames=2)
    shutil.move(data / "nyu", tmp_path / "nyu-elsewhere")
    shutil.move(data / "kitti" / "data_depth_annotated", tmp_path / "kitti-depth")
    run = tmp_path / "run"
    args = [
        "train", "--datasets", *TRAINABLE, "--data-root", str(data), "--captions", str(data / "captions"),
        "--nyu-root", str(tmp_path / "nyu-elsewhere"), "--kitti-gt-root", str(tmp_path / "kitti-depth" / "train"),
        "--out", str(run), "--epochs", "1", "--batch-size", "2", "--input-size", "28x42",
        "--pseudo-average", "batch", "--contrast-negatives", "sum-exp", "--class-range", "dataset", "--warmup-steps", "2",
        "--model", str(tiny_model_dir), "--device", "cpu", "--workers", "0", "-q",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.output.count("run: ") == 1
    (epoch,) = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert epoch["event"] == "train" and epoch["global_step"] == 4  # 2 frames a set, batch 2: one batch each
    assert all(torch.isfinite(torch.tensor(value)) for value in epoch["loss"].values())
    assert set(epoch["loss_by_dataset"]) == set(TRAINABLE) and epoch["loss"]["total"] > 0
    assert (run / "checkpoints" / "epoch-001.safetensors").is_file()
    config = json.loads((run / "run.json").read_text())["config"]
    assert config["roots"] == {"nyu": str(tmp_path / "nyu-elsewhere")} and config["kitti_gt_root"].endswith("kitti-depth/train")
    assert (config["losses"]["pseudo_average"], config["losses"]["contrast_negatives"], config["losses"]["class_range"]) == (
        "batch", "sum-exp", "dataset",
    )
    assert config["warmup_steps"] == 2 and config["checkpoint_every_steps"] == 1000


def test_sigterm_stops_with_a_checkpoint_and_the_shell_s_exit_status(tiny_model_dir, tmp_path, synthetic_by_name, single_thread, monkeypatch):
    import os
    import signal

    real_loss, calls = training_loop.training_loss, {"n": 0}

    def terminated_during_step_2(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(training_loop, "training_loss", terminated_during_step_2)
    run = tmp_path / "run"
    args = ["train", "--datasets", "a", "b", "--out", str(run), "--epochs", "1", "--batch-size", "2", "--input-size", "28x42",
            "--model", str(tiny_model_dir), "--device", "cpu", "--workers", "0", "-q"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 143, result.output
    assert f"checkpoint {run / 'checkpoints' / 'epoch-001-step-00000002.safetensors'}" in result.output
    assert f"continue with: tr2m train --resume {run}" in result.output
