"""Colour maps for depth previews, without matplotlib.

Each map is 33 evenly spaced control colours, linearly interpolated to a 256-entry table: within
3/255 of the published 256-entry tables, invisible in a preview. Control colours were sampled
from the published maps: viridis, inferno, magma and plasma (Stéfan van der Walt and Nathaniel
Smith, CC0) and Turbo (Anton Mikhailov, Google, Apache-2.0).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..errors import InputError

_CONTROL_COLOURS = {
    "turbo": (
        "30123b392a734040a24456c7466be34680f64294ff37a8fa28bceb1ccdd818ddc21fe9af32f2984ef97d6dfe628bff4b"
        "a4fc3cb7f735cbed34dde037ecd13af7c13afdae35fe992cfb8122f56918ec530fe14109d23105c12302ac1701950d01"
        "7a0403"
    ),
    "viridis": (
        "440154470d6048186a482374472d7b4537814240863e49893b528b375b8d33638d2f6b8e2c728e297a8e26828e23898e"
        "21918c1f978b1f9f8821a68527ad8131b57b3dbc744cc26c5cc8636ece5881d34d95d840aadc32c0df25d5e21aeae51a"
        "fde725"
    ),
    "inferno": (
        "0000040403120b0724150b37210c4a2f0a5b3d09654a0c6b57106e64156e71196e7d1e6d8a226a972766a32c61b0315b"
        "bc3754c63d4dd04545da4e3ce35933eb6429f1711ff67e14f98c0afb9b06fcaa0ffbba1ff9c932f5d949f2e865f3f586"
        "fcffa4"
    ),
    "magma": (
        "0000040303120a0822130d341d114729115a36106b440f7651127c5d177f6a1c81762181832681902a819c2e7faa337d"
        "b73779c23b75cf4070db476ae55064ee5b5ef4695cf9785dfb8761fd9668fea571feb47bfec287fed194fde0a1fceeb0"
        "fcfdbf"
    ),
    "plasma": (
        "0d08872206903105973f049c4c02a15901a56600a77201a87e03a88a09a59511a1a01a9caa2395b32c8ebc3587c43e7f"
        "cc4778d24f71d9586adf6263e56b5deb7556f07f4ff48948f89441fb9f3afdab33feb72dfdc328fcd025f9dd25f5eb27"
        "f0f921"
    ),
}

COLORMAPS = (*_CONTROL_COLOURS, "gray")


@lru_cache(maxsize=None)
def colormap_table(name: str) -> np.ndarray:
    """[256, 3] uint8 colours from the low end of the map (index 0) to the high end."""
    if name == "gray":
        return np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    if name not in _CONTROL_COLOURS:
        raise InputError(f"colour map '{name}': expected one of {', '.join(COLORMAPS)}")
    text = "".join(_CONTROL_COLOURS[name])
    control = np.array([[int(text[i + k : i + k + 2], 16) for k in (0, 2, 4)] for i in range(0, len(text), 6)], dtype=np.float64)
    at = np.linspace(0.0, 1.0, len(control))
    grid = np.linspace(0.0, 1.0, 256)
    table = np.stack([np.interp(grid, at, control[:, c]) for c in range(3)], axis=1)
    table = np.clip(np.round(table), 0, 255).astype(np.uint8)
    table.setflags(write=False)
    return table
