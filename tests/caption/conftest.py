"""Tiny captioners of three families, built once per session and saved as folders, so every test
loads them through the same path as a real captioner (`--captioner DIR`)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def tiny_captioner_dirs(tmp_path_factory) -> dict:
    from tr2m_cli.caption.testing import save_tiny_blip, save_tiny_florence2, save_tiny_llava_next

    root = tmp_path_factory.mktemp("captioners")
    return {
        "blip": save_tiny_blip(root / "blip"),
        "florence2": save_tiny_florence2(root / "florence2"),
        "llava_next": save_tiny_llava_next(root / "llava_next"),
    }


@pytest.fixture(scope="session")
def tiny_captioners(tiny_captioner_dirs) -> dict:
    from tr2m_cli.caption import load_captioner

    return {family: load_captioner(folder, device="cpu", precision="fp32") for family, folder in tiny_captioner_dirs.items()}


@pytest.fixture(scope="session")
def photos() -> list[np.ndarray]:
    """Three random photos of different sizes and aspect ratios (LLaVA-NeXT tiles each its own way)."""
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for h, w in ((40, 60), (70, 50), (33, 97))]
