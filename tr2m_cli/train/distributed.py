"""Data-parallel training with torch.distributed, started by `torchrun` (no launcher of ours):

    torchrun --nproc_per_node 8 -m tr2m_cli train --datasets nyu kitti void c3vd --out runs/exp1
    srun torchrun --nnodes 4 --nproc_per_node 8 --rdzv-backend c10d --rdzv-endpoint $HEAD:29500 ...

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them training runs as one process. Each
process uses GPU LOCAL_RANK (NCCL), or the CPU (gloo). On several nodes, `node_leaders_first`
loads the model on rank 0, then on each other node's local rank 0, then on the rest, so weights
are fetched once (a shared cache) or once per node (node-local caches), never by every process.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from typing import Callable, TypeVar

import torch
import torch.distributed as dist

from ..errors import InputError
from ..runtime import resolve_device

T = TypeVar("T")


@dataclass(frozen=True)
class Processes:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def start(device_spec: str, timeout_minutes: float = 60.0) -> tuple[Processes, torch.device]:
    """Join the process group if torchrun started us; pick this process's device.

    The timeout is generous because rank 0 validates and writes checkpoints while the others
    wait at a barrier."""
    if not launched_by_torchrun():
        return Processes(), resolve_device(device_spec)
    procs = Processes(
        rank=int(os.environ["RANK"]),
        world_size=int(os.environ["WORLD_SIZE"]),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )
    device = resolve_device(device_spec)
    if device.type == "cuda":
        if procs.local_rank >= torch.cuda.device_count():
            raise InputError(
                f"local rank {procs.local_rank} but only {torch.cuda.device_count()} CUDA device(s): "
                f"lower --nproc_per_node"
            )
        device = torch.device("cuda", procs.local_rank)
        torch.cuda.set_device(device)
    elif device.type == "mps":
        raise InputError("distributed training on MPS is not supported: use --device cpu or CUDA GPUs")
    if not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if device.type == "cuda" else "gloo",
            timeout=_dt.timedelta(minutes=timeout_minutes),
            **({"device_id": device} if device.type == "cuda" else {}),
        )
    return procs, device


def node_leaders_first(procs: Processes, work: Callable[[], T]) -> T:
    """`work()` in every process, in three turns: rank 0; then local rank 0 of every other node;
    then every other process. With weights not yet cached, the first turn downloads them (into a
    cache the nodes may share), the second fills any node-local cache, and the third only reads a
    warm cache: one download per cache, not one per process, and no two processes writing one
    model folder at once. Every process passes the same two barriers."""
    if not procs.distributed:
        return work()
    first, leader = procs.rank == 0, procs.local_rank == 0
    result = work() if first else None
    barrier(procs)
    if leader and not first:
        result = work()
    barrier(procs)
    if not leader:
        result = work()
    return result  # type: ignore[return-value]


def stop(procs: Processes) -> None:
    if procs.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(procs: Processes) -> None:
    if procs.distributed:
        dist.barrier()


def mean_over_processes(values: dict[str, float], procs: Processes, device: torch.device) -> dict[str, float]:
    """Average logged numbers over processes (each saw a different shard)."""
    if not procs.distributed or not values:
        return values
    names = sorted(values)
    tensor = torch.tensor([float(values[n]) for n in names], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return {n: v / procs.world_size for n, v in zip(names, tensor.tolist())}


def broadcast_flag(flag: bool, procs: Processes, device: torch.device) -> bool:
    """Rank 0's decision, shared with every rank."""
    if not procs.distributed:
        return flag
    tensor = torch.tensor([1 if flag else 0], device=device)
    dist.broadcast(tensor, src=0)
    return bool(tensor.item())


def any_process(flag: bool, procs: Processes, device: torch.device) -> bool:
    """True on every process if it is true on any (a stop signal reaching only some of them)."""
    if not procs.distributed:
        return flag
    tensor = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())
