"""Evaluating one model on several datasets and writing the reports: what `tr2m eval` runs, as a
function a notebook can call.

    datasets, skipped = open_eval_datasets(["nyu", "kitti"], data_root="/data", captions="/data/text_all")
    results = run_evaluation(model, datasets, out_dir="eval-nyu-kitti")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..data import DatasetMissing, canonical_name, open_dataset
from ..data.protocol import EvalProtocol
from .report import format_table, results_document, write_per_image_csv, write_results_json
from .run import DatasetResult, evaluate_dataset


@dataclass(frozen=True)
class Selection:
    """Which datasets to run: names the user typed (a missing one is an error) and names that
    came from `all` (a missing one is skipped with a notice)."""

    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for name in (*self.required, *self.optional):
            seen.setdefault(name, None)
        return tuple(seen)


def select_datasets(groups: Mapping[str, Sequence[str]]) -> Selection:
    """{"in-domain": ["nyu", "all"], "zero-shot": ["sun"]} → a Selection; `all` means every set
    of its group."""
    from ..data import IN_DOMAIN, ZERO_SHOT

    everything = {"in-domain": IN_DOMAIN, "zero-shot": ZERO_SHOT}
    required, optional = [], []
    for group, names in groups.items():
        for name in names:
            if name.strip().lower() == "all":
                optional.extend(everything[group])
            else:
                required.append(canonical_name(name))
    return Selection(tuple(required), tuple(n for n in optional if n not in required))


def open_eval_datasets(
    selection: Selection | Sequence[str],
    *,
    split: str = "test",
    data_root: str | Path | None = None,
    roots: Mapping[str, str | Path | None] | None = None,
    captions: str | Path | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    dataset_captions: Mapping[str, str | Path] | None = None,
) -> tuple[list, list[str]]:
    """Open every selected dataset before any model is loaded, so layout errors come first.
    `captions` serves every set (a caption release folder); `dataset_captions` names one source
    per set and wins. Returns (datasets, notices about datasets skipped because no root was found)."""
    if not isinstance(selection, Selection):
        selection = Selection(required=tuple(canonical_name(n) for n in selection))
    roots, options = roots or {}, options or {}
    dataset_captions = {canonical_name(k): v for k, v in (dataset_captions or {}).items()}
    datasets, skipped = [], []
    for name in selection.names:
        try:
            datasets.append(
                open_dataset(
                    name, split, root=roots.get(name), data_root=data_root,
                    captions=dataset_captions.get(name, captions), **options.get(name, {}),
                )
            )
        except DatasetMissing as exc:
            if name in selection.required:
                raise
            skipped.append(f"skipping {name}: {exc}")
    return datasets, skipped


@dataclass
class EvalOptions:
    """How to run: shared by every dataset of one evaluation."""

    overrides: Mapping[str, Any] = field(default_factory=dict)  # EvalProtocol fields for every set
    batch_size: int = 4
    limit: int | None = None
    flip_tta: bool = False
    num_workers: int = 0
    save_predictions: bool = False
    preview_every: int = 0  # 0: no previews
    progress: bool = True


def protocol_for(dataset, overrides: Mapping[str, Any]) -> EvalProtocol:
    return dataset.protocol.replace(**overrides) if overrides else dataset.protocol


def run_evaluation(
    model,
    datasets: Sequence,
    out_dir: str | Path,
    settings: EvalOptions | None = None,
    *,
    model_info: dict[str, Any] | None = None,
    command: list[str] | None = None,
    echo: Callable[[str], None] = print,
) -> list[DatasetResult]:
    """Evaluate `model` on each dataset in turn; rewrite results.json and per_image.csv after each
    (an interrupted run keeps what finished) and table.txt at the end."""
    from .report import describe_model

    settings = settings or EvalOptions()
    out = Path(out_dir)
    model_info = model_info or describe_model(model)
    runtime = {
        "batch_size": settings.batch_size,
        "limit": settings.limit,
        "flip_tta": settings.flip_tta,
        "protocol_overrides": {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.overrides.items()},
    }
    results: list[DatasetResult] = []
    for dataset in datasets:
        protocol = protocol_for(dataset, settings.overrides)
        result = evaluate_dataset(
            model,
            dataset,
            protocol=protocol,
            batch_size=settings.batch_size,
            limit=settings.limit,
            flip_tta=settings.flip_tta,
            progress=settings.progress,
            num_workers=settings.num_workers,
            predictions_dir=out / "predictions" / dataset.name if settings.save_predictions else None,
            previews_dir=out / "previews" / dataset.name if settings.preview_every else None,
            preview_every=settings.preview_every,
        )
        results.append(result)
        means = result.means
        echo(
            f"{dataset.name}: {result.evaluated} images in {result.seconds:.1f} s, AbsRel {means['abs_rel']:.3f}, "
            f"δ1 {means['d1']:.3f}" + (f", {len(result.nonfinite)} flagged" if result.nonfinite else "")
        )
        document = results_document(results, model=model_info, runtime=runtime, command=command)
        write_results_json(out / "results.json", document)
        write_per_image_csv(out / "per_image.csv", results)
    from ..io.atomic import write_text

    if results:
        write_text(out / "table.txt", format_table(results))
    return results


# The name before option classes took one suffix (Options); kept so existing code keeps working.
EvalSettings = EvalOptions
