"""The frozen encoders' outputs for a batch, computed or read from an on-disk cache.

Training only updates the head, so DINOv2's tokens, Depth Anything's relative depth and CLIP's
caption embeddings depend on nothing but the encoders' input. Caching them makes later epochs
cost a head's forward and backward pass instead of three large encoders.

**When the cache is valid**: only when the encoders see the same input every time a sample comes
back. A horizontal flip is fine (the cache holds the flipped and unflipped variants separately);
colour, gamma, brightness or jitter changes are not (they change every epoch), so the training
config refuses a cache while colour augmentation is on. The cache also depends on the encoders,
and the precision: these are recorded in `cache.json` and checked. Each entry records how its
photo was prepared (input crop, first resize, network size) and its captions, so a changed protocol
or caption file means recomputing, not a stale answer.

Entries are stored in the encoders' own precision (fp16/bf16 on GPU), so reading them back gives
the same numbers the encoders produced: a cached run matches an uncached one up to the rounding
differences of computing a sample in a different batch.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import torch

from ..errors import OutputError
from ..io.atomic import atomic_path, write_json
from ..model.config import PATCH_SIZE
from ..model.inference import EncoderOutputs, encoder_outputs

CACHE_FORMAT = "tr2m-feature-cache"
CACHE_VERSION = 2  # 2: reference position embeddings and caption cleaning changed the features


class FeatureCache:
    """One safetensors file per (dataset, sample key, flipped) under `root`."""

    def __init__(self, root: str | Path, fingerprint: dict[str, Any]) -> None:
        self.root = Path(root)
        self.fingerprint = fingerprint

    def check(self) -> "FeatureCache":
        """Create `cache.json`, or make sure the one there describes the same encoders."""
        manifest = self.root / "cache.json"
        expected = {"format": CACHE_FORMAT, "version": CACHE_VERSION, **self.fingerprint}
        if manifest.is_file():
            try:
                found = json.loads(manifest.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise OutputError(f"{manifest}: unreadable feature-cache manifest ({exc})") from None
            if found != expected:
                differing = sorted(k for k in set(found) | set(expected) if found.get(k) != expected.get(k))
                raise OutputError(
                    f"{self.root}: this feature cache was made with other settings ({', '.join(differing)}); "
                    f"use another folder or delete it"
                )
        else:
            try:
                write_json(manifest, expected)
            except OSError as exc:
                raise OutputError(f"{manifest}: cannot create the feature cache ({exc})") from None
        return self

    def path(self, dataset: str, key: str, flipped: bool) -> Path:
        digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:20]
        return self.root / dataset / digest[:2] / f"{digest}{'-flip' if flipped else ''}.safetensors"

    def load(
        self, dataset: str, key: str, flipped: bool, geometry: dict[str, Any], captions: Sequence[str]
    ) -> dict[str, torch.Tensor] | None:
        """The cached tensors, or None if absent or made for another geometry or other captions."""
        from safetensors import SafetensorError, safe_open

        path = self.path(dataset, key, flipped)
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt", device="cpu") as handle:
                meta = handle.metadata() or {}
                if meta.get("key") != key or json.loads(meta.get("geometry", "null")) != geometry:
                    return None
                if json.loads(meta.get("captions", "null")) != list(captions):
                    return None
                return {name: handle.get_tensor(name) for name in handle.keys()}
        except (SafetensorError, OSError, ValueError):
            return None  # a damaged entry is recomputed and rewritten

    def store(
        self,
        dataset: str,
        key: str,
        flipped: bool,
        geometry: dict[str, Any],
        captions: Sequence[str],
        tensors: dict[str, torch.Tensor],
    ) -> None:
        from safetensors.torch import save_file

        metadata = {"key": key, "geometry": json.dumps(geometry), "captions": json.dumps(list(captions))}
        with atomic_path(self.path(dataset, key, flipped)) as temp:
            save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(temp), metadata=metadata)


def encode_batch(
    model, pixels: torch.Tensor, batch: dict[str, Any], cache: FeatureCache | None, source
) -> EncoderOutputs:
    """Run the frozen encoders on a batch (normalised pixels at network size) through the
    inference core's `encoder_outputs`, or take what the loader found in the cache and compute
    only the misses (storing them)."""
    grid = (pixels.shape[-2] // PATCH_SIZE, pixels.shape[-1] // PATCH_SIZE)
    if cache is None:
        return encoder_outputs(model, pixels, batch["caption"])
    entries: list[dict[str, torch.Tensor] | None] = list(batch["features"])
    missing = [i for i, entry in enumerate(entries) if entry is None]
    if missing:
        image_dtype = next(model.image_encoder.parameters()).dtype
        text_dtype = next(model.text_encoder.parameters()).dtype
        computed = encoder_outputs(model, pixels[missing])
        relative = computed.relative_depth.to(image_dtype)
        for row, i in enumerate(missing):
            captions = batch["captions"][i]
            entry = {
                "image_tokens": computed.image_tokens[row],
                "relative_depth": relative[row],
                "text_embeds": model.encode_text(captions).to(text_dtype),
            }
            cache.store(source.name, batch["key"][i], batch["flipped"][i], source.geometry, captions, entry)
            entries[i] = entry
    device = pixels.device
    return EncoderOutputs(
        image_tokens=torch.stack([e["image_tokens"] for e in entries]).to(device),
        grid=grid,
        relative_depth=torch.stack([e["relative_depth"] for e in entries]).to(device).float(),
        text_embeds=torch.stack(
            [e["text_embeds"][batch["caption_index"][i]] for i, e in enumerate(entries)]
        ).to(device).float(),
    )


def entry_bytes(
    size: tuple[int, int], *, image_channels: int = 1024, text_channels: int = 768, captions: int = 15, element_bytes: int = 2
) -> int:
    """Bytes of one cache entry (one sample, one flip variant) before the file's small header:
    the image tokens (h/14 · w/14 · channels), the relative depth (H · W) and one text embedding
    per caption line, each number `element_bytes` wide (2 in fp16/bf16, 4 in fp32). The defaults
    are DINOv2-L and CLIP-L with the paper's 15 captions per image (docs/training.md has the
    sizes per dataset)."""
    height, width = size
    tokens = (height // PATCH_SIZE) * (width // PATCH_SIZE) * image_channels
    return element_bytes * (tokens + height * width + captions * text_channels)


def cache_fingerprint(encoders: dict[str, str], precision: torch.dtype) -> dict[str, Any]:
    """What the cached numbers depend on besides the image: the encoders and their precision."""
    return {"encoders": dict(encoders), "precision": str(precision).replace("torch.", "")}
