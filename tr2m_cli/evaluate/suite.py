"""Evaluating one model on several datasets and writing the reports: what `tr2m eval` runs, as a
function a notebook can call.

    datasets, skipped = open_eval_datasets(["nyu", "kitti"], data_root="/data", captions="/data/text_all")
    problems = check_files(datasets)          # missing files, before any model loads
    results = run_evaluation(model, datasets, out_dir="eval-nyu-kitti", skipped=skipped)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..data import DatasetMissing, canonical_name, open_dataset
from ..data.dataset import SampleProblem
from ..data.protocol import EvalProtocol
from ..io.atomic import write_text
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
    per set and wins. Returns (datasets, notices about datasets skipped because no root was found:
    "sunrgbd: no folder /data/sunrgbd; …")."""
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
            skipped.append(str(exc) if str(exc).startswith(f"{name}:") else f"{name}: {exc}")
    return datasets, skipped


def check_files(datasets: Sequence, limit: int | None = None) -> dict[str, list[SampleProblem]]:
    """Every sample's files, stat'ed before any model loads: dataset name → the samples (of the
    first `limit`) with a missing or empty file. Those samples are evaluated as failed rows."""
    found = {}
    for dataset in datasets:
        indices = range(min(limit, len(dataset))) if limit is not None else None
        problems = dataset.missing_files(indices)
        if problems:
            found[dataset.name] = problems
    return found


def describe_problems(name: str, problems: Sequence[SampleProblem], total: int, shown: int = 3) -> list[str]:
    """Lines for the terminal: how many samples of a set have missing files, and the first few."""
    lines = [f"{name}: {len(problems)} of {total} samples cannot be read and will be reported as failed:"]
    lines += [f"  {problem.key}: {problem.problem}" for problem in problems[:shown]]
    if len(problems) > shown:
        lines.append(f"  … and {len(problems) - shown} more (all listed in per_image.csv)")
    return lines


@dataclass
class EvalOptions:
    """How to run: shared by every dataset of one evaluation."""

    overrides: Mapping[str, Any] = field(default_factory=dict)  # EvalProtocol fields for every set
    dataset_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # name → fields for one set
    batch_size: int = 4
    limit: int | None = None
    flip_tta: bool = False
    num_workers: int = 0
    save_predictions: bool = False
    preview_every: int = 0  # 0: no previews
    progress: bool = True


def protocol_for(dataset, overrides: Mapping[str, Any], dataset_overrides: Mapping[str, Mapping[str, Any]] | None = None) -> EvalProtocol:
    changes = {**(dataset_overrides or {}).get(dataset.name, {}), **overrides}
    return dataset.protocol.replace(**changes) if changes else dataset.protocol


def run_evaluation(
    model,
    datasets: Sequence,
    out_dir: str | Path,
    settings: EvalOptions | None = None,
    *,
    model_info: dict[str, Any] | None = None,
    command: list[str] | None = None,
    echo: Callable[[str], None] = print,
    skipped: Sequence[str] = (),
) -> list[DatasetResult]:
    """Evaluate `model` on each dataset in turn; rewrite results.json, per_image.csv and table.txt
    after each. If a run stops part-way (Ctrl-C, an error), the files hold every finished image,
    the interrupted set marked as such, before the exception goes on."""
    from .paper import protocol_differences
    from .report import describe_model

    settings = settings or EvalOptions()
    out = Path(out_dir)
    model_info = describe_model(model) if model_info is None else model_info
    runtime = {
        "batch_size": settings.batch_size,
        "limit": settings.limit,
        "flip_tta": settings.flip_tta,
        "protocol_overrides": _plain(settings.overrides),
        "dataset_protocol_overrides": {name: _plain(changes) for name, changes in settings.dataset_overrides.items()},
    }
    results: list[DatasetResult] = []

    def write() -> None:
        document = results_document(results, model=model_info, runtime=runtime, command=command, skipped=skipped)
        write_results_json(out / "results.json", document)
        write_per_image_csv(out / "per_image.csv", results)
        write_text(out / "table.txt", format_table(results, skipped))

    for dataset in datasets:
        protocol = protocol_for(dataset, settings.overrides, settings.dataset_overrides)
        differences = protocol_differences(dataset, protocol, limit=settings.limit, flip_tta=settings.flip_tta)

        def started(result: DatasetResult, differences=differences) -> None:
            result.differences = differences
            results.append(result)

        try:
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
                on_start=started,
            )
        except BaseException:
            if results:
                write()  # what finished is kept, the interrupted set marked "interrupted"
            raise
        means = result.means
        failed = f", {len(result.failed)} failed" if result.failed else ""
        flagged = len(result.nonfinite) - len(result.failed)
        echo(
            f"{dataset.name}: {result.evaluated} of {result.attempted} images scored in {result.seconds:.1f} s, "
            f"AbsRel {means['abs_rel']:.3f}, δ1 {means['d1']:.3f}{failed}" + (f", {flagged} flagged" if flagged else "")
        )
        write()
    if not results:
        write()
    return results


def _plain(changes: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in changes.items()}


# The name before option classes took one suffix (Options); kept so existing code keeps working.
EvalSettings = EvalOptions
