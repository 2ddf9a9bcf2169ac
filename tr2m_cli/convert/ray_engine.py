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
import time
from typing import Any, Sequence

from ..cluster import RayResources, Workers, ray_session, run_rows
from ..errors import InputError, OutputError
from ..io import storage
from ..io.captions import CaptionFallback
from ..io.manifest_parts import merge_manifest, new_run_id, write_part
from .options import ConvertOptions
from .pipeline import ConvertSummary, long_caption_warning, write_summary_file
from .plan import plan_conversion
from .progress import Progress
from .worker import PhotoConverter, decode_rows


def _model_facts(model: Any) -> tuple[str, int]:
    """(name, token budget) of the model, from its folder, on the driver: a missing model fails
    here in one line, before any worker starts (each worker then loads it itself)."""
    from ..model.tr2m import TR2M
    from ..weights.folder import read_model_folder
    from ..weights.resolve import resolve_model

    if isinstance(model, TR2M):
        raise InputError("convert_ray takes a model name or folder (each worker loads its own), not a loaded model")
    spec = read_model_folder(resolve_model(model))
    return spec.name, spec.token_budget


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
    `decode_on_cpus`: decode photos in CPU tasks ahead of the workers. Returns the summary;
    raises a Tr2mError before any work for unusable inputs, captions, outputs or weights."""
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


def run_plan(inputs, out, options: ConvertOptions, *, model: Any, caption_fallback, ray: RayResources | None) -> ConvertSummary:
    """Plan, check, convert the rows (on Ray, or here), count and show progress as records
    arrive, then merge the manifest parts and write the summary, whatever stopped the run."""
    from ..model.tr2m import TR2M

    started = time.perf_counter()
    plan = plan_conversion(inputs, out, options, caption_fallback=caption_fallback)
    storage.check_writable(plan.out)
    if ray is not None:
        model_name, token_budget = _model_facts(model) if plan.rows else (None, None)
    elif isinstance(model, TR2M):
        model_name, token_budget = model.spec.name, model.spec.token_budget
    else:
        model_name, token_budget = _model_facts(model) if plan.rows else (None, None)
    inputs = [inputs] if isinstance(inputs, str) else list(inputs)
    run_id = new_run_id()
    summary = ConvertSummary(out_dir=plan.out, photos=plan.photos, skipped=len(plan.done),
                             manifest=plan.manifest, summary_file=plan.summary_file)  # fmt: skip
    progress = Progress(plan.photos, enabled=options.progress, initial=len(plan.done))
    if plan.unmatched_caption_keys:
        progress.warn(plan.unmatched_caption_keys)
    write_part(plan.out, run_id, plan.failures, plan.manifest_name)
    for record in plan.failures:
        summary.count(record)
        progress.error(record.get("error") or record["input"])
    where = f"on Ray, {ray.workers} worker(s)" if ray is not None else f"on {options.device}"
    worker_settings = {"out": str(plan.out), "options": options, "run_id": run_id, "manifest_name": plan.manifest_name}
    try:
        if plan.rows:
            progress.info(
                f"{len(plan.rows)} photos → {storage.describe(plan.out)} ({', '.join(options.outputs)}); model {model_name} {where}"
                + (f", {len(plan.done)} already done" if plan.done else "")
                + (f", shard {options.shard}" if options.shard else "")
            )
            with contextlib.ExitStack() as stack:
                if ray is not None:
                    stack.enter_context(ray_session(ray.address))
                    rows = run_rows(plan.rows, PhotoConverter, constructor_kwargs={**worker_settings, "model": _portable(model)},
                                    resources=ray, batch_size=options.batch_size, decode=decode_rows,
                                    decode_kwargs={"options": options, "token_budget": token_budget})  # fmt: skip
                else:
                    rows = _rows_here(plan.rows, PhotoConverter(**worker_settings, model=model), options.batch_size)
                summary.setup_s = round(time.perf_counter() - started, 3)
                progress.start()
                _collect(rows, summary, progress)
        else:
            summary.setup_s = round(time.perf_counter() - started, 3)
    except KeyboardInterrupt:
        summary.interrupted = True
        raise
    finally:
        progress.close()
        merge_manifest(plan.out, plan.manifest_name)
        summary.elapsed_s = round(time.perf_counter() - started, 3)
        extra = {"engine": "ray", "workers": str(ray.workers)} if ray is not None else {"engine": "local"}
        write_summary_file(summary, options, inputs, model_name, **extra)
    return summary


def _rows_here(rows: list[dict[str, str]], converter: PhotoConverter, batch_size: int):
    """The rows converted in this process, a few batches at a time (one manifest part each)."""
    chunk = max(4 * batch_size, 16)
    for start in range(0, len(rows), chunk):
        result = converter(rows[start : start + chunk])
        for record in result["record"]:
            yield {"record": record}


def _collect(rows, summary: ConvertSummary, progress: Progress) -> None:
    """Count records as they arrive; say which failed, and which captions were too long."""
    long_captions: list[tuple[str, int]] = []
    for row in rows:
        record = json.loads(row["record"])
        if summary.count(record) == "failed":
            progress.error(record.get("error") or record["input"])
        if "caption_tokens" in record:
            long_captions.append((record["input"], record["caption_tokens"]))
        progress.advance()
    if long_captions:  # the local pipeline says this before it starts; workers know it as they go
        from ..model.encoders import CLIP_CONTEXT_LENGTH

        progress.warn(long_caption_warning(len(long_captions), CLIP_CONTEXT_LENGTH, *long_captions[0]))


def _portable(model: Any) -> str:
    """A model folder as an absolute path (workers may start in another directory)."""
    import os
    from pathlib import Path

    path = Path(str(model)).expanduser()
    return str(path.resolve()) if path.is_dir() else str(model)
