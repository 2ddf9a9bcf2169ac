"""`convert`: photos (and clips) in, metric depth files out — one run for every engine.

    from tr2m_cli.convert import convert, ConvertOptions
    from tr2m_cli.io.captions import CaptionRules

    summary = convert(["photos"], "depth-out", ConvertOptions(
        outputs=("tiff", "preview", "ply"),
        captions=CaptionRules(caption_file=Path("captions.json"), domain="indoor"),
    ), model="tr2m-official")
    print(summary.line())

The run, in order, the same on local folders, object stores and a Ray cluster (the engine only
says where the model runs; the job plumbing is `tr2m_cli.jobs`, shared with `tr2m caption`):
1. The plan (convert.plan): every check that needs no model (inputs, caption and camera files,
   extras, the output location, an existing manifest), and for each photo its caption, camera,
   fingerprint and whether it is current, redone or new. Any failure is one InputError /
   OutputError / MissingExtraError and nothing is written.
2. The model is loaded here (WeightsError if missing) or by each Ray worker; a local output
   folder is made and its run lock taken (temporaries of killed runs are deleted when no other
   run is live there).
3. The photos go through PhotoConverter (convert.worker): here as one stream (decode-ahead
   threads, batches by network size, a write pool working while the model runs), on Ray as
   batches of rows on many workers (convert.ray_engine). Each photo's record is saved as soon as
   its files are written — appended to a local folder's manifest, or as a manifest part on an
   object store and by Ray workers — and counted here. A photo that fails is recorded and the
   run goes on. Clips follow, one at a time (convert.clips), on this machine.
4. The manifest is merged and compacted and summary.json written, also after Ctrl-C or SIGTERM
   (then JobInterrupted is raised); a failure to write them is said in plain words.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import OutputError
from ..io import storage
from ..io.captions import CaptionFallback
from ..io.manifest import ManifestLog, describe_os_error
from ..io.manifest_parts import ManifestParts, new_run_id
from ..jobs import JobInterrupted, JobSummary, OutputFolder, Progress, StopSignals, jsonable
from ..model.inference import StageTimes
from ..runtime import precision_name
from .clips import ClipConverter
from .options import ConvertOptions
from .plan import ConvertPlan, plan_conversion


@dataclass
class ConvertSummary(JobSummary):
    """What a run did. `exit_code`: 0 all converted or already current, 1 some failed (or the
    manifest or summary could not be written), 130/143 stopped by SIGINT/SIGTERM."""

    command: str = "convert"
    verb: str = "converted"
    out_dir: Path | None = None
    manifest: Path | None = None
    shard: str | None = None
    clips: Any = None  # ClipTotals, when the inputs hold clips
    default_camera: int = 0  # photos converted with the default field of view
    long_captions: list = field(default_factory=list)  # (photo, tokens) of captions over the text encoder's limit

    @property
    def converted(self) -> int:
        return self.done

    @converted.setter
    def converted(self, value: int) -> None:
        self.done = value

    @property
    def photos_per_second(self) -> float:
        return self.per_second

    def count(self, record: dict[str, Any]) -> None:
        """Count one photo's record (from whichever engine made it)."""
        key = record["input"]
        if record["status"] == "ok":
            self.done += 1
            self.redone += bool(record.get("redone_because"))
            self.default_camera += (record.get("intrinsics") or {}).get("source") == "default"
            if "caption_tokens" in record:
                self.long_captions.append((key, record["caption_tokens"]))
        elif record["status"] == "failed":
            self.fail(key, record.get("error") or "")

    def summary_target(self) -> str:
        return storage.describe(self.manifest if self.manifest is not None else self.out_dir)

    def line(self) -> str:
        clips = self.clips
        if clips is None or not clips.clips:
            line = super().line()
        else:
            pieces = [self.count_words(failed=self.failed - clips.failed)] if self.photos else []
            pieces.append(clips.words())
            working = self.elapsed_s - self.setup_s
            images = self.done + clips.frames
            rate = f", {images / working:.2f} images/s" if images and working > 0 else ""
            state = "interrupted: " if self.interrupted else ""
            line = f"{state}{'; '.join(pieces)} in {self.elapsed_s:.1f} s{rate} → {self.summary_target()}"
        if self.default_camera:  # their 3-D geometry is only as right as a guessed field of view
            line += (
                f"; {self.default_camera} used the default field of view (no camera given, no EXIF focal "
                f"length: --fov, --intrinsics or --colmap)"
            )
        return line

    def to_json(self) -> dict[str, Any]:
        return {
            **super().to_json(),
            "default_camera": self.default_camera,
            "out": str(self.out_dir),
            "shard": self.shard,
            "manifest": self.manifest.name if self.manifest is not None else None,
            "clips": jsonable(self.clips) if self.clips is not None else None,
        }



def long_caption_warning(photos: int, limit: int, key: str, tokens: int) -> str:
    return (
        f"{photos} photo(s) have captions longer than the text encoder's {limit} "
        f"tokens, which it truncates (e.g. {key}: {tokens} tokens)"
    )


def convert(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    options: ConvertOptions = ConvertOptions(),
    *,
    model: Any = "tr2m-official",
    caption_fallback: CaptionFallback | None = None,
) -> ConvertSummary:
    """Convert photos (files, folders, @list.txt; local paths or storage URLs) to metric depth
    files under `out_dir` (a folder or a storage URL), in this process.

    `model`: a registry name, a model folder, or a loaded TR2M. `caption_fallback`: captions for
    photos that have none of their own (e.g. from a captioning model). Returns a summary; raises
    a Tr2mError (nothing written) for unusable inputs, caption files, output folders or weights,
    and JobInterrupted (a KeyboardInterrupt carrying the summary) when stopped by a signal.
    """
    return run_conversion(inputs, out_dir, options, model=model, caption_fallback=caption_fallback)


class LocalEngine:
    """The photos converted in this process by one PhotoConverter, then the clips."""

    name = "local"
    converts_clips = True  # videos and bags are read from this machine's disks
    saves_records = False  # records come back here and are saved by the run

    def __init__(self) -> None:
        self.model = None

    def workers_precision(self, options: ConvertOptions, stack: contextlib.ExitStack) -> str | None:
        return None  # this machine's own: the plan resolves it

    def start(self, plan: ConvertPlan, options: ConvertOptions, stack: contextlib.ExitStack) -> None:
        """Load the model, when there is work for it (WeightsError if it cannot be)."""
        from ..model.tr2m import TR2M
        from ..weights.load import load_model

        if not plan.jobs and not plan.clips:
            return
        source = plan.model.source
        self.model = source if isinstance(source, TR2M) else load_model(
            source, device=options.device, precision=options.precision, progress=options.progress)  # fmt: skip

    def where(self, plan: ConvertPlan) -> str:
        return f"on {self.model.device} ({precision_name(self.model.precision)})"

    def options(self) -> dict[str, Any]:
        return {"engine": self.name}

    def convert(self, plan: ConvertPlan, options: ConvertOptions, run: "_Run") -> None:
        from .worker import PhotoConverter

        converter = PhotoConverter(plan.out, options, model=self.model, write_parts=False, times=run.times)
        converter.convert_stream(plan.jobs, run.record, warn=run.progress.warn)


def run_conversion(
    inputs: Sequence[Any],
    out: Any,
    options: ConvertOptions = ConvertOptions(),
    *,
    model: Any = "tr2m-official",
    caption_fallback: CaptionFallback | None = None,
    engine: Any = None,
) -> ConvertSummary:
    """The run (see the module docstring) on `engine`: LocalEngine (the default) or a
    convert.ray_engine.RayEngine."""
    started = time.perf_counter()
    engine = engine if engine is not None else LocalEngine()
    inputs = [inputs] if isinstance(inputs, (str, os.PathLike, storage.Url)) else list(inputs)
    progress = Progress(0, enabled=options.progress)
    with StopSignals(progress.say) as signals, contextlib.ExitStack() as stack:
        precision = engine.workers_precision(options, stack)
        # Clips are read from, and written to, this machine's disks.
        clips = engine.converts_clips and isinstance(storage.location(out), Path)
        plan = plan_conversion(inputs, out, options, model=model, caption_fallback=caption_fallback, precision=precision,
                               clips=clips)  # fmt: skip
        engine.start(plan, options, stack)
        summary = ConvertSummary(
            out_dir=plan.out, destination=storage.describe(plan.out), photos=plan.photos, skipped=len(plan.done),
            manifest=plan.manifest, summary_file=plan.summary_file, shard=str(options.shard) if options.shard else None,
            model=dict(plan.model.identity), options={**jsonable(options), **engine.options()},
            inputs=[storage.describe(i) for i in inputs], inputs_skipped=plan.inputs_skipped, clips=plan.clip_totals,
        )  # fmt: skip
        folder = stack.enter_context(OutputFolder(plan.out)) if isinstance(plan.out, Path) else None
        run_id = new_run_id()
        run = _Run(options=options, plan=plan, summary=summary, progress=progress, signals=signals,
                   manifest=_open_manifest(plan, options, run_id, engine), run_id=run_id)  # fmt: skip
        progress.total, progress.initial = plan.photos, len(plan.done)
        if plan.clips:
            progress.unit = "image"  # photos and frames alike; each clip adds its frames as it opens
        try:
            for warning in plan.warnings:
                progress.warn(warning)
            if run.manifest.unreadable:
                progress.warn(
                    f"{storage.describe(plan.manifest)}: {len(run.manifest.unreadable)} unreadable line(s) (first: line "
                    f"{run.manifest.unreadable[0][0]}) moved to {plan.manifest_name}.unreadable"
                )
            if plan.clips:
                totals = plan.clip_totals
                progress.info(
                    f"{len(plan.clips)} clip{'' if len(plan.clips) == 1 else 's'} → {summary.destination} (a folder each; "
                    f"{', '.join(options.outputs)})"
                    + (f", {totals.current} already done" if totals.current else "")
                    + (f"; smoothing over {options.stabilize.time_constant}" if options.stabilize.enabled else "; no smoothing")
                )
            if plan.jobs:
                progress.info(
                    f"{len(plan.jobs)} photos → {summary.destination} ({', '.join(options.outputs)}); model "
                    f"{plan.model.spec.name} {engine.where(plan)}"
                    + (f", {len(plan.done)} already done" if plan.done else "")
                    + (f", {len(plan.redone)} to redo (settings changed)" if plan.redone else "")
                    + (f", shard {options.shard} of {plan.found} photos" if options.shard else "")
                    + (" (sharing the folder with another live run)" if folder is not None and folder.shared else "")
                )
            summary.setup_s = round(time.perf_counter() - started, 3)
            progress.start()
            for record in plan.failures:
                run.record(record)
            if plan.jobs:
                engine.convert(plan, options, run)
            if plan.clips:
                ClipConverter(run, engine.model, plan.clip_totals).convert_all(plan.clips)
        except KeyboardInterrupt as exc:
            number = exc.signal_number if isinstance(exc, JobInterrupted) else signal.SIGINT
            signals.interrupt(number)
            summary.signal = signal.Signals(number).name
        finally:
            with signals.deferred():  # a second Ctrl-C must not cut the saving of finished work
                progress.close()
                run.finish(started)
    if summary.interrupted:
        raise JobInterrupted(signal.Signals[summary.signal].value, summary)
    return summary


def _open_manifest(plan: ConvertPlan, options: ConvertOptions, run_id: str, engine) -> ManifestLog | ManifestParts:
    """Where the run saves records: appended to a local folder's manifest (shared with other
    runs there), or as manifest parts — on an object store, and beside Ray workers' parts."""
    if isinstance(plan.out, Path) and not engine.saves_records:
        try:
            return ManifestLog(plan.manifest)
        except OSError as exc:
            raise OutputError(f"cannot write {plan.manifest}: {describe_os_error(exc)}") from None
    return ManifestParts(plan.out, run_id, plan.manifest_name, every=max(4 * options.batch_size, 16))


class _Run:
    """The state of one conversion: the manifest, the counters, what the user sees. Every
    record of the run, whichever engine made it, comes through `record`."""

    def __init__(self, *, options, plan, summary, progress, signals, manifest, run_id) -> None:
        self.options: ConvertOptions = options
        self.layout = plan.layout
        self.cameras = plan.cameras  # clips resolve their cameras with it
        self.summary: ConvertSummary = summary
        self.progress: Progress = progress
        self.signals: StopSignals = signals
        self.manifest = manifest
        self.run_id = run_id
        self.times = StageTimes()
        self._append_warned = False

    def record(self, record: dict[str, Any], *, saved: bool = False) -> None:
        """One photo done (`saved`: its record is saved already, by a Ray worker)."""
        with self.signals.deferred():  # a photo's files are written: its record must follow
            if not saved:
                self.manifest.append(record)
            self.summary.count(record)
            if record["status"] == "failed":
                self.progress.error(record.get("error") or record["input"])
            self.progress.advance()
        error = self.manifest.append_error
        if error is not None and not self._append_warned:
            self._append_warned = True
            reason = describe_os_error(error) if isinstance(error, OSError) else str(error)
            self.progress.warn(
                f"cannot append to {storage.describe(self.manifest.path)} ({reason}); "
                f"records are kept and written at the end if the disk allows"
            )

    def finish(self, started: float) -> None:
        """Merge the manifest and write summary.json; failures to do so are said in plain words
        (and make the exit status 1), never a traceback."""
        from ..model.encoders import CLIP_CONTEXT_LENGTH

        summary = self.summary
        if summary.long_captions:
            key, tokens = summary.long_captions[0]
            self.progress.warn(long_caption_warning(len(summary.long_captions), CLIP_CONTEXT_LENGTH, key, tokens))
        try:
            self.manifest.close()
        except OutputError as exc:
            kept = ("the records are kept in parts; the next run merges them" if isinstance(self.manifest, ManifestParts)
                    else "the records appended during the run are kept")  # fmt: skip
            summary.write_errors.append(f"{exc} ({kept})")
        summary.elapsed_s = round(time.perf_counter() - started, 3)
        summary.stage_seconds = self.times.as_dict()
        summary.warnings = list(self.progress.warnings)
        summary.write()
        for error in summary.write_errors:
            self.progress.say(f"tr2m: error: {error}")
