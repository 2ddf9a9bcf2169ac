"""NYU Depth v2 in the BTS layout (the one TR2M trains and evaluates on).

    <root>/
      official_splits/test/<scene>/rgb_00045.jpg, sync_depth_00045.png     654 test frames
      sync/<scene>/rgb_00000.jpg, sync_depth_00000.png                      training frames
      nyudepthv2_test_files_with_gt.txt, nyudepthv2_train_files_with_gt.txt (also under splits/ or
      data_splits/): "<rgb> <depth> <focal>" per line, relative to the split's folder

Depth: uint16 PNG in millimetres (m = v / 1000), 0 = no measurement. Without a list file the
frames found on disk are used in sorted order (with a note), since BTS's folders hold exactly the
split. Training frames keep only rows 45:472, cols 43:608: outside them the Kinect-to-RGB
registration leaves a blank border (what the reference masks before training).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .dataset import DepthDataset, Entry
from .files import find_file, read_lines, read_scaled_depth, relative_key

METRES_PER_UNIT = 1 / 1000  # uint16 millimetres
NYU_FOCAL = 518.8579  # fx of the NYU Kinect, as in the BTS lists
TRAIN_VALID_ROWS = (45, 472)
TRAIN_VALID_COLS = (43, 608)
LIST_FOLDERS = ("", "splits", "data_splits", "data_splits/nyudepthv2", "train_test_inputs")


class NYUv2(DepthDataset):
    name = "nyu"
    title = "NYUv2"
    kind = "in-domain"
    splits = ("train", "test")
    folder = "nyu"
    caption_folder = "nyu"
    layout = (
        "official_splits/test/<scene>/rgb_*.jpg + sync_depth_*.png (and sync/ for training) with "
        "nyudepthv2_{train,test}_files_with_gt.txt (BTS layout)"
    )

    def __init__(self, root, split: str = "test", *, split_file: str | Path | None = None, **common) -> None:
        self.split_file = split_file
        super().__init__(root, split, **common)

    @property
    def frames_folder(self) -> Path:
        return self.root / ("official_splits/test" if self.split == "test" else "sync")

    def _index(self) -> list[Entry]:
        list_name = f"nyudepthv2_{self.split}_files_with_gt.txt"
        path = Path(self.split_file) if self.split_file else find_file([list_name], (self.root / f for f in LIST_FOLDERS))
        if path is None:
            self.caption_order = "sorted image paths"
            self.notes.append(f"no {list_name} found: using the frames on disk in sorted order")
            return self._scan()
        self.caption_order = f"the order of {path.name}"
        entries = []
        for line in read_lines(path):
            fields = line.split()
            if len(fields) < 2 or fields[1] == "None":
                continue
            focal = float(fields[2]) if len(fields) > 2 else NYU_FOCAL
            entries.append(self._entry(fields[0], fields[1], focal))
        return entries

    def _entry(self, rgb: str, depth: str, focal: float) -> Entry:
        rgb, depth = rgb.lstrip("/"), depth.lstrip("/")
        return Entry(relative_key(rgb), self.frames_folder / rgb, self.frames_folder / depth, focal)

    def _scan(self) -> list[Entry]:
        entries = []
        for image in sorted(self.frames_folder.glob("*/rgb_*.jpg")):
            depth = image.with_name(image.name.replace("rgb_", "sync_depth_")).with_suffix(".png")
            rel = image.relative_to(self.frames_folder).as_posix()
            entries.append(self._entry(rel, depth.relative_to(self.frames_folder).as_posix(), NYU_FOCAL))
        return entries

    def _read_depth(self, entry: Entry) -> tuple[np.ndarray, np.ndarray]:
        depth, valid = read_scaled_depth(entry.depth, METRES_PER_UNIT)
        if self.split == "train":
            border = np.zeros_like(valid)
            border[slice(*TRAIN_VALID_ROWS), slice(*TRAIN_VALID_COLS)] = True
            valid &= border
        return depth, valid
