"""`convert`: folders of photos in, metric depth files out.

    from tr2m_cli.convert import convert, ConvertOptions
    from tr2m_cli.io.captions import CaptionRules

    summary = convert(["photos"], "depth-out", ConvertOptions(
        outputs=("tiff", "preview", "ply"),
        captions=CaptionRules(caption_file=Path("captions.json"), domain="indoor"),
    ), model="tr2m-official")
    print(summary.line())

The run, in order (the job plumbing is `tr2m_cli.jobs`, shared with `tr2m caption`):
1. Checks that need no model: inputs exist and hold photos (what is skipped is said), the caption
   file, intrinsics file and COLMAP model are well formed and their keys unambiguous, the extras
   the outputs need are installed, the output folder can be made, an existing manifest is one.
   Any failure is one InputError / OutputError / MissingExtraError and nothing is written.
2. The model is identified (name and head sha256, without loading it) and each photo's settings
   fingerprinted (jobs.fingerprint). Photos whose last record is ok with the same fingerprint
   and whose files exist are skipped (unless `overwrite`); the others are converted, those with
   stale outputs counted as redone. No caption for any of them is an error.
3. The model is loaded (WeightsError if missing), the output folder made and its run lock taken
   (temporaries of killed runs are deleted when no other run is live there).
4. Background threads decode photos ahead (jobs.decode); the inference core
   (model.inference.DepthPredictor, shared with predict and eval) batches them by network size
   and runs the model; a second pool writes the outputs while the model works on the next batch. Each photo's record goes to the manifest as soon as its files are written; a photo
   that fails (unreadable, no valid depth, unwritable file) is recorded and the run goes on.
5. The manifest is merged and compacted and summary.json written, also after Ctrl-C or SIGTERM
   (then JobInterrupted is raised); a failure to write them is said in plain words.
"""

from __future__ import annotations

import concurrent.futures as futures
import functools
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..errors import InputError, OutputError, Tr2mError
from ..io.captions import Caption, CaptionFallback, CaptionResolver
from ..io.inputs import InputImage, select_shard
from ..io.intrinsics import CameraResolver
from ..io.manifest import ManifestLog, describe_os_error, read_manifest_checked
from ..io.pointcloud import cloud_stride, grid_shape
from ..jobs import (
    JobInterrupted,
    JobSummary,
    OutputFolder,
    Progress,
    StopSignals,
    changed_settings,
    check_output_folder,
    decode_ahead,
    discover_inputs,
    fingerprint,
    input_file_identity,
    is_current,
    jsonable,
)
from ..model.inference import DepthPredictor, DepthRequest, DepthResult, StageTimes
from ..runtime import precision_name
from ..sequences.captions import ClipCaptioning, SceneCaption
from .clips import ClipConverter, ClipTotals
from .decode import DecodedPhoto, decode_photo
from .layout import OutputLayout
from .options import ConvertOptions
from .writing import RunContext, failure_record, write_photo


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

    @property
    def converted(self) -> int:
        return self.done

    @converted.setter
    def converted(self, value: int) -> None:
        self.done = value

    @property
    def photos_per_second(self) -> float:
        return self.per_second

    def summary_target(self) -> str:
        return str(self.manifest if self.manifest is not None else self.out_dir)

    def line(self) -> str:
        clips = self.clips
        if clips is None or not clips.clips:
            line = super().line()
        else:
            pieces = []
            if self.photos:
                photo_parts = [f"{self.done} converted"]
                if self.redone:
                    photo_parts.append(f"{self.redone} redone: settings changed")
                if self.skipped:
                    photo_parts.append(f"{self.skipped} {self.skipped_words}")
                if self.failed - clips.failed:
                    photo_parts.append(f"{self.failed - clips.failed} failed")
                pieces.append(f"{', '.join(photo_parts)} of {self.photos} photos")
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


def manifest_names(options: ConvertOptions) -> tuple[str, str]:
    """`manifest.jsonl` and `summary.json`, or per shard `manifest-K-of-N.jsonl`, …"""
    if options.shard is None:
        return "manifest.jsonl", "summary.json"
    tag = f"{options.shard.index}-of-{options.shard.count}"
    return f"manifest-{tag}.jsonl", f"summary-{tag}.json"


@dataclass
class IdentifiedModel:
    """The model of a run, identified before it is loaded (skipping needs no model)."""

    source: Any  # a model folder, or a loaded TR2M
    identity: dict[str, Any]  # name, head_sha256
    spec: Any  # ModelSpec
    precision: str  # what it runs in: fp32, bf16, fp16
    size_policy: Any  # the model's default SizePolicy


def identify_model(model: Any, options: ConvertOptions) -> IdentifiedModel:
    from ..model.preprocess import SizePolicy
    from ..model.tr2m import TR2M
    from ..runtime import resolve_device, resolve_precision
    from ..weights.folder import read_model_folder
    from ..weights.load import model_identity
    from ..weights.resolve import resolve_model

    if isinstance(model, TR2M):
        return IdentifiedModel(model, model_identity(model), model.spec, precision_name(model.precision), model.size_policy)
    folder = resolve_model(model, progress=options.progress)
    spec = read_model_folder(folder)
    precision = resolve_precision(options.precision, resolve_device(options.device))
    return IdentifiedModel(folder, model_identity(folder), spec, precision_name(precision), SizePolicy(token_budget=spec.token_budget))


def _load(model: IdentifiedModel, options: ConvertOptions):
    from ..model.tr2m import TR2M
    from ..weights.load import load_model

    if isinstance(model.source, TR2M):
        return model.source
    return load_model(model.source, device=options.device, precision=options.precision, progress=options.progress)


def long_captions(tr2m, texts) -> tuple[int, dict[str, int]]:
    """(the text encoder's token limit, {caption: its token count} for captions over it)."""
    from ..model.encoders import CLIP_CONTEXT_LENGTH

    distinct = list(dict.fromkeys(texts))
    limit = getattr(tr2m.text_encoder, "max_length", CLIP_CONTEXT_LENGTH)
    if not distinct:
        return limit, {}
    counts = dict(zip(distinct, tr2m.text_encoder.token_counts(distinct)))
    return limit, {text: n for text, n in counts.items() if n > limit}


def long_caption_warning(photos: int, limit: int, key: str, tokens: int) -> str:
    return (
        f"{photos} photo(s) have captions longer than the text encoder's {limit} "
        f"tokens, which it truncates (e.g. {key}: {tokens} tokens)"
    )


def model_settings(model: IdentifiedModel, options: ConvertOptions) -> dict[str, Any]:
    """The settings every photo and clip of a run shares (see jobs.fingerprint)."""
    return {
        "model": model.identity["name"],
        "head_sha256": model.identity["head_sha256"],
        "size": (options.size or model.size_policy).describe(),
        "precision": model.precision,
        "domain": options.domain,
        "metres_per_model_unit": model.spec.metres_per_output_unit(options.domain),
        "outputs": options.output_settings(),
    }


def photo_settings(
    model: IdentifiedModel, options: ConvertOptions, image: InputImage, caption: Caption | None, camera: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Everything that makes this photo's outputs what they are (see jobs.fingerprint); `camera`:
    the per-photo camera a file gives it (CameraResolver.describe)."""
    try:
        source = ({"bytes": image.listed[0], "mtime_ns": image.listed[1]} if image.listed is not None
                  else input_file_identity(image.path))  # fmt: skip
    except OSError:
        source = None
    return {
        **model_settings(model, options),
        "caption": caption.text if caption is not None else None,
        "camera": camera,
        "input_file": source,
    }


def check_extras(options: ConvertOptions) -> None:
    """The optional packages the requested outputs need, before any work (MissingExtraError)."""
    from ..extras import import_open3d, import_openexr, require

    if "exr" in options.outputs:
        import_openexr("--outputs exr")
    if "ply" in options.outputs and (options.cloud.normals or options.cloud.remove_outliers):
        import_open3d("--normals" if options.cloud.normals else "--remove-outliers")
    if "mesh" in options.outputs and options.mesh.target_triangles is not None:
        require("fast_simplification", "3d", "mesh simplification (--mesh-triangles)")


def convert(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    options: ConvertOptions = ConvertOptions(),
    *,
    model: Any = "tr2m-official",
    caption_fallback: CaptionFallback | None = None,
) -> ConvertSummary:
    """Convert photos (files, folders, @list.txt) to metric depth files under `out_dir`.

    `model`: a registry name, a model folder, or a loaded TR2M. `caption_fallback`: captions for
    photos that have none of their own (e.g. from a captioning model). Returns a summary; raises
    a Tr2mError (nothing written) for unusable inputs, caption files, output folders or weights,
    and JobInterrupted (a KeyboardInterrupt carrying the summary) when stopped by a signal.
    """
    from ..io import storage

    started = time.perf_counter()
    inputs = list(inputs) if not isinstance(inputs, (str, Path)) else [inputs]
    if storage.is_url(out_dir) or any(storage.is_url(i) for i in inputs):
        # Object stores: the plan and worker every engine shares, run in this process.
        from .ray_engine import convert_in_process

        return convert_in_process(inputs, out_dir, options, model=model, caption_fallback=caption_fallback)
    out_dir = Path(os.path.abspath(Path(out_dir).expanduser()))
    progress = Progress(0, enabled=options.progress)
    with StopSignals(progress.say) as signals:
        return _convert(inputs, out_dir, options, model, caption_fallback, progress, signals, started)


def _convert(inputs, out_dir, options, model, caption_fallback, progress, signals, started) -> ConvertSummary:
    layout = OutputLayout(out_dir, options.outputs, options.mesh.format)
    check_extras(options)
    found = discover_inputs(inputs, recursive=options.recursive, own_output=out_dir, sequence=options.sequence)
    everything = found.images
    clip_captioning = None
    if caption_fallback is not None and found.clips:
        clip_captioning = ClipCaptioning(caption_fallback, _clip_opener(options), options.clip.selection, options.scene_captions)
        caption_fallback = clip_captioning  # photos are handed on to the fallback as they are
    resolver = CaptionResolver(options.captions, [*everything, *found.clips], caption_fallback)
    cameras = CameraResolver(options.camera, [*everything, *found.clips])  # a clip may have its camera in a file too
    images = select_shard(everything, options.shard)
    clips = select_shard(found.clips, options.shard)
    check_output_folder(out_dir)
    manifest_name, summary_name = manifest_names(options)
    previous, _ = read_manifest_checked(out_dir / manifest_name)
    identified = identify_model(model, options)

    def reuse(image: InputImage) -> Caption | None:
        """A caption the fallback (e.g. --auto-caption) made for this photo last time."""
        record = previous.get(image.key) or {}
        if options.overwrite:
            return None  # redo everything, the generated captions too
        if caption_fallback is not None and record.get("caption_source") == "generated" and record.get("caption"):
            if record.get("caption_origin") == caption_fallback.name:
                return Caption(record["caption"], "generated", caption_fallback.name)
        return None

    everything_captions = resolver.resolve_all([*images, *clips], reuse=reuse)
    captions, clip_captions = everything_captions[: len(images)], everything_captions[len(images) :]
    if clip_captioning is not None:
        for error in clip_captioning.errors:
            progress.warn(error)
    settings = [
        photo_settings(identified, options, image, caption, cameras.describe(image)) for image, caption in zip(images, captions)
    ]
    prints = [fingerprint(s) for s in settings]
    todo, skipped, redone = [], 0, {}
    for image, caption, setting, print_ in zip(images, captions, settings, prints):
        record = previous.get(image.key)
        complete = layout.is_complete(image)
        if not options.overwrite and is_current(record, print_, complete):
            skipped += 1
            continue
        if record is not None and record.get("status") == "ok" and complete and record.get("fingerprint") != print_:
            redone[image.key] = changed_settings(record.get("settings"), setting)
        todo.append((image, caption))
    totals = ClipTotals(clips=len(clips)) if clips else None
    clip_todo = []
    if clips:
        shared = model_settings(identified, options)
        for clip, caption in zip(clips, clip_captions):
            scenes = _scene_captions(clip, caption, clip_captioning, previous.get(clip.key), caption_fallback)
            work = ClipConverter.prepare(shared, options, layout, clip, caption, scenes, cameras.describe(clip))
            if ClipConverter.current(work, previous.get(clip.key), options, layout):
                totals.current += 1
            else:
                clip_todo.append(work)
    waiting = [caption for _, caption in todo] + [work.caption for work in clip_todo]
    if waiting and all(caption is None for caption in waiting):
        what = f"{len(todo)} photos" if not clip_todo else f"{len(todo)} photos and {len(clip_todo)} clips" if todo else f"{len(clip_todo)} clips"
        raise InputError(
            f"no caption for any of the {what}: give --caption-file, put <stem>.txt "
            f"beside each photo or clip, --caption-root DIR, --caption TEXT or --domain indoor|outdoor|surgical"
        )

    tr2m = _load(identified, options) if todo or clip_todo else None
    summary = ConvertSummary(
        out_dir=out_dir,
        destination=str(out_dir),
        photos=len(images),
        skipped=skipped,
        manifest=out_dir / manifest_name,
        summary_file=out_dir / summary_name,
        shard=str(options.shard) if options.shard else None,
        model=dict(identified.identity),
        options=jsonable(options),
        inputs=[str(i) for i in inputs],
        inputs_skipped=[(str(s.path), s.reason) for s in found.skipped],
        clips=totals,
    )
    folder = OutputFolder(out_dir).open()
    try:
        manifest = ManifestLog(summary.manifest)
    except (OSError, Tr2mError) as exc:
        folder.close()
        if isinstance(exc, Tr2mError):
            raise
        raise OutputError(f"cannot write {summary.manifest}: {describe_os_error(exc)}") from None
    progress.total, progress.initial = len(images), skipped
    if clips:
        progress.unit = "image"  # photos and frames alike; each clip adds its frames as it opens
    run = _Run(
        options=options, layout=layout, summary=summary, progress=progress, manifest=manifest, signals=signals, cameras=cameras
    )
    context_settings = {
        image.key: {"fingerprint": print_, "settings": setting}
        for image, setting, print_ in zip(images, settings, prints)
    }
    try:
        if found.skipped:
            progress.warn(f"skipped {found.describe_skipped()}")
        for problem in resolver.problems:
            progress.warn(f"caption not read: {problem}")
        if manifest.unreadable:
            progress.warn(
                f"{summary.manifest}: {len(manifest.unreadable)} unreadable line(s) (first: line "
                f"{manifest.unreadable[0][0]}) moved to {summary.manifest.name}.unreadable"
            )
        if resolver.table and resolver.unmatched_file_keys == len(resolver.table):
            sample = next(iter(resolver.table))
            progress.warn(
                f"no key of {options.captions.caption_file} names any photo here (keys look like "
                f"{sample!r}, photos like {everything[0].key!r})"
            )
        if clip_todo:
            progress.info(
                f"{len(clip_todo)} clip{'' if len(clip_todo) == 1 else 's'} → {out_dir} (a folder each; {', '.join(options.outputs)})"
                + (f", {totals.current} already done" if totals.current else "")
                + (f"; smoothing over {options.stabilize.time_constant}" if options.stabilize.enabled else "; no smoothing")
            )
        for origin, count in cameras.unmatched(everything).items():
            if count == len(everything):
                progress.warn(f"no camera in {origin} names any photo here (photos look like {everything[0].key!r})")
        if todo:
            stale = f", {len(redone)} to redo (settings changed)" if redone else ""
            progress.info(
                f"{len(todo)} photos → {out_dir} ({', '.join(options.outputs)}); model "
                f"{tr2m.spec.name} on {tr2m.device} ({precision_name(tr2m.precision)})"
                + (f", {skipped} already done" if skipped else "")
                + stale
                + (f", shard {options.shard} of {len(everything)} photos" if options.shard else "")
                + (" (sharing the folder with another live run)" if folder.shared else "")
            )
        summary.setup_s = round(time.perf_counter() - started, 3)
        progress.start()
        if todo:
            run.convert_all(tr2m, todo, context_settings, redone)
        if clip_todo:
            ClipConverter(run, tr2m, totals).convert_all(clip_todo)
    except KeyboardInterrupt as exc:
        number = exc.signal_number if isinstance(exc, JobInterrupted) else signal.SIGINT
        signals.interrupt(number)
        summary.signal = signal.Signals(number).name
    finally:
        with signals.deferred():  # a second Ctrl-C must not cut the saving of finished work
            progress.close()
            run.finish(started)
            folder.close()
    if summary.interrupted:
        raise JobInterrupted(signal.Signals[summary.signal].value, summary)
    return summary


class _Run:
    """The state of one conversion: pools, buckets, the manifest and the counters."""

    def __init__(self, *, options, layout, summary, progress, manifest, signals, cameras) -> None:
        self.options: ConvertOptions = options
        self.cameras: CameraResolver = cameras
        self.layout: OutputLayout = layout
        self.summary: ConvertSummary = summary
        self.progress: Progress = progress
        self.manifest: ManifestLog = manifest
        self.signals: StopSignals = signals
        self.times = StageTimes()
        self.writes: set[futures.Future] = set()
        self.out_of_memory_warned = 0
        self.context: RunContext | None = None
        self.redone: dict[str, list[str]] = {}
        self.long_captions: dict[str, int] = {}  # caption → its token count, above the limit

    # -- records ----------------------------------------------------------------------------

    def _finish(self, record: dict[str, Any]) -> None:
        with self.signals.deferred():  # a photo's files are written: its record must follow
            key = record["input"]
            if key in self.redone and record["status"] == "ok":
                record["redone_because"] = self.redone[key]
            self.manifest.append(record)
            status = record["status"]
            if status == "ok":
                self.summary.done += 1
                self.summary.redone += key in self.redone
                self.summary.default_camera += (record.get("intrinsics") or {}).get("source") == "default"
            elif status == "failed":
                self.summary.fail(key, record.get("error") or "")
                self.progress.error(record.get("error") or key)
            self.progress.advance()
        if self.manifest.append_error is not None and not getattr(self, "_append_warned", False):
            self._append_warned = True
            self.progress.warn(
                f"cannot append to {self.manifest.path} ({describe_os_error(self.manifest.append_error)}); "
                f"records are kept and written at the end if the disk allows"
            )

    # -- the pipeline -----------------------------------------------------------------------

    def convert_all(self, tr2m, todo: list[tuple[InputImage, Caption | None]], settings, redone) -> None:
        from .. import __version__

        options = self.options
        self.redone = redone
        predictor = DepthPredictor(
            tr2m,
            batch_size=options.batch_size,
            size=options.size,
            domain=options.domain,
            times=self.times,
            stage_timing=options.stage_timing,
        )
        self.context = RunContext(
            self.layout, options, tr2m.spec.name, predictor.metres_per_unit, __version__,
            precision_name(tr2m.precision), settings=settings, cameras=self.cameras,
        )  # fmt: skip
        work = []
        for image, caption in todo:
            if caption is None:
                self._finish(
                    failure_record(
                        image,
                        f"no caption for {image.key}: add it to the caption file, put "
                        f"{image.output_stem.name}.txt beside it, or pass --caption / --domain",
                    )
                )
            else:
                work.append((image, caption))
        self._warn_long_captions(tr2m, work)
        cloud_grid = None
        if options.grid_outputs:
            cloud = options.cloud
            cloud_grid = lambda h, w: grid_shape(h, w, cloud_stride(h, w, cloud))  # noqa: E731
        decode = functools.partial(
            self._decode, policy=predictor.policy, cloud_grid=cloud_grid, big_photo_slots=threading.BoundedSemaphore(2)
        )
        self.write_pool = futures.ThreadPoolExecutor(options.write_workers, thread_name_prefix="tr2m-write")
        prefetch = max(2 * options.batch_size, 2 * options.decode_workers)
        decoded = decode_ahead(work, decode, workers=options.decode_workers, prefetch=prefetch)
        try:
            for result in predictor.stream(self._requests(decoded, predictor)):
                self._handle(result)
            self._warn_out_of_memory(predictor)
            self._collect_writes(wait_all=True)
        finally:
            decoded.close()  # cancels decoding not yet started
            # Writes already under way finish (each is atomic anyway) and are recorded, whatever
            # stopped the run; further signals meanwhile only say so.
            self._collect_writes(wait_all=True)
            self.write_pool.shutdown(wait=True, cancel_futures=True)

    def _requests(self, decoded, predictor: DepthPredictor) -> Iterator[DepthRequest]:
        """Decoded photos for the predictor; photos that cannot be read are recorded here and
        never reach the model. Between photos, finished writes are recorded."""
        for _, photo in decoded:
            self._collect_writes()
            self._warn_out_of_memory(predictor)
            if isinstance(photo, dict):
                self._finish(photo)
                continue
            yield DepthRequest(photo.photo, photo.caption.text, tag=photo, name=str(photo.image.path))

    def _warn_out_of_memory(self, predictor: DepthPredictor) -> None:
        if predictor.out_of_memory_events > self.out_of_memory_warned:
            self.out_of_memory_warned = predictor.out_of_memory_events
            self.progress.warn(f"out of memory: continuing with batches of {predictor.batch_size}")

    def _warn_long_captions(self, tr2m, work) -> None:
        limit, self.long_captions = long_captions(tr2m, [c.text for _, c in work])
        affected = [(image.key, c.text) for image, c in work if c.text in self.long_captions]
        if affected:
            key, text = affected[0]
            self.progress.warn(long_caption_warning(len(affected), limit, key, self.long_captions[text]))

    def _decode(self, item, *, policy, cloud_grid, big_photo_slots) -> DecodedPhoto | dict[str, Any]:
        image, caption = item
        start = time.perf_counter()
        try:
            return decode_photo(image, caption, policy, cloud_grid, big_photo_slots, max_pixels=self.options.max_pixels)
        except Tr2mError as exc:
            return failure_record(image, str(exc), caption, time.perf_counter() - start)
        except Exception as exc:  # noqa: BLE001 - an odd file must not end the run
            return failure_record(image, f"{image.path}: cannot decode ({type(exc).__name__}: {exc})", caption)
        finally:
            self.times.add("decode", time.perf_counter() - start)

    def _handle(self, result: DepthResult) -> None:
        photo: DecodedPhoto = result.request.tag
        if result.error is not None:
            self._finish(failure_record(photo.image, result.error, photo.caption, result.seconds))
            return
        photo.photo.pixels = None  # the network input is no longer needed: free it now
        while len(self.writes) >= 2 * self.options.write_workers + self.options.batch_size:
            self._collect_writes(block=True)
        self.writes.add(self.write_pool.submit(self._write, result))

    def _write(self, result: DepthResult) -> dict[str, Any]:
        start = time.perf_counter()
        photo: DecodedPhoto = result.request.tag
        image, caption = photo.image, photo.caption
        try:
            record = write_photo(photo, result.depth, self.context, model_seconds=result.seconds)
            if caption.text in self.long_captions:
                record["caption_tokens"] = self.long_captions[caption.text]
            return record
        except Tr2mError as exc:
            return failure_record(image, str(exc), caption, result.seconds)
        except OSError as exc:
            target = exc.filename or self.layout.out_dir
            return failure_record(image, f"{image.key}: cannot write {target} ({describe_os_error(exc)})", caption)
        except Exception as exc:  # noqa: BLE001
            return failure_record(image, f"{image.key}: writing failed ({type(exc).__name__}: {exc})", caption)
        finally:
            self.times.add("write", time.perf_counter() - start)

    def _collect_writes(self, *, block: bool = False, wait_all: bool = False) -> None:
        if not self.writes:
            return
        if wait_all:
            futures.wait(self.writes)
        elif block:
            futures.wait(self.writes, return_when=futures.FIRST_COMPLETED)
        for future in [f for f in self.writes if f.done()]:
            self.writes.discard(future)  # one at a time: a record is never dropped half-collected
            if not future.cancelled():
                self._finish(future.result())

    # -- the end ----------------------------------------------------------------------------

    def finish(self, started: float) -> None:
        """Merge the manifest and write summary.json; failures to do so are said in plain words
        (and make the exit status 1), never a traceback."""
        summary = self.summary
        try:
            self.manifest.close()
        except OutputError as exc:
            summary.write_errors.append(f"{exc} (the records appended during the run are kept)")
        summary.elapsed_s = round(time.perf_counter() - started, 3)
        summary.stage_seconds = self.times.as_dict()
        summary.warnings = list(self.progress.warnings)
        summary.write()
        for error in summary.write_errors:
            self.progress.say(f"tr2m: error: {error}")


def _clip_opener(options: ConvertOptions):
    """How the clip captioner opens a clip: as the run will (topic, frame rate of folders)."""
    from ..sequences.sources import open_clip

    return lambda clip: open_clip(clip.path, options.clip, sequence_folder=clip.kind == "frames")


def _scene_captions(clip: InputImage, caption: Caption | None, captioning, record: dict | None, fallback) -> list[SceneCaption]:
    """A clip's captions per scene: made now by the captioner, or (a caption it made on an
    earlier run, reused) read back from that run's record."""
    if captioning is None or not captioning.per_scene or caption is None or caption.source != "generated":
        return []
    if clip.path in captioning.scenes:
        return captioning.scenes[clip.path]
    recorded = ((record or {}).get("settings") or {}).get("scene_captions") or []
    return [SceneCaption(int(first), int(first), str(text)) for first, text in recorded]
