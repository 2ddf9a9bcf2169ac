"""Datasets by name and validation, both through the dataset and eval modules `tr2m eval` uses
(one home for each dataset's reading code, protocol and metrics; training adds none of its own).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from ..data import open_dataset
from ..evaluate import evaluate_dataset
from ..metrics import HIGHER_IS_BETTER


def open_datasets(
    names: Sequence[str], split: str, *, data_root: str | None = None, captions: str | None = None
) -> dict[str, Any]:
    """name → dataset, read by `tr2m_cli.data.open_dataset` (its roots, captions and protocol)."""
    return {name: open_dataset(name, split, data_root=data_root, captions=captions) for name in names}


def validate(model, datasets: Mapping[str, Any], *, limit: int | None = None, batch_size: int = 4) -> dict[str, dict[str, float]]:
    """Evaluate `model` (its head as it is now) on each dataset under its own protocol; per-metric
    means per dataset. `evaluate_dataset` puts the model in eval mode and restores it after."""
    return {
        name: dict(evaluate_dataset(model, dataset, batch_size=batch_size, limit=limit, progress=False).means)
        for name, dataset in datasets.items()
    }


def summary(results: Mapping[str, Mapping[str, float]], metric: str) -> float:
    """The mean of `metric` over the validation sets (NaN if a set lacks it)."""
    values = [float(r.get(metric, math.nan)) for r in results.values()]
    return sum(values) / len(values) if values else math.nan


def improves(value: float, best: float | None, metric: str) -> bool:
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    return value > best if metric in HIGHER_IS_BETTER else value < best
