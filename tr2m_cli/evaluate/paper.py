"""The paper's published numbers and table layout (TR2M, arXiv 2506.13387; one model for all
sets; restated in spec §6). Only numbers the paper prints are here: sets or metrics it does not
report show as n/a, never as a guess."""

from __future__ import annotations

SOURCE = "TR2M (Cui et al., arXiv 2506.13387), one model for all datasets"

PAPER_RESULTS: dict[str, dict[str, float]] = {
    "nyu": {"d1": 0.954, "d2": 0.996, "d3": 0.999, "abs_rel": 0.082, "log10": 0.035, "rmse": 0.293},
    "kitti": {"d1": 0.965, "d2": 0.996, "d3": 0.999, "abs_rel": 0.066, "rmse_log": 0.093, "rmse": 2.328},
    "sunrgbd": {"abs_rel": 0.451, "d1": 0.591},
    "ibims": {"abs_rel": 0.154, "d1": 0.736},
    "hypersim": {"abs_rel": 0.357, "d1": 0.361},
    "diode": {"abs_rel": 0.673, "d1": 0.274},
    "simcol": {"abs_rel": 0.284, "d1": 0.445},
}

# Columns of the paper's tables: in-domain sets show six metrics (KITTI swaps log10 for RMSE_log),
# zero-shot sets AbsRel and δ1.
IN_DOMAIN_COLUMNS = ("d1", "d2", "d3", "abs_rel", "log10", "rmse")
KITTI_COLUMNS = ("d1", "d2", "d3", "abs_rel", "rmse_log", "rmse")
ZERO_SHOT_COLUMNS = ("abs_rel", "d1")


def table_columns(name: str, kind: str) -> tuple[str, ...]:
    if kind == "zero-shot":
        return ZERO_SHOT_COLUMNS
    return KITTI_COLUMNS if name == "kitti" else IN_DOMAIN_COLUMNS
