"""Looking at results in 3-D: depth files, point clouds and meshes in Open3D's viewer.

    from tr2m_cli.view import show
    show("OUT/kitchen/a.depth.tiff")       # the coloured point cloud, seen from the photo's camera

`load_scene` turns a file into an Open3D geometry and says which frame it is in, so the viewer
starts where the photo was taken:

- a depth map (`.depth.tiff`, `.depth.exr`, `.depth.npy`) becomes a point cloud through its
  intrinsics (from the file's metadata, else the `.intrinsics.json` beside it, else the default
  camera), coloured by its photo (`photo=`, else the photo the run's manifest names, when it is
  still there) or else by depth;
- `.ply` (a point cloud or a mesh) and `.obj` are in the camera frame, `.glb`/`.gltf` in glTF's.

The viewer needs a display: without one (a server, a container, SSH without X forwarding) `show`
raises DisplayError in one line, before Open3D is even imported; `--outputs render` pictures are
the display-free way to look.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DisplayError, InputError
from .io.pointcloud import PointCloudOptions, cloud_stride, colours_on_grid, make_point_cloud

DEPTH_SUFFIXES = (".tiff", ".tif", ".exr", ".npy")
GEOMETRY_SUFFIXES = (".ply", ".obj", ".glb", ".gltf")
# Open3D's view: `front` points from what is looked at back to the eye.
VIEWS = {
    "camera": {"front": [0.0, 0.0, -1.0], "up": [0.0, -1.0, 0.0]},  # x right, y down, z forward
    "gltf": {"front": [0.0, 0.0, 1.0], "up": [0.0, 1.0, 0.0]},  # y up, the scene along −z
}


@dataclass
class Scene:
    geometry: Any  # an Open3D PointCloud or TriangleMesh
    frame: str  # "camera" or "gltf" (see VIEWS)
    description: str  # for the window title


def has_display() -> bool:
    """Whether a window can open: always on macOS and Windows; elsewhere X11 or Wayland must be
    there (DISPLAY or WAYLAND_DISPLAY)."""
    if sys.platform == "darwin" or os.name == "nt":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _read_depth(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix in (".tiff", ".tif"):
        from .io.depth_files import read_depth_tiff

        return read_depth_tiff(path)
    if suffix == ".exr":
        from .io.exr import read_depth_exr

        return read_depth_exr(path)
    try:
        depth = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable .npy depth map ({exc})") from None
    return depth, {}


def _depth_stem(path: Path) -> str:
    """OUT/a.depth.tiff → a (the stem every output of one photo shares)."""
    name = path.name
    for suffix in (".depth.tiff", ".depth.tif", ".depth.exr", ".depth.npy"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _intrinsics_for(path: Path, metadata: dict[str, Any], height: int, width: int):
    from .io.intrinsics import Intrinsics, resolve_intrinsics

    if isinstance(metadata.get("intrinsics"), dict):
        return Intrinsics.from_json(metadata["intrinsics"], f"{path} metadata")
    beside = path.with_name(f"{_depth_stem(path)}.intrinsics.json")
    if beside.is_file():
        import json

        try:
            return Intrinsics.from_json(json.loads(beside.read_text(encoding="utf-8")), str(beside))
        except (OSError, ValueError):
            pass
    return resolve_intrinsics(height, width)


def photo_from_manifest(path: Path) -> Path | None:
    """The photo a depth file was made from, as the run's manifest (in a folder above) says."""
    from .io.manifest import read_manifest

    path = Path(os.path.abspath(path))
    for folder in path.parents:
        for manifest in sorted(folder.glob("manifest*.jsonl")):
            for record in read_manifest(manifest).values():
                outputs = record.get("outputs") or {}
                if any(Path(os.path.abspath(folder / rel)) == path for rel in outputs.values() if isinstance(rel, str)):
                    photo = Path(str(record.get("path", "")))
                    return photo if photo.is_file() else None
    return None


def depth_cloud(
    path: str | Path, photo: str | Path | None = None, options: PointCloudOptions = PointCloudOptions()
) -> tuple[np.ndarray, np.ndarray, str]:
    """(points [N, 3] metres, colours [N, 3] uint8, what coloured them) of a depth file."""
    from .io.images import read_rgb
    from .io.preview import colorize, preview_range

    path = Path(path)
    depth, metadata = _read_depth(path)
    if depth.ndim != 2:
        raise InputError(f"{path}: a depth map has one value per pixel, this has shape {depth.shape}")
    depth = depth.astype(np.float32, copy=False)
    height, width = depth.shape
    intrinsics = _intrinsics_for(path, metadata, height, width)
    stride = cloud_stride(height, width, options)
    photo = Path(photo) if photo is not None else photo_from_manifest(path)
    if photo is not None:
        rgb = read_rgb(photo)
        if rgb.shape[:2] != (height, width):
            raise InputError(f"{photo}: is {rgb.shape[1]}×{rgb.shape[0]} but the depth map {width}×{height}")
        colours, coloured_by = colours_on_grid(rgb, depth.shape, options), str(photo)
    else:
        colours = colorize(depth[::stride, ::stride], *preview_range(depth))
        coloured_by = "depth (no photo found)"
    points, point_colours = make_point_cloud(depth, colours, intrinsics, options)
    return points, point_colours, coloured_by


def _viewable(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in DEPTH_SUFFIXES + GEOMETRY_SUFFIXES:
        kinds = ", ".join(DEPTH_SUFFIXES + GEOMETRY_SUFFIXES)
        raise InputError(f"{path}: tr2m view shows depth maps and 3-D files ({kinds})")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    return path


def load_scene(path: str | Path, photo: str | Path | None = None, options: PointCloudOptions = PointCloudOptions()) -> Scene:
    """An Open3D geometry for `path` and the frame it is in (see the module docstring)."""
    from .extras import import_open3d

    path = _viewable(path)
    suffix = path.suffix.lower()
    o3d = import_open3d("tr2m view")
    if suffix in DEPTH_SUFFIXES:
        points, colours, coloured_by = depth_cloud(path, photo, options)
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
        cloud.colors = o3d.utility.Vector3dVector(colours.astype(np.float64) / 255.0)
        return Scene(cloud, "camera", f"{path.name}: {len(points)} points, coloured by {coloured_by}")
    frame = "gltf" if suffix in (".glb", ".gltf") else "camera"
    mesh = o3d.io.read_triangle_mesh(str(path))
    if len(mesh.triangles):
        mesh.compute_vertex_normals()
        return Scene(mesh, frame, f"{path.name}: {len(mesh.vertices)} vertices, {len(mesh.triangles)} triangles")
    cloud = o3d.io.read_point_cloud(str(path)) if suffix == ".ply" else None
    if cloud is None or not len(cloud.points):
        raise InputError(f"{path}: holds no points or triangles that Open3D can read")
    return Scene(cloud, frame, f"{path.name}: {len(cloud.points)} points")


def show(path: str | Path, photo: str | Path | None = None, options: PointCloudOptions = PointCloudOptions()) -> None:
    """Open `path` in Open3D's viewer, from the photo's viewpoint; returns when it is closed."""
    _viewable(path)
    if not has_display():
        raise DisplayError(
            "tr2m view needs a display, and there is none here (DISPLAY and WAYLAND_DISPLAY are unset): "
            "copy the file to a machine with a screen, or write pictures with --outputs render"
        )
    scene = load_scene(path, photo, options)
    from .extras import import_open3d

    o3d = import_open3d("tr2m view")
    viewer = o3d.visualization.Visualizer()
    if not viewer.create_window(window_name=f"tr2m: {scene.description}", width=1280, height=960):
        raise DisplayError("tr2m view could not open a window (the display refused OpenGL): use --outputs render instead")
    try:
        viewer.add_geometry(scene.geometry)
        control = viewer.get_view_control()
        view = VIEWS[scene.frame]
        control.set_front(view["front"])
        control.set_up(view["up"])
        control.set_lookat(scene.geometry.get_center())
        control.set_zoom(0.5)
        viewer.run()
    finally:
        viewer.destroy_window()
