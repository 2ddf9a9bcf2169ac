"""iBims-1 (independent Benchmark images and matched scans), zero-shot.

    <root>/ (ibims1_core_raw)
      imagelist.txt                      one frame name per line
      rgb/<name>.png, depth/<name>.png, mask_invalid/<name>.png, mask_transp/<name>.png

Depth: uint16 PNG spanning 0–50 m: metres = v × 50 / 65535. A pixel counts only where both masks
are nonzero (mask_invalid marks missing laser returns with 0, mask_transp transparent surfaces).
Photos are ImageNet-normalised like every other set; the authors' code does not normalise iBims
photos (`EvalProtocol(normalize=False)`, `tr2m eval --match-reference`, reproduces that).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .dataset import DepthDataset, Entry
from .files import read_lines, read_mask_image, read_scaled_depth

DEPTH_METRES_PER_UNIT = 50.0 / 65535


class IBims(DepthDataset):
    name = "ibims"
    title = "iBims-1"
    folder = "ibims"
    caption_folder = "ibims1"
    layout = "imagelist.txt with rgb/, depth/, mask_invalid/ and mask_transp/ (ibims1_core_raw)"
    caption_order = "the order of imagelist.txt"

    def _index(self) -> list[Entry]:
        listing = self.root / "imagelist.txt"
        if not listing.is_file():
            raise DatasetError(f"{listing}: missing; the iBims-1 root should contain {self.layout}")
        names = [name for line in read_lines(listing) for name in line.split()]
        return [
            Entry(
                f"rgb/{name}",
                self.root / "rgb" / f"{name}.png",
                self.root / "depth" / f"{name}.png",
                extras={
                    "mask_invalid": str(self.root / "mask_invalid" / f"{name}.png"),
                    "mask_transp": str(self.root / "mask_transp" / f"{name}.png"),
                },
            )
            for name in names
        ]

    def sample_files(self, entry: Entry) -> dict[str, Path]:
        return {
            **super().sample_files(entry),
            "invalid-pixel mask": Path(entry.extras["mask_invalid"]),
            "transparency mask": Path(entry.extras["mask_transp"]),
        }

    def _read_depth(self, entry: Entry) -> tuple[np.ndarray, np.ndarray]:
        depth, measured = read_scaled_depth(entry.depth, DEPTH_METRES_PER_UNIT)
        valid = read_mask_image(entry.extras["mask_invalid"]) & read_mask_image(entry.extras["mask_transp"])
        if valid.shape != depth.shape:
            raise DatasetError(f"{entry.extras['mask_invalid']}: mask size differs from {entry.depth}")
        return depth, valid & measured
