"""Training checkpoints: one safetensors file holding every tensor of the training state, with
the rest of the state (numbers, lists, the config) as JSON in its metadata.

A checkpoint holds what a resumed run needs to continue exactly: the head, projector and
momentum branch, the optimiser (AdamW moments and step counts), the learning-rate scheduler, the
fp16 gradient scaler, the random generators (Python, NumPy, torch CPU and CUDA), the config and
the position in the schedule. No pickle is involved, so reading one can never run code.

    ckpt = read_checkpoint(path)     # {"head": {...}, "optimizer": {...}, "progress": {...}, ...}
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import WeightsError
from ..io.atomic import atomic_path

FORMAT = "tr2m-training-checkpoint"
FORMAT_VERSION = 1
_META_STATE = "tr2m.training_state"
_META_FORMAT = "format"
_META_PROGRESS = "tr2m.progress"


# -- nested state ⇄ (flat tensors, JSON skeleton) ----------------------------------------------------


def flatten_state(state: Any) -> tuple[dict[str, torch.Tensor], Any]:
    """Split nested dicts/lists/tuples into a flat {name: tensor} map and a JSON-able skeleton in
    which each tensor (or NumPy array) is replaced by a reference to its name. Dict keys may be
    strings or ints (optimiser states use parameter indices); tuples stay tuples."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, torch.Tensor):
            tensors[path] = value.detach().to("cpu").contiguous().clone()
            return {"__tensor__": path}
        if isinstance(value, np.ndarray):
            tensors[path] = torch.from_numpy(np.ascontiguousarray(value).copy())
            return {"__ndarray__": path}
        if isinstance(value, dict):
            if all(isinstance(k, str) for k in value):
                return {k: walk(v, f"{path}.{k}" if path else k) for k, v in value.items()}
            if all(isinstance(k, int) and not isinstance(k, bool) for k in value):
                return {"__int_keys__": {str(k): walk(v, f"{path}.{k}") for k, v in value.items()}}
            raise TypeError(f"{path}: dictionary keys must be all strings or all integers")
        if isinstance(value, tuple):
            return {"__tuple__": [walk(v, f"{path}.{i}") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [walk(v, f"{path}.{i}") for i, v in enumerate(value)]
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, np.generic):
            return value.item()
        raise TypeError(f"{path}: cannot store a {type(value).__name__} in a checkpoint")

    return tensors, walk(state, "")


def unflatten_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(skeleton, dict):
        if set(skeleton) == {"__tensor__"}:
            return tensors[skeleton["__tensor__"]]
        if set(skeleton) == {"__ndarray__"}:
            return tensors[skeleton["__ndarray__"]].numpy()
        if set(skeleton) == {"__tuple__"}:
            return tuple(unflatten_state(v, tensors) for v in skeleton["__tuple__"])
        if set(skeleton) == {"__int_keys__"}:
            return {int(k): unflatten_state(v, tensors) for k, v in skeleton["__int_keys__"].items()}
        return {k: unflatten_state(v, tensors) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [unflatten_state(v, tensors) for v in skeleton]
    return skeleton


# -- files -----------------------------------------------------------------------------------------


def write_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write `state` atomically: a reader sees the previous file or the complete new one."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors, skeleton = flatten_state(state)
    metadata = {
        _META_FORMAT: FORMAT,
        "format_version": str(FORMAT_VERSION),
        _META_STATE: json.dumps(skeleton),
        _META_PROGRESS: json.dumps(state.get("progress", {})),
    }
    with atomic_path(path) as temp:
        save_file(tensors, str(temp), metadata=metadata)
    return path


def _metadata(path: Path) -> dict[str, str]:
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise WeightsError(f"{path}: no such checkpoint")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path}: not a readable checkpoint (truncated or corrupt?): {exc}") from None
    if metadata.get(_META_FORMAT) != FORMAT:
        raise WeightsError(f"{path}: not a tr2m training checkpoint (a model's head file? use `tr2m weights import`)")
    if int(metadata.get("format_version", "0")) > FORMAT_VERSION:
        raise WeightsError(f"{path}: written by a newer tr2m (checkpoint format {metadata['format_version']})")
    return metadata


def read_progress(path: str | Path) -> dict[str, Any]:
    """The schedule position of a checkpoint, without reading its tensors."""
    path = Path(path)
    try:
        return json.loads(_metadata(path)[_META_PROGRESS])
    except (KeyError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{path}: checkpoint metadata unreadable ({exc})") from None


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    path = Path(path)
    metadata = _metadata(path)
    try:
        skeleton = json.loads(metadata[_META_STATE])
        return unflatten_state(skeleton, load_file(str(path), device="cpu"))
    except (KeyError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{path}: checkpoint state unreadable ({exc})") from None


# -- random generators -----------------------------------------------------------------------------


def capture_rng() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        saved = list(state["cuda"])
        if len(saved) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(saved)
