"""Augmentation: image and depth flipped together, colour changes on the image only, every
draw from the per-sample generator."""

from __future__ import annotations

import torch

from tr2m_cli.train.augment import AugmentOptions, augment, colour_jittered, rotate_hue


def _sample(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(3, 6, 8, generator=g), 1 + torch.rand(6, 8, generator=g), torch.rand(6, 8, generator=g) > 0.2


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def test_flip_moves_image_depth_and_mask_together():
    image, depth, valid = _sample()
    out = augment(image, depth, valid, _gen(0), AugmentOptions(flip_probability=1.0, photometric_probability=0.0))
    assert out.flipped
    assert torch.equal(out.image, image.flip(-1))
    assert torch.equal(out.depth, depth.flip(-1)) and torch.equal(out.valid, valid.flip(-1))


def test_photometric_changes_only_the_image_and_stays_in_range():
    image, depth, valid = _sample()
    out = augment(image, depth, valid, _gen(1), AugmentOptions(flip_probability=0.0, photometric_probability=1.0))
    assert not out.flipped
    assert not torch.equal(out.image, image)
    assert out.image.min() >= 0 and out.image.max() <= 1
    assert torch.equal(out.depth, depth) and torch.equal(out.valid, valid)
    # Factors of at most ±10 % (gamma, brightness, colour) keep the picture close.
    assert (out.image - image).abs().max() < 0.45


def test_same_seed_same_augmentation_and_off_means_untouched():
    image, depth, valid = _sample()
    settings = AugmentOptions(flip_probability=0.5, photometric_probability=0.5)
    first = [augment(image, depth, valid, _gen(s), settings) for s in range(12)]
    again = [augment(image, depth, valid, _gen(s), settings) for s in range(12)]
    assert all(torch.equal(a.image, b.image) and a.flipped == b.flipped for a, b in zip(first, again))
    assert {a.flipped for a in first} == {True, False}
    off = augment(image, depth, valid, _gen(3), AugmentOptions.off())
    assert torch.equal(off.image, image) and not off.flipped
    assert not AugmentOptions(photometric_probability=0.0).changes_encoder_inputs
    assert AugmentOptions().changes_encoder_inputs


def test_colour_jitter_for_endoscopy_and_hue_rotation():
    image, _, _ = _sample(2)
    jittered = colour_jittered(image, _gen(0), AugmentOptions())
    assert jittered.shape == image.shape and not torch.equal(jittered, image)
    assert jittered.min() >= 0 and jittered.max() <= 1
    torch.testing.assert_close(rotate_hue(image, 1.0), image, atol=1e-5, rtol=0)  # a full turn
    grey = torch.full((3, 2, 2), 0.4)
    torch.testing.assert_close(rotate_hue(grey, 0.3), grey, atol=1e-5, rtol=0)  # no hue to turn
    red = torch.zeros(3, 1, 1)
    red[0] = 0.8
    turned = rotate_hue(red, 1 / 3)  # a third of a turn moves red towards green/blue
    assert turned[0, 0, 0] < 0.8 and (turned[1:] > 0.05).any()


def test_nyu_gets_the_release_s_wider_brightness_range():
    settings = AugmentOptions()
    assert settings.brightness_for("nyu") == (0.75, 1.25) and settings.brightness_for("kitti") == (0.9, 1.1)
    assert settings.jitter_hue == 0.1  # the release's C3VD ColorJitter hue
    image = torch.full((3, 2, 2), 0.5)
    only_brightness = AugmentOptions(flip_probability=0.0, photometric_probability=1.0, gamma=(1.0, 1.0), colour=(1.0, 1.0))
    factors = {
        name: [float(augment(image, image[0], image[0] > 0, _gen(s), only_brightness, dataset=name).image[0, 0, 0]) / 0.5 for s in range(200)]
        for name in ("nyu", "kitti")
    }
    assert min(factors["nyu"]) < 0.8 and max(factors["nyu"]) > 1.2 and min(factors["nyu"]) >= 0.75
    assert 0.9 <= min(factors["kitti"]) and max(factors["kitti"]) <= 1.1
    assert AugmentOptions.from_dict(settings.to_dict()) == settings  # JSON lists come back as tuples
