"""SimCol3D: 16-bit depth normalised so that 65280 = 20 cm, RGBA frames, sequence captions."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tr2m_cli.data import open_dataset
from tr2m_cli.errors import DatasetError


def test_depth_scale_and_captions(tmp_path, native):
    for sequence in ("SyntheticColon_I/Frames_S5", "SyntheticColon_II/Frames_B5"):
        native.rgb(tmp_path / sequence / "FrameBuffer_0000.png", (1, 3))
        native.png16(tmp_path / sequence / "Depth_0000.png", [[65280, 256, 32640]])
    native.text(tmp_path / "misc/test_file.txt", "SyntheticColon_I/Frames_S5/\nSyntheticColon_II/Frames_B5/\n")
    dataset = open_dataset("simcol", root=tmp_path)
    sample = dataset[0]
    np.testing.assert_allclose(sample.depth, [[0.2, 0.2 / 255, 0.1]], rtol=1e-6)
    assert sample.key == "SyntheticColon_I/Frames_S5/FrameBuffer_0000"
    assert [s.captions[0] for s in dataset] == [
        "The image shows a medical scene of synthetic colon one.",
        "The image shows a medical scene of synthetic colon two.",
    ]
    reference = open_dataset("simcol", root=tmp_path, caption_template="reference")
    assert {s.captions[0] for s in reference} == {"The image shows a medical scene of a cecum with texture type one."}
    assert reference.differences_from_reference() == [] and "one fixed C3VD caption" in dataset.differences_from_reference()[0]
    (tmp_path / "SyntheticColon_II/Frames_B5/Depth_0000.png").unlink()  # kept, and reported
    assert [p.key for p in open_dataset("simcol", root=tmp_path).missing_files()] == ["SyntheticColon_II/Frames_B5/FrameBuffer_0000"]
    native.text(tmp_path / "misc/test_file.txt", "SyntheticColon_IV/Frames_S1/\n")
    with pytest.raises(DatasetError, match="SyntheticColon_IV/Frames_S1: missing"):
        open_dataset("simcol", root=tmp_path)


def test_real_frames_decode_to_the_documented_range(shared_data, tmp_path):
    source = shared_data / "realrgbd" / "simcol3d" / "images" / "input"
    sequence = tmp_path / "SyntheticColon_I" / "Frames_S5"
    sequence.mkdir(parents=True)
    for path in source.glob("*.png"):
        shutil.copy(path, sequence / path.name)
    (tmp_path / "misc").mkdir()
    (tmp_path / "misc/test_file.txt").write_text("SyntheticColon_I/Frames_S5/\n")
    samples = list(open_dataset("simcol", root=tmp_path))
    assert len(samples) == 3 and samples[0].image.shape == (475, 475, 3)  # RGBA → RGB
    values = np.concatenate([s.depth[s.valid] for s in samples]) * 1000
    # README: 6.3–133.3 mm, no invalid value.
    assert values.min() == pytest.approx(6.3, abs=0.05) and values.max() == pytest.approx(133.3, abs=0.05)
    assert all(s.valid.all() for s in samples)
