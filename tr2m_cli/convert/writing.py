"""Writing one photo's outputs and describing them in its manifest record."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import Tr2mError
from ..io import storage
from ..io.atomic import make_folders, write_json
from ..io.captions import Caption
from ..io.depth_files import DEPTH_QUANTITY, DEPTH_UNIT, write_depth_npy, write_depth_png16
from ..io.inputs import InputImage
from ..io.intrinsics import Intrinsics, described_camera
from ..io.preview import valid_depth, write_preview
from ..io.save import PhotoDepth, save_depth_tiff, save_exr, save_mesh, save_ply, save_render
from ..jobs.summary import now_iso
from .decode import DecodedPhoto
from .layout import OutputLayout
from .options import ConvertOptions


@dataclass(frozen=True)
class RunContext:
    """What every photo's outputs record about the run."""

    layout: OutputLayout
    options: ConvertOptions
    model_name: str
    metres_per_unit: float
    tr2m_version: str
    precision: str  # what the encoders ran in: fp32, fp16 or bf16


class NoDepthError(Tr2mError):
    """The model gave no usable depth for a photo."""


def check_depth(depth: np.ndarray, key: str) -> None:
    """Depth with no finite positive pixel is not depth: the photo fails (never an `ok` record
    over NaN, zero or negative "metres")."""
    if not valid_depth(depth).any():
        with np.errstate(invalid="ignore"):
            kind = "NaN" if np.isnan(depth).all() else "not finite and positive"
        raise NoDepthError(
            f"{key}: the model gave no valid depth (every pixel {kind}); its head weights or "
            f"coefficients are broken"
        )


def _finite(value: float) -> float | None:
    return round(float(value), 6) if math.isfinite(value) else None


def depth_statistics(depth: np.ndarray) -> dict[str, Any]:
    """min / median / max over pixels with depth, in metres; and how many pixels have none."""
    valid = valid_depth(depth)
    values = depth[valid]
    stats: dict[str, Any] = {"min": None, "median": None, "max": None}
    if values.size:
        stats = {"min": _finite(values.min()), "median": _finite(np.median(values)), "max": _finite(values.max())}
    missing = int(depth.size - values.size)
    if missing:
        stats["pixels_without_depth"] = missing
    return stats


def caption_fields(caption: Caption | None) -> dict[str, Any]:
    if caption is None:
        return {"caption": None, "caption_source": None}
    return {"caption": caption.text, "caption_source": caption.source, "caption_origin": caption.origin}


def base_record(image: InputImage, status: str) -> dict[str, Any]:
    return {"input": image.key, "path": storage.describe(image.path), "status": status}


def failure_record(image: InputImage, error: str, caption: Caption | None = None, seconds: float = 0.0) -> dict[str, Any]:
    return {
        **base_record(image, "failed"),
        **caption_fields(caption),
        "error": error,
        "seconds": round(seconds, 4),
        "finished": now_iso(),
    }


def no_caption_message(item: InputImage) -> str:
    """Why a photo or clip without a caption fails, and what to do about it."""
    return (
        f"no caption for {item.key}: add it to the caption file, put "
        f"{item.output_stem.name}.txt beside it, or pass --caption / --domain"
    )


def write_depth_files(
    paths: dict[str, Any],
    depth: np.ndarray,
    colors: np.ndarray | None,
    intrinsics: Intrinsics,
    metadata: dict[str, Any],
    options: ConvertOptions,
    *,
    name: str,
    model_name: str,
) -> dict[str, Any]:
    """Write the depth outputs named in `paths` (tiff, exr, npy, png16, preview, ply, mesh,
    render; others are the caller's), each atomically → what the record says about them.
    `colors`: at the point-cloud grid. A photo's and a clip frame's files are written by this one
    function."""
    record: dict[str, Any] = {}
    source = PhotoDepth(depth, intrinsics, colors)
    if "tiff" in paths:
        save_depth_tiff(paths["tiff"], source, metadata=metadata)
    if "exr" in paths:
        save_exr(paths["exr"], source, metadata=metadata)
    if "npy" in paths:
        write_depth_npy(paths["npy"], depth)
    if "png16" in paths:
        saturated = write_depth_png16(paths["png16"], depth)
        if saturated:
            record["png16_saturated_pixels"] = saturated
    if "preview" in paths:
        low, high = write_preview(paths["preview"], depth, options.preview)
        record["preview_range_m"] = [round(low, 4), round(high, 4)]
    about = (f"tr2m, {name}", f"model {model_name}")
    if "ply" in paths:
        record["points"] = save_ply(paths["ply"], source, options=options.cloud, comments=about)
    if "mesh" in paths:
        mesh = save_mesh(paths["mesh"], source, options=options.cloud, target_triangles=options.mesh.target_triangles, comments=about)
        record["mesh"] = {"vertices": int(len(mesh.vertices)), "triangles": int(len(mesh.faces))}
    if "render" in paths:
        save_render(paths["render"], source, options=options.cloud, render=options.render)
    return record


def write_photo(
    photo: DecodedPhoto,
    depth: np.ndarray,
    context: RunContext,
    *,
    camera: dict[str, Any] | None = None,
    made_by: dict[str, Any] | None = None,
    model_seconds: float = 0.0,
) -> dict[str, Any]:
    """Write every requested output of one photo (`depth`: float32 metres at its size), each
    atomically → its manifest record. `camera`: its camera file entry as the plan found it
    (CameraResolver.describe; None: the run-wide rules); `made_by`: its settings and
    fingerprint, into the record and the TIFF tags."""
    start = time.perf_counter()
    options = context.options
    check_depth(depth, photo.image.key)
    height, width = photo.size
    intrinsics = described_camera(camera, options.camera, height, width, photo.exif_focal_mm, photo.image.key)
    paths = context.layout.paths(photo.image)
    record: dict[str, Any] = {
        **base_record(photo.image, "ok"),
        **caption_fields(photo.caption),
        "size": [height, width],
        "network_size": list(photo.network_size),
        "precision": context.precision,
        "unit": DEPTH_UNIT,
        "depth_m": depth_statistics(depth),
        "intrinsics": {k: round(getattr(intrinsics, k), 4) for k in ("fx", "fy", "cx", "cy")}
        | {"source": intrinsics.source, "detail": intrinsics.detail},
    }
    if options.domain is not None:
        record["domain"] = options.domain
    made_by = made_by or {}
    record.update(made_by)
    metadata = {
        "quantity": DEPTH_QUANTITY,
        "model": context.model_name,
        "caption": photo.caption.text,
        "caption_source": photo.caption.source,
        "domain": options.domain,
        "metres_per_model_unit": context.metres_per_unit,
        "input": photo.image.key,
        "size": [height, width],
        "network_size": list(photo.network_size),
        "precision": context.precision,
        "intrinsics": intrinsics.to_json(),
        "tr2m_version": context.tr2m_version,
        **made_by,
    }
    if not isinstance(context.layout.out_dir, storage.Url):  # object stores have no folders to make
        make_folders(context.layout.out_dir, context.layout.folder(photo.image))
    record.update(
        write_depth_files(paths, depth, photo.colors, intrinsics, metadata, options, name=photo.image.key, model_name=context.model_name)
    )
    write_json(
        paths["intrinsics"],
        {"input": photo.image.key, "depth_unit": DEPTH_UNIT, **intrinsics.to_json()},
    )
    record["outputs"] = {kind: context.layout.relative(path) for kind, path in paths.items()}
    seconds = time.perf_counter() - start
    record["seconds"] = round(photo.seconds + model_seconds + seconds, 4)
    record["finished"] = now_iso()
    return record
