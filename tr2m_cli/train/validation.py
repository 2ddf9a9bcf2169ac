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
    names: Sequence[str],
    split: str,
    *,
    data_root: str | None = None,
    captions: str | None = None,
    roots: Mapping[str, str] | None = None,
    kitti_gt_root: str | None = None,
) -> dict[str, Any]:
    """name → dataset, read by `tr2m_cli.data.open_dataset` (its roots, captions and protocol).
    `roots`: a root per dataset name (as `--nyu-root`), winning over `data_root`."""
    from ..data import canonical_name

    roots = {canonical_name(k): v for k, v in (roots or {}).items()}
    opened = {}
    for name in names:
        key = canonical_name(name)
        options = {"gt_root": kitti_gt_root} if key == "kitti" and kitti_gt_root else {}
        opened[name] = open_dataset(name, split, root=roots.get(key), data_root=data_root, captions=captions, **options)
    return opened


def without_unreadable(datasets: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Leave out the samples whose files are missing or empty (a `stat` each, before training
    starts, instead of a crash hours in) and say so: (datasets, one notice per dataset concerned).
    Collections without `missing_files` (your own samples) are kept whole."""
    kept, notices = {}, []
    for name, dataset in datasets.items():
        check = getattr(dataset, "missing_files", None)
        problems = check() if callable(check) else []
        if problems:
            bad = {problem.index for problem in problems}
            dataset = dataset.select([i for i in range(len(dataset)) if i not in bad])
            notices.append(
                f"{name}: left out {len(problems)} of {len(bad) + len(dataset)} training samples whose files cannot be "
                f"read (first: {problems[0].key}: {problems[0].problem})"
            )
        kept[name] = dataset
    return kept, notices


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
