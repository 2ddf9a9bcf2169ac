"""Two-process data-parallel training on the CPU (gloo), started by torchrun as users do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from tr2m_cli.train.batches import epoch_schedule
from tr2m_cli.train.state import read_checkpoint

WORKER = Path(__file__).with_name("ddp_worker.py")


def test_two_processes_end_with_identical_heads_and_only_rank0_writes_and_reports(tiny_model_dir, tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(WORKER), str(tiny_model_dir), str(tmp_path)]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    rank0 = load_file(str(tmp_path / "rank-0.safetensors"))
    rank1 = load_file(str(tmp_path / "rank-1.safetensors"))
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)

    # Each process trained on its own shard, so identical weights mean gradients were averaged.
    kwargs = dict(epoch=0, seed=0, world_size=2)
    schedules = [epoch_schedule([8, 6], 2, rank=rank, **kwargs) for rank in (0, 1)]
    for batch0, batch1 in zip(*schedules):
        assert {(r.source, r.index) for r in batch0} != {(r.source, r.index) for r in batch1}

    # Rank 0 alone wrote the run: one checkpoint holding the same head, one log line per step.
    run = tmp_path / "run"
    checkpoint = read_checkpoint(run / "checkpoints" / "epoch-001.safetensors")
    assert all(torch.equal(checkpoint["head"][k], rank0[k]) for k in rank0)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = len(epoch_schedule([8, 6], 2, rank=0, **kwargs))
    assert [r["global_step"] for r in records] == list(range(1, steps + 1))
    assert json.loads((run / "run.json").read_text())["processes"] == 2
    # Every process ran the command; only rank 0 printed its closing lines.
    assert done.stdout.count("run: ") == 1 and done.stdout.count("export: tr2m train export") == 1, done.stdout

