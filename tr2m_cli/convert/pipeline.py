"""`convert`: folders of photos in, metric depth files out.

    from tr2m_cli.convert import convert, ConvertOptions
    from tr2m_cli.io.captions import CaptionRules

    summary = convert(["photos"], "depth-out", ConvertOptions(
        outputs=("tiff", "preview", "ply"),
        captions=CaptionRules(caption_file=Path("captions.json"), domain="indoor"),
    ), model="tr2m-official")
    print(summary.line())

The run, in order:
1. Checks that need no model: inputs exist and hold photos, the caption file is well formed
   and its keys unambiguous, the output folder can be made. Any failure is one InputError /
   OutputError and nothing is written.
2. Photos whose outputs all exist are skipped (unless `overwrite`); the rest get captions.
   No caption for any of them is an error; no caption for some fails just those.
3. The model is loaded (WeightsError if missing), the output folder made, temporaries that a
   killed run left for these photos deleted.
4. Background threads decode and resize photos; the main thread batches them by network size
   and runs the model; a second pool writes the outputs, while the model works on the next batch.
   Each photo's record goes to the manifest as soon as its files are written; a photo that fails
   (unreadable, model error, unwritable file) is recorded and the run goes on.
5. The manifest is compacted and summary.json written, also after Ctrl-C (then re-raised).
"""

from __future__ import annotations

import collections
import concurrent.futures as futures
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError, OutputError, Tr2mError
from ..io.atomic import remove_stale_temporaries, remove_stale_temporaries_of
from ..io.captions import CaptionFallback, CaptionResolver
from ..io.images import IMAGE_SUFFIXES
from ..io.inputs import InputImage, collect_images, select_shard
from ..io.manifest import ManifestLog
from ..io.pointcloud import cloud_stride, grid_shape
from .batching import DepthResult, DepthRunner, SizeBuckets, StageTimes
from .decode import DecodedPhoto, decode_photo
from .layout import OutputLayout
from .options import ConvertOptions
from .plan import manifest_names
from .progress import Progress
from .writing import RunContext, base_record, failure_record, now_iso, write_photo


@dataclass
class ConvertSummary:
    """What a run did. `exit_code`: 0 all converted or already done, 1 some failed."""

    out_dir: Path  # or an io.storage.Url
    photos: int = 0  # in this run (this shard)
    converted: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (photo, error)
    elapsed_s: float = 0.0  # the whole call
    setup_s: float = 0.0  # checks, captions and loading the model, before the first photo
    stage_seconds: dict[str, float] = field(default_factory=dict)
    manifest: Path | None = None
    summary_file: Path | None = None
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def count(self, record: dict[str, Any]) -> str:
        """Count one photo's manifest record; returns its status."""
        status = record["status"]
        if status == "ok":
            self.converted += 1
        elif status == "failed":
            self.failed += 1
            self.failures.append((record["input"], record.get("error") or ""))
        return status

    @property
    def photos_per_second(self) -> float:
        """Throughput once the model is loaded."""
        working = self.elapsed_s - self.setup_s
        return self.converted / working if working > 0 else 0.0

    def line(self) -> str:
        parts = [f"{self.converted} converted"]
        if self.skipped:
            parts.append(f"{self.skipped} already done")
        if self.failed:
            parts.append(f"{self.failed} failed")
        where = self.manifest if self.manifest is not None else self.out_dir
        rate = f", {self.photos_per_second:.2f} photos/s" if self.converted else ""
        state = "interrupted: " if self.interrupted else ""
        return f"{state}{', '.join(parts)} of {self.photos} photos in {self.elapsed_s:.1f} s{rate} → {where}"


def check_output_folder(out_dir: Path) -> None:
    """Refuse an output folder that cannot be made or written, before anything is written."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: exists and is not a folder (--out)")
    probe = out_dir
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"{out_dir}: cannot be created: {probe} is a file (--out)")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"{out_dir}: cannot be written: permission denied on {probe} (--out)")


def make_output_folder(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".tr2m-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot be written ({exc.strerror or exc}) (--out)") from None


def _load(model: Any, options: ConvertOptions):
    from ..model.load import load_model
    from ..model.tr2m import TR2M

    if isinstance(model, TR2M):
        return model
    return load_model(model, device=options.device, precision=options.precision, progress=options.progress)


def _precision_name(dtype) -> str:
    from ..runtime import PRECISIONS

    return next((name for name, value in PRECISIONS.items() if value == dtype), str(dtype))


def _describe_inputs(inputs: Sequence[str | Path]) -> str:
    shown = ", ".join(str(i) for i in list(inputs)[:3]) + (", …" if len(inputs) > 3 else "")
    return shown


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
    a Tr2mError (nothing written) for unusable inputs, caption files, output folders or weights.
    """
    from ..io import storage

    inputs = list(inputs) if not isinstance(inputs, (str, Path)) else [inputs]
    if storage.is_url(out_dir) or any(storage.is_url(i) for i in inputs):
        # Object stores: the plan and worker every engine shares, run in this process.
        from .ray_engine import convert_in_process

        return convert_in_process(inputs, out_dir, options, model=model, caption_fallback=caption_fallback)
    started = time.perf_counter()
    out_dir = Path(os.path.abspath(Path(out_dir).expanduser()))
    layout = OutputLayout(out_dir, options.outputs)
    everything = collect_images(inputs, recursive=options.recursive, exclude=layout.is_output)
    if not everything:
        suffixes = ", ".join(sorted(s.lstrip(".") for s in IMAGE_SUFFIXES))
        raise InputError(f"no photos found in {_describe_inputs(inputs)} (looked for {suffixes})")
    resolver = CaptionResolver(options.captions, everything, caption_fallback)
    images = select_shard(everything, options.shard)
    check_output_folder(out_dir)
    done = [] if options.overwrite else [image for image in images if layout.is_complete(image)]
    done_paths = {image.path for image in done}
    todo = [image for image in images if image.path not in done_paths]
    captions = resolver.resolve_all(todo)
    if todo and all(caption is None for caption in captions):
        raise InputError(
            f"no caption for any of the {len(todo)} photos: give --caption-file, put <stem>.txt "
            f"beside each photo, --caption-root DIR, --caption TEXT or --domain indoor|outdoor|surgical"
        )

    tr2m = _load(model, options) if todo else None
    make_output_folder(out_dir)
    if options.shard is None:
        remove_stale_temporaries(out_dir)
    else:
        remove_stale_temporaries_of(p for image in images for p in layout.paths(image).values())
    manifest_name, summary_name = manifest_names(options)
    summary = ConvertSummary(
        out_dir=out_dir,
        photos=len(images),
        manifest=out_dir / manifest_name,
        summary_file=out_dir / summary_name,
    )
    progress = Progress(len(images), enabled=options.progress, initial=len(done))
    run = _Run(
        options=options,
        layout=layout,
        summary=summary,
        progress=progress,
        manifest=ManifestLog(summary.manifest),
    )
    if resolver.table and resolver.unmatched_file_keys == len(resolver.table):
        sample = next(iter(resolver.table))
        progress.warn(
            f"no key of {options.captions.caption_file} names any photo here (keys look like "
            f"{sample!r}, photos like {everything[0].key!r})"
        )
    try:
        run.record_skipped(done)
        if todo:
            progress.info(
                f"{len(todo)} photos → {out_dir} ({', '.join(options.outputs)}); model "
                f"{tr2m.spec.name} on {tr2m.device} ({_precision_name(tr2m.precision)})"
                + (f", {len(done)} already done" if done else "")
                + (f", shard {options.shard} of {len(everything)} photos" if options.shard else "")
            )
        summary.setup_s = round(time.perf_counter() - started, 3)
        progress.start()
        if todo:
            run.convert_all(tr2m, todo, captions)
    except KeyboardInterrupt:
        summary.interrupted = True
        raise
    finally:
        progress.close()
        run.finish(started, inputs)
    return summary


class _Run:
    """The state of one conversion: pools, buckets, the manifest and the counters."""

    def __init__(self, *, options, layout, summary, progress, manifest) -> None:
        self.options: ConvertOptions = options
        self.layout: OutputLayout = layout
        self.summary: ConvertSummary = summary
        self.progress: Progress = progress
        self.manifest: ManifestLog = manifest
        self.times = StageTimes()
        self.writes: set[futures.Future] = set()
        self.context: RunContext | None = None
        self.long_captions: dict[str, int] = {}  # caption → its token count, above the limit

    # -- records ----------------------------------------------------------------------------

    def _finish(self, record: dict[str, Any]) -> None:
        self.manifest.append(record)
        if self.summary.count(record) == "failed":
            self.progress.error(record.get("error") or record["input"])
        self.progress.advance()

    def record_skipped(self, done: list[InputImage]) -> None:
        self.summary.skipped = len(done)
        for image in done:
            previous = self.manifest.previous.get(image.key)
            if previous is not None and previous.get("status") == "ok":
                continue  # its record from the run that wrote the files stays as it is
            paths = self.layout.paths(image)
            self.manifest.append(
                {
                    **base_record(image, "skipped"),
                    "outputs": {kind: self.layout.relative(p) for kind, p in paths.items()},
                    "note": "outputs already present; --overwrite redoes them",
                    "finished": now_iso(),
                }
            )

    # -- the pipeline -----------------------------------------------------------------------

    def convert_all(self, tr2m, todo: list[InputImage], captions) -> None:
        from .. import __version__

        options = self.options
        policy = options.size or tr2m.size_policy
        metres_per_unit = tr2m.spec.metres_per_output_unit(options.domain)
        self.context = RunContext(self.layout, options, tr2m.spec.name, metres_per_unit, __version__)
        self._warn_long_captions(tr2m, todo, captions)
        runner = DepthRunner(tr2m, options.batch_size, metres_per_unit, self.times, options.stage_timing)
        buckets = SizeBuckets(runner)
        cloud_grid = None
        if "ply" in options.outputs:
            cloud = options.cloud
            cloud_grid = lambda h, w: grid_shape(h, w, cloud_stride(h, w, cloud))  # noqa: E731

        work = []
        for image, caption in zip(todo, captions):
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

        decode_pool = futures.ThreadPoolExecutor(options.decode_workers, thread_name_prefix="tr2m-decode")
        big_photo_slots = threading.BoundedSemaphore(2)
        self.write_pool = futures.ThreadPoolExecutor(options.write_workers, thread_name_prefix="tr2m-write")
        pending: collections.deque[futures.Future] = collections.deque()
        prefetch = max(2 * options.batch_size, 2 * options.decode_workers)
        queue = iter(work)
        oom_seen = 0
        try:
            while True:
                while len(pending) < prefetch:
                    item = next(queue, None)
                    if item is None:
                        break
                    pending.append(decode_pool.submit(self._decode, *item, policy, cloud_grid, big_photo_slots))
                if not pending:
                    break
                decoded = pending.popleft().result()
                if isinstance(decoded, dict):
                    self._finish(decoded)
                    continue
                for batch in buckets.add(decoded):
                    self._run_batch(runner, batch)
                self._collect_writes()
                if runner.out_of_memory_events > oom_seen:
                    oom_seen = runner.out_of_memory_events
                    self.progress.warn(f"out of memory: continuing with batches of {runner.batch_size}")
            for batch in buckets.drain():
                self._run_batch(runner, batch)
            self._collect_writes(wait_all=True)
        finally:
            for future in pending:
                future.cancel()
            decode_pool.shutdown(wait=True, cancel_futures=True)
            # Writes already under way finish (each is atomic anyway) and are recorded.
            self._collect_writes(wait_all=True)
            self.write_pool.shutdown(wait=True, cancel_futures=True)

    def _warn_long_captions(self, tr2m, todo, captions) -> None:
        limit, self.long_captions = long_captions(tr2m, [c.text for c in captions if c is not None])
        affected = [(image.key, c.text) for image, c in zip(todo, captions) if c is not None and c.text in self.long_captions]
        if affected:
            key, text = affected[0]
            self.progress.warn(long_caption_warning(len(affected), limit, key, self.long_captions[text]))

    def _decode(self, image, caption, policy, cloud_grid, big_photo_slots) -> DecodedPhoto | dict[str, Any]:
        start = time.perf_counter()
        try:
            return decode_photo(image, caption, policy, cloud_grid, big_photo_slots)
        except Tr2mError as exc:
            return failure_record(image, str(exc), caption, time.perf_counter() - start)
        except Exception as exc:  # noqa: BLE001 - an odd file must not end the run
            return failure_record(image, f"{image.path}: cannot decode ({type(exc).__name__}: {exc})", caption)
        finally:
            self.times.add("decode", time.perf_counter() - start)

    def _run_batch(self, runner: DepthRunner, batch: list[DecodedPhoto]) -> None:
        for result in runner.run(batch):
            if result.error is not None:
                self._finish(failure_record(result.photo.image, result.error, result.photo.caption, result.seconds))
                continue
            result.photo.pixels = None  # the network input is no longer needed: free it now
            while len(self.writes) >= 2 * self.options.write_workers + self.options.batch_size:
                self._collect_writes(block=True)
            self.writes.add(self.write_pool.submit(self._write, result))

    def _write(self, result: DepthResult) -> dict[str, Any]:
        start = time.perf_counter()
        image, caption = result.photo.image, result.photo.caption
        try:
            record = write_photo(result, self.context)
            if caption.text in self.long_captions:
                record["caption_tokens"] = self.long_captions[caption.text]
            return record
        except Tr2mError as exc:
            return failure_record(image, str(exc), caption, result.seconds)
        except OSError as exc:
            target = exc.filename or self.layout.out_dir
            return failure_record(image, f"{image.key}: cannot write {target} ({exc.strerror or exc})", caption)
        except Exception as exc:  # noqa: BLE001
            return failure_record(image, f"{image.key}: writing failed ({type(exc).__name__}: {exc})", caption)
        finally:
            self.times.add("write", time.perf_counter() - start)

    def _collect_writes(self, *, block: bool = False, wait_all: bool = False) -> None:
        if not self.writes:
            return
        if wait_all:
            finished, self.writes = set(self.writes), set()
            futures.wait(finished)
        else:
            if block:
                futures.wait(self.writes, return_when=futures.FIRST_COMPLETED)
            finished = {f for f in self.writes if f.done()}
            self.writes -= finished
        for future in finished:
            if not future.cancelled():
                self._finish(future.result())

    # -- the end ----------------------------------------------------------------------------

    def finish(self, started: float, inputs) -> None:
        self.manifest.close()
        summary = self.summary
        summary.elapsed_s = round(time.perf_counter() - started, 3)
        summary.stage_seconds = self.times.as_dict()
        write_summary_file(summary, self.options, inputs, self.context.model_name if self.context else None)


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


def write_summary_file(summary: ConvertSummary, options: ConvertOptions, inputs, model_name: str | None, **extra) -> None:
    """summary.json (or summary-K-of-N.json): what the run did and how, for every engine."""
    from .. import __version__
    from ..io import storage

    storage.write_text(
        summary.summary_file,
        json.dumps(
            {
                "tr2m_version": __version__,
                "finished": now_iso(),
                "inputs": [storage.describe(i) for i in inputs],
                "out": storage.describe(summary.out_dir),
                "shard": str(options.shard) if options.shard else None,
                "outputs": list(options.outputs),
                "photos": summary.photos,
                "converted": summary.converted,
                "skipped": summary.skipped,
                "failed": summary.failed,
                "interrupted": summary.interrupted,
                "failures": [{"input": key, "error": error} for key, error in summary.failures],
                "elapsed_s": summary.elapsed_s,
                "setup_s": summary.setup_s,
                "photos_per_s": round(summary.photos_per_second, 4),
                "stage_seconds": summary.stage_seconds,
                "model": model_name,
                "options": {
                    "device": options.device,
                    "precision": options.precision,
                    "batch_size": options.batch_size,
                    "size": options.size.describe() if options.size else "model default",
                    "domain": options.domain,
                    "overwrite": options.overwrite,
                },
                **extra,
                "manifest": summary.manifest.name,
                "exit_code": summary.exit_code,
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n",
    )
