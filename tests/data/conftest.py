"""Writers for hand-made native files: tests state the stored numbers and the metres they mean."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest


def _png16(path: Path, values) -> Path:
    import imageio.v3 as iio

    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, np.asarray(values, dtype=np.uint16))
    return path


def _rgb(path: Path, shape: tuple[int, int], value: int = 128) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*shape, 3), value, dtype=np.uint8)).save(path)
    return path


def _text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def native():
    return SimpleNamespace(png16=_png16, rgb=_rgb, text=_text)
