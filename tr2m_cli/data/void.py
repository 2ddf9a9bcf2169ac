"""VOID-1500 (visual-inertial odometry indoor/outdoor set of Wong et al.), as released.

    <root>/void_1500/
      data/<scene>/image/<t>.png, data/<scene>/ground_truth/<t>.png, data/<scene>/K.txt
      {train,test}_image.txt, {train,test}_ground_truth.txt, {train,test}_intrinsics.txt
      (one path per line, relative to <root>, e.g. void_1500/data/<scene>/image/<t>.png)

`<root>` is the `void_release` folder. Depth: uint16 PNG, m = v / 256, 0 = no measurement.
Images and ground truth are paired line by line, so the two lists must have equal length.
"""

from __future__ import annotations


import numpy as np

from ..errors import DatasetError
from .dataset import DepthDataset, Entry
from .files import read_focal, read_lines, read_scaled_depth, relative_key

SUBSET = "void_1500"
METRES_PER_UNIT = 1 / 256


class VOID(DepthDataset):
    name = "void"
    title = "VOID"
    kind = "in-domain"
    splits = ("train", "test")
    folder = "void"
    caption_folder = "void"
    layout = "void_1500/{train,test}_image.txt, {train,test}_ground_truth.txt and void_1500/data/<scene>/{image,ground_truth}/*.png"

    def _index(self) -> list[Entry]:
        base = self.root
        if not (base / SUBSET).is_dir() and (base.name == SUBSET):
            base = base.parent  # given void_1500/ itself: list paths start with void_1500/
        self.base = base
        images_list = base / SUBSET / f"{self.split}_image.txt"
        depths_list = base / SUBSET / f"{self.split}_ground_truth.txt"
        for path in (images_list, depths_list):
            if not path.is_file():
                raise DatasetError(f"{path}: missing; the VOID root should contain {self.layout}")
        images, depths = read_lines(images_list), read_lines(depths_list)
        if len(images) != len(depths):
            raise DatasetError(f"{images_list}: {len(images)} images but {depths_list.name} lists {len(depths)} depth maps")
        intrinsics_list = base / SUBSET / f"{self.split}_intrinsics.txt"
        intrinsics = read_lines(intrinsics_list) if intrinsics_list.is_file() else []
        if len(intrinsics) != len(images):
            intrinsics = [None] * len(images)
        self.caption_order = f"the order of {images_list.name}"
        return [
            Entry(relative_key(image), base / image, base / depth, extras={"intrinsics": k} if k else {})
            for image, depth, k in zip(images, depths, intrinsics)
        ]

    def _focal(self, entry: Entry) -> float | None:
        relative = entry.extras.get("intrinsics")
        return read_focal(self.base / relative) if relative else None

    def _read_depth(self, entry: Entry) -> tuple[np.ndarray, np.ndarray]:
        return read_scaled_depth(entry.depth, METRES_PER_UNIT)
