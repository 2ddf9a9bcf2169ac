"""`tr2m convert`: photos in, metric depth files (metres) out. Parses options, calls
`tr2m_cli.convert.convert`, reports."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

import click

from .options import (
    batch_size_option,
    captioner_option,
    check_engine_options,
    device_option,
    engine_options,
    model_option,
    precision_option,
    quiet_option,
    storage_argument,
)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """`kill` (and a batch scheduler's pre-emption) ends the run like Ctrl-C: finished photos
    recorded, manifest compacted, nothing half-written."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):  # noqa: ARG001 - signal handler signature
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _parse_size(text: str | None):
    if text is None:
        return None
    from ..errors import InputError
    from ..model.preprocess import SizePolicy

    parts = text.lower().replace("×", "x").split("x")
    try:
        height, width = (int(p) for p in parts)
    except ValueError:
        raise InputError(f"--size {text!r}: expected HxW, e.g. 434x560") from None
    return SizePolicy.fixed(height, width)


EPILOG = """\b
Outputs under --out mirror the input tree (photos/a/b.jpg → OUT/a/b.*):
  b.depth.tiff       float32 depth in metres, photo size; metadata (unit, model, caption,
                     intrinsics) as JSON in the TIFF ImageDescription tag
  b.preview.png      colourised depth (near = warm/bright)
  b.points.ply       coloured point cloud, metres, camera frame (x right, y down, z forward)
  b.depth.npy        float32 metres      b.depth16.png  uint16 millimetres (0 = none)
  b.intrinsics.json  the camera used     manifest.jsonl, summary.json  the run
\b
Captions, first found: --caption-file, --caption-root tree, <stem>.txt beside the photo,
--auto-caption, --caption, --domain. Exit status: 0 all done, 1 some photos failed, 2 usage or
setup error.
"""


@click.command(epilog=EPILOG)
@click.argument("inputs", nargs=-1, required=True, metavar="PHOTOS...")
@click.option("--out", "-o", default="tr2m-out", show_default=True, metavar="DIR|URL", help="Output folder, or a storage URL (s3://, gs://, az://).")
@click.option(
    "--outputs",
    default="tiff,preview",
    show_default=True,
    metavar="LIST",
    help="Comma-separated: tiff, preview, ply, npy, png16 (or all).",
)
@click.option("--recursive/--no-recursive", default=True, show_default=True, help="Walk sub-folders.")
@click.option("--caption-file", metavar="FILE|URL", help="JSON, JSON Lines or CSV: photo → caption.")
@click.option("--caption-root", metavar="DIR|URL", help="Folder of <stem>.txt captions mirroring the inputs.")
@click.option("--no-sidecars", is_flag=True, help="Ignore <stem>.txt files beside the photos.")
@click.option("--caption", metavar="TEXT", help="Caption for every photo that has none.")
@click.option(
    "--domain",
    metavar="indoor|outdoor|surgical",
    help="Generic caption for photos with none; surgical also converts the released weights' mm to metres.",
)
@click.option("--auto-caption", is_flag=True, help="Caption photos that have none with a local model (as `tr2m caption`).")
@captioner_option
@click.option("--save-captions", is_flag=True, help="With --auto-caption: keep the captions as <stem>.txt beside the photos.")
@model_option
@device_option
@precision_option
@batch_size_option
@click.option("--resolution", type=click.IntRange(min=1), help="Patch tokens per photo, aspect kept [default: the model's, 1240].")
@click.option("--size", "size_text", metavar="HxW", help="Fixed network size, multiples of 14 (the paper's: 434x560).")
@click.option("--shard", metavar="K/N", help="Convert only part K of N (for N machines sharing one folder).")
@click.option("--skip-existing/--overwrite", default=True, show_default=True, help="Skip photos whose outputs all exist.")
@click.option("--colormap", metavar="NAME", default="turbo", show_default=True, help="turbo, viridis, inferno, magma, plasma or gray.")
@click.option("--depth-range", nargs=2, type=float, metavar="MIN MAX", help="Fixed preview range in metres [default: 2nd–98th percentile per photo].")
@click.option("--colorbar", is_flag=True, help="Add a colour bar labelled in metres to previews.")
@click.option("--fx", type=float, help="Focal length in pixels (point clouds; --fy defaults to it).")
@click.option("--fy", type=float, help="Vertical focal length in pixels.")
@click.option("--cx", type=float, help="Principal point x in pixels [default: image centre].")
@click.option("--cy", type=float, help="Principal point y in pixels.")
@click.option("--fov", type=float, help="Horizontal field of view in degrees [default: EXIF 35 mm focal length, else 60].")
@click.option("--max-depth", type=float, help="Drop points farther than this (metres).")
@click.option("--stride", type=click.IntRange(min=1), help="Use every n-th pixel for points [default: fit --max-points].")
@click.option("--voxel-size", type=float, help="Merge points into voxels of this size (metres).")
@click.option("--max-points", type=click.IntRange(min=1), help="Most points per cloud [default: 1000000].")
@click.option("--edge-angle", type=float, help="Drop flying pixels on surfaces within this angle of edge-on, degrees; 0 keeps all [default: 5].")
@click.option("--threads", type=click.IntRange(min=1), help="Threads for decoding, and for writing, per process [default: half the CPU cores, 2–8].")
@engine_options
@quiet_option
def convert(inputs, out, outputs, recursive, caption_file, caption_root, no_sidecars, caption, domain, auto_caption,
            captioner, save_captions, model, device,
            precision, batch_size, resolution, size_text, shard, skip_existing, colormap, depth_range, colorbar,
            fx, fy, cx, cy, fov, max_depth, stride, voxel_size, max_points, edge_angle, threads, engine, workers,
            gpus_per_worker, ray_address, decode_on_cpus, quiet) -> None:  # fmt: skip
    """Metric depth (metres) for PHOTOS: image files, folders (recursive) and @list.txt files.

    \b
      tr2m convert photos --caption-file captions.json --out depth
      tr2m convert photos --domain indoor --outputs tiff,preview,ply --fov 70
      tr2m convert @batch.txt --shard 3/8 --out /scratch/depth   # machine 3 of 8
      tr2m convert photos --auto-caption --save-captions          # no captions yet
      tr2m convert s3://lab/frames --out s3://lab/depth --domain outdoor --engine ray --workers 8
    """
    from ..convert import ConvertOptions, parse_outputs
    from ..convert import convert as run_convert
    from ..errors import InputError
    from ..io.captions import CaptionRules
    from ..io.inputs import Shard
    from ..io.intrinsics import CameraOptions
    from ..io.pointcloud import PointCloudOptions
    from ..io.preview import PreviewOptions
    from ..model.preprocess import SizePolicy

    if resolution is not None and size_text is not None:
        raise InputError("give either --resolution or --size, not both")
    if save_captions and not auto_caption:
        raise InputError("--save-captions keeps the captions --auto-caption makes: add --auto-caption")
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
        size=SizePolicy(token_budget=resolution) if resolution is not None else _parse_size(size_text),
        preview=PreviewOptions(colormap=colormap, depth_range=tuple(depth_range) if depth_range else None, colorbar=colorbar),
        camera=CameraOptions(fx=fx, fy=fy, cx=cx, cy=cy, fov_deg=fov),
        cloud=PointCloudOptions(**{k: v for k, v in cloud.items() if v is not None}),
        progress=not quiet,
        **({"decode_workers": threads, "write_workers": threads} if threads else {}),
    )
    check_engine_options(engine, workers, gpus_per_worker, ray_address, decode_on_cpus)
    fallback = None
    if auto_caption and engine == "ray":
        raise InputError("--auto-caption runs the captioner in this process: with --engine ray, caption first "
                         "with `tr2m caption --engine ray`, then convert")  # fmt: skip
    if auto_caption:
        from ..caption.run import auto_caption_fallback

        fallback = auto_caption_fallback(
            captioner, device=device, precision=precision, batch_size=batch_size, save_sidecars=save_captions, progress=not quiet
        )
    try:
        with _sigterm_as_interrupt():
            if engine == "ray":
                from ..convert.ray_engine import convert_ray

                summary = convert_ray(list(inputs), out, options, model=model, workers=workers or "1",
                                      gpus_per_worker=gpus_per_worker, address=ray_address, decode_on_cpus=decode_on_cpus)  # fmt: skip
            else:
                summary = run_convert(list(inputs), out, options, model=model, caption_fallback=fallback)
    except KeyboardInterrupt:
        click.echo(
            "tr2m: interrupted: finished photos are kept and recorded; run the same command again to convert the rest",
            err=True,
        )
        click.get_current_context().exit(130)
    if not quiet:
        click.echo(summary.line())
    click.get_current_context().exit(summary.exit_code)
