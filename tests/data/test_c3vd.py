"""C3VD: uint16 TIFF with 0–65535 ↔ 0–100 mm, splits by sequence name, sequence captions."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from tr2m_cli.data import open_dataset
from tr2m_cli.data.c3vd import TEST_SEQUENCES, TRAIN_SEQUENCES
from tr2m_cli.errors import DatasetError


def _frame(root, native, sequence, frame="0000", values=((0, 65535), (32768, 655))):
    native.rgb(root / sequence / f"{frame}_color.png", np.asarray(values).shape)
    tifffile.imwrite(root / sequence / f"{frame}_depth.tiff", np.asarray(values, dtype=np.uint16))


def test_tiff_scale_to_metres(tmp_path, native):
    _frame(tmp_path, native, "cecum_t1_a")
    sample = open_dataset("c3vd", root=tmp_path)[0]
    # 65535 → 100 mm; 32768 → 50.0008 mm; 655 → 0.9995 mm
    np.testing.assert_allclose(sample.depth, [[0, 0.1], [0.1 * 32768 / 65535, 0.1 * 655 / 65535]], rtol=1e-6)
    assert sample.valid.tolist() == [[False, True], [True, True]]
    assert sample.key == "cecum_t1_a/0000_color"


def test_splits_are_the_22_registered_sequences_partitioned():
    assert len(TEST_SEQUENCES) == 8 and len(TRAIN_SEQUENCES) == 14
    assert not set(TEST_SEQUENCES) & set(TRAIN_SEQUENCES)
    # The release's indices into the sorted list of 22 sequences: test 0 2 5 9 12 16 19 21.
    everything = sorted(TEST_SEQUENCES + TRAIN_SEQUENCES)
    assert [everything.index(s) for s in TEST_SEQUENCES] == [0, 2, 5, 9, 12, 16, 19, 21]


def test_captions_from_sequence_names_and_overrides(tmp_path, native):
    for sequence in ("cecum_t1_b", "desc_t4_a", "sigmoid_t2_a", "trans_t3_a"):
        _frame(tmp_path, native, sequence)
    _frame(tmp_path, native, "cecum_t1_a")  # a test sequence: not in the training split
    dataset = open_dataset("c3vd", "train", root=tmp_path)
    assert [s.captions for s in dataset] == [
        ["The image shows a medical scene of cecum with texture type one."],
        ["The image shows a medical scene of descending colon with texture type four."],
        ["The image shows a medical scene of sigmoid colon with texture type two."],
        ["The image shows a medical scene of transcending colon with texture type three."],
    ]
    assert any("missing" in note for note in dataset.notes)  # 10 of the 14 are absent here
    custom = open_dataset("c3vd", root=tmp_path, sequences=["desc_t4_a"], caption_template="{sequence}: {part}")
    assert custom[0].captions == ["desc_t4_a: descending colon"]
    with pytest.raises(DatasetError, match="none of the C3VD test sequences"):
        open_dataset("c3vd", root=tmp_path / "cecum_t1_a")


def test_a_frame_without_its_depth_stays_in_the_split_and_is_reported(tmp_path, native):
    """The reference (and we, before) dropped such frames without a word: "2 images", exit 0."""
    _frame(tmp_path, native, "cecum_t1_a", "0000")
    _frame(tmp_path, native, "cecum_t1_a", "0001")
    (tmp_path / "cecum_t1_a" / "0000_depth.tiff").unlink()  # the very first frame, even
    dataset = open_dataset("c3vd", root=tmp_path)
    assert dataset.keys() == ["cecum_t1_a/0000_color", "cecum_t1_a/0001_color"]
    assert [(p.index, p.problem) for p in dataset.missing_files()] == [
        (0, f"missing depth file {tmp_path / 'cecum_t1_a' / '0000_depth.tiff'}")
    ]
    (tmp_path / "cecum_t1_a" / "0001_depth.tiff").write_bytes(b"")
    assert dataset.missing_files()[1].problem.startswith("empty depth file")
