"""The training loop: `train(config)` starts a run, `resume(run_folder)` continues one exactly.

One step: the frozen encoders (no gradient, eval mode, or the feature cache) give image tokens,
relative depth and the caption's embedding; the head predicts scale and shift maps (autocast in
the model's precision); the projector and its momentum copy give query and key features; the
loss of spec §4 is back-propagated into head and projector only; AdamW steps (through the fp16
gradient scaler on CUDA); the momentum branch follows. The learning rate decays ×0.9 per epoch.

Stopping: Ctrl-C and SIGTERM (what schedulers send) end the current step, write a checkpoint and
raise `TrainingInterrupted`; a second signal stops at once. A run whose steps keep failing (a
non-finite loss or gradient for `max_nonfinite_steps` steps in a row) stops with `TrainingStopped`.
"""

from __future__ import annotations

import datetime as _dt
import os
import random
import signal
import sys
import threading
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from ..errors import OutputError, Tr2mError, WeightsError
from ..losses import training_loss
from ..model.head import ScaleShiftHead
from ..model.preprocess import normalize_and_resize
from . import distributed
from .batches import TrainingExamples, collate, epoch_length, epoch_schedule, make_sources
from .config import TrainOptions
from .features import FeatureCache, cache_fingerprint, encode_batch
from .logbook import Logbook
from .run_folder import RunFolder, find_checkpoint
from .state import capture_rng, read_checkpoint, restore_rng, write_checkpoint
from .trainable import MomentumKeyBranch, ScaleProjector, TrainableParts, initialise_head
from .validation import improves, open_datasets, summary, validate, without_unreadable


class TrainingStopped(Tr2mError):
    """The run cannot usefully go on (e.g. every recent step was non-finite); the message says
    why and what to try."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM: the run wrote a checkpoint and stopped; `--resume` continues it."""

    def __init__(self, signal_number: int, checkpoint: Path | None) -> None:
        super().__init__(signal_number, checkpoint)
        self.signal_number, self.checkpoint = signal_number, checkpoint

    @property
    def exit_code(self) -> int:
        return 128 + self.signal_number  # 130 for Ctrl-C, 143 for SIGTERM, as a shell reports them


@dataclass
class TrainResult:
    run_dir: Path
    model: Any  # the TR2M whose head was trained (on the training device)
    global_step: int
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    validation: list[dict[str, Any]] = field(default_factory=list)
    is_main: bool = True  # rank 0 (or a single process): the one that reports


def train(
    config: TrainOptions,
    *,
    datasets: Mapping[str, Sequence] | None = None,
    val_datasets: Mapping[str, Sequence] | None = None,
) -> TrainResult:
    """Start a new run in `config.out`.

    `datasets` / `val_datasets`: name → a sequence of `DepthSample`s (anything indexable, e.g.
    your own dataset); by default the names in the config are opened with
    `tr2m_cli.data.open_dataset` (training on their "train" split, validating on "test").
    Under torchrun every process calls this; each trains on its own shard.
    """
    return _Trainer(config, datasets, val_datasets, checkpoint=None).run()


def resume(
    source: str | Path,
    *,
    datasets: Mapping[str, Sequence] | None = None,
    val_datasets: Mapping[str, Sequence] | None = None,
    notify: Callable[[str], None] | None = None,
    **overrides: Any,
) -> TrainResult:
    """Continue a run from its newest readable checkpoint (or the checkpoint file given), with the
    settings it was started with. `overrides` may change only what does not alter the steps
    (e.g. `epochs` to train longer, `num_workers`, validation); see `RESUMABLE_OVERRIDES`.

    A run folder whose first attempt wrote no checkpoint starts again from step 0 with its
    recorded settings. A checkpoint of another run, or of other encoders or head sizes than the
    run's model now has, is refused. `notify` receives what the user should know (an unreadable
    checkpoint skipped, a restart); by default it is printed on stderr."""
    notify = notify or _print_notice
    source = Path(source)
    run = RunFolder(source) if source.is_dir() else None
    if run is not None and not run.has_checkpoints():
        record = run.read_record()
        if not record.get("config"):
            raise WeightsError(f"{source}: not a training run folder (no run.json, no checkpoints/)")
        config = _with_overrides(TrainOptions.from_dict(record["config"]), overrides, source / "run.json")
        notify(f"{source}: the run wrote no checkpoint before it stopped; starting it again from step 0 with its settings")
        return _Trainer(replace(config, out=str(source)), datasets, val_datasets, checkpoint=None, restart=True).run()
    if run is not None:
        path, state, skipped = run.newest_readable()
        for problem in skipped:
            notify(f"skipping an unreadable checkpoint: {problem}")
        if skipped:
            notify(f"resuming from {path} (step {state['progress']['global_step']}), the newest readable checkpoint")
    else:
        path = find_checkpoint(source, "last")
        state = read_checkpoint(path)
    config = _with_overrides(TrainOptions.from_dict(state["config"]), overrides, path)
    run_dir = path.parent.parent if path.parent.name == "checkpoints" else Path(config.out)
    recorded = RunFolder(run_dir).read_record().get("run_id")
    if recorded and state.get("run_id") and recorded != state["run_id"]:
        raise OutputError(
            f"{path}: a checkpoint of another run (run {state['run_id']}); {run_dir} holds run {recorded}: "
            f"resume that run's own folder, or start a new run with --out"
        )
    config = replace(config, out=str(run_dir))
    return _Trainer(config, datasets, val_datasets, checkpoint=(path, state)).run()


def _with_overrides(config: TrainOptions, overrides: Mapping[str, Any], where: Path) -> TrainOptions:
    try:
        return config.with_overrides(overrides)
    except ValueError as exc:
        raise OutputError(f"{where}: {exc}") from None


def _print_notice(text: str) -> None:
    if os.environ.get("RANK", "0") == "0":
        print(f"tr2m: {text}", file=sys.stderr, flush=True)


class _Trainer:
    def __init__(self, config: TrainOptions, datasets, val_datasets, checkpoint, restart: bool = False) -> None:
        self.config = config
        self.run_folder = RunFolder(config.out)
        self.validating = bool(val_datasets) or (val_datasets is None and bool(config.val_datasets))
        self._last_saved_step = -1
        self._started_group = not torch.distributed.is_initialized()
        self.procs, self.device = distributed.start(config.device)
        self._started_group &= self.procs.distributed
        try:
            if checkpoint is None and self.run_folder.has_checkpoints():
                raise OutputError(
                    f"{config.out}: already holds a training run; continue it with --resume {config.out} "
                    f"or choose another --out"
                )
            if checkpoint is None and self.run_folder.holds_a_run() and not restart and self.procs.is_main:
                # An earlier start that stopped before its first checkpoint (a crash at step 1,
                # Ctrl-C): nothing to continue, so the folder is simply used again.
                _print_notice(f"{config.out}: an earlier start left no checkpoint; starting afresh in this folder")
            self.restarting = checkpoint is None and self.run_folder.holds_a_run()
            distributed.barrier(self.procs)  # every process has looked before rank 0 writes anything
            self._set_up(datasets, val_datasets, checkpoint)
        except BaseException:
            if self._started_group:
                distributed.stop(self.procs)
            raise

    # -- set-up ----------------------------------------------------------------------------------

    def _set_up(self, datasets, val_datasets, checkpoint) -> None:
        config, procs = self.config, self.procs
        # What can fail fast goes first, before loading large encoders: the log, the datasets.
        resumed_step = int(checkpoint[1]["progress"]["global_step"]) if checkpoint is not None else 0
        # TensorBoard keeps what it wrote past the step resumed from unless told to drop it.
        purge = resumed_step + 1 if (checkpoint is not None or self.restarting) else None
        self.logbook = Logbook(config.out, enabled=procs.is_main, tensorboard=config.tensorboard, purge_step=purge)
        where = dict(data_root=config.data_root, captions=config.captions, roots=config.roots, kitti_gt_root=config.kitti_gt_root)
        if datasets is None:
            datasets = open_datasets(config.datasets, "train", **where)
        datasets, notices = without_unreadable(datasets)
        for notice in notices if procs.is_main else ():
            _print_notice(notice)
        self.sources = make_sources(datasets, input_size=config.input_size, augment_settings=config.augment)
        self.val_datasets: Mapping[str, Sequence] = {}
        if procs.is_main:
            if val_datasets is not None:
                self.val_datasets = val_datasets
            elif config.val_datasets:
                self.val_datasets = open_datasets(config.val_datasets, "test", **where)
        _seed_everything(config.seed)
        self.model, self.encoders = self._load_model()
        self.precision = self.model.precision
        head = self.model.head
        if not config.init_head:
            head = initialise_head(ScaleShiftHead(self.model.spec.head), config.head_init)
            self.model.head = head.to(self.device)
        self.model.head.train()
        self.projector = self.key_branch = None
        if config.uses_contrast:
            self.projector = ScaleProjector(
                self.model.spec.head.image_channels, config.projector_hidden, config.projector_channels
            ).to(self.device)
        self.parts = TrainableParts(self.model, self.projector)
        trainable = [p for p in self.parts.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            trainable, lr=config.learning_rate, weight_decay=config.weight_decay, eps=config.adam_eps
        )
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma=config.lr_decay)
        fp16_on_gpu = self.precision == torch.float16 and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=fp16_on_gpu)

        self.epoch, self.batches_done, self.global_step = 0, 0, 0
        self.nonfinite_streak = 0
        record = self.run_folder.read_record() if checkpoint else {}
        self.run_id = (checkpoint[1].get("run_id") if checkpoint else None) or record.get("run_id") or uuid.uuid4().hex[:12]
        self.validation_history: list[dict[str, Any]] = list(record.get("validation", []))
        self.best: dict[str, Any] | None = record.get("best")
        self.last_checkpoint: Path | None = None
        if checkpoint is not None:
            self._check_same_encoders(*checkpoint)
            self._load_state(*checkpoint)
            self.validation_history = [v for v in self.validation_history if v["global_step"] <= self.global_step]

        self.step_module = self.parts
        if procs.distributed:
            from torch.nn.parallel import DistributedDataParallel

            # Construction broadcasts rank 0's head and projector to every process.
            self.step_module = DistributedDataParallel(
                self.parts,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                broadcast_buffers=False,
            )
        if self.projector is not None:
            # Copied after DDP's broadcast, so every process starts from the same keys.
            self.key_branch = MomentumKeyBranch(self.model.head, self.projector).to(self.device)
            if checkpoint is not None:
                self.key_branch.load_state_dict(checkpoint[1]["key_branch"])

        self.cache = None
        if config.cache_features:
            self.cache = FeatureCache(config.cache_features, cache_fingerprint(self.encoders, self.precision)).check()
        self.examples = TrainingExamples(self.sources, config.augment, self.cache)
        if checkpoint is not None or self.restarting:
            self.logbook.truncate_after(self.global_step)
        if procs.is_main:
            self._write_record()
        distributed.barrier(procs)

    def _load_model(self):
        """Load on rank 0 first, then on each node's local rank 0, then on the rest: weights are
        fetched once per cache, never by every process (distributed.node_leaders_first)."""
        from ..weights.folder import read_model_folder
        from ..weights.hub import resolve_source
        from ..weights.load import load_model
        from ..weights.resolve import resolve_model

        model = distributed.node_leaders_first(
            self.procs,
            lambda: load_model(self.config.model, device=self.device, precision=self.config.precision, progress=self.procs.is_main),
        )
        folder = resolve_model(self.config.model, download=False)
        sources = read_model_folder(folder).encoders
        encoders = {
            "image": resolve_source(sources.image, folder),
            "text": resolve_source(sources.text, folder),
            "relative_depth": resolve_source(sources.relative_depth, folder),
        }
        return model, encoders

    def _check_same_encoders(self, path: Path, state: dict[str, Any]) -> None:
        """A checkpoint continues only the model it was trained with: the same three encoders
        and head sizes (a model folder edited since, or another --model, would silently train a
        head on other features)."""
        trained = state.get("encoders")
        if trained and dict(trained) != dict(self.encoders):
            changed = ", ".join(f"{k}: {trained.get(k)} → {self.encoders.get(k)}" for k in sorted(self.encoders) if trained.get(k) != self.encoders.get(k))
            raise OutputError(
                f"{path}: trained with other encoders than model '{self.config.model}' has now ({changed}); "
                f"resume with the model it was trained with"
            )
        trained_head = state.get("head_config")
        if trained_head and dict(trained_head) != self.model.head.config.to_dict():
            raise OutputError(
                f"{path}: a head of other sizes than model '{self.config.model}' makes; resume with the model it was trained with"
            )

    def _load_state(self, path: Path, state: dict[str, Any]) -> None:
        from ..model.checkpoint import check_state_dict

        check_state_dict(self.model.head.state_dict(), state["head"], path)
        self.model.head.load_state_dict(state["head"])
        if self.projector is not None:
            self.projector.load_state_dict(state["projector"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        restore_rng(state["rng"])
        progress = state["progress"]
        self.epoch, self.batches_done = int(progress["epoch"]), int(progress["batches_done"])
        saved_processes = int(progress.get("processes", 1))
        if self.batches_done and saved_processes != self.procs.world_size:
            # Each process's batches depend on the process count: part-way through an epoch the
            # rest of it only exists for the count the checkpoint was taken with.
            raise OutputError(
                f"{path}: taken part-way through an epoch with {saved_processes} process(es); resume it with "
                f"{saved_processes}, or from an end-of-epoch checkpoint with any number"
            )
        self.global_step = int(progress["global_step"])
        self.last_checkpoint = path
        self._last_saved_step = self.global_step

    # -- the loop --------------------------------------------------------------------------------

    def run(self) -> TrainResult:
        from tqdm import tqdm

        config, procs = self.config, self.procs
        try:
            with _StopSignals() as stop:
                sizes = [len(s.dataset) for s in self.sources]
                names = [s.name for s in self.sources]
                if procs.is_main and self.global_step == 0:
                    steps = epoch_length(sizes, config.batch_size, world_size=procs.world_size, steps_per_epoch=config.steps_per_epoch)
                    sets = ", ".join(f"{name} {size}" for name, size in zip(names, sizes))
                    _print_notice(
                        f"an epoch is {steps} steps of {config.batch_size} samples per process, one batch of each set in turn "
                        f"({sets} samples); {config.epochs} epoch{'s' if config.epochs != 1 else ''}"
                    )
                while self.epoch < config.epochs:
                    schedule = epoch_schedule(
                        sizes,
                        config.batch_size,
                        epoch=self.epoch,
                        seed=config.seed,
                        rank=procs.rank,
                        world_size=procs.world_size,
                        steps_per_epoch=config.steps_per_epoch,
                        names=names,
                    )
                    self.steps_per_epoch = len(schedule)
                    loader = torch.utils.data.DataLoader(
                        self.examples,
                        batch_sampler=schedule[self.batches_done :],
                        num_workers=config.num_workers,
                        collate_fn=collate,
                        pin_memory=self.device.type == "cuda",
                        worker_init_fn=_leave_signals_to_the_trainer if config.num_workers else None,
                    )
                    bar = tqdm(
                        total=len(schedule),
                        initial=self.batches_done,
                        desc=f"epoch {self.epoch + 1}/{config.epochs}",
                        unit="batch",
                        disable=not (procs.is_main and config.progress),
                        dynamic_ncols=True,
                    )
                    running: dict[str, list[torch.Tensor]] = {}
                    for batch in loader:
                        terms = self._step(batch)
                        self.batches_done += 1
                        self.global_step += 1
                        source = self.sources[batch["source"][0]].name
                        for name, value in terms.items():
                            running.setdefault(name, []).append(value)
                            if name != "skipped":
                                running.setdefault(f"{source}/{name}", []).append(value)
                        bar.update(1)
                        if self.global_step % config.log_every == 0 or self.batches_done == len(schedule):
                            logged = self._log_training(running)
                            bar.set_postfix(loss=f"{logged.get('total', float('nan')):.4f}")
                            running = {}
                        self._count_nonfinite(terms, running)
                        if config.val_every_steps and self.global_step % config.val_every_steps == 0:
                            self._validate()
                        if (
                            config.checkpoint_every_steps
                            and self.global_step % config.checkpoint_every_steps == 0
                            and self.batches_done < len(schedule)
                            and self._last_saved_step != self.global_step
                        ):
                            self._checkpoint(end_of_epoch=False)
                        if distributed.any_process(stop.requested, procs, self.device):
                            bar.close()
                            self._stop(stop.signal_number or signal.SIGTERM)
                    bar.close()
                    for group, rate in zip(self.optimizer.param_groups, self.scheduler.get_last_lr()):
                        group["lr"] = rate  # the per-epoch decay applies to the rate, not a warm-up fraction
                    self.scheduler.step()
                    self.epoch += 1
                    self.batches_done = 0
                    self._checkpoint(end_of_epoch=True)
                    if not config.val_every_steps:
                        self._validate()
        finally:
            self.logbook.close()
            if self._started_group:
                distributed.stop(procs)
        return TrainResult(
            run_dir=Path(config.out),
            model=self.model,
            global_step=self.global_step,
            last_checkpoint=self.last_checkpoint,
            best_checkpoint=self.run_folder.best if self.best else None,
            validation=self.validation_history,
            is_main=procs.is_main,
        )

    def _stop(self, signal_number: int) -> None:
        """After a stop signal: checkpoint the step just finished (unless it is saved), then stop."""
        if self._last_saved_step != self.global_step:
            self._checkpoint(end_of_epoch=False)
        self.logbook.write({"event": "interrupted", "global_step": self.global_step, "signal": int(signal_number)})
        raise TrainingInterrupted(int(signal_number), self.last_checkpoint)

    def _count_nonfinite(self, terms: dict[str, torch.Tensor], running: dict[str, list[torch.Tensor]]) -> None:
        """Stop a run that has learnt nothing for `max_nonfinite_steps` steps in a row (every one
        had a NaN/inf loss or gradient and was skipped) instead of skipping for ever."""
        self.nonfinite_streak = self.nonfinite_streak + 1 if float(terms["skipped"]) else 0
        if self.nonfinite_streak < self.config.max_nonfinite_steps:
            return
        if running:
            self._log_training(running)
        saved = f"; the last checkpoint is {self.last_checkpoint}" if self.last_checkpoint else ""
        raise TrainingStopped(
            f"{self.config.out}: stopped at step {self.global_step}: the last {self.nonfinite_streak} steps all had a "
            f"non-finite loss or gradient and were skipped (nothing learnt); try a lower --lr, --precision fp32, "
            f"or check the data{saved}"
        )

    def _step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        source = self.sources[batch["source"][0]]
        device = self.device
        image = batch["image"].to(device, non_blocking=True)
        depth = batch["depth"].to(device, non_blocking=True)
        valid = batch["valid"].to(device, non_blocking=True)
        with torch.no_grad():
            pixels = normalize_and_resize(image, source.size)
            encoded = encode_batch(self.model, pixels, batch, self.cache, source)
        output, queries = self.step_module(encoded.image_tokens, encoded.grid, encoded.relative_depth, encoded.text_embeds)
        keys = None
        if self.key_branch is not None:
            keys = self.key_branch(encoded.image_tokens, encoded.text_embeds, encoded.grid, self.precision)
        terms = training_loss(
            self.config.losses,
            metric_depth=output.metric_depth,
            relative_depth=encoded.relative_depth,
            scale_map=output.scale_map,
            shift_map=output.shift_map,
            image=image,
            depth=depth,
            valid=valid,
            queries=queries,
            keys=keys,
            max_depth=source.max_depth,
            min_depth=source.protocol.min_depth,
            contrast_scale=1.0 if self.epoch >= self.config.contrast_start_epoch else 0.0,
        )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(terms["total"]).backward()
        self._warm_up()
        stepped = self._optimiser_step()
        if self.key_branch is not None:
            self.key_branch.update(self.model.head, self.projector, self.config.ema_momentum)
        logged = {name: value.detach() for name, value in terms.items()}
        logged["skipped"] = torch.tensor(0.0 if stepped else 1.0, device=device)
        return logged

    def _warm_up(self) -> None:
        """The learning rate of this step: the scheduler's, ramped linearly over the first
        `warmup_steps` steps (a pure function of the step, so a resumed run repeats it)."""
        steps = self.config.warmup_steps
        factor = min(1.0, (self.global_step + 1) / steps) if steps else 1.0
        for group, rate in zip(self.optimizer.param_groups, self.scheduler.get_last_lr()):
            group["lr"] = rate * factor

    def _optimiser_step(self) -> bool:
        """Step unless a gradient is not finite. Gradients are already averaged over processes,
        so every process takes the same decision."""
        parameters = [p for group in self.optimizer.param_groups for p in group["params"] if p.grad is not None]
        if self.scaler.is_enabled():
            if self.config.grad_clip:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(parameters, self.config.grad_clip)
            scale = self.scaler.get_scale()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            return self.scaler.get_scale() >= scale
        finite = bool(torch.stack([torch.isfinite(p.grad).all() for p in parameters]).all())
        if not finite:
            return False
        if self.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(parameters, self.config.grad_clip)
        self.optimizer.step()
        return True

    # -- logging, validation, checkpoints ---------------------------------------------------------

    def _log_training(self, running: dict[str, list[torch.Tensor]]) -> dict[str, float]:
        """Means since the last record, over all batches ("loss") and per dataset ("loss_by_dataset":
        every process runs the same dataset at the same step, so the keys agree across processes)."""
        skipped = float(torch.stack(running.pop("skipped")).sum())  # the same on every process
        means = {name: float(torch.stack(values).float().mean()) for name, values in running.items()}
        means = distributed.mean_over_processes(means, self.procs, self.device)
        overall = {name: value for name, value in means.items() if "/" not in name}
        by_dataset: dict[str, dict[str, float]] = {}
        for name, value in means.items():
            if "/" in name:
                dataset, term = name.rsplit("/", 1)
                by_dataset.setdefault(dataset, {})[term] = value
        self.logbook.write(
            {
                "event": "train",
                "epoch": self.epoch + 1,
                "global_step": self.global_step,
                "lr": self.optimizer.param_groups[0]["lr"],
                "loss": overall,
                "loss_by_dataset": by_dataset,
                "skipped_steps": int(round(skipped)),
            }
        )
        return overall

    def _validate(self) -> None:
        """Rank 0 evaluates while the others wait; a new best is checkpointed (if the current
        state is not already) and becomes best.safetensors."""
        if not self.validating:
            return
        improved = False
        if self.procs.is_main:
            results = validate(self.model, self.val_datasets, limit=self.config.val_limit)
            metric = self.config.best_metric
            value = summary(results, metric)
            entry = {"epoch": self.epoch, "global_step": self.global_step, "metric": metric, "value": value, "results": results}
            self.validation_history.append(entry)
            self.logbook.write({"event": "validation", **entry})
            improved = improves(value, self.best["value"] if self.best else None, metric)
        if distributed.broadcast_flag(improved, self.procs, self.device):
            if self._last_saved_step != self.global_step:
                self._checkpoint(end_of_epoch=False)
            if self.procs.is_main:
                self.run_folder.mark_best(self.last_checkpoint)
                self.best = {
                    "metric": self.config.best_metric,
                    "value": self.validation_history[-1]["value"],
                    "checkpoint": self.last_checkpoint.name,
                    "global_step": self.global_step,
                }
        if self.procs.is_main:
            self._write_record()
        distributed.barrier(self.procs)

    def _progress(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "batches_done": self.batches_done,
            "global_step": self.global_step,
            "epochs_total": self.config.epochs,
            "steps_per_epoch": getattr(self, "steps_per_epoch", None),
            "processes": self.procs.world_size,
        }

    def _checkpoint(self, *, end_of_epoch: bool) -> None:
        path = self.run_folder.checkpoint_path(self.epoch, self.global_step, end_of_epoch)
        if self.procs.is_main:
            state = {
                "head": self.model.head.state_dict(),
                "head_config": self.model.head.config.to_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "rng": capture_rng(),
                "config": self.config.to_dict(),
                "progress": self._progress(),
                "run_id": self.run_id,
                "encoders": self.encoders,
                "token_budget": self.model.spec.token_budget,
                "units": "metres",
            }
            if self.projector is not None:
                state["projector"] = self.projector.state_dict()
                state["key_branch"] = self.key_branch.state_dict()
            write_checkpoint(path, state)
            self.run_folder.prune(self.config.keep_checkpoints)
            self._write_record()
        self.last_checkpoint = path
        self._last_saved_step = self.global_step
        distributed.barrier(self.procs)

    def _write_record(self) -> None:
        existing = self.run_folder.read_record()
        self.run_folder.write_record(
            {
                "run_id": self.run_id,
                "started_at": (existing.get("started_at") if existing.get("run_id") == self.run_id else None)
                or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "units": "metres",
                "processes": self.procs.world_size,
                "config": self.config.to_dict(),
                "encoders": self.encoders,
                "progress": self._progress(),
                "checkpoints": [path.name for _, path in self.run_folder.all_checkpoints()],
                "last_checkpoint": self.last_checkpoint.name if self.last_checkpoint else None,
                "best": self.best,
                "validation": self.validation_history,
            }
        )


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class _StopSignals:
    """Ctrl-C (SIGINT) and SIGTERM ask the loop to stop after the current step, once; a second
    one stops at once. Installed only in the main thread (elsewhere Python cannot), restored after."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signal_number: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signal_number is not None

    def _handle(self, number, frame) -> None:
        if self.signal_number is not None:
            raise KeyboardInterrupt
        self.signal_number = number
        if os.environ.get("RANK", "0") == "0":
            print(f"\ntr2m: {signal.Signals(number).name}: stopping after this step and writing a checkpoint "
                  f"(again to stop at once)", file=sys.stderr, flush=True)

    def __enter__(self) -> "_StopSignals":
        if threading.current_thread() is threading.main_thread():
            for number in self.SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


def _leave_signals_to_the_trainer(worker_id: int) -> None:
    """Data-loading processes ignore Ctrl-C and SIGTERM: the trainer stops cleanly and then shuts
    them down (a loader whose workers died would fail the checkpoint being written)."""
    for number in _StopSignals.SIGNALS:
        signal.signal(number, signal.SIG_IGN)
