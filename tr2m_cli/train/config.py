"""Every setting of a training run, with its default and where that default comes from.

"paper" = TR2M (arXiv 2506.13387) §4 as restated in spec §4; "release" = a hint in the authors'
public `options.py` (their training code is not public); "ours" = our choice, with the reason.
The config is saved in every checkpoint, so a run can be resumed or audited from its files alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Mapping

from ..losses import LossOptions
from .augment import AugmentOptions

PAPER_DATASETS = ("nyu", "kitti", "void", "c3vd")
"""The paper's training mix (the release's code leaves VOID out; the paper includes it)."""


@dataclass(frozen=True)
class TrainOptions:
    out: str  # run folder: checkpoints, metrics.jsonl, run.json
    datasets: tuple[str, ...] = PAPER_DATASETS  # paper
    data_root: str | None = None  # root holding each dataset's conventional sub-folder
    roots: Mapping[str, str] = field(default_factory=dict)  # name → its own root (--nyu-root …), wins over data_root
    kitti_gt_root: str | None = None  # KITTI's annotated depth, if not under its root
    captions: str | None = None  # caption root, passed to the dataset readers
    val_datasets: tuple[str, ...] = ()  # validated with the eval module (its protocol per set)
    val_every_steps: int | None = None  # None: at the end of each epoch (ours)
    val_limit: int | None = None  # images per validation set; None: all
    best_metric: str = "abs_rel"  # mean over val sets decides the "best" checkpoint (ours)

    model: str = "tr2m-official"  # encoders and head sizes come from this model
    init_head: bool = False  # True: fine-tune the model's head; False: train a new one (paper)
    head_init: str = "pytorch"  # new head's init, see `initialise_head`

    epochs: int = 20  # paper
    batch_size: int = 8  # paper; per process under DDP
    learning_rate: float = 1e-5  # paper, AdamW
    lr_decay: float = 0.9  # paper: ×0.9 each epoch
    weight_decay: float = 0.01  # torch's AdamW default, also the release's option
    adam_eps: float = 1e-6  # release
    warmup_steps: int = 0  # ours: none (the release's options say 1000 iterations)
    losses: LossOptions = LossOptions()  # paper's λ1..λ4, see tr2m_cli/losses.py
    contrast_start_epoch: int = 0  # ours: from the start (the release's scon_start_epoch is 1)
    ema_momentum: float = 0.99  # release (pixpro_momentum); the paper gives no value
    projector_hidden: int = 160  # ours: 1024→160→160 is 189,760 parameters, the paper's ≈0.19 M
    projector_channels: int = 160  # ours
    augment: AugmentOptions = AugmentOptions()
    input_size: tuple[int, int] | None = None  # None: each dataset's eval input size (reference)
    steps_per_epoch: int | None = None  # None: rounds until the largest dataset is seen once
    grad_clip: float | None = None  # ours: off, as in the paper

    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # auto: bf16/fp16 on CUDA, fp32 elsewhere
    num_workers: int = 2
    cache_features: str | None = None  # folder for frozen-encoder outputs (see docs/training.md)
    checkpoint_every_steps: int | None = 1000  # ours; besides the end of every epoch (an epoch is ~24k steps)
    max_nonfinite_steps: int = 100  # ours: stop after this many consecutive steps with NaN/inf
    keep_checkpoints: int = 3  # newest kept; the best is kept as well
    log_every: int = 10  # steps between JSON Lines records
    tensorboard: bool | None = None  # None: when the tensorboard package is importable
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "keep_checkpoints", "log_every", "projector_hidden", "projector_channels", "max_nonfinite_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} = {getattr(self, name)}: must be at least 1")
        for name in ("steps_per_epoch", "val_every_steps", "val_limit", "checkpoint_every_steps"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} = {value}: must be at least 1 (or unset)")
        if self.learning_rate <= 0 or not 0 < self.lr_decay <= 1:
            raise ValueError("learning_rate must be > 0 and lr_decay in (0, 1]")
        if not 0 <= self.ema_momentum <= 1:
            raise ValueError(f"ema_momentum = {self.ema_momentum}: must lie in [0, 1]")
        if self.head_init not in HEAD_INITS:
            raise ValueError(f"head_init '{self.head_init}': expected one of {', '.join(HEAD_INITS)}")
        if not self.datasets:
            raise ValueError("no training datasets")
        if self.num_workers < 0 or self.warmup_steps < 0 or self.contrast_start_epoch < 0:
            raise ValueError("num_workers, warmup_steps and contrast_start_epoch cannot be negative")
        if self.cache_features and self.augment.changes_encoder_inputs:
            raise ValueError(
                "--cache-features with colour augmentation: cached encoder outputs would not match the "
                "jittered images; turn colour augmentation off (--no-colour-augment) or drop the cache"
            )

    @property
    def uses_contrast(self) -> bool:
        return self.losses.contrast_weight > 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainOptions":
        """Inverse of to_dict (JSON gives lists where we keep tuples); unknown keys are an error
        so a typo in a hand-written config is not silently ignored."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(sorted(unknown))}")
        values = dict(data)
        for name in ("datasets", "val_datasets"):
            if name in values:
                values[name] = tuple(values[name])
        if values.get("input_size") is not None:
            values["input_size"] = tuple(values["input_size"])
        if "roots" in values:
            values["roots"] = dict(values["roots"] or {})
        if "losses" in values:
            values["losses"] = LossOptions.from_dict(values["losses"])
        if "augment" in values:
            values["augment"] = AugmentOptions.from_dict(values["augment"])
        return cls(**values)

    def with_overrides(self, overrides: Mapping[str, Any]) -> "TrainOptions":
        """A resumed run's config with the few settings that may change between sessions."""
        unknown = set(overrides) - RESUMABLE_OVERRIDES
        if unknown:
            raise ValueError(
                f"cannot change {', '.join(sorted(unknown))} when resuming (the run's other settings are "
                f"fixed by its checkpoint; start a new run to change them)"
            )
        return replace(self, **dict(overrides))


HEAD_INITS = ("pytorch", "kaiming")

RESUMABLE_OVERRIDES = frozenset(
    {
        "epochs",
        "data_root",
        "roots",
        "kitti_gt_root",
        "captions",
        "val_datasets",
        "val_every_steps",
        "val_limit",
        "device",
        "num_workers",
        "cache_features",
        "checkpoint_every_steps",
        "max_nonfinite_steps",
        "keep_checkpoints",
        "log_every",
        "tensorboard",
        "progress",
    }
)
"""Settings that do not change what a step computes (or, like `epochs`, only extend the run)."""



# The name before option classes took one suffix (Options); kept so existing code keeps working.
TrainConfig = TrainOptions
