"""Training TR2M's head (spec §4): the recipe the authors never released.

    from tr2m_cli.train import TrainOptions, train, resume, export_model

    result = train(TrainOptions(out="runs/exp1", datasets=("nyu", "kitti", "void", "c3vd"), data_root="/data"))
    resume("runs/exp1", epochs=25)                           # continue exactly where it stopped
    export_model("runs/exp1", "models/exp1", which="best")   # a model folder for convert / eval

Package layout: `config.py` (every default and its source), `augment.py`, `batches.py` (mixing,
sharding, sample preparation), `features.py` (frozen encoders + on-disk cache), `trainable.py`
(projector, momentum branch, head init), `loop.py`, `state.py` (checkpoint files),
`run_folder.py`, `logbook.py`, `validation.py` (through the eval module), `distributed.py`,
`export.py`. The losses live in `tr2m_cli/losses.py`. See docs/training.md.
"""

from .augment import AugmentOptions
from .config import PAPER_DATASETS, TrainConfig, TrainOptions
from .export import export_model
from .loop import TrainResult, resume, train

__all__ = ["PAPER_DATASETS", "AugmentOptions", "TrainConfig", "TrainOptions", "TrainResult", "export_model", "resume", "train"]
