"""DIODE outdoor (validation split, the usual zero-shot test set), zero-shot.

    <root>/val/outdoor/scene_XXXXX/scan_XXXXX/<name>.png, <name>_depth.npy, <name>_depth_mask.npy

The root may also be `val/` or `val/outdoor/` itself. Depth: float32 .npy in metres (HxWx1);
the mask .npy marks valid laser returns and is applied (the authors' code ignores it:
`apply_mask=False`). Frames are in
sorted path order; the reference pairs its one-caption-per-line file with an unsorted glob, whose
order depends on the file system and cannot be recovered, so prefer a JSON mapping for DIODE.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .dataset import DepthDataset, Entry
from .files import read_npy


class DIODEOutdoor(DepthDataset):
    name = "diode"
    title = "DIODE outdoor"
    folder = "diode"
    caption_folder = "diode_outdoor"
    layout = "val/outdoor/scene_*/scan_*/<name>.png with <name>_depth.npy and <name>_depth_mask.npy"
    caption_order = "sorted image paths"
    lines_caption_notice = (
        "diode: captions paired line by line in sorted path order; the reference wrote its DIODE "
        "caption file in unsorted glob order, which may differ: prefer a JSON mapping"
    )

    def __init__(self, root, split: str = "test", *, apply_mask: bool = True, **common) -> None:
        # apply_mask=False reproduces the authors' code, which never reads the validity mask and so
        # scores the junk depth of masked pixels (tr2m eval --match-reference).
        self.apply_mask = apply_mask
        super().__init__(root, split, **common)

    def sample_files(self, entry: Entry) -> dict[str, Path]:
        files = super().sample_files(entry)
        if self.apply_mask:
            files["validity mask"] = Path(entry.extras["mask"])
        return files

    def differences_from_reference(self) -> list[str]:
        if not self.apply_mask:
            return []
        return ["validity mask applied; the authors' code ignores it (--match-reference)"]

    def _index(self) -> list[Entry]:
        base = next(
            (b for b in (self.root / "val" / "outdoor", self.root / "outdoor", self.root) if any(b.glob("scene_*"))),
            None,
        )
        if base is None:
            raise DatasetError(f"{self.root}: no scene_* folders; the DIODE root should contain {self.layout}")
        self.base = base
        entries = []
        for image in sorted(base.glob("scene_*/scan_*/*.png"), key=lambda p: p.as_posix()):
            stem = image.with_suffix("")
            entries.append(
                Entry(
                    image.relative_to(base).with_suffix("").as_posix(),
                    image,
                    Path(f"{stem}_depth.npy"),
                    extras={"mask": str(Path(f"{stem}_depth_mask.npy"))},
                )
            )
        return entries

    def _read_depth(self, entry: Entry) -> tuple[np.ndarray, np.ndarray]:
        depth = read_npy(entry.depth)
        depth = depth[..., 0] if depth.ndim == 3 else depth
        if not self.apply_mask:
            if depth.ndim != 2:
                raise DatasetError(f"{entry.depth}: depth of shape {depth.shape}, expected HxW")
            return depth.astype(np.float32), np.ones(depth.shape, dtype=bool)
        mask = read_npy(Path(entry.extras["mask"]))
        if depth.ndim != 2 or mask.shape != depth.shape:
            raise DatasetError(f"{entry.depth}: depth {depth.shape} and mask {mask.shape} do not form one HxW map")
        return depth.astype(np.float32), mask > 0
