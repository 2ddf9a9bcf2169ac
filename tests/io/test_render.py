"""Renders from beside the camera: the photo itself from the camera, a tilted plane where
geometry says it must be from a turned viewpoint, nearer points hiding farther ones."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tr2m_cli.errors import InputError
from tr2m_cli.io.intrinsics import CameraOptions, resolve_intrinsics
from tr2m_cli.io.pointcloud import PointCloudOptions
from tr2m_cli.io.render import RenderOptions, render_view, write_render

BACKGROUND = (0, 0, 0)
H, W, F = 90, 120, 100.0


def camera():
    return resolve_intrinsics(H, W, CameraOptions(fx=F))


def halves():
    """Left half red, right half blue."""
    colours = np.zeros((H, W, 3), dtype=np.uint8)
    colours[:, : W // 2] = (220, 40, 40)
    colours[:, W // 2 :] = (40, 40, 220)
    return colours


def tilted_plane():
    """The plane z = 2 + 0.5·y (metres; y down), seen by the camera: depth per pixel."""
    v = (np.arange(H, dtype=np.float64) - (H - 1) / 2) / F
    depth = 2.0 / (1 - 0.5 * v)  # z = 2 + 0.5·(v·z)  →  z = 2 / (1 − 0.5 v)
    return np.repeat(depth[:, None], W, axis=1).astype(np.float32)


def look_at(position, target):
    """World → camera rotation for a camera at `position` looking at `target`, y down."""
    forward = (target - position) / np.linalg.norm(target - position)
    right = np.cross([0.0, 1.0, 0.0], forward)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


def project(points, rotation, position):
    p = (points - position) @ rotation.T
    return F * p[:, 0] / p[:, 2] + (W - 1) / 2, F * p[:, 1] / p[:, 2] + (H - 1) / 2


def inside_quad(cu, cv, margin=0.0):
    """Pixels within `margin` px of the quad with corners (cu, cv), listed clockwise on screen
    (negative margin: that far inside it)."""
    rows, cols = np.mgrid[0:H, 0:W]
    inside = np.ones((H, W), dtype=bool)
    for k in range(4):
        ax, ay, bx, by = cu[k], cv[k], cu[(k + 1) % 4], cv[(k + 1) % 4]
        inside &= ((bx - ax) * (rows - ay) - (by - ay) * (cols - ax)) / np.hypot(bx - ax, by - ay) >= -margin
    return inside


def turned_camera(centre_depth, yaw_deg):
    """Where the camera is after turning `yaw_deg` right around (0, 0, centre_depth)."""
    centre = np.array([0.0, 0.0, centre_depth])
    yaw = math.radians(yaw_deg)
    position = centre + centre_depth * np.array([math.sin(yaw), 0.0, -math.cos(yaw)])
    return look_at(position, centre), position


def pixel_points(rows, cols, z):
    rows, cols = np.asarray(rows, dtype=np.float64), np.asarray(cols, dtype=np.float64)
    return np.stack([(cols - (W - 1) / 2) * z / F, (rows - (H - 1) / 2) * z / F, np.broadcast_to(z, rows.shape)], axis=-1)


def test_from_the_cameras_own_viewpoint_the_render_is_the_photo():
    colours = np.random.default_rng(0).integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    picture = render_view(tilted_plane(), colours, camera(), PointCloudOptions(), RenderOptions(yaw_deg=0, pitch_deg=0))
    assert picture.shape == (H, W, 3) and (picture == colours).all()


def test_a_tilted_plane_seen_from_the_side_lands_where_geometry_puts_it():
    depth = tilted_plane()
    picture = render_view(depth, halves(), camera(), PointCloudOptions(), RenderOptions(yaw_deg=30, pitch_deg=0, background=BACKGROUND))
    # Independently: the camera moved 30° to the right on a circle around (0, 0, median depth).
    rotation, position = turned_camera(float(np.median(depth)), 30)
    rows, cols = np.mgrid[0:H, 0:W]
    world = pixel_points(rows, cols, depth[rows, cols])
    # 1. Points well inside each half are drawn in their colour where they project.
    for half, colour in ((slice(5, W // 2 - 5), (220, 40, 40)), (slice(W // 2 + 5, W - 5), (40, 40, 220))):
        u, v = project(world[5:-5:7, half][:, ::7].reshape(-1, 3), rotation, position)
        u, v = np.rint(u).astype(int), np.rint(v).astype(int)
        seen = (u >= 0) & (u < W) & (v >= 0) & (v < H)
        assert seen.sum() > 20 and (picture[v[seen], u[seen]] == colour).all()
    # 2. Nothing is drawn outside the plane's projected outline (its four corners), 2 px margin.
    cu, cv = project(world[[0, 0, -1, -1], [0, -1, -1, 0]], rotation, position)
    drawn = (picture != BACKGROUND).any(axis=-1)
    assert drawn.sum() > 0.5 * H * W and not (drawn & ~inside_quad(cu, cv, 2.0)).any()
    # 3. The turn shows: the right half, nearer the new viewpoint, takes more of the picture.
    red = (picture == (220, 40, 40)).all(axis=-1).sum()
    blue = (picture == (40, 40, 220)).all(axis=-1).sum()
    assert blue > 1.2 * red


def test_nearer_points_hide_farther_ones_and_what_the_photo_did_not_see_is_a_hole():
    depth = np.full((H, W), 4.0, dtype=np.float32)
    depth[30:60, 40:80] = 1.5  # a box before a wall
    colours = np.zeros((H, W, 3), dtype=np.uint8)
    colours[:] = (0, 200, 0)
    colours[30:60, 40:80] = (250, 250, 0)
    picture = render_view(depth, colours, camera(), PointCloudOptions(), RenderOptions(yaw_deg=20, pitch_deg=0, background=BACKGROUND))
    rotation, position = turned_camera(4.0, 20)
    # The edge filter drops one pixel on each side of the box's outline, box and wall alike.
    box_u, box_v = project(pixel_points([31, 31, 58, 58], [41, 78, 78, 41], 1.5), rotation, position)
    hole_u, hole_v = project(pixel_points([29, 29, 60, 60], [39, 80, 80, 39], 4.0), rotation, position)
    box = (picture == (250, 250, 0)).all(axis=-1)
    assert box[inside_quad(box_u, box_v, -3.0)].all()  # the wall behind never shows through
    assert not box[~inside_quad(box_u, box_v, 3.0)].any()
    # The wall the box hid from the photo is now in view but unknown: background, not smeared.
    hole = inside_quad(hole_u, hole_v, -3.0) & ~inside_quad(box_u, box_v, 3.0)
    assert hole.sum() > 50 and (picture[hole] == BACKGROUND).all()
    wall = ~inside_quad(hole_u, hole_v, 3.0) & ~inside_quad(box_u, box_v, 3.0)
    wall[:6], wall[-6:], wall[:, :6], wall[:, -6:] = False, False, False, False  # the frame's edge
    assert (picture[wall] == (0, 200, 0)).mean() > 0.9


def test_big_grids_are_rendered_at_most_max_size_and_written_as_png(tmp_path):
    picture = render_view(tilted_plane(), halves(), camera(), PointCloudOptions(), RenderOptions(max_size=60))
    assert picture.shape == (45, 60, 3)
    write_render(tmp_path / "a.render.png", picture)
    from PIL import Image

    assert (np.asarray(Image.open(tmp_path / "a.render.png")) == picture).all()
    with pytest.raises(InputError, match="within ±90"):
        RenderOptions(yaw_deg=95)
