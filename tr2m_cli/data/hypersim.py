"""HyperSim (Apple's photorealistic synthetic indoor scenes), zero-shot.

    <root>/<scene>/images/scene_cam_XX_final_preview/frame.NNNN.tonemap.jpg
    <root>/<scene>/images/scene_cam_XX_geometry_hdf5/frame.NNNN.depth_meters.hdf5
    <root>/metadata_images_split_scene_v1.csv     optional: the official split

With the official split file, the test frames it lists (and that are on disk) are used; without
it, every frame under the root in sorted order, as the reference does (with a note).

Depth: HDF5 dataset "dataset", float16 metres, but the Euclidean **distance** from the camera
centre, not planar depth. Planar depth = distance × f / ‖(u − cx, v − cy, f)‖ with f = 886.81 px
and a centred principal point, the standard HyperSim camera (1024×768, 60° horizontal field of
view). A few scenes use tilt-shift cameras, for which this is slightly off, as in the reference.
NaN (no geometry) is invalid.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .dataset import DepthDataset, Entry

FOCAL_PX = 886.81
SPLIT_FILE = "metadata_images_split_scene_v1.csv"


def distance_to_planar(distance: np.ndarray, focal_px: float = FOCAL_PX) -> np.ndarray:
    """Ray length from the camera centre → depth along the optical axis (pixel centres, centred
    principal point)."""
    height, width = distance.shape
    u = np.arange(width, dtype=np.float64) - (width - 1) / 2.0
    v = np.arange(height, dtype=np.float64) - (height - 1) / 2.0
    norm = np.sqrt(u[None, :] ** 2 + v[:, None] ** 2 + focal_px**2)
    return (distance.astype(np.float64) * (focal_px / norm)).astype(np.float32)


class HyperSim(DepthDataset):
    name = "hypersim"
    title = "HyperSim"
    folder = "hypersim"
    caption_folder = "hypersim"
    layout = (
        "<scene>/images/scene_cam_XX_final_preview/frame.NNNN.tonemap.jpg with "
        "scene_cam_XX_geometry_hdf5/frame.NNNN.depth_meters.hdf5"
    )
    caption_order = "sorted image paths"

    def _index(self) -> list[Entry]:
        # Sorted as path strings, which is the order the reference's captions file was written in.
        images = sorted(self.root.glob("*/images/scene_cam_*_final_preview/*.tonemap.jpg"), key=lambda p: p.as_posix())
        split_file = self.root / SPLIT_FILE
        if split_file.is_file():
            wanted = self._official_test_frames(split_file)
            chosen = [p for p in images if self._frame_id(p) in wanted]
            if len(chosen) < len(wanted):
                self.notes.append(
                    f"{len(wanted) - len(chosen)} of the {len(wanted)} official test frames are not on disk; "
                    f"evaluating the {len(chosen)} that are"
                )
            images = chosen
        else:
            self.notes.append(f"no {SPLIT_FILE}: using every frame under the root (as the reference does)")
        return [self._entry(image) for image in images]

    @staticmethod
    def _frame_id(image: Path) -> tuple[str, str, int]:
        camera = image.parent.name[len("scene_") : -len("_final_preview")]
        return image.parents[2].name, camera, int(image.name.split(".")[1])

    def _official_test_frames(self, path: Path) -> set[tuple[str, str, int]]:
        try:
            with open(path, newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
            return {
                (row["scene_name"], row["camera_name"], int(row["frame_id"]))
                for row in rows
                if row["split_partition_name"] == "test" and row.get("included_in_public_release", "True") == "True"
            }
        except (OSError, KeyError, ValueError) as exc:
            raise DatasetError(f"{path}: not a HyperSim split file ({exc})") from None

    def _entry(self, image: Path) -> Entry:
        depth_dir = image.parent.with_name(image.parent.name.replace("_final_preview", "_geometry_hdf5"))
        depth = depth_dir / image.name.replace(".tonemap.jpg", ".depth_meters.hdf5")
        key = image.relative_to(self.root).as_posix()[: -len(".jpg")]
        return Entry(key, image, depth, FOCAL_PX)

    def _read_depth(self, entry: Entry) -> tuple[np.ndarray, np.ndarray]:
        from ..extras import import_h5py

        h5py = import_h5py()

        try:
            with h5py.File(entry.depth, "r") as handle:
                distance = np.asarray(handle["dataset"], dtype=np.float32)
        except FileNotFoundError:
            raise DatasetError(f"{entry.depth}: no such file") from None
        except (OSError, KeyError) as exc:
            raise DatasetError(f"{entry.depth}: not a HyperSim depth file ({exc})") from None
        if distance.ndim != 2:
            raise DatasetError(f"{entry.depth}: depth of shape {distance.shape}, expected HxW")
        valid = np.isfinite(distance) & (distance > 0)
        return distance_to_planar(np.where(valid, distance, 0)), valid
