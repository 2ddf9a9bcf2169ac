"""Coloured point clouds from metric depth: back-projection, clean-up, binary PLY.

A depth map becomes one point per (sampled) pixel through the camera intrinsics (see
`io/intrinsics.py` for the convention: x right, y down, z forward, metres). Before writing:

- `max_depth` drops far points (the sky, where depth is least reliable);
- flying pixels are dropped: where depth jumps between two neighbouring pixels, the upsampled
  prediction leaves a ramp of points that float between foreground and background. Such points
  lie on "surfaces" seen almost edge-on, so a neighbour pair is dropped when the surface it spans
  is within `edge_angle_deg` of the viewing ray; this is independent of resolution and stride,
  and keeps slanted floors and walls up to a grazing angle of that many degrees;
- `stride` samples every n-th pixel (by default the smallest stride that keeps the pixel grid
  within `max_points`), `voxel_size` merges points into voxels (mean position and colour), and
  `max_points` caps what is left by even subsampling.

PLY files are binary little-endian with float32 x, y, z and uint8 red, green, blue: what Open3D,
MeshLab, CloudCompare and Blender read. numpy writes them (4–5× faster than Open3D's writer, and
no 1 s Open3D import in every worker); tests read them back with Open3D.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .atomic import atomic_file
from .intrinsics import Intrinsics

DEFAULT_MAX_POINTS = 1_000_000
DEFAULT_EDGE_ANGLE_DEG = 5.0


@dataclass(frozen=True)
class PointCloudOptions:
    max_depth: float | None = None  # metres
    stride: int | None = None  # None: smallest stride within max_points
    voxel_size: float | None = None  # metres
    max_points: int = DEFAULT_MAX_POINTS
    edge_angle_deg: float = DEFAULT_EDGE_ANGLE_DEG  # 0 keeps flying pixels

    def __post_init__(self) -> None:
        if self.max_depth is not None and not self.max_depth > 0:
            raise InputError(f"--max-depth {self.max_depth}: must be positive (metres)")
        if self.stride is not None and self.stride < 1:
            raise InputError(f"--stride {self.stride}: must be at least 1")
        if self.voxel_size is not None and not self.voxel_size > 0:
            raise InputError(f"--voxel-size {self.voxel_size}: must be positive (metres)")
        if self.max_points < 1:
            raise InputError(f"--max-points {self.max_points}: must be at least 1")
        if not 0 <= self.edge_angle_deg < 90:
            raise InputError(f"--edge-angle {self.edge_angle_deg}: must be in [0, 90) degrees")


def cloud_stride(height: int, width: int, options: PointCloudOptions) -> int:
    if options.stride is not None:
        return options.stride
    return max(1, math.ceil(math.sqrt(height * width / options.max_points)))


def grid_shape(height: int, width: int, stride: int) -> tuple[int, int]:
    return -(-height // stride), -(-width // stride)


def flying_pixels(depth: np.ndarray, intrinsics: Intrinsics, edge_angle_deg: float) -> np.ndarray:
    """True where a pixel and a 4-neighbour span a surface within `edge_angle_deg` of the
    viewing ray: |Δz| > (pixel footprint) / tan(angle), the footprint being z / f."""
    mask = np.zeros(depth.shape, dtype=bool)
    if edge_angle_deg <= 0:
        return mask
    slope = 1.0 / math.tan(math.radians(edge_angle_deg))
    with np.errstate(invalid="ignore"):
        for axis, focal in ((1, intrinsics.fx), (0, intrinsics.fy)):
            a = depth[:, :-1] if axis == 1 else depth[:-1]
            b = depth[:, 1:] if axis == 1 else depth[1:]
            steep = np.abs(a - b) * focal > np.minimum(a, b) * slope
            if axis == 1:
                mask[:, :-1] |= steep
                mask[:, 1:] |= steep
            else:
                mask[:-1] |= steep
                mask[1:] |= steep
    return mask


def backproject(depth: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """[H, W] depth (metres) → [H, W, 3] camera-frame points."""
    height, width = depth.shape
    u = (np.arange(width, dtype=np.float32) - np.float32(intrinsics.cx)) / np.float32(intrinsics.fx)
    v = (np.arange(height, dtype=np.float32) - np.float32(intrinsics.cy)) / np.float32(intrinsics.fy)
    z = depth.astype(np.float32, copy=False)
    return np.stack([z * u[None, :], z * v[:, None], z], axis=-1)


def voxel_downsample(points: np.ndarray, colors: np.ndarray, voxel_size: float) -> tuple[np.ndarray, np.ndarray]:
    """One point per occupied voxel: the mean position and colour of the points in it."""
    if len(points) == 0:
        return points, colors
    cells = np.floor(points / voxel_size).astype(np.int64)
    cells -= cells.min(axis=0)
    span = cells.max(axis=0) + 1
    keys = (cells[:, 0] * span[1] + cells[:, 1]) * span[2] + cells[:, 2]
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    sums = np.stack([np.bincount(inverse, weights=points[:, c]) for c in range(3)], axis=1)
    colour_sums = np.stack([np.bincount(inverse, weights=colors[:, c]) for c in range(3)], axis=1)
    merged_points = (sums / counts[:, None]).astype(np.float32)
    merged_colors = np.clip(np.round(colour_sums / counts[:, None]), 0, 255).astype(np.uint8)
    return merged_points, merged_colors


def make_point_cloud(
    depth: np.ndarray, colors: np.ndarray, intrinsics: Intrinsics, options: PointCloudOptions
) -> tuple[np.ndarray, np.ndarray]:
    """Full-size depth [H, W] (metres), colours at the sampling grid [h, w, 3] uint8 and the
    full-size intrinsics → (points [N, 3] float32, colours [N, 3] uint8)."""
    stride = cloud_stride(*depth.shape, options)
    sampled = depth[::stride, ::stride]
    grid = intrinsics.for_stride(stride)
    if colors.shape[:2] != sampled.shape:
        raise ValueError(f"colours of shape {colors.shape[:2]} for a sampled depth of {sampled.shape}")
    keep = np.isfinite(sampled) & (sampled > 0)
    if options.max_depth is not None:
        keep &= sampled <= options.max_depth
    keep &= ~flying_pixels(sampled, grid, options.edge_angle_deg)
    points = backproject(sampled, grid)[keep]
    point_colors = colors[keep]
    if options.voxel_size is not None:
        points, point_colors = voxel_downsample(points, point_colors, options.voxel_size)
    if len(points) > options.max_points:
        chosen = np.linspace(0, len(points) - 1, options.max_points).round().astype(np.int64)
        points, point_colors = points[chosen], point_colors[chosen]
    return points, point_colors


PLY_VERTEX = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])


def write_ply(path: str | Path, points: np.ndarray, colors: np.ndarray, comments: tuple[str, ...] = ()) -> None:
    """Binary little-endian PLY with float32 positions and uint8 colours, written atomically."""
    vertices = np.empty(len(points), dtype=PLY_VERTEX)
    for axis, name in enumerate("xyz"):
        vertices[name] = points[:, axis]
    for channel, name in enumerate(("red", "green", "blue")):
        vertices[name] = colors[:, channel]
    lines = ["ply", "format binary_little_endian 1.0"]
    lines += [f"comment {' '.join(c.split())}" for c in comments]
    lines += [f"element vertex {len(vertices)}"]
    lines += [f"property float {n}" for n in "xyz"] + [f"property uchar {n}" for n in ("red", "green", "blue")]
    lines += ["end_header"]
    with atomic_file(path) as handle:
        handle.write(("\n".join(lines) + "\n").encode("ascii", "replace"))
        handle.write(vertices.tobytes())
