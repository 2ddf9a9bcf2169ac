"""The nine metrics against values worked out by hand, with the range mask, crops and clamping."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tr2m_cli.data.protocol import crop_mask
from tr2m_cli.metrics import METRICS, clamp_prediction, compute_metrics, evaluation_mask, image_metrics, mean_metrics


def test_metrics_by_hand():
    gt = np.array([1.0, 2.0, 4.0, 5.0])
    pred = np.array([1.2, 3.0, 4.0, 8.0])
    m = compute_metrics(gt, pred)
    # ratios max(gt/pred, pred/gt) = 1.2, 1.5, 1.0, 1.6
    assert (m["d1"], m["d2"], m["d3"]) == (0.5, 0.75, 1.0)
    assert m["abs_rel"] == pytest.approx((0.2 / 1 + 1 / 2 + 0 + 3 / 5) / 4)  # 0.325
    assert m["sq_rel"] == pytest.approx((0.04 / 1 + 1 / 2 + 0 + 9 / 5) / 4)  # 0.585
    assert m["rmse"] == pytest.approx(math.sqrt((0.04 + 1 + 0 + 9) / 4))  # √2.51
    e = [math.log(1.2), math.log(1.5), 0.0, math.log(1.6)]
    mean_e2 = sum(x * x for x in e) / 4
    assert m["rmse_log"] == pytest.approx(math.sqrt(mean_e2))
    assert m["log10"] == pytest.approx(sum(abs(x) for x in e) / 4 / math.log(10))
    assert m["silog"] == pytest.approx(100 * math.sqrt(mean_e2 - (sum(e) / 4) ** 2))
    assert set(m) == set(METRICS)


def test_a_scaled_prediction_has_zero_silog_and_perfect_one_is_all_zero():
    gt = np.array([0.5, 1.0, 3.0, 7.0])
    m = compute_metrics(gt, 2 * gt)
    assert m["silog"] == pytest.approx(0.0, abs=1e-5) and m["rmse_log"] == pytest.approx(math.log(2)) and m["d3"] == 0.0
    # mean(e²) − mean(e)² can round below zero for a constant e: SILog must stay 0, not NaN.
    for scale in (1.1, 0.3, 7.7, 1.0 + 1e-9):
        assert compute_metrics(np.full(1000, 3.3), np.full(1000, 3.3 * scale))["silog"] == pytest.approx(0.0, abs=1e-5)
    assert m["abs_rel"] == pytest.approx(1.0)
    perfect = compute_metrics(gt, gt)
    assert perfect["d1"] == 1.0 and all(perfect[k] == 0 for k in METRICS if not k.startswith("d"))


def test_empty_input_gives_nan_and_means_skip_it():
    empty = compute_metrics(np.array([]), np.array([]))
    assert all(math.isnan(v) for v in empty.values())
    good = compute_metrics(np.array([1.0, 2.0]), np.array([1.0, 4.0]))
    means = mean_metrics([good, empty, {**good, "abs_rel": 0.0}])
    assert means["abs_rel"] == pytest.approx((0.5 + 0.0) / 2) and means["d1"] == 0.5


def test_clamp_follows_the_reference():
    pred = np.array([np.inf, np.nan, -1.0, 100.0, 0.05, 3.0, -np.inf])
    np.testing.assert_array_equal(clamp_prediction(pred, 0.1, 10.0), [10.0, 0.1, 0.1, 10.0, 0.1, 3.0, 0.1])


def test_range_mask_is_strict_and_combines_crop_and_valid():
    gt = np.array([[0.001, 0.0011, 10.0, 9.99]])
    assert evaluation_mask(gt, 0.001, 10.0).tolist() == [[False, True, False, True]]
    valid = np.array([[True, False, True, True]])
    crop = np.array([[True, True, True, False]])
    assert evaluation_mask(gt, 0.001, 10.0, crop, valid).tolist() == [[False, False, False, False]]


def test_image_metrics_with_the_eigen_crop():
    gt = np.full((480, 640), 5.0)
    gt[45:471, 41:601] = 2.0  # inside the crop the prediction is right, outside it is not
    pred = np.full((480, 640), 2.0)
    inside, pixels = image_metrics(pred, gt, min_depth=1e-3, max_depth=10, crop_mask=crop_mask(gt.shape, "eigen"))
    assert pixels == 426 * 560 and inside["abs_rel"] == 0.0 and inside["d1"] == 1.0
    whole, pixels = image_metrics(pred, gt, min_depth=1e-3, max_depth=10)
    outside_share = 1 - 426 * 560 / (480 * 640)
    assert pixels == 480 * 640 and whole["abs_rel"] == pytest.approx(outside_share * 3 / 5)
    assert whole["d1"] == pytest.approx(1 - outside_share)


def test_image_metrics_with_the_garg_crop_range_and_clamp():
    gt = np.array([[20.0, 30.0, 90.0], [30.0, 0.0, 40.0]])  # 90 m: beyond the 80 m cap; 0: no data
    pred = np.array([[20.0, np.nan, 30.0], [np.inf, 30.0, 40.0]])
    m, pixels = image_metrics(pred, gt, min_depth=1e-3, max_depth=80)
    # counted: (20, 20), (30, NaN→0.001), (30, inf→80), (40, 40)
    assert pixels == 4
    assert m["abs_rel"] == pytest.approx((0 + (30 - 0.001) / 30 + 50 / 30 + 0) / 4)
    garg = crop_mask((10, 100), "garg")  # rows 4:9, cols 3:96
    gt = np.full((10, 100), 10.0)
    m, pixels = image_metrics(np.full((10, 100), 12.5), gt, min_depth=1e-3, max_depth=80, crop_mask=garg)
    assert pixels == 5 * 93 and m["abs_rel"] == pytest.approx(0.25) and m["d1"] == 0.0
