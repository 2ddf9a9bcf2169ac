"""Every dataset, through open_dataset, on a tiny copy in its native layout: exact metres back."""

from __future__ import annotations

import numpy as np
import pytest

from tr2m_cli.data import DATASET_NAMES, DepthSample, open_dataset
from tr2m_cli.data.protocol import EvalProtocol
from tr2m_cli.errors import DatasetError


@pytest.mark.parametrize("name", DATASET_NAMES)
def test_native_copy_reads_back_to_the_metres_it_encodes(tiny_data_root, name):
    root, written = tiny_data_root
    tiny = written[name]
    dataset = open_dataset(name, data_root=root, captions=root / "captions")
    assert dataset.name == name and dataset.split == "test" and dataset.root == tiny.root
    assert isinstance(dataset.protocol, EvalProtocol) and dataset.protocol.name == name
    assert dataset.keys() == tiny.keys and len(dataset) == len(tiny.keys)
    for sample in dataset:
        assert isinstance(sample, DepthSample) and sample.dataset == name
        assert sample.image.dtype == np.uint8 and sample.image.shape[:2] == sample.depth.shape
        assert sample.depth.dtype == np.float32
        np.testing.assert_array_equal(sample.valid, tiny.valid[sample.key])
        np.testing.assert_allclose(sample.depth, tiny.depth[sample.key], rtol=1e-6, atol=0)
        assert (sample.depth[~sample.valid] == 0).all() and (sample.depth[sample.valid] > 0).all()
        assert sample.captions and all(isinstance(c, str) and c for c in sample.captions)
        if tiny.captions:
            assert sample.captions[0] == tiny.captions[sample.key][0]


@pytest.mark.parametrize("name", ["nyu", "hypersim"])
def test_opening_reads_no_pixels_and_a_missing_file_names_itself(tiny_data_root, tmp_path, name):
    import shutil

    root, written = tiny_data_root
    copy = tmp_path / name
    shutil.copytree(written[name].root, copy)
    dataset = open_dataset(name, root=copy, captions=root / "captions")
    depth_file = dataset.entries[1].depth
    depth_file.unlink()  # opened already: only reading that sample may fail
    dataset[0]
    with pytest.raises(DatasetError, match=str(depth_file.name)):
        dataset[1]


def test_select_and_slices_are_views_in_the_same_order(tiny_data_root):
    root, _ = tiny_data_root
    dataset = open_dataset("nyu", data_root=root, captions=root / "captions")
    view = dataset.select([1])
    assert len(view) == 1 and view[0].key == dataset[1].key and len(dataset) == 2
    assert [s.key for s in dataset[::-1]] == dataset.keys()[::-1]
    assert view.protocol is dataset.protocol


def test_zero_shot_sets_have_no_training_split(tiny_data_root):
    root, _ = tiny_data_root
    with pytest.raises(DatasetError, match="zero-shot evaluation set: it has only a 'test' split"):
        open_dataset("sun", "train", data_root=root)
    with pytest.raises(DatasetError, match="unknown split 'val'"):
        open_dataset("nyu", "val", data_root=root)


def test_unknown_options_and_names_are_one_line_errors(tiny_data_root):
    root, _ = tiny_data_root
    with pytest.raises(DatasetError, match="unknown dataset 'nyu3'.*known: nyu, kitti"):
        open_dataset("nyu3", data_root=root)
    with pytest.raises(DatasetError, match="nyu: .*unexpected keyword argument 'depth_encoding'"):
        open_dataset("nyu", data_root=root, captions=root / "captions", depth_encoding="mm")


@pytest.fixture(scope="module")
def tiny_training_root(tmp_path_factory):
    from tr2m_cli.data.fixtures import TRAINABLE, write_tiny_training_data

    root = tmp_path_factory.mktemp("tiny-train")
    sizes = {name: (60, 80) for name in TRAINABLE}
    sizes["nyu"] = (480, 640)  # NYU training frames lose a fixed border: keep the native size
    return root, write_tiny_training_data(root, frames=2, sizes=sizes)


@pytest.mark.parametrize("name", ["nyu", "kitti", "void", "c3vd"])
def test_training_splits_read_back_to_their_metres(tiny_training_root, name):
    root, written = tiny_training_root
    tiny = written[name]
    dataset = open_dataset(name, "train", data_root=root, captions=root / "captions")
    assert dataset.split == "train" and dataset.keys() == tiny.keys
    for sample in dataset:
        np.testing.assert_array_equal(sample.valid, tiny.valid[sample.key])
        np.testing.assert_allclose(sample.depth, tiny.depth[sample.key], rtol=1e-6, atol=0)
        if tiny.captions:
            assert sample.captions == tiny.captions[sample.key]
    if name == "nyu":  # the registration border of training frames is never supervised
        assert not dataset[0].valid[:45].any() and dataset[0].valid[45:472, 43:608].any()
