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


# -- the prediction API: cameras, points, and input it refuses instead of guessing ----------------


def test_predictions_carry_their_camera_colours_and_points(tiny_model, tmp_path):
    from tr2m_cli.io.intrinsics import Intrinsics
    from tr2m_cli.io.pointcloud import PointCloudOptions, make_point_cloud

    photo = _photo(45, 60)
    result = tiny_model.predict(photo, "A room.", size=(42, 56), return_maps=True)
    assert result.intrinsics.source == "default" and result.intrinsics.horizontal_fov_deg == pytest.approx(60.0)
    assert (result.intrinsics.width, result.intrinsics.height) == (60, 45) and (result.image == photo).all()
    xyz, rgb = result.points(colors=True)
    expected, expected_rgb = make_point_cloud(result.depth, photo, result.intrinsics, PointCloudOptions())
    assert np.array_equal(xyz, expected) and np.array_equal(rgb, expected_rgb)
    assert result.points(options=PointCloudOptions(stride=3)).shape[0] <= 15 * 20
    # A K matrix for this photo, or one for the 120×90 original (rescaled: same aspect ratio).
    K = [[50.0, 0, 29.5], [0, 50.0, 22.0], [0, 0, 1]]
    assert tiny_model.predict(photo, "A room.", size=(42, 56), return_maps=True, intrinsics=K).intrinsics.fx == 50.0
    original = Intrinsics(100.0, 100.0, 59.5, 44.5, 120, 90, "calibration")
    half = tiny_model.predict(photo, "A room.", size=(42, 56), return_maps=True, intrinsics=original).intrinsics
    assert (half.fx, half.cx, half.cy) == (50.0, 29.5, 22.0)
    # A file's EXIF focal length is used, as convert uses it.
    image = Image.fromarray(photo)
    exif = image.getexif()
    exif[0x8769] = {0xA405: 26}
    image.save(tmp_path / "phone.jpg", exif=exif)
    assert tiny_model.predict(tmp_path / "phone.jpg", "A room.", size=(42, 56), return_maps=True).intrinsics.source == "exif"


def test_the_save_helpers_write_a_prediction(tiny_model, tmp_path, open3d):
    import tr2m_cli

    photo = _photo(30, 40)
    result = tiny_model.predict(photo, "A room.", size=(28, 42), return_maps=True)
    count = tr2m_cli.save_ply(tmp_path / "a.ply", result)
    cloud = open3d.io.read_point_cloud(str(tmp_path / "a.ply"))
    xyz, rgb = result.points(colors=True)
    assert count == len(xyz) == len(cloud.points) and np.allclose(np.asarray(cloud.colors) * 255, rgb, atol=1e-3)
    tr2m_cli.save_mesh(tmp_path / "a.glb", result)
    tr2m_cli.save_depth_tiff(tmp_path / "a.tiff", result)
    from tr2m_cli.io.depth_files import read_depth_tiff

    depth, metadata = read_depth_tiff(tmp_path / "a.tiff")
    assert np.array_equal(depth, result.depth) and metadata["intrinsics"]["source"] == "default"


def test_float_photos_must_be_in_zero_to_one(tiny_model):
    photo = _photo(30, 40)
    as_uint8 = tiny_model.predict(photo, "A room.", size=(28, 42))
    as_unit = tiny_model.predict(photo / 255.0, "A room.", size=(28, 42))
    np.testing.assert_allclose(as_unit, as_uint8, rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match=r"floats in \[0, 2\d\d\]: float photos must be in \[0, 1\] \(it looks like 0–255"):
        tiny_model.predict(photo.astype(np.float32), "A room.", size=(28, 42))
    with pytest.raises(InputError, match="NaN"):
        tiny_model.predict(np.full((30, 40, 3), np.nan, np.float32), "A room.", size=(28, 42))
    with pytest.raises(InputError, match=r"image tensor of floats"):
        tiny_model.predict(torch.from_numpy(photo).permute(2, 0, 1).float(), "A room.", size=(28, 42))


def test_pil_arrays_batches_of_tensors_and_what_is_refused(tiny_model):
    import warnings

    photo = _photo(30, 40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # np.asarray(pil) is read-only: no "not writable" warning
        from_pil = tiny_model.predict(np.asarray(Image.fromarray(photo)), "A room.", size=(28, 42))
    np.testing.assert_allclose(from_pil, tiny_model.predict(photo, "A room.", size=(28, 42)), rtol=1e-6)
    batch = torch.from_numpy(np.stack([photo, _photo(30, 40, seed=1)])).permute(0, 3, 1, 2).float() / 255
    depths = tiny_model.predict(batch, "A room.", size=(28, 42))
    assert isinstance(depths, list) and len(depths) == 2
    np.testing.assert_allclose(depths[1], tiny_model.predict(batch[1], "A room.", size=(28, 42)), rtol=1e-5, atol=1e-6)
    assert tiny_model.predict(batch[:1], "A room.", size=(28, 42)).shape == (30, 40)  # [1, 3, H, W]: one photo
    with pytest.raises(InputError, match="domain 'undersea'"):
        tiny_model.predict(photo, "A room.", domain="undersea")
    with pytest.raises(InputError, match="caption of type list"):
        tiny_model.predict(photo, ["A room."])
    with pytest.raises(InputError, match="caption of type NoneType"):
        tiny_model.predict_batch([photo, photo], ["A room.", None])
