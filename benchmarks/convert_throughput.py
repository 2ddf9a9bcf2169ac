"""Throughput of `tr2m convert` against a plain one-photo-at-a-time loop, in the same run.

The plain loop is how the reference demo works: read a photo, encode its caption, run the
encoders and the head, resize, write the files, then the next photo, all in one thread. The
pipeline runs the inference core (tr2m_cli.model.inference) on a stream: it decodes in
background threads (large photos at reduced scale), batches photos by network size, caches
caption embeddings and writes in a background pool. Both write the same outputs (float32 TIFF and
preview PNG) for the same photos and captions, with the same model.

    python benchmarks/convert_throughput.py                          # tiny model on the CPU
    python benchmarks/convert_throughput.py --full-size --device cuda --photos 256 --batch-size 16
    python benchmarks/convert_throughput.py --photo-size 4000x3000   # 12 MP JPEGs

`--full-size` builds the real architectures with random weights (DINOv2-L/14, CLIP ViT-L/14 text,
Depth Anything Small, the released head's sizes): the speed is the real one, the depth is not.
Photos are copies of examples/ (four sizes, so four aspect-ratio buckets); each copy gets its
own caption (as in a captioned dataset) unless --shared-captions.

Before and after a change: check the older commit out beside this one
(`git worktree add /tmp/before <commit>`) and run this script alternately with `--tree /tmp/before`
and without, so both measure the same machine at the same time. "CPU s/photo" (process time over
all threads) is the work done, which neighbours on a shared machine disturb far less than
photos/s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_photos(folder: Path, count: int, photo_size: tuple[int, int] | None, shared_captions: bool) -> Path:
    from PIL import Image

    examples = json.loads((REPO / "examples" / "captions.json").read_text())
    keys = sorted(examples)
    captions = {}
    for i in range(count):
        key = keys[i % len(keys)]
        name = f"{Path(key).parent}/{i:04d}_{Path(key).stem}"
        target = folder / (name + (".jpg" if photo_size else Path(key).suffix))
        target.parent.mkdir(parents=True, exist_ok=True)
        if photo_size:
            with Image.open(REPO / "examples" / key) as image:
                image.convert("RGB").resize((photo_size[1], photo_size[0]), Image.BICUBIC).save(target, quality=90)
        else:
            shutil.copy(REPO / "examples" / key, target)
        captions[target.relative_to(folder).as_posix()] = examples[key] + ("" if shared_captions else f" Photo {i}.")
    caption_file = folder.parent / "captions.json"
    caption_file.write_text(json.dumps(captions))
    return caption_file


def plain_loop(model, folder: Path, caption_file: Path, out: Path, limit: int | None = None) -> tuple[int, float, dict]:
    """One photo at a time, everything synchronous (the reference demo's way)."""
    import torch

    from tr2m_cli.io.depth_files import write_depth_tiff
    from tr2m_cli.io.images import read_rgb
    from tr2m_cli.io.preview import write_preview
    from tr2m_cli.model.preprocess import normalize_and_resize, resize_to, to_float_tensor

    captions = json.loads(caption_file.read_text())
    items = sorted(captions.items())[:limit]
    seconds: dict[str, float] = defaultdict(float)

    def sync():
        if model.device.type == "cuda":
            torch.cuda.synchronize()

    start = time.perf_counter()
    with torch.inference_mode():
        for key, caption in items:
            t = time.perf_counter()
            rgb = read_rgb(folder / key)
            seconds["decode"] += time.perf_counter() - t
            t = time.perf_counter()
            text = model.encode_text([caption])
            sync()
            seconds["text"] += time.perf_counter() - t
            t = time.perf_counter()
            # The whole photo, normalised and resized in one step, as the reference demo does.
            size = rgb.shape[:2]
            pixels = normalize_and_resize(to_float_tensor(rgb)[None].to(model.device), model.size_policy.network_size(*size))
            tokens, grid = model.encode_image(pixels)
            relative = model.estimate_relative_depth(pixels)
            sync()
            seconds["encoders"] += time.perf_counter() - t
            t = time.perf_counter()
            depth = resize_to(model.decode(tokens, grid, relative, text).metric_depth, size)[0].cpu().numpy()
            seconds["head"] += time.perf_counter() - t
            t = time.perf_counter()
            stem = out / Path(key).with_suffix("")
            write_depth_tiff(f"{stem}.depth.tiff", depth, {"caption": caption})
            write_preview(f"{stem}.preview.png", depth)
            seconds["write"] += time.perf_counter() - t
    return len(items), time.perf_counter() - start, dict(seconds)


def pipeline(model, folder: Path, caption_file: Path, out: Path, args) -> tuple[int, float, dict]:
    from tr2m_cli.convert import ConvertOptions, convert
    from tr2m_cli.io.captions import CaptionRules

    options = ConvertOptions(
        outputs=("tiff", "preview"),
        captions=CaptionRules(caption_file=caption_file),
        batch_size=args.batch_size,
        progress=False,
        stage_timing=True,
        **({"decode_workers": args.workers, "write_workers": args.workers} if args.workers else {}),
    )
    summary = convert([folder], out, options, model=model)
    stages = dict(summary.stage_seconds)
    grouped = {
        "decode": stages.get("decode", 0.0),
        "text": stages.get("text", 0.0),
        "encoders": stages.get("image_encoder", 0.0) + stages.get("relative_depth", 0.0) + stages.get("transfer", 0.0),
        "head": stages.get("head", 0.0) + stages.get("upsample", 0.0),
        "write": stages.get("write", 0.0),
    }
    return summary.converted, summary.elapsed_s - summary.setup_s, grouped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full-size", action="store_true", help="Real architectures with random weights.")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--photos", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, help="Decode and write threads of the pipeline (each).")
    parser.add_argument("--photo-size", help="HxW: upscale the photos to this size (JPEG).")
    parser.add_argument("--shared-captions", action="store_true", help="Four captions for all photos.")
    parser.add_argument("--repeats", type=int, default=3, help="Alternating runs of each method; the best is kept.")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    parser.add_argument("--tree", type=Path, default=REPO, help="Measure the tr2m_cli of this checkout (default: this one).")
    args = parser.parse_args()
    sys.path.insert(0, str(args.tree.resolve()))
    photo_size = tuple(int(v) for v in args.photo_size.lower().split("x")) if args.photo_size else None

    import torch

    from tr2m_cli import load_model
    from tr2m_cli.testing import build_full_size_random_model, make_tiny_model_folder

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        t = time.perf_counter()
        if args.full_size:
            model = build_full_size_random_model(args.device, args.precision)
        else:
            model = load_model(make_tiny_model_folder(scratch / "tiny"), device=args.device, precision=args.precision)
        build_s = time.perf_counter() - t
        caption_file = make_photos(scratch / "photos", args.photos, photo_size, args.shared_captions)
        # Warm the model up (first-call allocations, kernel selection) before timing either way.
        plain_loop(model, scratch / "photos", caption_file, scratch / "warm-up", limit=2)
        # The two methods alternate and each keeps its best run: on a shared machine the
        # slower runs measure the neighbours, not the method.
        results: dict[str, dict] = {}
        for repeat in range(args.repeats):
            for name in ("plain loop", "tr2m convert"):
                out = scratch / f"{name.replace(' ', '-')}-{repeat}"
                cpu = time.process_time()
                if name == "plain loop":
                    done, seconds, stages = plain_loop(model, scratch / "photos", caption_file, out)
                else:
                    done, seconds, stages = pipeline(model, scratch / "photos", caption_file, out, args)
                cpu = time.process_time() - cpu  # all threads: the work done, whatever else runs
                shutil.rmtree(out, ignore_errors=True)
                run = {"photos": done, "seconds": round(seconds, 3), "photos_per_s": round(done / seconds, 3),
                       "cpu_s_per_photo": round(cpu / done, 4),
                       "stage_seconds": {k: round(v, 3) for k, v in stages.items()}}  # fmt: skip
                if name not in results or run["photos_per_s"] > results[name]["photos_per_s"]:
                    results[name] = run

    device = torch.cuda.get_device_name() if model.device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    header = {
        "model": model.spec.name,
        "device": device,
        "precision": str(model.precision).replace("torch.", ""),
        "photos": args.photos,
        "photo_size": args.photo_size or "examples (640x480, 600x400, 640x427, 512x512)",
        "batch_size": args.batch_size,
        "repeats (best kept)": args.repeats,
        "distinct_captions": not args.shared_captions,
        "model_build_s": round(build_s, 1),
        "tree": str(args.tree.resolve()),
    }
    print(json.dumps(header))
    print("| method | photos/s | CPU s/photo | total s | decode | text | encoders | head | write |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, result in results.items():
        s = result["stage_seconds"]
        print(f"| {name} | {result['photos_per_s']:.2f} | {result['cpu_s_per_photo']:.3f} | {result['seconds']:.1f} | "
              + " | ".join(f"{s.get(k, 0.0):.2f}" for k in ("decode", "text", "encoders", "head", "write")) + " |")  # fmt: skip
    speedup = results["tr2m convert"]["photos_per_s"] / results["plain loop"]["photos_per_s"]
    print(f"speed-up: {speedup:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({**header, "results": results, "speedup": round(speedup, 3)}, indent=2))


if __name__ == "__main__":
    main()
