"""A picture of the coloured point cloud seen from beside the camera: numpy only, no display or GPU.

A depth map looks right from the camera that took the photo whatever its errors; turned a little,
a wrong scale or a bent wall shows at once. So `render_view` moves the camera on a circle around
the scene's centre (the point on the optical axis at the median depth), `yaw_deg` to the right and
`pitch_deg` up, still looking at that centre, and draws the cloud from there.

Drawing is a z-buffered splat: each point covers a square large enough that neighbouring points
(z/f metres apart, the patch of surface a pixel saw, projected into the new view) leave no crack;
the nearest point wins each pixel, and among points of one surface the one that falls on it. Parts of the scene hidden from the photo's camera are holes, drawn
in the background colour: they are what a single photo cannot know. Open3D's offscreen renderer
would need Vulkan or a display, which servers and CI lack; this needs neither, and is fast enough
for every photo of a run (about a second for a million points on one core).

The picture has the sampling grid's size (the point cloud's stride), at most `max_size` pixels
on its longer side, and the grid's focal length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .atomic import atomic_file
from .intrinsics import Intrinsics
from .pointcloud import PointCloudOptions, backproject, flying_pixels, sample_depth

DEFAULT_YAW_DEG = 20.0
DEFAULT_PITCH_DEG = 10.0
MAX_SPLAT_HALF_WIDTH = 4  # a point never covers more than 9 × 9 pixels (grazing surfaces)
SPLAT_DISTANCE_PENALTY = 0.05  # per squared pixel of distance, relative to depth


@dataclass(frozen=True)
class RenderOptions:
    yaw_deg: float = DEFAULT_YAW_DEG  # the viewpoint's turn to the right around the scene centre
    pitch_deg: float = DEFAULT_PITCH_DEG  # and up, looking down at it
    max_size: int = 1024  # pixels on the picture's longer side
    background: tuple[int, int, int] = (24, 24, 24)

    def __post_init__(self) -> None:
        for name in ("yaw_deg", "pitch_deg"):
            if not -90 < getattr(self, name) < 90:
                raise InputError(f"render {name.removesuffix('_deg')} {getattr(self, name)}: must be within ±90 degrees")
        if self.max_size < 16:
            raise InputError(f"render size {self.max_size}: at least 16 pixels")


def orbit(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """The rotation M that carries the camera around the scene centre: its position goes from
    the origin to c + M(−c), its axes to M's columns; positive yaw moves it right (+x), positive
    pitch up (−y, the camera frame's y points down)."""
    yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
    turn = np.array([[math.cos(-yaw), 0, math.sin(-yaw)], [0, 1, 0], [-math.sin(-yaw), 0, math.cos(-yaw)]])
    tilt = np.array([[1, 0, 0], [0, math.cos(-pitch), -math.sin(-pitch)], [0, math.sin(-pitch), math.cos(-pitch)]])
    return turn @ tilt


def splat(
    points: np.ndarray,
    colors: np.ndarray,
    spacing: np.ndarray,
    intrinsics: Intrinsics,
    background: tuple[int, int, int] = (0, 0, 0),
) -> np.ndarray:
    """Draw view-frame points [N, 3] (metres, z forward) with colours [N, 3] uint8 into an
    intrinsics.height × intrinsics.width picture; `spacing` [N]: each point's footprint in metres."""
    height, width = intrinsics.height, intrinsics.width
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = background
    z = points[:, 2]
    ahead = z > 1e-6
    points, colors, spacing, z = points[ahead], colors[ahead], spacing[ahead], z[ahead].astype(np.float32)
    if len(z) == 0:
        return image
    u = (intrinsics.fx * points[:, 0] / points[:, 2] + intrinsics.cx).astype(np.float32)
    v = (intrinsics.fy * points[:, 1] / points[:, 2] + intrinsics.cy).astype(np.float32)
    # A point covers the (2h+1)² pixels around its own: with its neighbours `s` pixels apart (its
    # spacing projected into the view) in a lattice turned any way, every pixel centre is within
    # s/√2 of a point, so h = ⌈s/√2 + ½⌉ − 1 leaves no crack.
    projected = spacing * intrinsics.fx / z
    half = np.clip(np.ceil(projected / math.sqrt(2) + 0.5) - 1, 0, MAX_SPLAT_HALF_WIDTH).astype(np.int32)
    own_column, own_row = np.rint(u).astype(np.int32), np.rint(v).astype(np.int32)
    outside = height * width  # one spare slot in the buffers collects what falls off the picture
    reach = int(half.max())
    offsets = [(dx, dy) for dy in range(-reach, reach + 1) for dx in range(-reach, reach + 1)]

    def candidates(dx: int, dy: int) -> tuple[np.ndarray | slice, np.ndarray, np.ndarray]:
        """(which points, the pixel each covers at this offset, its z-buffer key)."""
        ring = max(abs(dx), abs(dy))
        chosen = slice(None) if ring == 0 else np.flatnonzero(half >= ring)
        columns, rows = own_column[chosen] + dx, own_row[chosen] + dy
        inside = (columns >= 0) & (columns < width) & (rows >= 0) & (rows < height)
        pixels = np.where(inside, rows * width + columns, outside)
        # Nearest wins, with a small penalty for covering a pixel away from the point's own, so
        # that on one smooth surface each pixel shows the point that falls on it.
        distance = (columns - u[chosen]) ** 2 + (rows - v[chosen]) ** 2
        keys = z[chosen] * (1 + SPLAT_DISTANCE_PENALTY * distance)
        return chosen, pixels, keys.astype(np.float32)  # as stored in `nearest`, to compare equal

    nearest = np.full(outside + 1, np.inf, dtype=np.float32)
    for dx, dy in offsets:
        _, pixels, keys = candidates(dx, dy)
        np.minimum.at(nearest, pixels, keys)
    flat = np.concatenate([image.reshape(-1, 3), np.zeros((1, 3), np.uint8)])
    for dx, dy in offsets:
        chosen, pixels, keys = candidates(dx, dy)
        winners = keys == nearest[pixels]
        flat[pixels[winners]] = colors[chosen][winners]
    return flat[:outside].reshape(height, width, 3)


def render_view(
    depth: np.ndarray,
    colors: np.ndarray,
    intrinsics: Intrinsics,
    cloud: PointCloudOptions = PointCloudOptions(),
    options: RenderOptions = RenderOptions(),
) -> np.ndarray:
    """Full-size depth [H, W] (metres), colours at the point cloud's sampling grid [h, w, 3] and
    the full-size intrinsics → the picture [h', w', 3] uint8 from the turned viewpoint."""
    sampled, grid, keep = sample_depth(depth, intrinsics, cloud)
    if colors.shape[:2] != sampled.shape:
        raise ValueError(f"colours of shape {colors.shape[:2]} for a sampled depth of {sampled.shape}")
    keep &= ~flying_pixels(sampled, grid, cloud.edge_angle_deg)
    points = backproject(sampled, grid)[keep]
    spacing = sampled[keep] / min(grid.fx, grid.fy)
    shrink = min(1.0, options.max_size / max(grid.width, grid.height))
    view = Intrinsics(
        fx=grid.fx * shrink,
        fy=grid.fy * shrink,
        cx=(grid.cx + 0.5) * shrink - 0.5,
        cy=(grid.cy + 0.5) * shrink - 0.5,
        width=max(1, round(grid.width * shrink)),
        height=max(1, round(grid.height * shrink)),
        source=grid.source,
    )
    if len(points) == 0:
        return splat(points, colors[keep], spacing, view, options.background)
    centre = np.array([0.0, 0.0, float(np.median(points[:, 2]))], dtype=np.float32)
    turn = orbit(options.yaw_deg, options.pitch_deg).astype(np.float32)
    # World (the photo's camera frame) → the turned camera's frame: Mᵀ(X − c) + c.
    in_view = (points - centre) @ turn + centre
    return splat(in_view, colors[keep], spacing, view, options.background)


def write_render(path: str | Path, picture: np.ndarray) -> None:
    from PIL import Image

    with atomic_file(path) as handle:
        Image.fromarray(picture).save(handle, format="PNG", compress_level=3)
