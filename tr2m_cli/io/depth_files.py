"""Depth maps on disk, in metres, each format saying so.

| format | content | unit | where the metadata is |
|---|---|---|---|
| TIFF  | float32 [H, W] | metres | ImageDescription tag: JSON with unit, model, caption, intrinsics… |
| NPY   | float32 [H, W] | metres | none (the intrinsics JSON beside it, and the manifest) |
| PNG16 | uint16 [H, W]  | millimetres; 0 = no depth; saturates at 65.535 m | a PNG text chunk |

The TIFF is the reference output: any GIS or image tool opens it, `tifffile` and `read_depth_tiff`
give back the exact float32 values and the metadata.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import InputError
from .atomic import atomic_file

DEPTH_UNIT = "metres"
DEPTH_QUANTITY = "planar depth along the camera's optical axis"
PNG16_SCALE = 1000.0  # stored value per metre: millimetres
PNG16_MAX_METRES = 65535 / PNG16_SCALE


def _as_depth(depth: np.ndarray) -> np.ndarray:
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth map of shape {depth.shape}: expected [H, W]")
    return np.ascontiguousarray(depth, dtype=np.float32)


def write_depth_tiff(path: str | Path, depth: np.ndarray, metadata: Mapping[str, Any] | None = None) -> None:
    """float32 metres, uncompressed (fast to write, readable everywhere), with `metadata` as JSON
    in the ImageDescription tag; "unit": "metres" is always among it."""
    import tifffile

    from .. import __version__

    # TIFF text tags are 7-bit ASCII: non-ASCII characters travel as JSON \u escapes.
    description = json.dumps({"unit": DEPTH_UNIT, **dict(metadata or {})}, ensure_ascii=True)
    with atomic_file(path) as handle:
        tifffile.imwrite(
            handle,
            _as_depth(depth),
            photometric="minisblack",
            description=description,
            metadata=None,
            software=f"tr2m {__version__}",
        )


def read_depth_tiff(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """(depth in metres, the metadata written with it)."""
    import tifffile

    path = Path(path)
    try:
        with tifffile.TiffFile(path) as tiff:
            page = tiff.pages[0]
            depth = page.asarray()
            description = page.description or "{}"
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, ValueError, tifffile.TiffFileError) as exc:
        raise InputError(f"{path}: not a readable TIFF ({exc})") from None
    try:
        metadata = json.loads(description)
    except json.JSONDecodeError:
        metadata = {"description": description}
    return depth, metadata


def write_depth_npy(path: str | Path, depth: np.ndarray) -> None:
    with atomic_file(path) as handle:
        np.save(handle, _as_depth(depth))


def depth_to_png16(depth: np.ndarray) -> tuple[np.ndarray, int]:
    """Metres → uint16 millimetres (0 where depth is missing); also how many pixels saturated
    at 65535 (farther than 65.535 m)."""
    depth = _as_depth(depth)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(depth) & (depth > 0)
        millimetres = np.where(valid, np.round(depth * PNG16_SCALE), 0.0)
    saturated = int(np.count_nonzero(millimetres > 65535))
    # A valid depth under 0.5 mm would round to 0, which means "no depth": keep it at 1 mm.
    millimetres = np.where(valid, np.clip(millimetres, 1, 65535), 0)
    return millimetres.astype(np.uint16), saturated


def write_depth_png16(path: str | Path, depth: np.ndarray) -> int:
    """16-bit greyscale PNG in millimetres; returns the number of saturated pixels."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    millimetres, saturated = depth_to_png16(depth)
    info = PngInfo()
    info.add_text("Comment", "tr2m metric depth: uint16 millimetres (metres = value / 1000), 0 = no depth")
    with atomic_file(path) as handle:
        Image.fromarray(millimetres).save(handle, format="PNG", pnginfo=info, compress_level=3)
    return saturated


def read_depth_png16(path: str | Path) -> np.ndarray:
    """Metres as float32; NaN where the file holds 0 (no depth)."""
    from .images import image_errors

    from PIL import Image

    with image_errors(path), Image.open(path) as image:
        values = np.asarray(image).astype(np.float32)
    return np.where(values > 0, values / PNG16_SCALE, np.nan).astype(np.float32)
