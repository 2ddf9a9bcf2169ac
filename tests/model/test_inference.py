"""The inference core: one decode policy, one answer per photo whichever path it takes.

Tolerances: network inputs are compared bit for bit. Depths of the same photo through different
paths are compared at rtol 1e-4: the network input is identical, but a photo computed in a batch
of another size goes through differently blocked matrix products (float32 rounding).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from tr2m_cli.data.base import DepthSample
from tr2m_cli.data.protocol import EvalProtocol
from tr2m_cli.errors import InputError
from tr2m_cli.io.images import read_rgb
from tr2m_cli.model.inference import (
    CaptionEmbeddings,
    DepthPredictor,
    DepthRequest,
    prepare_photo,
    reduction_factor,
)
from tr2m_cli.model.preprocess import SizePolicy

pytestmark = pytest.mark.usefixtures("single_thread")

DEPTH_RTOL = 1e-4


def reference_network_input(rgb: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """The authors' evaluation input, written out: float32 / 255, torchvision-style Normalize,
    then F.interpolate bilinear with align_corners=True (called even at the same size)."""
    image = torch.from_numpy((np.asarray(rgb, dtype=np.float32) / 255.0).transpose(2, 0, 1).copy())
    mean = torch.as_tensor([0.485, 0.456, 0.406], dtype=torch.float32)[:, None, None]
    std = torch.as_tensor([0.229, 0.224, 0.225], dtype=torch.float32)[:, None, None]
    image = image.sub_(mean).div_(std)
    return F.interpolate(image[None], size=size, mode="bilinear", align_corners=True)[0]


def textured(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A photo with detail at every scale (smooth shapes plus pixel noise)."""
    rng = np.random.default_rng(seed)
    smooth = Image.fromarray(rng.integers(30, 226, (6, 8, 3), dtype=np.uint8)).resize((width, height), Image.BICUBIC)
    tile = rng.integers(-12, 13, (min(height, 509), min(width, 509), 3), dtype=np.int16)  # tiled: fast at 12 MP
    noise = np.tile(tile, (-(-height // tile.shape[0]), -(-width // tile.shape[1]), 1))[:height, :width]
    return np.clip(np.asarray(smooth) + noise, 0, 255).astype(np.uint8)


# -- photo → network input ----------------------------------------------------------------------

REFERENCE_CASES = {
    "nyu 480x640": ((480, 640), SizePolicy.fixed(434, 560)),
    "twice the network size": ((868, 1120), SizePolicy.fixed(434, 560)),
    "kitti crop": ((352, 1216), SizePolicy.fixed(350, 1204)),
    "same size": ((434, 560), SizePolicy.fixed(434, 560)),
    "just under 4x": ((1735, 2239), SizePolicy.fixed(434, 560)),
    "aspect-keeping": ((300, 200), SizePolicy(token_budget=120)),
}


@pytest.mark.parametrize("size, policy", list(REFERENCE_CASES.values()), ids=list(REFERENCE_CASES))
def test_network_input_is_the_reference_evaluations_exactly(tmp_path, size, policy):
    from tr2m_cli.convert.decode import decode_photo
    from tr2m_cli.evaluate.run import _Prepared
    from tr2m_cli.io.captions import Caption
    from tr2m_cli.io.inputs import collect_images

    rgb = textured(*size)
    expected = reference_network_input(rgb, policy.network_size(*size))
    Image.fromarray(rgb).save(tmp_path / "photo.bmp")
    forms = {
        "path": tmp_path / "photo.bmp",
        "PIL image": Image.fromarray(rgb),
        "uint8 array": rgb,
        "uint8 tensor": torch.from_numpy(rgb).permute(2, 0, 1),
    }
    for form, image in forms.items():
        assert torch.equal(prepare_photo(image, policy).pixels, expected), form
    converted = decode_photo(collect_images([tmp_path / "photo.bmp"])[0], Caption("a", "option", "--caption"), policy)
    assert torch.equal(converted.photo.pixels, expected)
    sample = DepthSample(rgb, np.ones(size, np.float32), np.ones(size, bool), ["a"], "photo", "one")
    evaluated = _Prepared([sample], EvalProtocol(input_size=None), 0, policy)[0]
    assert torch.equal(evaluated["photo"].pixels, expected)


def test_photos_four_times_the_network_size_are_reduced_on_one_schedule(tmp_path):
    policy = SizePolicy.fixed(14, 28)
    rgb = textured(700, 1000)  # 17x the network size: a power of two (8), then a box average over 2
    assert reduction_factor(rgb.shape[:2], (14, 28)) == 17
    reduced = np.asarray(Image.fromarray(np.asarray(Image.fromarray(rgb).reduce(8))).reduce(2))
    assert reduced.shape == (44, 63, 3)
    expected = reference_network_input(reduced, (14, 28))
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    for image in (rgb, Image.fromarray(rgb), tmp_path / "photo.png", torch.from_numpy(rgb).permute(2, 0, 1)):
        photo = prepare_photo(image, policy)
        assert photo.size == (700, 1000) and torch.equal(photo.pixels, expected)
    # 16-bit and float photos take the same box averages without rounding to 8 bits.
    as_float = prepare_photo(rgb.astype(np.float32) / 255, policy).pixels
    assert (as_float - expected).abs().max() * 0.226 * 255 <= 1.01  # two 8-bit roundings at most
    # A JPEG is reduced by libjpeg while decoding (the power of two), then by the same box.
    Image.fromarray(rgb).save(tmp_path / "photo.jpg", quality=95)
    from_file = prepare_photo(tmp_path / "photo.jpg", policy, keep_rgb=True)
    from_array = prepare_photo(read_rgb(tmp_path / "photo.jpg"), policy, keep_rgb=True)
    assert from_file.rgb.shape == from_array.rgb.shape == (44, 63, 3)
    grey_levels = (from_file.pixels - from_array.pixels).abs() * 0.226 * 255
    assert grey_levels.mean() < 2.0  # the two downscalers agree to about a grey level


def test_unusable_images_are_named():
    policy = SizePolicy.fixed(14, 14)
    with pytest.raises(InputError, match="expected HxWx3"):
        prepare_photo(np.zeros((4, 4, 5), np.uint8), policy)
    with pytest.raises(InputError, match="empty"):
        prepare_photo(np.zeros((0, 4, 3), np.uint8), policy)
    with pytest.raises(InputError, match="missing.png: no such file"):
        prepare_photo("missing.png", policy)


# -- one answer per photo -----------------------------------------------------------------------


class OnePhoto(Sequence):
    """A dataset of one photo (what `evaluate_dataset` reads); its ground truth (all ones) is valid
    in one corner only, to keep the metrics quick at 12 MP."""

    name, title, kind, split, notes = "one", "One photo", "zero-shot", "test", []
    captions_source = SimpleNamespace(description="given", notice=None)

    def __init__(self, image: np.ndarray, caption: str, root) -> None:
        self.image, self.caption, self.root = image, caption, root
        self.protocol = EvalProtocol(min_depth=1e-6, max_depth=1e6, input_size=None)

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> DepthSample:
        size = self.image.shape[:2]
        valid = np.zeros(size, bool)
        valid[:8, :8] = True
        return DepthSample(self.image, np.ones(size, np.float32), valid, [self.caption], "photo", "one")


@pytest.mark.parametrize("size", [(60, 80), (3000, 4000)], ids=["small", "12 MP"])
def test_predict_predict_batch_convert_and_eval_give_one_answer(tmp_path, tiny_model, size):
    from tr2m_cli.convert import ConvertOptions, convert
    from tr2m_cli.evaluate import evaluate_dataset
    from tr2m_cli.io.captions import CaptionRules
    from tr2m_cli.io.depth_files import read_depth_tiff

    caption = "A kitchen with a table and two chairs."
    path = tmp_path / "photos" / "photo.bmp"  # uncompressed: quick to write at 12 MP
    path.parent.mkdir()
    Image.fromarray(textured(*size)).save(path)
    other = (size[0] // 10, size[1] // 10)  # the same aspect ratio, so the same network size: one batch
    Image.fromarray(textured(*other, seed=1)).save(tmp_path / "photos" / "other.png", compress_level=1)

    alone = tiny_model.predict(path, caption)
    assert alone.shape == size and alone.dtype == np.float32
    answers = {
        "predict (array)": tiny_model.predict(read_rgb(path), caption),
        "predict_batch": tiny_model.predict_batch([path, tmp_path / "photos" / "other.png"], [caption, "A street."], batch_size=2)[0],
    }
    options = ConvertOptions(outputs=("tiff",), progress=False, batch_size=2, captions=CaptionRules(caption=caption))
    summary = convert([tmp_path / "photos"], tmp_path / "out", options, model=tiny_model)
    assert summary.converted == 2
    answers["convert"], metadata = read_depth_tiff(tmp_path / "out" / "photo.depth.tiff")
    assert metadata["precision"] == "fp32"
    evaluate_dataset(tiny_model, OnePhoto(read_rgb(path), caption, tmp_path), progress=False, predictions_dir=tmp_path / "eval")
    answers["eval"] = np.load(tmp_path / "eval" / "photo.npy")
    for name, depth in answers.items():
        np.testing.assert_allclose(depth, alone, rtol=DEPTH_RTOL, err_msg=name)


def test_jpeg_files_and_their_decoded_pixels_agree_closely(tmp_path, tiny_model):
    """Above four times the network size a JPEG file is reduced by libjpeg and its decoded array
    by a box average: the same schedule, so depth stays close (measured on the tiny model, whose
    random weights exaggerate input differences)."""
    path = tmp_path / "big.jpg"
    Image.fromarray(textured(1500, 2000)).save(path, quality=92)
    from_file = tiny_model.predict(path, "a room", size=(70, 98))
    from_array = tiny_model.predict(read_rgb(path), "a room", size=(70, 98))
    assert np.median(np.abs(from_file - from_array) / from_array) < 0.01


# -- the core's own mechanics ------------------------------------------------------------------


def test_streams_batch_by_network_size_and_bound_the_waiting(tiny_model, monkeypatch):
    predictor = DepthPredictor(tiny_model, batch_size=2, size=120)
    shapes = [(48, 64), (64, 48), (30, 90), (48, 64), (90, 30), (64, 48), (30, 90), (120, 40)]
    batches = []
    real = DepthPredictor.run_batch
    monkeypatch.setattr(DepthPredictor, "run_batch", lambda self, rs: batches.append([r.tag for r in rs]) or real(self, rs))
    requests = (DepthRequest(predictor.prepare(textured(*s, seed=i)), "a room", tag=i) for i, s in enumerate(shapes))
    results = list(predictor.stream(requests, max_waiting=3))
    assert sorted(r.request.tag for r in results) == list(range(len(shapes)))
    for batch in batches:
        assert len(batch) <= 2 and len({predictor.policy.network_size(*shapes[i]) for i in batch}) == 1
    assert [0, 3] in batches  # equal sizes wait for each other
    for result in results:
        assert result.depth.shape == shapes[result.request.tag]


def test_caption_embeddings_are_cached_and_bounded(tiny_model, monkeypatch):
    calls = []
    real = tiny_model.encode_text
    monkeypatch.setattr(tiny_model, "encode_text", lambda captions: calls.append(list(captions)) or real(captions))
    cache = CaptionEmbeddings(tiny_model, max_size=2)
    first = cache(["a", "b", "a"])
    again = cache(["b", "a"])
    assert calls == [["a", "b"]] and len(cache) == 2
    torch.testing.assert_close(first[0], again[1])
    cache(["c"])  # "b" is now the least recently used and goes
    cache(["b"])
    assert calls[-1] == ["b"] and len(cache) == 2


def test_out_of_memory_halves_the_batch(tiny_model, monkeypatch):
    predictor = DepthPredictor(tiny_model, batch_size=4, size=(42, 56))
    real = DepthPredictor._forward

    def forward(self, requests):
        if len(requests) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, requests)

    monkeypatch.setattr(DepthPredictor, "_forward", forward)
    requests = [DepthRequest(predictor.prepare(textured(42, 56, seed=i)), "a room", tag=i) for i in range(4)]
    results = predictor.run_batch(requests)
    assert all(r.error is None for r in results) and predictor.batch_size == 1
    assert predictor.out_of_memory_events == 3  # 4 → 2 + 2 → 1 + 1 + 1 + 1


def test_output_size_units_and_maps(tiny_model_dir):
    import json
    import shutil

    from tr2m_cli import load_model

    folder = shutil.copytree(tiny_model_dir, tiny_model_dir.parent / "mm-model", dirs_exist_ok=True)
    config = json.loads((folder / "tr2m.json").read_text())
    config["domain_units"] = {"surgical": "millimetres"}
    (folder / "tr2m.json").write_text(json.dumps(config))
    model = load_model(folder, device="cpu", precision="fp32")
    photo = prepare_photo(textured(60, 80), SizePolicy.fixed(42, 56))
    metres = DepthPredictor(model, return_maps=True).run_batch([DepthRequest(photo, "a colon", output_size=(30, 40))])[0]
    millis = DepthPredictor(model, return_maps=True, domain="surgical").run_batch([DepthRequest(photo, "a colon")])[0]
    assert metres.depth.shape == metres.prediction.scale_map.shape == (30, 40)
    assert millis.depth.shape == (60, 80)
    # Scale and shift maps are given for metres: depth = 1 / (A·D + B) holds in either unit.
    p = millis.prediction
    np.testing.assert_allclose(p.depth, 1 / (p.scale_map * p.relative_depth + p.shift_map), rtol=0.05)
    np.testing.assert_allclose(np.median(p.depth), np.median(DepthPredictor(model).run_batch(
        [DepthRequest(photo, "a colon")])[0].depth) / 1000, rtol=1e-5)  # fmt: skip


def test_an_adjust_hook_sees_each_batch_at_network_size_before_the_resize(tiny_model):
    """A clip's smoothing hooks in here: it gets the network-size output in the order batches
    run and what it returns is what is resized and converted to metres."""
    seen = []

    def halve_scale(requests, out):
        seen.append(([r.tag for r in requests], tuple(out.metric_depth.shape)))
        out.scale_map = out.scale_map * 0.5
        out.metric_depth = 1.0 / (out.scale_map * out.relative_depth + out.shift_map)
        return out

    plain = DepthPredictor(tiny_model, batch_size=2, size=(42, 56))
    hooked = DepthPredictor(tiny_model, batch_size=2, size=(42, 56), adjust=halve_scale)
    requests = [DepthRequest(plain.prepare(textured(48, 64, seed=i)), "a room", tag=i) for i in range(3)]
    before = {r.request.tag: r.depth for r in plain.stream(iter(requests))}
    after = {r.request.tag: r.depth for r in hooked.stream(iter(requests))}
    assert seen == [([0, 1], (2, 42, 56)), ([2], (1, 42, 56))]
    for tag in range(3):
        assert after[tag].shape == (48, 64) and np.all(after[tag] > before[tag])  # less scale: farther
    with pytest.raises(InputError):
        DepthPredictor(tiny_model, flip_tta=True, adjust=halve_scale)
