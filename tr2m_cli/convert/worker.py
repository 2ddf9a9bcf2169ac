"""Converting photos on one machine or worker: the per-photo work every engine runs.

    converter = PhotoConverter("s3://lab/depth", options, model="tr2m-official", run_id=run_id)
    converter.convert_stream(plan.jobs, on_record)          # a stream of jobs, records as they finish
    out = converter({"input": [...], "path": [...], ...})   # or a batch of plan rows, as columns
    out["record"]                                            # one JSON manifest record per row

`PhotoConverter` loads the model once, then converts photo after photo: background threads decode
photos ahead (jobs.decode), the inference core runs them in batches of one network size
(model.inference, as `predict` and `eval` do: each caption encoded once, out-of-memory halving),
a second pool writes each photo's outputs through the shared writers (convert.writing) while the
model works on the next batch, and each photo gets its manifest record. It never raises for one
photo: an unreadable photo, a model error, a camera that does not fit or an unwritable output
becomes that photo's failure record.

`tr2m convert` on this machine (local folders and object stores alike) hands it the plan's jobs as
one stream; engines that ship work elsewhere make one per worker (a Ray Data actor, a Daft class
UDF, a Spark `mapPartitions` function) and call it with batches of plan rows; after a batch's
outputs are written its records are saved as one manifest part (io.manifest_parts), so a killed
driver loses none of them.

`decode_rows` is the optional CPU stage ahead of it: it decodes photos into network inputs on CPU
workers and adds them to the rows, so GPU workers only run the model and write.
"""

from __future__ import annotations

import concurrent.futures as futures
import json
import math
import threading
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ..errors import Tr2mError
from ..io import storage
from ..io.manifest import describe_os_error
from ..io.manifest_parts import new_run_id, write_part
from ..jobs import decode_ahead
from ..jobs.rows import batch_rows, row_columns
from .decode import DecodedPhoto, decode_photo
from .options import ConvertOptions
from .plan import PhotoJob, row_job
from .writing import failure_record, write_photo

# The columns decode_rows adds (and PhotoConverter reads when they are present).
DECODED_COLUMNS = ("pixels", "photo_size", "network_size", "colors", "exif_focal_mm", "decode_seconds", "decode_error")


def cloud_grid(options: ConvertOptions) -> Callable[[int, int], tuple[int, int]] | None:
    """The point-cloud grid of a (H, W) photo, when an output built on it (cloud, mesh, render)
    needs the photo's colours there; else None (no colours kept)."""
    if not options.grid_outputs:
        return None
    from ..io.pointcloud import cloud_stride, grid_shape

    return lambda h, w: grid_shape(h, w, cloud_stride(h, w, options.cloud))


def decode_job(job: PhotoJob, policy, grid, big_photo_slots, max_pixels) -> DecodedPhoto | dict[str, Any]:
    """A DecodedPhoto, or the photo's failure record."""
    image, caption = job.image, job.caption
    start = time.perf_counter()
    try:
        return decode_photo(image, caption, policy, grid, big_photo_slots, max_pixels=max_pixels)
    except Tr2mError as exc:
        return failure_record(image, str(exc), caption, time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - an odd file must not end the run
        return failure_record(image, f"{storage.describe(image.path)}: cannot decode ({type(exc).__name__}: {exc})", caption)


def long_captions(tr2m, texts: Iterable[str]) -> dict[str, int]:
    """{caption: its token count} for the captions over the text encoder's token limit."""
    from ..model.encoders import CLIP_CONTEXT_LENGTH

    distinct = list(dict.fromkeys(texts))
    if not distinct:
        return {}
    limit = getattr(tr2m.text_encoder, "max_length", CLIP_CONTEXT_LENGTH)
    counts = dict(zip(distinct, tr2m.text_encoder.token_counts(distinct)))
    return {text: n for text, n in counts.items() if n > limit}


def decode_rows(batch: Any, *, options: ConvertOptions = ConvertOptions(), token_budget: int | None = None) -> dict[str, np.ndarray]:
    """The CPU stage: decode each row's photo into its network input (a float32 array) and add
    the DECODED_COLUMNS; an unreadable photo gets `decode_error` instead of raising."""
    from ..model.preprocess import SizePolicy, as_size_policy

    rows = batch_rows(batch)
    # The network size photos are decoded for: the options', else the model's token budget.
    policy = as_size_policy(options.size, SizePolicy(token_budget=token_budget) if token_budget else SizePolicy())
    grid = cloud_grid(options)
    slots = threading.BoundedSemaphore(2)
    for row in rows:
        decoded = decode_job(row_job(row), policy, grid, slots, options.max_pixels)
        # Every column keeps one type (engines store columns, not Python objects): empty arrays
        # and "" stand for "none".
        if isinstance(decoded, dict):
            row.update(
                pixels=np.zeros((3, 0, 0), np.float32), photo_size=np.zeros(2, np.int64), network_size=np.zeros(2, np.int64),
                colors=np.zeros((0, 0, 3), np.uint8), exif_focal_mm=float("nan"), decode_seconds=0.0,
                decode_error=json.dumps(decoded),
            )  # fmt: skip
            continue
        row.update(
            pixels=decoded.photo.pixels.numpy(),
            photo_size=np.array(decoded.size, dtype=np.int64),
            network_size=np.array(decoded.network_size, dtype=np.int64),
            colors=np.zeros((0, 0, 3), np.uint8) if decoded.colors is None else decoded.colors,
            exif_focal_mm=float("nan") if decoded.photo.exif_focal_35mm is None else float(decoded.photo.exif_focal_35mm),
            decode_seconds=decoded.seconds,
            decode_error="",
        )
    names = list(dict.fromkeys([*(rows[0].keys() if rows else ()), *DECODED_COLUMNS]))
    return row_columns(rows, names)


def _decoded_columns(row: Mapping[str, Any], job: PhotoJob) -> DecodedPhoto | dict[str, Any] | None:
    """What decode_rows made of a row: its DecodedPhoto, its failure record, or None (not decoded)."""
    error = row.get("decode_error")
    if not isinstance(error, str):
        return None
    if error:
        return json.loads(error)
    import torch

    from ..model.inference import NetworkInput

    focal = float(row["exif_focal_mm"])
    network_input = NetworkInput(
        pixels=torch.from_numpy(np.array(row["pixels"], dtype=np.float32)),  # a writable copy
        size=tuple(int(v) for v in row["photo_size"]),
        network_size=tuple(int(v) for v in row["network_size"]),
        exif_focal_35mm=None if math.isnan(focal) else focal,
    )
    return DecodedPhoto(image=job.image, caption=job.caption, photo=network_input,
                        colors=row["colors"] if np.size(row["colors"]) else None, seconds=float(row["decode_seconds"]))  # fmt: skip


class PhotoConverter:
    """Loads the model once, then converts photos (see the module docstring). `model`: a
    registry name, a model folder, or a loaded TR2M (in this process). `run_id` names this run's
    manifest parts (of `manifest_name`: plan.manifest_name for a shard); `write_parts=False`
    leaves records to the caller. `times`: where decode and write times add up (StageTimes)."""

    def __init__(
        self,
        out: str | Any,
        options: ConvertOptions = ConvertOptions(),
        *,
        model: Any = "tr2m-official",
        run_id: str | None = None,
        write_parts: bool = True,
        manifest_name: str = "manifest.jsonl",
        times: Any = None,
    ) -> None:
        from .. import __version__
        from ..model.inference import DepthPredictor, StageTimes
        from ..model.tr2m import TR2M
        from ..runtime import precision_name
        from .layout import OutputLayout
        from .writing import RunContext

        self.out = storage.location(out)
        storage.make_folder(self.out)  # a local output folder (its sub-folders are made per photo)
        self.options = options
        self.run_id = run_id or new_run_id()
        self.write_parts, self.manifest_name = write_parts, manifest_name
        if isinstance(model, TR2M):
            self.model = model
        else:
            from ..weights.load import load_model

            self.model = load_model(model, device=options.device, precision=options.precision, progress=False)
        self.times = times if times is not None else StageTimes()
        self.predictor = DepthPredictor(self.model, batch_size=options.batch_size, size=options.size, domain=options.domain,
                                        times=self.times, stage_timing=options.stage_timing)  # fmt: skip
        self.context = RunContext(OutputLayout.of(self.out, options), options, self.model.spec.name,
                                  self.predictor.metres_per_unit, __version__, precision_name(self.model.precision))  # fmt: skip
        self.cloud_grid = cloud_grid(options)
        self._big_photo_slots = threading.BoundedSemaphore(2)
        self._out_of_memory_warned = 0

    # -- what engines call ----------------------------------------------------------------------

    def __call__(self, batch: Any) -> dict[str, np.ndarray]:
        """Convert a batch of rows → columns `input`, `status`, `record` (JSON), one per row."""
        records = self.convert_rows(batch_rows(batch))
        if self.write_parts:
            write_part(self.out, self.run_id, records, self.manifest_name)
        return {
            "input": np.array([r["input"] for r in records], dtype=object),
            "status": np.array([r["status"] for r in records], dtype=object),
            "record": np.array([json.dumps(r, ensure_ascii=False, default=str) for r in records], dtype=object),
        }

    def convert_rows(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """One manifest record per row, in the rows' order; never raises for a photo."""
        items = []
        for row in rows:
            job = row_job(row)
            items.append((job, _decoded_columns(row, job)))
        records: dict[int, dict[str, Any]] = {}
        # The whole batch waits in the buckets: full batches of each network size.
        self._stream(items, records.__setitem__, max_waiting=len(items) + 1)
        return [records[i] for i in range(len(items))]

    def convert_stream(self, jobs: Sequence[PhotoJob], on_record: Callable[[dict[str, Any]], None], *,
                       warn: Callable[[str], None] | None = None) -> None:  # fmt: skip
        """Convert `jobs`, calling `on_record(record)` in this thread as each photo is done (its
        files written, or failed). Whatever stops it (Ctrl-C), writes already under way finish
        and are handed on first. `warn`: where to say that batches were halved for memory."""
        self._stream([(job, None) for job in jobs], lambda _, record: on_record(record), warn=warn)

    # -- the stream -----------------------------------------------------------------------------

    def _stream(self, items, on_record, *, warn=None, max_waiting: int | None = None) -> None:
        """items: (job, decoded or None); on_record(index, record) as each is done."""
        from ..model.inference import DepthRequest

        options = self.options
        too_long = long_captions(self.model, [job.caption.text for job, _ in items])
        writes: dict[futures.Future, int] = {}
        write_pool = futures.ThreadPoolExecutor(options.write_workers, thread_name_prefix="tr2m-write")

        def finish(index: int, record: dict[str, Any]) -> None:
            job = items[index][0]
            if record["status"] == "ok":
                if job.caption.text in too_long:
                    record["caption_tokens"] = too_long[job.caption.text]
                if job.redone_because:
                    record["redone_because"] = job.redone_because
            on_record(index, record)

        def collect(*, block: bool = False, wait_all: bool = False) -> None:
            if not writes:
                return
            if wait_all:
                futures.wait(writes)
            elif block:
                futures.wait(writes, return_when=futures.FIRST_COMPLETED)
            for future in [f for f in writes if f.done()]:
                index = writes.pop(future)  # one at a time: a record is never dropped half-collected
                if not future.cancelled():
                    finish(index, future.result())

        def decode(item):
            _, (job, ready) = item
            mismatch = self._precision_mismatch(job)
            if mismatch is not None:
                return failure_record(job.image, mismatch, job.caption)
            return ready if ready is not None else self._decode(job)

        def requests(decoded):
            """Decoded photos for the model; those that cannot be read are recorded here and never
            reach it. Between photos, finished writes are recorded."""
            for (index, (job, _)), photo in decoded:
                collect()
                self._warn_out_of_memory(warn)
                if isinstance(photo, Exception):  # (decode catches everything; this is belt and braces)
                    photo = failure_record(job.image, f"{job.image.key}: cannot decode ({photo})", job.caption)
                if isinstance(photo, dict):
                    finish(index, photo)
                    continue
                yield DepthRequest(photo.photo, photo.caption.text, tag=(index, photo), name=str(photo.image.path))

        prefetch = max(2 * options.batch_size, 2 * options.decode_workers)
        decoded = decode_ahead(list(enumerate(items)), decode, workers=options.decode_workers, prefetch=prefetch)
        try:
            for result in self.predictor.stream(requests(decoded), max_waiting=max_waiting):
                index, photo = result.request.tag
                if result.error is not None:
                    finish(index, failure_record(photo.image, result.error, photo.caption, result.seconds))
                    continue
                photo.photo.pixels = None  # the network input is no longer needed: free it now
                while len(writes) >= 2 * options.write_workers + options.batch_size:
                    collect(block=True)
                writes[write_pool.submit(self._write, photo, result, items[index][0])] = index
            self._warn_out_of_memory(warn)
            collect(wait_all=True)
        finally:
            decoded.close()  # cancels decoding not yet started
            # Writes already under way finish (each is atomic anyway) and are recorded, whatever
            # stopped the run; further signals meanwhile only say so.
            collect(wait_all=True)
            write_pool.shutdown(wait=True, cancel_futures=True)

    def _precision_mismatch(self, job: PhotoJob) -> str | None:
        """Why a job planned for another precision than this worker runs in is refused: its record
        would say one precision (in its settings and fingerprint) and its TIFF another. Happens
        when a plan made on a driver without the workers' GPUs resolves "auto" differently."""
        planned = ((job.made_by or {}).get("settings") or {}).get("precision")
        if planned is None or planned == self.context.precision:
            return None
        return (f"{job.image.key}: planned for {planned} but this worker runs in {self.context.precision}: "
                f"give the plan and the workers the same precision (e.g. precision='{self.context.precision}')")  # fmt: skip

    def _decode(self, job: PhotoJob) -> DecodedPhoto | dict[str, Any]:
        start = time.perf_counter()
        try:
            return decode_job(job, self.predictor.policy, self.cloud_grid, self._big_photo_slots, self.options.max_pixels)
        finally:
            self.times.add("decode", time.perf_counter() - start)

    def _write(self, photo: DecodedPhoto, result, job: PhotoJob) -> dict[str, Any]:
        image, caption = photo.image, photo.caption
        start = time.perf_counter()
        try:
            return write_photo(photo, result.depth, self.context, camera=job.camera, made_by=job.made_by, model_seconds=result.seconds)
        except Tr2mError as exc:
            return failure_record(image, str(exc), caption, result.seconds)
        except OSError as exc:
            target = storage.describe(exc.filename or self.out)
            return failure_record(image, f"{image.key}: cannot write {target} ({describe_os_error(exc)})", caption)
        except Exception as exc:  # noqa: BLE001 - one photo's failure must not end the run
            return failure_record(image, f"{image.key}: writing failed ({type(exc).__name__}: {storage.redact(str(exc))})", caption)
        finally:
            self.times.add("write", time.perf_counter() - start)

    def _warn_out_of_memory(self, warn: Callable[[str], None] | None) -> None:
        if warn is not None and self.predictor.out_of_memory_events > self._out_of_memory_warned:
            self._out_of_memory_warned = self.predictor.out_of_memory_events
            warn(f"out of memory: continuing with batches of {self.predictor.batch_size}")
