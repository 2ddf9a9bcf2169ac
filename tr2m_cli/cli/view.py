"""`tr2m view`: a depth map, point cloud or mesh in Open3D's viewer."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--photo",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Colour a depth map by this photo [default: the photo the run's manifest names, else by depth].",
)
@click.option("--max-points", type=click.IntRange(min=1), metavar="N", help="Most points shown of a depth map [default: 1000000].")
def view(path: Path, photo: Path | None, max_points: int | None) -> None:
    """Show PATH in 3-D: OUT/a.depth.tiff (.exr, .npy) as a coloured point cloud, or a .ply, .glb or .obj.

    \b
      tr2m view tr2m-out/kitchen/a.depth.tiff
      tr2m view tr2m-out/kitchen/a.mesh.glb
    The view starts at the photo's camera; points and meshes are in metres. Needs a display and
    the 3d extra; without a display, `tr2m convert --outputs render` draws the cloud to a PNG.
    """
    from ..io.pointcloud import PointCloudOptions
    from ..view import show

    show(path, photo, PointCloudOptions(**({"max_points": max_points} if max_points else {})))
