"""SUN RGB-D: the original rotated-bit encoding, plain millimetres, the reference's /10000."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tr2m_cli.data import open_dataset
from tr2m_cli.data.sunrgbd import decode_sun_depth
from tr2m_cli.errors import DatasetError


def _rotate(mm):
    mm = np.asarray(mm, dtype=np.uint32)
    return (((mm << 3) | (mm >> 13)) & 0xFFFF).astype(np.uint16)


def test_decodings_by_hand():
    stored = _rotate([[1234, 0, 8000, 9870]])
    assert stored.tolist() == [[9872, 0, 64000, 13425]]  # 9870 mm has high bits that rotate down
    metres, encoding = decode_sun_depth(stored)
    assert encoding == "rotated"
    np.testing.assert_array_equal(metres, np.float32([[1.234, 0, 8.0, 9.87]]))
    plain = np.array([[1234, 2501, 3003, 0]], dtype=np.uint16)  # low bits not clear: plain mm
    metres, encoding = decode_sun_depth(plain)
    assert encoding == "mm" and metres[0, 0] == np.float32(1.234)
    assert decode_sun_depth(plain, "reference")[0][0, 1] == np.float32(0.2501)
    with pytest.raises(DatasetError, match="expected one of auto, rotated, mm, reference"):
        decode_sun_depth(plain, "cm")


def _layout(root, native, depth_file=None, values=None):
    scene = root / "SUNRGBD/kv1/NYUdata/NYU0001"
    if depth_file is not None:
        (scene / "depth").mkdir(parents=True)
        shutil.copy(depth_file, scene / "depth" / "NYU0001.png")
        shape = (480, 640)
    else:
        native.png16(scene / "depth" / "NYU0001.png", values)
        shape = np.asarray(values).shape
    native.rgb(scene / "image" / "NYU0001.jpg", shape)
    native.text(scene / "intrinsics.txt", "518.857901 0 284.582449\n0 519.469611 208.736166\n0 0 1\n")
    native.text(root / "sunrgbd-meta-data" / "sunrgbd_testing_images.txt", "SUNRGBD/kv1/NYUdata/NYU0001/image/NYU0001.jpg\n")


def test_dataset_options_and_focal(tmp_path, native):
    _layout(tmp_path, native, values=_rotate([[1234, 2000]]))
    sample = open_dataset("sun", root=tmp_path, require_captions=False)[0]
    np.testing.assert_array_equal(sample.depth, np.float32([[1.234, 2.0]]))
    assert sample.focal_px == pytest.approx(518.857901) and sample.key == "SUNRGBD/kv1/NYUdata/NYU0001/image/NYU0001"
    assert sample.extras["depth_encoding"] == "rotated"  # the decoding chosen for this frame
    reference_set = open_dataset("sun", root=tmp_path, require_captions=False, depth_encoding="reference")
    reference = reference_set[0]
    np.testing.assert_allclose(reference.depth, [[0.9872, 1.6]], rtol=1e-6)  # 0.8× the truth
    assert reference.extras["depth_encoding"] == "reference" and reference_set.differences_from_reference() == []
    assert "divides by 10000" in open_dataset("sun", root=tmp_path, require_captions=False).differences_from_reference()[0]
    assert len(open_dataset("sun", root=tmp_path / "SUNRGBD", split_file=tmp_path / "sunrgbd-meta-data/sunrgbd_testing_images.txt", require_captions=False)) == 1
    with pytest.raises(DatasetError, match="no sunrgbd_testing_images.txt"):
        open_dataset("sun", root=tmp_path / "SUNRGBD")


def test_real_original_file_decodes_to_the_documented_range(shared_data, tmp_path, native):
    _layout(tmp_path, native, depth_file=shared_data / "realrgbd" / "sunrgbd" / "SUN_depth.png")
    sample = open_dataset("sunrgbd", root=tmp_path, require_captions=False)[0]
    values = sample.depth[sample.valid]
    # README: 1.06–9.87 m, median 2.72 m, 18.2 % invalid, 3.2 % of valid pixels beyond 8 m.
    assert values.min() == pytest.approx(1.06, abs=0.01) and values.max() == pytest.approx(9.87, abs=0.01)
    assert np.median(values) == pytest.approx(2.72, abs=0.01)
    assert 1 - sample.valid.mean() == pytest.approx(0.182, abs=0.005)
    assert (values > 8).mean() == pytest.approx(0.032, abs=0.002)
