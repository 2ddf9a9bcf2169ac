"""The assembled model on tiny encoders: the transfer formula, gradients, and the predict API."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tr2m_cli.errors import InputError, WeightsError
from tr2m_cli.model.config import ModelSpec
from tr2m_cli.model.inference import prepare_image
from tr2m_cli.model.preprocess import SizePolicy
from tr2m_cli.model.tr2m import TR2M


def _photo(h=60, w=80, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_forward_is_the_tr2m_transfer(tiny_model):
    pixels, _ = prepare_image(_photo(), SizePolicy.fixed(56, 70))
    text = tiny_model.encode_text(["A kitchen with a table and two chairs."])
    with torch.no_grad():
        out = tiny_model(pixels, text)
    assert out.metric_depth.shape == out.scale_map.shape == out.relative_depth.shape == (1, 56, 70)
    assert torch.isfinite(out.metric_depth).all() and (out.metric_depth > 0).all()
    assert (out.scale_map > 0).all() and (out.shift_map > 0).all()
    by_hand = 1.0 / (out.scale_map * out.relative_depth + out.shift_map)
    torch.testing.assert_close(out.metric_depth, by_hand)
    assert out.relative_depth.std() > 0  # the tiny depth model gives a varied D_r


def test_caption_changes_the_maps(tiny_model):
    pixels, _ = prepare_image(_photo(), SizePolicy.fixed(56, 70))
    with torch.no_grad():
        a = tiny_model(pixels, tiny_model.encode_text(["an indoor office"])).scale_map
        b = tiny_model(pixels, tiny_model.encode_text(["a mountain road at dusk"])).scale_map
    assert not torch.allclose(a, b)


def test_only_the_head_gets_gradients(tiny_model):
    pixels, _ = prepare_image(_photo(), SizePolicy.fixed(42, 56))
    tiny_model.train()
    try:
        out = tiny_model(pixels, tiny_model.encode_text(["a room"]))
        out.metric_depth.log().mean().backward()
        for encoder in (tiny_model.image_encoder, tiny_model.text_encoder, tiny_model.depth_model):
            assert not encoder.training
            assert all(p.grad is None and not p.requires_grad for p in encoder.parameters())
        grads = [p.grad for p in tiny_model.head.parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads)
    finally:
        tiny_model.zero_grad(set_to_none=True)
        tiny_model.eval()


def test_inference_builds_no_graph(tiny_model):
    pixels, _ = prepare_image(_photo(), SizePolicy.fixed(42, 56))
    tokens, _ = tiny_model.encode_image(pixels)
    assert not tokens.requires_grad  # frozen encoders never record a graph
    with torch.inference_mode():
        out = tiny_model(pixels, tiny_model.encode_text(["a room"]))
    assert not out.metric_depth.requires_grad


def test_predict_returns_metres_at_original_size(tiny_model, tmp_path):
    photo = _photo(45, 97)
    depth = tiny_model.predict(photo, "A living room with a sofa.")
    assert depth.shape == (45, 97) and depth.dtype == np.float32
    assert np.isfinite(depth).all() and (depth > 0).all()
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    for same in (path, str(path), Image.fromarray(photo), torch.from_numpy(photo).permute(2, 0, 1)):
        np.testing.assert_allclose(tiny_model.predict(same, "A living room with a sofa."), depth, rtol=1e-5)


def test_predict_maps(tiny_model):
    result = tiny_model.predict(_photo(), "a desk", size=(42, 56), return_maps=True)
    assert result.depth.shape == result.scale_map.shape == result.relative_depth.shape == (60, 80)
    np.testing.assert_allclose(
        result.depth, 1 / (result.scale_map * result.relative_depth + result.shift_map), rtol=0.05
    )


def test_batches_of_mixed_sizes_match_one_by_one(tiny_model):
    photos = [_photo(60, 80, 1), _photo(80, 60, 2), _photo(61, 79, 3), _photo(120, 160, 4)]
    captions = ["a kitchen", "a corridor", "a kitchen", "a street"]
    batched = tiny_model.predict_batch(photos, captions, batch_size=3)
    for photo, caption, depth in zip(photos, captions, batched):
        assert depth.shape == photo.shape[:2]
        np.testing.assert_allclose(depth, tiny_model.predict(photo, caption), rtol=1e-4, atol=1e-5)


def test_repeated_captions_are_encoded_once(tiny_model):
    calls = []
    original = tiny_model.text_encoder.forward
    tiny_model.text_encoder.forward = lambda captions: calls.append(list(captions)) or original(captions)
    try:
        embeds = tiny_model.encode_text(["a", "b", "a", "a"])
    finally:
        del tiny_model.text_encoder.forward
    assert calls == [["a", "b"]]
    torch.testing.assert_close(embeds[0], embeds[2])
    assert not torch.allclose(embeds[0], embeds[1])


def test_domain_units_convert_to_metres(tiny_model):
    spec = tiny_model.spec
    photo = _photo()
    metres = tiny_model.predict(photo, "a colon")
    tiny_model.spec = ModelSpec(name="mm", head=spec.head, domain_units={"surgical": "millimetres"})
    try:
        np.testing.assert_allclose(tiny_model.predict(photo, "a colon", domain="surgical"), metres * 0.001, rtol=1e-6)
        np.testing.assert_allclose(tiny_model.predict(photo, "a colon", domain="indoor"), metres, rtol=1e-6)
    finally:
        tiny_model.spec = spec


def test_argument_errors(tiny_model):
    with pytest.raises(InputError, match="2 images but 1 captions"):
        tiny_model.predict_batch([_photo(), _photo()], ["a"])
    with pytest.raises(InputError, match="not one string"):
        tiny_model.predict_batch([_photo()], "a")


def test_encoder_and_head_widths_must_match(tiny_model):
    from tr2m_cli.model.head import ScaleShiftHead
    from tr2m_cli.testing import tiny_head_config

    with pytest.raises(WeightsError, match="image encoder gives 32-channel features but the head expects 64"):
        TR2M(
            tiny_model.image_encoder,
            tiny_model.text_encoder,
            tiny_model.depth_model,
            ScaleShiftHead(tiny_head_config(image_channels=64)),
        )


def test_half_precision_runs_and_stays_close(tiny_model_dir):
    from tr2m_cli import load_model

    full = load_model(tiny_model_dir, device="cpu", precision="fp32")
    half = load_model(tiny_model_dir, device="cpu", precision="bf16")
    assert next(half.image_encoder.parameters()).dtype == torch.bfloat16
    assert next(half.head.parameters()).dtype == torch.float32  # trainable weights stay float32
    photo = _photo()
    a, b = full.predict(photo, "a room"), half.predict(photo, "a room")
    assert b.dtype == np.float32 and np.isfinite(b).all()
    assert np.median(np.abs(a - b) / a) < 0.05
