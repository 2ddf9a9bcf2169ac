"""Evaluation: scoring a model on the paper's datasets under their protocols, and the reports.

    from tr2m_cli.data import open_dataset
    from tr2m_cli.evaluate import evaluate_dataset
    result = evaluate_dataset(model, open_dataset("nyu", data_root="/data"), limit=50)
    result.means["abs_rel"]
"""

from .run import DatasetResult, ImageResult, evaluate_dataset, prepare_sample

__all__ = ["DatasetResult", "ImageResult", "evaluate_dataset", "prepare_sample"]
