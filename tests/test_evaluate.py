"""evaluate_dataset: the protocol's plumbing checked with stand-in models whose answers are known,
then the tiny TR2M end to end."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from tr2m_cli.data import DATASET_NAMES, open_dataset
from tr2m_cli.data.protocol import PRESETS, crop_mask, kb_window
from tr2m_cli.evaluate import evaluate_dataset
from tr2m_cli.evaluate.run import nearest_resize
from tr2m_cli.metrics import compute_metrics, evaluation_mask
from tr2m_cli.model.config import ModelSpec
from tr2m_cli.model.preprocess import SizePolicy


pytestmark = pytest.mark.usefixtures("single_thread")


class StandIn(nn.Module):
    """Answers `depth(pixels)` at the network size; records what it was given."""

    def __init__(self, depth=lambda pixels: torch.full((pixels.shape[0], *pixels.shape[-2:]), 3.0), domain_units=None):
        super().__init__()
        self.head = nn.Linear(1, 1)
        self.depth = depth
        self.spec = ModelSpec(name="stand-in", domain_units=domain_units or {})
        self.size_policy = SizePolicy()
        self.calls: list[tuple[tuple[int, ...], list[str]]] = []
        self.captions: list[str] = []

    @property
    def device(self):
        return torch.device("cpu")

    def encode_text(self, captions):
        self.captions.extend(captions)
        return torch.zeros(len(captions), 4)

    def forward(self, pixels, text):
        self.calls.append((tuple(pixels.shape), text.shape[0]))
        return SimpleNamespace(metric_depth=self.depth(pixels))


def _expected(dataset, value, protocol=None):
    """Metrics of a constant prediction, computed straight from the ground truth."""
    protocol = protocol or dataset.protocol
    rows = []
    for sample in dataset:
        depth, valid = sample.depth, sample.valid
        if protocol.input_crop == "kb":
            window = kb_window(depth.shape)
            depth, valid = depth[window], valid[window]
        if protocol.depth_resize:
            depth, valid = nearest_resize(depth, protocol.depth_resize), nearest_resize(valid, protocol.depth_resize)
        mask = evaluation_mask(depth, protocol.min_depth, protocol.max_depth, crop_mask(depth.shape, protocol.crop), valid)
        pred = np.clip(np.full(mask.sum(), value), protocol.min_depth, protocol.max_depth)
        rows.append((compute_metrics(depth[mask], pred), int(mask.sum())))
    return rows


@pytest.mark.parametrize("name", DATASET_NAMES)
def test_presets_reach_the_network_and_the_metrics(tiny_data_root, name):
    root, _ = tiny_data_root
    dataset = open_dataset(name, data_root=root, captions=root / "captions")
    model = StandIn(domain_units={"surgical": "millimetres"})
    value = 3.0 if dataset.domain != "surgical" else 40.0  # 40 "mm" on the surgical sets
    model.depth = lambda pixels: torch.full((pixels.shape[0], *pixels.shape[-2:]), value)
    result = evaluate_dataset(model, dataset, progress=False, batch_size=2)
    h, w = PRESETS[name].input_size
    assert [shape for shape, _ in model.calls] == [(2, 3, h, w)]
    metres = value * (1e-3 if dataset.domain == "surgical" else 1.0)
    for row, (expected, pixels) in zip(result.rows, _expected(dataset, metres)):
        assert row.valid_pixels == pixels > 0
        for metric, number in expected.items():
            assert row.metrics[metric] == pytest.approx(number, rel=1e-6), metric  # float32 predictions
    assert result.means["abs_rel"] == pytest.approx(np.mean([r.metrics["abs_rel"] for r in result.rows]))
    assert result.total == 2 and result.evaluated == 2 and not result.nonfinite


def test_kitti_crops_before_the_network_and_compares_on_the_cropped_ground_truth(tiny_data_root, tmp_path):
    root, _ = tiny_data_root
    dataset = open_dataset("kitti", data_root=root, captions=root / "captions")
    model = StandIn()
    evaluate_dataset(model, dataset, progress=False, limit=1, predictions_dir=tmp_path)
    saved = np.load(tmp_path / f"{dataset.keys()[0]}.npy")
    assert saved.shape == (352, 1216) and saved.dtype == np.float32 and np.allclose(saved, 3.0)


def test_kitti_on_the_full_ground_truth_pastes_the_prediction_into_the_window(tiny_data_root, tmp_path):
    root, _ = tiny_data_root
    dataset = open_dataset("kitti", data_root=root, captions=root / "captions")
    protocol = dataset.protocol.replace(crop_ground_truth=False)
    result = evaluate_dataset(StandIn(), dataset, protocol=protocol, progress=False, limit=1, predictions_dir=tmp_path)
    saved = np.load(tmp_path / f"{dataset.keys()[0]}.npy")
    assert saved.shape == (375, 1242) and np.isnan(saved[:23]).all() and np.isnan(saved[:, :13]).all()
    assert np.allclose(saved[23:, 13:1229], 3.0) and result.rows[0].nonfinite_prediction_pixels == 0
    # Garg on the full frame: rows 153:371, cols 44:1197, all inside the window.
    sample = dataset[0]
    mask = evaluation_mask(sample.depth, 1e-3, 80, crop_mask(sample.depth.shape, "garg"), sample.valid)
    expected = compute_metrics(sample.depth[mask], np.full(mask.sum(), 3.0))
    assert result.rows[0].valid_pixels == mask.sum()
    assert result.rows[0].metrics == pytest.approx(expected, rel=1e-9)


def test_overrides_batches_captions_and_limit(tiny_data_root):
    root, _ = tiny_data_root
    dataset = open_dataset("nyu", data_root=root, captions=root / "captions")
    model = StandIn()
    protocol = dataset.protocol.replace(input_size=(28, 42), crop="none", max_depth=5.0)
    result = evaluate_dataset(model, dataset, protocol=protocol, batch_size=1, progress=False)
    assert [shape for shape, _ in model.calls] == [(1, 3, 28, 42)] * 2
    assert model.captions == [dataset[0].captions[0], dataset[1].captions[0]]  # line 0
    assert [row.metrics for row in result.rows] == [m for m, _ in _expected(dataset, 3.0, protocol)]
    model = StandIn()
    result = evaluate_dataset(model, dataset, progress=False, limit=1, caption_line=1)
    assert len(result.rows) == 1 and result.total == 2 and model.captions == [dataset[0].captions[1]]
    aspect = StandIn()
    evaluate_dataset(aspect, dataset, protocol=dataset.protocol.replace(input_size="none"), progress=False)
    assert aspect.calls[0][0][-2:] == SizePolicy().network_size(480, 640)


def test_background_workers_give_the_same_rows(tiny_data_root):
    root, _ = tiny_data_root
    dataset = open_dataset("c3vd", data_root=root, captions=root / "captions")  # derived captions must pickle
    inline = evaluate_dataset(StandIn(), dataset, progress=False)
    workers = evaluate_dataset(StandIn(), dataset, progress=False, num_workers=1)
    assert [(r.key, r.caption, r.metrics) for r in workers.rows] == [(r.key, r.caption, r.metrics) for r in inline.rows]


def test_flip_tta_averages_the_mirrored_prediction(tiny_data_root, tmp_path):
    root, _ = tiny_data_root
    dataset = open_dataset("ibims", data_root=root, captions=root / "captions")

    def ramp(pixels):  # depth grows left to right, plus the photo's mean brightness
        cols = torch.linspace(1.0, 3.0, pixels.shape[-1])
        return cols.expand(pixels.shape[0], pixels.shape[-2], -1).clone()

    model = StandIn(depth=ramp)
    evaluate_dataset(model, dataset, progress=False, limit=1, flip_tta=True, predictions_dir=tmp_path)
    assert len(model.calls) == 2  # the photo and its mirror image
    np.testing.assert_allclose(np.load(tmp_path / f"{dataset.keys()[0]}.npy"), 2.0, rtol=1e-6)


def test_problems_are_reported_not_dropped(tiny_data_root, tmp_path):
    root, _ = tiny_data_root
    dataset = open_dataset("nyu", data_root=root, captions=root / "captions")

    def holes(pixels):
        depth = torch.full((pixels.shape[0], *pixels.shape[-2:]), 3.0)
        depth[:, :4, :4] = float("nan")
        return depth

    result = evaluate_dataset(StandIn(depth=holes), dataset, progress=False)
    assert all(row.nonfinite_prediction_pixels > 0 for row in result.rows)
    assert len(result.nonfinite) == 2 and "non-finite prediction pixels" in result.nonfinite[0].problem
    assert result.evaluated == 2  # still scored, with NaN clamped as the protocol says
    empty = evaluate_dataset(StandIn(), dataset, protocol=dataset.protocol.replace(min_depth=50.0, max_depth=60.0), progress=False)
    assert empty.evaluated == 0 and all(math.isnan(v) for v in empty.means.values())
    assert [row.problem for row in empty.nonfinite] == ["no ground-truth pixels inside the range and crop"] * 2
    from tr2m_cli.evaluate.report import results_document, write_results_json

    path = write_results_json(tmp_path / "results.json", results_document([empty], model={}, runtime={}))
    document = json.loads(path.read_text())  # strict JSON: NaN written as null
    assert document["datasets"]["nyu"]["means"]["abs_rel"] is None
    assert document["datasets"]["nyu"]["flagged_images"][0]["key"] == dataset.keys()[0]


def test_tiny_tr2m_end_to_end_restores_modes_and_writes_outputs(tiny_model, tiny_data_root, tmp_path):
    root, _ = tiny_data_root
    dataset = open_dataset("diode", data_root=root, captions=root / "captions")
    protocol = dataset.protocol.replace(input_size=(56, 70))
    tiny_model.head.train()
    try:
        result = evaluate_dataset(
            tiny_model, dataset, protocol=protocol, progress=False, predictions_dir=tmp_path / "pred", previews_dir=tmp_path / "prev",
        )
        assert tiny_model.head.training and not tiny_model.image_encoder.training
    finally:
        tiny_model.head.eval()
    assert result.evaluated == 2 and all(math.isfinite(v) for v in result.means.values())
    for key in dataset.keys():
        prediction = np.load(tmp_path / "pred" / f"{key}.npy")
        assert prediction.shape == (768, 1024) and prediction.dtype == np.float32 and (prediction > 0).all()
        from PIL import Image

        assert Image.open(tmp_path / "prev" / f"{key}.png").size == (3 * 1024, 768)
    again = evaluate_dataset(tiny_model, dataset, protocol=protocol, progress=False)
    assert again.means == result.means  # deterministic


def test_millimetre_trained_weights_are_converted_on_surgical_sets(tiny_model, tiny_data_root):
    root, _ = tiny_data_root
    dataset = open_dataset("simcol", data_root=root, captions=root / "captions")
    protocol = dataset.protocol.replace(input_size=(56, 56))
    plain = evaluate_dataset(tiny_model, dataset, protocol=protocol, progress=False, limit=1)
    original = tiny_model.spec
    tiny_model.spec = replace(original, domain_units={"surgical": "millimetres"})
    try:
        converted = evaluate_dataset(tiny_model, dataset, protocol=protocol, progress=False, limit=1)
    finally:
        tiny_model.spec = original
    assert plain.rows[0].metrics != converted.rows[0].metrics
    shifted = evaluate_dataset(
        tiny_model, dataset, protocol=protocol.replace(domain="indoor"), progress=False, limit=1
    )
    assert shifted.rows[0].metrics == plain.rows[0].metrics  # no conversion outside the surgical domain


class Recording(StandIn):
    def forward(self, pixels, text):
        self.pixels = pixels.clone()
        return super().forward(pixels, text)


def test_without_normalisation_the_network_gets_the_raw_photo(tiny_data_root):
    """The authors' iBims input: [0, 1] pixels, no ImageNet mean/std (their loader skips it)."""
    import torch.nn.functional as F

    root, _ = tiny_data_root
    dataset = open_dataset("ibims", data_root=root, captions=root / "captions")
    model = Recording()
    evaluate_dataset(model, dataset, protocol=dataset.protocol.replace(normalize=False), progress=False, limit=1)
    raw = torch.from_numpy(dataset[0].image).permute(2, 0, 1).float()[None] / 255
    expected = F.interpolate(raw, size=(434, 560), mode="bilinear", align_corners=True)
    torch.testing.assert_close(model.pixels, expected, atol=2e-6, rtol=0)
    evaluate_dataset(model, dataset, progress=False, limit=1)  # the default: normalised
    assert model.pixels.min() < -0.5


def test_hypersim_and_diode_first_resize_follows_the_reference(tiny_data_root):
    """The reference normalises the full photo, then resizes the float tensor to 480x640 with
    torchvision's Resize (bilinear, antialiased), then to 434x560 (align_corners=True)."""
    import torch.nn.functional as F

    from tr2m_cli.model.config import IMAGENET_MEAN, IMAGENET_STD

    root, _ = tiny_data_root
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    for name in ("hypersim", "diode"):
        dataset = open_dataset(name, data_root=root, captions=root / "captions")
        model = Recording()
        evaluate_dataset(model, dataset, progress=False, limit=1)
        photo = (torch.from_numpy(dataset[0].image).permute(2, 0, 1).float()[None] / 255 - mean) / std
        first = F.interpolate(photo, size=(480, 640), mode="bilinear", align_corners=False, antialias=True)
        expected = F.interpolate(first, size=(434, 560), mode="bilinear", align_corners=True)
        torch.testing.assert_close(model.pixels, expected, atol=1e-5, rtol=0)
        # Resizing the uint8 photo with PIL instead (our earlier way) rounds to 1/255 steps.
        older = Recording()
        evaluate_dataset(older, dataset, protocol=dataset.protocol.replace(image_resize_on="photo"), progress=False, limit=1)
        step = 1 / 255 / min(IMAGENET_STD)
        assert 0 < (older.pixels - expected).abs().max() < 2 * step


def test_an_interrupted_run_writes_what_finished(tiny_data_root, tmp_path):
    from tr2m_cli.evaluate.suite import EvalOptions, run_evaluation

    root, _ = tiny_data_root
    datasets = [open_dataset(n, data_root=root, captions=root / "captions") for n in ("nyu", "ibims")]

    class Interrupting(StandIn):
        def forward(self, pixels, text):
            if len(self.calls) == 3:  # the second ibims image
                raise KeyboardInterrupt
            return super().forward(pixels, text)

    with pytest.raises(KeyboardInterrupt):
        run_evaluation(Interrupting(), datasets, tmp_path, EvalOptions(batch_size=1, progress=False), model_info={}, echo=lambda line: None)
    document = json.loads((tmp_path / "results.json").read_text())
    assert document["datasets"]["nyu"]["images_in_means"] == 2 and not document["datasets"]["nyu"]["interrupted"]
    ibims = document["datasets"]["ibims"]
    assert ibims["interrupted"] and ibims["images_run"] == 1 and ibims["images_attempted"] == 2
    assert len((tmp_path / "per_image.csv").read_text().splitlines()) == 1 + 3
    assert "iBims-1 (interrupted: 1 of 2 scored)" in (tmp_path / "table.txt").read_text()


def test_a_sample_failing_in_a_worker_process_is_a_row_like_inline(tiny_data_root, tmp_path):
    import shutil

    root, written = tiny_data_root
    copy = shutil.copytree(root / "ibims", tmp_path / "ibims")
    (copy / "mask_transp" / "corridor_01.png").write_bytes(b"garbage")
    dataset = open_dataset("ibims", root=copy, captions=root / "captions")
    inline = evaluate_dataset(StandIn(), dataset, progress=False)
    workers = evaluate_dataset(StandIn(), dataset, progress=False, num_workers=1)
    for result in (inline, workers):
        assert [row.status for row in result.rows] == ["failed", "scored"] and result.evaluated == 1
        assert "mask_transp/corridor_01.png: unreadable mask" in result.rows[0].problem
    assert inline.rows[1].metrics == workers.rows[1].metrics


def test_differences_from_the_published_protocol_are_named(tiny_data_root):
    from tr2m_cli.evaluate.paper import PAPER_ROWS, protocol_differences

    root, _ = tiny_data_root
    assert set(PAPER_ROWS) == set(DATASET_NAMES) and all(row.citation for row in PAPER_ROWS.values())
    nyu = open_dataset("nyu", data_root=root, captions=root / "captions")
    assert protocol_differences(nyu, nyu.protocol) == []  # the preset is the published protocol
    changed = nyu.protocol.replace(max_depth=5.0, crop=None)
    assert protocol_differences(nyu, changed, limit=1, flip_tta=True) == [
        "max depth 5 m instead of 10 m",
        "crop none instead of eigen (rows 45:471, cols 41:601)",
        "flip test-time augmentation (the paper uses none)",
        "only the first 1 of 2 images",
    ]
    ibims = open_dataset("ibims", data_root=root, captions=root / "captions")
    assert "not normalise" in protocol_differences(ibims, ibims.protocol)[0]
    assert protocol_differences(ibims, ibims.protocol.replace(normalize=False)) == []
    kitti = open_dataset("kitti", data_root=root, captions=root / "captions")
    assert "full-size ground truth" in protocol_differences(kitti, kitti.protocol.replace(crop_ground_truth=False))[0]
