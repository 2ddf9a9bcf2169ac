"""Converting batches of plan rows on one worker: the piece every engine calls.

    converter = PhotoConverter("s3://lab/depth", options, model="tr2m-official", run_id=run_id)
    out = converter({"input": [...], "path": [...], ...})   # a batch of plan rows, as columns
    out["record"]                                            # one JSON manifest record per row

`PhotoConverter` is a stateful callable: made once per worker (a Ray Data actor, a Daft class UDF,
a Spark `mapPartitions` function), it loads the model once and then converts batch after batch.
It never raises for one photo: an unreadable photo, a model error or an unwritable output becomes
that photo's failure record. After a batch's outputs are written its records are saved as one
manifest part (io.manifest_parts), so a killed driver loses none of them.

`decode_rows` is the optional CPU stage ahead of it: it decodes photos into network inputs on CPU
workers and adds them to the rows, so GPU workers only run the model and write.
"""

from __future__ import annotations

import concurrent.futures as futures
import json
import math
import threading
import time
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import Tr2mError
from ..io import storage
from ..io.manifest_parts import new_run_id, write_part
from .options import ConvertOptions
from .plan import row_caption, row_image, row_settings

# The columns decode_rows adds (and PhotoConverter reads when they are present).
DECODED_COLUMNS = ("pixels", "photo_size", "network_size", "colors", "exif_focal_mm", "decode_seconds", "decode_error")


def batch_rows(batch: Any) -> list[dict[str, Any]]:
    """Rows from what engines pass: a dict of columns (Ray Data, Daft), a pandas DataFrame, or
    a list of row dicts."""
    if isinstance(batch, Mapping):
        columns = {name: list(values) for name, values in batch.items()}
        count = len(next(iter(columns.values()), []))
        return [{name: values[i] for name, values in columns.items()} for i in range(count)]
    if hasattr(batch, "to_dict") and hasattr(batch, "columns"):
        return batch.to_dict("records")
    return [dict(row) for row in batch]


def _columns(rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> dict[str, np.ndarray]:
    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        if all(isinstance(v, np.ndarray) or v is None for v in values):
            column = np.empty(len(values), dtype=object)
            column[:] = values
        else:
            column = np.array(values, dtype=object)
        columns[name] = column
    return columns


def _size_policy(options: ConvertOptions, token_budget: int | None):
    from ..model.preprocess import SizePolicy

    if options.size is not None:
        return options.size
    return SizePolicy(token_budget=token_budget) if token_budget else SizePolicy()


def _cloud_grid(options: ConvertOptions):
    if "ply" not in options.outputs:
        return None
    from ..io.pointcloud import cloud_stride, grid_shape

    return lambda h, w: grid_shape(h, w, cloud_stride(h, w, options.cloud))


def _decode_one(image, caption, policy, cloud_grid, big_photo_slots, max_pixels):
    """A DecodedPhoto, or the photo's failure record."""
    from .decode import decode_photo
    from .writing import failure_record

    start = time.perf_counter()
    try:
        return decode_photo(image, caption, policy, cloud_grid, big_photo_slots, max_pixels=max_pixels)
    except Tr2mError as exc:
        return failure_record(image, str(exc), caption, time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - an odd file must not end the run
        return failure_record(image, f"{storage.describe(image.path)}: cannot decode ({type(exc).__name__}: {exc})", caption)


def decode_rows(batch: Any, *, options: ConvertOptions = ConvertOptions(), token_budget: int | None = None) -> dict[str, np.ndarray]:
    """The CPU stage: decode each row's photo into its network input (a float32 array) and add
    the DECODED_COLUMNS; an unreadable photo gets `decode_error` instead of raising."""
    rows = batch_rows(batch)
    policy, grid = _size_policy(options, token_budget), _cloud_grid(options)
    slots = threading.BoundedSemaphore(2)
    for row in rows:
        decoded = _decode_one(row_image(row), row_caption(row), policy, grid, slots, options.max_pixels)
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
    return _columns(rows, names)


class PhotoConverter:
    """Loads the model once per worker, then converts batches of plan rows (see the module
    docstring). `model`: a registry name or model folder (a loaded TR2M works in one process).
    `run_id` names this run's manifest parts (of `manifest_name`: plan.manifest_name for a shard);
    `write_parts=False` leaves records to the caller."""

    def __init__(
        self,
        out: str | Any,
        options: ConvertOptions = ConvertOptions(),
        *,
        model: Any = "tr2m-official",
        run_id: str | None = None,
        write_parts: bool = True,
        manifest_name: str = "manifest.jsonl",
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
        self.cloud_grid = _cloud_grid(options)
        self.times = StageTimes()
        # The inference core, as the local pipeline, predict and eval use it (model.inference).
        self.predictor = DepthPredictor(self.model, batch_size=options.batch_size, size=options.size, domain=options.domain,
                                        times=self.times, stage_timing=options.stage_timing)  # fmt: skip
        self.policy = self.predictor.policy
        self.context = RunContext(OutputLayout(self.out, options.outputs), options, self.model.spec.name,
                                  self.predictor.metres_per_unit, __version__, precision_name(self.model.precision))  # fmt: skip
        self._big_photo_slots = threading.BoundedSemaphore(2)
        self._pool: futures.ThreadPoolExecutor | None = None

    def _threads(self) -> futures.ThreadPoolExecutor:
        # Made on first use, in the worker process (a pool does not survive pickling).
        if self._pool is None:
            workers = max(self.options.decode_workers, self.options.write_workers)
            self._pool = futures.ThreadPoolExecutor(workers, thread_name_prefix="tr2m-worker")
        return self._pool

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
        from ..model.inference import DepthRequest
        from .decode import DecodedPhoto

        records: dict[int, dict[str, Any]] = {}
        decoded: list[tuple[int, DecodedPhoto]] = []
        pending = []
        for index, row in enumerate(rows):
            image, caption = row_image(row), row_caption(row)
            if row.get("fingerprint"):  # what made this photo's outputs, into its record and TIFF tags
                self.context.settings[image.key] = row_settings(row)
            error = row.get("decode_error")
            if isinstance(error, str) and error:
                records[index] = json.loads(error)
            elif isinstance(error, str):
                decoded.append((index, self._from_decoded_columns(row, image, caption)))
            else:
                pending.append((index, self._threads().submit(
                    _decode_one, image, caption, self.policy, self.cloud_grid, self._big_photo_slots, self.options.max_pixels)))  # fmt: skip
        for index, future in pending:
            result = future.result()
            if isinstance(result, dict):
                records[index] = result
            else:
                decoded.append((index, result))
        from .pipeline import long_captions

        _, too_long = long_captions(self.model, [photo.caption.text for _, photo in decoded])
        requests = (DepthRequest(photo.photo, photo.caption.text, tag=(index, photo), name=str(photo.image.path))
                    for index, photo in decoded)  # fmt: skip
        writes = []
        for result in self.predictor.stream(requests, max_waiting=len(decoded) + 1):
            index, photo = result.request.tag
            if result.error is not None:
                from .writing import failure_record

                records[index] = failure_record(photo.image, result.error, photo.caption, result.seconds)
                continue
            photo.photo.pixels = None  # free the network input before writing
            writes.append((index, self._threads().submit(self._write, photo, result, too_long)))
        for index, future in writes:
            records[index] = future.result()
        for index, row in enumerate(rows):
            redone = row.get("redone_because")
            if isinstance(redone, str) and redone and records[index]["status"] == "ok":
                records[index]["redone_because"] = json.loads(redone)
            self.context.settings.pop(str(row["input"]), None)
        return [records[i] for i in range(len(rows))]

    def _from_decoded_columns(self, row, image, caption):
        import torch

        from .decode import DecodedPhoto

        from ..model.inference import NetworkInput

        focal = float(row["exif_focal_mm"])
        network_input = NetworkInput(
            pixels=torch.from_numpy(np.array(row["pixels"], dtype=np.float32)),  # a writable copy
            size=tuple(int(v) for v in row["photo_size"]),
            network_size=tuple(int(v) for v in row["network_size"]),
            exif_focal_35mm=None if math.isnan(focal) else focal,
        )
        return DecodedPhoto(image=image, caption=caption, photo=network_input,
                            colors=row["colors"] if np.size(row["colors"]) else None, seconds=float(row["decode_seconds"]))  # fmt: skip

    def _write(self, photo, result, long_captions: dict[str, int]) -> dict[str, Any]:
        from .writing import failure_record, write_photo

        image, caption = photo.image, photo.caption
        start = time.perf_counter()
        try:
            record = write_photo(photo, result.depth, self.context, model_seconds=result.seconds)
            if caption.text in long_captions:  # as the local engine records it
                record["caption_tokens"] = long_captions[caption.text]
            return record
        except Tr2mError as exc:
            return failure_record(image, str(exc), caption, result.seconds)
        except OSError as exc:
            target = storage.describe(exc.filename or self.out)
            return failure_record(image, f"{image.key}: cannot write {target} ({exc.strerror or exc})", caption)
        except Exception as exc:  # noqa: BLE001 - one photo's failure must not end the batch
            return failure_record(image, f"{image.key}: writing failed ({type(exc).__name__}: {storage.redact(str(exc))})", caption)
        finally:
            self.times.add("write", time.perf_counter() - start)
