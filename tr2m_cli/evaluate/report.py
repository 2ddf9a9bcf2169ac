"""Reports of an evaluation: the terminal table in the paper's layout (ours, the paper's, the
difference, how many images were scored, and a mark on every row whose protocol differs from the
paper's), `results.json` (protocol, model provenance, means, flagged images) and `per_image.csv`."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..data.protocol import REPORT_UNITS
from ..io.atomic import write_json, write_text
from ..metrics import HIGHER_IS_BETTER, LABELS, LENGTH_METRICS, METRICS
from .paper import PAPER_ROWS, PAPER_RESULTS, SOURCE, difference_from_paper, table_columns
from .run import DatasetResult

MARK = "†"  # a row whose protocol differs from the one behind the published numbers


def _value(result: DatasetResult, metric: str, value: float) -> float:
    """Metres → the unit the paper reports this set in (only RMSE and SqRel carry a unit)."""
    if metric in LENGTH_METRICS:
        return value * REPORT_UNITS[result.protocol.report_unit]
    return value


WIDTH = 10


def _fmt(value: float | None, width: int = WIDTH, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{'n/a':>{width}}"
    return f"{value:>+{width}.3f}" if signed else f"{value:>{width}.3f}"


def _header(metric: str, result: DatasetResult, width: int = WIDTH) -> str:
    arrow = "↑" if metric in HIGHER_IS_BETTER else "↓"
    label = LABELS[metric] + arrow
    if metric in LENGTH_METRICS and result.protocol.report_unit != "metres":
        label += " mm"
    return f"{label:>{width}}"


def _count(result: DatasetResult) -> str:
    """"654 images", "652 of 654 scored", "first 50 of 654", "first 50 of 654, 49 scored"."""
    scored, attempted, total = result.evaluated, result.attempted, result.total
    if result.interrupted:
        return f"interrupted: {scored} of {total} scored"
    if result.limited:
        return f"first {attempted} of {total}" + (f", {scored} scored" if scored < attempted else "")
    if scored < total:
        return f"{scored} of {total} scored"
    return f"{total} image" + ("s" if total != 1 else "")


def _title(result: DatasetResult) -> str:
    return f"{result.title} ({_count(result)})" + (f" {MARK}" if result.differences else "")


def format_table(results: Sequence[DatasetResult], skipped: Sequence[str] = ()) -> str:
    """The paper's layout: in-domain sets with six metrics each, zero-shot sets with AbsRel and δ1;
    our number, the published one, and ours − published (in the paper's units). Rows marked †
    were not run under the protocol behind the published numbers (listed below the table);
    `skipped` names sets that were asked for but not found."""
    out = io.StringIO()
    in_domain = [r for r in results if r.kind == "in-domain"]
    zero_shot = [r for r in results if r.kind != "in-domain"]
    title_width = max([32, *(len(_title(r)) + 2 for r in results)])
    if in_domain:
        out.write("In-domain (the paper trains one model on NYUv2, KITTI, VOID and C3VD)\n")
        for result in in_domain:
            columns = table_columns(result.dataset, "in-domain")
            ours = result.means
            paper = PAPER_RESULTS.get(result.dataset, {})
            out.write(f"  {_title(result):<{title_width}}" + "".join(_header(m, result) for m in columns) + "\n")
            out.write(f"  {'ours':>{title_width}}" + "".join(_fmt(_value(result, m, ours[m])) for m in columns) + "\n")
            out.write(f"  {'paper':>{title_width}}" + "".join(_fmt(paper.get(m)) for m in columns) + "\n")
            deltas = [_value(result, m, ours[m]) - paper[m] if m in paper else None for m in columns]
            out.write(f"  {'ours − paper':>{title_width}}" + "".join(_fmt(d, signed=True) for d in deltas) + "\n")
    if zero_shot:
        if in_domain:
            out.write("\n")
        out.write(f"{'Zero-shot':<{title_width + 2}}{'AbsRel↓':^24}  {'δ1↑':^24}\n")
        out.write(f"  {'':<{title_width}}" + f"{'ours':>8}{'paper':>8}{'Δ':>8}  " * 2 + "\n")
        for result in zero_shot:
            paper = PAPER_RESULTS.get(result.dataset, {})
            cells = ""
            for metric in ("abs_rel", "d1"):
                ours = result.means[metric]
                delta = ours - paper[metric] if metric in paper else None
                cells += _fmt(ours, 8) + _fmt(paper.get(metric), 8) + _fmt(delta, 8, signed=True) + "  "
            out.write(f"  {_title(result):<{title_width}}{cells.rstrip()}\n")
    out.write("\nAll metrics (ours; per-image means; metres, RMSE/SqRel in mm where marked)\n")
    out.write(f"  {'dataset':<16}" + "".join(f"{LABELS[m]:>10}" for m in METRICS) + "\n")
    for result in results:
        unit = " mm" if result.protocol.report_unit == "millimetres" else ""
        row = "".join(f"{_fmt(_value(result, m, result.means[m]), 10)}" for m in METRICS)
        out.write(f"  {result.title:<16}{row}{unit}\n")
    out.write(f"\nPaper: {SOURCE}.\n")
    marked = [r for r in results if r.differences]
    if marked:
        out.write(f"{MARK} Protocol differs from the one behind the published numbers:\n")
        for result in marked:
            out.write(f"  {result.title}: {'; '.join(result.differences)}.\n")
    for result in results:
        for name, counts in result.decodings().items():
            shown = ", ".join(f"{value} {count}" for value, count in sorted(counts.items()))
            out.write(f"Note: {result.title}: {name.replace('_', ' ')} chosen per frame: {shown} (per_image.csv).\n")
        failed = result.failed
        if failed:
            out.write(
                f"Note: {result.title}: {len(failed)} image(s) could not be scored "
                f"(first: {failed[0].key}: {failed[0].problem}); see per_image.csv.\n"
            )
        flagged = [row for row in result.nonfinite if not row.failed]
        if flagged:
            out.write(f"Note: {result.title}: {len(flagged)} image(s) flagged (first: {flagged[0].key}: {flagged[0].problem}); see per_image.csv.\n")
        if result.interrupted:
            out.write(f"Note: {result.title}: interrupted after {len(result.rows)} of {result.attempted} images.\n")
    if skipped:
        out.write("Not evaluated: " + "; ".join(skipped) + ".\n")
    return out.getvalue()


def describe_dataset(dataset, protocol, limit: int | None = None) -> str:
    """One line saying exactly what will be evaluated, printed before the run."""
    count = len(dataset) if limit is None else min(limit, len(dataset))
    size = f"{count} of {len(dataset)}" if count < len(dataset) else f"{count}"
    return (
        f"{dataset.name}: {dataset.split} split, {size} images from {dataset.root}; {protocol.describe()}; "
        f"captions: {dataset.captions_source.description}"
    )


def results_document(
    results: Sequence[DatasetResult],
    *,
    model: dict[str, Any],
    runtime: dict[str, Any],
    command: list[str] | None = None,
    skipped: Sequence[str] = (),
) -> dict[str, Any]:
    from .. import __version__

    datasets = {}
    for result in results:
        entry = result.to_dict()
        row = PAPER_ROWS.get(result.dataset)
        entry["paper"] = dict(row.values) if row else {}
        if row is not None:
            entry["paper_citation"] = row.citation
            entry["paper_units"] = f"rmse and sq_rel in {row.unit}; the other metrics unitless"
        entry["difference_from_paper"] = difference_from_paper(result.dataset, result.means)
        datasets[result.dataset] = entry
    return {
        "tool": "tr2m eval",
        "version": __version__,
        "units": "metres (rmse and sq_rel in metres; every other metric is unitless); paper values and "
        "difference_from_paper in each dataset's paper_units",
        "paper": SOURCE,
        "command": command or [],
        "model": model,
        "runtime": runtime,
        "images_failed": sum(len(r.failed) for r in results),
        "skipped_datasets": list(skipped),
        "datasets": datasets,
    }


def write_results_json(path: str | Path, document: dict[str, Any]) -> Path:
    write_json(path, _json_safe(document))
    return Path(path)


def _json_safe(value):
    """NaN is not JSON: write null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def describe_model(model, folder: str | Path | None = None) -> dict[str, Any]:
    """Which weights produced the numbers: name, folder, head checksum, encoders, units."""
    from dataclasses import asdict

    from ..runtime import precision_name

    spec = model.spec
    info: dict[str, Any] = {
        "name": spec.name,
        "units": spec.units,
        "domain_units": dict(spec.domain_units),
        "encoders": asdict(spec.encoders),
        "provenance": dict(spec.provenance),
        "device": str(model.device),
        "precision": precision_name(model.precision),  # fp32 reproduces the paper's tables
    }
    if folder is not None:
        from ..weights.download import sha256_of

        head = Path(folder) / spec.head_weights
        info["folder"] = str(Path(folder).resolve())
        info["head_file"] = str(head.resolve())
        if head.is_file():
            info["head_sha256"] = sha256_of(head)
    return info


PER_IMAGE_COLUMNS = (
    "dataset", "key", "status", "caption", "valid_pixels", "nonfinite_prediction_pixels", *METRICS, "problem", "notes",
)


def write_per_image_csv(path: str | Path, results: Iterable[DatasetResult]) -> Path:
    """One row per image, failed ones included: status (scored, flagged, not scored, failed),
    metrics in metres, the caption used, any problem, and per-frame choices (notes)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=PER_IMAGE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for result in results:
        for row in result.rows:
            data = row.to_row()
            writer.writerow(
                {
                    "dataset": result.dataset,
                    "status": row.status,
                    **{k: data[k] for k in ("key", "caption", "valid_pixels", "nonfinite_prediction_pixels")},
                    **{m: "" if math.isnan(data[m]) else f"{data[m]:.6g}" for m in METRICS},
                    "problem": row.problem or "",
                    "notes": "; ".join(f"{k}={v}" for k, v in row.notes.items()),
                }
            )
    write_text(path, buffer.getvalue())
    return Path(path)
