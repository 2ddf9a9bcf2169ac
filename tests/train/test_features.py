"""The feature cache: what one entry costs on disk (the sizes docs/training.md states)."""

from __future__ import annotations

import torch


def test_cache_entries_are_the_size_the_docs_state(tiny_model, tmp_path):
    """docs/training.md's cache sizes come from entry_bytes; a stored entry is that, plus a header."""
    from tr2m_cli.train.features import FeatureCache, entry_bytes

    size, channels = (28, 42), tiny_model.spec.head.image_channels
    pixels = torch.rand(1, 3, *size)
    tokens, _ = tiny_model.encode_image(pixels)
    entry = {
        "image_tokens": tokens[0].half(),
        "relative_depth": tiny_model.estimate_relative_depth(pixels)[0].half(),
        "text_embeds": tiny_model.encode_text(["one", "two", "three"]).half(),
    }
    cache = FeatureCache(tmp_path, {"encoders": {}, "precision": "float16"}).check()
    cache.store("nyu", "a/b", False, {"size": list(size)}, ["one", "two", "three"], entry)
    stored = cache.path("nyu", "a/b", False).stat().st_size
    expected = entry_bytes(size, image_channels=channels, text_channels=entry["text_embeds"].shape[1], captions=3)
    assert expected < stored < expected + 1024
    assert entry_bytes((434, 560)) == 3_048_640  # NYUv2/VOID at the paper's size, DINOv2-L + CLIP-L, fp16
