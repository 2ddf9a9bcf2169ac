"""`convert --engine ray` (and `convert` with object-store URLs): a plan made here, its rows
converted by PhotoConverters on a Ray cluster, or in this process.

    from tr2m_cli.convert.ray_engine import convert_ray
    summary = convert_ray(["s3://lab/run42/frames"], "s3://lab/run42/depth", options,
                          model="tr2m-official", workers="2,8", gpus_per_worker=1)

Same semantics as `convert`: the same outputs, TIFF tags, manifest records, summary and exit
codes. What is left to do is decided here from one listing of the output prefix and the manifest
(convert.plan); each worker batch saves its records as a manifest part right after writing its
outputs (so a killed driver loses none), and the parts are merged into the manifest at the end.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
from pathlib import Path
from typing import Any, Sequence

from ..cluster import RayResources, Workers, ray_session, run_rows
from ..errors import InputError, Tr2mError
from ..io import storage
from ..io.captions import CaptionFallback
from ..io.manifest_parts import merge_manifest, new_run_id, write_part
from ..jobs import JobInterrupted, OutputFolder, Progress, StopSignals, jsonable
from .options import ConvertOptions
from .pipeline import ConvertSummary, long_caption_warning
from .plan import ConvertPlan, plan_conversion
from .worker import PhotoConverter, decode_rows


def convert_ray(
    inputs: Sequence[str | Any],
    out: str | Any,
    options: ConvertOptions = ConvertOptions(),
    *,
    model: Any = "tr2m-official",
    workers: int | str | tuple[int, int] | Workers = 1,
    gpus_per_worker: float | None = None,
    address: str | None = None,
    decode_on_cpus: bool = False,
    caption_fallback: CaptionFallback | None = None,
) -> ConvertSummary:
    """Convert photos (local paths or storage URLs) to metric depth under `out` on a Ray cluster.

    `workers`: N, or (MIN, MAX) / "MIN,MAX" for an autoscaling pool; `gpus_per_worker`: GPUs each
    worker holds (fractions share a GPU; None: 1 when the cluster has GPUs, else 0); `address`:
    a cluster to attach to (default: a running one, else a local one started for this call);
    `decode_on_cpus`: decode photos in CPU tasks ahead of the workers. `model`: a registry name
    or model folder (each worker loads its own). Returns the summary; raises a Tr2mError before
    any work for unusable inputs, captions, outputs or weights, and JobInterrupted when stopped."""
    from ..model.tr2m import TR2M

    if isinstance(model, TR2M):
        raise InputError("convert_ray takes a model name or folder (each worker loads its own), not a loaded model")
    resources = RayResources(workers=workers, gpus_per_worker=gpus_per_worker, address=address, decode_on_cpus=decode_on_cpus)
    return run_plan(inputs, out, options, model=model, caption_fallback=caption_fallback, ray=resources)


def convert_in_process(
    inputs: Sequence[str | Any],
    out: str | Any,
    options: ConvertOptions = ConvertOptions(),
    *,
    model: Any = "tr2m-official",
    caption_fallback: CaptionFallback | None = None,
) -> ConvertSummary:
    """`convert` for photos or outputs on an object store (`--engine local` with URLs): the same
    plan, worker and manifest parts as on Ray, the rows run here batch after batch."""
    return run_plan(inputs, out, options, model=model, caption_fallback=caption_fallback, ray=None)


def _workers_precision(ray_module, options: ConvertOptions, resources: RayResources) -> str:
    """The precision a worker will run in, asked of one placed as the workers are: the driver may
    have no GPU, and `auto` means bf16 or fp16 by the GPU (it enters every photo's fingerprint)."""

    def probe(device: str, precision: str) -> str:
        from tr2m_cli.runtime import PRECISIONS, resolve_device, resolve_precision

        dtype = resolve_precision(precision, resolve_device(device))
        return next(name for name, value in PRECISIONS.items() if value == dtype)

    gpus = resources.gpus_per_worker
    if gpus is None:
        gpus = 1.0 if ray_module.cluster_resources().get("GPU", 0) >= 1 else 0.0
    task = ray_module.remote(num_gpus=gpus, num_cpus=0 if gpus else resources.cpus_per_worker)(probe)
    return ray_module.get(task.remote(options.device, options.precision))


def run_plan(inputs, out, options: ConvertOptions, *, model: Any, caption_fallback, ray: RayResources | None) -> ConvertSummary:
    """Plan, check, convert the rows (on Ray, or here), count and show progress as records arrive,
    then merge the manifest parts and write the summary, whatever stopped the run."""
    started = time.perf_counter()
    inputs = [inputs] if isinstance(inputs, (str, Path, storage.Url)) else list(inputs)
    progress = Progress(0, enabled=options.progress)
    with StopSignals(progress.say) as signals, contextlib.ExitStack() as stack:
        precision = None
        if ray is not None:  # the precision the workers run in enters every fingerprint
            from ..runtime import PRECISIONS

            if options.precision in PRECISIONS:
                precision = options.precision
            else:  # "auto": ask a worker (the cluster starts before planning)
                precision = _workers_precision(stack.enter_context(ray_session(ray.address)), options, ray)
        plan = plan_conversion(inputs, out, options, model=model, caption_fallback=caption_fallback, precision=precision)
        storage.check_writable(plan.out)
        if isinstance(plan.out, Path):  # a local folder: its run lock, as every local run holds
            stack.enter_context(OutputFolder(plan.out))
        summary = ConvertSummary(
            out_dir=plan.out, destination=storage.describe(plan.out), photos=plan.photos, skipped=len(plan.done),
            manifest=plan.manifest, summary_file=plan.summary_file, shard=str(options.shard) if options.shard else None,
            model=dict(plan.model.identity), options={**jsonable(options), "engine": "ray" if ray else "local",
                                                      **({"workers": str(ray.workers)} if ray else {})},
            inputs=[storage.describe(i) for i in inputs], inputs_skipped=plan.inputs_skipped,
        )  # fmt: skip
        progress.total, progress.initial = plan.photos, len(plan.done)
        try:
            for warning in plan.warnings:
                progress.warn(warning)
            run_id = new_run_id()
            write_part(plan.out, run_id, plan.failures, plan.manifest_name)
            for record in plan.failures:
                summary.fail(record["input"], record.get("error") or "")
                progress.error(record.get("error") or record["input"])
            if plan.rows:
                where = f"on Ray, {ray.workers} worker(s) ({plan.model.precision})" if ray else f"on {options.device} ({plan.model.precision})"
                progress.info(
                    f"{len(plan.rows)} photos → {storage.describe(plan.out)} ({', '.join(options.outputs)}); model "
                    f"{plan.model.spec.name} {where}"
                    + (f", {len(plan.done)} already done" if plan.done else "")
                    + (f", {len(plan.redone)} to redo (settings changed)" if plan.redone else "")
                    + (f", shard {options.shard}" if options.shard else "")
                )
                if ray is not None:
                    stack.enter_context(ray_session(ray.address))  # (already up if it was asked)
                rows = _convert_rows(plan, options, model, run_id, ray)
                summary.setup_s = round(time.perf_counter() - started, 3)
                progress.start()
                _collect(rows, plan, summary, progress)
            else:
                summary.setup_s = round(time.perf_counter() - started, 3)
        except KeyboardInterrupt as exc:
            number = exc.signal_number if isinstance(exc, JobInterrupted) else signal.SIGINT
            signals.interrupt(number)
            summary.signal = signal.Signals(number).name
        finally:
            with signals.deferred():  # a second Ctrl-C must not cut the saving of finished work
                progress.close()
                _finish(plan, summary, progress, started)
    if summary.interrupted:
        raise JobInterrupted(signal.Signals[summary.signal].value, summary)
    return summary


def _convert_rows(plan: ConvertPlan, options: ConvertOptions, model: Any, run_id: str, ray: RayResources | None):
    """The plan's rows through PhotoConverters: a pool of Ray actors, or one here."""
    settings = {"out": str(plan.out), "options": options, "run_id": run_id, "manifest_name": plan.manifest_name}
    if ray is None:
        return _rows_here(plan.rows, PhotoConverter(**settings, model=plan.model.source), options.batch_size)
    return run_rows(
        plan.rows,
        PhotoConverter,
        constructor_kwargs={**settings, "model": str(Path(plan.model.source).resolve())},  # workers start elsewhere
        resources=ray,
        batch_size=options.batch_size,
        decode=decode_rows,
        decode_kwargs={"options": options, "token_budget": plan.model.spec.token_budget},
    )


def _finish(plan: ConvertPlan, summary: ConvertSummary, progress: Progress, started: float) -> None:
    """Fold the parts into the manifest and write summary.json; failures to do so are said in
    plain words (exit status 1), never a traceback."""
    try:
        merge_manifest(plan.out, plan.manifest_name)
    except (OSError, Tr2mError) as exc:
        summary.write_errors.append(f"cannot merge {storage.describe(plan.manifest)}: {storage.redact(str(exc))} "
                                    f"(the records are kept in parts; the next run merges them)")  # fmt: skip
    summary.elapsed_s = round(time.perf_counter() - started, 3)
    summary.warnings = list(progress.warnings)
    summary.write()
    for error in summary.write_errors:
        progress.say(f"tr2m: error: {error}")


def _rows_here(rows: list[dict[str, str]], converter: PhotoConverter, batch_size: int):
    """The rows converted in this process, a few batches at a time (one manifest part each)."""
    chunk = max(4 * batch_size, 16)
    for start in range(0, len(rows), chunk):
        result = converter(rows[start : start + chunk])
        for record in result["record"]:
            yield {"record": record}


def _collect(rows, plan: ConvertPlan, summary: ConvertSummary, progress: Progress) -> None:
    """Count records as they arrive; say which failed, and which captions were too long."""
    long_captions: list[tuple[str, int]] = []
    for row in rows:
        record = json.loads(row["record"])
        key = record["input"]
        if record["status"] == "ok":
            summary.done += 1
            summary.redone += key in plan.redone
        elif record["status"] == "failed":
            summary.fail(key, record.get("error") or "")
            progress.error(record.get("error") or key)
        if "caption_tokens" in record:
            long_captions.append((key, record["caption_tokens"]))
        progress.advance()
    if long_captions:  # the local pipeline says this before it starts; workers know it as they go
        from ..model.encoders import CLIP_CONTEXT_LENGTH

        progress.warn(long_caption_warning(len(long_captions), CLIP_CONTEXT_LENGTH, *long_captions[0]))
