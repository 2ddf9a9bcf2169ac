"""C3VD (Colonoscopy 3D Video Dataset; silicone colon phantoms, registered video).

    <root>/<sequence>/NNNN_color.png, NNNN_depth.tiff      e.g. cecum_t1_a/0000_color.png

Depth: uint16 TIFF scaled so that 0–65535 spans 0–100 mm: metres = v / 65535 × 0.1; 0 = none.

Split by sequence. The reference picks sequences by their index in a sorted directory listing
(test: 0 2 5 9 12 16 19 21), which breaks as soon as the folder holds anything else; applied to
the 22 registered sequences those indices name the sequences below, and its training indices name
exactly the other 14 (its index 22 points past them), so we list the names instead.

Captions come from the sequence name, as the authors trained them: "<part>_t<texture>_<take>" →
"The image shows a medical scene of <part> with texture type <one…four>." ("trans" is spelled
"transcending colon" as in their training captions). Override with `caption_template` (fields
{part}, {texture}, {sequence}) or any caption file.
"""

from __future__ import annotations


import numpy as np

from ..errors import DatasetError
from .captions import DerivedCaptions
from .dataset import DepthDataset, Entry
from .files import read_scaled_depth

TEST_SEQUENCES = (
    "cecum_t1_a", "cecum_t2_a", "cecum_t3_a", "sigmoid_t1_a",
    "sigmoid_t3_b", "trans_t2_b", "trans_t3_b", "trans_t4_b",
)
TRAIN_SEQUENCES = (
    "cecum_t1_b", "cecum_t2_b", "cecum_t2_c", "cecum_t4_a", "cecum_t4_b", "desc_t4_a", "sigmoid_t2_a",
    "sigmoid_t3_a", "trans_t1_a", "trans_t1_b", "trans_t2_a", "trans_t2_c", "trans_t3_a", "trans_t4_a",
)
DEPTH_METRES_PER_UNIT = 0.1 / 65535  # 0–65535 ↔ 0–100 mm
COLON_PARTS = {"cecum": "cecum", "desc": "descending colon", "sigmoid": "sigmoid colon", "trans": "transcending colon"}
NUMBER_WORDS = {"1": "one", "2": "two", "3": "three", "4": "four"}
CAPTION_TEMPLATE = "The image shows a medical scene of {part} with texture type {texture}."


class C3VD(DepthDataset):
    name = "c3vd"
    title = "C3VD"
    kind = "in-domain"
    splits = ("train", "test")
    folder = "c3vd"
    caption_folder = "c3vd"
    layout = "one folder per sequence (e.g. cecum_t1_a/) with NNNN_color.png and NNNN_depth.tiff"
    caption_order = "sequence order, then frame number"

    def __init__(
        self, root, split: str = "test", *, sequences: tuple[str, ...] | list[str] | None = None,
        caption_template: str = CAPTION_TEMPLATE, **common,
    ) -> None:
        self.sequences = tuple(sequences) if sequences else (TEST_SEQUENCES if split == "test" else TRAIN_SEQUENCES)
        self.caption_template = caption_template
        super().__init__(root, split, **common)

    def _index(self) -> list[Entry]:
        missing = [s for s in self.sequences if not (self.root / s).is_dir()]
        if len(missing) == len(self.sequences):
            raise DatasetError(f"{self.root}: none of the C3VD {self.split} sequences ({', '.join(self.sequences[:3])}, …); expected {self.layout}")
        if missing:
            self.notes.append(f"{len(missing)} {self.split} sequence(s) missing: {', '.join(missing)}")
        entries = []
        for sequence in self.sequences:
            for image in sorted((self.root / sequence).glob("*_color.png")):
                frame = image.name[: -len("_color.png")]
                # A frame whose depth file is missing stays in the split: evaluation reports it
                # rather than scoring one image fewer without a word.
                depth = image.with_name(f"{frame}_depth.tiff")
                entries.append(Entry(f"{sequence}/{frame}_color", image, depth, extras={"sequence": sequence}))
        return entries

    def _read_depth(self, entry: Entry) -> tuple[np.ndarray, np.ndarray]:
        return read_scaled_depth(entry.depth, DEPTH_METRES_PER_UNIT)

    def caption_for(self, key: str) -> str:
        sequence = key.split("/", 1)[0]
        fields = sequence.split("_")
        try:
            part, texture = COLON_PARTS[fields[0]], NUMBER_WORDS[fields[1][1:]]
        except (IndexError, KeyError):
            raise DatasetError(f"{self.root / sequence}: not a C3VD sequence name (<part>_t<1-4>_<take>, e.g. cecum_t1_a)") from None
        return self.caption_template.format(part=part, texture=texture, sequence=sequence)

    def default_captions(self) -> DerivedCaptions:
        return DerivedCaptions(self.caption_for, f"from the sequence name: \"{self.caption_template}\"")
