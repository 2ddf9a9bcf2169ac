"""Network input sizes and normalisation (spec §2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tr2m_cli.errors import InputError
from tr2m_cli.model.config import IMAGENET_MEAN, IMAGENET_STD
from tr2m_cli.model.inference import prepare_image
from tr2m_cli.model.preprocess import SizePolicy, normalize_and_resize, resize_to, to_float_tensor


@pytest.mark.parametrize("size", [(480, 640), (375, 1242), (3000, 4000), (1080, 1920), (100, 2000), (8, 8)])
def test_token_budget_keeps_aspect_ratio(size):
    h, w = SizePolicy(token_budget=1240).network_size(*size)
    assert h % 14 == 0 and w % 14 == 0 and h >= 14 and w >= 14
    rows, cols = h // 14, w // 14
    # Each side is the nearest whole number of patches to the exact aspect-keeping size.
    exact = (1240 * size[0] / size[1]) ** 0.5
    assert abs(rows - exact) <= 0.5 + 1e-9 or rows == 1
    assert abs(rows * cols - 1240) / 1240 < 0.1 or min(rows, cols) == 1


def test_fixed_size_is_used_as_is_and_validated():
    assert SizePolicy.fixed(434, 560).network_size(480, 640) == (434, 560)
    assert SizePolicy.fixed(434, 560).network_size(100, 3000) == (434, 560)
    with pytest.raises(InputError, match="multiples of 14"):
        SizePolicy.fixed(480, 640)


def test_normalisation_and_align_corners_resize():
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    flat = mean.expand(1, 3, 20, 30).clone()
    assert normalize_and_resize(flat, (28, 42)).abs().max() < 1e-6
    ramp = torch.linspace(0, 1, 30).view(1, 1, 1, 30).expand(1, 3, 20, 30)
    out = normalize_and_resize(ramp, (14, 56))
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    # align_corners=True keeps both ends exactly: the first and last columns map to 0 and 1.
    torch.testing.assert_close(out[..., 0], ((0 - mean) / std)[..., 0].expand(1, 3, 14))
    torch.testing.assert_close(out[..., -1], ((1 - mean) / std)[..., 0].expand(1, 3, 14))


def test_image_types_agree():
    from PIL import Image

    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    as_array = to_float_tensor(array)
    assert as_array.shape == (3, 30, 40) and as_array.max() <= 1
    torch.testing.assert_close(to_float_tensor(Image.fromarray(array)), as_array)
    torch.testing.assert_close(to_float_tensor(array.astype(np.float32) / 255), as_array)
    torch.testing.assert_close(to_float_tensor(torch.from_numpy(array).permute(2, 0, 1)), as_array)
    torch.testing.assert_close(to_float_tensor(array.astype(np.uint16) * 257), as_array)
    grey = to_float_tensor(array[:, :, 0])
    assert grey.shape == (3, 30, 40) and torch.equal(grey[0], grey[2])
    rgba = np.dstack([array, np.full((30, 40), 7, np.uint8)])
    torch.testing.assert_close(to_float_tensor(rgba), as_array)


def test_bad_arrays_are_input_errors():
    with pytest.raises(InputError, match="expected HxWx3"):
        to_float_tensor(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(InputError, match="dtype"):
        to_float_tensor(np.zeros((4, 4, 3), np.int64))
    with pytest.raises(InputError, match=r"\[3, H, W\]"):
        to_float_tensor(torch.zeros(4, 4, 3))


def test_prepare_image_and_resize_back():
    pixels, original = prepare_image(np.zeros((50, 70, 3), np.uint8), SizePolicy(token_budget=12))
    assert original == (50, 70)
    assert pixels.shape[:2] == (1, 3) and pixels.shape[2] % 14 == 0 and pixels.shape[3] % 14 == 0
    maps = torch.arange(6.0).view(1, 2, 3)
    back = resize_to(maps, (3, 5))
    assert back.shape == (1, 3, 5)
    assert back[0, 0, 0] == 0 and back[0, -1, -1] == 5  # corners kept (align_corners=True)
