"""Choosing the device and the numeric precision, the same way for every command."""

from __future__ import annotations

import torch

from .errors import InputError

DEVICE_CHOICES = "auto|cuda|cuda:N|mps|cpu"
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """`auto` prefers CUDA, then Apple's MPS, then the CPU; an explicit device that this machine
    lacks is an error rather than a silent fallback."""
    if isinstance(spec, torch.device):
        return spec
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise InputError(f"device '{spec}': expected one of {DEVICE_CHOICES}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device '{spec}': CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(f"device '{spec}': this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            raise InputError(f"device '{spec}': MPS is not available on this machine")
    elif device.type != "cpu":
        raise InputError(f"device '{spec}': expected one of {DEVICE_CHOICES}")
    return device


def resolve_precision(spec: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """`auto`: bf16 on CUDA GPUs that support it, else fp16 on CUDA, fp32 elsewhere (CPUs gain
    nothing from half precision here, and MPS half-precision kernels are not uniformly reliable)."""
    if isinstance(spec, torch.dtype):
        return spec
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if spec not in PRECISIONS:
        raise InputError(f"precision '{spec}': expected auto, {', '.join(PRECISIONS)}")
    return PRECISIONS[spec]


def precision_name(dtype: torch.dtype) -> str:
    """fp32, fp16 or bf16: how outputs record the precision a model ran in."""
    return next((name for name, value in PRECISIONS.items() if value == dtype), str(dtype).replace("torch.", ""))
