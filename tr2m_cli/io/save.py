"""One photo's files from its depth in metres, its camera and its colours: the functions
`tr2m convert` writes with, public for notebook users.

    result = model.predict("kitchen.jpg", "A kitchen.", return_maps=True)   # a Prediction
    tr2m_cli.save_depth_tiff("kitchen.depth.tiff", result)
    tr2m_cli.save_exr("kitchen.depth.exr", result)                 # `exr` extra
    tr2m_cli.save_ply("kitchen.points.ply", result)                # normals: PointCloudOptions(normals=True)
    tr2m_cli.save_mesh("kitchen.mesh.glb", result)                 # .glb, .ply or .obj
    tr2m_cli.save_render("kitchen.render.png", result)

`source` is a Prediction (its `.depth`, `.intrinsics` and `.image` are used) or a float32 depth
array [H, W] in metres, with `intrinsics=` (an Intrinsics; default: the 60° default camera) and
`image=` (the photo as [H, W, 3] uint8, at its own size or already at the sampling grid; default:
grey) given alongside. Arguments given explicitly win over a Prediction's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .depth_files import DEPTH_QUANTITY, write_depth_tiff
from .intrinsics import Intrinsics, resolve_intrinsics
from .mesh import Mesh, make_mesh, simplify_mesh, write_mesh
from .pointcloud import (
    PointCloudOptions,
    cloud_stride,
    colours_on_grid,
    estimate_normals,
    grid_shape,
    make_point_cloud,
    write_ply,
)
from .render import RenderOptions, render_view, write_render

GREY = 160


@dataclass(frozen=True)
class PhotoDepth:
    """What every output is made from."""

    depth: np.ndarray  # [H, W] float32 metres
    intrinsics: Intrinsics
    image: np.ndarray | None  # [h, w, 3] uint8, the photo or its colours at the sampling grid


def as_photo_depth(source: Any, intrinsics: Intrinsics | None = None, image: np.ndarray | None = None) -> PhotoDepth:
    if isinstance(source, PhotoDepth):
        depth, own_intrinsics, own_image = source.depth, source.intrinsics, source.image
    elif hasattr(source, "depth"):  # a Prediction
        depth, own_intrinsics, own_image = source.depth, getattr(source, "intrinsics", None), getattr(source, "image", None)
    else:
        depth, own_intrinsics, own_image = source, None, None
    depth = np.asarray(depth, dtype=np.float32)
    if depth.ndim != 2:
        raise ValueError(f"depth of shape {depth.shape}: expected [H, W] metres")
    camera = intrinsics or own_intrinsics or resolve_intrinsics(*depth.shape)
    if (camera.height, camera.width) != depth.shape:
        raise ValueError(f"intrinsics for {camera.width}×{camera.height} but depth of {depth.shape[1]}×{depth.shape[0]}")
    colours = image if image is not None else own_image
    if colours is not None:
        colours = np.asarray(colours)
        if colours.ndim != 3 or colours.shape[2] != 3 or colours.dtype != np.uint8:
            raise ValueError(f"image of shape {colours.shape} and type {colours.dtype}: expected [H, W, 3] uint8")
    return PhotoDepth(depth, camera, colours)


def grid_colours(photo: PhotoDepth, options: PointCloudOptions) -> np.ndarray:
    """The photo's colours at the sampling grid (grey when there is no photo)."""
    if photo.image is None:
        grid = grid_shape(*photo.depth.shape, cloud_stride(*photo.depth.shape, options))
        return np.full((*grid, 3), GREY, dtype=np.uint8)
    return colours_on_grid(photo.image, photo.depth.shape, options)


def depth_metadata(photo: PhotoDepth, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    return {"quantity": DEPTH_QUANTITY, "intrinsics": photo.intrinsics.to_json(), **dict(metadata or {})}


def save_depth_tiff(path: str | Path, source: Any, *, intrinsics: Intrinsics | None = None, metadata: Mapping[str, Any] | None = None) -> None:
    """float32 metres; the unit, the quantity and the intrinsics (and `metadata`) in the
    ImageDescription tag as JSON (`io/depth_files.py`)."""
    photo = as_photo_depth(source, intrinsics)
    write_depth_tiff(path, photo.depth, depth_metadata(photo, metadata))


def save_exr(path: str | Path, source: Any, *, intrinsics: Intrinsics | None = None, metadata: Mapping[str, Any] | None = None) -> None:
    """float32 metres in channel Z, unit and K in the header (`io/exr.py`; `exr` extra)."""
    from .exr import write_depth_exr

    photo = as_photo_depth(source, intrinsics)
    write_depth_exr(path, photo.depth, depth_metadata(photo, metadata))


def save_ply(
    path: str | Path,
    source: Any,
    *,
    intrinsics: Intrinsics | None = None,
    image: np.ndarray | None = None,
    options: PointCloudOptions = PointCloudOptions(),
    comments: tuple[str, ...] = (),
) -> int:
    """The coloured point cloud (`io/pointcloud.py`: edge filter, stride, voxels, outliers,
    normals per `options`) as binary PLY; returns the number of points."""
    photo = as_photo_depth(source, intrinsics, image)
    points, colours = make_point_cloud(photo.depth, grid_colours(photo, options), photo.intrinsics, options)
    normals = estimate_normals(points) if options.normals else None
    comments = (
        "metres; camera frame x right, y down, z forward",
        f"intrinsics {photo.intrinsics.source}",
        *comments,
    )
    write_ply(path, points, colours, comments=comments, normals=normals)
    return len(points)


def save_mesh(
    path: str | Path,
    source: Any,
    *,
    intrinsics: Intrinsics | None = None,
    image: np.ndarray | None = None,
    options: PointCloudOptions = PointCloudOptions(),
    target_triangles: int | None = None,
    comments: tuple[str, ...] = (),
) -> Mesh:
    """The grid mesh (`io/mesh.py`), simplified to `target_triangles` when given, in the format
    the suffix names (.glb, .ply, .obj); returns the mesh written."""
    photo = as_photo_depth(source, intrinsics, image)
    mesh = make_mesh(photo.depth, grid_colours(photo, options), photo.intrinsics, options)
    if target_triangles is not None:
        mesh = simplify_mesh(mesh, target_triangles)
    write_mesh(path, mesh, comments=(f"tr2m mesh, metres; intrinsics {photo.intrinsics.source}", *comments))
    return mesh


def save_render(
    path: str | Path,
    source: Any,
    *,
    intrinsics: Intrinsics | None = None,
    image: np.ndarray | None = None,
    options: PointCloudOptions = PointCloudOptions(),
    render: RenderOptions = RenderOptions(),
) -> np.ndarray:
    """A PNG of the coloured cloud seen from beside the camera (`io/render.py`); returns it."""
    photo = as_photo_depth(source, intrinsics, image)
    picture = render_view(photo.depth, grid_colours(photo, options), photo.intrinsics, options, render)
    write_render(path, picture)
    return picture


def points(
    source: Any,
    *,
    intrinsics: Intrinsics | None = None,
    image: np.ndarray | None = None,
    colors: bool = False,
    options: PointCloudOptions = PointCloudOptions(),
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """The point cloud of `source` in metres, camera frame: [N, 3] float32, and with
    `colors=True` also its [N, 3] uint8 colours (grey without a photo). Edge-filtered, sampled
    and cleaned by `options`, exactly as `save_ply` writes it."""
    photo = as_photo_depth(source, intrinsics, image)
    xyz, rgb = make_point_cloud(photo.depth, grid_colours(photo, options), photo.intrinsics, options)
    return (xyz, rgb) if colors else xyz
