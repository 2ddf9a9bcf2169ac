"""Clips in `tr2m convert`: frames per second of a 640×480 video against the same frames
converted as a folder of photos, and flicker with and without `--stabilize`, in one run.

    python benchmarks/sequences.py                                  # tiny model on the CPU
    python benchmarks/sequences.py --full-size --frames 8           # the real architectures, CPU
    python benchmarks/sequences.py --full-size --device cuda --frames 600 --batch-size 16

Throughput: one clip (an example photo panned across, 640×480, H.264 MP4, 30 fps) converted as a
video (decoded ahead, one network size, smoothing on) and the same frames as PNG photos (the photo
pipeline: decode threads, size buckets). Both write float32 TIFFs; the video also its depth video.
Each keeps its best of `--repeats` runs; frames/s counts from the model being loaded.

Flicker: the mean relative change of median depth between consecutive frames, on a static clip
(one photo, independent noise σ = 8/255 per frame, 40 frames at 10 fps), with and without
smoothing (τ = 0.5 s). With random weights the maps mean nothing, but how much they move with
the noise is real plumbing: the stock tiny model's head is damped to near-constant maps, so a
"responsive" tiny model (its output layers ×5, as in the test) shows what smoothing does when
the maps follow the photo, as a trained head's do.
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


def pan_frames(count: int, height: int = 480, width: int = 640) -> list[np.ndarray]:
    """An example photo, panned across: `count` frames of height × width."""
    from PIL import Image

    from tr2m_cli.io.images import read_rgb

    photo = read_rgb(REPO / "examples" / "indoor" / "tum_office.jpg")
    scale = max(height / photo.shape[0], 1.4 * width / photo.shape[1])
    big = np.asarray(Image.fromarray(photo).resize((round(photo.shape[1] * scale), round(photo.shape[0] * scale)), Image.BICUBIC))
    travel = big.shape[1] - width
    return [np.ascontiguousarray(big[:height, round(i * travel / max(1, count - 1)) :][:, :width]) for i in range(count)]


def noisy_static(count: int, sigma: float, height: int = 480, width: int = 640, seed: int = 0) -> list[np.ndarray]:
    frames = pan_frames(1, height, width)
    rng = np.random.default_rng(seed)
    return [np.clip(frames[0] + rng.normal(0, sigma, frames[0].shape), 0, 255).astype(np.uint8) for _ in range(count)]


def load(args):
    import torch

    from tr2m_cli import load_model
    from tr2m_cli.testing import build_full_size_random_model, make_tiny_model_folder

    if args.full_size:
        return {"full-size random": build_full_size_random_model(args.device, args.precision)}
    folder = make_tiny_model_folder(Path(tempfile.mkdtemp()) / "tiny")
    stock = load_model(folder, device=args.device, precision=args.precision)
    responsive = load_model(folder, device=args.device, precision=args.precision)
    with torch.no_grad():
        for head in (responsive.head.scale_head, responsive.head.shift_head):
            head.conv3.weight.mul_(5.0)
    return {"tiny": stock, "tiny, responsive head": responsive}


def throughput(model, args, scratch: Path) -> dict[str, float]:
    from PIL import Image

    from tr2m_cli.convert import ConvertOptions, convert
    from tr2m_cli.io.captions import CaptionRules
    from tr2m_cli.sequences.testing import write_video

    frames = pan_frames(args.frames)
    video = write_video(scratch / "pan.mp4", frames, fps=30)
    photos = scratch / "pan-photos"
    photos.mkdir(exist_ok=True)
    for i, rgb in enumerate(frames):
        Image.fromarray(rgb).save(photos / f"{i:05d}.png")
    options = ConvertOptions(outputs=("tiff", "preview"), captions=CaptionRules(caption="An office with desks and chairs."),
                             batch_size=args.batch_size, progress=False, overwrite=True)  # fmt: skip
    best: dict[str, float] = {}
    for _ in range(args.repeats):
        for name, inputs in (("video (clip)", [video]), ("same frames as photos", [photos])):
            summary = convert(inputs, scratch / f"out-{name[:5]}", options, model=model)
            frames_done = summary.converted + (summary.clips.frames if summary.clips else 0)
            assert frames_done == args.frames, summary.line()
            rate = frames_done / (summary.elapsed_s - summary.setup_s)
            if args.verbose:
                print(f"  {name}: {rate:.2f} frames/s, seconds per stage {summary.stage_seconds}")
            best[name] = max(best.get(name, 0.0), rate)
    return best


def flicker(model, args, scratch: Path) -> dict[str, float]:
    from PIL import Image

    from tr2m_cli.convert import ConvertOptions, convert
    from tr2m_cli.io.captions import CaptionRules
    from tr2m_cli.io.depth_files import read_depth_tiff
    from tr2m_cli.sequences.sources import ClipOptions
    from tr2m_cli.sequences.stabilize import StabilizeOptions

    folder = scratch / "static"
    folder.mkdir(exist_ok=True)
    count = args.flicker_frames
    for i, rgb in enumerate(noisy_static(count, 8.0)):
        Image.fromarray(rgb).save(folder / f"{i:04d}.png")
    result = {}
    for smooth in (False, True):
        out = scratch / f"static-{smooth}"
        options = ConvertOptions(outputs=("tiff",), captions=CaptionRules(caption="An office with desks and chairs."),
                                 batch_size=args.batch_size, progress=False, overwrite=True, sequence=True,
                                 clip=ClipOptions(fps=10), stabilize=StabilizeOptions(enabled=smooth))  # fmt: skip
        convert([folder], out, options, model=model)
        medians = np.array([np.median(read_depth_tiff(out / "static" / f"{i:06d}.depth.tiff")[0]) for i in range(count)])
        result["with" if smooth else "without"] = float(np.mean(np.abs(np.diff(medians)) / medians[:-1]))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full-size", action="store_true", help="the real architectures with random weights")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--frames", type=int, default=48, help="frames of the 640×480 clip")
    parser.add_argument("--flicker-frames", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-flicker", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="print every run's time per stage")
    args = parser.parse_args()
    models = load(args)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        name, first = next(iter(models.items()))
        started = time.perf_counter()
        rates = throughput(first, args, scratch)
        print(f"\nthroughput, {name}, {args.frames} frames of 640×480, batch {args.batch_size}, {args.device} {args.precision}:")
        print("| input | frames/s |\n|---|---|")
        for method, rate in rates.items():
            print(f"| {method} | {rate:.2f} |")
        print(f"video / photos: {rates['video (clip)'] / rates['same frames as photos']:.2f}×  ({time.perf_counter() - started:.0f} s)")
        if args.skip_flicker:
            return
        print(f"\nflicker (mean relative change of median depth, frame to frame), {args.flicker_frames} noisy static frames:")
        print("| model | without --stabilize | with | factor |\n|---|---|---|---|")
        for name, model in models.items():
            values = flicker(model, args, scratch)
            factor = values["without"] / values["with"] if values["with"] > 0 else float("inf")
            print(f"| {name} | {values['without'] * 100:.3f} % | {values['with'] * 100:.3f} % | {factor:.1f}× |")


if __name__ == "__main__":
    main()
