"""Depth as OpenEXR, the VFX and Blender convention: float32, one channel, metres.

The single channel is "Z" (the depth channel of OpenEXR's naming convention, what compositors and
Blender's depth passes use), float32 with lossless ZIP compression, so it reads back bit-for-bit
equal to the TIFF. Missing depth stays NaN. The header carries, besides OpenEXR's required
attributes:

| attribute | type | content |
|---|---|---|
| `unit` | string | "metres" |
| `quantity` | string | what the values measure (planar depth along the optical axis) |
| `intrinsics` | m33f | the pinhole matrix K in pixels (OpenCV convention, see `io/intrinsics.py`), when known |
| `tr2m` | string | JSON: the same metadata as the TIFF's ImageDescription (model, caption, intrinsics…) |

Written with the `OpenEXR` package (the Academy Software Foundation's bindings; `exr` extra).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import InputError
from .atomic import atomic_path
from .depth_files import DEPTH_QUANTITY, DEPTH_UNIT, _as_depth

EXR_CHANNEL = "Z"


def _matrix(intrinsics: Any) -> np.ndarray | None:
    """K from an intrinsics mapping ("matrix", or fx fy cx cy), else None."""
    if not isinstance(intrinsics, Mapping):
        return None
    if "matrix" in intrinsics:
        return np.asarray(intrinsics["matrix"], dtype=np.float32).reshape(3, 3)
    if all(k in intrinsics for k in ("fx", "fy", "cx", "cy")):
        fx, fy, cx, cy = (float(intrinsics[k]) for k in ("fx", "fy", "cx", "cy"))
        return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=np.float32)
    return None


def write_depth_exr(path: str | Path, depth: np.ndarray, metadata: Mapping[str, Any] | None = None) -> None:
    """float32 metres in channel "Z", atomically; `metadata` (as for the TIFF) goes into the header,
    its "intrinsics" also as the m33f attribute `intrinsics`."""
    from ..extras import import_openexr

    exr = import_openexr("--outputs exr")
    metadata = {"unit": DEPTH_UNIT, **dict(metadata or {})}
    header: dict[str, Any] = {
        "compression": exr.ZIP_COMPRESSION,
        "type": exr.scanlineimage,
        "unit": DEPTH_UNIT,
        "quantity": str(metadata.get("quantity", DEPTH_QUANTITY)),
        "tr2m": json.dumps(metadata, ensure_ascii=False),
    }
    matrix = _matrix(metadata.get("intrinsics"))
    if matrix is not None:
        header["intrinsics"] = matrix
    with atomic_path(path) as temp, exr.File(header, {EXR_CHANNEL: _as_depth(depth)}) as image:
        image.write(str(temp))


def read_depth_exr(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """(depth in metres [H, W] float32, the metadata written with it)."""
    from ..extras import import_openexr

    exr = import_openexr("reading EXR depth")
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        with exr.File(str(path)) as image:
            header = dict(image.header())
            channels = image.channels()
            name = EXR_CHANNEL if EXR_CHANNEL in channels else next(iter(channels), None)
            if name is None:
                raise InputError(f"{path}: holds no image channel")
            depth = np.asarray(channels[name].pixels, dtype=np.float32)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - the bindings raise plain RuntimeErrors
        raise InputError(f"{path}: not a readable EXR ({exc})") from None
    if depth.ndim != 2:
        raise InputError(f"{path}: channel {name!r} is not one value per pixel")
    try:
        metadata = json.loads(header.get("tr2m", "{}"))
    except (TypeError, json.JSONDecodeError):
        metadata = {}
    if "unit" in header:
        metadata.setdefault("unit", header["unit"])
    return depth, metadata
