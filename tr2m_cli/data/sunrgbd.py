"""SUN RGB-D, test split (5,050 frames from four sensors), zero-shot.

    <root>/SUNRGBD/<sensor>/.../<scene>/image/<frame>.jpg, depth/<frame>.png, intrinsics.txt
    <root>/sunrgbd_testing_images.txt        (also under sunrgbd-meta-data/, splits/, data_splits/)
    <root>/sunrgbd_testing_depths.txt        optional; else depth = the image's ../depth/<frame>.png

The image list is the one published with the SUN RGB-D meta data (ankurhanda/sunrgbd-meta-data).

Depth encodings (`depth_encoding=`):
- "rotated": the original SUN RGB-D files store millimetres with their 16 bits rotated by three:
  mm = ((v >> 3) | (v << 13)) & 0xFFFF (SUN RGB-D toolbox, read3dPoints);
- "mm": copies re-saved as plain millimetres (v / 1000), as ZoeDepth's;
- "reference": v / 10000, what the authors' evaluation code does. On original files that is 0.8×
  the true depth (v ≈ 8·mm), so use it only to reproduce their numbers on their copy;
- "auto" (default): per frame, "rotated" when most valid values have their low three bits clear
  (97 % on original files, 1 in 8 by chance on plain millimetres), else "mm".
Depth beyond 8 m is outside the evaluation range either way (the paper's cap).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .dataset import DepthDataset, Entry
from .files import find_file, read_focal, read_lines, read_uint16_image, relative_key

ENCODINGS = ("auto", "rotated", "mm", "reference")
LIST_FOLDERS = ("", "sunrgbd-meta-data", "splits", "data_splits", "data_splits/sunrgbd")
ROTATED_SHARE = 0.5  # share of valid values with low three bits clear above which a frame is "rotated"


def decode_sun_depth(raw: np.ndarray, encoding: str = "auto") -> tuple[np.ndarray, str]:
    """uint16 SUN RGB-D depth → (metres, the encoding used)."""
    if encoding not in ENCODINGS:
        raise DatasetError(f"SUN RGB-D depth encoding '{encoding}': expected one of {', '.join(ENCODINGS)}")
    values = raw.astype(np.uint32)
    if encoding == "auto":
        nonzero = values[values > 0]
        clear = np.count_nonzero((nonzero & 7) == 0) / max(nonzero.size, 1)
        encoding = "rotated" if nonzero.size and clear > ROTATED_SHARE else "mm"
    if encoding == "rotated":
        millimetres = ((values >> 3) | (values << 13)) & 0xFFFF
        return millimetres.astype(np.float32) / 1000.0, encoding
    if encoding == "mm":
        return values.astype(np.float32) / 1000.0, encoding
    return values.astype(np.float32) / 10000.0, encoding


class SUNRGBD(DepthDataset):
    name = "sunrgbd"
    title = "SUN RGB-D"
    folder = "sunrgbd"
    caption_folder = "sunrgbd"
    layout = "SUNRGBD/<sensor>/.../image/*.jpg + depth/*.png and sunrgbd_testing_images.txt (SUN RGB-D meta data)"

    def __init__(
        self, root, split: str = "test", *, depth_encoding: str = "auto", depth_folder: str = "depth",
        split_file: str | Path | None = None, **common,
    ) -> None:
        if depth_encoding not in ENCODINGS:
            raise DatasetError(f"SUN RGB-D depth encoding '{depth_encoding}': expected one of {', '.join(ENCODINGS)}")
        self.depth_encoding = depth_encoding
        self.depth_folder = depth_folder
        self.split_file = split_file
        super().__init__(root, split, **common)

    def _index(self) -> list[Entry]:
        folders = [self.root / f for f in LIST_FOLDERS]
        images_list = Path(self.split_file) if self.split_file else find_file(["sunrgbd_testing_images.txt"], folders)
        if images_list is None:
            raise DatasetError(
                f"{self.root}: no sunrgbd_testing_images.txt (the SUN RGB-D test list, from "
                f"github.com/ankurhanda/sunrgbd-meta-data); expected {self.layout}"
            )
        images = read_lines(images_list)
        depths_list = find_file(["sunrgbd_testing_depths.txt", "sunrgbd_testing_depth.txt"], [images_list.parent, *folders])
        if depths_list is not None:
            depths = read_lines(depths_list)
            if len(depths) != len(images):
                raise DatasetError(f"{depths_list}: {len(depths)} depth maps for the {len(images)} images of {images_list.name}")
        else:
            depths = [self._depth_beside(image) for image in images]
        self.caption_order = f"the order of {images_list.name}"
        base = self._base(images[0]) if images else self.root
        return [Entry(relative_key(image), base / image, base / depth) for image, depth in zip(images, depths)]

    def _base(self, first: str) -> Path:
        # Lists start with SUNRGBD/...; accept the SUNRGBD folder itself as the root too.
        for base in (self.root, self.root.parent):
            if (base / first).is_file():
                return base
        return self.root

    def _depth_beside(self, image: str) -> str:
        parts = image.split("/")
        if len(parts) < 2 or parts[-2] != "image":
            raise DatasetError(f"SUN RGB-D list entry '{image}': expected .../image/<frame>.jpg")
        return "/".join([*parts[:-2], self.depth_folder, Path(parts[-1]).with_suffix(".png").name])

    def _focal(self, entry: Entry) -> float | None:
        return read_focal(entry.image.parent.parent / "intrinsics.txt")

    def _read_depth(self, entry: Entry) -> tuple[np.ndarray, np.ndarray, dict]:
        raw = read_uint16_image(entry.depth)
        depth, encoding = decode_sun_depth(raw, self.depth_encoding)
        return depth, raw > 0, {"depth_encoding": encoding}  # recorded per frame by tr2m eval

    def differences_from_reference(self) -> list[str]:
        if self.depth_encoding == "reference":
            return []
        return [
            f"depth decoded '{self.depth_encoding}' (per frame, see per_image.csv); the authors' code "
            f"divides by 10000, 0.8x the true depth on the original files (--sun-depth reference)"
        ]
