"""The paper's published numbers, where each comes from, and how a run's protocol differs from the
one that produced them (TR2M, arXiv 2506.13387; one model for all sets; restated in spec §6).

Only numbers the paper prints are here: sets or metrics it does not report show as n/a, never as a
guess. RMSE and SqRel are kept in the unit the paper prints them in (millimetres for C3VD), so
`difference_from_paper` converts our metres to that unit before subtracting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..data.protocol import PRESETS, REPORT_UNITS, EvalProtocol, describe_crop
from ..metrics import LENGTH_METRICS

SOURCE = "TR2M (Cui et al., arXiv 2506.13387, CVPR 2026), one model for all datasets"


@dataclass(frozen=True)
class PaperRow:
    """One dataset's published numbers. `unit`: the unit of RMSE (and SqRel) as printed."""

    values: Mapping[str, float]
    citation: str  # the table and row the numbers are read from
    unit: str = "metres"


_README = "and the authors' README (github.com/BeileiCui/TR2M, Results)"
PAPER_ROWS: dict[str, PaperRow] = {
    "nyu": PaperRow(
        {"d1": 0.954, "d2": 0.996, "d3": 0.999, "abs_rel": 0.082, "log10": 0.035, "rmse": 0.293},
        f"in-domain table, NYUv2 columns, row TR2M; {_README}, In-domain, row 'NYU Depth V2'",
    ),
    "kitti": PaperRow(
        {"d1": 0.965, "d2": 0.996, "d3": 0.999, "abs_rel": 0.066, "rmse_log": 0.093, "rmse": 2.328},
        f"in-domain table, KITTI columns, row TR2M; {_README}, In-domain, row 'KITTI'",
    ),
    # VOID and C3VD are in the paper's appendix only (the README has no row for them). C3VD is
    # evaluated, and its RMSE printed, in millimetres.
    "void": PaperRow(
        {"d1": 0.899, "abs_rel": 0.103, "rmse": 0.205},
        "appendix table of in-domain results on VOID and C3VD, VOID columns, row TR2M",
    ),
    "c3vd": PaperRow(
        {"d1": 0.918, "abs_rel": 0.092, "rmse": 2.952},
        "appendix table of in-domain results on VOID and C3VD, C3VD columns, row TR2M (RMSE in mm)",
        unit="millimetres",
    ),
    "sunrgbd": PaperRow({"abs_rel": 0.451, "d1": 0.591}, f"zero-shot table, SUN RGB-D columns, row TR2M; {_README}, Zero-shot"),
    "ibims": PaperRow({"abs_rel": 0.154, "d1": 0.736}, f"zero-shot table, iBims-1 columns, row TR2M; {_README}, Zero-shot"),
    "hypersim": PaperRow({"abs_rel": 0.357, "d1": 0.361}, f"zero-shot table, HyperSim columns, row TR2M; {_README}, Zero-shot"),
    "diode": PaperRow({"abs_rel": 0.673, "d1": 0.274}, f"zero-shot table, DIODE Outdoor columns, row TR2M; {_README}, Zero-shot"),
    "simcol": PaperRow({"abs_rel": 0.284, "d1": 0.445}, f"zero-shot table, SimCol columns, row TR2M; {_README}, Zero-shot"),
}

PAPER_RESULTS: dict[str, dict[str, float]] = {name: dict(row.values) for name, row in PAPER_ROWS.items()}
"""name → metric → published value (RMSE/SqRel in the row's unit)."""

# Columns of the paper's tables: in-domain sets show six metrics (KITTI swaps log10 for RMSE_log),
# zero-shot sets AbsRel and δ1.
IN_DOMAIN_COLUMNS = ("d1", "d2", "d3", "abs_rel", "log10", "rmse")
KITTI_COLUMNS = ("d1", "d2", "d3", "abs_rel", "rmse_log", "rmse")
ZERO_SHOT_COLUMNS = ("abs_rel", "d1")


def table_columns(name: str, kind: str) -> tuple[str, ...]:
    if kind == "zero-shot":
        return ZERO_SHOT_COLUMNS
    return KITTI_COLUMNS if name == "kitti" else IN_DOMAIN_COLUMNS


def in_paper_units(name: str, metric: str, metres_value: float) -> float:
    """Our value (metres for RMSE/SqRel) in the unit the paper prints for this set."""
    row = PAPER_ROWS.get(name)
    if row is not None and metric in LENGTH_METRICS:
        return metres_value * REPORT_UNITS[row.unit]
    return metres_value


def difference_from_paper(name: str, means: Mapping[str, float]) -> dict[str, float]:
    """ours − published, metric by metric, in the paper's units (C3VD RMSE in millimetres)."""
    row = PAPER_ROWS.get(name)
    if row is None:
        return {}
    return {m: in_paper_units(name, m, means[m]) - v for m, v in row.values.items() if m in means}


# -- the protocol behind the published numbers --------------------------------------------------

# Where the authors' evaluation code (which produced the published numbers) differs from our
# presets, which follow the paper's protocol as written.
REFERENCE_CHANGES: dict[str, dict[str, Any]] = {
    "ibims": {"normalize": False},  # their iBims loader skips the ImageNet normalisation
}


def reference_protocol(name: str) -> EvalProtocol | None:
    """The protocol the authors' code runs for `name` (None for a dataset of one's own)."""
    preset = PRESETS.get(name)
    if preset is None:
        return None
    return preset.replace(**REFERENCE_CHANGES.get(name, {}))


def _size(value) -> str:
    return "{}x{}".format(*value) if value else "aspect-keeping"


def _describe_change(field: str, ours: Any, theirs: Any) -> str:
    if field == "normalize":
        if ours:
            return "photos ImageNet-normalised; the authors' code does not normalise these (--match-reference)"
        return "photos not ImageNet-normalised, unlike the authors' code"
    if field == "crop_ground_truth":
        return "compared on the full-size ground truth (BTS style), not the 352x1216 window"
    if field == "crop":
        return f"crop {describe_crop(ours)} instead of {describe_crop(theirs)}"
    if field in ("input_size", "image_resize", "depth_resize"):
        return f"{field.replace('_', ' ')} {_size(ours)} instead of {_size(theirs)}"
    if field in ("min_depth", "max_depth"):
        return f"{field.replace('_', ' ')} {ours:g} m instead of {theirs:g} m"
    return f"{field.replace('_', ' ')} {ours} instead of {theirs}"


def protocol_differences(
    dataset, protocol: EvalProtocol, *, limit: int | None = None, flip_tta: bool = False
) -> list[str]:
    """How a run differs from what produced the published row: the protocol against the authors'
    (overrides, iBims normalisation), how the dataset is read (DIODE's mask, SimCol's captions,
    SUN RGB-D's depth decoding), flip TTA and --limit. Empty when the numbers are comparable."""
    differences = []
    reference = reference_protocol(dataset.name)
    if reference is not None:
        for field in EvalProtocol.__dataclass_fields__:
            if field in ("name", "report_unit", "domain"):
                continue
            ours, theirs = getattr(protocol, field), getattr(reference, field)
            if ours != theirs:
                differences.append(_describe_change(field, ours, theirs))
    differences += dataset.differences_from_reference()
    if flip_tta:
        differences.append("flip test-time augmentation (the paper uses none)")
    total = len(dataset)
    if limit is not None and limit < total:
        differences.append(f"only the first {limit} of {total} images")
    return differences
