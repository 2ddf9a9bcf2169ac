"""`tr2m train`: train TR2M's head (spec §4); `tr2m train export`: a model folder from a run."""

from __future__ import annotations

import os
from pathlib import Path

import click

from .options import dataset_root_options, dataset_roots, device_option, model_option, precision_option, quiet_option
from .types import SIZE, MultiValueGroup, deprecated_alias, interruptible, multi_value_option

def split_names(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(name for value in values for name in value.split(",") if name.strip())


@click.group(cls=MultiValueGroup, invoke_without_command=True, no_args_is_help=True)
@multi_value_option("--datasets", metavar="NAME…", help="Training sets (their train splits), mixed one batch each in turn [default: nyu kitti void c3vd].")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path), help="Folder holding nyu/ kitti/ void/ c3vd/ … as `tr2m eval` reads them [default: $TR2M_DATA_ROOT].")
@dataset_root_options
@click.option("--kitti-gt-root", type=click.Path(file_okay=False, path_type=Path), help="KITTI's annotated depth (data_depth_annotated), if not under the KITTI folder.")
@click.option("--captions", type=click.Path(path_type=Path), help="The paper's caption folder (text_all/), a per-image tree, a caption file or a one-line-per-image file [default: $TR2M_CAPTIONS, else captions/ in each dataset's folder].")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Run folder (checkpoints, metrics.jsonl, run.json).")
@click.option("--resume", "resume_from", type=click.Path(exists=True, path_type=Path), metavar="RUN|CHECKPOINT", help="Continue a run (its folder or one checkpoint) exactly where it stopped, with its own settings.")
@model_option
@click.option("--init-head", is_flag=True, help="Start from the model's head (fine-tune) instead of a new one.")
@click.option("--head-init", type=click.Choice(["pytorch", "kaiming"]), default="pytorch", show_default=True, help="Initialisation of a new head.")
@click.option("--epochs", type=click.IntRange(min=1), default=20, show_default=True, help="Epochs (an epoch's length: docs/training.md).")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True, help="Photos per step, per process.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-5, show_default=True, help="AdamW learning rate.")
@click.option("--lr-decay", type=click.FloatRange(0, 1, min_open=True), default=0.9, show_default=True, help="Learning-rate factor per epoch.")
@click.option("--weight-decay", type=click.FloatRange(min=0), default=0.01, show_default=True, help="AdamW weight decay.")
@click.option("--w-si", type=click.FloatRange(min=0), default=1.0, show_default=True, help="λ1, scale-invariant loss.")
@click.option("--w-pseudo", type=click.FloatRange(min=0), default=0.5, show_default=True, help="λ2, thresholded pseudo-depth loss.")
@click.option("--w-contrast", type=click.FloatRange(min=0), default=0.1, show_default=True, help="λ3, scale-oriented contrast.")
@click.option("--w-smooth", type=click.FloatRange(min=0), default=0.01, show_default=True, help="λ4, edge-aware smoothness.")
@click.option("--no-si", is_flag=True, help="Switch L_si off.")
@click.option("--no-pseudo", is_flag=True, help="Switch L_tp-si off.")
@click.option("--no-contrast", is_flag=True, help="Switch L_soc off (no projector, no momentum branch).")
@click.option("--no-smooth", is_flag=True, help="Switch the smoothness term off.")
@click.option("--si-lambda", type=click.FloatRange(0, 1), default=0.15, show_default=True, help="λ inside L_si.")
@click.option("--pseudo-threshold", type=click.FloatRange(0, 1), default=0.9, show_default=True, help="δ1 gate ρ of L_tp-si.")
@click.option("--scale-classes", type=click.IntRange(min=2), default=20, show_default=True, help="|C| of L_soc.")
@click.option("--pseudo-average", type=click.Choice(["passing", "batch"]), default="passing", show_default=True, help="L_tp-si averaged over the images passing ρ, or over the whole batch.")
@click.option("--contrast-negatives", type=click.Choice(["mean", "sum-exp"]), default="mean", show_default=True, help="S_n of L_soc: mean similarity to other-class keys, or each key in the denominator (InfoNCE).")
@click.option("--class-range", type=click.Choice(["image", "dataset"]), default="image", show_default=True, help="Depth classes over each image's depth range, or the dataset's.")
@click.option("--contrast-start-epoch", type=click.IntRange(min=0), default=0, show_default=True, help="First epoch (from 0) with L_soc pulling (the release's option: 1).")
@click.option("--ema-momentum", type=click.FloatRange(0, 1), default=0.99, show_default=True, help="Momentum of L_soc's key branch (an exponential moving average).")
@click.option("--warmup-steps", type=click.IntRange(min=0), default=0, show_default=True, help="Linear learning-rate warm-up (the release's option: 1000).")
@click.option("--no-augment", is_flag=True, help="No flips and no colour changes.")
@click.option("--no-colour-augment", is_flag=True, help="Flips only (what --cache-features allows).")
@click.option("--size", "input_size", type=SIZE, metavar="HxW", help="Network input size in pixels for every set, multiples of 14 [default: each set's eval size].")
@click.option("--input-size", "old_input_size", type=SIZE, hidden=True, callback=deprecated_alias("--input-size", "--size"))
@click.option("--steps-per-epoch", type=click.IntRange(min=1), metavar="STEPS", help="Cap an epoch's steps (see docs/training.md, Epoch length).")
@multi_value_option("--val-datasets", metavar="NAME…", help="Validate on these test splits, as `tr2m eval` scores them.")
@click.option("--val-every", "val_every_steps", type=click.IntRange(min=1), metavar="STEPS", help="Validate every STEPS steps [default: each epoch end].")
@click.option("--val-limit", type=click.IntRange(min=1), metavar="N", help="Images per validation set.")
@click.option("--best-metric", default="abs_rel", show_default=True, metavar="METRIC", help="Validation metric (mean over the sets) that picks the best checkpoint; d1–d3 are maximised.")
@device_option
@precision_option
@click.option("--workers", "num_workers", type=click.IntRange(min=0), default=2, show_default=True, help="Background workers reading photos (data-loading processes); 0: in the main process.")
@click.option("--cache-features", type=click.Path(file_okay=False, path_type=Path), metavar="DIR", help="Cache the frozen encoders' outputs here (needs --no-colour-augment or --no-augment).")
@click.option("--checkpoint-every", "checkpoint_every_steps", type=click.IntRange(min=0), default=1000, show_default=True, metavar="STEPS", help="Also checkpoint every STEPS steps (0: only at epoch ends).")
@click.option("--max-nonfinite-steps", type=click.IntRange(min=1), default=100, show_default=True, metavar="N", help="Stop after N steps in a row with a non-finite loss or gradient.")
@click.option("--keep", "keep_checkpoints", type=click.IntRange(min=1), default=3, show_default=True, metavar="N", help="Newest checkpoints kept (besides the best).")
@click.option("--log-every", type=click.IntRange(min=1), default=10, show_default=True, metavar="STEPS", help="Write losses to metrics.jsonl (and TensorBoard) every STEPS steps.")
@click.option("--tensorboard/--no-tensorboard", default=None, help="TensorBoard scalars under OUT/tensorboard/ [default: if installed (tensorboard extra)].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of batches, caption choices and augmentation.")
@quiet_option
@click.pass_context
def train(ctx: click.Context, **options) -> None:
    """Train TR2M's scale/shift head on RGB-D datasets (the paper's recipe).

    \b
      tr2m train --datasets nyu kitti void c3vd --data-root D --out runs/exp1
      tr2m train --resume runs/exp1                 # continue exactly
      tr2m train export runs/exp1 --out models/exp1 # a model folder for convert/eval
      torchrun --nproc_per_node 8 -m tr2m_cli train ...   # several GPUs (DDP)

    Datasets are found as `tr2m eval` finds them. Depth is in metres throughout. Defaults are the paper's (AdamW lr 1e-5 ×0.9/epoch, batch 8,
    20 epochs, λ 1/0.5/0.1/0.01); see docs/training.md for every default and its source.
    """
    if ctx.invoked_subcommand is not None:
        return
    from ..train import resume, train as run_training

    old = options.pop("old_input_size")
    if options["input_size"] is None and old is not None:
        options["input_size"] = old
    options["roots"] = {name: str(path) for name, path in dataset_roots(options).items()}
    main_process = os.environ.get("RANK", "0") == "0"  # under torchrun, one process reports
    target = options["resume_from"] or options["out"]

    def advice(stopped: KeyboardInterrupt) -> str:
        saved = f"checkpoint {stopped.checkpoint} saved; " if getattr(stopped, "checkpoint", None) else ""
        return f"{saved}continue with: tr2m train --resume {target}"

    with interruptible(advice, report=main_process):
        if options["resume_from"] is not None:
            overrides = _resume_overrides(ctx, options)
            result = resume(options["resume_from"], **overrides)
        else:
            if options["out"] is None:
                raise click.UsageError("--out is required for a new run (or give --resume RUN)")
            result = run_training(_config(options))
    if result.last_checkpoint is not None and result.is_main:
        click.echo(f"run: {result.run_dir}  last checkpoint: {result.last_checkpoint}")
        which = "best" if result.best_checkpoint else "last"
        click.echo(f"export: tr2m train export {result.run_dir} --which {which} --out MODEL_DIR")


def _config(options: dict):
    from ..losses import LossOptions
    from ..train import AugmentOptions, TrainOptions

    losses = LossOptions(
        si_weight=0.0 if options["no_si"] else options["w_si"],
        pseudo_weight=0.0 if options["no_pseudo"] else options["w_pseudo"],
        contrast_weight=0.0 if options["no_contrast"] else options["w_contrast"],
        smoothness_weight=0.0 if options["no_smooth"] else options["w_smooth"],
        variance_focus=options["si_lambda"],
        pseudo_threshold=options["pseudo_threshold"],
        scale_classes=options["scale_classes"],
        pseudo_average=options["pseudo_average"],
        contrast_negatives=options["contrast_negatives"],
        class_range=options["class_range"],
    )
    augment = AugmentOptions()
    if options["no_augment"]:
        augment = AugmentOptions.off()
    elif options["no_colour_augment"]:
        augment = AugmentOptions(photometric_probability=0.0)
    values = {field: options[name] for name, field in _FIELDS.items()}
    values.update(
        out=str(options["out"]),
        data_root=_text(options["data_root"]),
        roots=options["roots"],
        kitti_gt_root=_text(options["kitti_gt_root"]),
        checkpoint_every_steps=options["checkpoint_every_steps"] or None,
        captions=_text(options["captions"]),
        cache_features=_text(options["cache_features"]),
        val_datasets=split_names(options["val_datasets"]),
        losses=losses,
        augment=augment,
        progress=not options["quiet"],
    )
    datasets = split_names(options["datasets"])
    if datasets:
        values["datasets"] = datasets
    try:
        return TrainOptions(**values)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


# CLI option → config field, where the value passes through unchanged (paths, name lists, loss
# and augmentation switches are converted in _config).
_FIELDS = {
    "val_every_steps": "val_every_steps",
    "val_limit": "val_limit",
    "best_metric": "best_metric",
    "model": "model",
    "init_head": "init_head",
    "head_init": "head_init",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "learning_rate",
    "lr_decay": "lr_decay",
    "weight_decay": "weight_decay",
    "ema_momentum": "ema_momentum",
    "input_size": "input_size",
    "steps_per_epoch": "steps_per_epoch",
    "seed": "seed",
    "device": "device",
    "precision": "precision",
    "num_workers": "num_workers",
    "max_nonfinite_steps": "max_nonfinite_steps",
    "warmup_steps": "warmup_steps",
    "contrast_start_epoch": "contrast_start_epoch",
    "keep_checkpoints": "keep_checkpoints",
    "log_every": "log_every",
    "tensorboard": "tensorboard",
}


def _resume_overrides(ctx: click.Context, options: dict) -> dict:
    """Options given on the command line alongside --resume; the rest come from the checkpoint."""
    from click.core import ParameterSource

    from ..train.config import RESUMABLE_OVERRIDES

    given = [
        name
        for name in options
        if name not in ("resume_from", "quiet", "roots") and ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE
    ]
    fields = {**_FIELDS, "data_root": "data_root", "captions": "captions", "cache_features": "cache_features",
              "val_datasets": "val_datasets", "kitti_gt_root": "kitti_gt_root",
              "checkpoint_every_steps": "checkpoint_every_steps"}  # fmt: skip
    fixed = [name for name in given if fields.get(name) not in RESUMABLE_OVERRIDES]
    if fixed:
        spelled = {param.name: param.opts[0] for param in ctx.command.params}
        flags = ", ".join(spelled[name] for name in fixed)
        raise click.UsageError(f"{flags}: fixed by the run being resumed (start a new run to change them)")
    overrides = {fields[name]: options[name] for name in given}
    for name in ("data_root", "captions", "cache_features", "kitti_gt_root"):
        if name in overrides:
            overrides[name] = _text(overrides[name])
    if "checkpoint_every_steps" in overrides:
        overrides["checkpoint_every_steps"] = overrides["checkpoint_every_steps"] or None
    if options["roots"]:
        overrides["roots"] = options["roots"]  # datasets moved since: where they are now
    if "val_datasets" in overrides:
        overrides["val_datasets"] = split_names(overrides["val_datasets"])
    overrides["progress"] = not options["quiet"]
    return overrides


def _text(value) -> str | None:
    return None if value is None else str(value)


@train.command("export")
@click.argument("source", type=click.Path(exists=True, path_type=Path), metavar="RUN|CHECKPOINT")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Model folder to write.")
@click.option("--which", type=click.Choice(["best", "last"]), default="best", show_default=True, help="For a run folder: which checkpoint.")
@click.option("--name", help="Model name recorded in tr2m.json [default: the folder's name].")
@click.option("--force", is_flag=True, help="Replace a model already in --out.")
def export(source: Path, out: Path, which: str, name: str | None, force: bool) -> None:
    """Turn a run's best (or last) checkpoint into a model folder: --model DIR for convert/eval."""
    from ..train import export_model

    click.echo(str(export_model(source, out, which=which, name=name, overwrite=force)))
