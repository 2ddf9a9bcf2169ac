"""Two-process data-parallel training on the CPU (gloo), started by torchrun as users do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
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


NODE_WORKER = Path(__file__).with_name("node_worker.py")


@pytest.mark.netns
def test_two_nodes_fetch_the_weights_once_each_and_local_rank_0_first(tmp_path, file_server, served_tiny_model):
    """Two torchrun "nodes" of two processes (c10d rendezvous on 127.0.0.1), each with its own
    node-local cache: the head is downloaded once per node, by local rank 0, before the others load."""
    import socket

    registry = served_tiny_model("tiny-net")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "out"
    out.mkdir()
    launchers = []
    for node in ("n0", "n1"):
        env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TR2M_OFFLINE")}
        env.update(TR2M_HOME=str(tmp_path / node / "tr2m"), HF_HOME=str(tmp_path / node / "hf"), TR2M_REGISTRY=str(registry),
                   TEST_NODE=node, PYTHONWARNINGS="ignore", GLOO_SOCKET_IFNAME="lo")  # fmt: skip
        command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "2",
                   "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "tr2m-test",
                   "--local-addr", "127.0.0.1", str(NODE_WORKER), "tiny-net", str(out)]  # fmt: skip
        launchers.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [launcher.communicate(timeout=400)[0] for launcher in launchers]
    assert all(launcher.returncode == 0 for launcher in launchers), "\n".join(o[-3000:] for o in outputs)

    records = [json.loads((out / f"rank-{rank}.json").read_text()) for rank in range(4)]
    assert len({r["digest"] for r in records}) == 1  # every process holds the same weights
    downloads = [path for path, _ in file_server.requests if path == "tiny.pth"]
    assert len(downloads) == 2  # once per node-local cache, not once per process
    for node in ("n0", "n1"):
        leader = next(r for r in records if r["node"] == node and r["local_rank"] == 0)
        follower = next(r for r in records if r["node"] == node and r["local_rank"] == 1)
        assert leader["end"] <= follower["start"]
    assert {r["node"] for r in records if r["rank"] == 0} <= {"n0", "n1"}
