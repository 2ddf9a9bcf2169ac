"""`tr2m convert`: photos in, metric depth files (metres) out. Parses options, calls
`tr2m_cli.convert.convert`, reports."""

from __future__ import annotations

from pathlib import Path

import click

from .options import (
    batch_size_option,
    captioner_option,
    device_option,
    model_option,
    precision_option,
    engine_options,
    engine_workers,
    quiet_option,
    size_option,
    storage_argument,
)
from .types import deprecated_alias, interruptible, job_exit


EPILOG = """\b
Outputs under --out mirror the input tree (photos/a/b.jpg → OUT/a/b.*):
  b.depth.tiff       float32 depth in metres, photo size; metadata (unit, model, caption,
                     intrinsics, precision) as JSON in the TIFF ImageDescription tag
  b.preview.png      colourised depth (near = warm/bright)
  b.points.ply       coloured point cloud, metres, camera frame (x right, y down, z forward)
  b.depth.npy        float32 metres      b.depth16.png  uint16 millimetres (0 = none)
  b.depth.exr        float32 metres, channel Z; unit and K in the header (exr extra)
  b.mesh.glb         triangle mesh of the depth grid, metres, torn at depth edges (.ply/.obj)
  b.render.png       the coloured cloud seen from beside the camera (no display needed)
  b.intrinsics.json  the camera used and its source     manifest.jsonl, summary.json  the run
\b
Clips (videos: mp4 m4v mov mkv avi webm; ROS 1/2 bags: .bag .db3 .mcap or a bag folder; folders of
numbered frames with --sequence) get a folder each: OUT/drive/000123.depth.tiff per frame (named
by its index in the source), drive.preview.mp4 (one colour range for the clip, colour bar),
clip.json (fps, frames, intrinsics, caption, smoothing) and frames.jsonl (times, stamps);
every other kind of --outputs is written per frame.
\b
Every photo needs a caption; first found: --caption-file, --caption-root tree, <stem>.txt
beside the photo, --auto-caption, --caption, --domain. Cameras, first found: --intrinsics, --colmap, a
<stem>.camera.json beside the photo, --fx/--fov, EXIF, a 60° field of view. A rerun skips
photos whose outputs are current (same model, caption, camera, settings and photo file) and
redoes the others. Exit status: 0 all done, 1 some photos failed, 2 usage or setup error,
130/143 stopped by Ctrl-C/SIGTERM (finished photos kept).
"""


@click.command(epilog=EPILOG)
@click.argument("inputs", nargs=-1, required=True, metavar="PHOTOS_OR_CLIPS...")
@click.option("--out", "-o", default="tr2m-out", show_default=True, metavar="DIR|URL", help="Output folder, or a storage URL (s3://, gs://, az://).")
@click.option(
    "--outputs",
    default="tiff,preview",
    show_default=True,
    metavar="LIST",
    help="Comma-separated: tiff, preview, ply, npy, png16, exr, mesh, render (or all).",
)
@click.option("--recursive/--no-recursive", default=True, show_default=True, help="Walk sub-folders.")
@click.option("--caption-file", metavar="FILE|URL", help="JSON, JSON Lines or CSV: photo → caption.")
@click.option("--caption-root", metavar="DIR|URL", help="Folder of <stem>.txt captions mirroring the inputs.")
@click.option("--no-sidecars", is_flag=True, help="Ignore <stem>.txt and <stem>.camera.json files beside the photos.")
@click.option("--caption", metavar="TEXT", help="Caption for every photo that has none.")
@click.option(
    "--domain",
    metavar="indoor|outdoor|surgical",
    help="Generic caption of this domain for photos with none; surgical also converts the released weights' millimetres to metres.",
)
@click.option("--auto-caption", is_flag=True, help="Caption photos that have none with a local model (as `tr2m caption`).")
@captioner_option
@click.option("--save-captions", is_flag=True, help="With --auto-caption: keep the captions as <stem>.txt beside the photos.")
@model_option
@device_option
@precision_option
@batch_size_option
@click.option("--resolution", type=click.IntRange(min=1), metavar="TOKENS", help="Network input of about this many patch tokens per photo, aspect kept [default: the model's, 1240].")
@size_option
@click.option("--shard", metavar="K/N", help="Convert only part K of N, by a hash of each path (N machines sharing one folder).")
@click.option("--skip-existing/--overwrite", default=True, show_default=True, help="Skip photos whose outputs are current (same model, caption, camera, settings, photo); --overwrite redoes all.")
@click.option("--colormap", metavar="NAME", default="turbo", show_default=True, help="turbo, viridis, inferno, magma, plasma or gray.")
@click.option("--depth-range", nargs=2, type=float, metavar="MIN MAX", help="Fixed preview colour range in metres [default: 2nd–98th percentile per photo, per clip for videos].")
@click.option("--colorbar", is_flag=True, help="Add a colour bar labelled in metres to previews.")
@click.option(
    "--intrinsics",
    "intrinsics_file",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="JSON, JSON Lines or CSV: photo → fx fy cx cy (or K) in pixels, optionally width height (rescaled).",
)
@click.option("--colmap", type=click.Path(path_type=Path), metavar="DIR", help="COLMAP model folder: each photo's camera from cameras/images .txt or .bin.")
@click.option("--fx", type=float, metavar="PIXELS", help="Focal length for photos without a camera file (--fy defaults to it).")
@click.option("--fy", type=float, metavar="PIXELS", help="Vertical focal length [default: --fx].")
@click.option("--cx", type=float, metavar="PIXELS", help="Principal point x [default: the image centre, (W-1)/2].")
@click.option("--cy", type=float, metavar="PIXELS", help="Principal point y [default: the image centre, (H-1)/2].")
@click.option("--fov", type=float, metavar="DEGREES", help="Horizontal field of view for photos without a camera file [default: EXIF 35 mm focal length, else 60].")
@click.option("--cloud-max-depth", type=float, metavar="METRES", help="3-D outputs (ply, mesh, render): drop pixels farther than this, in metres.")
@click.option("--max-depth", "old_max_depth", type=float, hidden=True, callback=deprecated_alias("--max-depth", "--cloud-max-depth"))
@click.option("--stride", type=click.IntRange(min=1), metavar="N", help="3-D outputs: use every N-th pixel [default: the smallest within --max-points].")
@click.option("--voxel-size", type=float, metavar="METRES", help="Point clouds: merge points into voxels of this size, in metres.")
@click.option("--max-points", type=click.IntRange(min=1), metavar="N", help="3-D outputs: most grid points per photo [default: 1000000].")
@click.option("--edge-angle", type=float, metavar="DEGREES", help="3-D outputs: drop flying pixels (and tear meshes) on surfaces within this angle of edge-on; 0 keeps all [default: 5].")
@click.option("--normals", is_flag=True, help="Point clouds: add normals, facing the camera (3d extra).")
@click.option("--remove-outliers", is_flag=True, help="Point clouds: drop statistical outliers (3d extra).")
@click.option("--mesh-format", type=click.Choice(["glb", "ply", "obj"]), default="glb", show_default=True, help="File format of --outputs mesh.")
@click.option("--mesh-triangles", type=click.IntRange(min=1), metavar="N", help="Simplify meshes to about N triangles (3d extra) [default: keep every grid triangle].")
@click.option("--sequence", is_flag=True, help="Each folder of images is one clip of numbered frames (not separate photos).")
@click.option("--every", type=click.IntRange(min=1), default=1, show_default=True, metavar="N", help="Clips: convert every N-th frame.")
@click.option("--start", metavar="FRAME|TIME", help="Clips: first frame, as a frame number (120) or a time (4s, 1500ms, 1:30).")
@click.option("--end", metavar="FRAME|TIME", help="Clips: stop before this frame number or time.")
@click.option("--max-frames", type=click.IntRange(min=1), metavar="N", help="Clips: at most N frames each.")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), metavar="FPS", help="Frame rate of --sequence folders, for their frames' times (they carry no timestamps).")
@click.option("--topic", metavar="TOPIC", help="ROS bags: the image topic [default: the bag's only colour image topic].")
@click.option("--camera-info", "camera_info_topic", metavar="TOPIC", help="ROS bags: the CameraInfo topic [default: the one beside --topic].")
@click.option("--stabilize/--no-stabilize", default=True, show_default=True, help="Clips: smooth scale and shift over time (never single photos).")
@click.option("--smoothing", metavar="TIME|FRAMES", default="0.5s", show_default=True, help="Clips: the smoothing time constant, in seconds (0.5s) or frames (15).")
@click.option("--scene-captions", is_flag=True, help="With --auto-caption: one caption per scene of a clip, not one per clip.")
@engine_options("half the CPU cores, 2–8; convert also writes files on as many threads")
@click.option("--max-megapixels", type=click.FloatRange(min=0, min_open=True), default=100, show_default=True, metavar="MP", help="Photos larger than this fail alone, before they are decoded.")
@quiet_option
def convert(inputs, out, outputs, recursive, caption_file, caption_root, no_sidecars, caption, domain, auto_caption,
            captioner, save_captions, model, device,
            precision, batch_size, resolution, size, shard, skip_existing, colormap, depth_range, colorbar,
            intrinsics_file, colmap, fx, fy, cx, cy, fov, cloud_max_depth, old_max_depth, stride, voxel_size, max_points,
            edge_angle, normals, remove_outliers, mesh_format, mesh_triangles,
            sequence, every, start, end, max_frames, fps, topic, camera_info_topic, stabilize, smoothing, scene_captions,
            workers, engine, gpus_per_worker, ray_address, decode_on_cpus, max_megapixels, quiet) -> None:  # fmt: skip
    """Metric depth (metres) for photos and clips: image files, videos, ROS bags, folders
    (recursive) and @list.txt files.

    \b
      tr2m convert photos --caption-file captions.json --out depth
      tr2m convert photos --domain indoor --outputs tiff,preview,ply --fov 70
      tr2m convert photos --caption-file c.json --outputs mesh,render --colmap sparse/0
      tr2m convert @batch.txt --shard 3/8 --out /scratch/depth   # machine 3 of 8
      tr2m convert photos --auto-caption --save-captions          # no captions yet
      tr2m convert s3://lab/frames --out s3://lab/depth --domain outdoor --engine ray --workers 8
      tr2m convert drive.mp4 --caption "A city street with parked cars." --every 2
      tr2m convert recording.bag --topic /camera/color/image_raw --outputs tiff,ply
      tr2m convert frames/ --sequence --fps 30 --auto-caption
    """
    from ..convert import ConvertOptions, parse_outputs
    from ..convert import convert as run_convert
    from ..errors import InputError
    from ..io.captions import CaptionRules
    from ..io.inputs import Shard
    from ..io.intrinsics import CameraOptions
    from ..io.mesh import MeshOptions
    from ..io.pointcloud import PointCloudOptions
    from ..io.preview import PreviewOptions
    from ..model.preprocess import SizePolicy
    from ..sequences.frames import FrameSelection, Position
    from ..sequences.sources import ClipOptions
    from ..sequences.stabilize import StabilizeOptions

    if resolution is not None and size is not None:
        raise InputError("give either --resolution or --size, not both")
    max_depth = cloud_max_depth if cloud_max_depth is not None else old_max_depth
    if save_captions and not auto_caption:
        raise InputError("--save-captions keeps the captions --auto-caption makes: add --auto-caption")
    workers, ray = engine_workers(engine, workers, gpus_per_worker, ray_address, decode_on_cpus)
    if auto_caption and ray is not None:
        raise InputError("--auto-caption runs the captioner in this process: with --engine ray, caption first "
                         "with `tr2m caption --engine ray`, then convert")  # fmt: skip
    if scene_captions and not auto_caption:
        raise InputError("--scene-captions is how --auto-caption captions clips: add --auto-caption")
    selection = FrameSelection(
        every=every,
        start=Position.parse(start, "--start") if start is not None else None,
        end=Position.parse(end, "--end") if end is not None else None,
        max_frames=max_frames,
    )
    cloud = {"max_depth": max_depth, "stride": stride, "voxel_size": voxel_size, "max_points": max_points, "edge_angle_deg": edge_angle}
    options = ConvertOptions(
        outputs=parse_outputs(outputs),
        captions=CaptionRules(
            caption_file=storage_argument(caption_file),
            caption_root=storage_argument(caption_root),
            sidecars=not no_sidecars,
            caption=caption,
            domain=domain,
        ),
        recursive=recursive,
        shard=Shard.parse(shard) if shard else None,
        overwrite=not skip_existing,
        device=device,
        precision=precision,
        batch_size=batch_size,
        size=SizePolicy(token_budget=resolution) if resolution is not None else (SizePolicy.fixed(*size) if size else None),
        preview=PreviewOptions(colormap=colormap, depth_range=tuple(depth_range) if depth_range else None, colorbar=colorbar),
        camera=CameraOptions(
            fx=fx, fy=fy, cx=cx, cy=cy, fov_deg=fov, intrinsics_file=intrinsics_file, colmap=colmap, sidecars=not no_sidecars
        ),
        cloud=PointCloudOptions(
            **{k: v for k, v in cloud.items() if v is not None}, normals=normals, remove_outliers=remove_outliers
        ),
        mesh=MeshOptions(format=mesh_format, target_triangles=mesh_triangles),
        progress=not quiet,
        max_pixels=int(max_megapixels * 1e6),
        sequence=sequence,
        clip=ClipOptions(selection=selection, fps=fps, topic=topic, camera_info_topic=camera_info_topic),
        stabilize=StabilizeOptions(enabled=stabilize, time_constant=Position.parse(smoothing, "--smoothing")),
        scene_captions=scene_captions,
        **({"decode_workers": workers, "write_workers": max(1, workers)} if workers is not None else {}),
    )
    fallback = None
    if auto_caption:
        from ..caption.run import auto_caption_fallback

        fallback = auto_caption_fallback(
            captioner, device=device, precision=precision, batch_size=batch_size, save_sidecars=save_captions, progress=not quiet
        )
    with interruptible("finished photos and frames are kept and recorded; run the same command again to convert the rest"):
        if ray is not None:
            from ..convert.ray_engine import convert_ray

            summary = convert_ray(list(inputs), out, options, model=model, workers=ray.workers,
                                  gpus_per_worker=ray.gpus_per_worker, address=ray.address, decode_on_cpus=ray.decode_on_cpus)  # fmt: skip
        else:
            summary = run_convert(list(inputs), out, options, model=model, caption_fallback=fallback)
    job_exit(summary, quiet=quiet)
