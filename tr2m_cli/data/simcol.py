"""SimCol3D (synthetic colonoscopy rendered in Unity from CT colons), zero-shot.

    <root>/misc/test_file.txt                  one sequence folder per line, e.g. SyntheticColon_I/Frames_S5/
    <root>/SyntheticColon_I/Frames_S5/FrameBuffer_NNNN.png, Depth_NNNN.png

Depth: 16-bit PNG (first channel), normalised so that 1 = 20 cm; the challenge's official
evaluation reads it as v / 255 / 256, so metres = v / 65280 × 0.2 (the stored values are multiples
of 256, i.e. 8-bit depth k / 255). Colour frames are RGBA with an opaque alpha; it is dropped.

Captions come from the sequence name: SyntheticColon_I/II/III → "The image shows a medical scene
of synthetic colon one/two/three." (fields {colon}, {sequence} for `caption_template`). The
reference gives every frame one fixed C3VD caption; `caption_template="reference"` reproduces it.
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import DatasetError
from .captions import DerivedCaptions
from .dataset import DepthDataset, Entry
from .files import read_lines, read_scaled_depth

DEPTH_METRES_PER_UNIT = 0.2 / (255 * 256)
CAPTION_TEMPLATE = "The image shows a medical scene of synthetic colon {colon}."
REFERENCE_CAPTION = "The image shows a medical scene of a cecum with texture type one."
COLON_WORDS = {"I": "one", "II": "two", "III": "three"}


class SimCol(DepthDataset):
    name = "simcol"
    title = "SimCol"
    folder = "simcol"
    caption_folder = "simcol"
    layout = "misc/test_file.txt naming sequence folders (SyntheticColon_I/Frames_S5/) with FrameBuffer_NNNN.png and Depth_NNNN.png"
    caption_order = "the order of misc/test_file.txt, then frame number"

    def __init__(self, root, split: str = "test", *, caption_template: str = CAPTION_TEMPLATE, **common) -> None:
        self.caption_template = REFERENCE_CAPTION if caption_template == "reference" else caption_template
        super().__init__(root, split, **common)

    def _index(self) -> list[Entry]:
        listing = self.root / "misc" / "test_file.txt"
        if not listing.is_file():
            raise DatasetError(f"{listing}: missing; the SimCol root should contain {self.layout}")
        entries = []
        for line in read_lines(listing):
            sequence = line.strip().strip("/")
            folder = self.root / sequence
            if not folder.is_dir():
                raise DatasetError(f"{folder}: missing (listed in {listing})")
            frames = sorted(folder.glob("FrameBuffer_*.png"), key=lambda p: p.name)
            for image in frames:
                # Kept even without its depth file: evaluation reports such a frame, never drops it.
                depth = image.with_name(image.name.replace("FrameBuffer_", "Depth_"))
                entries.append(Entry(f"{sequence}/{image.stem}", image, depth, extras={"sequence": sequence}))
        return entries

    def differences_from_reference(self) -> list[str]:
        if self.caption_template == REFERENCE_CAPTION:
            return []
        return [
            "a caption per synthetic colon; the authors' code gives every frame one fixed C3VD caption "
            "(--simcol-caption reference)"
        ]

    def _read_depth(self, entry: Entry) -> tuple[np.ndarray, np.ndarray]:
        return read_scaled_depth(entry.depth, DEPTH_METRES_PER_UNIT)

    def caption_for(self, key: str) -> str:
        sequence = key.rsplit("/", 1)[0]
        match = re.search(r"SyntheticColon_(I{1,3})(?!I)", sequence)
        if match is None and "{colon}" in self.caption_template:
            raise DatasetError(f"{self.root / sequence}: not under SyntheticColon_I/II/III; give a caption_template without {{colon}}")
        return self.caption_template.format(colon=COLON_WORDS[match.group(1)] if match else "", sequence=sequence)

    def default_captions(self) -> DerivedCaptions:
        return DerivedCaptions(self.caption_for, f"from the sequence name: \"{self.caption_template}\"")
