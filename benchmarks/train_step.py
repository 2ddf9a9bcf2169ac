"""Where a training step's time goes at the released sizes: frozen encoders vs. the trained part,
and what reading the feature cache costs instead.

Random weights built from configs (DINOv2-L/14, CLIP ViT-L/14 text, Depth Anything small, the
18.96 M-parameter head, the 0.19 M projector): no download, same shapes and FLOPs as the real ones.

    python benchmarks/train_step.py --device cpu --batch-size 2 --steps 3
    python benchmarks/train_step.py --device cuda --batch-size 8 --precision bf16
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch


def timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--size", default="434x560")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (CPU)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from tr2m_cli.losses import LossOptions, training_loss
    from tr2m_cli.model.preprocess import normalize_and_resize
    from tr2m_cli.runtime import resolve_device, resolve_precision
    from tr2m_cli.train.features import FeatureCache
    from tr2m_cli.train.trainable import MomentumKeyBranch, ScaleProjector, TrainableParts

    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    height, width = (int(v) for v in args.size.split("x"))
    started = time.perf_counter()
    from tr2m_cli.testing import build_full_size_random_model

    model = build_full_size_random_model(device, precision)
    print(f"built random full-size model in {time.perf_counter() - started:.1f} s on {device} ({precision})")

    projector = ScaleProjector(1024).to(device)
    parts = TrainableParts(model, projector)
    keys = MomentumKeyBranch(model.head, projector).to(device)
    optimizer = torch.optim.AdamW([p for p in parts.parameters() if p.requires_grad], lr=1e-5)
    b = args.batch_size
    image = torch.rand(b, 3, height, width, device=device)
    depth = 1 + 4 * torch.rand(b, height, width, device=device)
    valid = torch.ones_like(depth, dtype=torch.bool)
    captions = [f"A room with {i} chairs and a table." for i in range(b)]
    pixels = normalize_and_resize(image, (height, width))
    state = {}

    def encoders():
        with torch.no_grad():
            state["tokens"], state["grid"] = model.encode_image(pixels)
            state["relative"] = model.estimate_relative_depth(pixels)
            state["text"] = model.encode_text(captions)

    def trained_part():
        output, queries = parts(state["tokens"], state["grid"], state["relative"], state["text"])
        key_features = keys(state["tokens"], state["text"], state["grid"], precision)
        terms = training_loss(
            LossOptions(), metric_depth=output.metric_depth, relative_depth=state["relative"],
            scale_map=output.scale_map, shift_map=output.shift_map, image=image, depth=depth, valid=valid,
            queries=queries, keys=key_features,
        )  # fmt: skip
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()
        keys.update(model.head, projector, 0.99)

    geometry = {"size": [height, width]}
    results = {"frozen encoders": [], "head + projector + EMA step": [], "cache read (batch)": []}
    with tempfile.TemporaryDirectory() as scratch:
        cache = FeatureCache(Path(scratch), {"benchmark": True}).check()
        for step in range(args.steps + 1):
            enc = timed(encoders, device)
            head = timed(trained_part, device)
            for i in range(b):
                entry = {"image_tokens": state["tokens"][i], "relative_depth": state["relative"][i].to(state["tokens"].dtype),
                         "text_embeds": state["text"][i : i + 1]}  # fmt: skip
                cache.store("bench", f"k{i}", False, geometry, captions[i : i + 1], entry)
            read = timed(lambda: [cache.load("bench", f"k{i}", False, geometry, captions[i : i + 1]) for i in range(b)], device)
            if step:  # the first step warms up allocators and kernels
                for name, value in zip(results, (enc, head, read)):
                    results[name].append(value)
        size = sum(p.stat().st_size for p in Path(scratch).rglob("*.safetensors")) / b / 2**20

    print(f"\nbatch {b} at {height}x{width}, {args.steps} timed steps (median seconds per batch):")
    for name, values in results.items():
        print(f"  {name:<30} {statistics.median(values):8.3f}")
    uncached = statistics.median(results["frozen encoders"]) + statistics.median(results["head + projector + EMA step"])
    cached = statistics.median(results["cache read (batch)"]) + statistics.median(results["head + projector + EMA step"])
    print(f"  step without cache / with cache: {uncached:.3f} / {cached:.3f} s  (×{uncached / cached:.1f})")
    print(f"  cache entry per sample and variant: {size:.2f} MiB")


if __name__ == "__main__":
    main()
