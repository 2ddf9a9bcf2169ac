"""KITTI, Eigen split, with the annotated (semi-dense) depth of the KITTI depth benchmark.

    <root>/                                  KITTI raw: <date>/<drive>/image_02/data/*.png
                                             (also accepted under raw/ or kitti_raw_data/)
    <root>/data_depth_annotated/             annotated depth: <drive>/proj_depth/groundtruth/
                                             image_02/*.png, possibly split into train/ and val/
    <root>/eigen_{test,train}_files_with_gt.txt   (also under splits/ or data_splits/kitti/):
                                             "<rgb> <depth|None> <focal>" per line (BTS lists)

A separate annotated-depth folder can be given (`gt_root=`, --kitti-gt-root, TR2M_KITTI_GT_ROOT).
Depth: uint16 PNG, m = v / 256, 0 = no measurement. Lines whose depth is "None" (45 of the 697
Eigen test frames have no annotated depth) are left out, giving the usual 652 test frames.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .dataset import DepthDataset, Entry
from .files import find_file, read_lines, read_scaled_depth, relative_key

METRES_PER_UNIT = 1 / 256  # the KITTI depth benchmark's encoding
GT_ROOT_ENV = "TR2M_KITTI_GT_ROOT"
RAW_FOLDERS = ("", "raw", "kitti_raw_data", "raw_data")
GT_FOLDERS = ("data_depth_annotated", "data_depth_annotated/train", "data_depth_annotated/val", "gt", "")
LIST_FOLDERS = ("", "splits", "data_splits", "data_splits/kitti", "train_test_inputs")


class KITTI(DepthDataset):
    name = "kitti"
    title = "KITTI"
    kind = "in-domain"
    splits = ("train", "test")
    folder = "kitti"
    caption_folder = "kitti"
    layout = (
        "KITTI raw (<date>/<drive>/image_02/data/*.png), data_depth_annotated/<drive>/proj_depth/"
        "groundtruth/image_02/*.png and eigen_{train,test}_files_with_gt.txt"
    )

    def __init__(
        self, root, split: str = "test", *, gt_root: str | Path | None = None,
        split_file: str | Path | None = None, **common,
    ) -> None:
        self.gt_root = gt_root or os.environ.get(GT_ROOT_ENV) or None
        self.split_file = split_file
        super().__init__(root, split, **common)

    def _index(self) -> list[Entry]:
        list_name = f"eigen_{self.split}_files_with_gt.txt"
        path = Path(self.split_file) if self.split_file else find_file([list_name], (self.root / f for f in LIST_FOLDERS))
        if path is None:
            raise DatasetError(
                f"{self.root}: no {list_name} (the Eigen split list of BTS, 'rgb depth focal' per line); "
                f"put it in the KITTI root or pass split_file="
            )
        self.caption_order = f"the order of {path.name}"
        rows = [line.split() for line in read_lines(path)]
        rows = [row for row in rows if len(row) >= 2 and row[1] != "None"]
        if not rows:
            return []
        raw_base = self._locate([self.root / f for f in RAW_FOLDERS], rows[0][0], "KITTI raw image")
        searched = [Path(self.gt_root).expanduser()] if self.gt_root else [self.root / f for f in GT_FOLDERS]
        gt_bases = [base for base in searched if base.is_dir()]
        found: Counter[Path] = Counter()
        depths = []
        for row in rows:
            base = next((base for base in gt_bases if (base / row[1]).is_file()), None)
            if base is not None:
                found[base] += 1
            depths.append(None if base is None else base / row[1])
        if not found:
            looked = ", ".join(str(base) for base in searched)
            raise DatasetError(
                f"{self.root}: no KITTI annotated depth found (first expected: {rows[0][1]}, looked under {looked}); "
                f"give the folder holding <drive>/proj_depth/groundtruth/ as gt_root= (--kitti-gt-root DIR)"
            )
        # A frame whose depth is missing is named where its neighbours are (e.g. under val/).
        usual = found.most_common(1)[0][0]
        entries = []
        for row, depth in zip(rows, depths):
            image = raw_base / row[0]
            if not image.is_file() and image.with_suffix(".jpg").is_file():
                image = image.with_suffix(".jpg")  # copies converted to JPEG, as monodepth2 does
            focal = float(row[2]) if len(row) > 2 else None
            entries.append(Entry(relative_key(row[0]), image, depth or usual / row[1], focal))
        return entries

    def _locate(self, bases: list[Path], relative: str, what: str) -> Path:
        for base in bases:
            path = base / relative
            if path.is_file() or path.with_suffix(".jpg").is_file():
                return base
        raise DatasetError(f"{bases[0] / relative}: no {what} (expected {self.layout})")

    def _read_depth(self, entry: Entry) -> tuple[np.ndarray, np.ndarray]:
        return read_scaled_depth(entry.depth, METRES_PER_UNIT)
