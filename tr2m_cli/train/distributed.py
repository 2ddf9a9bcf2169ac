"""Data-parallel training with torch.distributed, started by `torchrun` (no launcher of ours):

    torchrun --nproc_per_node 8 -m tr2m_cli train --datasets nyu kitti void c3vd --out runs/exp1

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them training runs as one process. Each
process uses GPU LOCAL_RANK (NCCL), or the CPU (gloo).
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import InputError
from ..runtime import resolve_device


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
