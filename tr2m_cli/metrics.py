"""Depth metrics, exactly as the paper reports them (spec §6).

Per image, over the evaluated pixels (min < gt < max, strictly, inside the crop, where the ground
truth is valid), with e = ln pred − ln gt:

    δk       mean(max(gt/pred, pred/gt) < 1.25^k)      k = 1, 2, 3
    abs_rel  mean(|gt − pred| / gt)                     sq_rel  mean((gt − pred)² / gt)
    rmse     sqrt(mean((gt − pred)²))                   rmse_log  sqrt(mean(e²))
    log10    mean(|log10 pred − log10 gt|)              silog  100·sqrt(mean(e²) − mean(e)²)

then averaged over images. Predictions are first clamped to [min, max] (+inf → max, NaN → min).
Computed in float64; depths in metres (rmse and sq_rel are then in metres).
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping

import numpy as np

METRICS = ("d1", "d2", "d3", "abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "silog")
HIGHER_IS_BETTER = frozenset({"d1", "d2", "d3"})
LABELS = {
    "d1": "δ1", "d2": "δ2", "d3": "δ3", "abs_rel": "AbsRel", "sq_rel": "SqRel", "rmse": "RMSE",
    "rmse_log": "RMSE_log", "log10": "log10", "silog": "SILog",
}
LENGTH_METRICS = frozenset({"rmse", "sq_rel"})  # the only ones that carry a unit (metres)


def clamp_prediction(pred: np.ndarray, min_depth: float, max_depth: float) -> np.ndarray:
    """The reference's clamp: below min → min, above max → max, +inf → max, NaN → min."""
    pred = np.asarray(pred, dtype=np.float64)
    pred = np.where(np.isnan(pred), min_depth, pred)
    return np.clip(pred, min_depth, max_depth)


def evaluation_mask(
    gt: np.ndarray,
    min_depth: float,
    max_depth: float,
    crop_mask: np.ndarray | None = None,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Pixels that count: strictly inside (min, max), inside the crop, valid in the dataset."""
    gt = np.asarray(gt)
    mask = (gt > min_depth) & (gt < max_depth)
    if crop_mask is not None:
        mask &= crop_mask
    if valid is not None:
        mask &= valid
    return mask


def compute_metrics(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """All nine metrics for matching 1-D arrays of positive depths; NaN for every metric when the
    arrays are empty."""
    gt = np.asarray(gt, dtype=np.float64).ravel()
    pred = np.asarray(pred, dtype=np.float64).ravel()
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in size")
    if gt.size == 0:
        return {name: math.nan for name in METRICS}
    ratio = np.maximum(gt / pred, pred / gt)
    diff = gt - pred
    err = np.log(pred) - np.log(gt)
    mean_sq_log = float(np.mean(err**2))
    return {
        "d1": float(np.mean(ratio < 1.25)),
        "d2": float(np.mean(ratio < 1.25**2)),
        "d3": float(np.mean(ratio < 1.25**3)),
        "abs_rel": float(np.mean(np.abs(diff) / gt)),
        "sq_rel": float(np.mean(diff**2 / gt)),
        "rmse": float(np.sqrt(np.mean(diff**2))),
        "rmse_log": math.sqrt(mean_sq_log),
        "log10": float(np.mean(np.abs(np.log10(pred) - np.log10(gt)))),
        # The variance can come out a hair below zero in floating point when e is constant.
        "silog": 100.0 * math.sqrt(max(mean_sq_log - float(np.mean(err)) ** 2, 0.0)),
    }


def image_metrics(
    pred: np.ndarray,
    gt: np.ndarray,
    *,
    min_depth: float,
    max_depth: float,
    crop_mask: np.ndarray | None = None,
    valid: np.ndarray | None = None,
) -> tuple[dict[str, float], int]:
    """One image: clamp the prediction, mask the ground truth, compute. Returns (metrics, pixels)."""
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} must share one size")
    mask = evaluation_mask(gt, min_depth, max_depth, crop_mask, valid)
    pred = clamp_prediction(pred, min_depth, max_depth)
    return compute_metrics(gt[mask], pred[mask]), int(mask.sum())


def is_finite(metrics: Mapping[str, float]) -> bool:
    return all(math.isfinite(metrics[name]) for name in METRICS)


def mean_metrics(rows: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """The per-image average the paper reports, over images whose metrics are all finite."""
    finite = [row for row in rows if is_finite(row)]
    if not finite:
        return {name: math.nan for name in METRICS}
    return {name: float(np.mean([row[name] for row in finite])) for name in METRICS}
