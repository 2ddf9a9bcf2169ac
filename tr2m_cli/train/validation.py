"""Datasets by name and validation, both through the dataset and eval modules `tr2m eval` uses
(one home for each dataset's reading code, protocol and metrics; training adds none of its own).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from ..errors import DatasetError

# Metrics where larger is better (the δ thresholds); all others are errors.
_HIGHER_IS_BETTER = ("d1", "d2", "d3", "delta1", "delta2", "delta3", "a1", "a2", "a3")


def open_datasets(
    names: Sequence[str], split: str, *, data_root: str | None = None, captions: str | None = None
) -> dict[str, Any]:
    """name → dataset, read by `tr2m_cli.data.open_dataset`."""
    try:
        from ..data import open_dataset
    except ImportError:
        raise DatasetError(
            "reading datasets by name needs tr2m_cli.data.open_dataset (the dataset layer of `tr2m eval`), "
            "which this installation lacks; pass datasets to tr2m_cli.train.train(...) directly"
        ) from None
    return {name: open_dataset(name, split, data_root=data_root, captions=captions) for name in names}


def _evaluate_dataset():
    try:
        from ..evaluate import evaluate_dataset
    except ImportError:
        raise DatasetError(
            "validation needs tr2m_cli.evaluate.evaluate_dataset (the eval module of `tr2m eval`), which "
            "this installation lacks; train without --val-datasets"
        ) from None
    return evaluate_dataset


def metric_means(result: Any) -> dict[str, float]:
    """Per-metric means of one dataset's evaluation result."""
    for attribute in ("means", "metrics"):
        value = getattr(result, attribute, None)
        if isinstance(value, Mapping):
            return {str(k): float(v) for k, v in value.items()}
    if isinstance(result, Mapping):
        return {str(k): float(v) for k, v in result.items()}
    raise TypeError(f"cannot read metric means from a {type(result).__name__}")


def validate(model, datasets: Mapping[str, Any], *, limit: int | None = None, batch_size: int = 4) -> dict[str, dict[str, float]]:
    """Evaluate `model` (its head as it is now) on each dataset with its own protocol."""
    evaluate_dataset = _evaluate_dataset()
    was_training = model.head.training
    model.head.eval()
    try:
        return {
            name: metric_means(evaluate_dataset(model, dataset, batch_size=batch_size, limit=limit, progress=False))
            for name, dataset in datasets.items()
        }
    finally:
        model.head.train(was_training)


def higher_is_better(metric: str) -> bool:
    return metric.lower() in _HIGHER_IS_BETTER


def summary(results: Mapping[str, Mapping[str, float]], metric: str) -> float:
    """The mean of `metric` over the validation sets (NaN if a set lacks it)."""
    values = [float(r.get(metric, math.nan)) for r in results.values()]
    return sum(values) / len(values) if values else math.nan


def improves(value: float, best: float | None, metric: str) -> bool:
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    return value > best if higher_is_better(metric) else value < best
