"""Seconds per photo for each output kind of `tr2m convert`, on a phone-sized depth map.

What a user adding `--outputs mesh,render,exr` or `--normals` pays per photo, next to the float32
TIFF every run writes, and our numpy writers against the libraries' own, in one run:

    python benchmarks/outputs_3d.py                    # 3000×4000 depth (12 MP), best of 3
    python benchmarks/outputs_3d.py --size 1536x2048 --repeats 5

The scene is synthetic (a room: floor, back wall, a box; depth 1–6 m) with a textured photo, so
every output has real edges to tear and real slopes to keep. The point-cloud grid is convert's
default (the smallest stride within 1,000,000 points: stride 4 → 750,000 points at 12 MP).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def scene(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Depth (metres) of a room seen by a 60° camera, and a textured photo."""
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    focal = (width / 2) / np.tan(np.radians(30))
    ray_y = (rows - (height - 1) / 2) / focal
    depth = np.full((height, width), 6.0, dtype=np.float32)  # back wall
    with np.errstate(divide="ignore"):
        floor = np.where(ray_y > 0, 1.5 / ray_y, np.inf)  # camera 1.5 m above the floor
    depth = np.minimum(depth, floor).astype(np.float32)
    box = (rows > height * 0.45) & (rows < height * 0.75) & (cols > width * 0.3) & (cols < width * 0.55)
    depth[box] = np.minimum(depth[box], 2.5)
    rng = np.random.default_rng(0)
    photo = (rng.integers(0, 40, size=(height, width, 3)) + np.array([120, 100, 80])).astype(np.uint8)
    photo[box] = (200, 60, 40)
    return depth, photo


def best_of(repeats: int, run) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="3000x4000", help="HxW of the depth map")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.lower().split("x"))

    from tr2m_cli.io import save
    from tr2m_cli.io.intrinsics import resolve_intrinsics
    from tr2m_cli.io.mesh import make_mesh
    from tr2m_cli.io.pointcloud import PointCloudOptions, colours_on_grid, make_point_cloud

    depth, photo = scene(height, width)
    intrinsics = resolve_intrinsics(height, width)
    options = PointCloudOptions()
    grid_photo = colours_on_grid(photo, depth.shape, options)  # as convert decodes it
    source = save.PhotoDepth(depth, intrinsics, grid_photo)
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        rows.append(("tiff (float32 depth)", best_of(args.repeats, lambda: save.save_depth_tiff(out / "a.tiff", source))))
        try:
            rows.append(("exr (float32 depth, ZIP)", best_of(args.repeats, lambda: save.save_exr(out / "a.exr", source))))
        except Exception as exc:  # noqa: BLE001 - the exr extra may be absent
            print(f"exr skipped: {exc}")
        rows.append(("ply (numpy writer)", best_of(args.repeats, lambda: save.save_ply(out / "a.ply", source))))
        rows.append(("mesh .glb (numpy writer)", best_of(args.repeats, lambda: save.save_mesh(out / "a.glb", source))))
        rows.append(("mesh .ply (numpy writer)", best_of(args.repeats, lambda: save.save_mesh(out / "m.ply", source))))
        rows.append(("render (numpy splat)", best_of(args.repeats, lambda: save.save_render(out / "a.png", source))))
        try:
            from tr2m_cli.extras import import_open3d

            o3d = import_open3d()
            with_normals = PointCloudOptions(normals=True)
            rows.append(("ply + normals (Open3D)", best_of(args.repeats, lambda: save.save_ply(out / "n.ply", source, options=with_normals))))
            clean = PointCloudOptions(remove_outliers=True)
            rows.append(("ply + outlier removal (Open3D)", best_of(args.repeats, lambda: save.save_ply(out / "o.ply", source, options=clean))))
            points, colours = make_point_cloud(depth, grid_photo, intrinsics, options)

            def open3d_ply() -> None:
                cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
                cloud.colors = o3d.utility.Vector3dVector(colours.astype(np.float64) / 255)
                o3d.io.write_point_cloud(str(out / "o3d.ply"), cloud)

            rows.append(("ply, Open3D's writer (for comparison)", best_of(args.repeats, open3d_ply)))
            rows.append(("mesh .glb, 100k triangles (Open3D)", best_of(args.repeats, lambda: save.save_mesh(out / "s.glb", source, target_triangles=100_000))))
        except Exception as exc:  # noqa: BLE001 - the 3d extra may be absent
            print(f"Open3D rows skipped: {exc}")
        try:
            import trimesh

            mesh = make_mesh(depth, grid_photo, intrinsics, options)

            def trimesh_glb() -> None:
                shape = trimesh.Trimesh(mesh.vertices * [1, -1, -1], mesh.faces, vertex_colors=mesh.colors, process=False)
                shape.export(out / "t.glb")

            rows.append(("mesh .glb, trimesh's exporter (for comparison)", best_of(args.repeats, trimesh_glb)))
        except ImportError:
            print("trimesh row skipped: not installed")
    tiff = rows[0][1]
    print(f"\n{height}×{width} depth, {len(make_point_cloud(depth, grid_photo, intrinsics, options)[0])} points, best of {args.repeats}\n")
    print("| output | seconds | × the TIFF |")
    print("|---|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.3f} | {seconds / tiff:.1f} |")


if __name__ == "__main__":
    main()
